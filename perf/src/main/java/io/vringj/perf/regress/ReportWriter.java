package io.vringj.perf.regress;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

/**
 * Writes a run's report directory:
 * <pre>
 *   report.md              verdict, ratio table, allocation table (Q7), throughput table, charts
 *   qN-ratios.png          this run's ratios beside the baseline and the target, per question
 *   qN-throughput.png      each benchmark's throughput by parameter combination, per question
 *   jmh-result.json        the raw JMH results (written by the runner)
 * </pre>
 * Charts are drawn with XChart as PNG.
 */
public final class ReportWriter {
    /** The Markdown report's file name. */
    public static final String REPORT = "report.md";
    /** The raw JMH JSON's file name. */
    public static final String RAW_JSON = "jmh-result.json";

    private static final int WIDTH = 1000;
    private static final int HEIGHT = 560;

    private ReportWriter() {
    }

    /**
     * What a report says about its run.
     *
     * @param profile the profile measured
     * @param recorded when, ISO-8601
     * @param machine where
     * @param note free text (e.g. other load on the machine), may be empty
     * @param baselineFile the baseline compared with, as given
     * @param baseline its contents, or {@code null} if there was none
     */
    public record RunInfo(Profile profile, String recorded, String machine, String note, String baselineFile,
                          Baseline baseline) {
    }

    /**
     * Writes the Markdown report and the charts.
     *
     * @param dir the report directory (created if missing)
     * @param info about the run
     * @param allRounds the run's results, rounds one after the other
     * @param checks the verdict on each tracked figure
     * @return the Markdown file written
     * @throws IOException if a file cannot be written
     */
    public static Path write(Path dir, RunInfo info, List<BenchmarkResult> allRounds, List<Check> checks)
        throws IOException {
        Files.createDirectories(dir);
        // throughputs are shown for the median round of each benchmark
        List<BenchmarkResult> results = Rounds.medianResults(allRounds);
        List<String> charts = new ArrayList<>();
        for (Question q : Question.values()) {
            List<Check> ratios = checks.stream()
                .filter(c -> c.question() == q && c.kind() == Check.Kind.RATIO && !Double.isNaN(c.current())).toList();
            if (!ratios.isEmpty()) {
                String name = q.id() + "-ratios.png";
                writeRatioChart(dir.resolve(name), q, ratios);
                charts.add(name);
            }
            List<BenchmarkResult> mine = results.stream().filter(r -> Question.of(r) == q).toList();
            if (!mine.isEmpty()) {
                String name = q.id() + "-throughput.png";
                writeThroughputChart(dir.resolve(name), q, mine);
                charts.add(name);
            }
        }
        Path md = dir.resolve(REPORT);
        Files.writeString(md, markdown(info, results, checks, charts));
        return md;
    }

    /**
     * @param info about the run
     * @param results the run's results
     * @param checks the verdict
     * @param charts chart file names to link
     * @return the Markdown text
     */
    static String markdown(RunInfo info, List<BenchmarkResult> results, List<Check> checks, List<String> charts) {
        StringBuilder sb = new StringBuilder();
        long regressions = checks.stream().filter(c -> c.status() == Check.Status.REGRESSION).count();
        sb.append("# vringj performance report\n\n");
        sb.append("- profile: ").append(info.profile().id()).append(" (").append(info.profile().describe())
            .append("; each ratio is the median of its per-round values)\n");
        sb.append("- recorded: ").append(info.recorded()).append('\n');
        sb.append("- machine: ").append(info.machine()).append('\n');
        if (!info.note().isEmpty()) {
            sb.append("- note: ").append(info.note()).append('\n');
        }
        if (info.baseline() == null) {
            sb.append("- baseline: none at ").append(info.baselineFile()).append(" (every figure is NEW)\n");
        } else {
            sb.append("- baseline: ").append(info.baselineFile()).append(", recorded ")
                .append(info.baseline().recorded()).append(" on ").append(info.baseline().machine());
            if (!info.baseline().note().isEmpty()) {
                sb.append(" (").append(info.baseline().note()).append(')');
            }
            sb.append('\n');
        }
        sb.append("- tolerance: a ratio may fall ").append(pct(info.profile().tolerance(false)))
            .append(" (single-thread ratios) or ").append(pct(info.profile().tolerance(true)))
            .append(" (two-thread ratios) below its baseline; a hot path may allocate its baseline + ")
            .append(pct(Checks.ALLOCATION_GROWTH)).append(" + a slack (column \"slack\": ")
            .append(Checks.ALLOCATION_SLACK).append(" B/op, more for slow benchmarks where JMH's own ")
            .append("allocation per iteration is spread over few operations)\n");
        sb.append("\n**Verdict: ").append(regressions == 0 ? "PASS" : "REGRESSION (" + regressions + ")")
            .append("**\n\n");

        sb.append("## Ratios (higher is better)\n\n");
        sb.append("| question | ratio | this run | baseline | change | status | target | target met |\n");
        sb.append("|---|---|---:|---:|---:|---|---:|---|\n");
        for (Check c : checks) {
            if (c.kind() != Check.Kind.RATIO) {
                continue;
            }
            sb.append("| ").append(c.question().id()).append(" | ").append(c.description()).append(" | ")
                .append(num(c.current())).append(" | ").append(num(c.baseline())).append(" | ")
                .append(signedPct(c.change())).append(" | ").append(c.status()).append(" | ")
                .append(c.target() != c.target() ? "—" : "≥ " + num(c.target())).append(" | ")
                .append(met(c.targetMet())).append(" |\n");
        }

        sb.append("\n## Allocation on the hot paths (question 7; target 0 B/op)\n\n");
        sb.append("| benchmark | B/op | baseline | slack | status |\n|---|---:|---:|---:|---|\n");
        for (Check c : checks) {
            if (c.kind() == Check.Kind.ALLOCATION) {
                sb.append("| ").append(c.id()).append(" | ").append(bytes(c.current())).append(" | ")
                    .append(bytes(c.baseline())).append(" | ").append(bytes(c.tolerance())).append(" | ")
                    .append(c.status()).append(" |\n");
            }
        }

        sb.append("\n## Throughputs (the median round of each benchmark)\n\n");
        sb.append("| benchmark | params | metric | score | ± error | unit | B/op |\n|---|---|---|---:|---:|---|---:|\n");
        for (BenchmarkResult r : results) {
            Question q = Question.of(r);
            String metric = q == null ? BenchmarkResult.PRIMARY : q.throughputMetric();
            BenchmarkResult.Metric m = r.metric(metric);
            if (m == null) {
                metric = BenchmarkResult.PRIMARY;
                m = r.primary();
            }
            BenchmarkResult.Metric alloc = r.metric(BenchmarkResult.ALLOC_NORM);
            sb.append("| ").append(r.shortName()).append(" | ").append(r.paramsLabel()).append(" | ").append(metric)
                .append(" | ").append(num(m.score())).append(" | ").append(num(m.error())).append(" | ")
                .append(m.unit()).append(" | ").append(alloc == null ? "—" : bytes(alloc.score())).append(" |\n");
        }

        sb.append("\n## Charts\n\n");
        for (String chart : charts) {
            sb.append("![").append(chart).append("](").append(chart).append(")\n\n");
        }
        sb.append("Raw JMH results: [").append(RAW_JSON).append("](").append(RAW_JSON).append(")\n");
        return sb.toString();
    }

    private static void writeRatioChart(Path file, Question q, List<Check> ratios) throws IOException {
        CategoryChart chart = new CategoryChartBuilder().width(WIDTH).height(HEIGHT)
            .title(q.id().toUpperCase(Locale.ROOT) + " ratios: " + q.title()).xAxisTitle("ratio")
            .yAxisTitle("ratio (higher is better)").build();
        style(chart);
        List<String> names = new ArrayList<>();
        List<Double> current = new ArrayList<>();
        List<Double> baseline = new ArrayList<>();
        List<Double> target = new ArrayList<>();
        for (Check c : ratios) {
            names.add(c.id().substring(c.id().indexOf('.') + 1));
            current.add(c.current());
            baseline.add(Double.isNaN(c.baseline()) ? 0.0 : c.baseline());
            target.add(Double.isNaN(c.target()) ? 0.0 : c.target());
        }
        chart.addSeries("this run", names, current);
        if (baseline.stream().anyMatch(v -> v > 0)) {
            chart.addSeries("baseline", names, baseline);
        }
        if (target.stream().anyMatch(v -> v > 0)) {
            chart.addSeries("target (0 = none)", names, target);
        }
        save(chart, file);
    }

    private static void writeThroughputChart(Path file, Question q, List<BenchmarkResult> results) throws IOException {
        String metric = q.throughputMetric();
        // categories: parameter combinations; series: benchmarks (peers side by side)
        Set<String> categories = new LinkedHashSet<>();
        Map<String, Map<String, Double>> series = new LinkedHashMap<>();
        String unit = "ops/s";
        for (BenchmarkResult r : results) {
            BenchmarkResult.Metric m = r.metric(metric) != null ? r.metric(metric) : r.primary();
            unit = m.unit();
            String category = r.paramsLabel().isEmpty() ? "-" : r.paramsLabel();
            categories.add(category);
            String name = r.shortName().substring(r.shortName().indexOf('.') + 1);
            series.computeIfAbsent(name, k -> new LinkedHashMap<>()).put(category, m.score());
        }
        CategoryChart chart = new CategoryChartBuilder().width(WIDTH).height(HEIGHT)
            .title(q.id().toUpperCase(Locale.ROOT) + " throughput: " + q.title())
            .xAxisTitle("parameters").yAxisTitle((BenchmarkResult.PRIMARY.equals(metric) ? "" : metric + ", ") + unit)
            .build();
        style(chart);
        List<String> x = new ArrayList<>(categories);
        for (Map.Entry<String, Map<String, Double>> s : series.entrySet()) {
            List<Double> y = new ArrayList<>();
            for (String c : x) {
                y.add(s.getValue().getOrDefault(c, 0.0));
            }
            chart.addSeries(s.getKey(), x, y);
        }
        save(chart, file);
    }

    private static void style(CategoryChart chart) {
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        chart.getStyler().setXAxisLabelRotation(30);
        chart.getStyler().setYAxisDecimalPattern("#,##0.###");
        chart.getStyler().setChartBackgroundColor(java.awt.Color.WHITE);
    }

    private static void save(CategoryChart chart, Path file) throws IOException {
        try (OutputStream out = Files.newOutputStream(file)) {
            BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG);
        }
    }

    private static String num(double v) {
        if (Double.isNaN(v)) {
            return "—";
        }
        double a = Math.abs(v);
        if (a >= 1e6) {
            return String.format(Locale.ROOT, "%.3g M", v / 1e6);
        }
        if (a >= 1000) {
            return String.format(Locale.ROOT, "%,.0f", v);
        }
        return String.format(Locale.ROOT, "%.3f", v);
    }

    private static String bytes(double v) {
        return Double.isNaN(v) ? "—" : String.format(Locale.ROOT, "%.3f", v);
    }

    private static String pct(double v) {
        return String.format(Locale.ROOT, "%.0f%%", v * 100);
    }

    private static String signedPct(double v) {
        return Double.isNaN(v) || Double.isInfinite(v) ? "—" : String.format(Locale.ROOT, "%+.1f%%", v * 100);
    }

    private static String met(Boolean met) {
        return met == null ? "—" : met ? "yes" : "no";
    }
}

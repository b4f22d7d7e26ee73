package io.vringj.perf.regress;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.AnnotationLine;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

/**
 * Writes a run's report directory:
 * <pre>
 *   report.md              verdict and why, ratios (this run, baseline, spread, decision), allocation (Q7), throughputs
 *   qN[-group].png         one chart per question (Q1: one per peer compared), at most 8 ratios each:
 *                          this run beside the baseline, the interquartile range as error bars, the target as a line
 *   jmh-result.json        the raw JMH results (written by the runner)
 * </pre>
 * Charts are drawn with XChart as PNG; a chart whose values span more than 10x has a logarithmic
 * ratio axis.
 */
public final class ReportWriter {
    /** The Markdown report's file name. */
    public static final String REPORT = "report.md";
    /** The raw JMH JSON's file name. */
    public static final String RAW_JSON = "jmh-result.json";
    /** The most ratios one chart shows; a question with more gets one chart per comparison. */
    public static final int MAX_BARS = 8;

    private static final int WIDTH = 900;
    private static final int HEIGHT = 520;

    private ReportWriter() {
    }

    /**
     * What a report says about its run.
     *
     * @param profile the profile measured
     * @param recorded when, ISO-8601
     * @param machine where
     * @param load how busy the machine was while measuring
     * @param note free text (e.g. other load on the machine), may be empty
     * @param baselineFile the baseline compared with, as given
     * @param baseline its contents, or {@code null} if there was none
     * @param entry the baseline's entry for this machine, or {@code null}
     * @param judgement the verdict and why
     */
    public record RunInfo(Profile profile, String recorded, Machine machine, MachineLoad load, String note,
                          String baselineFile, Baseline baseline, Baseline.Entry entry, Verdict.Judgement judgement) {
    }

    /**
     * Writes the Markdown report and the charts.
     *
     * @param dir the report directory (created if missing)
     * @param info about the run
     * @param allRounds the run's results, rounds one after the other
     * @param checks the decision on each tracked figure
     * @return the Markdown file written
     * @throws IOException if a file cannot be written
     */
    public static Path write(Path dir, RunInfo info, List<BenchmarkResult> allRounds, List<Check> checks)
        throws IOException {
        Files.createDirectories(dir);
        // throughputs are shown for the median round of each benchmark
        List<BenchmarkResult> results = Rounds.medianResults(allRounds);
        List<String> charts = new ArrayList<>();
        for (Map.Entry<String, List<Check>> chart : chartGroups(checks).entrySet()) {
            String name = chart.getKey() + ".png";
            writeRatioChart(dir.resolve(name), chart.getKey(), chart.getValue());
            charts.add(name);
        }
        Path md = dir.resolve(REPORT);
        Files.writeString(md, markdown(info, results, checks, charts));
        return md;
    }

    /**
     * @param checks a run's checks
     * @return the measured ratios grouped into charts, by chart name: one per question ({@code q3}),
     *     or for a question with more than {@link #MAX_BARS} ratios one per comparison
     *     ({@code q1-vringj-vs-agrona}, the ratio id's middle part)
     */
    static Map<String, List<Check>> chartGroups(List<Check> checks) {
        Map<String, List<Check>> groups = new LinkedHashMap<>();
        for (Question q : Question.values()) {
            List<Check> ratios = checks.stream()
                .filter(c -> c.question() == q && c.kind() == Check.Kind.RATIO && c.run().measured()).toList();
            if (ratios.size() <= MAX_BARS) {
                if (!ratios.isEmpty()) {
                    groups.put(q.id(), ratios);
                }
                continue;
            }
            for (Check c : ratios) {
                String[] parts = c.id().split("\\.");
                String group = parts.length > 1 ? q.id() + "-" + parts[1] : q.id();
                groups.computeIfAbsent(group, k -> new ArrayList<>()).add(c);
            }
        }
        return groups;
    }

    /**
     * @param info about the run
     * @param results the run's results
     * @param checks the decisions
     * @param charts chart file names to link
     * @return the Markdown text
     */
    static String markdown(RunInfo info, List<BenchmarkResult> results, List<Check> checks, List<String> charts) {
        StringBuilder sb = new StringBuilder();
        sb.append("# vringj performance report\n\n");
        sb.append("- profile: ").append(info.profile().id()).append(" (").append(info.profile().describe())
            .append("; peers back to back within each round; each ratio is the median of its per-round values,")
            .append(" its spread the interquartile range)\n");
        sb.append("- recorded: ").append(info.recorded()).append('\n');
        sb.append("- machine: ").append(info.machine().describe()).append('\n');
        sb.append("- while measuring: ").append(info.load().describe()).append('\n');
        if (!info.note().isEmpty()) {
            sb.append("- note: ").append(info.note()).append('\n');
        }
        if (info.baseline() == null) {
            sb.append("- baseline: none at ").append(info.baselineFile()).append('\n');
        } else {
            sb.append("- baseline: ").append(info.baselineFile()).append(", entries for: ")
                .append(info.baseline().entries().stream().map(e -> e.machine().describe())
                    .collect(java.util.stream.Collectors.joining("; "))).append('\n');
            if (info.entry() == null) {
                sb.append("- this machine's entry: none (figures are shown, not judged)\n");
            } else {
                sb.append("- this machine's entry: recorded ").append(info.entry().recorded()).append(" on ")
                    .append(info.entry().machine().describe());
                if (!info.entry().note().isEmpty()) {
                    sb.append(" (").append(info.entry().note()).append(')');
                }
                sb.append('\n');
            }
        }
        sb.append("- rule: a ratio regresses when this run's upper quartile is below its regression line, the")
            .append(" baseline's lower quartile × (1 − tolerance); tolerance ")
            .append(pct(info.profile().tolerance(false))).append(" for single-thread ratios, ")
            .append(pct(info.profile().tolerance(true))).append(" for two-thread ones. It passes when this run's")
            .append(" lower quartile is at or above the line, however wide its spread; a ratio whose middle half")
            .append(" straddles the line is too noisy to judge; more than ").append(pct(Checks.NOISY_SHARE_LIMIT))
            .append(" of them, or a busy machine, make the whole run too noisy. A hot path may allocate its")
            .append(" baseline + ").append(pct(Checks.ALLOCATION_GROWTH)).append(" + a slack (")
            .append(Checks.ALLOCATION_SLACK).append(" B/op, more for slow benchmarks)\n");
        sb.append("\n**Verdict: ").append(info.judgement().verdict().label()).append("** (exit status ")
            .append(info.judgement().verdict().exitCode()).append(")\n\n");
        for (String reason : info.judgement().reasons()) {
            sb.append("- ").append(reason).append('\n');
        }
        if (!info.judgement().reasons().isEmpty()) {
            sb.append('\n');
        }

        sb.append("## Ratios (higher is better)\n\n");
        sb.append("| question | ratio | this run | its middle half | baseline | its middle half | regression line |")
            .append(" change | decision | target | target met |\n");
        sb.append("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|\n");
        for (Check c : checks) {
            if (c.kind() != Check.Kind.RATIO) {
                continue;
            }
            sb.append("| ").append(c.question().id()).append(" | ").append(c.description()).append(" | ")
                .append(num(c.current())).append(" | ").append(spread(c.run())).append(" | ")
                .append(num(c.baseline())).append(" | ").append(spread(c.base())).append(" | ")
                .append(num(c.regressionLine())).append(" | ").append(signedPct(c.change())).append(" | ").append(decision(c, info)).append(" | ")
                .append(Double.isNaN(c.target()) ? "—" : "≥ " + num(c.target())).append(" | ")
                .append(met(c.targetMet())).append(" |\n");
        }

        sb.append("\n## Allocation on the hot paths (question 7; target 0 B/op)\n\n");
        sb.append("| benchmark | B/op | baseline | slack | decision |\n|---|---:|---:|---:|---|\n");
        for (Check c : checks) {
            if (c.kind() == Check.Kind.ALLOCATION) {
                sb.append("| ").append(c.id()).append(" | ").append(bytes(c.current())).append(" | ")
                    .append(bytes(c.baseline())).append(" | ").append(bytes(c.tolerance())).append(" | ")
                    .append(decision(c, info)).append(" |\n");
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

    /**
     * Draws one chart: per ratio, this run's median and the baseline's side by side with half
     * their interquartile ranges either side as error bars (XChart's error bars are symmetric; the
     * report's table gives both quartiles), and each target as a horizontal red line. When the
     * values span more than 10x the axis is logarithmic: bars rise from 1 (above: better than
     * the peer, below: worse) on a log10 scale labelled in ratios.
     */
    private static void writeRatioChart(Path file, String name, List<Check> ratios) throws IOException {
        Question q = ratios.get(0).question();
        String prefix = commonPrefix(ratios);
        String title = q.id().toUpperCase(Locale.ROOT) + ": " + (name.contains("-") ? prefix.substring(
            prefix.indexOf('.') + 1).replaceAll("\\.$", "") + " (" + q.title() + ")" : q.title());
        double min = Double.POSITIVE_INFINITY;
        double max = 0;
        for (Check c : ratios) {
            for (double v : new double[] {c.run().low(), c.run().high(), c.base().low(), c.base().high(), c.target()}) {
                if (v > 0) {
                    min = Math.min(min, v);
                    max = Math.max(max, v);
                }
            }
        }
        boolean log = max > 10 * min;
        List<String> names = new ArrayList<>();
        List<Double> current = new ArrayList<>();
        List<Double> currentError = new ArrayList<>();
        List<Double> baseline = new ArrayList<>();
        List<Double> baselineError = new ArrayList<>();
        Map<Double, List<String>> targets = new LinkedHashMap<>();
        boolean anyBaseline = false;
        for (Check c : ratios) {
            String label = c.id().substring(prefix.length());
            names.add(label.isEmpty() ? c.id() : label);
            current.add(scaled(c.current(), log));
            currentError.add(errorBar(c.run(), log));
            anyBaseline |= c.base().measured();
            baseline.add(scaled(c.baseline(), log));
            baselineError.add(errorBar(c.base(), log));
            if (!Double.isNaN(c.target())) {
                targets.computeIfAbsent(c.target(), k -> new ArrayList<>()).add(label.isEmpty() ? c.id() : label);
            }
        }
        StringBuilder targetNote = new StringBuilder();
        targets.forEach((t, which) -> targetNote.append(targetNote.isEmpty() ? "red line: target " : "; ")
            .append(String.format(Locale.ROOT, "≥ %.2f", t)).append(targets.size() > 1 || which.size() < ratios.size()
                ? " for " + String.join(", ", which) : ""));
        CategoryChart chart = new CategoryChartBuilder().width(WIDTH).height(HEIGHT).title(title)
            .xAxisTitle(targetNote.toString())
            .yAxisTitle("ratio, higher is better" + (log ? " (log scale)" : "")).build();
        style(chart);
        // the axis spans every value, quartile and target, so no target line falls off the chart
        if (log) {
            chart.getStyler().setyAxisTickLabelsFormattingFunction(v -> ratioLabel(Math.pow(10, v)));
            chart.getStyler().setYAxisMin(Math.min(0, Math.log10(min)) - 0.1);
            chart.getStyler().setYAxisMax(Math.max(0, Math.log10(max)) + 0.1);
        } else if (max > 0) {
            chart.getStyler().setYAxisMin(0.0);
            chart.getStyler().setYAxisMax(max * 1.1);
        }
        chart.addSeries("this run (median; error bars: ± half the interquartile range)", names, current, currentError);
        if (anyBaseline) {
            chart.addSeries("baseline, this machine", names, baseline, baselineError);
        }
        for (double t : targets.keySet()) {
            chart.addAnnotation(new AnnotationLine(scaled(t, log), false, false));
        }
        chart.getStyler().setAnnotationLineColor(java.awt.Color.RED);
        chart.getStyler().setAnnotationLineStroke(new java.awt.BasicStroke(2f));
        save(chart, file);
    }

    /** A value on the chart's axis: itself, or its log10 on a log chart; a missing value (NaN) draws no bar. */
    private static double scaled(double v, boolean log) {
        if (Double.isNaN(v) || (log && v <= 0)) {
            return Double.NaN;
        }
        return log ? Math.log10(v) : v;
    }

    /** Half the interquartile range (XChart's error bars are symmetric), in the axis's units; 0 if unknown. */
    private static double errorBar(Spread s, boolean log) {
        if (!s.measured() || !s.hasQuartiles()) {
            return 0.0;
        }
        if (log) {
            return s.low() > 0 ? (Math.log10(s.high()) - Math.log10(s.low())) / 2 : 0.0;
        }
        return s.iqr() / 2;
    }

    private static String ratioLabel(double v) {
        return v >= 10 ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%.2g", v);
    }

    private static String commonPrefix(List<Check> checks) {
        String prefix = checks.get(0).id();
        for (Check c : checks) {
            while (!c.id().startsWith(prefix)) {
                prefix = prefix.substring(0, prefix.length() - 1);
            }
        }
        // cut at a dot so labels start with a whole part
        int dot = prefix.lastIndexOf('.');
        return checks.size() == 1 || dot < 0 ? checks.get(0).id().substring(0, checks.get(0).id().indexOf('.') + 1)
            : prefix.substring(0, dot + 1);
    }

    private static void style(CategoryChart chart) {
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        chart.getStyler().setLegendLayout(Styler.LegendLayout.Horizontal);
        chart.getStyler().setXAxisLabelRotation(0);
        chart.getStyler().setYAxisDecimalPattern("#,##0.##");
        chart.getStyler().setChartBackgroundColor(java.awt.Color.WHITE);
        chart.getStyler().setErrorBarsColorSeriesColor(false);
        chart.getStyler().setErrorBarsColor(java.awt.Color.BLACK);
        chart.getStyler().setSeriesColors(new java.awt.Color[] {new java.awt.Color(0x1f77b4),
            new java.awt.Color(0xaaaaaa)});
    }

    private static void save(CategoryChart chart, Path file) throws IOException {
        try (OutputStream out = Files.newOutputStream(file)) {
            BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG);
        }
    }

    /**
     * A row's decision as the report shows it. In a run too noisy to judge no row is judged, so a
     * figure past its line says so without the word REGRESSION, which only a judged run may use.
     */
    private static String decision(Check c, RunInfo info) {
        if (c.status() == Check.Status.REGRESSION && info.judgement().verdict() == Verdict.TOO_NOISY) {
            return "past its line, not judged (run too noisy)";
        }
        return c.status().label();
    }

    /** The middle half as its two ends, lower and upper quartile: it need not be centred on the median. */
    private static String spread(Spread s) {
        return s.hasQuartiles() ? num(s.low()) + " – " + num(s.high()) : "—";
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

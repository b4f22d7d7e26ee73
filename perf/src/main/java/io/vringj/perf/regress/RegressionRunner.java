package io.vringj.perf.regress;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.openjdk.jmh.profile.GCProfiler;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.results.format.ResultFormatFactory;
import org.openjdk.jmh.results.format.ResultFormatType;
import org.openjdk.jmh.runner.BenchmarkList;
import org.openjdk.jmh.runner.BenchmarkListEntry;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.format.OutputFormat;
import org.openjdk.jmh.runner.format.OutputFormatFactory;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;

/**
 * The regression run: every selected question's benchmark class under one {@link Profile}, with
 * JMH's {@code gc} profiler on (question 7), then the verdict against the baseline and the report.
 *
 * <pre>
 *   for each round, for each question: JMH (forks get the flags their @Fork declares) → RunResults
 *   all rounds → report/jmh-result.json → BenchmarkResults → Checks (medians over rounds) vs baseline
 *   a regression? re-measure the benchmarks behind it (confirmations) and judge the new figures
 *   → report.md + charts; exit 0 (pass) / 1 (regression)
 * </pre>
 */
public final class RegressionRunner {
    /** Exit status of a run without regressions. */
    public static final int PASS = 0;
    /** Exit status of a run with at least one regression. */
    public static final int REGRESSION = 1;

    private RegressionRunner() {
    }

    /**
     * What to run and where to put it.
     *
     * @param profile how long to measure
     * @param questions which questions (every one by default)
     * @param include a regular expression further restricting benchmark names, or {@code null}
     * @param reportDir where the report goes
     * @param baselineFile the baseline to compare with (and to write with {@code updateBaseline})
     * @param updateBaseline whether to write this run's figures as the new baseline
     * @param note free text for the report and baseline (e.g. what else the machine was running)
     * @param verbose whether to show JMH's own output instead of one line per benchmark
     * @param confirmations how many times to re-measure the benchmarks behind a regression before
     *     believing it (their new figures replace the old ones); 0 believes the first run
     */
    public record Settings(Profile profile, List<Question> questions, String include, Path reportDir,
                           Path baselineFile, boolean updateBaseline, String note, boolean verbose,
                           int confirmations) {
        /**
         * @param profile how long to measure
         * @param questions which questions
         * @param include a name filter, or {@code null}
         * @param reportDir where the report goes
         * @param baselineFile the baseline
         * @param updateBaseline whether to write a new baseline
         * @param note free text
         * @param verbose JMH's own output
         * @param confirmations re-measurements of a regression, at least 0
         */
        public Settings {
            if (confirmations < 0) {
                throw new IllegalArgumentException("confirmations " + confirmations + " must be at least 0");
            }
            Objects.requireNonNull(profile, "profile");
            questions = List.copyOf(questions);
            Objects.requireNonNull(reportDir, "reportDir");
            Objects.requireNonNull(baselineFile, "baselineFile");
            note = Objects.requireNonNullElse(note, "");
            if (include != null) {
                Pattern.compile(include);
            }
        }
    }

    /**
     * Runs the benchmarks, writes the raw JSON, then {@link #evaluate}s it.
     *
     * @param settings what to run
     * @param out progress and the verdict go here
     * @return {@link #PASS} or {@link #REGRESSION}
     * @throws RunnerException if JMH fails (a benchmark threw, a fork died)
     * @throws IOException if the report cannot be written
     */
    public static int run(Settings settings, PrintStream out) throws RunnerException, IOException {
        Files.createDirectories(settings.reportDir());
        Instant start = Instant.now();
        int rounds = settings.profile().rounds();
        List<Map<String, RunResult>> byRound = new ArrayList<>();
        for (int round = 1; round <= rounds; round++) {
            Map<String, RunResult> all = new LinkedHashMap<>();
            byRound.add(all);
            int index = 0;
            for (Question q : settings.questions()) {
                index++;
                String header = String.format(Locale.ROOT, "[round %d/%d, %s %d/%d] %s", round, rounds, q.id(), index,
                    settings.questions().size(), q.title());
                measure(q, includeRegex(q, settings.include()), header, settings, out, all);
            }
        }
        Path raw = settings.reportDir().resolve(ReportWriter.RAW_JSON);
        List<BenchmarkResult> results = writeRaw(byRound, raw);
        Baseline baseline = Files.exists(settings.baselineFile()) ? Baseline.read(settings.baselineFile()) : null;
        for (int attempt = 1; attempt <= settings.confirmations() && baseline != null && !settings.updateBaseline();
             attempt++) {
            Map<Question, Set<String>> suspects = suspects(Checks.compare(results, baseline, settings.profile()));
            if (suspects.isEmpty()) {
                break;
            }
            out.printf("confirming %d suspected regression(s), attempt %d of %d: re-measuring %s in every round%n",
                suspects.values().stream().mapToInt(Set::size).sum(), attempt, settings.confirmations(), suspects);
            for (int round = 1; round <= rounds; round++) {
                for (Map.Entry<Question, Set<String>> e : suspects.entrySet()) {
                    String methods = e.getValue().stream().map(Pattern::quote).collect(Collectors.joining("|"));
                    String regex = "^" + Pattern.quote(e.getKey().benchmarkClass()) + "\\.(?:" + methods + ")$";
                    measure(e.getKey(), regex, "[confirm round " + round + "/" + rounds + ", " + e.getKey().id() + "]",
                        settings, out, byRound.get(round - 1));
                }
            }
            results = writeRaw(byRound, raw);
        }
        out.printf("JMH finished in %d s; raw results in %s%n", ChronoUnit.SECONDS.between(start, Instant.now()), raw);
        return evaluate(results, settings, out);
    }

    /** Runs one question's benchmarks matching {@code regex}; results replace earlier ones of the same name and params. */
    private static void measure(Question q, String regex, String header, Settings settings, PrintStream out,
                                Map<String, RunResult> all) throws RunnerException {
        Profile p = settings.profile();
        if (!isBuilt(q)) {
            out.printf("%s: %s is not in this build; skipped%n", header, q.simpleClassName());
            return;
        }
        int runs = countRuns(regex);
        if (runs == 0) {
            out.printf("%s: nothing matches the include filter; skipped%n", header);
            return;
        }
        out.printf("%s: %d benchmark runs, about %d s%n", header, runs, p.estimateSeconds(runs));
        ChainedOptionsBuilder options = new OptionsBuilder().include(regex)
            .forks(p.forks())
            .warmupIterations(p.warmupIterations()).warmupTime(TimeValue.milliseconds(p.warmupMillis()))
            .measurementIterations(p.measurementIterations())
            .measurementTime(TimeValue.milliseconds(p.measurementMillis()))
            .addProfiler(GCProfiler.class)
            .shouldFailOnError(true);
        OutputFormat format = settings.verbose() ? OutputFormatFactory.createFormatInstance(out, VerboseMode.NORMAL)
            : new ProgressOutput(out, q, runs, p.estimateSeconds(1));
        for (RunResult r : new Runner(options.build(), format).run()) {
            all.put(key(r), r);
        }
    }

    private static String key(RunResult r) {
        StringBuilder sb = new StringBuilder(r.getParams().getBenchmark());
        r.getParams().getParamsKeys().stream().sorted()
            .forEach(k -> sb.append(' ').append(k).append('=').append(r.getParams().getParam(k)));
        return sb.toString();
    }

    /** Writes every round's results, one round after the other (see {@link Rounds#split}), and reads them back. */
    private static List<BenchmarkResult> writeRaw(List<Map<String, RunResult>> byRound, Path raw) throws IOException {
        List<RunResult> all = new ArrayList<>();
        for (Map<String, RunResult> round : byRound) {
            all.addAll(round.values());
        }
        ResultFormatFactory.getInstance(ResultFormatType.JSON, raw.toString()).writeOut(all);
        return JmhJson.read(raw);
    }

    /**
     * @param checks a comparison with the baseline
     * @return per question, the benchmark methods or groups behind its regressions (both sides of a ratio)
     */
    static Map<Question, Set<String>> suspects(List<Check> checks) {
        Map<Question, Set<String>> suspects = new TreeMap<>();
        for (Check c : checks) {
            if (c.status() != Check.Status.REGRESSION) {
                continue;
            }
            Set<String> names = suspects.computeIfAbsent(c.question(), k -> new TreeSet<>());
            if (c.kind() == Check.Kind.ALLOCATION) {
                names.add(methodOf(c.id().substring(0, c.id().indexOf('['))));
            } else {
                for (RatioSpec spec : Ratios.all()) {
                    if (spec.id().equals(c.id())) {
                        names.add(methodOf(spec.numerator().benchmark()));
                        names.add(methodOf(spec.denominator().benchmark()));
                    }
                }
            }
        }
        return suspects;
    }

    private static String methodOf(String shortName) {
        return shortName.substring(shortName.indexOf('.') + 1);
    }

    /**
     * Compares results with the baseline, writes the report and, if asked, the new baseline.
     *
     * @param results the results (from this run, or a JSON file given to the {@code report} command)
     * @param settings profile, baseline, report directory, whether to update the baseline
     * @param out the verdict goes here
     * @return {@link #PASS} or {@link #REGRESSION} (always {@link #PASS} when the baseline is updated)
     * @throws IOException if a file cannot be read or written
     */
    public static int evaluate(List<BenchmarkResult> results, Settings settings, PrintStream out) throws IOException {
        Baseline baseline = Files.exists(settings.baselineFile()) ? Baseline.read(settings.baselineFile()) : null;
        if (baseline != null && baseline.profile() != settings.profile()) {
            throw new IllegalArgumentException("baseline " + settings.baselineFile() + " was recorded with the "
                + baseline.profile().id() + " profile; this run is " + settings.profile().id()
                + ": compare like with like (--baseline)");
        }
        List<Check> checks = Checks.compare(results, baseline, settings.profile());
        String recorded = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        String machine = Machine.describe();
        Path md = ReportWriter.write(settings.reportDir(), new ReportWriter.RunInfo(settings.profile(), recorded,
            machine, settings.note(), settings.baselineFile().toString(), baseline), results, checks);
        printVerdict(checks, out);
        out.println("report: " + md);
        if (settings.updateBaseline()) {
            Baseline next = Checks.baselineOf(results, settings.profile(), recorded, machine, settings.note(), baseline);
            next.write(settings.baselineFile());
            out.println("baseline written: " + settings.baselineFile() + " (" + next.ratios().size() + " ratios, "
                + next.allocation().size() + " allocation figures)");
            return PASS;
        }
        if (baseline == null) {
            out.println("no baseline at " + settings.baselineFile() + "; record one with --update-baseline");
        }
        return Checks.anyRegression(checks) ? REGRESSION : PASS;
    }

    private static void printVerdict(List<Check> checks, PrintStream out) {
        out.println("ratio                                      this run   baseline  status      target");
        for (Check c : checks) {
            if (c.kind() == Check.Kind.RATIO && c.status() != Check.Status.MISSING) {
                Boolean met = c.targetMet();
                out.printf(Locale.ROOT, "%-40s %10.3f %10s  %-10s  %s%n", c.id(), c.current(),
                    Double.isNaN(c.baseline()) ? "-" : String.format(Locale.ROOT, "%.3f", c.baseline()), c.status(),
                    met == null ? "-" : String.format(Locale.ROOT, ">= %.3f %s", c.target(), met ? "met" : "missed"));
            }
        }
        int pass = 0;
        int fresh = 0;
        int missing = 0;
        for (Check c : checks) {
            switch (c.status()) {
                case PASS -> pass++;
                case NEW -> fresh++;
                case MISSING -> missing++;
                case REGRESSION -> out.printf("REGRESSION %s: %s (baseline %s, tolerance %s)%n", c.id(),
                    fmt(c.current()), fmt(c.baseline()), c.kind() == Check.Kind.RATIO
                        ? String.format(java.util.Locale.ROOT, "%.0f%%", c.tolerance() * 100) : c.tolerance() + " B/op");
                default -> throw new IllegalStateException("unknown status " + c.status());
            }
        }
        long regressions = checks.stream().filter(c -> c.status() == Check.Status.REGRESSION).count();
        out.printf("%d passed, %d regressed, %d new, %d not measured%n", pass, regressions, fresh, missing);
    }

    private static String fmt(double v) {
        return String.format(java.util.Locale.ROOT, "%.4g", v);
    }

    private static boolean isBuilt(Question q) {
        try {
            Class.forName(q.benchmarkClass(), false, RegressionRunner.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    /**
     * @param q a question
     * @param include a further filter on benchmark names, or {@code null}
     * @return one JMH include pattern matching the question's benchmarks that also match the filter
     *     (JMH ORs several includes, so the filter goes into a look-ahead)
     */
    static String includeRegex(Question q, String include) {
        String cls = Pattern.quote(q.benchmarkClass()) + "\\.";
        return include == null ? "^" + cls : "^(?=.*(?:" + include + "))" + cls;
    }

    private static int countRuns(String regex) {
        int runs = 0;
        OutputFormat silent = OutputFormatFactory.createFormatInstance(System.out, VerboseMode.SILENT);
        for (BenchmarkListEntry e : BenchmarkList.defaultList().find(silent, List.of(regex), List.of())) {
            int combos = 1;
            Map<String, String[]> params = e.getParams().orElse(Map.of());
            for (String[] values : params.values()) {
                combos *= values.length;
            }
            runs += combos;
        }
        return runs;
    }
}

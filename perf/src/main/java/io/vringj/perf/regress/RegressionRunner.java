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
 * JMH's {@code gc} profiler on (question 7), then the verdict against this machine's baseline
 * entry and the report.
 *
 * <pre>
 *   for each question, for each round, for each parameter combination:
 *       the peers, one short fork each, back to back   (forks get the flags their @Fork declares
 *                                                        plus {@link #FORK_FLAGS})
 *   except the one-thread ratios ({@link RatioSpec#interleaved}): JMH once (for allocation), then
 *       in each round one JVM per ratio whose two sides take turns in 10 ms slices ({@link Interleaved});
 *       a batch with a benchmark that another ratio takes from JMH (q6's two-thread pools) runs every round
 *   the load average is sampled before every batch; steal time is read over the whole run
 *   all rounds → report/jmh-result.json → BenchmarkResults → Checks (median and IQR over rounds)
 *       vs this machine's entry in the baseline
 *   a regression? re-measure the benchmarks behind it (confirmations) and judge the new figures
 *   → report.md + charts; exit status from the {@link Verdict}
 * </pre>
 */
public final class RegressionRunner {
    /**
     * JVM flags every benchmark fork gets, before its own: JMH's harness reads field offsets
     * through {@code sun.misc.Unsafe}, which JDK 24+ reports on every fork unless allowed.
     */
    public static final List<String> FORK_FLAGS = List.of("--sun-misc-unsafe-memory-access=allow");

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
     * @param updateBaseline whether to write this run's figures as this machine's baseline entry
     * @param note free text for the report and baseline (e.g. what else the machine was running)
     * @param verbose whether to show JMH's own output instead of one line per batch
     * @param confirmations how many times to re-measure the benchmarks behind a regression before
     *     believing it (their new figures replace the old ones); 0 believes the first run
     * @param acceptNoise whether {@code updateBaseline} may record figures of a run that was too noisy to judge
     */
    public record Settings(Profile profile, List<Question> questions, String include, Path reportDir,
                           Path baselineFile, boolean updateBaseline, String note, boolean verbose,
                           int confirmations, boolean acceptNoise) {
        /**
         * @param profile how long to measure
         * @param questions which questions
         * @param include a name filter, or {@code null}
         * @param reportDir where the report goes
         * @param baselineFile the baseline
         * @param updateBaseline whether to write a new baseline entry
         * @param note free text
         * @param verbose JMH's own output
         * @param confirmations re-measurements of a regression, at least 0
         * @param acceptNoise record a baseline even from a noisy run
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
     * The benchmarks of one question that run at one parameter combination: the peers a ratio
     * compares, measured back to back.
     *
     * @param params the parameter values (empty for benchmarks without parameters)
     * @param benchmarks full benchmark names
     */
    record Batch(Map<String, String> params, List<String> benchmarks) {
        /** @return {@code name=value, ...}, or {@code no parameters} */
        String label() {
            return params.isEmpty() ? "no parameters" : params.entrySet().stream()
                .map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(", "));
        }
    }

    /**
     * @param profile the profile
     * @param forks JMH forks in the whole run
     * @param pairRuns interleaved pairs in the whole run
     * @return the whole run's estimated wall-clock seconds, rounded up once (not once a fork)
     */
    static long estimateSeconds(Profile profile, int forks, int pairRuns) {
        return profile.estimateSeconds(forks) + profile.estimateInterleavedSeconds(pairRuns);
    }

    /**
     * The time-left estimate: counts the forks and pairs done and prices them as the whole run's
     * estimate does (each total rounded once), so what is done never exceeds the total and the
     * time left never goes below zero.
     */
    static final class Clock {
        private final Instant start = Instant.now();
        private final Profile profile;
        private final long total;
        private int forksDone;
        private int pairsDone;

        /**
         * @param profile the profile that prices forks and pairs
         * @param forks JMH forks in the whole run
         * @param pairs interleaved pairs in the whole run
         */
        Clock(Profile profile, int forks, int pairs) {
            this.profile = profile;
            this.total = estimateSeconds(profile, forks, pairs);
        }

        /** @return the whole run's estimate in seconds */
        long total() {
            return total;
        }

        /** @param forks JMH forks just finished */
        void forksDone(int forks) {
            forksDone += forks;
        }

        /** One interleaved pair just finished. */
        void pairDone() {
            pairsDone++;
        }

        /**
         * @param elapsedSeconds wall-clock seconds since the run began
         * @return the estimated seconds left: the work left, at the pace of the work done so far
         *     (the estimate itself before anything is done); never below zero
         */
        long secondsLeft(long elapsedSeconds) {
            long done = Math.min(total, estimateSeconds(profile, forksDone, pairsDone));
            return done == 0 ? total : (total - done) * elapsedSeconds / done;
        }

        String left() {
            long left = secondsLeft(ChronoUnit.SECONDS.between(start, Instant.now()));
            return String.format(Locale.ROOT, "~%dm%02ds left", left / 60, left % 60);
        }
    }

    /**
     * A one-thread ratio, measured by {@link Interleaved}: both sides in one JVM, taking turns.
     *
     * @param question its question
     * @param ratioId the ratio's id
     * @param numerator the numerator's benchmark method
     * @param denominator the denominator's
     * @param params the benchmark parameters both sides run at (the ratio's, e.g. q6's {@code bytes});
     *     empty for benchmarks without parameters
     */
    record Pair(Question question, String ratioId, String numerator, String denominator, Map<String, String> params) {
        /**
         * @param question its question
         * @param ratioId the ratio's id
         * @param numerator the numerator's method
         * @param denominator the denominator's
         * @param params the parameters, in name order
         */
        Pair {
            params = java.util.Collections.unmodifiableMap(new TreeMap<>(params));
        }

        /**
         * A pair without parameters.
         *
         * @param question its question
         * @param ratioId the ratio's id
         * @param numerator the numerator's method
         * @param denominator the denominator's
         */
        Pair(Question question, String ratioId, String numerator, String denominator) {
            this(question, ratioId, numerator, denominator, Map.of());
        }

        /** @return how progress lines name it */
        String label() {
            return numerator + " vs " + denominator + (params.isEmpty() ? "" : ", " + params.entrySet().stream()
                .map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(", "))) + ", interleaved";
        }
    }

    /**
     * @param q a question
     * @param include a further filter on benchmark names, or {@code null}
     * @return its {@link RatioSpec#interleaved} ratios with a side the filter lets through (a ratio
     *     needs both), in ratio order, each at its parameters
     */
    static List<Pair> pairs(Question q, String include) {
        Pattern filter = Pattern.compile(includeRegex(q, include));
        String cls = q.benchmarkClass() + ".";
        List<Pair> pairs = new ArrayList<>();
        for (RatioSpec spec : Ratios.all()) {
            if (spec.question() != q || !spec.interleaved()) {
                continue;
            }
            String num = methodOf(spec.numerator().benchmark());
            String den = methodOf(spec.denominator().benchmark());
            if (filter.matcher(cls + num).find() || filter.matcher(cls + den).find()) {
                Map<String, String> params = new TreeMap<>(spec.numerator().params());
                params.remove(Ratios.PAIRED_WITH);
                pairs.add(new Pair(q, spec.id(), num, den, params));
            }
        }
        return pairs;
    }

    /**
     * Runs the benchmarks, writes the raw JSON, then {@link #evaluate}s it.
     *
     * @param settings what to run
     * @param out progress and the verdict go here
     * @return the verdict's exit status ({@link Verdict#exitCode()})
     * @throws RunnerException if JMH fails (a benchmark threw, a fork died)
     * @throws IOException if the report cannot be written
     */
    public static int run(Settings settings, PrintStream out) throws RunnerException, IOException {
        Files.createDirectories(settings.reportDir());
        Instant start = Instant.now();
        int rounds = settings.profile().rounds();
        MachineLoad.Monitor monitor = new MachineLoad.Monitor();
        Map<Question, List<Batch>> plan = new LinkedHashMap<>();
        Map<Question, List<Pair>> pairPlan = new LinkedHashMap<>();
        int forks = 0;
        int pairRuns = 0;
        for (Question q : settings.questions()) {
            if (!isBuilt(q)) {
                out.printf("%s %s: %s is not in this build; skipped%n", q.id(), q.title(), q.simpleClassName());
                continue;
            }
            List<Batch> batches = restrict(q, settings.profile(), batches(includeRegex(q, settings.include())));
            if (batches.isEmpty()) {
                out.printf("%s %s: nothing matches the include filter; skipped%n", q.id(), q.title());
                continue;
            }
            plan.put(q, batches);
            forks += batches.stream().mapToInt(b -> jmhRounds(q, b, rounds) * b.benchmarks().size()).sum();
            List<Pair> pairs = pairs(q, settings.include());
            if (!pairs.isEmpty()) {
                pairPlan.put(q, pairs);
                pairRuns += rounds * pairs.size();
            }
        }
        Profile profile = settings.profile();
        Clock clock = new Clock(profile, forks, pairRuns);
        long estimate = clock.total();
        out.printf(Locale.ROOT, "%d benchmark forks and %d interleaved pairs in %d rounds (%s), about %d s; load average"
            + " now %s%n", forks, pairRuns, rounds, profile.describe(), estimate, fmt(Machine.loadAverage()));
        List<Map<String, RunResult>> byRound = new ArrayList<>();
        List<Map<String, BenchmarkResult>> pairsByRound = new ArrayList<>();
        for (int round = 0; round < rounds; round++) {
            byRound.add(new LinkedHashMap<>());
            pairsByRound.add(new LinkedHashMap<>());
        }
        for (Map.Entry<Question, List<Batch>> e : plan.entrySet()) {
            Question q = e.getKey();
            boolean allPaired = e.getValue().stream().allMatch(b -> jmhRounds(q, b, rounds) == 1);
            out.printf("%s %s (%s)%s%n", q.id(), q.title(), q.simpleClassName(), !pairPlan.containsKey(q) ? ""
                : allPaired ? ": ratios from interleaved pairs, JMH once for allocation"
                : ": one-thread ratios from interleaved pairs (their JMH once, for allocation), the rest from JMH");
            for (int round = 1; round <= rounds; round++) {
                for (Batch batch : e.getValue()) {
                    int jmhRounds = jmhRounds(q, batch, rounds);
                    if (round > jmhRounds) {
                        continue;
                    }
                    monitor.sample();
                    String header = String.format(Locale.ROOT, "[%s %s, %s] %s:", q.id(),
                        jmhRounds == 1 && rounds > 1 ? "JMH" : "round " + round + "/" + rounds, clock.left(),
                        batch.label());
                    measure(q, batch, header, settings, out, byRound.get(round - 1));
                    clock.forksDone(batch.benchmarks().size());
                }
                for (Pair pair : pairPlan.getOrDefault(q, List.of())) {
                    monitor.sample();
                    measurePair(pair, round, String.format(Locale.ROOT, "[%s round %d/%d, %s] %s:", q.id(), round,
                        rounds, clock.left(), pair.label()), profile, out, pairsByRound.get(round - 1));
                    clock.pairDone();
                }
            }
        }
        Path raw = settings.reportDir().resolve(ReportWriter.RAW_JSON);
        List<BenchmarkResult> results = writeRaw(byRound, pairsByRound, raw);
        Baseline baseline = Files.exists(settings.baselineFile()) ? Baseline.read(settings.baselineFile()) : null;
        Baseline.Entry entry = baseline == null ? null : baseline.entryFor(Machine.current()).orElse(null);
        for (int attempt = 1; attempt <= settings.confirmations() && entry != null && !settings.updateBaseline();
             attempt++) {
            List<Check> checks = Checks.compare(results, entry, settings.profile());
            Map<Question, Set<String>> suspects = suspects(checks);
            List<Pair> suspectPairs = suspectPairs(checks);
            if (suspects.isEmpty() && suspectPairs.isEmpty()) {
                break;
            }
            out.printf("confirming %d suspected regression(s), attempt %d of %d: re-measuring %s%s in every round%n",
                suspects.values().stream().mapToInt(Set::size).sum() + suspectPairs.size(), attempt,
                settings.confirmations(), suspects, suspectPairs.stream().map(Pair::ratioId).toList());
            for (Map.Entry<Question, Set<String>> s : suspects.entrySet()) {
                Question q = s.getKey();
                String methods = s.getValue().stream().map(Pattern::quote).collect(Collectors.joining("|"));
                List<Batch> batches = restrict(q, settings.profile(),
                    batches("^" + Pattern.quote(q.benchmarkClass()) + "\\.(?:" + methods + ")$"));
                for (int round = 1; round <= rounds; round++) {
                    for (Batch batch : batches) {
                        if (round > jmhRounds(q, batch, rounds)) {
                            continue;
                        }
                        monitor.sample();
                        measure(q, batch, String.format(Locale.ROOT, "[confirm %s round %d/%d] %s:", q.id(), round,
                            rounds, batch.label()), settings, out, byRound.get(round - 1));
                    }
                }
            }
            for (int round = 1; round <= rounds; round++) {
                for (Pair pair : suspectPairs) {
                    monitor.sample();
                    measurePair(pair, round, String.format(Locale.ROOT, "[confirm %s round %d/%d] %s:",
                        pair.question().id(),
                        round, rounds, pair.label()), profile, out, pairsByRound.get(round - 1));
                }
            }
            results = writeRaw(byRound, pairsByRound, raw);
        }
        out.printf("JMH finished in %d s; raw results in %s%n", ChronoUnit.SECONDS.between(start, Instant.now()), raw);
        return evaluate(results, monitor.finish(Runtime.getRuntime().availableProcessors()), settings, out);
    }

    /**
     * @param regex a JMH include pattern
     * @return the benchmarks it matches, grouped by parameter combination (the combinations in
     *     the order JMH lists them, benchmarks by name within each)
     */
    static List<Batch> batches(String regex) {
        OutputFormat silent = OutputFormatFactory.createFormatInstance(System.out, VerboseMode.SILENT);
        Map<Map<String, String>, Set<String>> grouped = new LinkedHashMap<>();
        for (BenchmarkListEntry e : BenchmarkList.defaultList().find(silent, List.of(regex), List.of())) {
            for (Map<String, String> combination : combinations(e.getParams().orElse(Map.of()))) {
                grouped.computeIfAbsent(combination, k -> new TreeSet<>()).add(e.getUsername());
            }
        }
        List<Batch> batches = new ArrayList<>();
        grouped.forEach((params, names) -> batches.add(new Batch(params, List.copyOf(names))));
        return batches;
    }

    /**
     * @param q the question the batches belong to
     * @param profile the profile being run
     * @param batches the question's batches
     * @return each batch with only the benchmarks the profile measures at its parameters
     *     ({@link Question#measures}); batches left empty are dropped
     */
    static List<Batch> restrict(Question q, Profile profile, List<Batch> batches) {
        List<Batch> kept = new ArrayList<>();
        for (Batch b : batches) {
            List<String> names = b.benchmarks().stream()
                .filter(n -> q.measures(profile, n.substring(n.lastIndexOf('.') + 1), b.params())).toList();
            if (!names.isEmpty()) {
                kept.add(new Batch(b.params(), names));
            }
        }
        return kept;
    }

    /**
     * @param params parameter names and the values each takes
     * @return every combination, the first parameter (in name order) varying slowest
     */
    static List<Map<String, String>> combinations(Map<String, String[]> params) {
        List<Map<String, String>> combos = new ArrayList<>();
        combos.add(new TreeMap<>());
        for (String name : new TreeSet<>(params.keySet())) {
            List<Map<String, String>> next = new ArrayList<>();
            for (Map<String, String> c : combos) {
                for (String value : params.get(name)) {
                    Map<String, String> m = new TreeMap<>(c);
                    m.put(name, value);
                    next.add(m);
                }
            }
            combos = next;
        }
        return combos;
    }

    /** Runs one batch (its peers back to back, one fork each); results replace earlier ones of the same name and params. */
    private static void measure(Question q, Batch batch, String header, Settings settings, PrintStream out,
                                Map<String, RunResult> all) throws RunnerException {
        Profile p = settings.profile();
        ChainedOptionsBuilder options = new OptionsBuilder()
            .forks(p.forks())
            .jvmArgsPrepend(FORK_FLAGS.toArray(String[]::new))
            .warmupIterations(p.warmupIterations()).warmupTime(TimeValue.milliseconds(p.warmupMillis()))
            .measurementIterations(p.measurementIterations())
            .measurementTime(TimeValue.milliseconds(p.measurementMillis()))
            .addProfiler(GCProfiler.class)
            .shouldFailOnError(true);
        for (String name : batch.benchmarks()) {
            options.include("^" + Pattern.quote(name) + "$");
        }
        batch.params().forEach(options::param);
        OutputFormat format;
        if (settings.verbose()) {
            out.println(header);
            format = OutputFormatFactory.createFormatInstance(out, VerboseMode.NORMAL);
        } else {
            out.print(header);
            format = new ProgressOutput(out, q);
        }
        for (RunResult r : new Runner(options.build(), format).run()) {
            all.put(key(r), r);
        }
        if (!settings.verbose()) {
            out.println();
        }
    }

    /**
     * @param q the batch's question
     * @param batch benchmarks measured back to back
     * @param rounds the profile's rounds
     * @return how many rounds JMH measures the batch: one (allocation only) if every benchmark in it
     *     gets its ratios from interleaved pairs ({@link Ratios#measuredOnceARun}), else every round
     */
    static int jmhRounds(Question q, Batch batch, int rounds) {
        for (String name : batch.benchmarks()) {
            if (!Ratios.measuredOnceARun(q, name.substring(name.lastIndexOf('.') + 1))) {
                return rounds;
            }
        }
        return 1;
    }

    /**
     * Measures one interleaved pair in both set-up orders, each in a JVM of its own started as JMH
     * starts its forks (this JVM's options, {@link #FORK_FLAGS}, the class's {@code @Fork}
     * arguments, the same class path) and measuring half the profile's time, and records both
     * sides' rates over the two JVMs together ({@link Interleaved.Result#plus}) as results carrying
     * {@link Ratios#PAIRED_WITH}. The side set up first measures slower (see {@link Interleaved}),
     * so every round holds that handicap on each side once. Odd rounds start with the JVM that sets
     * up the numerator first, even rounds with the other ({@link #denominatorFirst}).
     */
    private static void measurePair(Pair pair, int roundNumber, String header, Profile profile, PrintStream out,
                                    Map<String, BenchmarkResult> round) throws RunnerException {
        out.print(header);
        int half = profile.interleavedMeasureMillis() / 2;
        boolean first = denominatorFirst(roundNumber);
        Interleaved.Result a = runPair(pair, profile.interleavedWarmupMillis(), half, first);
        Interleaved.Result b = runPair(pair, profile.interleavedWarmupMillis(), half, !first);
        Interleaved.Result r = a.plus(b);
        for (BenchmarkResult res : pairResults(pair, r)) {
            round.put(Rounds.key(res), res);
        }
        Interleaved.Result numeratorFirst = first ? b : a;
        Interleaved.Result denominatorFirst = first ? a : b;
        out.printf(Locale.ROOT, " %.3g / %.3g ops/s = %.3f (%d slice pairs; %s set up first %.3f, %s first %.3f)%n",
            r.numeratorRate(), r.denominatorRate(), r.ratio(), r.slicePairs(), pair.numerator(),
            numeratorFirst.ratio(), pair.denominator(), denominatorFirst.ratio());
    }

    /**
     * @param pair what was measured
     * @param r an interleaved measurement of its two benchmarks
     * @return each side as a result: its rate as the primary metric, its parameters the pair's plus
     *     the other side as {@link Ratios#PAIRED_WITH}
     */
    static List<BenchmarkResult> pairResults(Pair pair, Interleaved.Result r) {
        Map<String, BenchmarkResult.Metric> extra = Map.of(
            "slicePairs", new BenchmarkResult.Metric(r.slicePairs(), Double.NaN, "#"),
            "slicePairRatioMedian", new BenchmarkResult.Metric(r.pairRatioMedian(), Double.NaN, "ratio"));
        String cls = pair.question().benchmarkClass() + ".";
        return List.of(
            new BenchmarkResult(cls + r.numerator(), paramsPairedWith(pair, r.denominator()),
                new BenchmarkResult.Metric(r.numeratorRate(), Double.NaN, "ops/s"), extra),
            new BenchmarkResult(cls + r.denominator(), paramsPairedWith(pair, r.numerator()),
                new BenchmarkResult.Metric(r.denominatorRate(), Double.NaN, "ops/s"), extra));
    }

    private static Map<String, String> paramsPairedWith(Pair pair, String other) {
        Map<String, String> params = new TreeMap<>(pair.params());
        params.put(Ratios.PAIRED_WITH, other);
        return params;
    }

    /**
     * @param pair what to measure
     * @param warmupMillis how long the sides alternate before measuring
     * @param measureMillis how long they are measured
     * @return what the forked JVM measured, the numerator set up first
     * @throws RunnerException if it failed, timed out or printed no result (with its output)
     */
    static Interleaved.Result runPair(Pair pair, int warmupMillis, int measureMillis) throws RunnerException {
        return runPair(pair, warmupMillis, measureMillis, false);
    }

    /**
     * @param round a round's number, from 1
     * @return whether that round's pairs start with the JVM that sets up the denominator's instance
     *     first: in even rounds (every round runs both orders; which runs first alternates)
     */
    static boolean denominatorFirst(int round) {
        return round % 2 == 0;
    }

    /**
     * @param pair the pair
     * @param warmupMillis its warm-up
     * @param measureMillis its measurement
     * @param denominatorFirst whether to set up the denominator's instance first
     * @return the command that measures it in a JVM of its own
     * @throws RunnerException if the pair's class is not in this build
     */
    static List<String> pairCommand(Pair pair, int warmupMillis, int measureMillis, boolean denominatorFirst)
        throws RunnerException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments());
        command.addAll(FORK_FLAGS);
        try {
            org.openjdk.jmh.annotations.Fork fork = Class.forName(pair.question().benchmarkClass())
                .getAnnotation(org.openjdk.jmh.annotations.Fork.class);
            if (fork != null) {
                command.addAll(List.of(fork.jvmArgsAppend()));
            }
        } catch (ClassNotFoundException e) {
            throw new RunnerException(pair.question().benchmarkClass() + " is not in this build", e);
        }
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), Interleaved.class.getName()));
        if (denominatorFirst) {
            command.add(Interleaved.SET_UP_DENOMINATOR_FIRST);
        }
        command.addAll(List.of(pair.question().benchmarkClass(), pair.numerator(), pair.denominator(),
            Integer.toString(warmupMillis), Integer.toString(measureMillis), Integer.toString(Profile.SLICE_MICROS)));
        pair.params().forEach((name, value) -> command.add(name + "=" + value));
        return command;
    }

    /**
     * Measures a pair in a JVM of its own.
     *
     * @param pair the pair
     * @param warmupMillis its warm-up
     * @param measureMillis its measurement
     * @param denominatorFirst whether to set up the denominator's instance first
     * @return what it measured
     * @throws RunnerException if the JVM fails, prints no result or does not exit
     */
    static Interleaved.Result runPair(Pair pair, int warmupMillis, int measureMillis, boolean denominatorFirst)
        throws RunnerException {
        List<String> command = pairCommand(pair, warmupMillis, measureMillis, denominatorFirst);
        StringBuilder output = new StringBuilder();
        Interleaved.Result result = null;
        try {
            Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
            try (var reader = process.inputReader()) {
                for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                    if (line.startsWith(Interleaved.RESULT_PREFIX + " ")) {
                        result = Interleaved.Result.parse(line);
                    } else {
                        output.append(line).append('\n');
                    }
                }
            }
            if (!process.waitFor(60, java.util.concurrent.TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new RunnerException("the interleaved pair " + pair.label() + " did not exit");
            }
            if (process.exitValue() != 0 || result == null) {
                throw new RunnerException("the interleaved pair " + pair.label() + " of " + pair.ratioId() + " failed"
                    + " (exit " + process.exitValue() + (result == null ? ", no result line" : "") + "): " + output);
            }
        } catch (IOException e) {
            throw new RunnerException("cannot start the interleaved pair " + pair.label() + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RunnerException("interrupted while measuring " + pair.label(), e);
        } catch (IllegalArgumentException e) {
            throw new RunnerException("the interleaved pair " + pair.label() + " printed a bad result: " + e.getMessage(), e);
        }
        return result;
    }

    private static String key(RunResult r) {
        StringBuilder sb = new StringBuilder(r.getParams().getBenchmark());
        r.getParams().getParamsKeys().stream().sorted()
            .forEach(k -> sb.append(' ').append(k).append('=').append(r.getParams().getParam(k)));
        return sb.toString();
    }

    /**
     * Writes every round's results, one round after the other (see {@link Rounds#split}): JMH's,
     * then the interleaved pairs' in JMH's JSON form; and reads them back.
     */
    private static List<BenchmarkResult> writeRaw(List<Map<String, RunResult>> byRound,
                                                  List<Map<String, BenchmarkResult>> pairsByRound, Path raw)
        throws IOException {
        List<RunResult> all = new ArrayList<>();
        for (Map<String, RunResult> round : byRound) {
            all.addAll(round.values());
        }
        ResultFormatFactory.getInstance(ResultFormatType.JSON, raw.toString()).writeOut(all);
        List<BenchmarkResult> paired = new ArrayList<>();
        for (Map<String, BenchmarkResult> round : pairsByRound) {
            paired.addAll(round.values());
        }
        if (!paired.isEmpty()) {
            JmhJson.append(raw, paired);
        }
        return JmhJson.read(raw);
    }

    /**
     * @param checks a comparison with the baseline
     * @return per question, the benchmark methods or groups behind its regressions (both sides of a
     *     ratio; interleaved ratios are re-measured as pairs instead, {@link #suspectPairs})
     */
    static Map<Question, Set<String>> suspects(List<Check> checks) {
        Map<Question, Set<String>> suspects = new TreeMap<>();
        for (Check c : checks) {
            if (c.status() != Check.Status.REGRESSION) {
                continue;
            }
            if (c.kind() == Check.Kind.RATIO && isInterleaved(c.id())) {
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

    /**
     * @param checks a comparison with the baseline
     * @return the interleaved pairs behind its ratio regressions
     */
    static List<Pair> suspectPairs(List<Check> checks) {
        List<Pair> pairs = new ArrayList<>();
        for (Check c : checks) {
            if (c.status() == Check.Status.REGRESSION && c.kind() == Check.Kind.RATIO && isInterleaved(c.id())) {
                pairs(c.question(), null).stream().filter(p -> p.ratioId().equals(c.id())).forEach(pairs::add);
            }
        }
        return pairs;
    }

    private static boolean isInterleaved(String ratioId) {
        return Ratios.all().stream().anyMatch(r -> r.id().equals(ratioId) && r.interleaved());
    }

    private static String methodOf(String shortName) {
        return shortName.substring(shortName.indexOf('.') + 1);
    }

    /**
     * Compares results with this machine's baseline entry, writes the report and, if asked, the
     * machine's new entry.
     *
     * @param results the results (from this run, or a JSON file given to the {@code report} command)
     * @param load how busy the machine was while measuring ({@link MachineLoad#unknown} for a results file)
     * @param settings profile, baseline, report directory, whether to update the baseline
     * @param out the verdict goes here
     * @return the verdict's exit status; with {@code updateBaseline}, 0 once the entry is written
     *     (or {@link Verdict#TOO_NOISY}'s if the run was too noisy to record, unless noise is accepted)
     * @throws IOException if a file cannot be read or written
     */
    public static int evaluate(List<BenchmarkResult> results, MachineLoad load, Settings settings, PrintStream out)
        throws IOException {
        Baseline baseline = Files.exists(settings.baselineFile()) ? Baseline.read(settings.baselineFile()) : null;
        if (baseline != null && baseline.profile() != settings.profile()) {
            throw new IllegalArgumentException("baseline " + settings.baselineFile() + " was recorded with the "
                + baseline.profile().id() + " profile; this run is " + settings.profile().id()
                + ": compare like with like (--baseline)");
        }
        Machine machine = Machine.current();
        Baseline.Entry entry = baseline == null ? null : baseline.entryFor(machine).orElse(null);
        List<Check> checks = Checks.compare(results, entry, settings.profile());
        Verdict.Judgement judgement = Checks.judge(checks, load);
        String recorded = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        Path md = ReportWriter.write(settings.reportDir(), new ReportWriter.RunInfo(settings.profile(), recorded,
            machine, load, settings.note(), settings.baselineFile().toString(), baseline, entry, judgement), results,
            checks);
        printVerdict(checks, judgement, load, out);
        out.println("report: " + md);
        if (settings.updateBaseline()) {
            boolean noisy = !load.tooBusy().isEmpty() || (judgement.verdict() == Verdict.TOO_NOISY);
            if (noisy && !settings.acceptNoise()) {
                out.println("baseline NOT written: the run was too noisy to record (" + String.join("; ",
                    judgement.reasons().isEmpty() ? load.tooBusy() : judgement.reasons()) + "); measure on a quiet"
                    + " machine, or pass --accept-noise");
                return Verdict.TOO_NOISY.exitCode();
            }
            Baseline.Entry next = Checks.entryOf(results, machine, recorded, settings.note(), entry);
            Baseline written = (baseline == null ? new Baseline(settings.profile(), List.of()) : baseline).with(next);
            written.write(settings.baselineFile());
            out.println("baseline written: " + settings.baselineFile() + " (" + (entry == null ? "new entry" :
                "entry replaced") + " for " + machine.describe() + ": " + next.ratios().size() + " ratios, "
                + next.allocation().size() + " allocation figures; " + written.entries().size() + " machine(s))");
            return Verdict.PASS.exitCode();
        }
        if (baseline == null) {
            out.println("no baseline at " + settings.baselineFile() + "; record one with --update-baseline");
        }
        return judgement.verdict().exitCode();
    }

    private static void printVerdict(List<Check> checks, Verdict.Judgement judgement, MachineLoad load,
                                     PrintStream out) {
        out.println("ratio                                    this run   (IQR)      baseline   (IQR)      decision"
            + "      target");
        for (Check c : checks) {
            if (c.kind() == Check.Kind.RATIO && c.status() != Check.Status.MISSING) {
                Boolean met = c.targetMet();
                out.printf(Locale.ROOT, "%-40s %8s %-10s %8s %-10s %-13s %s%n", c.id(), ratio(c.current()),
                    iqr(c.run()), ratio(c.baseline()), iqr(c.base()), c.status().label(),
                    met == null ? "-" : String.format(Locale.ROOT, ">= %.3f %s", c.target(), met ? "met" : "missed"));
            }
        }
        for (Check c : checks) {
            if (c.kind() == Check.Kind.ALLOCATION && c.status() == Check.Status.REGRESSION) {
                out.printf(Locale.ROOT, "REGRESSION %s: %.4g B/op (baseline %s, slack %.3g B/op)%n", c.id(),
                    c.current(), fmt(c.baseline()), c.tolerance());
            }
        }
        Map<Check.Status, Long> counts = new TreeMap<>();
        for (Check c : checks) {
            counts.merge(c.status(), 1L, Long::sum);
        }
        out.println(counts.entrySet().stream().map(e -> e.getValue() + " " + e.getKey().label())
            .collect(Collectors.joining(", ")));
        out.println("machine: " + Machine.current().describe() + "; " + load.describe());
        out.println("VERDICT: " + judgement.verdict().label() + " (exit " + judgement.verdict().exitCode() + ")");
        for (String reason : judgement.reasons()) {
            out.println("  " + reason);
        }
    }

    private static String ratio(double v) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.3f", v);
    }

    private static String iqr(Spread s) {
        return s.hasQuartiles() ? String.format(Locale.ROOT, "±%.0f%%", 50 * s.relativeIqr()) : "";
    }

    private static String fmt(double v) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.4g", v);
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
}

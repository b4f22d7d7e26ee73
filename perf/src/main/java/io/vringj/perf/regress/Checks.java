package io.vringj.perf.regress;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Turns a run's results into {@link Check}s against its machine's baseline entry, the checks into
 * a {@link Verdict}, and a run into a baseline entry.
 *
 * <p>Rules:
 * <ul>
 *   <li>Each ratio is computed within every round and summarised by its median and interquartile
 *       range over the rounds ({@link Spread}). Its regression line is the baseline's lower
 *       quartile × (1 − tolerance) (a baseline recorded without a spread counts with its median).
 *       It regresses only when the gap to the baseline is wider than the noise of both runs and the
 *       tolerance: this run's whole middle half (its upper quartile) below the line.</li>
 *   <li>It passes when this run's whole middle half (its lower quartile) is at or above the line,
 *       however wide its spread: no regression can hide in noise that lies entirely above it.</li>
 *   <li>It is {@link Check.Status#NOISY} only when its middle half straddles the line (lower
 *       quartile below it, upper quartile at or above it): then the spread, and nothing else, is
 *       what stops a decision.</li>
 *   <li>A vringj hot path (every benchmark of a question that is not a peer) regresses on
 *       allocation when its {@code gc.alloc.rate.norm} is above {@value #ALLOCATION_SLACK} B/op
 *       and above {@code baseline × 1.25 + }{@value #ALLOCATION_SLACK}: with a baseline of 0, any
 *       allocation of one object every few operations fails; JMH's own noise is about 0.001 B/op.</li>
 *   <li>A figure the machine's entry lacks is {@link Check.Status#NEW}; one the run lacks is
 *       {@link Check.Status#MISSING}; with no entry for the machine every figure is
 *       {@link Check.Status#UNJUDGED}. None of these fails the run.</li>
 *   <li>The verdict ({@link #judge}): no entry for this machine → NO BASELINE; the machine too busy
 *       ({@link MachineLoad#tooBusy}) or more than a quarter ({@link #NOISY_SHARE_LIMIT}) of the
 *       judged ratios noisy (straddling their regression line) → TOO NOISY; any regression →
 *       REGRESSION; otherwise PASS.</li>
 * </ul>
 */
public final class Checks {
    /** B/op a hot path may show without counting as allocating (at the least). */
    public static final double ALLOCATION_SLACK = 0.5;
    /**
     * Bytes JMH's own machinery may allocate per measurement iteration and charge to the
     * benchmark (observed: about 12 KiB); spread over few operations (a 256 KiB bounce runs some
     * 30 000 times a second) it exceeds {@link #ALLOCATION_SLACK}, so the slack grows for slow
     * benchmarks.
     */
    public static final double JMH_BYTES_PER_ITERATION = 32 * 1024;
    /** Relative growth over a non-zero allocation baseline that is still tolerated. */
    public static final double ALLOCATION_GROWTH = 0.25;
    /** The share of judged ratios that may be noisy before the whole run is too noisy to judge. */
    public static final double NOISY_SHARE_LIMIT = 0.25;

    private Checks() {
    }

    /**
     * @param result a result
     * @return the key of its allocation figure, {@code Class.method[params]}
     */
    public static String allocationKey(BenchmarkResult result) {
        return result.shortName() + "[" + result.paramsLabel() + "]";
    }

    /**
     * @param result a result
     * @return whether it measures a vringj hot path (not a peer, not a floor)
     */
    public static boolean isHotPath(BenchmarkResult result) {
        Question q = Question.of(result);
        if (q == null) {
            return false;
        }
        String name = result.shortName();
        return !q.isPeer(name.substring(name.indexOf('.') + 1));
    }

    /**
     * @param results the run's results
     * @return tracked ratios by id (NaN where a benchmark did not run)
     */
    public static Map<String, Double> ratios(List<BenchmarkResult> results) {
        Map<String, Double> map = new LinkedHashMap<>();
        for (RatioSpec spec : Ratios.all()) {
            map.put(spec.id(), Rounds.ratioSpread(spec, results).median());
        }
        return map;
    }

    /**
     * @param results the run's results
     * @return B/op of every hot path that was profiled, by {@link #allocationKey}
     */
    public static Map<String, Double> allocations(List<BenchmarkResult> results) {
        Map<String, Double> map = new LinkedHashMap<>();
        Map<String, Double> medians = Rounds.medianMetric(results, BenchmarkResult.ALLOC_NORM);
        for (BenchmarkResult r : Rounds.medianResults(results)) {
            double bytes = medians.get(Rounds.key(r));
            if (!Double.isNaN(bytes) && isHotPath(r)) {
                map.put(allocationKey(r), bytes);
            }
        }
        return map;
    }

    /**
     * @param results the run's results, rounds one after the other (ratios are summarised over
     *     rounds, allocations are medians over rounds)
     * @param entry this machine's baseline entry, or {@code null} if there is none (every figure is then UNJUDGED)
     * @param profile gives the tolerances
     * @return one check per tracked ratio, then one per hot path's allocation
     */
    public static List<Check> compare(List<BenchmarkResult> results, Baseline.Entry entry, Profile profile) {
        List<Check> checks = new ArrayList<>();
        for (RatioSpec spec : Ratios.all()) {
            Spread run = Rounds.ratioSpread(spec, results);
            Spread was = entry == null ? Spread.NONE : entry.ratios().getOrDefault(spec.id(), Spread.NONE);
            double tolerance = profile.tolerance(spec.twoThreaded());
            Check.Status status = entry == null
                ? (run.measured() ? Check.Status.UNJUDGED : Check.Status.MISSING)
                : ratioStatus(run, was, tolerance);
            checks.add(new Check(spec.id(), spec.question(), Check.Kind.RATIO, spec.description(), run, was,
                tolerance, spec.target(), status));
        }
        Map<String, Double> baseAlloc = entry == null ? Map.of() : entry.allocation();
        Map<String, Double> medians = Rounds.medianMetric(results, BenchmarkResult.ALLOC_NORM);
        for (BenchmarkResult r : Rounds.medianResults(results)) {
            double bytes = medians.get(Rounds.key(r));
            if (Double.isNaN(bytes) || !isHotPath(r)) {
                continue;
            }
            String key = allocationKey(r);
            double was = baseAlloc.getOrDefault(key, Double.NaN);
            double slack = allocationSlack(r, profile);
            Check.Status status = entry == null ? Check.Status.UNJUDGED : allocationStatus(bytes, was, slack);
            checks.add(new Check(key, Question.of(r), Check.Kind.ALLOCATION, "B/op (gc.alloc.rate.norm) of " + key,
                Spread.ofMedian(bytes), Double.isNaN(was) ? Spread.NONE : Spread.ofMedian(was), slack, 0, status));
        }
        return checks;
    }

    /**
     * Decides one ratio against its regression line, {@code baseline.low() × (1 − tolerance)}
     * (the baseline's lower quartile, or its median when it has no quartiles). Only the position
     * of this run's middle half relative to the line counts, not its width: a wide spread
     * entirely above the line is a pass, a narrow one across it cannot be decided.
     *
     * @param run this run's ratio over its rounds ({@link Spread#NONE} if not measured)
     * @param baseline the baseline's ({@link Spread#NONE} if it has none)
     * @param tolerance the largest relative drop allowed beyond the noise of both runs
     * @return REGRESSION if this run's upper quartile is below the line; PASS if its lower
     *     quartile is at or above it; otherwise (the middle half straddles the line) NOISY;
     *     MISSING if this run lacks the ratio, NEW if the baseline does
     */
    public static Check.Status ratioStatus(Spread run, Spread baseline, double tolerance) {
        if (!run.measured()) {
            return Check.Status.MISSING;
        }
        if (!baseline.measured()) {
            return Check.Status.NEW;
        }
        double line = regressionLine(baseline, tolerance);
        if (run.high() < line) {
            return Check.Status.REGRESSION;
        }
        return run.low() >= line ? Check.Status.PASS : Check.Status.NOISY;
    }

    /**
     * @param baseline the baseline's spread of a ratio
     * @param tolerance the ratio's tolerance
     * @return the line below which a ratio regresses: the baseline's lower quartile (its median
     *     when it has no quartiles) × (1 − tolerance); NaN if the baseline has no value
     */
    public static double regressionLine(Spread baseline, double tolerance) {
        return baseline.low() * (1 - tolerance);
    }

    /**
     * @param checks a run's checks
     * @param load how busy the machine was while measuring
     * @return the verdict and its reasons: NO BASELINE if the checks were not judged (no entry
     *     for the machine), TOO NOISY if the machine was too busy or more than
     *     {@link #NOISY_SHARE_LIMIT} of the judged ratios were noisy (their middle half straddles
     *     their regression line, see {@link #ratioStatus}), REGRESSION if any figure
     *     regressed, PASS otherwise
     */
    public static Verdict.Judgement judge(List<Check> checks, MachineLoad load) {
        boolean unjudged = checks.stream().anyMatch(c -> c.status() == Check.Status.UNJUDGED);
        if (unjudged) {
            return new Verdict.Judgement(Verdict.NO_BASELINE, List.of("the baseline has no entry for this machine;"
                + " record one with --update-baseline on a quiet machine"));
        }
        List<String> reasons = new ArrayList<>(load.tooBusy());
        long ratios = checks.stream().filter(c -> c.kind() == Check.Kind.RATIO && (c.status() == Check.Status.PASS
            || c.status() == Check.Status.REGRESSION || c.status() == Check.Status.NOISY)).count();
        List<String> noisy = checks.stream().filter(c -> c.status() == Check.Status.NOISY).map(Check::id).toList();
        if (ratios > 0 && noisy.size() > NOISY_SHARE_LIMIT * ratios) {
            reasons.add(String.format(Locale.ROOT, "%d of %d judged ratios have a spread over their rounds that"
                + " straddles their regression line (limit: %.0f%% of them): %s", noisy.size(), ratios,
                NOISY_SHARE_LIMIT * 100, String.join(", ", noisy)));
        }
        if (!reasons.isEmpty()) {
            return new Verdict.Judgement(Verdict.TOO_NOISY, reasons);
        }
        List<String> regressed = checks.stream().filter(c -> c.status() == Check.Status.REGRESSION)
            .map(Check::id).toList();
        if (!regressed.isEmpty()) {
            return new Verdict.Judgement(Verdict.REGRESSION, regressed);
        }
        return new Verdict.Judgement(Verdict.PASS, noisy.isEmpty() ? List.of()
            : List.of("not judged, too noisy: " + String.join(", ", noisy)));
    }

    /**
     * @param result a throughput result (primary metric in operations per second)
     * @param profile gives the measurement iteration's length
     * @return the B/op below which the result does not count as allocating:
     *     {@value #ALLOCATION_SLACK}, or JMH's own allocation per iteration spread over the
     *     iteration's operations if that is more
     */
    public static double allocationSlack(BenchmarkResult result, Profile profile) {
        double opsPerIteration = result.primary().score() * profile.measurementMillis() / 1000.0;
        if (!(opsPerIteration > 0)) {
            return ALLOCATION_SLACK;
        }
        return Math.max(ALLOCATION_SLACK, JMH_BYTES_PER_ITERATION / opsPerIteration);
    }

    /**
     * @param current this run's B/op
     * @param baseline the baseline's, NaN if none (then judged against 0)
     * @param slack B/op that do not count as allocating ({@link #allocationSlack})
     * @return the verdict
     */
    public static Check.Status allocationStatus(double current, double baseline, double slack) {
        double was = Double.isNaN(baseline) ? 0 : baseline;
        boolean regressed = current > slack && current > was * (1 + ALLOCATION_GROWTH) + slack;
        if (regressed) {
            return Check.Status.REGRESSION;
        }
        return Double.isNaN(baseline) ? Check.Status.NEW : Check.Status.PASS;
    }

    /**
     * @param checks a run's checks
     * @return whether any of them is a regression
     */
    public static boolean anyRegression(List<Check> checks) {
        return checks.stream().anyMatch(c -> c.status() == Check.Status.REGRESSION);
    }

    /**
     * A machine's new baseline entry from a run: its ratios (those measured, with their spread)
     * and hot-path allocations.
     *
     * @param results the run's results
     * @param machine where it ran
     * @param recorded when
     * @param note free text
     * @param previous the same machine's entry being replaced, or {@code null}; figures this run
     *     did not measure are kept from it
     * @return the entry
     */
    public static Baseline.Entry entryOf(List<BenchmarkResult> results, Machine machine, String recorded, String note,
                                         Baseline.Entry previous) {
        Map<String, Spread> ratios = new LinkedHashMap<>(previous == null ? Map.of() : previous.ratios());
        for (RatioSpec spec : Ratios.all()) {
            Spread s = Rounds.ratioSpread(spec, results);
            if (s.measured()) {
                ratios.put(spec.id(), s);
            }
        }
        Map<String, Double> alloc = new LinkedHashMap<>(previous == null ? Map.of() : previous.allocation());
        alloc.putAll(allocations(results));
        return new Baseline.Entry(machine, recorded, note, ratios, alloc);
    }
}

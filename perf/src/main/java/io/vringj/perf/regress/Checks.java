package io.vringj.perf.regress;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a run's results into {@link Check}s against a baseline, and a baseline from a run.
 *
 * <p>Rules:
 * <ul>
 *   <li>A ratio regresses when it falls below {@code baseline × (1 − tolerance)}, the tolerance
 *       coming from the {@link Profile} (wider for two-thread questions). Improvements never
 *       fail; update the baseline to lock them in.</li>
 *   <li>A vringj hot path (every benchmark of a question that is not a peer) regresses on
 *       allocation when its {@code gc.alloc.rate.norm} is above {@value #ALLOCATION_SLACK} B/op
 *       and above {@code baseline × 1.25 + }{@value #ALLOCATION_SLACK}: with a baseline of 0, any
 *       allocation of one object every few operations fails; JMH's own noise is about 0.001 B/op.</li>
 *   <li>A figure the baseline lacks is {@link Check.Status#NEW}; one the run lacks is
 *       {@link Check.Status#MISSING}. Neither fails the run.</li>
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
            map.put(spec.id(), Rounds.ratio(spec, results));
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
     * @param results the run's results, rounds one after the other (ratios and allocations are
     *     medians over rounds)
     * @param baseline what to compare with, or {@code null} (every figure is then NEW)
     * @param profile gives the tolerances
     * @return one check per tracked ratio, then one per hot path's allocation
     */
    public static List<Check> compare(List<BenchmarkResult> results, Baseline baseline, Profile profile) {
        List<Check> checks = new ArrayList<>();
        Map<String, Double> base = baseline == null ? Map.of() : baseline.ratios();
        for (RatioSpec spec : Ratios.all()) {
            double current = Rounds.ratio(spec, results);
            double was = base.getOrDefault(spec.id(), Double.NaN);
            double tolerance = profile.tolerance(spec.twoThreaded());
            checks.add(new Check(spec.id(), spec.question(), Check.Kind.RATIO, spec.description(), current, was,
                tolerance, spec.target(), ratioStatus(current, was, tolerance)));
        }
        Map<String, Double> baseAlloc = baseline == null ? Map.of() : baseline.allocation();
        Map<String, Double> medians = Rounds.medianMetric(results, BenchmarkResult.ALLOC_NORM);
        for (BenchmarkResult r : Rounds.medianResults(results)) {
            double bytes = medians.get(Rounds.key(r));
            if (Double.isNaN(bytes) || !isHotPath(r)) {
                continue;
            }
            String key = allocationKey(r);
            double was = baseAlloc.getOrDefault(key, Double.NaN);
            double slack = allocationSlack(r, profile);
            checks.add(new Check(key, Question.of(r), Check.Kind.ALLOCATION, "B/op (gc.alloc.rate.norm) of " + key,
                bytes, was, slack, 0, allocationStatus(bytes, was, slack)));
        }
        return checks;
    }

    /**
     * @param current this run's ratio, NaN if missing
     * @param baseline the baseline's, NaN if none
     * @param tolerance the largest relative drop allowed
     * @return the verdict
     */
    public static Check.Status ratioStatus(double current, double baseline, double tolerance) {
        if (Double.isNaN(current)) {
            return Check.Status.MISSING;
        }
        if (Double.isNaN(baseline)) {
            return Check.Status.NEW;
        }
        return current < baseline * (1 - tolerance) ? Check.Status.REGRESSION : Check.Status.PASS;
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
     * A new baseline from a run: its ratios (those measured) and hot-path allocations.
     *
     * @param results the run's results
     * @param profile its profile
     * @param recorded when
     * @param machine where
     * @param note free text
     * @param previous the baseline being replaced, or {@code null}; figures this run did not measure are kept from it
     * @return the baseline
     */
    public static Baseline baselineOf(List<BenchmarkResult> results, Profile profile, String recorded, String machine,
                                      String note, Baseline previous) {
        Map<String, Double> ratios = new LinkedHashMap<>(previous == null ? Map.of() : previous.ratios());
        ratios(results).forEach((k, v) -> {
            if (!Double.isNaN(v)) {
                ratios.put(k, v);
            }
        });
        Map<String, Double> alloc = new LinkedHashMap<>(previous == null ? Map.of() : previous.allocation());
        alloc.putAll(allocations(results));
        return new Baseline(profile, recorded, machine, note, ratios, alloc);
    }
}

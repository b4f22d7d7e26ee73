package io.vringj.perf.regress;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A run's results by round. JMH's JSON of a run holds every round's results one round after the
 * other, so the n-th result of a benchmark at given parameters belongs to round n.
 */
public final class Rounds {
    private Rounds() {
    }

    /**
     * @param result a result
     * @return what identifies it within one round: the benchmark and its parameter values
     */
    public static String key(BenchmarkResult result) {
        return result.benchmark() + " " + result.paramsLabel();
    }

    /**
     * @param results a run's results, rounds one after the other
     * @return the rounds, each in first-seen order; a single-round run gives one list
     */
    public static List<List<BenchmarkResult>> split(List<BenchmarkResult> results) {
        List<List<BenchmarkResult>> rounds = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        for (BenchmarkResult r : results) {
            int round = seen.merge(key(r), 1, Integer::sum) - 1;
            while (rounds.size() <= round) {
                rounds.add(new ArrayList<>());
            }
            rounds.get(round).add(r);
        }
        return rounds;
    }

    /**
     * Joins several runs' results so that their rounds follow one another: with two 5-round runs,
     * the second run's rounds become rounds 6 to 10 ({@link #split} assigns the n-th result of a
     * benchmark to round n). A baseline recorded from them spreads over every run's rounds, and
     * so sees how far a whole run moves, which the rounds of one run cannot.
     *
     * <p>Each run's rounds stay together only if every benchmark a run holds is in every round of
     * the runs before it; otherwise its results would shift into an earlier run's rounds and a
     * ratio would divide one run's figure by another's, so such runs are refused. The exception is
     * JMH's figures of a benchmark whose ratios are all {@link RatioSpec#interleaved}, which a run
     * measures once, for allocation: those ratios come from the pairs' figures, which are in every round.
     *
     * @param names a name for each run, for errors (e.g. its file)
     * @param runs each run's results, rounds one after the other
     * @return the results of all runs, in the order given
     * @throws IllegalArgumentException if the lists differ in size or a run holds a benchmark that
     *     an earlier run lacks in some of its rounds
     */
    public static List<BenchmarkResult> concat(List<String> names, List<List<BenchmarkResult>> runs) {
        if (names.size() != runs.size()) {
            throw new IllegalArgumentException(names.size() + " names for " + runs.size() + " runs");
        }
        List<BenchmarkResult> all = new ArrayList<>();
        Map<String, Integer> held = new HashMap<>();
        int roundsBefore = 0;
        for (int i = 0; i < runs.size(); i++) {
            List<BenchmarkResult> run = runs.get(i);
            for (BenchmarkResult r : run) {
                int before = held.getOrDefault(key(r), 0);
                if (before != roundsBefore && !onceARun(r)) {
                    throw new IllegalArgumentException("results " + names.get(i) + " hold " + r.shortName() + " ["
                        + r.paramsLabel() + "], which the results before them (" + String.join(", ",
                        names.subList(0, i)) + ") hold in " + before + " of their " + roundsBefore + " rounds: its"
                        + " rounds would be paired with another run's; join results of runs that measured the same"
                        + " benchmarks");
                }
            }
            for (BenchmarkResult r : run) {
                held.merge(key(r), 1, Integer::sum);
            }
            roundsBefore += split(run).size();
            all.addAll(run);
        }
        return all;
    }

    /**
     * @param r a result
     * @return whether it is JMH's figure of a benchmark whose ratios come from interleaved pairs:
     *     measured once a run, its round pairs it with nothing
     */
    private static boolean onceARun(BenchmarkResult r) {
        Question q = Question.of(r);
        return q != null && !r.params().containsKey(Ratios.PAIRED_WITH)
            && Ratios.measuredOnceARun(q, r.benchmark().substring(q.benchmarkClass().length() + 1));
    }

    /**
     * @param values numbers, NaN for missing
     * @return the median of those that are not NaN (the mean of the middle two for an even
     *     count), or NaN if there are none
     */
    public static double median(double... values) {
        double[] v = Arrays.stream(values).filter(x -> !Double.isNaN(x)).sorted().toArray();
        if (v.length == 0) {
            return Double.NaN;
        }
        int mid = v.length / 2;
        return v.length % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
    }

    /**
     * @param results a run's results, rounds one after the other
     * @return one result per benchmark and parameters: the round whose primary score is the
     *     median (the lower middle for an even count), in first-seen order
     */
    public static List<BenchmarkResult> medianResults(List<BenchmarkResult> results) {
        Map<String, List<BenchmarkResult>> byKey = new LinkedHashMap<>();
        for (BenchmarkResult r : results) {
            byKey.computeIfAbsent(key(r), k -> new ArrayList<>()).add(r);
        }
        List<BenchmarkResult> medians = new ArrayList<>(byKey.size());
        for (List<BenchmarkResult> all : byKey.values()) {
            List<BenchmarkResult> sorted = new ArrayList<>(all);
            sorted.sort((a, b) -> Double.compare(a.primary().score(), b.primary().score()));
            medians.add(sorted.get((sorted.size() - 1) / 2));
        }
        return medians;
    }

    /**
     * @param spec a ratio
     * @param results a run's results, rounds one after the other
     * @return the ratio computed within each round (NaN for a round that lacks a side), in round order
     */
    public static double[] ratioPerRound(RatioSpec spec, List<BenchmarkResult> results) {
        List<List<BenchmarkResult>> rounds = split(results);
        double[] perRound = new double[rounds.size()];
        for (int i = 0; i < perRound.length; i++) {
            perRound[i] = spec.compute(rounds.get(i));
        }
        return perRound;
    }

    /**
     * @param spec a ratio
     * @param results a run's results, rounds one after the other
     * @return the median and quartiles over rounds of the ratio computed within each round
     *     ({@link Spread#NONE} if no round has it)
     */
    public static Spread ratioSpread(RatioSpec spec, List<BenchmarkResult> results) {
        return Spread.of(ratioPerRound(spec, results));
    }

    /**
     * @param results a run's results, rounds one after the other
     * @return per benchmark and parameters (by {@link #key}), the median over rounds of {@code metric}
     * @param metric a metric name
     */
    public static Map<String, Double> medianMetric(List<BenchmarkResult> results, String metric) {
        Map<String, List<Double>> byKey = new LinkedHashMap<>();
        for (BenchmarkResult r : results) {
            BenchmarkResult.Metric m = r.metric(metric);
            byKey.computeIfAbsent(key(r), k -> new ArrayList<>()).add(m == null ? Double.NaN : m.score());
        }
        Map<String, Double> medians = new LinkedHashMap<>();
        byKey.forEach((k, v) -> medians.put(k, median(v.stream().mapToDouble(Double::doubleValue).toArray())));
        return medians;
    }
}

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

package io.vringj.perf.regress;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Picks one metric out of a run's results: a benchmark (by {@code Class.method} or
 * {@code Class.group}), the parameter values it must have, and the metric's name.
 *
 * @param benchmark the benchmark's short name, e.g. {@code RingThroughputBenchmark.vringj}
 * @param params parameter values the result must have; others are not looked at
 * @param metric {@link BenchmarkResult#PRIMARY} or a secondary metric such as {@code messages}
 */
public record Selector(String benchmark, Map<String, String> params, String metric) {

    /**
     * @param benchmark the benchmark's short name
     * @param params parameter values the result must have
     * @param metric the metric's name
     */
    public Selector {
        Objects.requireNonNull(benchmark, "benchmark");
        params = Map.copyOf(params);
        Objects.requireNonNull(metric, "metric");
    }

    /**
     * @param benchmark the benchmark's short name
     * @param metric the metric's name
     * @param keyValues parameter names and values, alternating
     * @return the selector
     */
    public static Selector of(String benchmark, String metric, String... keyValues) {
        if (keyValues.length % 2 != 0) {
            throw new IllegalArgumentException("parameters come in name/value pairs; got " + keyValues.length + " strings");
        }
        Map<String, String> params = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            params.put(keyValues[i], keyValues[i + 1]);
        }
        return new Selector(benchmark, params, metric);
    }

    /**
     * The selected metric. A selector of an {@link Interleaved} figure (its parameters name
     * {@link Ratios#PAIRED_WITH}) that finds none falls back to the same benchmark's JMH result (one
     * without that parameter): results written before the harness existed, or by JMH alone, still
     * give the ratio, from forks of their own.
     *
     * @param results a run's results
     * @return the selected metric's score, or NaN if no result matches (the benchmark did not run)
     */
    public double score(List<BenchmarkResult> results) {
        BenchmarkResult found = find(results, params);
        if (found == null && params.containsKey(Ratios.PAIRED_WITH)) {
            Map<String, String> jmh = new LinkedHashMap<>(params);
            jmh.remove(Ratios.PAIRED_WITH);
            found = find(results, jmh);
        }
        BenchmarkResult.Metric m = found == null ? null : found.metric(metric);
        return m == null ? Double.NaN : m.score();
    }

    /** @return the first result of this benchmark with {@code wanted}, and without {@link Ratios#PAIRED_WITH} unless wanted */
    private BenchmarkResult find(List<BenchmarkResult> results, Map<String, String> wanted) {
        boolean paired = wanted.containsKey(Ratios.PAIRED_WITH);
        for (BenchmarkResult r : results) {
            if (r.shortName().equals(benchmark) && r.matches(wanted)
                && (paired || !r.params().containsKey(Ratios.PAIRED_WITH))) {
                return r;
            }
        }
        return null;
    }

    @Override
    public String toString() {
        return benchmark + (params.isEmpty() ? "" : params.toString()) + (BenchmarkResult.PRIMARY.equals(metric) ? ""
            : ":" + metric);
    }
}

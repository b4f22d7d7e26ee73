package io.vringj.perf.regress;

import java.util.Map;
import java.util.Objects;

/**
 * One JMH result (one benchmark at one parameter combination) as read from JMH's JSON.
 *
 * @param benchmark the full benchmark name, {@code package.Class.method} (or {@code .group})
 * @param params the parameter values, by name
 * @param primary the primary metric
 * @param secondary the secondary metrics (aux counters, group members, profiler results) by name
 */
public record BenchmarkResult(String benchmark, Map<String, String> params, Metric primary,
                              Map<String, Metric> secondary) {

    /**
     * One metric's score.
     *
     * @param score the mean
     * @param error the half-width of the 99.9% confidence interval, NaN when JMH could not compute one
     * @param unit JMH's unit, e.g. {@code ops/s} or {@code B/op}
     */
    public record Metric(double score, double error, String unit) {
    }

    /** The name of JMH's normalized allocation metric from {@code -prof gc}. */
    public static final String ALLOC_NORM = "gc.alloc.rate.norm";

    /**
     * @param benchmark the full benchmark name
     * @param params the parameter values
     * @param primary the primary metric
     * @param secondary the secondary metrics
     */
    public BenchmarkResult {
        Objects.requireNonNull(benchmark, "benchmark");
        params = Map.copyOf(params);
        Objects.requireNonNull(primary, "primary");
        secondary = Map.copyOf(secondary);
    }

    /** @return {@code Class.method}: the benchmark name without its package */
    public String shortName() {
        int method = benchmark.lastIndexOf('.');
        int cls = method <= 0 ? -1 : benchmark.lastIndexOf('.', method - 1);
        return benchmark.substring(cls + 1);
    }

    /**
     * @param name {@code "primary"} or a secondary metric's name
     * @return the metric, or {@code null} if this result has none of that name
     */
    public Metric metric(String name) {
        return PRIMARY.equals(name) ? primary : secondary.get(name);
    }

    /** The name {@link #metric(String)} takes for the primary metric. */
    public static final String PRIMARY = "primary";

    /**
     * @param wanted parameter values that must match (others are ignored)
     * @return whether every wanted value equals this result's
     */
    public boolean matches(Map<String, String> wanted) {
        for (Map.Entry<String, String> e : wanted.entrySet()) {
            if (!e.getValue().equals(params.get(e.getKey()))) {
                return false;
            }
        }
        return true;
    }

    /** @return the parameters as {@code name=value, ...} in name order, or empty */
    public String paramsLabel() {
        StringBuilder sb = new StringBuilder();
        params.entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> {
            if (!sb.isEmpty()) {
                sb.append(", ");
            }
            sb.append(e.getKey()).append('=').append(e.getValue());
        });
        return sb.toString();
    }
}

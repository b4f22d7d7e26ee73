package io.vringj.perf.regress;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Builds JMH-format JSON for tests (the shape {@code -rf json} writes, with the fields the
 * runner reads plus a few it ignores), so the runner's logic is tested without running JMH.
 */
final class CannedJmh {
    private final List<String> entries = new ArrayList<>();

    /** One result; {@code secondary} maps metric names to scores (unit ops/s, or B/op for allocation). */
    CannedJmh add(String benchmark, Map<String, String> params, double primary, Map<String, Double> secondary) {
        StringBuilder sb = new StringBuilder();
        sb.append("{\"jmhVersion\":\"1.37\",\"benchmark\":\"").append(benchmark)
            .append("\",\"mode\":\"thrpt\",\"threads\":1,\"forks\":1,\"jvmArgs\":[\"-Xmx1g\"],");
        sb.append("\"params\":{");
        int i = 0;
        for (Map.Entry<String, String> p : params.entrySet()) {
            sb.append(i++ > 0 ? "," : "").append('"').append(p.getKey()).append("\":\"").append(p.getValue()).append('"');
        }
        sb.append("},\"primaryMetric\":").append(metric(primary, "ops/s", true));
        sb.append(",\"secondaryMetrics\":{");
        i = 0;
        for (Map.Entry<String, Double> m : secondary.entrySet()) {
            String unit = m.getKey().equals(BenchmarkResult.ALLOC_NORM) ? "B/op" : "ops/s";
            sb.append(i++ > 0 ? "," : "").append('"').append(m.getKey()).append("\":")
                .append(metric(m.getValue(), unit, false));
        }
        sb.append("}}");
        entries.add(sb.toString());
        return this;
    }

    /** A Q1 group result with the given messages/s and B/op. */
    CannedJmh q1(String peer, String payload, String batch, double messages, double bytesPerOp) {
        Map<String, Double> secondary = new LinkedHashMap<>();
        secondary.put(peer + "Produce", messages);
        secondary.put("messages", messages);
        secondary.put("pollFailures", 10.0);
        secondary.put(BenchmarkResult.ALLOC_NORM, bytesPerOp);
        return add("io.vringj.perf.ring.RingThroughputBenchmark." + peer, Map.of("payloadBytes", payload, "batch", batch),
            messages * 2, secondary);
    }

    /** A single-thread result with a primary score and B/op. */
    CannedJmh single(String benchmark, double opsPerSecond, double bytesPerOp) {
        return add(benchmark, Map.of(), opsPerSecond, Map.of(BenchmarkResult.ALLOC_NORM, bytesPerOp));
    }

    private static String metric(double score, String unit, boolean nanError) {
        // JMH writes "NaN" as a string when it has no confidence interval (a single iteration)
        String error = nanError ? "\"NaN\"" : String.format(Locale.ROOT, "%.3f", score * 0.01);
        return String.format(Locale.ROOT, "{\"score\":%.6f,\"scoreError\":%s,\"scoreConfidence\":[0,0],"
            + "\"scoreUnit\":\"%s\",\"rawData\":[[%.6f]]}", score, error, unit, score);
    }

    String json() {
        return "[\n" + String.join(",\n", entries) + "\n]\n";
    }

    List<BenchmarkResult> parse() {
        return JmhJson.parse(json(), "canned");
    }
}

package io.vringj.perf.regress;

import java.util.List;
import java.util.Objects;

/**
 * A tracked ratio: numerator over denominator, both from the same run, higher is better.
 *
 * @param id a stable id, the key in the baseline file (e.g. {@code q1.vringj-vs-agrona.4096B.batch32})
 * @param question the question it answers
 * @param description what it says, for the report
 * @param numerator the measured thing
 * @param denominator what it is compared with
 * @param target the target for the ratio, or NaN where the figure is only measured
 * @param twoThreaded whether it compares benchmarks that run two threads at once (noisier on a
 *     shared machine, so judged with the profile's wider tolerance)
 */
public record RatioSpec(String id, Question question, String description, Selector numerator, Selector denominator,
                        double target, boolean twoThreaded) {

    /**
     * @param id a stable id
     * @param question the question
     * @param description what it says
     * @param numerator the measured thing
     * @param denominator what it is compared with
     * @param target the target, or NaN
     * @param twoThreaded whether its benchmarks run two threads
     */
    public RatioSpec {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(question, "question");
        Objects.requireNonNull(description, "description");
        Objects.requireNonNull(numerator, "numerator");
        Objects.requireNonNull(denominator, "denominator");
    }

    /**
     * @param results a run's results
     * @return numerator / denominator, or NaN if either is missing or the denominator is not positive
     */
    public double compute(List<BenchmarkResult> results) {
        double n = numerator.score(results);
        double d = denominator.score(results);
        if (Double.isNaN(n) || Double.isNaN(d) || d <= 0) {
            return Double.NaN;
        }
        return n / d;
    }

    /**
     * @return whether its sides are measured as an {@link Interleaved} pair (one JVM per round, the
     *     two taking turns) rather than by JMH forks: its selectors name {@link Ratios#PAIRED_WITH}
     */
    public boolean interleaved() {
        return numerator.params().containsKey(Ratios.PAIRED_WITH);
    }

    /** @return whether the issue sets a target for this ratio */
    public boolean hasTarget() {
        return !Double.isNaN(target);
    }
}

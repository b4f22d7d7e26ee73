package io.vringj.perf.regress;

/**
 * One line of the verdict: a tracked figure of this run beside its baseline.
 *
 * @param id the ratio id or allocation key
 * @param question the question it belongs to
 * @param kind a ratio (higher is better) or an allocation (B/op, lower is better)
 * @param description what it says
 * @param current this run's value, NaN if the benchmark did not run
 * @param baseline the baseline's value, NaN if the baseline has none
 * @param tolerance for a ratio, the largest relative drop allowed; for an allocation, the B/op allowed over 0
 * @param target the target, NaN if none
 * @param status the verdict
 */
public record Check(String id, Question question, Kind kind, String description, double current, double baseline,
                    double tolerance, double target, Status status) {

    /** What is compared. */
    public enum Kind {
        /** A ratio between peers; higher is better. */
        RATIO,
        /** B/op of a hot path from {@code -prof gc}; lower is better, the target is 0. */
        ALLOCATION
    }

    /** The verdict on one figure. */
    public enum Status {
        /** Within tolerance of the baseline (or better). */
        PASS,
        /** Worse than the baseline by more than the tolerance: the run fails. */
        REGRESSION,
        /** Measured, but the baseline has no value for it yet. */
        NEW,
        /** Not measured in this run (question not selected or not built). */
        MISSING
    }

    /** @return current / baseline - 1 for a ratio (NaN if either is missing); current - baseline for an allocation */
    public double change() {
        return kind == Kind.RATIO ? current / baseline - 1 : current - baseline;
    }

    /** @return whether the target is met; {@code null} if there is no target or no value */
    public Boolean targetMet() {
        if (Double.isNaN(target) || Double.isNaN(current)) {
            return null;
        }
        return kind == Kind.RATIO ? current >= target : current <= target + tolerance;
    }
}

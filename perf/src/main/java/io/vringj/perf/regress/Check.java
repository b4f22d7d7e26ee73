package io.vringj.perf.regress;

/**
 * One line of the verdict: a tracked figure of this run beside its baseline, with the spread of
 * each over its rounds.
 *
 * @param id the ratio id or allocation key
 * @param question the question it belongs to
 * @param kind a ratio (higher is better) or an allocation (B/op, lower is better)
 * @param description what it says
 * @param run this run's median and spread over the rounds ({@link Spread#NONE} if the benchmark did not run)
 * @param base the baseline's median and spread ({@link Spread#NONE} if the baseline has none)
 * @param tolerance for a ratio, the largest relative drop allowed beyond the noise; for an
 *     allocation, the B/op allowed over 0
 * @param target the target, NaN if none
 * @param status the decision
 */
public record Check(String id, Question question, Kind kind, String description, Spread run, Spread base,
                    double tolerance, double target, Status status) {

    /** What is compared. */
    public enum Kind {
        /** A ratio between peers; higher is better. */
        RATIO,
        /** B/op of a hot path from {@code -prof gc}; lower is better, the target is 0. */
        ALLOCATION
    }

    /** The decision on one figure. */
    public enum Status {
        /** Within tolerance of the baseline (or better). */
        PASS("pass"),
        /** Worse than the baseline by more than the noise of both runs and the tolerance: the run fails. */
        REGRESSION("REGRESSION"),
        /**
         * The middle half of its spread over this run's rounds straddles the regression line
         * (the baseline's lower quartile × (1 − tolerance)): whether it regressed cannot be told.
         */
        NOISY("too noisy"),
        /** Measured, but this machine's baseline has no value for it yet. */
        NEW("new"),
        /** Not measured in this run (question not selected or not built). */
        MISSING("not measured"),
        /** Measured, but there is no baseline for this machine: shown, not judged. */
        UNJUDGED("not judged");

        private final String label;

        Status(String label) {
            this.label = label;
        }

        /** @return how the report names the decision */
        public String label() {
            return label;
        }
    }

    /** @return this run's median, NaN if not measured */
    public double current() {
        return run.median();
    }

    /** @return the baseline's median, NaN if none */
    public double baseline() {
        return base.median();
    }

    /** @return current / baseline - 1 for a ratio (NaN if either is missing); current - baseline for an allocation */
    public double change() {
        return kind == Kind.RATIO ? current() / baseline() - 1 : current() - baseline();
    }

    /**
     * @return for a ratio, the line its decision is drawn against ({@link Checks#regressionLine});
     *     NaN for an allocation or without a baseline
     */
    public double regressionLine() {
        return kind == Kind.RATIO && base.measured() ? Checks.regressionLine(base, tolerance) : Double.NaN;
    }

    /** @return whether the target is met; {@code null} if there is no target or no value */
    public Boolean targetMet() {
        if (Double.isNaN(target) || Double.isNaN(current())) {
            return null;
        }
        return kind == Kind.RATIO ? current() >= target : current() <= target + tolerance;
    }
}

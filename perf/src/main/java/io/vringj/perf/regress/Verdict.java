package io.vringj.perf.regress;

import java.util.List;

/**
 * The outcome of a run as a whole, with the exit status the command line returns for it. The
 * exit statuses are fixed: scripts (CI among them) depend on them.
 *
 * <pre>
 *   0  PASS                          judged, no regression
 *   1  REGRESSION                    a ratio fell beyond noise and tolerance, or a hot path allocates
 *   2  (usage or run error)          bad option, unreadable file, a benchmark failed
 *   3  NO BASELINE FOR THIS MACHINE  every figure shown, none judged
 *   4  TOO NOISY TO JUDGE            the load, steal time or round-to-round spread was too high
 * </pre>
 */
public enum Verdict {
    /** Judged; nothing regressed. */
    PASS(0, "PASS"),
    /** Judged; at least one figure regressed. */
    REGRESSION(1, "REGRESSION"),
    /** The baseline has no entry for this machine: figures are reported, none is judged. */
    NO_BASELINE(3, "NO BASELINE FOR THIS MACHINE"),
    /** The machine was too busy, or the rounds disagreed too much, to tell a regression from noise. */
    TOO_NOISY(4, "TOO NOISY TO JUDGE");

    /** Exit status of bad usage or a failed run (a benchmark threw, a file could not be read). */
    public static final int ERROR_EXIT = 2;

    private final int exitCode;
    private final String label;

    Verdict(int exitCode, String label) {
        this.exitCode = exitCode;
        this.label = label;
    }

    /** @return the command line's exit status for this verdict */
    public int exitCode() {
        return exitCode;
    }

    /** @return how reports print it */
    public String label() {
        return label;
    }

    /**
     * A verdict with the reasons behind it.
     *
     * @param verdict the verdict
     * @param reasons why (which figures regressed, what made the run too noisy); may be empty
     */
    public record Judgement(Verdict verdict, List<String> reasons) {
        /**
         * @param verdict the verdict
         * @param reasons why
         */
        public Judgement {
            java.util.Objects.requireNonNull(verdict, "verdict");
            reasons = List.copyOf(reasons);
        }
    }
}

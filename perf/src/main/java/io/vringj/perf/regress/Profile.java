package io.vringj.perf.regress;

/**
 * How long the runner measures, and how much a tracked ratio may fall below its baseline before
 * the run counts as a regression.
 *
 * <p>A profile runs the whole suite several <em>rounds</em>, one fork per benchmark per round,
 * and a ratio is the median of its per-round values. Peers of one question are measured one
 * after the other; on a shared machine the load drifts in between, so one round's ratio can be
 * far off, while the median of rounds that interleave the peers is not.
 *
 * <p>The tolerances are for a shared 2-core machine: ratios between peers measured in the same
 * run cancel most of the machine's speed, but not its noise. Two-thread benchmarks (a producer
 * and a consumer spinning on 2 cores) are disturbed by anything else that runs, so they get the
 * wider tolerance; single-thread ratios are steadier.
 */
public enum Profile {
    /** A few minutes on 2 cores: 3 rounds of 1 fork with 1 × 0.5 s warm-up and 1 × 1 s measurement. */
    QUICK(3, 1, 1, 500, 1, 1000, 0.20, 0.40),
    /** Tens of minutes: 3 rounds of 1 fork with 3 × 1 s warm-up and 5 × 1 s measurement. */
    FULL(3, 1, 3, 1000, 5, 1000, 0.10, 0.25);

    private final int rounds;
    private final int forks;
    private final int warmupIterations;
    private final int warmupMillis;
    private final int measurementIterations;
    private final int measurementMillis;
    private final double singleThreadTolerance;
    private final double twoThreadTolerance;

    Profile(int rounds, int forks, int warmupIterations, int warmupMillis, int measurementIterations,
            int measurementMillis, double singleThreadTolerance, double twoThreadTolerance) {
        this.rounds = rounds;
        this.forks = forks;
        this.warmupIterations = warmupIterations;
        this.warmupMillis = warmupMillis;
        this.measurementIterations = measurementIterations;
        this.measurementMillis = measurementMillis;
        this.singleThreadTolerance = singleThreadTolerance;
        this.twoThreadTolerance = twoThreadTolerance;
    }

    /** @return the lower-case name, used for the baseline file ({@code quick.json}) */
    public String id() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** @return how many times the whole suite runs; ratios are medians over rounds */
    public int rounds() {
        return rounds;
    }

    /** @return forks per benchmark per round */
    public int forks() {
        return forks;
    }

    /** @return warm-up iterations per fork */
    public int warmupIterations() {
        return warmupIterations;
    }

    /** @return milliseconds per warm-up iteration */
    public int warmupMillis() {
        return warmupMillis;
    }

    /** @return measurement iterations per fork */
    public int measurementIterations() {
        return measurementIterations;
    }

    /** @return milliseconds per measurement iteration */
    public int measurementMillis() {
        return measurementMillis;
    }

    /** @return a one-line description for reports */
    public String describe() {
        return String.format(java.util.Locale.ROOT, "%d rounds × %d fork, %d × %.1f s warm-up, %d × %.1f s measurement",
            rounds, forks, warmupIterations, warmupMillis / 1000.0, measurementIterations, measurementMillis / 1000.0);
    }

    /**
     * @param twoThreaded whether the ratio compares two-thread benchmarks
     * @return the largest relative drop below the baseline that is not a regression (0.2 = 20%)
     */
    public double tolerance(boolean twoThreaded) {
        return twoThreaded ? twoThreadTolerance : singleThreadTolerance;
    }

    /**
     * @param benchmarkRuns how many benchmark × parameter combinations will run in one round
     * @return a rough wall-clock estimate in seconds for one round (JVM start and set-up included)
     */
    public long estimateSeconds(int benchmarkRuns) {
        long perForkMillis = (long) warmupIterations * warmupMillis + (long) measurementIterations * measurementMillis
            + 1500;
        return (benchmarkRuns * forks * perForkMillis + 999) / 1000;
    }
}

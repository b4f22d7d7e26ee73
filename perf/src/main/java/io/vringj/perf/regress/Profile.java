package io.vringj.perf.regress;

/**
 * How long the runner measures, and how much a tracked ratio may fall below its baseline before
 * the run counts as a regression.
 *
 * <p>The tolerances are for a shared 2-core machine: ratios between peers measured in the same
 * run cancel most of the machine's speed, but not its noise. Two-thread benchmarks (a producer
 * and a consumer spinning on 2 cores) are disturbed by anything else that runs, so they get the
 * wider tolerance; single-thread ratios are steadier.
 */
public enum Profile {
    /** A few minutes on 2 cores: 1 fork, 1 × 1 s warm-up, 2 × 1 s measurement. */
    QUICK(1, 1, 1, 2, 1, 0.20, 0.40),
    /** Tens of minutes: 2 forks, 3 × 2 s warm-up, 5 × 2 s measurement. */
    FULL(2, 3, 2, 5, 2, 0.10, 0.25);

    private final int forks;
    private final int warmupIterations;
    private final int warmupSeconds;
    private final int measurementIterations;
    private final int measurementSeconds;
    private final double singleThreadTolerance;
    private final double twoThreadTolerance;

    Profile(int forks, int warmupIterations, int warmupSeconds, int measurementIterations, int measurementSeconds,
            double singleThreadTolerance, double twoThreadTolerance) {
        this.forks = forks;
        this.warmupIterations = warmupIterations;
        this.warmupSeconds = warmupSeconds;
        this.measurementIterations = measurementIterations;
        this.measurementSeconds = measurementSeconds;
        this.singleThreadTolerance = singleThreadTolerance;
        this.twoThreadTolerance = twoThreadTolerance;
    }

    /** @return the lower-case name, used for the baseline file ({@code quick.json}) */
    public String id() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** @return forks per benchmark */
    public int forks() {
        return forks;
    }

    /** @return warm-up iterations per fork */
    public int warmupIterations() {
        return warmupIterations;
    }

    /** @return seconds per warm-up iteration */
    public int warmupSeconds() {
        return warmupSeconds;
    }

    /** @return measurement iterations per fork */
    public int measurementIterations() {
        return measurementIterations;
    }

    /** @return seconds per measurement iteration */
    public int measurementSeconds() {
        return measurementSeconds;
    }

    /**
     * @param twoThreaded whether the ratio compares two-thread benchmarks
     * @return the largest relative drop below the baseline that is not a regression (0.2 = 20%)
     */
    public double tolerance(boolean twoThreaded) {
        return twoThreaded ? twoThreadTolerance : singleThreadTolerance;
    }

    /**
     * @param benchmarkRuns how many benchmark × parameter combinations will run
     * @return a rough wall-clock estimate in seconds (JVM start and set-up included)
     */
    public long estimateSeconds(int benchmarkRuns) {
        long perFork = warmupIterations * (long) warmupSeconds + measurementIterations * (long) measurementSeconds + 2;
        return benchmarkRuns * forks * perFork;
    }
}

package io.vringj.perf.regress;

/**
 * How long the runner measures, and how much a tracked ratio may fall below its baseline (beyond
 * the noise of both runs) before the run counts as a regression.
 *
 * <p>A profile measures each question in several short <em>rounds</em>; within a round every
 * parameter combination runs all its peers one after the other, one short fork each, so the peers
 * a ratio compares are measured seconds apart, under the same conditions. A ratio is computed
 * within each round and summarised by its median and interquartile range over the rounds
 * ({@link Spread}). The one-thread ratios ({@link RatioSpec#interleaved}: the DMA questions and
 * swiotlb's bounce vs copy) are the exception: each is measured in every round by one JVM in which both sides take
 * turns every {@value #SLICE_MICROS} µs ({@link Interleaved}), because seconds apart is already too
 * far on a host that changes speed every second or two.
 *
 * <p>Why many short rounds rather than a few long ones: on a shared 2-vCPU VM a two-thread
 * benchmark's rate depends on what else runs and, plausibly, on where the hypervisor places the
 * two vCPUs at the moment (the cost of moving a cache line between them differs several-fold),
 * and both drift over seconds to minutes. Peers measured minutes apart (the earlier layout: every
 * question of a round before the next round) see different machines, and their ratio swung by
 * 3x; peers measured back to back see the same one, and five rounds give a median that outvotes
 * a disturbed round and a spread that says how far to trust it. Each fork's warm-up iterations
 * let the JIT compile the loop before it is measured.
 *
 * <p>The tolerances are for a shared 2-core machine: two-thread benchmarks (a producer and a
 * consumer spinning on 2 cores) are disturbed by anything else that runs, so they get the wider
 * tolerance; single-thread ratios are steadier.
 */
public enum Profile {
    /**
     * A few minutes on 2 cores: 5 rounds of 1 fork with 2 × 0.2 s warm-up and 2 × 0.25 s
     * measurement; an interleaved pair measures for 1 s in all (both sides together), 0.5 s in each
     * of its two JVMs (one per set-up order), each after 1.5 s of warm-up.
     */
    QUICK(5, 1, 2, 200, 2, 250, 1500, 1000, 0.20, 0.40),
    /**
     * Tens of minutes: 9 rounds of 1 fork with 3 × 0.5 s warm-up and 3 × 0.5 s measurement; an
     * interleaved pair measures for 4 s in all, 2 s in each of its two JVMs, each after 3 s of warm-up.
     */
    FULL(9, 1, 3, 500, 3, 500, 3000, 4000, 0.10, 0.25);

    /** How long one side of an {@link Interleaved} pair runs before the other takes over, in both profiles. */
    public static final int SLICE_MICROS = 10_000;

    private final int rounds;
    private final int forks;
    private final int warmupIterations;
    private final int warmupMillis;
    private final int measurementIterations;
    private final int measurementMillis;
    private final int interleavedWarmupMillis;
    private final int interleavedMeasureMillis;
    private final double singleThreadTolerance;
    private final double twoThreadTolerance;

    Profile(int rounds, int forks, int warmupIterations, int warmupMillis, int measurementIterations,
            int measurementMillis, int interleavedWarmupMillis, int interleavedMeasureMillis,
            double singleThreadTolerance, double twoThreadTolerance) {
        this.rounds = rounds;
        this.forks = forks;
        this.warmupIterations = warmupIterations;
        this.warmupMillis = warmupMillis;
        this.measurementIterations = measurementIterations;
        this.measurementMillis = measurementMillis;
        this.interleavedWarmupMillis = interleavedWarmupMillis;
        this.interleavedMeasureMillis = interleavedMeasureMillis;
        this.singleThreadTolerance = singleThreadTolerance;
        this.twoThreadTolerance = twoThreadTolerance;
    }

    /** @return the lower-case name, used for the baseline file ({@code quick.json}) */
    public String id() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** @return how many times each question runs; ratios are medians over rounds */
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

    /** @return milliseconds an {@link Interleaved} pair alternates before it measures, in each of its two JVMs */
    public int interleavedWarmupMillis() {
        return interleavedWarmupMillis;
    }

    /** @return milliseconds an {@link Interleaved} pair measures, both sides and both JVMs together */
    public int interleavedMeasureMillis() {
        return interleavedMeasureMillis;
    }

    /** @return a one-line description for reports */
    public String describe() {
        return String.format(java.util.Locale.ROOT, "%d rounds × %d fork, %d × %.2f s warm-up, %d × %.2f s measurement;"
            + " interleaved pairs in both set-up orders, each %.1f s warm-up, %.2f s measurement in %d ms slices",
            rounds, forks, warmupIterations, warmupMillis / 1000.0, measurementIterations, measurementMillis / 1000.0,
            interleavedWarmupMillis / 1000.0, interleavedMeasureMillis / 2000.0, SLICE_MICROS / 1000);
    }

    /**
     * @param twoThreaded whether the ratio compares two-thread benchmarks
     * @return the largest relative drop below the baseline that is not a regression (0.2 = 20%)
     */
    public double tolerance(boolean twoThreaded) {
        return twoThreaded ? twoThreadTolerance : singleThreadTolerance;
    }

    /**
     * What a JVM of its own costs beyond its measured time: start, class loading, set-up and
     * tear-down, as measured on a 2-vCPU VM (about 0.5 s a fork; JMH's own start for each batch is
     * shared by its forks).
     */
    static final long JVM_OVERHEAD_MILLIS = 600;

    /**
     * @param benchmarkRuns how many forks will run (each a benchmark × parameter combination in one round)
     * @return a rough wall-clock estimate in seconds for all of them, rounded up once for the whole
     *     (JVM start and set-up included)
     */
    public long estimateSeconds(int benchmarkRuns) {
        long perForkMillis = (long) warmupIterations * warmupMillis + (long) measurementIterations * measurementMillis
            + JVM_OVERHEAD_MILLIS;
        return ((long) benchmarkRuns * forks * perForkMillis + 999) / 1000;
    }

    /**
     * @param pairs how many {@link Interleaved} pair measurements will run
     * @return a rough wall-clock estimate in seconds for all of them, rounded up once for the whole
     *     (two JVMs each, one per set-up order, each warmed up; start and set-up included)
     */
    public long estimateInterleavedSeconds(int pairs) {
        return ((long) pairs * (2L * (interleavedWarmupMillis + JVM_OVERHEAD_MILLIS) + interleavedMeasureMillis) + 999)
            / 1000;
    }
}

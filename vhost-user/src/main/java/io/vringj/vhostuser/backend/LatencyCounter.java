package io.vringj.vhostuser.backend;

import java.util.Locale;
import java.util.concurrent.atomic.LongAccumulator;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counts the durations of one kind of event (how many, their total and the longest), for the
 * back end's statistics; thread-safe and allocation-free.
 */
public final class LatencyCounter {
    private final LongAdder count = new LongAdder();
    private final LongAdder totalNanos = new LongAdder();
    private final LongAccumulator maxNanos = new LongAccumulator(Math::max, 0);

    /**
     * Adds one duration.
     *
     * @param nanos the duration in nanoseconds; a negative one (clocks of two threads) counts as 0
     */
    public void add(long nanos) {
        long n = Math.max(0, nanos);
        count.increment();
        totalNanos.add(n);
        maxNanos.accumulate(n);
    }

    /** @return how many durations were added */
    public long count() {
        return count.sum();
    }

    /** @return their sum in nanoseconds */
    public long totalNanos() {
        return totalNanos.sum();
    }

    /** @return the longest in nanoseconds, 0 if none */
    public long maxNanos() {
        return maxNanos.get();
    }

    /** @return the mean in nanoseconds, 0 if none */
    public long meanNanos() {
        long n = count();
        return n == 0 ? 0 : totalNanos() / n;
    }

    /** @return {@code n/mean µs/max µs}, e.g. {@code 120/35.2us/410.0us} */
    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%d/%.1fus/%.1fus", count(), meanNanos() / 1e3, maxNanos() / 1e3);
    }
}

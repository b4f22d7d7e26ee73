package io.vringj.perf.ring;

/**
 * What a benchmark thread does when a step finds nothing to do: spin (return at once) for
 * {@value #SPINS} failures in a row, then {@link Thread#yield()} once. Never blocks; the same for
 * every peer. Owned by one thread.
 */
public final class Backoff {
    /** Failed steps in a row before the thread yields its core once. */
    static final int SPINS = 256;

    private int streak;

    /** A step failed. */
    public void failed() {
        if (++streak >= SPINS) {
            streak = 0;
            Thread.yield();
        }
    }

    /** A step made progress. */
    public void progressed() {
        streak = 0;
    }
}

package io.vringj.perf.ring;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * The consumer thread's counters in a two-thread benchmark: {@code messages} is the throughput
 * the ratios use (payloads consumed per second); {@code pollFailures} counts polls that found
 * nothing. A failed poll backs off as {@link ProducerCounters} describes.
 */
@State(Scope.Thread)
@AuxCounters(AuxCounters.Type.OPERATIONS)
public class ConsumerCounters {
    /** Payloads consumed. */
    public long messages;
    /** Polls (or pops) that found the queue empty. */
    public long pollFailures;

    private final Backoff backoff = new Backoff();

    /** Counts an empty poll and backs off after many in a row. */
    void pollFailed() {
        pollFailures++;
        backoff.failed();
    }

    /**
     * Counts consumed payloads; the failure streak ends.
     *
     * @param n how many
     */
    void consumed(int n) {
        messages += n;
        backoff.progressed();
    }

    /** Zeroes the counters before each iteration. */
    @Setup(Level.Iteration)
    public void reset() {
        messages = 0;
        pollFailures = 0;
    }
}

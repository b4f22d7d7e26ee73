package io.vringj.perf.ring;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * The producer thread's counters in a two-thread benchmark, reported by JMH as rates beside the
 * primary result: an idle or starved benchmark shows up here instead of hiding in the average.
 *
 * <p>A benchmark step that fails calls {@link #offerFailed()}: after {@value Backoff#SPINS} failures
 * in a row the thread yields its core once (never blocks), so on a machine with more runnable
 * threads than cores a descheduled partner gets the core back instead of the spinner burning
 * its whole time slice. On a quiet machine a partner answers long before that.
 */
@State(Scope.Thread)
@AuxCounters(AuxCounters.Type.OPERATIONS)
public class ProducerCounters {
    /** Offers (or adds) refused because the queue was full or no buffer was free. */
    public long offerFailures;
    /** Calls that found the previous burst still being consumed. */
    public long drainWaits;

    private final Backoff backoff = new Backoff();

    /** Counts a refused offer and backs off after many in a row. */
    void offerFailed() {
        offerFailures++;
        backoff.failed();
    }

    /** Counts a call that waited for the consumer to finish a burst, backing off as a refused offer does. */
    void drainWaited() {
        drainWaits++;
        backoff.failed();
    }

    /** Notes progress: the failure streak ends. */
    void progressed() {
        backoff.progressed();
    }

    /** Zeroes the counters before each iteration. */
    @Setup(Level.Iteration)
    public void reset() {
        offerFailures = 0;
        drainWaits = 0;
    }
}

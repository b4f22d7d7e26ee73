package io.vringj.perf.ring;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * The producer thread's counters in a two-thread benchmark, reported by JMH as rates beside the
 * primary result: an idle or starved benchmark shows up here instead of hiding in the average.
 */
@State(Scope.Thread)
@AuxCounters(AuxCounters.Type.OPERATIONS)
public class ProducerCounters {
    /** Offers (or adds) refused because the queue was full or no buffer was free. */
    public long offerFailures;

    /** Zeroes the counters before each iteration. */
    @Setup(Level.Iteration)
    public void reset() {
        offerFailures = 0;
    }
}

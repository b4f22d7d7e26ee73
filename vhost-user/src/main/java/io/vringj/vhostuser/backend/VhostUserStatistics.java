package io.vringj.vhostuser.backend;

import java.util.concurrent.atomic.LongAdder;

/**
 * Counters of a back end across its connections; cheap to keep, printed when a connection
 * ends and at shutdown. Thread-safe.
 */
public final class VhostUserStatistics {
    /** Connections accepted. */
    public final LongAdder connections = new LongAdder();
    /** Front-end requests read. */
    public final LongAdder messages = new LongAdder();
    /** Connections closed because the front end broke the protocol. */
    public final LongAdder protocolErrors = new LongAdder();
    /** Connections closed because a queue failed (a fatal ring error). */
    public final LongAdder queueErrors = new LongAdder();
    /** Interrupts dropped because the front end let its call eventfd reach the maximum count. */
    public final LongAdder callsDropped = new LongAdder();
    /** Connections refused because the limit of front ends served at once was reached. */
    public final LongAdder connectionsRefused = new LongAdder();
    /** Times a vring worker woke from poll (a kick, an IOTLB update, a stop); a spinning worker shows here. */
    public final LongAdder workerWakeups = new LongAdder();
    /** Chains completed by stopped workers. */
    public final LongAdder chains = new LongAdder();
    /** Bytes written into chains by stopped workers. */
    public final LongAdder bytes = new LongAdder();
    /** IOTLB_MSG requests received from the front end. */
    public final LongAdder iotlbMessages = new LongAdder();
    /** IOTLB updates applied. */
    public final LongAdder iotlbUpdates = new LongAdder();
    /** IOTLB invalidations applied. */
    public final LongAdder iotlbInvalidations = new LongAdder();
    /** IOTLB misses sent over the back-end channel. */
    public final LongAdder iotlbMisses = new LongAdder();
    /** IOTLB access failures (permission) sent over the back-end channel. */
    public final LongAdder iotlbAccessFailures = new LongAdder();
    /** IOTLB miss round trips, part one: a worker's miss until its MISS is written (our sender thread). */
    public final LatencyCounter missToSocket = new LatencyCounter();
    /** Part two: the MISS written until the UPDATE answering it is read (the front end resolving it). */
    public final LatencyCounter missAnswer = new LatencyCounter();
    /** Part three: that UPDATE applied until a parked worker runs again (our wake-up). */
    public final LatencyCounter updateToWorker = new LatencyCounter();

    @Override
    public String toString() {
        return "connections=" + connections.sum() + " refused=" + connectionsRefused.sum() + " messages=" + messages.sum() + " protocolErrors="
            + protocolErrors.sum() + " queueErrors=" + queueErrors.sum() + " chains=" + chains.sum() + " bytes="
            + bytes.sum() + " iotlbMessages=" + iotlbMessages.sum() + " iotlbUpdates=" + iotlbUpdates.sum()
            + " iotlbInvalidations=" + iotlbInvalidations.sum() + " iotlbMisses=" + iotlbMisses.sum() + " iotlbAccessFailures=" + iotlbAccessFailures.sum()
            + " callsDropped=" + callsDropped.sum()
            + (missToSocket.count() + missAnswer.count() == 0 ? "" : " missToSocket=" + missToSocket
                + " missAnswer=" + missAnswer + " updateToWorker=" + updateToWorker);
    }
}

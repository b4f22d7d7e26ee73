package io.vringj.vhostuser.backend;

import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.IotlbMessage;
import io.vringj.dma.IotlbMessageCodec;
import io.vringj.dma.IotlbMessageProcessor;
import io.vringj.dma.IotlbProtocolException;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.VhostUserChannel;
import io.vringj.vhostuser.VhostUserMessage;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * The IOTLB side of a connection ({@code ACCESS_PLATFORM}): the device IOTLB over the front
 * end's user addresses, the IOTLB_MSG requests that update and invalidate it, and the back-end
 * channel ({@code SET_BACKEND_REQ_FD}) its misses go out on.
 *
 * <pre>
 *   front end --IOTLB_MSG (update/invalidate)--> process() --> DeviceIotlb --> workers wake
 *   worker miss --> DeviceIotlb sink --> BackendChannel (own sender thread) --> front end
 * </pre>
 *
 * <p>Requests run on the connection thread; the message sink runs on queue workers and never
 * waits.
 */
final class IotlbSide implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(IotlbSide.class.getName());

    private final VhostUserStatistics statistics;
    private final Consumer<String> onFatal;
    /** The IOTLB's downstream: user addresses through the current memory table. */
    private final FrontEndMemory frontEndMemory = new FrontEndMemory();
    private DeviceIotlb iotlb;
    private IotlbMessageProcessor processor;
    /** Read by queue workers through the IOTLB's message sink; written by the connection thread. */
    private volatile BackendChannel backendChannel;
    /** Times miss round trips in parts (statistics). */
    private final MissClock missClock;
    /** When the last UPDATE that answered a timed miss was applied, 0 if the last message answered none. */
    private long lastAnsweredAt;

    /**
     * @param statistics where IOTLB counters go
     * @param onFatal told why, when a miss cannot be sent (no back-end channel)
     */
    IotlbSide(VhostUserStatistics statistics, Consumer<String> onFatal) {
        this.statistics = Objects.requireNonNull(statistics, "statistics");
        this.onFatal = Objects.requireNonNull(onFatal, "onFatal");
        this.missClock = new MissClock(statistics);
    }

    /** The memory table UPDATEs point into; swapped only while every worker is stopped. */
    void setTable(MemoryTable table) {
        frontEndMemory.setTable(table);
    }

    /** Replaces the back-end channel ({@code SET_BACKEND_REQ_FD}); this object closes it. */
    void setBackendChannel(VhostUserChannel channel) {
        if (backendChannel != null) {
            backendChannel.close();
        }
        backendChannel = new BackendChannel(channel, statistics, missClock);
    }

    /** @return whether the front end gave a back-end channel */
    boolean hasBackendChannel() {
        return backendChannel != null;
    }

    /** @return the device IOTLB, made on first use; misses go out over the back-end channel */
    DeviceIotlb iotlb() {
        if (processor == null) {
            iotlb = new DeviceIotlb(frontEndMemory);
            iotlb.setMessageSink(this::sendToFrontEnd);
            processor = new IotlbMessageProcessor(iotlb);
        }
        return iotlb;
    }

    /**
     * Applies an IOTLB_MSG whose size the caller checked.
     *
     * @return the message's type (after an UPDATE or BATCH_END the caller wakes parked workers)
     * @throws ProtocolException if the message is malformed or refused by the IOTLB
     */
    IotlbMessage.Type process(VhostUserMessage m) throws ProtocolException {
        statistics.iotlbMessages.increment();
        iotlb();
        // QEMU 7.2 leaves perm and uaddr of an INVALIDATE uninitialised; the codec ignores them there
        IotlbMessage message;
        try {
            message = IotlbMessageCodec.decode(m.payload(), 0, m.size());
            processor.process(message);
        } catch (IotlbProtocolException e) {
            throw new ProtocolException("IOTLB_MSG refused: " + e.getMessage(), e);
        }
        if (LOG.isLoggable(System.Logger.Level.DEBUG)) {
            LOG.log(System.Logger.Level.DEBUG, "IOTLB " + message);
        }
        lastAnsweredAt = 0;
        switch (message.type()) {
            case UPDATE -> {
                statistics.iotlbUpdates.increment();
                long now = System.nanoTime();
                if (missClock.answered(message.iova(), message.size(), now)) {
                    lastAnsweredAt = now;
                }
            }
            case INVALIDATE -> statistics.iotlbInvalidations.increment();
            default -> {
                // BATCH_BEGIN / BATCH_END: nothing to count
            }
        }
        return message.type();
    }

    /** @return when the last message applied answered a timed miss ({@link System#nanoTime()}), 0 if it answered none */
    long lastAnsweredAt() {
        return lastAnsweredAt;
    }

    /** The IOTLB's message sink, called on queue workers: queue the message, never wait. */
    private void sendToFrontEnd(IotlbMessage message) {
        BackendChannel channel = backendChannel;
        if (message.type() == IotlbMessage.Type.MISS) {
            missClock.queued(message.iova(), System.nanoTime());
        }
        if (channel == null) {
            onFatal.accept("IOTLB " + message + " but the front end gave no back-end channel (SET_BACKEND_REQ_FD)");
        } else if (!channel.send(message)) {
            LOG.log(System.Logger.Level.WARNING, "back-end channel full; dropped " + message);
        }
    }

    @Override
    public void close() {
        if (backendChannel != null) {
            backendChannel.close();
        }
    }
}

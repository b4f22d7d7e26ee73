package io.vringj.dma;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * Applies the IOTLB messages a device receives from the IOMMU side to a {@link DeviceIotlb}:
 *
 * <pre>
 *   UPDATE        → iotlb.update   (answers pending MISSes; parked requests can retry)
 *   INVALIDATE    → iotlb.invalidate (returns once no worker uses the range)
 *   BATCH_BEGIN   → collect UPDATE / INVALIDATE ...
 *   BATCH_END     → ... and apply them at once (one epoch step)
 *   MISS, ACCESS_FAIL → refused: the device sends those, it does not receive them
 * </pre>
 *
 * <p>A bad message (zero size, a range wrapping past 2^64, an UPDATE without permission, a
 * device-to-IOMMU type, a batch marker out of place, bytes that do not decode) is refused with
 * an {@link IotlbProtocolException} and changes nothing.
 *
 * <p>Thread-safe: calls are serialised on this object (a batch belongs to one channel).
 */
public final class IotlbMessageProcessor {
    /** The most messages one batch may hold; a longer batch is refused. */
    public static final int MAX_BATCH = 4096;

    private final DeviceIotlb iotlb;
    private final IotlbMessage[] batch = new IotlbMessage[MAX_BATCH];
    private int batchSize = -1;
    private long processed;

    /**
     * @param iotlb the IOTLB messages are applied to
     */
    public IotlbMessageProcessor(DeviceIotlb iotlb) {
        this.iotlb = Objects.requireNonNull(iotlb, "iotlb");
    }

    /** @return the IOTLB */
    public DeviceIotlb iotlb() {
        return iotlb;
    }

    /** @return whether a batch is open (BATCH_BEGIN seen, BATCH_END not yet) */
    public synchronized boolean inBatch() {
        return batchSize >= 0;
    }

    /** @return how many messages were applied or queued in a batch */
    public synchronized long processed() {
        return processed;
    }

    /**
     * Decodes and applies one message.
     *
     * @param bytes the message as {@link IotlbMessageCodec} lays it out
     * @param offset where it starts
     * @param length its length
     * @throws IotlbProtocolException if it does not decode or breaks the protocol
     */
    public void process(MemorySegment bytes, long offset, long length) throws IotlbProtocolException {
        process(IotlbMessageCodec.decode(bytes, offset, length));
    }

    /**
     * Applies one message.
     *
     * @param message the message
     * @throws IotlbProtocolException if it breaks the protocol (nothing is changed then)
     */
    public synchronized void process(IotlbMessage message) throws IotlbProtocolException {
        Objects.requireNonNull(message, "message");
        switch (message.type()) {
            case UPDATE, INVALIDATE -> {
                check(message);
                if (batchSize >= 0) {
                    if (batchSize == MAX_BATCH) {
                        batchSize = -1;
                        throw new IotlbProtocolException("IOTLB batch holds more than " + MAX_BATCH
                            + " messages; the batch is dropped");
                    }
                    batch[batchSize++] = message;
                } else if (message.type() == IotlbMessage.Type.UPDATE) {
                    iotlb.update(message.iova(), message.size(), message.uaddr(), message.permission());
                } else {
                    iotlb.invalidate(message.iova(), message.size());
                }
            }
            case BATCH_BEGIN -> {
                if (batchSize >= 0) {
                    throw new IotlbProtocolException("BATCH_BEGIN inside a batch of " + batchSize + " messages");
                }
                batchSize = 0;
            }
            case BATCH_END -> {
                if (batchSize < 0) {
                    throw new IotlbProtocolException("BATCH_END without a BATCH_BEGIN");
                }
                int n = batchSize;
                batchSize = -1;
                iotlb.applyBatch(batch, n);
                Arrays.fill(batch, 0, n, null);
            }
            case MISS, ACCESS_FAIL -> throw new IotlbProtocolException(message.type()
                + " goes from the device to the IOMMU; a device does not receive it: " + message);
        }
        processed++;
    }

    private static void check(IotlbMessage m) throws IotlbProtocolException {
        try {
            DeviceIotlb.checkRange(m.type().name(), m.iova(), m.size());
        } catch (IllegalArgumentException e) {
            throw new IotlbProtocolException(e.getMessage());
        }
        if (m.type() == IotlbMessage.Type.UPDATE && m.permission() == Permission.NONE) {
            throw new IotlbProtocolException(String.format("UPDATE of [0x%x, +0x%x) has permission 0; it must be RO, WO or RW",
                m.iova(), m.size()));
        }
    }
}

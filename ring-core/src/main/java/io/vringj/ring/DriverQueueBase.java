package io.vringj.ring;

/**
 * What the split and packed driver queues share: the broken latch and the per-head bookkeeping
 * that lets the driver check every used entry a device returns. The device cannot reach these
 * arrays, so a device rewriting ring memory cannot make the driver free a chain twice.
 */
abstract sealed class DriverQueueBase implements DriverQueue permits SplitDriverQueue, PackedDriverQueue {
    final int queueSize;
    final long features;
    final boolean eventIdx;
    final boolean indirect;

    /** Descriptors held by each in-flight head (buffer id); 0 when not in flight. */
    final int[] chainDescriptors;
    /** Writable bytes of each in-flight chain, to check the device's used length. */
    private final long[] chainWritable;
    private int inFlight;
    private long lastUsedLength;

    VirtqueueException broken;

    DriverQueueBase(long features, int queueSize) {
        this.queueSize = queueSize;
        this.features = features;
        this.eventIdx = VirtioFeatures.has(features, VirtioFeatures.EVENT_IDX);
        this.indirect = VirtioFeatures.has(features, VirtioFeatures.INDIRECT_DESC);
        this.chainDescriptors = new int[queueSize];
        this.chainWritable = new long[queueSize];
    }

    @Override
    public final int queueSize() {
        return queueSize;
    }

    @Override
    public final long features() {
        return features;
    }

    @Override
    public final int inFlight() {
        return inFlight;
    }

    @Override
    public final boolean isBroken() {
        return broken != null;
    }

    @Override
    public final long usedLength() {
        return lastUsedLength;
    }

    final VirtqueueException fail(RingError error, String detail) {
        broken = new VirtqueueException(error, detail, null);
        return broken;
    }

    final void checkNotBroken() throws VirtqueueException {
        if (broken != null) {
            throw broken;
        }
    }

    /** A chain holds 1..{@link DeviceQueue#MAX_CHAIN_PIECES} buffers: more would break a QEMU-like device's queue. */
    static void checkChainSize(BufferChain chain) {
        if (chain.size() == 0) {
            throw new IllegalArgumentException("cannot add an empty buffer chain");
        }
        if (chain.size() > DeviceQueue.MAX_CHAIN_PIECES) {
            throw new IllegalArgumentException("chain of " + chain.size() + " buffers; a device maps at most "
                + DeviceQueue.MAX_CHAIN_PIECES + " pieces per chain (QEMU's VIRTQUEUE_MAX_SIZE)");
        }
    }

    final void checkIndirectAllowed(BufferChain chain) {
        if (!indirect) {
            throw new IllegalStateException("indirect descriptors need VIRTIO_F_INDIRECT_DESC (bit 28), "
                + "which was not negotiated (features 0x" + Long.toHexString(features) + ")");
        }
        checkChainSize(chain);
        int n = chain.size();
        if (n > queueSize) {
            // a driver MUST NOT create a chain longer than the queue size, indirect or not [virtio 2.7.5.3.1]
            throw new IllegalArgumentException("indirect table of " + n + " descriptors; it must hold 1.." + queueSize
                + " (the queue size)");
        }
    }

    static void checkTableSize(BufferChain chain, java.lang.foreign.MemorySegment table) {
        checkChainSize(chain);
        long need = RingFormat.DESC_SIZE * chain.size();
        if (table.byteSize() < need) {
            throw new IllegalArgumentException("indirect table of " + table.byteSize() + " bytes is too small for "
                + chain.size() + " descriptors (" + need + " bytes)");
        }
    }

    final void markInFlight(int head, int descriptors, long writable) {
        chainDescriptors[head] = descriptors;
        chainWritable[head] = writable;
        inFlight++;
    }

    /** @return the writable bytes of the chain in flight at {@code head} (0 if none is) */
    final long chainWritable(int head) {
        return chainWritable[head];
    }

    /**
     * Checks a used entry from the device and takes the chain back.
     *
     * @param usedIndex where the entry was (split: used idx; packed: ring position), for the message
     * @return how many descriptors the chain held
     */
    final int takeUsed(long id, long len, int usedIndex) throws VirtqueueException {
        if (id >= queueSize || chainDescriptors[(int) id] == 0) {
            throw fail(RingError.USED_ID_NOT_IN_FLIGHT, "used id " + id + " at used index " + usedIndex + ", queue size "
                + queueSize);
        }
        int head = (int) id;
        if (len > chainWritable[head]) {
            throw fail(RingError.USED_LENGTH_TOO_LARGE, "used length " + len + " for head " + head + " whose chain has "
                + chainWritable[head] + " writable bytes");
        }
        int n = chainDescriptors[head];
        chainDescriptors[head] = 0;
        inFlight--;
        lastUsedLength = len;
        return n;
    }
}

package io.vringj.ring;

/**
 * What the split and packed driver queues share: the broken latch and the per-head bookkeeping
 * that lets the driver check every used entry a device returns. The device cannot reach these
 * arrays, so a device rewriting ring memory cannot make the driver free a chain twice.
 *
 * <p>With {@link VirtioFeatures#IN_ORDER} the device uses buffers in the order they were made
 * available and may return a batch with one used entry naming the batch's last buffer [virtio
 * 2.7.9, 2.8.8]. The driver then keeps the ids in the order it offered them:
 *
 * <pre>
 *   availOrder  ids in the order they were added, a ring of Q slots
 *               [orderTake .. orderPut) are in flight, oldest first
 *   orderSlot   the slot of each in-flight id, so a used id's batch size is one subtraction
 *   batchLast   the id the batch being taken back ends at (-1: none); batchLastLength its length
 * </pre>
 */
abstract sealed class DriverQueueBase implements DriverQueue permits SplitDriverQueue, PackedDriverQueue {
    final int queueSize;
    final long features;
    final boolean eventIdx;
    final boolean indirect;
    /** VIRTIO_F_IN_ORDER was negotiated: used entries may cover a batch [virtio 2.7.9, 2.8.8]. */
    final boolean inOrder;

    /** Descriptors held by each in-flight head (buffer id); 0 when not in flight. */
    final int[] chainDescriptors;
    /** Writable bytes of each in-flight chain, to check the device's used length. */
    private final long[] chainWritable;
    private int inFlight;
    private long lastUsedLength;

    /** In-order only (else null): ids in the order they were made available, a ring of Q slots. */
    private final int[] availOrder;
    /** In-order only: the slot in {@link #availOrder} of each in-flight id. */
    private final int[] orderSlot;
    /** In-order only: the slot of the oldest id in flight, and of the next id added. */
    private int orderTake;
    private int orderPut;
    /** In-order only: the id the batch being taken back ends at, or -1 when none is. */
    private int batchLast = -1;
    private long batchLastLength;

    VirtqueueException broken;

    DriverQueueBase(long features, int queueSize) {
        this.queueSize = queueSize;
        this.features = features;
        this.eventIdx = VirtioFeatures.has(features, VirtioFeatures.EVENT_IDX);
        this.indirect = VirtioFeatures.has(features, VirtioFeatures.INDIRECT_DESC);
        this.chainDescriptors = new int[queueSize];
        this.chainWritable = new long[queueSize];
        this.inOrder = VirtioFeatures.has(features, VirtioFeatures.IN_ORDER);
        this.availOrder = inOrder ? new int[queueSize] : null;
        this.orderSlot = inOrder ? new int[queueSize] : null;
    }

    @Override
    public final boolean inOrder() {
        return inOrder;
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
        if (inOrder) {
            availOrder[orderPut] = head;
            orderSlot[head] = orderPut;
            orderPut = orderPut + 1 == queueSize ? 0 : orderPut + 1;
        }
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
        if (inOrder) {
            orderTake = orderTake + 1 == queueSize ? 0 : orderTake + 1;
        }
        return n;
    }

    /** @return whether a batch named by one used entry is still being taken back (in-order only) */
    final boolean inBatch() {
        return batchLast >= 0;
    }

    /**
     * Starts taking back the batch a used entry names [virtio 2.7.9, 2.8.8]: every buffer still
     * in flight that was made available before {@code id}, then {@code id} itself. Checks the
     * entry first, so a bad one hands back nothing.
     *
     * @param id the used id, as the device wrote it
     * @param len the used length, for the last buffer of the batch
     * @param usedIndex where the entry was (split: used idx; packed: ring position), for the message
     * @param limit the most buffers the entry may cover (split: how far the used idx moved; packed: Q)
     * @throws VirtqueueException if {@code id} is not in flight, the batch is longer than {@code limit},
     *     or {@code len} is larger than the writable part of {@code id}'s chain (the queue is then broken)
     */
    final void beginBatch(long id, long len, int usedIndex, int limit) throws VirtqueueException {
        if (id >= queueSize || chainDescriptors[(int) id] == 0) {
            throw fail(RingError.USED_ID_NOT_IN_FLIGHT, "used id " + id + " at used index " + usedIndex + ", queue size "
                + queueSize + (inFlight == 0 ? "; no buffer is in flight"
                : "; with VIRTIO_F_IN_ORDER the next buffer expected is id " + availOrder[orderTake]));
        }
        int last = (int) id;
        int slot = orderSlot[last];
        // both slots are below Q: the distance is in 0..Q-1, the count in 1..Q
        int count = (slot >= orderTake ? slot - orderTake : slot + queueSize - orderTake) + 1;
        if (count > limit) {
            throw fail(RingError.USED_NOT_IN_ORDER, "used id " + id + " at used index " + usedIndex + " closes a batch of "
                + count + " buffers (from id " + availOrder[orderTake] + "), but the used idx moved by only " + limit);
        }
        if (len > chainWritable[last]) {
            throw fail(RingError.USED_LENGTH_TOO_LARGE, "used length " + len + " for head " + last + " whose chain has "
                + chainWritable[last] + " writable bytes");
        }
        batchLast = last;
        batchLastLength = len;
    }

    /**
     * The next buffer of the batch begun by {@link #beginBatch}: the oldest in flight.
     *
     * @return its id; {@link #batchLength(int)} then gives its used length
     */
    final int nextInBatch() {
        return availOrder[orderTake];
    }

    /**
     * @param id the buffer {@link #nextInBatch()} returned
     * @return its used length: the entry's for the batch's last buffer (ending the batch); for the
     *     others, their chain's writable length, as the spec assumes skipped buffers were used completely
     */
    final long batchLength(int id) {
        if (id == batchLast) {
            batchLast = -1;
            return batchLastLength;
        }
        return chainWritable[id];
    }
}

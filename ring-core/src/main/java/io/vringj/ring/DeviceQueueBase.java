package io.vringj.ring;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * What the split and packed device queues share: the broken latch, in-flight bookkeeping,
 * and the per-descriptor rules (length, order, total, translation) that do not depend on the
 * layout. One place for each rule, so both layouts validate alike.
 */
abstract sealed class DeviceQueueBase implements DeviceQueue permits SplitDeviceQueue, PackedDeviceQueue {
    final int queueSize;
    final long features;
    final boolean eventIdx;
    final boolean indirect;
    final RingAddresses addresses;
    final AddressSpace space;

    /** In-flight state per head (split) or buffer id (packed). */
    private final boolean[] inFlight;
    private final long[] writable;
    private int inFlightCount;

    VirtqueueException broken;
    /** The address space's epoch when the ring areas were last translated. */
    private long ringEpoch;

    DeviceQueueBase(long features, int queueSize, RingAddresses addresses, AddressSpace space) {
        this.queueSize = queueSize;
        this.features = features;
        this.eventIdx = VirtioFeatures.has(features, VirtioFeatures.EVENT_IDX);
        this.indirect = VirtioFeatures.has(features, VirtioFeatures.INDIRECT_DESC);
        this.addresses = Objects.requireNonNull(addresses, "addresses");
        this.space = Objects.requireNonNull(space, "addressSpace");
        this.inFlight = new boolean[queueSize];
        this.writable = new long[queueSize];
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
    public final boolean isBroken() {
        return broken != null;
    }

    @Override
    public final VirtqueueException brokenReason() {
        return broken;
    }

    @Override
    public final int inFlight() {
        return inFlightCount;
    }

    /** Translates the ring areas and records the epoch with {@link #ringEpoch(long)}. */
    abstract void translateRings() throws VirtqueueException;

    final void ringEpoch(long epoch) {
        ringEpoch = epoch;
    }

    /**
     * Translates the ring areas again if the address space has changed since (an IOTLB update or
     * invalidation): the per-queue ring-area translation cache. A miss is passed on.
     */
    final void refreshRings() throws VirtqueueException {
        if (space.epoch() != ringEpoch) {
            translateRings();
        }
    }

    /** Builds the error; a fatal one latches the queue broken. */
    final VirtqueueException fail(RingError error, String detail, Throwable cause) {
        VirtqueueException e = new VirtqueueException(error, detail, cause);
        if (error.fatal()) {
            broken = e;
        }
        return e;
    }

    static void checkAligned(String what, long address, int align) throws VirtqueueException {
        if ((address & (align - 1)) != 0) {
            throw new VirtqueueException(RingError.ADDRESS_FAULT, what + " at bus address 0x"
                + Long.toHexString(address) + " is not aligned to " + align + " bytes", null);
        }
    }

    /** Translates one ring area into a single aligned slice. */
    final MemorySegment translateArea(String what, long busAddress, long size, Access access, int align)
        throws VirtqueueException {
        MemorySegment area;
        try {
            area = space.translate(busAddress, size, access);
        } catch (TranslationException e) {
            throw translationFailure(what + " at bus address 0x" + Long.toHexString(busAddress) + ", " + size
                + " bytes", e);
        }
        if (area.address() % align != 0) {
            throw fail(RingError.ADDRESS_FAULT, what + " at bus address 0x" + Long.toHexString(busAddress)
                + " is backed by native memory not aligned to " + align + " bytes", null);
        }
        return area;
    }

    /** A miss is not fatal and consumes nothing; a fault breaks the queue. */
    final VirtqueueException translationFailure(String what, TranslationException e) {
        if (e.kind() == TranslationException.Kind.MISS) {
            return new VirtqueueException(RingError.TRANSLATION_MISS, what, e);
        }
        return fail(RingError.ADDRESS_FAULT, what + ": " + e.getMessage(), e);
    }

    /**
     * Fails if {@code head} (split) or buffer id (packed) is out of range or already in flight.
     *
     * @param availIndex where it was found (split: avail idx; packed: ring position), for the message
     */
    final void checkNotInFlight(int head, int availIndex) throws VirtqueueException {
        if (head >= queueSize) {
            throw fail(RingError.HEAD_OUT_OF_RANGE, "head " + head + " at avail index " + availIndex + ", queue size "
                + queueSize, null);
        }
        if (inFlight[head]) {
            throw fail(RingError.HEAD_IN_FLIGHT, "head " + head + " at avail index " + availIndex, null);
        }
    }

    final void markInFlight(int head, long writableBytes) {
        inFlight[head] = true;
        writable[head] = writableBytes;
        inFlightCount++;
    }

    /** Checks an addUsed call by the caller and marks the head returned. */
    final void markUsed(int head, long writtenLength) {
        if (broken != null) {
            throw new IllegalStateException("queue is broken: " + broken.getMessage());
        }
        if (head < 0 || head >= queueSize || !inFlight[head]) {
            throw new IllegalStateException("head " + head + " is not in flight on this queue; only a popped, "
                + "not yet used head may be added as used");
        }
        if (writtenLength < 0 || writtenLength > writable[head]) {
            throw new IllegalArgumentException("written length " + writtenLength + " for head " + head
                + " is outside 0.." + writable[head] + " (the chain's writable bytes)");
        }
        inFlight[head] = false;
        inFlightCount--;
    }

    /**
     * Checks the INDIRECT rules common to both layouts for a descriptor that has the flag.
     *
     * @param hasNext whether the descriptor also has NEXT (split) or is not the chain's last (packed)
     */
    final void checkIndirect(int head, int index, boolean hasNext, long len, boolean inIndirect)
        throws VirtqueueException {
        if (!indirect) {
            throw fail(RingError.INDIRECT_NOT_NEGOTIATED, "descriptor " + index + " of head " + head, null);
        }
        if (inIndirect) {
            throw nestedIndirect(head, index);
        }
        if (hasNext) {
            throw fail(RingError.INDIRECT_WITH_NEXT, "descriptor " + index + " of head " + head, null);
        }
        if (len == 0 || len % RingFormat.DESC_SIZE != 0) {
            throw fail(RingError.BAD_INDIRECT_LENGTH, "descriptor " + index + " of head " + head + " has length " + len,
                null);
        }
        long entries = len / RingFormat.DESC_SIZE;
        if (entries > DeviceQueue.MAX_INDIRECT_ENTRIES) {
            throw fail(RingError.INDIRECT_TOO_LARGE, "descriptor " + index + " of head " + head + " points to "
                + entries + " entries; at most " + DeviceQueue.MAX_INDIRECT_ENTRIES, null);
        }
    }

    /** An INDIRECT descriptor inside an indirect table: one table per descriptor [virtio 2.7.5.3.1, 2.8.19]. */
    final VirtqueueException nestedIndirect(int head, int index) {
        return fail(RingError.NESTED_INDIRECT, "entry " + index + " of head " + head + "'s indirect table", null);
    }

    /**
     * Translates an indirect table for reading without allocating: the table must be one
     * contiguous piece; its backing segment is returned and its offset in that segment left in
     * {@link #indirectOffset()}.
     */
    final MemorySegment indirectTable(int head, long addr, long len) throws VirtqueueException {
        indirectPiece.count = 0;
        try {
            space.translate(addr, len, Access.READ, indirectPiece);
        } catch (TranslationException e) {
            throw translationFailure("indirect table of head " + head, e);
        }
        if (indirectPiece.count != 1) {
            throw fail(RingError.ADDRESS_FAULT, "indirect table of head " + head + " at bus address 0x"
                + Long.toHexString(addr) + " is not contiguous behind the address space (" + indirectPiece.count
                + " pieces)", null);
        }
        return indirectPiece.backing;
    }

    /** @return the offset of the last table {@link #indirectTable} translated, in its backing segment */
    final long indirectOffset() {
        return indirectPiece.offset;
    }

    /** The one piece an indirect table translates to; reused for every table. */
    private static final class Piece implements TranslationSink {
        MemorySegment backing;
        long offset;
        int count;

        @Override
        public void accept(MemorySegment segment, long pieceOffset, long length) {
            if (count++ == 0) {
                backing = segment;
                offset = pieceOffset;
            }
        }
    }

    private final Piece indirectPiece = new Piece();

    /**
     * Applies the per-buffer rules and translates the buffer into the chain: non-zero length, total
     * below 2^32, readable before writable.
     *
     * @param sawWritable whether a writable buffer came earlier in this chain
     */
    final void addBuffer(DescriptorChain chain, int head, int index, boolean inIndirect, long addr, long len,
                         boolean write, boolean sawWritable) throws VirtqueueException {
        if (len == 0) {
            throw fail(RingError.ZERO_LENGTH, "descriptor " + index + (inIndirect ? " of the indirect table" : "")
                + " of head " + head, null);
        }
        // readable and writable totals are each below 2^32 (checked here every time), len < 2^32: no overflow
        long total = chain.readableLength() + chain.writableLength() + len;
        if (total > 0xFFFF_FFFFL) {
            throw fail(RingError.CHAIN_TOO_LONG, "head " + head + " reaches " + total + " bytes", null);
        }
        if (!write && sawWritable) {
            throw fail(RingError.READABLE_AFTER_WRITABLE, "descriptor " + index + " of head " + head, null);
        }
        try {
            if (write) {
                space.translate(addr, len, Access.WRITE, chain.sink);
                chain.addWritableDescriptor(len);
            } else {
                space.translate(addr, len, Access.READ, chain.sink);
                chain.addReadableDescriptor(len);
            }
        } catch (TranslationException e) {
            throw translationFailure("buffer of descriptor " + index + " of head " + head, e);
        }
        if (chain.tooManyPieces()) {
            throw fail(RingError.CHAIN_TOO_MANY_PIECES, "descriptor " + index + (inIndirect ? " of the indirect table" : "")
                + " of head " + head + " takes the chain past " + DeviceQueue.MAX_CHAIN_PIECES + " pieces", null);
        }
    }
}

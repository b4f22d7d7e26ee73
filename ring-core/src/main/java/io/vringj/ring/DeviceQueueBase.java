package io.vringj.ring;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
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
    /** Where the last translation missed, and for which access. */
    private long missAddress;
    private Access missAccess = Access.READ;

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

    /**
     * Translates every ring area into its {@link RingArea}.
     *
     * @return false on a miss (recorded with {@link #missed}); the areas are then not to be used
     * @throws VirtqueueException for a fault (the queue is broken)
     */
    abstract boolean translateRings() throws VirtqueueException;

    /**
     * Makes the ring areas current: translates them again if the address space's epoch moved
     * since they were last translated (an IOTLB update or invalidation) — the per-queue
     * ring-area translation cache. Every operation calls this before its first ring access, so
     * no access uses a translation older than the operation [vhost's vq_meta_prefetch].
     *
     * @return false on a miss: the ring must not be touched in this operation
     * @throws VirtqueueException for a fault (the queue is broken)
     */
    final boolean refreshRings() throws VirtqueueException {
        // volatile load in an IOTLB (pairs with the epoch store under its write lock): read before
        // translating, so an update landing meanwhile moves the epoch past the value recorded
        long epoch = space.epoch();
        if (epoch == ringEpoch) {
            return true;
        }
        if (!translateRings()) {
            return false;
        }
        ringEpoch = epoch;
        return true;
    }

    /** Used entries added while the ring could not be reached: {head, length} pairs, in order. */
    private int[] deferred;
    /** How many used entries wait in {@link #deferred}; at most Q. */
    int deferredCount;

    /** Writes one used entry into the ring; the ring areas are current. */
    abstract void writeUsed(int head, int writtenLength);

    /** Adds a used entry: into the ring when it can be reached, else kept until a publish can reach it. */
    final void addUsedEntry(int head, int writtenLength) {
        if (deferredCount == 0 && ringsCurrent()) {
            writeUsed(head, writtenLength);
        } else {
            defer(head, writtenLength);
        }
    }

    /** Keeps a used entry on the device while the ring cannot be reached (at most Q of them). */
    private void defer(int head, int writtenLength) {
        if (deferred == null) {
            // slow path: the first time an IOTLB took the ring away under an in-flight chain
            deferred = new int[2 * queueSize];
        }
        deferred[2 * deferredCount] = head;
        deferred[2 * deferredCount + 1] = writtenLength;
        deferredCount++;
    }

    /**
     * Makes the ring areas current and writes the deferred used entries, in order.
     *
     * @return false if the ring cannot be reached now (nothing may be published)
     */
    final boolean readyToPublish() {
        if (broken != null || !ringsCurrent()) {
            return false;
        }
        for (int k = 0; k < deferredCount; k++) {
            writeUsed(deferred[2 * k], deferred[2 * k + 1]);
        }
        deferredCount = 0;
        return true;
    }

    /**
     * {@link #refreshRings()} for the operations that cannot throw (addUsed, publish, disable
     * notifications): a fault has latched the queue broken, and reads as "not current".
     */
    final boolean ringsCurrent() {
        try {
            return refreshRings();
        } catch (VirtqueueException e) {
            return false;
        }
    }

    /** Records the address a translation missed on and the access it wanted. */
    final void missed(long busAddress, long length, long left, Access access) {
        missAddress = busAddress + length - left;
        missAccess = access;
    }

    @Override
    public final long missAddress() {
        return missAddress;
    }

    @Override
    public final Access missAccess() {
        return missAccess;
    }

    @Override
    public final boolean pop(DescriptorChain chain) throws VirtqueueException {
        int r = tryPop(chain);
        if (r == MISSED) {
            // the throwing form of a miss, for callers that want the exception; allocates
            throw new VirtqueueException(RingError.TRANSLATION_MISS, "no translation yet",
                new TranslationException(TranslationException.Kind.MISS, missAddress, 1, missAccess, "no IOTLB entry"));
        }
        return r == POPPED;
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

    /**
     * Translates one ring area into {@code area}, piece by piece: an area may span several
     * IOTLB entries (QEMU sends one UPDATE per 4 KiB page). Allocation-free.
     *
     * @return false on a miss (recorded)
     * @throws VirtqueueException ADDRESS_FAULT for a fault, or pieces not aligned to {@code align}
     */
    final boolean translateArea(RingArea area, String what, long busAddress, long size, Access access, int align)
        throws VirtqueueException {
        area.clear();
        long left;
        try {
            left = space.tryTranslate(busAddress, size, access, area);
        } catch (TranslationException e) {
            throw fail(RingError.ADDRESS_FAULT, what + " at bus address 0x" + Long.toHexString(busAddress) + ", "
                + size + " bytes: " + e.getMessage(), e);
        }
        if (left != 0) {
            missed(busAddress, size, left, access);
            return false;
        }
        if (!area.alignedPieces(align)) {
            throw fail(RingError.ADDRESS_FAULT, what + " at bus address 0x" + Long.toHexString(busAddress)
                + " is backed by native memory in " + area.pieces() + " pieces, not each aligned to " + align
                + " bytes", null);
        }
        return true;
    }

    /**
     * Translates the ring areas when the queue is activated. A miss is thrown here (the queue
     * does not exist yet, so there is no return value to give it in).
     */
    final void activateRings() throws VirtqueueException {
        long epoch = space.epoch();
        if (!translateRings()) {
            throw new VirtqueueException(RingError.TRANSLATION_MISS, "ring areas at activation",
                new TranslationException(TranslationException.Kind.MISS, missAddress, 1, missAccess, "no IOTLB entry"));
        }
        ringEpoch = epoch;
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
     * Translates an indirect table for reading into {@link #indirectArea}, without allocating;
     * the table may span several IOTLB entries.
     *
     * @return false on a miss (recorded)
     */
    final boolean indirectTable(int head, long addr, long len) throws VirtqueueException {
        indirectArea.clear();
        long left;
        try {
            left = space.tryTranslate(addr, len, Access.READ, indirectArea);
        } catch (TranslationException e) {
            throw fail(RingError.ADDRESS_FAULT, "indirect table of head " + head + ": " + e.getMessage(), e);
        }
        if (left != 0) {
            missed(addr, len, left, Access.READ);
            return false;
        }
        return true;
    }

    /** The last indirect table {@link #indirectTable} translated; reused for every table. */
    final RingArea indirectArea = new RingArea();

    /**
     * Applies the per-buffer rules and translates the buffer into the chain: non-zero length, total
     * below 2^32, readable before writable.
     *
     * @param sawWritable whether a writable buffer came earlier in this chain
     * @return false on a miss (recorded): nothing is consumed, the caller returns {@link #MISSED}
     */
    final boolean addBuffer(DescriptorChain chain, int head, int index, boolean inIndirect, long addr, long len,
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
        long left;
        try {
            left = space.tryTranslate(addr, len, write ? Access.WRITE : Access.READ, chain.sink);
        } catch (TranslationException e) {
            throw fail(RingError.ADDRESS_FAULT, "buffer of descriptor " + index + " of head " + head + ": "
                + e.getMessage(), e);
        }
        if (left != 0) {
            missed(addr, len, left, write ? Access.WRITE : Access.READ);
            return false;
        }
        if (chain.tooManyPieces()) {
            throw fail(RingError.CHAIN_TOO_MANY_PIECES, "descriptor " + index + (inIndirect ? " of the indirect table" : "")
                + " of head " + head + " takes the chain past " + DeviceQueue.MAX_CHAIN_PIECES + " pieces", null);
        }
        if (write) {
            chain.addWritableDescriptor(len);
        } else {
            chain.addReadableDescriptor(len);
        }
        return true;
    }
}

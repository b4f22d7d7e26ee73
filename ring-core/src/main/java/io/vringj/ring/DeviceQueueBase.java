package io.vringj.ring;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import java.util.Objects;

/**
 * What the split and packed device queues share: the broken latch, in-flight bookkeeping,
 * and the per-descriptor rules (length, order, total, translation) that do not depend on the
 * layout. One place for each rule, so both layouts validate alike.
 *
 * <p>With {@link VirtioFeatures#IN_ORDER} the device must use buffers in the order it popped them,
 * and may return a run of them with one used entry naming the last [virtio 2.7.9, 2.8.8]. The
 * driver then assumes the others were used completely. A chain the device only reads (no writable
 * part, used length 0: a net transmit buffer) therefore needs no entry of its own: it is held in a
 * run, and the run is written as one entry by the next {@link #addUsed} of a chain with a writable
 * part (whose entry then names that chain and carries its length), or by the next publish. A chain
 * with a writable part always gets its own entry, even when written completely: DPDK's split
 * in-order receive path reads the length of every used entry.
 *
 * <pre>
 *   popOrder   heads in the order they were popped, a ring of Q slots: [popTake .. popPut) in flight
 *   runLast    the last head of the held run, or -1        runSpan  its size in used-ring steps
 *              (split: buffers; packed: descriptors)
 * </pre>
 */
abstract sealed class DeviceQueueBase implements DeviceQueue permits SplitDeviceQueue, PackedDeviceQueue {
    final int queueSize;
    final long features;
    final boolean eventIdx;
    final boolean indirect;
    /** VIRTIO_F_IN_ORDER was negotiated [virtio 2.7.9, 2.8.8]. */
    final boolean inOrder;
    final RingAddresses addresses;
    final AddressSpace space;

    /** In-flight state per head (split) or buffer id (packed). */
    private final boolean[] inFlight;
    private final long[] writable;
    private int inFlightCount;
    /** In-order only (else null): heads in the order they were popped, a ring of Q slots. */
    private final int[] popOrder;
    private int popTake;
    private int popPut;
    /** In-order only: the last head of the run held back from the used ring, or -1. */
    private int runLast = -1;
    /** The held run's size in used-ring steps (split: buffers; packed: descriptors); 0 when none is held. */
    private int runSpan;

    VirtqueueException broken;
    /** The address space's epoch when the ring areas were last known current. */
    private long ringEpoch;
    /** Whether the last translation of the ring areas succeeded, so the areas below hold them. */
    private boolean ringsTranslated;
    /** The bus ranges of the ring areas the last translation covered: {@link #ringAreaCount} of them. */
    private final long[] ringAreaBus = new long[MAX_RING_AREAS];
    private final long[] ringAreaSize = new long[MAX_RING_AREAS];
    private int ringAreaCount;
    /** Ring areas a layout translates: split 3, packed 3 (its descriptor ring twice, once per access). */
    private static final int MAX_RING_AREAS = 4;
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
        this.inOrder = VirtioFeatures.has(features, VirtioFeatures.IN_ORDER);
        this.popOrder = inOrder ? new int[queueSize] : null;
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
     * since they were last known current (an IOTLB invalidation, or an update that changed an
     * entry) and the address space cannot vouch that nothing under them changed
     * ({@link AddressSpace#unchangedSince}) — the per-queue ring-area translation cache. Every
     * operation calls this before its first ring access, so no access uses a translation older
     * than the operation [vhost's vq_meta_prefetch].
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
        if (ringsTranslated && ringAreasUnchanged()) {
            // every step since ringEpoch (up to a value at least epoch) left the areas alone
            ringEpoch = epoch;
            return true;
        }
        if (!translateAllRings()) {
            return false;
        }
        ringEpoch = epoch;
        return true;
    }

    /** Whether the address space vouches that nothing under any ring area changed since {@link #ringEpoch}. */
    private boolean ringAreasUnchanged() {
        for (int k = 0; k < ringAreaCount; k++) {
            if (!space.unchangedSince(ringEpoch, ringAreaBus[k], ringAreaSize[k])) {
                return false;
            }
        }
        return true;
    }

    /** {@link #translateRings()}, remembering the areas' bus ranges and whether all of them were reached. */
    private boolean translateAllRings() throws VirtqueueException {
        ringsTranslated = false;
        ringAreaCount = 0;
        if (!translateRings()) {
            return false;
        }
        ringsTranslated = true;
        return true;
    }

    /** Used entries added while the ring could not be reached: {head, length, span} triples, in order. */
    private int[] deferred;
    /** How many used entries wait in {@link #deferred}; at most Q. */
    int deferredCount;

    /**
     * Writes one used entry into the ring and moves past it; the ring areas are current.
     *
     * @param span how far the entry moves the used ring: split, in buffers (1, or a run's size);
     *     packed, in descriptors (the chain's, or a run's total)
     */
    abstract void writeUsed(int head, int writtenLength, int span);

    /** @return how far one chain moves the used ring: split 1, packed the descriptors its head took */
    abstract int usedSpan(int head);

    /**
     * Adds a used entry: held in a run when in order and the driver can do without it, else into the
     * ring when it can be reached, else kept until a publish can reach it.
     */
    final void addUsedEntry(int head, int writtenLength) {
        int span = usedSpan(head);
        if (inOrder) {
            if (writable[head] == 0) {
                // only read (length 0): the driver takes a skipped buffer as used completely [virtio 2.7.9, 2.8.8]
                runLast = head;
                runSpan += span;
                return;
            }
            // one entry for the held run and this chain, naming this chain; both spans are at most Q
            span += runSpan;
            runLast = -1;
            runSpan = 0;
        }
        if (deferredCount == 0 && ringsCurrent()) {
            writeUsed(head, writtenLength, span);
        } else {
            defer(head, writtenLength, span);
        }
    }

    /** Keeps a used entry on the device while the ring cannot be reached (at most Q of them). */
    private void defer(int head, int writtenLength, int span) {
        if (deferred == null) {
            // slow path: the first time an IOTLB took the ring away under an in-flight chain
            deferred = new int[3 * queueSize];
        }
        deferred[3 * deferredCount] = head;
        deferred[3 * deferredCount + 1] = writtenLength;
        deferred[3 * deferredCount + 2] = span;
        deferredCount++;
    }

    /** @return whether used entries were added that are not in the ring yet (deferred, or a held in-order run) */
    final boolean unwritten() {
        return deferredCount != 0 || runSpan != 0;
    }

    /**
     * Makes the ring areas current and writes the deferred used entries, in order, then the held
     * in-order run as one entry naming its last head.
     *
     * @return false if the ring cannot be reached now (nothing may be published)
     */
    final boolean readyToPublish() {
        if (broken != null || !ringsCurrent()) {
            return false;
        }
        for (int k = 0; k < deferredCount; k++) {
            writeUsed(deferred[3 * k], deferred[3 * k + 1], deferred[3 * k + 2]);
        }
        deferredCount = 0;
        if (runSpan != 0) {
            writeUsed(runLast, 0, runSpan);
            runLast = -1;
            runSpan = 0;
        }
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
        int k = ringAreaCount;
        if (k == 0 || ringAreaBus[k - 1] != busAddress || ringAreaSize[k - 1] != size) {
            // the packed descriptor ring is translated twice (read, write): remembered once
            ringAreaBus[k] = busAddress;
            ringAreaSize[k] = size;
            ringAreaCount = k + 1;
        }
        return true;
    }

    /**
     * Translates the ring areas when the queue is activated. A miss is thrown here (the queue
     * does not exist yet, so there is no return value to give it in).
     */
    final void activateRings() throws VirtqueueException {
        long epoch = space.epoch();
        if (!translateAllRings()) {
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
        if (inOrder) {
            popOrder[popPut] = head;
            popPut = popPut + 1 == queueSize ? 0 : popPut + 1;
        }
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
        if (inOrder && head != popOrder[popTake]) {
            throw new IllegalStateException("VIRTIO_F_IN_ORDER was negotiated: head " + head + " is used before head "
                + popOrder[popTake] + ", which was popped earlier; buffers must be used in the order they were popped");
        }
        inFlight[head] = false;
        inFlightCount--;
        if (inOrder) {
            popTake = popTake + 1 == queueSize ? 0 : popTake + 1;
        }
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

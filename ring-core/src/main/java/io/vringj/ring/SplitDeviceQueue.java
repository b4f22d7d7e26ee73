package io.vringj.ring;

import static io.vringj.ring.SplitRing.AVAIL_F_NO_INTERRUPT;
import static io.vringj.ring.SplitRing.AVAIL_FLAGS;
import static io.vringj.ring.SplitRing.AVAIL_IDX;
import static io.vringj.ring.SplitRing.AVAIL_RING;
import static io.vringj.ring.SplitRing.DESC_ADDR;
import static io.vringj.ring.SplitRing.DESC_FLAGS;
import static io.vringj.ring.SplitRing.DESC_F_INDIRECT;
import static io.vringj.ring.SplitRing.DESC_F_NEXT;
import static io.vringj.ring.SplitRing.DESC_F_WRITE;
import static io.vringj.ring.SplitRing.DESC_LEN;
import static io.vringj.ring.SplitRing.DESC_LE_INT;
import static io.vringj.ring.SplitRing.DESC_LE_LONG;
import static io.vringj.ring.SplitRing.DESC_LE_SHORT;
import static io.vringj.ring.SplitRing.DESC_NEXT;
import static io.vringj.ring.SplitRing.DESC_SIZE;
import static io.vringj.ring.SplitRing.LE_INT;
import static io.vringj.ring.SplitRing.LE_SHORT;
import static io.vringj.ring.SplitRing.SHORT;
import static io.vringj.ring.SplitRing.USED_ELEM_ID;
import static io.vringj.ring.SplitRing.USED_ELEM_LEN;
import static io.vringj.ring.SplitRing.USED_ELEM_SIZE;
import static io.vringj.ring.SplitRing.USED_FLAGS;
import static io.vringj.ring.SplitRing.USED_F_NO_NOTIFY;
import static io.vringj.ring.SplitRing.USED_IDX;
import static io.vringj.ring.SplitRing.USED_RING;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;
import java.util.Objects;

/**
 * The device side of a split virtqueue [virtio 2.7], with the validation real devices do
 * (QEMU, vhost, DPDK, rust-vmm).
 *
 * <pre>
 *   lastAvail    next avail idx to consume       cachedAvail  last avail->idx read with acquire
 *   usedShadow   next used idx to write          usedPublished used idx the driver may see
 *   inFlight[h]  head h popped and not yet used  writable[h]  its writable bytes (checks addUsed)
 * </pre>
 *
 * <p>The ring areas are translated at activation and again whenever the address space's
 * {@link AddressSpace#epoch()} moves (an IOTLB update or invalidation): this is the per-queue
 * ring-area translation cache Linux's vhost keeps.
 */
final class SplitDeviceQueue implements DeviceQueue {
    private final int queueSize;
    private final int mask;
    private final long features;
    private final boolean eventIdx;
    private final boolean indirect;
    private final RingAddresses addresses;
    private final AddressSpace space;
    private final long usedEventOffset;
    private final long availEventOffset;

    private MemorySegment desc;
    private MemorySegment avail;
    private MemorySegment used;
    private long ringEpoch;

    private final boolean[] inFlight;
    private final long[] writable;
    private int inFlightCount;

    private int lastAvail;
    private int cachedAvail;
    private int usedShadow;
    private int usedPublished;
    private short usedFlagsShadow;
    private boolean notificationsEnabled = true;

    private VirtqueueException broken;

    SplitDeviceQueue(long features, int queueSize, RingAddresses addresses, AddressSpace space, int lastAvailIdx)
        throws VirtqueueException {
        SplitRing.checkQueueSize(queueSize);
        if (lastAvailIdx < 0 || lastAvailIdx > 0xFFFF) {
            throw new IllegalArgumentException("last avail index " + lastAvailIdx + " is outside 0..65535");
        }
        this.queueSize = queueSize;
        this.mask = queueSize - 1;
        this.features = features;
        this.eventIdx = VirtioFeatures.has(features, VirtioFeatures.EVENT_IDX);
        this.indirect = VirtioFeatures.has(features, VirtioFeatures.INDIRECT_DESC);
        this.addresses = Objects.requireNonNull(addresses, "addresses");
        this.space = Objects.requireNonNull(space, "addressSpace");
        this.usedEventOffset = AVAIL_RING + 2L * queueSize;
        this.availEventOffset = USED_RING + USED_ELEM_SIZE * queueSize;
        checkAligned("descriptor table", addresses.descriptorArea(), SplitRing.DESC_ALIGN);
        checkAligned("available ring", addresses.driverArea(), SplitRing.AVAIL_ALIGN);
        checkAligned("used ring", addresses.deviceArea(), SplitRing.USED_ALIGN);
        inFlight = new boolean[queueSize];
        writable = new long[queueSize];
        translateRings();
        lastAvail = cachedAvail = lastAvailIdx;
        // the used ring's idx is the driver's to initialise; continue from it (as vhost does)
        usedShadow = usedPublished = Short.toUnsignedInt((short) SHORT.getAcquire(used, USED_IDX));
    }

    private static void checkAligned(String what, long address, int align) throws VirtqueueException {
        if ((address & (align - 1)) != 0) {
            throw new VirtqueueException(RingError.ADDRESS_FAULT, what + " at bus address 0x"
                + Long.toHexString(address) + " is not aligned to " + align + " bytes", null);
        }
    }

    private void translateRings() throws VirtqueueException {
        long epoch = space.epoch();
        desc = translateArea("descriptor table", addresses.descriptorArea(), SplitRing.descriptorTableSize(queueSize),
            Access.READ, SplitRing.DESC_ALIGN);
        avail = translateArea("available ring", addresses.driverArea(), SplitRing.availRingSize(queueSize),
            Access.READ, SplitRing.AVAIL_ALIGN);
        used = translateArea("used ring", addresses.deviceArea(), SplitRing.usedRingSize(queueSize),
            Access.WRITE, SplitRing.USED_ALIGN);
        ringEpoch = epoch;
    }

    private MemorySegment translateArea(String what, long busAddress, long size, Access access, int align)
        throws VirtqueueException {
        MemorySegment area;
        try {
            area = space.translate(busAddress, size, access);
        } catch (TranslationException e) {
            if (e.kind() == TranslationException.Kind.MISS) {
                throw new VirtqueueException(RingError.TRANSLATION_MISS, what + " at bus address 0x"
                    + Long.toHexString(busAddress) + ", " + size + " bytes", e);
            }
            throw fail(RingError.ADDRESS_FAULT, what + " at bus address 0x" + Long.toHexString(busAddress) + ", "
                + size + " bytes: " + e.getMessage(), e);
        }
        if (area.address() % align != 0) {
            throw fail(RingError.ADDRESS_FAULT, what + " at bus address 0x" + Long.toHexString(busAddress)
                + " is backed by native memory not aligned to " + align + " bytes", null);
        }
        return area;
    }

    private VirtqueueException fail(RingError error, String detail, Throwable cause) {
        VirtqueueException e = new VirtqueueException(error, detail, cause);
        if (error.fatal()) {
            broken = e;
        }
        return e;
    }

    /** Translates the ring areas again if the address space has changed since; a miss is passed on. */
    private void refreshRings() throws VirtqueueException {
        if (space.epoch() != ringEpoch) {
            translateRings();
        }
    }

    @Override
    public int queueSize() {
        return queueSize;
    }

    @Override
    public long features() {
        return features;
    }

    @Override
    public boolean isBroken() {
        return broken != null;
    }

    @Override
    public VirtqueueException brokenReason() {
        return broken;
    }

    @Override
    public int lastAvailIdx() {
        return lastAvail;
    }

    @Override
    public int inFlight() {
        return inFlightCount;
    }

    @Override
    public boolean pop(DescriptorChain chain) throws VirtqueueException {
        if (broken != null) {
            throw broken;
        }
        refreshRings();
        if (lastAvail == cachedAvail && !readAvailIdx()) {
            return false;
        }
        int head = Short.toUnsignedInt(avail.get(LE_SHORT, AVAIL_RING + 2L * (lastAvail & mask)));
        if (head >= queueSize) {
            throw fail(RingError.HEAD_OUT_OF_RANGE, "head " + head + " at avail idx " + lastAvail + ", queue size "
                + queueSize, null);
        }
        if (inFlight[head]) {
            throw fail(RingError.HEAD_IN_FLIGHT, "head " + head + " at avail idx " + lastAvail, null);
        }
        walk(head, chain);
        inFlight[head] = true;
        writable[head] = chain.writableLength();
        inFlightCount++;
        lastAvail = (lastAvail + 1) & 0xFFFF;
        if (eventIdx && notificationsEnabled) {
            // keep avail_event current so the driver kicks for the next chain; the fence that makes
            // sleeping safe is in enableNotifications
            SHORT.setRelease(used, availEventOffset, (short) lastAvail);
        }
        return true;
    }

    /** Rereads avail->idx; returns whether chains are available. */
    private boolean readAvailIdx() throws VirtqueueException {
        // acquire: pairs with the release store of avail->idx in the driver's publish, so the
        // descriptors and ring entries written before it are visible below
        int idx = Short.toUnsignedInt((short) SHORT.getAcquire(avail, AVAIL_IDX));
        int ahead = (idx - lastAvail) & 0xFFFF;
        if (ahead > queueSize) {
            throw fail(RingError.AVAIL_IDX_TOO_FAR, "avail idx " + idx + ", device's last avail idx " + lastAvail
                + ", queue size " + queueSize, null);
        }
        cachedAvail = idx;
        return ahead != 0;
    }

    private void walk(int head, DescriptorChain chain) throws VirtqueueException {
        chain.reset(head);
        MemorySegment table = desc;
        int tableSize = queueSize;
        boolean inIndirect = false;
        boolean sawWritable = false;
        int index = head;
        int visited = 0;
        while (true) {
            if (++visited > tableSize) {
                throw fail(RingError.CHAIN_LOOP, "head " + head + " visited more than " + tableSize + " descriptors"
                    + (inIndirect ? " of its indirect table" : ""), null);
            }
            long off = index * DESC_SIZE;
            long addr = table.get(DESC_LE_LONG, off + DESC_ADDR);
            long len = Integer.toUnsignedLong(table.get(DESC_LE_INT, off + DESC_LEN));
            int flags = table.get(DESC_LE_SHORT, off + DESC_FLAGS);
            if ((flags & DESC_F_INDIRECT) != 0) {
                checkIndirect(head, index, flags, len, inIndirect);
                try {
                    table = space.translate(addr, len, Access.READ);
                } catch (TranslationException e) {
                    throw translationFailure(head, "indirect table", e);
                }
                chain.countDescriptor();
                tableSize = (int) (len / DESC_SIZE);
                inIndirect = true;
                index = 0;
                visited = 0;
                continue;
            }
            if (len == 0) {
                throw fail(RingError.ZERO_LENGTH, "descriptor " + index + (inIndirect ? " of the indirect table" : "")
                    + " of head " + head, null);
            }
            // readable and writable totals are each below 2^32 (checked below), and len < 2^32: no overflow
            if (chain.readableLength() + chain.writableLength() + len > 0xFFFF_FFFFL) {
                throw fail(RingError.CHAIN_TOO_LONG, "head " + head + " reaches "
                    + (chain.readableLength() + chain.writableLength() + len) + " bytes", null);
            }
            try {
                if ((flags & DESC_F_WRITE) != 0) {
                    sawWritable = true;
                    space.translate(addr, len, Access.WRITE, chain.sink);
                    chain.addWritableDescriptor(len);
                } else {
                    if (sawWritable) {
                        throw fail(RingError.READABLE_AFTER_WRITABLE, "descriptor " + index + " of head " + head, null);
                    }
                    space.translate(addr, len, Access.READ, chain.sink);
                    chain.addReadableDescriptor(len);
                }
            } catch (TranslationException e) {
                throw translationFailure(head, "buffer of descriptor " + index, e);
            }
            if ((flags & DESC_F_NEXT) == 0) {
                return;
            }
            int nextIndex = Short.toUnsignedInt(table.get(DESC_LE_SHORT, off + DESC_NEXT));
            if (nextIndex >= tableSize) {
                throw fail(RingError.NEXT_OUT_OF_RANGE, "descriptor " + index + " of head " + head + " has next "
                    + nextIndex + ", table size " + tableSize, null);
            }
            index = nextIndex;
        }
    }

    private void checkIndirect(int head, int index, int flags, long len, boolean inIndirect) throws VirtqueueException {
        if (!indirect) {
            throw fail(RingError.INDIRECT_NOT_NEGOTIATED, "descriptor " + index + " of head " + head, null);
        }
        if (inIndirect) {
            throw fail(RingError.NESTED_INDIRECT, "descriptor " + index + " of head " + head + "'s indirect table", null);
        }
        if ((flags & DESC_F_NEXT) != 0) {
            throw fail(RingError.INDIRECT_WITH_NEXT, "descriptor " + index + " of head " + head, null);
        }
        if (len == 0 || len % DESC_SIZE != 0) {
            throw fail(RingError.BAD_INDIRECT_LENGTH, "descriptor " + index + " of head " + head + " has length " + len,
                null);
        }
        if (len / DESC_SIZE > queueSize) {
            throw fail(RingError.INDIRECT_TOO_LARGE, "descriptor " + index + " of head " + head + " points to "
                + len / DESC_SIZE + " entries, queue size " + queueSize, null);
        }
    }

    private VirtqueueException translationFailure(int head, String what, TranslationException e) {
        if (e.kind() == TranslationException.Kind.MISS) {
            // not fatal and nothing consumed: the same head is walked again after the IOTLB update
            return new VirtqueueException(RingError.TRANSLATION_MISS, what + " of head " + head, e);
        }
        return fail(RingError.ADDRESS_FAULT, what + " of head " + head + ": " + e.getMessage(), e);
    }

    @Override
    public void addUsed(int head, long writtenLength) {
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
        long elem = USED_RING + USED_ELEM_SIZE * (usedShadow & mask);
        used.set(LE_INT, elem + USED_ELEM_ID, head);
        used.set(LE_INT, elem + USED_ELEM_LEN, (int) writtenLength);
        usedShadow = (usedShadow + 1) & 0xFFFF;
        inFlight[head] = false;
        inFlightCount--;
    }

    @Override
    public boolean publishUsed() {
        if (broken != null || usedShadow == usedPublished) {
            return false;
        }
        int old = usedPublished;
        // release: used elements written in addUsed are visible before the index; pairs with the
        // acquire of used->idx in the driver's pollUsed
        SHORT.setRelease(used, USED_IDX, (short) usedShadow);
        usedPublished = usedShadow;
        // full fence: the idx store must be visible before we read the driver's wish, or the driver
        // may recheck idx, find nothing and sleep while we read a stale "no interrupt"; pairs with
        // the fence in the driver's enableInterrupts
        VarHandle.fullFence();
        if (eventIdx) {
            int usedEvent = Short.toUnsignedInt((short) SHORT.getOpaque(avail, usedEventOffset));
            return SplitRing.needEvent(usedEvent, usedPublished, old);
        }
        return ((short) SHORT.getOpaque(avail, AVAIL_FLAGS) & AVAIL_F_NO_INTERRUPT) == 0;
    }

    @Override
    public boolean enableNotifications() throws VirtqueueException {
        if (broken != null) {
            throw broken;
        }
        refreshRings();
        notificationsEnabled = true;
        if ((usedFlagsShadow & USED_F_NO_NOTIFY) != 0) {
            usedFlagsShadow &= ~USED_F_NO_NOTIFY;
            SHORT.setRelease(used, USED_FLAGS, usedFlagsShadow);
        }
        if (eventIdx) {
            SHORT.setRelease(used, availEventOffset, (short) lastAvail);
        }
        // full fence: our wish (flags / avail_event) must be visible before we recheck avail->idx;
        // pairs with the fence in the driver's publish between its idx store and reading our wish
        VarHandle.fullFence();
        return readAvailIdx();
    }

    @Override
    public void disableNotifications() {
        notificationsEnabled = false;
        if (broken == null && (usedFlagsShadow & USED_F_NO_NOTIFY) == 0) {
            usedFlagsShadow |= USED_F_NO_NOTIFY;
            SHORT.setRelease(used, USED_FLAGS, usedFlagsShadow);
        }
    }

    @Override
    public String toString() {
        return "SplitDeviceQueue[size=" + queueSize + ", lastAvail=" + lastAvail + ", used=" + usedShadow
            + ", inFlight=" + inFlightCount + (broken != null ? ", broken: " + broken.getMessage() : "") + "]";
    }
}

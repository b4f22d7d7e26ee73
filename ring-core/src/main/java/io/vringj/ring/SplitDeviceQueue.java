package io.vringj.ring;

import static io.vringj.ring.SplitRing.AVAIL_IDX;
import static io.vringj.ring.SplitRing.AVAIL_RING;
import static io.vringj.ring.RingFormat.DESC_ADDR;
import static io.vringj.ring.SplitRing.DESC_FLAGS;
import static io.vringj.ring.SplitRing.DESC_F_INDIRECT;
import static io.vringj.ring.SplitRing.DESC_F_NEXT;
import static io.vringj.ring.SplitRing.DESC_F_WRITE;
import static io.vringj.ring.RingFormat.DESC_LEN;
import static io.vringj.ring.SplitRing.DESC_NEXT;
import static io.vringj.ring.RingFormat.DESC_SIZE;
import static io.vringj.ring.SplitRing.USED_ELEM_ID;
import static io.vringj.ring.SplitRing.USED_ELEM_LEN;
import static io.vringj.ring.SplitRing.USED_ELEM_SIZE;
import static io.vringj.ring.SplitRing.USED_FLAGS;
import static io.vringj.ring.SplitRing.USED_F_NO_NOTIFY;
import static io.vringj.ring.SplitRing.USED_IDX;
import static io.vringj.ring.SplitRing.USED_RING;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import java.lang.invoke.VarHandle;

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
 * {@link AddressSpace#epoch()} moves (an IOTLB invalidation, or an update that changed an entry)
 * and the address space cannot vouch that nothing under them changed
 * ({@link AddressSpace#unchangedSince}): this is the per-queue ring-area translation cache
 * Linux's vhost keeps. Every operation checks the epoch before its
 * first ring access, so none uses a translation older than itself; an area may be in several
 * pieces (one IOTLB entry per page), see {@link RingArea}.
 */
final class SplitDeviceQueue extends DeviceQueueBase {
    private final int mask;
    private final long usedEventOffset;
    private final long availEventOffset;

    private final RingArea desc = new RingArea();
    private final RingArea avail = new RingArea();
    private final RingArea used = new RingArea();
    /** Used entries added while the used ring missed in an IOTLB: {head, len}, written on publish. */


    private int lastAvail;
    private int cachedAvail;
    private int usedShadow;
    private int usedPublished;
    private short usedFlagsShadow;
    private boolean notificationsEnabled = true;


    SplitDeviceQueue(long features, int queueSize, RingAddresses addresses, AddressSpace space, int lastAvailIdx)
        throws VirtqueueException {
        super(features, SplitRing.checkQueueSize(queueSize), addresses, space);
        if (lastAvailIdx < 0 || lastAvailIdx > 0xFFFF) {
            throw new IllegalArgumentException("last avail index " + lastAvailIdx + " is outside 0..65535");
        }
        this.mask = queueSize - 1;
        this.usedEventOffset = SplitRing.usedEventOffset(queueSize);
        this.availEventOffset = SplitRing.availEventOffset(queueSize);
        checkAligned("descriptor table", addresses.descriptorArea(), SplitRing.DESC_ALIGN);
        checkAligned("available ring", addresses.driverArea(), SplitRing.AVAIL_ALIGN);
        checkAligned("used ring", addresses.deviceArea(), SplitRing.USED_ALIGN);
        activateRings();
        lastAvail = cachedAvail = lastAvailIdx;
        // the used ring's idx is the driver's to initialise; continue from it (as vhost does)
        usedShadow = usedPublished = Short.toUnsignedInt(used.getShortAcquire(USED_IDX));
    }

    @Override
    boolean translateRings() throws VirtqueueException {
        return translateArea(desc, "descriptor table", addresses.descriptorArea(),
            SplitRing.descriptorTableSize(queueSize), Access.READ, SplitRing.DESC_ALIGN)
            && translateArea(avail, "available ring", addresses.driverArea(), SplitRing.availRingSize(queueSize),
            Access.READ, SplitRing.AVAIL_ALIGN)
            && translateArea(used, "used ring", addresses.deviceArea(), SplitRing.usedRingSize(queueSize),
            Access.WRITE, SplitRing.USED_ALIGN);
    }

    @Override
    public int vringBase() {
        return lastAvail;
    }

    @Override
    public int lastAvailIdx() {
        return lastAvail;
    }

    @Override
    public int tryPop(DescriptorChain chain) throws VirtqueueException {
        if (broken != null) {
            throw broken;
        }
        if (!refreshRings()) {
            return MISSED;
        }
        if (lastAvail == cachedAvail && !readAvailIdx()) {
            return EMPTY;
        }
        int head = Short.toUnsignedInt(avail.getShort(AVAIL_RING + 2L * (lastAvail & mask)));
        checkNotInFlight(head, lastAvail);
        if (!walk(head, chain)) {
            return MISSED;
        }
        markInFlight(head, chain.writableLength());
        lastAvail = (lastAvail + 1) & 0xFFFF;
        if (eventIdx && notificationsEnabled) {
            // keep avail_event current so the driver kicks for the next chain; the fence that makes
            // sleeping safe is in enableNotifications
            used.setShortRelease(availEventOffset, (short) lastAvail);
        }
        return POPPED;
    }

    /** Rereads avail->idx; returns whether chains are available. */
    private boolean readAvailIdx() throws VirtqueueException {
        // acquire: pairs with the release store of avail->idx in the driver's publish, so the
        // descriptors and ring entries written before it are visible below
        int idx = Short.toUnsignedInt(avail.getShortAcquire(AVAIL_IDX));
        int ahead = (idx - lastAvail) & 0xFFFF;
        if (ahead > queueSize) {
            throw fail(RingError.AVAIL_IDX_TOO_FAR, "avail idx " + idx + ", device's last avail idx " + lastAvail
                + ", queue size " + queueSize, null);
        }
        cachedAvail = idx;
        return ahead != 0;
    }

    /** @return false on a translation miss (recorded; nothing consumed) */
    private boolean walk(int head, DescriptorChain chain) throws VirtqueueException {
        chain.reset(head);
        RingArea table = desc;
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
            long addr = table.getLong(off + DESC_ADDR);
            long len = Integer.toUnsignedLong(table.getInt(off + DESC_LEN));
            int flags = table.getShort(off + DESC_FLAGS);
            if ((flags & DESC_F_INDIRECT) != 0) {
                checkIndirect(head, index, (flags & DESC_F_NEXT) != 0, len, inIndirect);
                if (!indirectTable(head, addr, len)) {
                    return false;
                }
                table = indirectArea;
                chain.countDescriptor();
                tableSize = (int) (len / DESC_SIZE);
                inIndirect = true;
                index = 0;
                visited = 0;
                continue;
            }
            boolean write = (flags & DESC_F_WRITE) != 0;
            if (!addBuffer(chain, head, index, inIndirect, addr, len, write, sawWritable)) {
                return false;
            }
            sawWritable |= write;
            if ((flags & DESC_F_NEXT) == 0) {
                return true;
            }
            int nextIndex = Short.toUnsignedInt(table.getShort(off + DESC_NEXT));
            if (nextIndex >= tableSize) {
                throw fail(RingError.NEXT_OUT_OF_RANGE, "descriptor " + index + " of head " + head + " has next "
                    + nextIndex + ", table size " + tableSize, null);
            }
            index = nextIndex;
        }
    }

    @Override
    public void addUsed(int head, long writtenLength) {
        markUsed(head, writtenLength);
        addUsedEntry(head, (int) writtenLength);
    }

    @Override
    int usedSpan(int head) {
        return 1;
    }

    @Override
    void writeUsed(int head, int writtenLength, int span) {
        long elem = USED_RING + USED_ELEM_SIZE * (usedShadow & mask);
        used.setInt(elem + USED_ELEM_ID, head);
        used.setInt(elem + USED_ELEM_LEN, writtenLength);
        // an in-order run of span buffers takes span used idx steps, its one entry at the first [virtio 2.7.9]
        usedShadow = (usedShadow + span) & 0xFFFF;
    }

    @Override
    public void publishUsedQuiet() {
        if ((usedShadow != usedPublished || unwritten()) && readyToPublish() && usedShadow != usedPublished) {
            publishUsedIndex();
        }
    }

    private void publishUsedIndex() {
        // release: used elements written in addUsed are visible before the index; pairs with the
        // acquire of used->idx in the driver's pollUsed
        used.setShortRelease(USED_IDX, (short) usedShadow);
        usedPublished = usedShadow;
    }

    @Override
    public boolean publishUsed() {
        if (usedShadow == usedPublished && !unwritten() || !readyToPublish() || usedShadow == usedPublished) {
            return false;
        }
        int old = usedPublished;
        publishUsedIndex();
        // full fence, then the driver's wish: the idx store must be visible before we read it, or the
        // driver may recheck idx, find nothing and sleep while we read a stale "no interrupt"; pairs with
        // the fence the driver's enableInterrupts makes in SplitRing.arm. The rule is SplitRing's; the
        // field is read through the translated avail ring.
        VarHandle.fullFence();
        int field = Short.toUnsignedInt(avail.getShortOpaque(SplitRing.notifyField(eventIdx, usedEventOffset)));
        return SplitRing.notifyWanted(eventIdx, field, usedPublished, old);
    }

    @Override
    public boolean enableNotifications() throws VirtqueueException {
        if (broken != null) {
            throw broken;
        }
        notificationsEnabled = true;
        if (!refreshRings()) {
            // nothing written: the pop that follows reports the miss
            return true;
        }
        if ((usedFlagsShadow & USED_F_NO_NOTIFY) != 0) {
            usedFlagsShadow &= ~USED_F_NO_NOTIFY;
            used.setShortRelease(USED_FLAGS, usedFlagsShadow);
        }
        if (eventIdx) {
            used.setShortRelease(availEventOffset, (short) lastAvail);
        }
        // the wish SplitRing.arm writes, written through the translated used ring.
        // full fence: our wish (flags / avail_event) must be visible before we recheck avail->idx;
        // pairs with the fence in the driver's publish between its idx store and reading our wish
        VarHandle.fullFence();
        return readAvailIdx();
    }

    @Override
    public void disableNotifications() {
        notificationsEnabled = false;
        if (broken == null && (usedFlagsShadow & USED_F_NO_NOTIFY) == 0 && ringsCurrent()) {
            usedFlagsShadow |= USED_F_NO_NOTIFY;
            used.setShortRelease(USED_FLAGS, usedFlagsShadow);
        }
    }

    @Override
    public String toString() {
        return "SplitDeviceQueue[size=" + queueSize + ", lastAvail=" + lastAvail + ", used=" + usedShadow
            + ", inFlight=" + inFlight() + (broken != null ? ", broken: " + broken.getMessage() : "") + "]";
    }
}

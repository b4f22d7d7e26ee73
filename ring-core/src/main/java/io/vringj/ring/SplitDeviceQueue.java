package io.vringj.ring;

import static io.vringj.ring.SplitRing.AVAIL_IDX;
import static io.vringj.ring.SplitRing.AVAIL_RING;
import static io.vringj.ring.RingFormat.DESC_ADDR;
import static io.vringj.ring.SplitRing.DESC_FLAGS;
import static io.vringj.ring.SplitRing.DESC_F_INDIRECT;
import static io.vringj.ring.SplitRing.DESC_F_NEXT;
import static io.vringj.ring.SplitRing.DESC_F_WRITE;
import static io.vringj.ring.RingFormat.DESC_LEN;
import static io.vringj.ring.RingFormat.DESC_LE_INT;
import static io.vringj.ring.RingFormat.DESC_LE_LONG;
import static io.vringj.ring.RingFormat.DESC_LE_SHORT;
import static io.vringj.ring.SplitRing.DESC_NEXT;
import static io.vringj.ring.RingFormat.DESC_SIZE;
import static io.vringj.ring.RingFormat.LE_INT;
import static io.vringj.ring.RingFormat.LE_SHORT;
import static io.vringj.ring.RingFormat.SHORT;
import static io.vringj.ring.SplitRing.USED_ELEM_ID;
import static io.vringj.ring.SplitRing.USED_ELEM_LEN;
import static io.vringj.ring.SplitRing.USED_ELEM_SIZE;
import static io.vringj.ring.SplitRing.USED_FLAGS;
import static io.vringj.ring.SplitRing.USED_F_NO_NOTIFY;
import static io.vringj.ring.SplitRing.USED_IDX;
import static io.vringj.ring.SplitRing.USED_RING;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import java.lang.foreign.MemorySegment;

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
final class SplitDeviceQueue extends DeviceQueueBase {
    private final int mask;
    private final long usedEventOffset;
    private final long availEventOffset;

    private MemorySegment desc;
    private MemorySegment avail;
    private MemorySegment used;


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
        translateRings();
        lastAvail = cachedAvail = lastAvailIdx;
        // the used ring's idx is the driver's to initialise; continue from it (as vhost does)
        usedShadow = usedPublished = Short.toUnsignedInt((short) SHORT.getAcquire(used, USED_IDX));
    }

    @Override
    void translateRings() throws VirtqueueException {
        long epoch = space.epoch();
        desc = translateArea("descriptor table", addresses.descriptorArea(), SplitRing.descriptorTableSize(queueSize),
            Access.READ, SplitRing.DESC_ALIGN);
        avail = translateArea("available ring", addresses.driverArea(), SplitRing.availRingSize(queueSize),
            Access.READ, SplitRing.AVAIL_ALIGN);
        used = translateArea("used ring", addresses.deviceArea(), SplitRing.usedRingSize(queueSize),
            Access.WRITE, SplitRing.USED_ALIGN);
        ringEpoch(epoch);
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
    public boolean pop(DescriptorChain chain) throws VirtqueueException {
        if (broken != null) {
            throw broken;
        }
        refreshRings();
        if (lastAvail == cachedAvail && !readAvailIdx()) {
            return false;
        }
        int head = Short.toUnsignedInt(avail.get(LE_SHORT, AVAIL_RING + 2L * (lastAvail & mask)));
        checkNotInFlight(head, lastAvail);
        walk(head, chain);
        markInFlight(head, chain.writableLength());
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
        long tableBase = 0;
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
            long off = tableBase + index * DESC_SIZE;
            long addr = table.get(DESC_LE_LONG, off + DESC_ADDR);
            long len = Integer.toUnsignedLong(table.get(DESC_LE_INT, off + DESC_LEN));
            int flags = table.get(DESC_LE_SHORT, off + DESC_FLAGS);
            if ((flags & DESC_F_INDIRECT) != 0) {
                checkIndirect(head, index, (flags & DESC_F_NEXT) != 0, len, inIndirect);
                table = indirectTable(head, addr, len);
                tableBase = indirectOffset();
                chain.countDescriptor();
                tableSize = (int) (len / DESC_SIZE);
                inIndirect = true;
                index = 0;
                visited = 0;
                continue;
            }
            boolean write = (flags & DESC_F_WRITE) != 0;
            addBuffer(chain, head, index, inIndirect, addr, len, write, sawWritable);
            sawWritable |= write;
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

    @Override
    public void addUsed(int head, long writtenLength) {
        markUsed(head, writtenLength);
        long elem = USED_RING + USED_ELEM_SIZE * (usedShadow & mask);
        used.set(LE_INT, elem + USED_ELEM_ID, head);
        used.set(LE_INT, elem + USED_ELEM_LEN, (int) writtenLength);
        usedShadow = (usedShadow + 1) & 0xFFFF;
    }

    @Override
    public void publishUsedQuiet() {
        if (broken == null && usedShadow != usedPublished) {
            publishUsedIndex();
        }
    }

    private void publishUsedIndex() {
        // release: used elements written in addUsed are visible before the index; pairs with the
        // acquire of used->idx in the driver's pollUsed
        SHORT.setRelease(used, USED_IDX, (short) usedShadow);
        usedPublished = usedShadow;
    }

    @Override
    public boolean publishUsed() {
        if (broken != null || usedShadow == usedPublished) {
            return false;
        }
        int old = usedPublished;
        publishUsedIndex();
        // the fence and the interrupt rule: pairs with the fence the driver's enableInterrupts makes in arm
        return SplitRing.notifyAfterPublish(avail, usedEventOffset, eventIdx, usedPublished, old);
    }

    @Override
    public boolean enableNotifications() throws VirtqueueException {
        if (broken != null) {
            throw broken;
        }
        refreshRings();
        notificationsEnabled = true;
        // our wish (flags / avail_event), then a full fence before the recheck of avail->idx below; pairs with
        // the fence the driver's publish makes in notifyAfterPublish
        usedFlagsShadow = SplitRing.arm(used, availEventOffset, eventIdx, lastAvail, usedFlagsShadow);
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
            + ", inFlight=" + inFlight() + (broken != null ? ", broken: " + broken.getMessage() : "") + "]";
    }
}

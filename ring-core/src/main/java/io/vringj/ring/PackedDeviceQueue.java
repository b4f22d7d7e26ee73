package io.vringj.ring;

import static io.vringj.ring.RingFormat.DESC_ADDR;
import static io.vringj.ring.PackedRing.DESC_FLAGS;
import static io.vringj.ring.RingFormat.DESC_F_INDIRECT;
import static io.vringj.ring.RingFormat.DESC_F_NEXT;
import static io.vringj.ring.RingFormat.DESC_F_WRITE;
import static io.vringj.ring.PackedRing.DESC_ID;
import static io.vringj.ring.RingFormat.DESC_LEN;
import static io.vringj.ring.RingFormat.DESC_SIZE;
import static io.vringj.ring.PackedRing.EVENT_FLAGS;
import static io.vringj.ring.PackedRing.EVENT_FLAG_DESC;
import static io.vringj.ring.PackedRing.EVENT_FLAG_DISABLE;
import static io.vringj.ring.PackedRing.EVENT_FLAG_ENABLE;
import static io.vringj.ring.PackedRing.EVENT_OFF_WRAP;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import java.lang.invoke.VarHandle;

/**
 * The device side of a packed virtqueue [virtio 2.8], with the same validation and latched
 * broken state as the split ring.
 *
 * <p>A chain is available when its head's flags say so for the device's avail wrap counter; its
 * descriptors follow the head in ring order, the buffer id is in the last one, and more than Q
 * of them is a broken chain. Used descriptors are written in place at the device's used position,
 * which then moves by the number of ring descriptors the chain held. For a batch, the first used
 * descriptor's flags are held back and stored by {@link #publishUsed()} with a release.
 *
 * <pre>
 *   nextAvail/availWrap  next position to read and its lap     nextUsed/usedWrap  next used position
 *   ringDescriptors[id]  ring positions chain id holds (1 for an indirect chain)
 * </pre>
 */
final class PackedDeviceQueue extends DeviceQueueBase {
    private final RingArea desc = new RingArea();
    private final RingArea driverEvent = new RingArea();
    private final RingArea deviceEvent = new RingArea();
    /** Used entries added while the ring missed in an IOTLB: {id, len}, written on publish. */

    private final int[] ringDescriptors;

    private int nextAvail;
    private boolean availWrap;
    private int nextUsed;
    private boolean usedWrap;

    private int pendingUsed = -1;
    private short pendingUsedFlags;
    private int usedDescriptorsAdded;
    private boolean notificationsEnabled = true;
    private short eventFlagsShadow = EVENT_FLAG_ENABLE;

    PackedDeviceQueue(long features, int queueSize, RingAddresses addresses, AddressSpace space, int vringBase)
        throws VirtqueueException {
        super(features, PackedRing.checkQueueSize(queueSize), addresses, space);
        int avail = vringBase & 0xFFFF;
        int used = vringBase >>> 16;
        if ((avail & 0x7FFF) >= queueSize || (used & 0x7FFF) >= queueSize) {
            throw new IllegalArgumentException("vring base 0x" + Integer.toHexString(vringBase) + " is not a packed "
                + "ring state: avail position (bits 0-14) and used position (bits 16-30) must be below the queue size "
                + queueSize + "; bits 15 and 31 are their wrap counters");
        }
        checkAligned("descriptor ring", addresses.descriptorArea(), PackedRing.DESC_ALIGN);
        checkAligned("driver event suppression", addresses.driverArea(), PackedRing.EVENT_ALIGN);
        checkAligned("device event suppression", addresses.deviceArea(), PackedRing.EVENT_ALIGN);
        ringDescriptors = new int[queueSize];
        nextAvail = avail & 0x7FFF;
        availWrap = (avail & 0x8000) != 0;
        nextUsed = used & 0x7FFF;
        usedWrap = (used & 0x8000) != 0;
        activateRings();
    }

    @Override
    boolean translateRings() throws VirtqueueException {
        long size = PackedRing.descriptorRingSize(queueSize);
        // the device both reads descriptors and writes used ones in place: it needs both permissions
        return translateArea(desc, "descriptor ring", addresses.descriptorArea(), size, Access.READ,
            PackedRing.DESC_ALIGN)
            && translateArea(desc, "descriptor ring", addresses.descriptorArea(), size, Access.WRITE,
            PackedRing.DESC_ALIGN)
            && translateArea(driverEvent, "driver event suppression", addresses.driverArea(), PackedRing.EVENT_SIZE,
            Access.READ, PackedRing.EVENT_ALIGN)
            && translateArea(deviceEvent, "device event suppression", addresses.deviceArea(), PackedRing.EVENT_SIZE,
            Access.WRITE, PackedRing.EVENT_ALIGN);
    }

    /** @return the position (bits 0-14) and wrap counter (bit 15) of the next descriptor to read */
    @Override
    public int lastAvailIdx() {
        return PackedRing.offWrap(nextAvail, availWrap) & 0xFFFF;
    }

    /** @return the avail state in bits 0-15 and the used state (position, wrap counter) in bits 16-31 */
    @Override
    public int vringBase() {
        return lastAvailIdx() | (PackedRing.offWrap(nextUsed, usedWrap) & 0xFFFF) << 16;
    }

    @Override
    public int tryPop(DescriptorChain chain) throws VirtqueueException {
        if (broken != null) {
            throw broken;
        }
        if (!refreshRings()) {
            return MISSED;
        }
        // acquire: pairs with the release store of the head's flags in the driver's publish, so the
        // rest of the chain, written before it, is visible below
        int headFlags = desc.getShortAcquire(nextAvail * DESC_SIZE + DESC_FLAGS);
        if (!PackedRing.isAvailable(headFlags, availWrap)) {
            return EMPTY;
        }
        chain.reset(-1);
        int position = nextAvail;
        boolean wrap = availWrap;
        boolean sawWritable = false;
        int id;
        int count = 0;
        while (true) {
            if (++count > queueSize) {
                throw fail(RingError.CHAIN_LOOP, "chain at position " + nextAvail + " has more than " + queueSize
                    + " descriptors", null);
            }
            long off = position * DESC_SIZE;
            long addr = desc.getLong(off + DESC_ADDR);
            long len = Integer.toUnsignedLong(desc.getInt(off + DESC_LEN));
            int flags = desc.getShort(off + DESC_FLAGS);
            boolean next = (flags & DESC_F_NEXT) != 0;
            if (++position == queueSize) {
                position = 0;
                wrap = !wrap;
            }
            if ((flags & DESC_F_INDIRECT) != 0) {
                checkIndirect(nextAvail, count - 1, next, len, false);
                if (!indirectTable(nextAvail, addr, len)
                    || !walkIndirect(chain, indirectArea, (int) (len / DESC_SIZE), sawWritable)) {
                    return MISSED;
                }
                chain.countDescriptor();
                id = Short.toUnsignedInt(desc.getShort(off + DESC_ID));
                break;
            }
            boolean write = (flags & DESC_F_WRITE) != 0;
            if (!addBuffer(chain, nextAvail, count - 1, false, addr, len, write, sawWritable)) {
                return MISSED;
            }
            sawWritable |= write;
            if (!next) {
                id = Short.toUnsignedInt(desc.getShort(off + DESC_ID));
                break;
            }
        }
        checkNotInFlight(id, nextAvail);
        chain.head(id);
        markInFlight(id, chain.writableLength());
        ringDescriptors[id] = count;
        nextAvail = position;
        availWrap = wrap;
        if (eventIdx && notificationsEnabled) {
            // keep the event position current so the driver kicks for the next chain; the fence that
            // makes sleeping safe is in enableNotifications
            deviceEvent.setShortRelease(EVENT_OFF_WRAP, PackedRing.offWrap(nextAvail, availWrap));
        }
        return POPPED;
    }

    /** @return false on a translation miss (recorded; nothing consumed) */
    private boolean walkIndirect(DescriptorChain chain, RingArea table, int entries, boolean sawWritable)
        throws VirtqueueException {
        boolean writable = sawWritable;
        for (int i = 0; i < entries; i++) {
            long off = i * DESC_SIZE;
            int flags = table.getShort(off + DESC_FLAGS) & 0xFFFF;
            if ((flags & DESC_F_INDIRECT) != 0) {
                throw nestedIndirect(nextAvail, i);
            }
            // entries are walked in order, len/16 of them: only WRITE means anything here [virtio 2.8.19]; NEXT
            // and the AVAIL/USED bits are ignored, as QEMU, DPDK vhost and rust-vmm do (DPDK's driver sets them)
            boolean write = (flags & DESC_F_WRITE) != 0;
            if (!addBuffer(chain, nextAvail, i, true, table.getLong(off + DESC_ADDR),
                Integer.toUnsignedLong(table.getInt(off + DESC_LEN)), write, writable)) {
                return false;
            }
            writable |= write;
        }
        return true;
    }

    @Override
    public void addUsed(int head, long writtenLength) {
        markUsed(head, writtenLength);
        addUsedEntry(head, (int) writtenLength);
    }

    @Override
    int usedSpan(int head) {
        return ringDescriptors[head];
    }

    @Override
    void writeUsed(int head, int writtenLength, int span) {
        long off = nextUsed * DESC_SIZE;
        desc.setShort(off + DESC_ID, (short) head);
        desc.setInt(off + DESC_LEN, writtenLength);
        short flags = (short) PackedRing.usedBits(usedWrap);
        if (pendingUsed < 0) {
            pendingUsed = nextUsed;
            pendingUsedFlags = flags;
        } else {
            // not the batch's first: the driver reads it only after the first, whose release store
            // in publishUsed makes this plain store visible too
            desc.setShort(off + DESC_FLAGS, flags);
        }
        // the chain's descriptors, or an in-order run's, are skipped: one used descriptor for them all [virtio 2.8.8]
        usedDescriptorsAdded += span;
        nextUsed += span;
        if (nextUsed >= queueSize) {
            nextUsed -= queueSize;
            usedWrap = !usedWrap;
        }
    }

    @Override
    public void publishUsedQuiet() {
        if ((pendingUsed >= 0 || unwritten()) && readyToPublish() && pendingUsed >= 0) {
            publishFirstUsed();
        }
    }

    /** @return how many descriptors the publication moved */
    private int publishFirstUsed() {
        // release: every used descriptor of the batch is visible before the first one is; pairs
        // with the acquire of the flags in the driver's pollUsed
        desc.setShortRelease(pendingUsed * DESC_SIZE + DESC_FLAGS, pendingUsedFlags);
        pendingUsed = -1;
        int moved = usedDescriptorsAdded;
        usedDescriptorsAdded = 0;
        return moved;
    }

    @Override
    public boolean publishUsed() {
        if (pendingUsed < 0 && !unwritten() || !readyToPublish() || pendingUsed < 0) {
            return false;
        }
        int moved = publishFirstUsed();
        // full fence: our release store must be visible before we read the driver's wish; pairs
        // with the fence in the driver's arm before its recheck (PackedRing.notifyAfterPublish)
        VarHandle.fullFence();
        return PackedRing.notify(driverEvent.getShortOpaque(EVENT_FLAGS),
            Short.toUnsignedInt(driverEvent.getShortOpaque(EVENT_OFF_WRAP)), eventIdx, nextUsed, moved, usedWrap,
            queueSize);
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
        if (eventIdx) {
            deviceEvent.setShortRelease(EVENT_OFF_WRAP, PackedRing.offWrap(nextAvail, availWrap));
        }
        short wanted = eventIdx ? EVENT_FLAG_DESC : EVENT_FLAG_ENABLE;
        if (eventFlagsShadow != wanted) {
            deviceEvent.setShortRelease(EVENT_FLAGS, wanted);
            eventFlagsShadow = wanted;
        }
        // full fence: our wish must be visible before we recheck the ring; pairs with the fence
        // in the driver's publish before it reads our wish (as PackedRing.arm)
        VarHandle.fullFence();
        // acquire: pairs with the release store of the head's flags in the driver's publish
        int flags = desc.getShortAcquire(nextAvail * DESC_SIZE + DESC_FLAGS);
        return PackedRing.isAvailable(flags, availWrap);
    }

    @Override
    public void disableNotifications() {
        notificationsEnabled = false;
        if (broken == null && eventFlagsShadow != EVENT_FLAG_DISABLE && ringsCurrent()) {
            eventFlagsShadow = EVENT_FLAG_DISABLE;
            deviceEvent.setShortRelease(EVENT_FLAGS, EVENT_FLAG_DISABLE);
        }
    }

    @Override
    public String toString() {
        return "PackedDeviceQueue[size=" + queueSize + ", nextAvail=" + nextAvail + "/" + (availWrap ? 1 : 0)
            + ", nextUsed=" + nextUsed + "/" + (usedWrap ? 1 : 0) + ", inFlight=" + inFlight()
            + (broken != null ? ", broken: " + broken.getMessage() : "") + "]";
    }
}

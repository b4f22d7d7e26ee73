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
import static io.vringj.ring.RingFormat.DESC_LE_INT;
import static io.vringj.ring.RingFormat.DESC_LE_LONG;
import static io.vringj.ring.RingFormat.DESC_LE_SHORT;
import static io.vringj.ring.RingFormat.LE_INT;
import static io.vringj.ring.RingFormat.LE_LONG;
import static io.vringj.ring.RingFormat.LE_SHORT;
import static io.vringj.ring.RingFormat.SHORT;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import java.lang.foreign.MemorySegment;
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
    private MemorySegment desc;
    private MemorySegment driverEvent;
    private MemorySegment deviceEvent;

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
        translateRings();
    }

    @Override
    void translateRings() throws VirtqueueException {
        long epoch = space.epoch();
        long size = PackedRing.descriptorRingSize(queueSize);
        // the device both reads descriptors and writes used ones in place: it needs both permissions
        translateArea("descriptor ring", addresses.descriptorArea(), size, Access.READ, PackedRing.DESC_ALIGN);
        desc = translateArea("descriptor ring", addresses.descriptorArea(), size, Access.WRITE, PackedRing.DESC_ALIGN);
        driverEvent = translateArea("driver event suppression", addresses.driverArea(), PackedRing.EVENT_SIZE,
            Access.READ, PackedRing.EVENT_ALIGN);
        deviceEvent = translateArea("device event suppression", addresses.deviceArea(), PackedRing.EVENT_SIZE,
            Access.WRITE, PackedRing.EVENT_ALIGN);
        ringEpoch(epoch);
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
    public boolean pop(DescriptorChain chain) throws VirtqueueException {
        if (broken != null) {
            throw broken;
        }
        refreshRings();
        // acquire: pairs with the release store of the head's flags in the driver's publish, so the
        // rest of the chain, written before it, is visible below
        int headFlags = (short) SHORT.getAcquire(desc, nextAvail * DESC_SIZE + DESC_FLAGS);
        if (!PackedRing.isAvailable(headFlags, availWrap)) {
            return false;
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
            long addr = desc.get(LE_LONG, off + DESC_ADDR);
            long len = Integer.toUnsignedLong(desc.get(LE_INT, off + DESC_LEN));
            int flags = desc.get(LE_SHORT, off + DESC_FLAGS);
            boolean next = (flags & DESC_F_NEXT) != 0;
            if (++position == queueSize) {
                position = 0;
                wrap = !wrap;
            }
            if ((flags & DESC_F_INDIRECT) != 0) {
                checkIndirect(nextAvail, count - 1, next, len, false);
                MemorySegment table = indirectTable(nextAvail, addr, len);
                walkIndirect(chain, table, indirectOffset(), (int) (len / DESC_SIZE), sawWritable);
                chain.countDescriptor();
                id = Short.toUnsignedInt(desc.get(LE_SHORT, off + DESC_ID));
                break;
            }
            boolean write = (flags & DESC_F_WRITE) != 0;
            addBuffer(chain, nextAvail, count - 1, false, addr, len, write, sawWritable);
            sawWritable |= write;
            if (!next) {
                id = Short.toUnsignedInt(desc.get(LE_SHORT, off + DESC_ID));
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
            SHORT.setRelease(deviceEvent, EVENT_OFF_WRAP, PackedRing.offWrap(nextAvail, availWrap));
        }
        return true;
    }

    private void walkIndirect(DescriptorChain chain, MemorySegment table, long base, int entries, boolean sawWritable)
        throws VirtqueueException {
        boolean writable = sawWritable;
        for (int i = 0; i < entries; i++) {
            long off = base + i * DESC_SIZE;
            int flags = table.get(DESC_LE_SHORT, off + DESC_FLAGS) & 0xFFFF;
            if ((flags & DESC_F_INDIRECT) != 0) {
                throw nestedIndirect(nextAvail, i);
            }
            // entries are walked in order, len/16 of them: only WRITE means anything here [virtio 2.8.19]; NEXT
            // and the AVAIL/USED bits are ignored, as QEMU, DPDK vhost and rust-vmm do (DPDK's driver sets them)
            boolean write = (flags & DESC_F_WRITE) != 0;
            addBuffer(chain, nextAvail, i, true, table.get(DESC_LE_LONG, off + DESC_ADDR),
                Integer.toUnsignedLong(table.get(DESC_LE_INT, off + DESC_LEN)), write, writable);
            writable |= write;
        }
    }

    @Override
    public void addUsed(int head, long writtenLength) {
        markUsed(head, writtenLength);
        long off = nextUsed * DESC_SIZE;
        desc.set(LE_SHORT, off + DESC_ID, (short) head);
        desc.set(LE_INT, off + DESC_LEN, (int) writtenLength);
        short flags = (short) PackedRing.usedBits(usedWrap);
        if (pendingUsed < 0) {
            pendingUsed = nextUsed;
            pendingUsedFlags = flags;
        } else {
            // not the batch's first: the driver reads it only after the first, whose release store
            // in publishUsed makes this plain store visible too
            desc.set(LE_SHORT, off + DESC_FLAGS, flags);
        }
        int n = ringDescriptors[head];
        usedDescriptorsAdded += n;
        nextUsed += n;
        if (nextUsed >= queueSize) {
            nextUsed -= queueSize;
            usedWrap = !usedWrap;
        }
    }

    @Override
    public void publishUsedQuiet() {
        if (broken == null && pendingUsed >= 0) {
            publishFirstUsed();
        }
    }

    /** @return how many descriptors the publication moved */
    private int publishFirstUsed() {
        // release: every used descriptor of the batch is visible before the first one is; pairs
        // with the acquire of the flags in the driver's pollUsed
        SHORT.setRelease(desc, pendingUsed * DESC_SIZE + DESC_FLAGS, pendingUsedFlags);
        pendingUsed = -1;
        int moved = usedDescriptorsAdded;
        usedDescriptorsAdded = 0;
        return moved;
    }

    @Override
    public boolean publishUsed() {
        if (broken != null || pendingUsed < 0) {
            return false;
        }
        int moved = publishFirstUsed();
        return PackedRing.notifyAfterPublish(driverEvent, eventIdx, nextUsed, moved, usedWrap, queueSize);
    }

    @Override
    public boolean enableNotifications() throws VirtqueueException {
        if (broken != null) {
            throw broken;
        }
        refreshRings();
        notificationsEnabled = true;
        eventFlagsShadow = PackedRing.arm(deviceEvent, eventIdx, nextAvail, availWrap, eventFlagsShadow);
        int flags = (short) SHORT.getAcquire(desc, nextAvail * DESC_SIZE + DESC_FLAGS);
        return PackedRing.isAvailable(flags, availWrap);
    }

    @Override
    public void disableNotifications() {
        notificationsEnabled = false;
        if (broken == null && eventFlagsShadow != EVENT_FLAG_DISABLE) {
            eventFlagsShadow = EVENT_FLAG_DISABLE;
            SHORT.setRelease(deviceEvent, EVENT_FLAGS, EVENT_FLAG_DISABLE);
        }
    }

    @Override
    public String toString() {
        return "PackedDeviceQueue[size=" + queueSize + ", nextAvail=" + nextAvail + "/" + (availWrap ? 1 : 0)
            + ", nextUsed=" + nextUsed + "/" + (usedWrap ? 1 : 0) + ", inFlight=" + inFlight()
            + (broken != null ? ", broken: " + broken.getMessage() : "") + "]";
    }
}

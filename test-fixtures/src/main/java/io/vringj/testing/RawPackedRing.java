package io.vringj.testing;

import static io.vringj.testing.RawSplitRing.LE_INT;
import static io.vringj.testing.RawSplitRing.LE_LONG;
import static io.vringj.testing.RawSplitRing.LE_SHORT;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.PackedRing;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingLayout;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A packed ring written by hand, as a buggy or malicious driver (or device) would write it
 * [virtio 2.8]: descriptors in ring order with the avail/used bits of a lap, used descriptors,
 * indirect tables and the event suppression structures, all with any value.
 *
 * <p>{@link #of} uses {@link RawSplitRing}'s memory map: the descriptor ring at
 * {@link RawSplitRing#DESC}, the driver event suppression structure at {@link RawSplitRing#AVAIL},
 * the device's at {@link RawSplitRing#USED}. {@link #over} writes a ring in memory the caller owns.
 *
 * <pre>
 *   descriptor i:  +16i addr(le64)  +16i+8 len(le32)  +16i+12 id(le16)  +16i+14 flags(le16)
 *   event:         +0 off_wrap(le16: offset | wrap &lt;&lt; 15)  +2 flags(le16)
 * </pre>
 *
 * <p>Not thread-safe; plain stores only.
 */
public final class RawPackedRing implements AutoCloseable {
    /** The guest memory the ring lies in. */
    public final GuestMemory memory;
    /** Q. */
    public final int queueSize;
    /** The negotiated features the queues are created with (RING_PACKED among them). */
    public final long features;
    /** The descriptor ring. */
    public final MemorySegment desc;
    /** The driver event suppression structure (written by the driver). */
    public final MemorySegment driverEvent;
    /** The device event suppression structure (written by the device). */
    public final MemorySegment deviceEvent;
    private final RingAddresses addresses;
    private final boolean ownsMemory;
    private boolean wrap = true;
    private int position;

    private RawPackedRing(GuestMemory memory, boolean ownsMemory, long features, int queueSize, RingAddresses addresses) {
        this.memory = memory;
        this.ownsMemory = ownsMemory;
        this.features = features;
        this.queueSize = queueSize;
        this.addresses = addresses;
        desc = memory.slice(addresses.descriptorArea(), PackedRing.descriptorRingSize(queueSize));
        driverEvent = memory.slice(addresses.driverArea(), PackedRing.EVENT_SIZE);
        deviceEvent = memory.slice(addresses.deviceArea(), PackedRing.EVENT_SIZE);
    }

    /**
     * A packed ring in fresh memory with VERSION_1, RING_PACKED and the given feature bits.
     *
     * @param queueSize Q
     * @param featureBits bit numbers from {@link VirtioFeatures}
     */
    public RawPackedRing(int queueSize, int... featureBits) {
        this(RawSplitRing.newMemory(), true, packedFeatures(featureBits), queueSize,
            new RingAddresses(RawSplitRing.DESC, RawSplitRing.AVAIL, RawSplitRing.USED));
    }

    /**
     * @param queueSize Q
     * @param featureBits bit numbers from {@link VirtioFeatures}, RING_PACKED added
     * @return a packed ring in fresh memory; close it to free its memory
     */
    public static RawPackedRing of(int queueSize, int... featureBits) {
        return new RawPackedRing(queueSize, featureBits);
    }

    /**
     * A ring at {@code addresses} in memory the caller owns ({@link #close()} leaves it alone).
     *
     * @param memory guest memory that holds all three areas
     * @param features the negotiated features (RING_PACKED among them)
     * @param queueSize Q
     * @param addresses where the three areas are, e.g. {@link RingLayout#addresses()}
     * @return the ring
     */
    public static RawPackedRing over(GuestMemory memory, long features, int queueSize, RingAddresses addresses) {
        return new RawPackedRing(memory, false, features, queueSize, addresses);
    }

    private static long packedFeatures(int... featureBits) {
        int[] bits = Arrays.copyOf(featureBits, featureBits.length + 1);
        bits[featureBits.length] = VirtioFeatures.RING_PACKED;
        return RawSplitRing.features(bits);
    }

    /** @return where the three areas are */
    public RingAddresses addresses() {
        return addresses;
    }

    /**
     * @return a device queue over this ring, seeing all guest memory as is
     * @throws VirtqueueException if the queue rejects the ring
     */
    public DeviceQueue device() throws VirtqueueException {
        return DeviceQueue.create(features, queueSize, addresses, AddressSpace.identity(memory));
    }

    /**
     * @param space how the device reaches guest memory
     * @return a device queue over this ring
     * @throws VirtqueueException if the queue rejects the ring
     */
    public DeviceQueue device(AddressSpace space) throws VirtqueueException {
        return DeviceQueue.create(features, queueSize, addresses, space);
    }

    /** @return a driver queue over this ring */
    public DriverQueue driver() {
        return DriverQueue.create(features, queueSize, memory, addresses);
    }

    /**
     * Writes the next descriptor in ring order, made available for the current lap [virtio 2.8.1].
     *
     * @return this ring
     */
    public RawPackedRing avail(long addr, long len, int id, int flags) {
        writeDescriptor(desc, position, addr, len, id, flags | availBits(wrap));
        if (++position == queueSize) {
            position = 0;
            wrap = !wrap;
        }
        return this;
    }

    /**
     * Writes entry {@code i} of the indirect table at {@link RawSplitRing#INDIRECT}.
     *
     * @return this ring
     */
    public RawPackedRing indirect(int i, long addr, long len, int flags) {
        return table(RawSplitRing.INDIRECT, i, addr, len, flags);
    }

    /**
     * Writes entry {@code i} of an indirect table at guest-physical {@code table}.
     *
     * @return this ring
     */
    public RawPackedRing table(long table, int i, long addr, long len, int flags) {
        writeDescriptor(memory.slice(table, PackedRing.DESC_SIZE * (i + 1)), i, addr, len, 0, flags);
        return this;
    }

    /**
     * A device writes a used descriptor at {@code position} for lap {@code lap} [virtio 2.8.2].
     *
     * @return this ring
     */
    public RawPackedRing used(int position, int id, long len, boolean lap) {
        writeDescriptor(desc, position, 0, len, id, usedBits(lap));
        return this;
    }

    /**
     * Writes the driver event suppression structure [virtio 2.8.10].
     *
     * @return this ring
     */
    public RawPackedRing driverEvent(int offWrap, int flags) {
        driverEvent.set(LE_SHORT, 0, (short) offWrap);
        driverEvent.set(LE_SHORT, 2, (short) flags);
        return this;
    }

    /**
     * Writes the device event suppression structure [virtio 2.8.10].
     *
     * @return this ring
     */
    public RawPackedRing deviceEvent(int offWrap, int flags) {
        deviceEvent.set(LE_SHORT, 0, (short) offWrap);
        deviceEvent.set(LE_SHORT, 2, (short) flags);
        return this;
    }

    /**
     * Writes one packed descriptor [virtio 2.8.13] into any ring or table, with any values.
     *
     * @param table a descriptor ring or indirect table
     * @param i the descriptor's index in it
     */
    public static void writeDescriptor(MemorySegment table, long i, long addr, long len, int id, int flags) {
        long off = PackedRing.DESC_SIZE * i;
        table.set(LE_LONG, off, addr);
        table.set(LE_INT, off + 8, (int) len);
        table.set(LE_SHORT, off + 12, (short) id);
        table.set(LE_SHORT, off + 14, (short) flags);
    }

    /** @return the AVAIL/USED flag bits of a descriptor made available in lap {@code wrap} [virtio 2.8.1] */
    public static int availBits(boolean wrap) {
        return wrap ? PackedRing.DESC_F_AVAIL : PackedRing.DESC_F_USED;
    }

    /** @return the AVAIL/USED flag bits of a descriptor used in lap {@code wrap} [virtio 2.8.1] */
    public static int usedBits(boolean wrap) {
        return wrap ? PackedRing.DESC_F_AVAIL | PackedRing.DESC_F_USED : 0;
    }

    /** @return the flags of descriptor {@code i} */
    public int descFlags(int i) {
        return desc.get(LE_SHORT, PackedRing.DESC_SIZE * i + 14) & 0xFFFF;
    }

    /** @return the buffer id of descriptor {@code i} */
    public int descId(int i) {
        return desc.get(LE_SHORT, PackedRing.DESC_SIZE * i + 12) & 0xFFFF;
    }

    /** @return the len of descriptor {@code i} */
    public long descLen(int i) {
        return Integer.toUnsignedLong(desc.get(LE_INT, PackedRing.DESC_SIZE * i + 8));
    }

    /** Frees the memory if {@link #of} or the constructor allocated it. */
    @Override
    public void close() {
        if (ownsMemory) {
            memory.close();
        }
    }
}

package io.vringj.testing;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingLayout;
import io.vringj.ring.SplitRing;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A split ring written by hand, field by field, the way a buggy or malicious driver (or device)
 * would write it [virtio 2.7]: every writer takes any value, so the smallest ring that breaks a
 * rule can be built with it. The equivalent of rust-vmm's {@code MockSplitQueue}.
 *
 * <p>{@link #of} allocates its own guest memory with this map:
 * <pre>
 *   0x0000_0000  SECURE   1 MiB   (buffers a protected device may not reach)
 *   0x1000_0000  SHARED   1 MiB   rings at +0x0 (desc), +0x4000 (avail), +0x5000 (used);
 *                                 indirect table at +0x8000; buffers from +0x10000
 * </pre>
 * {@link #over} writes a ring that lies anywhere in memory the caller owns, for example where a
 * {@link RingLayout} placed it.
 *
 * <p>Field offsets [virtio 2.7.5, 2.7.6, 2.7.8]:
 * <pre>
 *   descriptor i:  +16i addr(le64)  +16i+8 len(le32)  +16i+12 flags(le16)  +16i+14 next(le16)
 *   avail:         +0 flags  +2 idx  +4+2k ring[k]  +4+2Q used_event
 *   used:          +0 flags  +2 idx  +4+8k id(le32)  +8+8k len(le32)  +4+8Q avail_event
 * </pre>
 *
 * <p>Not thread-safe; plain stores only (a jcstress test publishes through the real queues).
 */
public final class RawSplitRing implements AutoCloseable {
    /** Guest-physical base of the SECURE region of {@link #of}'s memory. */
    public static final long SECURE_BASE = 0;
    /** Guest-physical base of the SHARED region of {@link #of}'s memory. */
    public static final long SHARED_BASE = 0x1000_0000L;
    /** Where {@link #of} puts the descriptor table (the packed ring's descriptor ring). */
    public static final long DESC = SHARED_BASE;
    /** Where {@link #of} puts the avail ring (the packed ring's driver event suppression). */
    public static final long AVAIL = SHARED_BASE + 0x4000;
    /** Where {@link #of} puts the used ring (the packed ring's device event suppression). */
    public static final long USED = SHARED_BASE + 0x5000;
    /** The indirect table {@link #indirect} writes. */
    public static final long INDIRECT = SHARED_BASE + 0x8000;
    /** Where buffers may start in {@link #of}'s memory. */
    public static final long BUFFERS = SHARED_BASE + 0x10000;
    /** Size of each region of {@link #of}'s memory. */
    public static final long REGION_SIZE = 1 << 20;

    static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** The guest memory the ring lies in. */
    public final GuestMemory memory;
    /** Q. */
    public final int queueSize;
    /** The negotiated features the queues are created with. */
    public final long features;
    /** The descriptor table. */
    public final MemorySegment desc;
    /** The avail ring, {@code used_event} included. */
    public final MemorySegment avail;
    /** The used ring, {@code avail_event} included. */
    public final MemorySegment used;
    private final RingAddresses addresses;
    private final boolean ownsMemory;

    private RawSplitRing(GuestMemory memory, boolean ownsMemory, long features, int queueSize, RingAddresses addresses) {
        this.memory = memory;
        this.ownsMemory = ownsMemory;
        this.queueSize = queueSize;
        this.features = features;
        this.addresses = addresses;
        this.desc = memory.slice(addresses.descriptorArea(), SplitRing.descriptorTableSize(queueSize));
        this.avail = memory.slice(addresses.driverArea(), SplitRing.availRingSize(queueSize));
        this.used = memory.slice(addresses.deviceArea(), SplitRing.usedRingSize(queueSize));
    }

    /**
     * A ring in fresh memory laid out as in the class comment; {@link #close()} frees it.
     *
     * @param queueSize Q (any value the memory map holds; the queues check it)
     * @param features the negotiated features
     */
    public RawSplitRing(int queueSize, long features) {
        this(newMemory(), true, features, queueSize, new RingAddresses(DESC, AVAIL, USED));
    }

    /**
     * A ring in fresh memory with VERSION_1 and the given feature bits.
     *
     * @param queueSize Q
     * @param featureBits bit numbers from {@link VirtioFeatures}
     * @return the ring; close it to free its memory
     */
    public static RawSplitRing of(int queueSize, int... featureBits) {
        return new RawSplitRing(queueSize, features(featureBits));
    }

    /**
     * A ring at {@code addresses} in memory the caller owns ({@link #close()} leaves it alone).
     *
     * @param memory guest memory that holds all three areas
     * @param features the negotiated features
     * @param queueSize Q
     * @param addresses where the three areas are, e.g. {@link RingLayout#addresses()}
     * @return the ring
     */
    public static RawSplitRing over(GuestMemory memory, long features, int queueSize, RingAddresses addresses) {
        return new RawSplitRing(memory, false, features, queueSize, addresses);
    }

    /**
     * @param featureBits bit numbers from {@link VirtioFeatures}
     * @return VERSION_1 and those bits
     */
    public static long features(int... featureBits) {
        long f = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        for (int b : featureBits) {
            f |= VirtioFeatures.bit(b);
        }
        return f;
    }

    static GuestMemory newMemory() {
        return GuestMemory.builder()
            .allocate(SECURE_BASE, REGION_SIZE, RegionKind.SECURE)
            .allocate(SHARED_BASE, REGION_SIZE, RegionKind.SHARED)
            .build();
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
     * Writes descriptor {@code i} of the ring's table.
     *
     * @return this ring
     */
    public RawSplitRing desc(int i, long addr, long len, int flags, int next) {
        writeDescriptor(desc, i, addr, len, flags, next);
        return this;
    }

    /**
     * Writes descriptor {@code i} of the indirect table at {@link #INDIRECT}.
     *
     * @return this ring
     */
    public RawSplitRing indirect(int i, long addr, long len, int flags, int next) {
        return table(INDIRECT, i, addr, len, flags, next);
    }

    /**
     * Writes descriptor {@code i} of an indirect table at guest-physical {@code table}.
     *
     * @return this ring
     */
    public RawSplitRing table(long table, int i, long addr, long len, int flags, int next) {
        writeDescriptor(memory.slice(table, SplitRing.DESC_SIZE * (i + 1)), i, addr, len, flags, next);
        return this;
    }

    /**
     * Writes one split descriptor [virtio 2.7.5] into any table, with any values.
     *
     * @param table a descriptor table or indirect table
     * @param i the descriptor's index in it
     */
    public static void writeDescriptor(MemorySegment table, long i, long addr, long len, int flags, int next) {
        long off = SplitRing.DESC_SIZE * i;
        table.set(LE_LONG, off, addr);
        table.set(LE_INT, off + 8, (int) len);
        table.set(LE_SHORT, off + 12, (short) flags);
        table.set(LE_SHORT, off + 14, (short) next);
    }

    /**
     * Puts {@code heads} in the avail ring from slot 0 and sets avail idx to their count.
     *
     * @return this ring
     */
    public RawSplitRing offer(int... heads) {
        for (int k = 0; k < heads.length; k++) {
            availEntry(k % queueSize, heads[k]);
        }
        return availIdx(heads.length);
    }

    /**
     * Writes avail ring entry {@code slot}; the index is left alone.
     *
     * @return this ring
     */
    public RawSplitRing availEntry(int slot, int head) {
        avail.set(LE_SHORT, 4 + 2L * slot, (short) head);
        return this;
    }

    /** @return this ring, with avail idx set to {@code idx} */
    public RawSplitRing availIdx(int idx) {
        avail.set(LE_SHORT, 2, (short) idx);
        return this;
    }

    /** @return this ring, with the avail ring's flags set to {@code flags} */
    public RawSplitRing availFlags(int flags) {
        avail.set(LE_SHORT, 0, (short) flags);
        return this;
    }

    /** @return this ring, with {@code used_event} set to {@code value} [virtio 2.7.10] */
    public RawSplitRing usedEvent(int value) {
        avail.set(LE_SHORT, 4 + 2L * queueSize, (short) value);
        return this;
    }

    /** @return this ring, with {@code avail_event} set to {@code value} [virtio 2.7.10] */
    public RawSplitRing availEvent(int value) {
        used.set(LE_SHORT, 4 + 8L * queueSize, (short) value);
        return this;
    }

    /** @return this ring, with the used ring's flags set to {@code flags} */
    public RawSplitRing usedFlags(int flags) {
        used.set(LE_SHORT, 0, (short) flags);
        return this;
    }

    /** @return the used idx */
    public int usedIdx() {
        return Short.toUnsignedInt(used.get(LE_SHORT, 2));
    }

    /** @return the id of used element {@code slot} */
    public int usedId(int slot) {
        return used.get(LE_INT, 4 + 8L * slot);
    }

    /** @return the len of used element {@code slot} */
    public long usedLen(int slot) {
        return Integer.toUnsignedLong(used.get(LE_INT, 8 + 8L * slot));
    }

    /**
     * A device writes used element {@code slot}; the index is left alone.
     *
     * @return this ring
     */
    public RawSplitRing usedElement(int slot, int id, long len) {
        used.set(LE_INT, 4 + 8L * slot, id);
        used.set(LE_INT, 8 + 8L * slot, (int) len);
        return this;
    }

    /**
     * A device writes used element {@code slot} and sets used idx to {@code newIdx}.
     *
     * @return this ring
     */
    public RawSplitRing writeUsed(int slot, int id, long len, int newIdx) {
        usedElement(slot, id, len);
        used.set(LE_SHORT, 2, (short) newIdx);
        return this;
    }

    /** Frees the memory if {@link #of} or the constructor allocated it. */
    @Override
    public void close() {
        if (ownsMemory) {
            memory.close();
        }
    }
}

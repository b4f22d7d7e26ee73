package io.vringj.ring;

import static io.vringj.ring.RingFormat.LE_INT;
import static io.vringj.ring.RingFormat.LE_LONG;
import static io.vringj.ring.RingFormat.LE_SHORT;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import java.lang.foreign.MemorySegment;

/**
 * A split ring written by hand, byte by byte, the way a buggy or malicious driver would: the
 * smallest rings that break each rule are built with it.
 *
 * <pre>
 *   0x0000_0000  SECURE   1 MiB   (buffers a protected device may not reach)
 *   0x1000_0000  SHARED   1 MiB   rings at +0x0 (desc), +0x4000 (avail), +0x5000 (used); buffers from +0x10000
 * </pre>
 */
final class RawRing implements AutoCloseable {
    static final long SECURE_BASE = 0;
    static final long SHARED_BASE = 0x1000_0000L;
    static final long DESC = SHARED_BASE;
    static final long AVAIL = SHARED_BASE + 0x4000;
    static final long USED = SHARED_BASE + 0x5000;
    static final long BUFFERS = SHARED_BASE + 0x10000;
    static final long INDIRECT = SHARED_BASE + 0x8000;

    final GuestMemory memory;
    final int queueSize;
    final long features;
    final MemorySegment desc;
    final MemorySegment avail;
    final MemorySegment used;

    RawRing(int queueSize, long features) {
        this.memory = GuestMemory.builder()
            .allocate(SECURE_BASE, 1 << 20, RegionKind.SECURE)
            .allocate(SHARED_BASE, 1 << 20, RegionKind.SHARED)
            .build();
        this.queueSize = queueSize;
        this.features = features;
        this.desc = memory.slice(DESC, SplitRing.descriptorTableSize(queueSize));
        this.avail = memory.slice(AVAIL, SplitRing.availRingSize(queueSize));
        this.used = memory.slice(USED, SplitRing.usedRingSize(queueSize));
    }

    static RawRing of(int queueSize, int... featureBits) {
        long f = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        for (int b : featureBits) {
            f |= VirtioFeatures.bit(b);
        }
        return new RawRing(queueSize, f);
    }

    RingAddresses addresses() {
        return new RingAddresses(DESC, AVAIL, USED);
    }

    DeviceQueue device() throws VirtqueueException {
        return DeviceQueue.create(features, queueSize, addresses(), AddressSpace.identity(memory));
    }

    DeviceQueue device(AddressSpace space) throws VirtqueueException {
        return DeviceQueue.create(features, queueSize, addresses(), space);
    }

    DriverQueue driver() {
        return DriverQueue.create(features, queueSize, memory, addresses());
    }

    /** Writes descriptor {@code i} of the ring's table. */
    RawRing desc(int i, long addr, long len, int flags, int next) {
        return writeDesc(desc, i, addr, len, flags, next);
    }

    /** Writes descriptor {@code i} of the indirect table at {@link #INDIRECT}. */
    RawRing indirect(int i, long addr, long len, int flags, int next) {
        return table(INDIRECT, i, addr, len, flags, next);
    }

    /** Writes descriptor {@code i} of an indirect table at guest-physical {@code table}. */
    RawRing table(long table, int i, long addr, long len, int flags, int next) {
        return writeDesc(memory.slice(table, 16L * (i + 1)), i, addr, len, flags, next);
    }

    private RawRing writeDesc(MemorySegment table, int i, long addr, long len, int flags, int next) {
        long off = 16L * i;
        table.set(LE_LONG, off, addr);
        table.set(LE_INT, off + 8, (int) len);
        table.set(LE_SHORT, off + 12, (short) flags);
        table.set(LE_SHORT, off + 14, (short) next);
        return this;
    }

    /** Puts {@code heads} in the avail ring from slot 0 and sets avail idx to their count. */
    RawRing offer(int... heads) {
        for (int k = 0; k < heads.length; k++) {
            avail.set(LE_SHORT, 4 + 2L * (k % queueSize), (short) heads[k]);
        }
        return availIdx(heads.length);
    }

    RawRing availIdx(int idx) {
        avail.set(LE_SHORT, 2, (short) idx);
        return this;
    }

    int usedIdx() {
        return Short.toUnsignedInt(used.get(LE_SHORT, 2));
    }

    int usedId(int slot) {
        return used.get(LE_INT, 4 + 8L * slot);
    }

    long usedLen(int slot) {
        return Integer.toUnsignedLong(used.get(LE_INT, 8 + 8L * slot));
    }

    /** A device writes a used element directly (for malicious-device tests). */
    RawRing writeUsed(int slot, int id, long len, int newIdx) {
        used.set(LE_INT, 4 + 8L * slot, id);
        used.set(LE_INT, 8 + 8L * slot, (int) len);
        used.set(LE_SHORT, 2, (short) newIdx);
        return this;
    }

    @Override
    public void close() {
        memory.close();
    }
}

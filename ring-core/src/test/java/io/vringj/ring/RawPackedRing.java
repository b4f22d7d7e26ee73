package io.vringj.ring;

import static io.vringj.ring.RingFormat.LE_INT;
import static io.vringj.ring.RingFormat.LE_LONG;
import static io.vringj.ring.RingFormat.LE_SHORT;

import io.vringj.memory.AddressSpace;
import java.lang.foreign.MemorySegment;

/**
 * A packed ring written by hand, as a buggy or malicious driver (or device) would write it. Uses
 * {@link RawRing}'s memory map; the event suppression structures sit at the avail/used addresses.
 */
final class RawPackedRing implements AutoCloseable {
    final RawRing raw;
    final MemorySegment desc;
    final MemorySegment driverEvent;
    final MemorySegment deviceEvent;
    private boolean wrap = true;
    private int position;

    RawPackedRing(int queueSize, int... featureBits) {
        int[] bits = java.util.Arrays.copyOf(featureBits, featureBits.length + 1);
        bits[featureBits.length] = VirtioFeatures.RING_PACKED;
        raw = RawRing.of(queueSize, bits);
        desc = raw.memory.slice(RawRing.DESC, PackedRing.descriptorRingSize(queueSize));
        driverEvent = raw.memory.slice(RawRing.AVAIL, 4);
        deviceEvent = raw.memory.slice(RawRing.USED, 4);
    }

    DeviceQueue device() throws VirtqueueException {
        return raw.device();
    }

    DeviceQueue device(AddressSpace space) throws VirtqueueException {
        return raw.device(space);
    }

    DriverQueue driver() {
        return raw.driver();
    }

    /** Writes the next descriptor in ring order, made available for the current lap. */
    RawPackedRing avail(long addr, long len, int id, int flags) {
        write(desc, position, addr, len, id, flags | PackedRing.availBits(wrap));
        if (++position == raw.queueSize) {
            position = 0;
            wrap = !wrap;
        }
        return this;
    }

    /** Writes entry {@code i} of the indirect table at {@link RawRing#INDIRECT}. */
    RawPackedRing indirect(int i, long addr, long len, int flags) {
        return table(RawRing.INDIRECT, i, addr, len, flags);
    }

    /** Writes entry {@code i} of an indirect table at guest-physical {@code table}. */
    RawPackedRing table(long table, int i, long addr, long len, int flags) {
        write(raw.memory.slice(table, 16L * (i + 1)), i, addr, len, 0, flags);
        return this;
    }

    /** A device writes a used descriptor at {@code position} for lap {@code lap}. */
    RawPackedRing used(int position, int id, long len, boolean lap) {
        write(desc, position, 0, len, id, PackedRing.usedBits(lap));
        return this;
    }

    private static void write(MemorySegment table, int i, long addr, long len, int id, int flags) {
        long off = 16L * i;
        table.set(LE_LONG, off, addr);
        table.set(LE_INT, off + 8, (int) len);
        table.set(LE_SHORT, off + 12, (short) id);
        table.set(LE_SHORT, off + 14, (short) flags);
    }

    int descFlags(int i) {
        return desc.get(LE_SHORT, 16L * i + 14) & 0xFFFF;
    }

    int descId(int i) {
        return desc.get(LE_SHORT, 16L * i + 12) & 0xFFFF;
    }

    long descLen(int i) {
        return Integer.toUnsignedLong(desc.get(LE_INT, 16L * i + 8));
    }

    @Override
    public void close() {
        raw.close();
    }
}

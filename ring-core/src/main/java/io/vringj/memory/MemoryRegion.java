package io.vringj.memory;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * One contiguous piece of guest-physical memory and the native segment behind it.
 *
 * <pre>
 *   guest-physical:  [guestPhysicalAddress, guestPhysicalAddress + size)
 *   backing:         segment.address() .. + size   (native, byteSize() == size)
 * </pre>
 *
 * <p>Instances are immutable. The backing segment must be native (ring accessors need real,
 * aligned addresses for acquire/release access) and exactly {@code size} bytes long.
 */
public final class MemoryRegion {
    private final long guestPhysicalAddress;
    private final long size;
    private final MemorySegment segment;
    private final RegionKind kind;

    /**
     * @param guestPhysicalAddress the first guest-physical address of the region
     * @param segment the native memory behind it; its size is the region's size
     * @param kind whether a device may reach the region
     * @throws IllegalArgumentException if the segment is empty or on the heap, or if the
     *     region would run past the end of the 64-bit address space
     */
    public MemoryRegion(long guestPhysicalAddress, MemorySegment segment, RegionKind kind) {
        Objects.requireNonNull(segment, "segment");
        Objects.requireNonNull(kind, "kind");
        long size = segment.byteSize();
        if (size == 0) {
            throw new IllegalArgumentException(String.format(
                "region at guest-physical 0x%x has size 0; a region must hold at least one byte",
                guestPhysicalAddress));
        }
        if (!segment.isNative()) {
            throw new IllegalArgumentException(String.format(
                "region at guest-physical 0x%x is backed by a heap segment; guest memory must be native",
                guestPhysicalAddress));
        }
        // base + size may equal 2^64 exactly (end() wraps to 0) but never exceed it
        if (Long.compareUnsigned(guestPhysicalAddress, -size) > 0) {
            throw new IllegalArgumentException(String.format(
                "region [0x%x, +0x%x) runs past the end of the 64-bit guest-physical address space",
                guestPhysicalAddress, size));
        }
        this.guestPhysicalAddress = guestPhysicalAddress;
        this.size = size;
        this.segment = segment;
        this.kind = kind;
    }

    /** @return the first guest-physical address of the region */
    public long guestPhysicalAddress() {
        return guestPhysicalAddress;
    }

    /** @return the size of the region in bytes */
    public long size() {
        return size;
    }

    /**
     * @return the last guest-physical address of the region plus one, as an unsigned value
     *     ({@code 0} for a region that ends exactly at 2^64)
     */
    public long end() {
        return guestPhysicalAddress + size;
    }

    /** @return the native memory behind the region */
    public MemorySegment segment() {
        return segment;
    }

    /** @return whether a device may reach the region */
    public RegionKind kind() {
        return kind;
    }

    /**
     * @return whether {@code [address, address + length)} lies wholly inside this region; a
     *     negative or zero length is never contained
     */
    public boolean contains(long address, long length) {
        if (length <= 0) {
            return false;
        }
        long offset = address - guestPhysicalAddress;
        // unsigned compares: an address below the base gives a huge offset and fails the first test
        return Long.compareUnsigned(offset, size) < 0 && Long.compareUnsigned(length, size - offset) <= 0;
    }

    /** @return whether any byte of {@code other} is also a byte of this region */
    public boolean overlaps(MemoryRegion other) {
        long lastThis = guestPhysicalAddress + size - 1;
        long lastOther = other.guestPhysicalAddress + other.size - 1;
        return Long.compareUnsigned(guestPhysicalAddress, lastOther) <= 0
            && Long.compareUnsigned(other.guestPhysicalAddress, lastThis) <= 0;
    }

    @Override
    public String toString() {
        return String.format("%s[0x%x, 0x%x)", kind, guestPhysicalAddress, guestPhysicalAddress + size);
    }
}

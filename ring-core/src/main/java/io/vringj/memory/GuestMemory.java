package io.vringj.memory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;

/**
 * A guest's physical memory: an immutable set of non-overlapping {@link MemoryRegion}s,
 * sorted by guest-physical address.
 *
 * <pre>
 *   0x0000_0000 ┌────────────┐
 *               │ SECURE     │  the guest's own memory
 *               └────────────┘
 *   0x8000_0000 ┌────────────┐
 *               │ SHARED     │  bounce pool, rings of a protected guest
 *               └────────────┘
 * </pre>
 *
 * <p>Build one with {@link #builder()}: regions allocated from an {@link Arena} the caller
 * passes (the caller closes it) or from one this object owns and closes in {@link #close()}.
 * Regions backed by memory from elsewhere (a mapped file, memory another process handed over)
 * are added with {@link Builder#region(long, MemorySegment, RegionKind)}.
 *
 * <p>Immutable and safe for any number of threads; {@link #close()} is the only mutation and
 * must not race with use.
 */
public final class GuestMemory implements AutoCloseable {
    private final MemoryRegion[] regions;
    // Region i's guest-physical base, size and native start address, in address order. The
    // lookups on the DMA hot path (regionIndexOf, guestPhysicalAddressOf) read these primitives
    // rather than chasing MemoryRegion and MemorySegment objects. Written only here; the object
    // is immutable, so they never go stale.
    private final long[] bases;
    private final long[] sizes;
    private final long[] starts;
    // Region 0's base, size and start again, as fields: a memory of one region (the usual case)
    // answers from this object alone, with no array load, bounds check or loop.
    private final long base0;
    private final long size0;
    private final long start0;
    private final Arena ownedArena;

    private GuestMemory(MemoryRegion[] regions, Arena ownedArena) {
        this.regions = regions;
        int n = regions.length;
        this.bases = new long[n];
        this.sizes = new long[n];
        this.starts = new long[n];
        for (int i = 0; i < n; i++) {
            bases[i] = regions[i].guestPhysicalAddress();
            sizes[i] = regions[i].size();
            starts[i] = regions[i].segment().address();
        }
        this.base0 = bases[0];
        this.size0 = sizes[0];
        this.start0 = starts[0];
        this.ownedArena = ownedArena;
    }

    /** @return a builder for a new guest memory */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * One region of {@code size} bytes of {@link RegionKind#SHARED} memory at guest-physical
     * {@code base}, in an arena the returned object owns.
     *
     * @param base the guest-physical base address
     * @param size the size in bytes
     * @return the guest memory; close it to free the memory
     */
    public static GuestMemory ofShared(long base, long size) {
        return builder().allocate(base, size, RegionKind.SHARED).build();
    }

    /** @return the regions, sorted by guest-physical address */
    public List<MemoryRegion> regions() {
        return List.of(regions);
    }

    /** @return how many regions there are */
    public int regionCount() {
        return regions.length;
    }

    /**
     * @param index the region's position in address order
     * @return the region
     */
    public MemoryRegion region(int index) {
        return regions[index];
    }

    /**
     * Finds the region that wholly contains {@code [address, address + length)}.
     *
     * @param address the first guest-physical address
     * @param length the length, at least 1
     * @return the index of the region, or {@code -1} if no single region contains the range
     */
    public int regionIndexOf(long address, long length) {
        if (holds(address - base0, length, size0)) {
            return 0;
        }
        return regionIndexOfAfterFirst(address, length);
    }

    /** {@link #regionIndexOf} over regions 1.., kept apart so that the one-region test inlines. */
    private int regionIndexOfAfterFirst(long address, long length) {
        // regions are few (1..8 typically, at most a vhost-user memory table); a linear scan
        // over primitive arrays beats a binary search at that size
        long[] b = bases;
        long[] z = sizes;
        for (int i = 1; i < b.length; i++) {
            if (holds(address - b[i], length, z[i])) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Whether {@code [offset, offset + length)} lies inside {@code [0, size)}, for a length of at
     * least 1 ({@link MemoryRegion#contains} with the base already subtracted).
     */
    private static boolean holds(long offset, long length, long size) {
        // unsigned: an address below the base gives a huge offset and fails the first test; a
        // length of 0 or less makes length - 1 at least 2^63 - 1 unsigned, and size - offset is
        // at most size <= 2^63 - 1, so the second test fails for it
        return Long.compareUnsigned(offset, size) < 0 && Long.compareUnsigned(length - 1, size - offset) < 0;
    }

    /**
     * @param address a guest-physical address
     * @param length the length, at least 1
     * @return the region that wholly contains the range
     * @throws MemoryAccessException if no region does
     */
    public MemoryRegion regionOf(long address, long length) {
        int index = regionIndexOf(address, length);
        if (index < 0) {
            throw outside(address, length);
        }
        return regions[index];
    }

    /**
     * A bounded slice of guest memory.
     *
     * @param address the first guest-physical address
     * @param length the number of bytes, at least 1
     * @return a slice of exactly {@code length} bytes that cannot reach outside its region
     * @throws MemoryAccessException if the range is not wholly inside one region
     * @throws IllegalStateException if the memory was closed
     */
    public MemorySegment slice(long address, long length) {
        MemoryRegion region = regionOf(address, length);
        return region.segment().asSlice(address - region.guestPhysicalAddress(), length);
    }

    /**
     * The guest-physical address of memory the caller holds as a segment: the reverse of
     * {@link #slice(long, long)}. The driver uses it to name a buffer it allocated in guest
     * memory.
     *
     * @param buffer native memory inside one region of this guest memory
     * @return the guest-physical address of its first byte
     * @throws MemoryAccessException if the segment is not wholly inside one region
     */
    public long guestPhysicalAddressOf(MemorySegment buffer) {
        long address = buffer.address();
        long length = buffer.byteSize();
        long offset = address - start0;
        // a heap segment's address() is an offset into its array, not a native address: never
        // inside a region, whatever its value
        if (buffer.isNative() && Long.compareUnsigned(offset, size0) < 0
            && Long.compareUnsigned(length, size0 - offset) <= 0) {
            return base0 + offset;
        }
        return guestPhysicalAddressAfterFirst(buffer.isNative(), address, length);
    }

    /** {@link #guestPhysicalAddressOf} over regions 1.., kept apart so that the one-region test inlines. */
    private long guestPhysicalAddressAfterFirst(boolean isNative, long address, long length) {
        if (isNative) {
            long[] s = starts;
            long[] z = sizes;
            for (int i = 1; i < s.length; i++) {
                long offset = address - s[i];
                if (Long.compareUnsigned(offset, z[i]) < 0 && Long.compareUnsigned(length, z[i] - offset) <= 0) {
                    return bases[i] + offset;
                }
            }
        }
        throw notInsideOneRegion(address, length);
    }

    private MemoryAccessException notInsideOneRegion(long address, long length) {
        return new MemoryAccessException(address, length, String.format(
            "segment at native address 0x%x, %d bytes, is not wholly inside one region of %s",
            address, length, Arrays.toString(regions)));
    }

    private MemoryAccessException outside(long address, long length) {
        if (length <= 0) {
            return new MemoryAccessException(address, length, String.format(
                "guest-physical range at 0x%x has length %d; a range must have at least 1 byte", address, length));
        }
        for (MemoryRegion r : regions) {
            if (r.contains(address, 1)) {
                return new MemoryAccessException(address, length, String.format(
                    "guest-physical range [0x%x, +0x%x) crosses the end of region %s", address, length, r));
            }
        }
        return new MemoryAccessException(address, length, String.format(
            "guest-physical range [0x%x, +0x%x) is outside every region of %s", address, length, Arrays.toString(regions)));
    }

    /** Frees the memory if this object owns its arena; otherwise does nothing. */
    @Override
    public void close() {
        if (ownedArena != null) {
            ownedArena.close();
        }
    }

    @Override
    public String toString() {
        return "GuestMemory" + Arrays.toString(regions);
    }

    /**
     * Collects regions for a {@link GuestMemory}. Regions given by size are allocated,
     * zeroed and page-aligned, when {@link #build()} runs, so a builder that fails leaves no
     * memory behind.
     */
    public static final class Builder {
        private static final long PAGE = 4096;

        private final List<long[]> toAllocate = new ArrayList<>();
        private final List<RegionKind> toAllocateKinds = new ArrayList<>();
        private final List<MemoryRegion> given = new ArrayList<>();

        private Builder() {
        }

        /**
         * Adds a region to allocate.
         *
         * @param base the guest-physical base
         * @param size the size in bytes, at least 1
         * @param kind secure or shared
         * @return this builder
         */
        public Builder allocate(long base, long size, RegionKind kind) {
            Objects.requireNonNull(kind, "kind");
            if (size <= 0) {
                throw new IllegalArgumentException(String.format(
                    "region at guest-physical 0x%x has size %d; a region must hold at least one byte", base, size));
            }
            if (Long.compareUnsigned(base, -size) > 0) {
                throw new IllegalArgumentException(String.format(
                    "region [0x%x, +0x%x) runs past the end of the 64-bit guest-physical address space", base, size));
            }
            toAllocate.add(new long[] {base, size});
            toAllocateKinds.add(kind);
            return this;
        }

        /**
         * Adds a region over memory the caller already has (a mapped file, memory handed over by
         * another process). The caller keeps that memory alive as long as the guest memory is used.
         *
         * @param base the guest-physical base
         * @param segment the native memory
         * @param kind secure or shared
         * @return this builder
         */
        public Builder region(long base, MemorySegment segment, RegionKind kind) {
            given.add(new MemoryRegion(base, segment, kind));
            return this;
        }

        /**
         * Allocates the regions given by size in a new arena that the returned guest memory owns.
         *
         * @return the guest memory
         * @throws IllegalArgumentException if two regions overlap (the message names both)
         */
        public GuestMemory build() {
            checkOverlaps(plannedRegions());
            Arena arena = Arena.ofShared();
            try {
                return new GuestMemory(allocateIn(arena), arena);
            } catch (RuntimeException | Error e) {
                arena.close();
                throw e;
            }
        }

        /**
         * Allocates the regions given by size in {@code arena}, which the caller keeps and closes.
         *
         * @param arena where the memory comes from
         * @return the guest memory; its {@link GuestMemory#close()} does nothing
         * @throws IllegalArgumentException if two regions overlap (the message names both)
         */
        public GuestMemory build(Arena arena) {
            Objects.requireNonNull(arena, "arena");
            checkOverlaps(plannedRegions());
            return new GuestMemory(allocateIn(arena), null);
        }

        private List<long[]> plannedRegions() {
            List<long[]> all = new ArrayList<>(toAllocate);
            for (MemoryRegion r : given) {
                all.add(new long[] {r.guestPhysicalAddress(), r.size()});
            }
            return all;
        }

        private static void checkOverlaps(List<long[]> planned) {
            if (planned.isEmpty()) {
                throw new IllegalArgumentException("guest memory needs at least one region");
            }
            List<long[]> sorted = new ArrayList<>(planned);
            sorted.sort(Comparator.comparing((long[] r) -> r[0], Long::compareUnsigned));
            for (int i = 1; i < sorted.size(); i++) {
                long[] prev = sorted.get(i - 1);
                long[] cur = sorted.get(i);
                long prevLast = prev[0] + prev[1] - 1;
                if (Long.compareUnsigned(cur[0], prevLast) <= 0) {
                    throw new IllegalArgumentException(String.format(
                        "region [0x%x, +0x%x) overlaps region [0x%x, +0x%x); regions must not overlap",
                        cur[0], cur[1], prev[0], prev[1]));
                }
            }
        }

        private MemoryRegion[] allocateIn(Arena arena) {
            List<MemoryRegion> all = new ArrayList<>(given);
            for (int i = 0; i < toAllocate.size(); i++) {
                long[] r = toAllocate.get(i);
                all.add(new MemoryRegion(r[0], arena.allocate(r[1], PAGE), toAllocateKinds.get(i)));
            }
            all.sort(Comparator.comparing(MemoryRegion::guestPhysicalAddress, Long::compareUnsigned));
            return all.toArray(MemoryRegion[]::new);
        }
    }
}

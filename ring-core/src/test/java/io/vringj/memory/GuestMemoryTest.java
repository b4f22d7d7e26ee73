package io.vringj.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

class GuestMemoryTest {

    @Test
    void rejectsOverlappingRegionsNamingBoth() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GuestMemory.builder()
            .allocate(0x1000, 0x2000, RegionKind.SECURE).allocate(0x2000, 0x1000, RegionKind.SHARED).build());
        assertTrue(e.getMessage().contains("0x2000") && e.getMessage().contains("0x1000"), e.getMessage());
    }

    @Test
    void rejectsZeroSizeAndAddressOverflow() {
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.builder().allocate(0, 0, RegionKind.SHARED));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> GuestMemory.builder().allocate(-0x1000L, 0x2000, RegionKind.SHARED));
        assertTrue(e.getMessage().contains("64-bit"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.builder().build(), "no regions");
    }

    @Test
    void rejectsHeapBackedRegion() {
        assertThrows(IllegalArgumentException.class,
            () -> new MemoryRegion(0, MemorySegment.ofArray(new byte[16]), RegionKind.SHARED));
    }

    @Test
    void sliceOutsideOrAcrossRegionsIsOurOwnError() {
        try (GuestMemory m = GuestMemory.builder().allocate(0x1000, 0x1000, RegionKind.SHARED)
            .allocate(0x2000, 0x1000, RegionKind.SHARED).build()) {
            assertEquals(16, m.slice(0x1ff0, 16).byteSize());
            MemoryAccessException across = assertThrows(MemoryAccessException.class, () -> m.slice(0x1ff0, 32));
            assertTrue(across.getMessage().contains("crosses the end"), across.getMessage());
            MemoryAccessException outside = assertThrows(MemoryAccessException.class, () -> m.slice(0x9000, 1));
            assertTrue(outside.getMessage().contains("outside every region"), outside.getMessage());
            assertThrows(MemoryAccessException.class, () -> m.slice(0x1000, 0));
            assertThrows(MemoryAccessException.class, () -> m.slice(0x1000, -1));
            assertThrows(MemoryAccessException.class, () -> m.slice(-1L, 2));
        }
    }

    @Test
    void guestPhysicalAddressOfIsTheReverseOfSlice() {
        try (GuestMemory m = GuestMemory.builder().allocate(0x10_0000, 0x1000, RegionKind.SECURE)
            .allocate(0x20_0000, 0x1000, RegionKind.SHARED).build()) {
            assertEquals(0x20_0123L, m.guestPhysicalAddressOf(m.slice(0x20_0123, 7)));
            assertEquals(0x10_0000L, m.guestPhysicalAddressOf(m.slice(0x10_0000, 0x1000)));
            try (Arena a = Arena.ofConfined()) {
                assertThrows(MemoryAccessException.class, () -> m.guestPhysicalAddressOf(a.allocate(8)));
            }
        }
    }

    @Test
    void callerArenaOwnsTheMemory() {
        try (Arena arena = Arena.ofConfined()) {
            GuestMemory m = GuestMemory.builder().allocate(0, 4096, RegionKind.SHARED).build(arena);
            m.close();
            m.slice(0, 8).fill((byte) 1);
        }
    }

    @Test
    void sharedOnlyFaultsOnSecureAndTranslatesShared() throws Exception {
        try (GuestMemory m = GuestMemory.builder().allocate(0, 0x1000, RegionKind.SECURE)
            .allocate(0x1000, 0x1000, RegionKind.SHARED).build()) {
            AddressSpace space = AddressSpace.sharedOnly(m);
            TranslationException e = assertThrows(TranslationException.class, () -> space.translate(0x10, 4, Access.READ));
            assertEquals(TranslationException.Kind.FAULT, e.kind());
            assertEquals(0x10, e.busAddress());
            assertEquals(8, space.translate(0x1008, 8, Access.WRITE).byteSize());
            assertEquals(4, AddressSpace.identity(m).translate(0x10, 4, Access.READ).byteSize());
            assertThrows(TranslationException.class, () -> space.translate(0x1ffc, 8, Access.READ), "crosses the end");
        }
    }

    /**
     * A native block of three pages; the middle two are two regions, so the regions are adjacent
     * in native memory (where a buffer can straddle them) and have a page of non-guest memory on
     * either side. Their guest-physical addresses are in the opposite order: region 0 (in address
     * order) is block page 2, region 1 is block page 1.
     */
    private static MemorySegment block(Arena arena) {
        return arena.allocate(0x4000, 0x1000);
    }

    private static GuestMemory adjacentNativeRegions(Arena arena, MemorySegment block) {
        return GuestMemory.builder()
            .region(0x50_0000, block.asSlice(0x1000, 0x1000), RegionKind.SECURE)
            .region(0x10_0000, block.asSlice(0x2000, 0x1000), RegionKind.SHARED)
            .build(arena);
    }

    @Test
    void guestPhysicalAddressOfABufferInTheSecondRegionIsThatRegions() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment block = block(arena);
            GuestMemory m = adjacentNativeRegions(arena, block);
            assertEquals(0x10_0000L, m.region(0).guestPhysicalAddress());
            assertEquals(0x50_0000L + 0x123, m.guestPhysicalAddressOf(block.asSlice(0x1123, 16)));
            assertEquals(0x50_0000L, m.guestPhysicalAddressOf(block.asSlice(0x1000, 1)), "first byte");
            assertEquals(0x50_0000L + 0xfff, m.guestPhysicalAddressOf(block.asSlice(0x1fff, 1)), "last byte");
            assertEquals(0x10_0000L, m.guestPhysicalAddressOf(block.asSlice(0x2000, 1)));
            assertEquals(0x10_0000L + 0xfff, m.guestPhysicalAddressOf(block.asSlice(0x2fff, 1)), "last byte");
            assertEquals(0x10_0000L, m.guestPhysicalAddressOf(block.asSlice(0x2000, 0x1000)), "a whole region");
            assertEquals(0x50_0000L, m.guestPhysicalAddressOf(block.asSlice(0x1000, 0x1000)), "a whole region");
        }
    }

    @Test
    void guestPhysicalAddressOfABufferStraddlingTwoAdjacentRegionsIsRefused() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment block = block(arena);
            GuestMemory m = adjacentNativeRegions(arena, block);
            MemorySegment[] refused = {
                block.asSlice(0x1ff0, 0x20),
                block.asSlice(0x1fff, 2),
                block.asSlice(0x1000, 0x2000), // both regions whole
                block.asSlice(0x2000, 0x1001), // one byte past region 0
                block.asSlice(0x1000, 0x1001), // one byte past region 1, into region 0
                block.asSlice(0x3000, 1), // the byte after the regions
                block.asSlice(0xfff, 1), // the byte before them
                block.asSlice(0xfff, 2),
            };
            for (MemorySegment buffer : refused) {
                MemoryAccessException e = assertThrows(MemoryAccessException.class, () -> m.guestPhysicalAddressOf(buffer),
                    "block offset 0x" + Long.toHexString(buffer.address() - block.address()) + ", " + buffer.byteSize() + " bytes");
                assertTrue(e.getMessage().contains("is not wholly inside one region"), e.getMessage());
                assertEquals(buffer.byteSize(), e.length());
            }
        }
    }

    @Test
    void guestPhysicalAddressOfAHeapSegmentIsRefusedEvenWhereItsOffsetIsARegionsNativeAddress() {
        try (GuestMemory m = GuestMemory.ofShared(0, 0x1000)) {
            MemorySegment heap = MemorySegment.ofArray(new byte[64]);
            MemoryAccessException e = assertThrows(MemoryAccessException.class, () -> m.guestPhysicalAddressOf(heap));
            assertTrue(e.getMessage().contains("is not wholly inside one region"), e.getMessage());
        }
        // a heap segment's address() is its offset in the array; here that offset is a native
        // address a region covers (the region's memory is never touched, so it need not exist)
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment regionMemory = MemorySegment.ofAddress(0x1000).reinterpret(0x1000);
            GuestMemory alone = GuestMemory.builder().region(0x7000, regionMemory, RegionKind.SHARED).build(arena);
            GuestMemory second = GuestMemory.builder().region(0x7000, regionMemory, RegionKind.SHARED)
                .region(0, MemorySegment.ofAddress(0x10_0000).reinterpret(0x1000), RegionKind.SECURE).build(arena);
            MemorySegment heap = MemorySegment.ofArray(new byte[0x2000]).asSlice(0x1000, 64);
            assertEquals(0x1000, heap.address());
            for (GuestMemory m : new GuestMemory[] {alone, second}) {
                assertEquals(0x7000, m.guestPhysicalAddressOf(regionMemory.asSlice(0, 64)), "native, " + m);
                assertThrows(MemoryAccessException.class, () -> m.guestPhysicalAddressOf(heap), m.toString());
            }
        }
    }

    @Test
    void regionIndexOfAnswersForEveryRegionAndRefusesOneBytePastItsEnd() {
        try (GuestMemory m = GuestMemory.builder().allocate(0x1000, 0x1000, RegionKind.SECURE)
            .allocate(0x8000, 0x2000, RegionKind.SHARED).allocate(0xa000, 0x1000, RegionKind.SHARED).build()) {
            assertEquals(0, m.regionIndexOf(0x1000, 0x1000));
            assertEquals(0, m.regionIndexOf(0x1fff, 1), "last byte of region 0");
            assertEquals(-1, m.regionIndexOf(0x1fff, 2), "one byte past region 0");
            assertEquals(-1, m.regionIndexOf(0x2000, 1), "the first byte after region 0 is a hole");
            assertEquals(-1, m.regionIndexOf(0x0fff, 2), "starts one byte before region 0");
            assertEquals(1, m.regionIndexOf(0x8000, 0x2000));
            assertEquals(1, m.regionIndexOf(0x9fff, 1), "last byte of region 1");
            assertEquals(-1, m.regionIndexOf(0x9fff, 2), "across the touching regions 1 and 2");
            assertEquals(-1, m.regionIndexOf(0x8000, 0x2001), "one byte past region 1");
            assertEquals(2, m.regionIndexOf(0xa000, 1));
            assertEquals(2, m.regionIndexOf(0xafff, 1), "last byte of region 2");
            assertEquals(-1, m.regionIndexOf(0xafff, 2), "one byte past the last region");
            assertEquals(-1, m.regionIndexOf(0xb000, 1));
            for (long address : new long[] {0x1000, 0x8000, 0xa000}) {
                for (long length : new long[] {0, -1, Long.MIN_VALUE, Long.MAX_VALUE}) {
                    assertEquals(-1, m.regionIndexOf(address, length), "length " + length + " at 0x" + Long.toHexString(address));
                }
            }
        }
    }

    @Test
    void regionIndexOfAtTheTopOfTheAddressSpace() {
        try (GuestMemory m = GuestMemory.builder().allocate(0, 0x1000, RegionKind.SECURE)
            .allocate(-0x1000L, 0x1000, RegionKind.SHARED).build()) {
            assertEquals(1, m.regionIndexOf(-1L, 1), "the last byte of the 64-bit space");
            assertEquals(1, m.regionIndexOf(-0x1000L, 0x1000));
            assertEquals(-1, m.regionIndexOf(-1L, 2), "wraps to 0");
            assertEquals(-1, m.regionIndexOf(-0x1001L, 2));
            assertEquals(0, m.regionIndexOf(0, 0x1000));
            assertEquals(-1, m.regionIndexOf(0, 0x1001));
        }
    }
}

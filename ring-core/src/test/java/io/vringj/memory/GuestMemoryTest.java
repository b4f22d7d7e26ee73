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
}

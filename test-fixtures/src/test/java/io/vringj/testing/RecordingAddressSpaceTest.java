package io.vringj.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.memory.TranslationException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.junit.jupiter.api.Test;

class RecordingAddressSpaceTest {

    @Test
    void recordsAPieceOutsideTheAllowedMemoryAsAViolation() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            GuestMemory memory = GuestMemory.builder().allocate(0x1000, 0x2000, RegionKind.SHARED).build(arena);
            MemorySegment region = memory.region(0).segment();
            // only the first page is allowed, although the address space reaches both
            RecordingAddressSpace space = new RecordingAddressSpace(AddressSpace.identity(memory),
                List.of(region.asSlice(0, 0x1000)));

            space.translate(0x1000, 0x1000, Access.READ);
            assertEquals(List.of(), space.violations());
            space.translate(0x1ff0, 0x20, Access.WRITE, (b, o, l) -> { });

            assertEquals(2, space.translations());
            assertEquals(2, space.pieces());
            assertEquals(1, space.writablePieces());
            assertEquals(1, space.violations().size());
            assertTrue(space.violations().getFirst().contains("WRITE piece of 32 bytes"), space.violations().toString());
        }
    }

    @Test
    void passesFailedTranslationsThroughAndCountsThem() {
        try (GuestMemory memory = GuestMemory.ofShared(0x1000, 0x1000)) {
            RecordingAddressSpace space = new RecordingAddressSpace(AddressSpace.identity(memory),
                List.of(memory.region(0).segment()));
            assertThrows(TranslationException.class, () -> space.translate(0x9000, 16, Access.READ));
            assertEquals(1, space.translations());
            assertEquals(0, space.pieces());
            space.reset();
            assertEquals(0, space.translations());
        }
    }

    @Test
    void countsEveryRequestThatTouchesTheWatchedRangeEvenWhenItIsRefused() throws Exception {
        try (GuestMemory memory = GuestMemory.builder()
                .allocate(0, 0x1000, RegionKind.SECURE)
                .allocate(0x1000, 0x1000, RegionKind.SHARED)
                .build()) {
            RecordingAddressSpace space = RecordingAddressSpace.sharedOnly(AddressSpace.sharedOnly(memory),
                memory.region(0), memory.region(1));
            assertThrows(TranslationException.class, () -> space.translate(0xff8, 16, Access.READ));
            assertEquals(1, space.watchedRequests(), "a request straddling the secure region's end is seen");
            assertEquals(0, space.bytesTranslated(), "a refused request translates nothing");
            space.translate(0x1000, 64, Access.WRITE, (b, o, l) -> { });
            assertEquals(1, space.watchedRequests(), "a request wholly in shared memory is not");
            assertEquals(64, space.bytesTranslated());
            assertEquals(List.of(), space.violations());
            assertThrows(IllegalArgumentException.class, () -> space.watch(0, 0));
        }
    }
}

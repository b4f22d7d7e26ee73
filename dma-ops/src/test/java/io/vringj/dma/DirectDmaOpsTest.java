package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link DirectDmaOps} over a guest memory of two regions that are adjacent in native memory
 * (block pages 1 and 2 of four; pages 0 and 3 are not guest memory), at guest-physical
 * addresses in the opposite order, so a buffer can straddle them and region 0 (in address order)
 * is not the first in native memory.
 */
class DirectDmaOpsTest {
    private static final long LOW = 0x10_0000L; // region 0: block page 2
    private static final long HIGH = 0x50_0000L; // region 1: block page 1
    private static final long PAGE = 0x1000;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment block = arena.allocate(4 * PAGE, PAGE);
    private final GuestMemory memory = GuestMemory.builder()
        .region(HIGH, block.asSlice(PAGE, PAGE), RegionKind.SECURE)
        .region(LOW, block.asSlice(2 * PAGE, PAGE), RegionKind.SHARED)
        .build(arena);
    private final DirectDmaOps ops = new DirectDmaOps(memory);

    @AfterEach
    void close() {
        arena.close();
    }

    @Test
    void mapGivesTheGuestPhysicalAddressInEitherRegion() throws Exception {
        assertEquals(LOW + 0x40, ops.map(block.asSlice(2 * PAGE + 0x40, 64), DmaDirection.TO_DEVICE));
        assertEquals(HIGH + 0x40, ops.map(block.asSlice(PAGE + 0x40, 64), DmaDirection.FROM_DEVICE));
        assertEquals(HIGH + PAGE - 1, ops.map(block.asSlice(2 * PAGE - 1, 1), DmaDirection.BIDIRECTIONAL), "last byte");
        assertEquals(LOW + PAGE - 1, ops.map(block.asSlice(3 * PAGE - 1, 1), DmaDirection.TO_DEVICE), "last byte");
        assertEquals(LOW, ops.map(block.asSlice(2 * PAGE, PAGE), DmaDirection.TO_DEVICE), "a whole region");
    }

    @Test
    void mapRefusesABufferNotWhollyInsideOneRegionAsNotGuestMemory() {
        MemorySegment[] refused = {
            block.asSlice(2 * PAGE - 8, 16), // straddles the two regions
            block.asSlice(2 * PAGE - 1, 2),
            block.asSlice(PAGE, 2 * PAGE), // both regions whole
            block.asSlice(2 * PAGE, PAGE + 1), // one byte past region 0
            block.asSlice(3 * PAGE, 1), // after the regions
            block.asSlice(PAGE - 1, 2), // starts before them
            MemorySegment.ofArray(new byte[64]), // heap
        };
        for (MemorySegment buffer : refused) {
            DmaMappingException e = assertThrows(DmaMappingException.class, () -> ops.map(buffer, DmaDirection.TO_DEVICE),
                buffer.toString());
            assertEquals(DmaMappingException.Reason.NOT_GUEST_MEMORY, e.reason());
            assertTrue(e.getMessage().startsWith("NOT_GUEST_MEMORY: segment at native address 0x"
                + Long.toHexString(buffer.address()) + ", " + buffer.byteSize() + " bytes, is not wholly inside one region"),
                e.getMessage());
        }
    }

    @Test
    void mapRefusesAnEmptyBufferAndANullDirection() {
        MemorySegment empty = block.asSlice(2 * PAGE, 0);
        DmaMappingException e = assertThrows(DmaMappingException.class, () -> ops.map(empty, DmaDirection.TO_DEVICE));
        assertEquals(DmaMappingException.Reason.EMPTY, e.reason());
        assertEquals("EMPTY: buffer at native address 0x" + Long.toHexString(empty.address()) + " has no bytes",
            e.getMessage());
        NullPointerException npe = assertThrows(NullPointerException.class, () -> ops.map(block.asSlice(2 * PAGE, 8), null));
        assertEquals("direction", npe.getMessage());
    }

    @Test
    void unmapAndSyncAcceptEveryRangeInsideOneRegionUpToItsLastByte() {
        for (long base : new long[] {LOW, HIGH}) {
            ops.unmap(base, PAGE, DmaDirection.TO_DEVICE);
            ops.unmap(base + PAGE - 1, 1, DmaDirection.TO_DEVICE);
            ops.syncForCpu(base + PAGE - 64, 64, DmaDirection.FROM_DEVICE);
            ops.syncForDevice(base, 1, DmaDirection.TO_DEVICE);
        }
    }

    @Test
    void unmapAndSyncRefuseARangeOneBytePastARegionNamingTheOperation() {
        long[][] refused = {
            {LOW + PAGE - 64, 65}, // one byte past region 0
            {HIGH + PAGE - 64, 65}, // one byte past region 1
            {LOW + PAGE, 1}, // the first byte after region 0
            {HIGH - 1, 2}, // starts one byte before region 1
            {LOW, 0}, // empty
            {LOW, -1},
            {HIGH, Long.MIN_VALUE},
        };
        for (long[] r : refused) {
            String range = String.format("[0x%x, +%d): not a range of guest memory ", r[0], r[1]);
            IllegalArgumentException unmap = assertThrows(IllegalArgumentException.class,
                () -> ops.unmap(r[0], r[1], DmaDirection.TO_DEVICE), range);
            assertEquals("unmap of " + range + memory.regions(), unmap.getMessage());
            IllegalArgumentException cpu = assertThrows(IllegalArgumentException.class,
                () -> ops.syncForCpu(r[0], r[1], DmaDirection.FROM_DEVICE), range);
            assertEquals("syncForCpu of " + range + memory.regions(), cpu.getMessage());
            IllegalArgumentException device = assertThrows(IllegalArgumentException.class,
                () -> ops.syncForDevice(r[0], r[1], DmaDirection.TO_DEVICE), range);
            assertEquals("syncForDevice of " + range + memory.regions(), device.getMessage());
        }
    }
}

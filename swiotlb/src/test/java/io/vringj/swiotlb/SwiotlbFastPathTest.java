package io.vringj.swiotlb;

import static io.vringj.swiotlb.SwiotlbPool.SEGMENT_SIZE;
import static io.vringj.swiotlb.SwiotlbPool.SEGMENT_SLOTS;
import static io.vringj.swiotlb.SwiotlbPool.SLOT_SIZE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaMappingException;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The small-map fast path: a released run of up to {@link SlotTable#HINT_MAX_SLOTS} slots waits
 * on its area's hint list and is taken, oldest first but never the one released last, by a map
 * of its size whose alignment it meets; it is never a live mapping, never crosses a segment, and
 * is merged back whenever a search would otherwise fail.
 */
class SwiotlbFastPathTest {
    static final long SHARED_BASE = 0x1_0000_0000L;

    private final GuestMemory memory = GuestMemory.builder()
        .allocate(0, 4L << 20, RegionKind.SECURE)
        .allocate(SHARED_BASE, 4 * SEGMENT_SIZE, RegionKind.SHARED)
        .build();

    @AfterEach
    void close() {
        memory.close();
    }

    private SwiotlbPool pool(int segments, int areas) {
        return SwiotlbPool.builder(memory, SHARED_BASE, segments * SEGMENT_SIZE).areas(areas).build();
    }

    private MemorySegment secure(long gpa, long size) {
        return memory.slice(gpa, size);
    }

    @Test
    void aReleasedSmallRunIsTakenAgainByTheNextMapOfItsSize() throws Exception {
        SwiotlbPool pool = pool(1, 1);
        MemorySegment buf = secure(0, 4096);
        long first = pool.map(buf, DmaDirection.TO_DEVICE);
        pool.unmap(first, 4096, DmaDirection.TO_DEVICE);
        assertEquals(0, pool.slotsInUse(), "a hinted run is not in use");
        long second = pool.map(buf, DmaDirection.TO_DEVICE);
        assertNotEquals(first, second, "the run released last is not handed out next");
        pool.unmap(second, 4096, DmaDirection.TO_DEVICE);
        for (int i = 0; i < 100; i++) {
            buf.set(ValueLayout.JAVA_INT, 0, i);
            long bus = pool.map(buf, DmaDirection.TO_DEVICE);
            assertEquals((i & 1) == 0 ? first : second, bus, "the two hinted runs take turns; no search moves on");
            assertEquals(i, memory.slice(bus, 4).get(ValueLayout.JAVA_INT, 0), "the map still copies");
            assertEquals(2, pool.slotsInUse());
            pool.unmap(bus, 4096, DmaDirection.TO_DEVICE);
        }
        assertEquals(2, pool.highWaterMark());
    }

    @Test
    void aHintedRunIsNoLiveMapping() throws Exception {
        SwiotlbPool pool = pool(1, 1);
        long bus = pool.map(secure(0, 100), DmaDirection.FROM_DEVICE);
        pool.unmap(bus, 100, DmaDirection.FROM_DEVICE);
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class,
            () -> pool.unmap(bus, 100, DmaDirection.FROM_DEVICE));
        assertTrue(twice.getMessage().contains("unmapped already"), twice.getMessage());
        IllegalArgumentException sync = assertThrows(IllegalArgumentException.class,
            () -> pool.syncForCpu(bus, 10, DmaDirection.FROM_DEVICE));
        assertTrue(sync.getMessage().contains("unmapped already"), sync.getMessage());
        assertEquals(0, pool.liveMappings());
    }

    @Test
    void aHintThatBreaksTheAllocationAlignmentIsPassedOver() throws Exception {
        SwiotlbPool pool = pool(1, 1);
        long a = pool.map(secure(0, 100), DmaDirection.TO_DEVICE);
        long b = pool.map(secure(0, 100), DmaDirection.TO_DEVICE);
        long c = pool.map(secure(0, 100), DmaDirection.TO_DEVICE);
        assertEquals(SHARED_BASE + SLOT_SIZE, b);
        pool.unmap(b, 100, DmaDirection.TO_DEVICE);
        pool.unmap(c, 100, DmaDirection.TO_DEVICE);
        // hints: slot 1 (oldest), slot 2 (released last). Slot 1 is not 4 KiB aligned: a map that
        // asks for that must not get it, and slot 2 is not offered yet
        long aligned = pool.map(secure(0, 100), 0, DmaDirection.TO_DEVICE, 0, 0xFFF);
        assertEquals(0, aligned & 0xFFF);
        assertNotEquals(b, aligned);
        assertNotEquals(c, aligned);
        assertEquals(b, pool.map(secure(0, 100), DmaDirection.TO_DEVICE), "an unaligned map takes the oldest hint");
        pool.unmap(a, 100, DmaDirection.TO_DEVICE);
    }

    @Test
    void aHintThatBreaksTheMinAlignMaskIsPassedOver() throws Exception {
        SwiotlbPool pool = pool(1, 1);
        long a = pool.map(secure(0, 100), DmaDirection.TO_DEVICE);
        long b = pool.map(secure(0, 100), DmaDirection.TO_DEVICE);
        long c = pool.map(secure(0, 100), DmaDirection.TO_DEVICE);
        pool.unmap(b, 100, DmaDirection.TO_DEVICE);
        pool.unmap(c, 100, DmaDirection.TO_DEVICE);
        // min_align_mask 0xFFF keeps bit 11 of the original: the offered hint (slot 1) has bit 11 set
        long even = pool.map(secure(0x10, 100), 0x10, DmaDirection.TO_DEVICE, 0xFFF, 0);
        assertEquals(0x10, even & 0xFFF, "bit 11 clear and the low bits kept, so not the hint");
        assertNotEquals(b + 0x10, even);
        long odd = pool.map(secure(0x810, 100), 0x810, DmaDirection.TO_DEVICE, 0xFFF, 0);
        assertEquals(b + 0x10, odd, "bit 11 set: the hint fits, at the kept offset");
        pool.unmap(odd, 100, DmaDirection.TO_DEVICE);
        pool.unmap(even, 100, DmaDirection.TO_DEVICE);
        pool.unmap(a, 100, DmaDirection.TO_DEVICE);
        pool.unmap(pool.map(secure(0, 100), DmaDirection.TO_DEVICE), 100, DmaDirection.TO_DEVICE);
        assertEquals(0, pool.slotsInUse());
    }

    @Test
    void hintsAreMergedBackWhenOnlyTheyHoldTheRoomForAWholeSegment() throws Exception {
        SwiotlbPool pool = pool(1, 1);
        long[] bus = new long[SEGMENT_SLOTS];
        for (int i = 0; i < SEGMENT_SLOTS; i++) {
            bus[i] = pool.map(secure(0, 100), DmaDirection.TO_DEVICE);
        }
        assertThrows(DmaMappingException.class, () -> pool.map(secure(0, 100), DmaDirection.TO_DEVICE));
        for (long b : bus) {
            pool.unmap(b, 100, DmaDirection.TO_DEVICE);
        }
        // some runs are hinted, the rest merged: a whole-segment map needs every slot of the segment
        long whole = pool.map(secure(0, SEGMENT_SIZE), DmaDirection.TO_DEVICE);
        assertEquals(SHARED_BASE, whole);
        assertEquals(SEGMENT_SLOTS, pool.slotsInUse());
        pool.unmap(whole, SEGMENT_SIZE, DmaDirection.TO_DEVICE);
        assertEquals(0, pool.slotsInUse());
    }

    @Test
    void aHintAtTheLastSlotOfTheAreaIsReusedAndADrainedHintNeverJoinsAcrossUsedSlots() throws Exception {
        SwiotlbPool pool = pool(1, 1);
        long[] bus = new long[SEGMENT_SLOTS];
        for (int i = 0; i < SEGMENT_SLOTS; i++) {
            bus[i] = pool.map(secure(0, 100), DmaDirection.TO_DEVICE);
        }
        long last = bus[SEGMENT_SLOTS - 1];
        assertEquals(SHARED_BASE + (SEGMENT_SLOTS - 1) * (long) SLOT_SIZE, last, "the last slot of the area");
        pool.unmap(last, 100, DmaDirection.TO_DEVICE);
        pool.unmap(bus[5], 100, DmaDirection.TO_DEVICE);
        assertEquals(last, pool.map(secure(0, 100), DmaDirection.TO_DEVICE), "the hint at the area's last slot");
        bus[5] = pool.map(secure(0, 100), DmaDirection.TO_DEVICE);
        assertEquals(SHARED_BASE + 5L * SLOT_SIZE, bus[5], "the full pool's search finds the one hint left");
        pool.unmap(bus[0], 100, DmaDirection.TO_DEVICE);
        pool.unmap(bus[2], 100, DmaDirection.TO_DEVICE);
        // slots 0 and 2 are free (hinted) but not next to each other: two slots fit nowhere
        DmaMappingException e = assertThrows(DmaMappingException.class,
            () -> pool.map(secure(0, 3000), DmaDirection.TO_DEVICE));
        assertEquals(DmaMappingException.Reason.NO_SPACE, e.reason());
        assertEquals(SEGMENT_SLOTS - 2, pool.slotsInUse());
        pool.unmap(bus[1], 100, DmaDirection.TO_DEVICE);
        // slot 1 freed too: slots 0..2 form one run of three once the hints are merged
        long three = pool.map(secure(0, 3 * SLOT_SIZE), DmaDirection.TO_DEVICE);
        assertEquals(SHARED_BASE, three);
    }

    @Test
    void hintsStayWithinTheirSegmentAndArea() throws Exception {
        SwiotlbPool pool = pool(2, 2);
        // fill both areas (one segment each) with 4 KiB maps, release everything, and refill:
        // every run found again lies in one segment, and the count of slots stays exact
        long[] bus = new long[SEGMENT_SLOTS];
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < SEGMENT_SLOTS; i++) {
                bus[i] = pool.map(secure(0, 4096), DmaDirection.BIDIRECTIONAL);
                long slot = (bus[i] - SHARED_BASE) / SLOT_SIZE;
                assertEquals(slot / SEGMENT_SLOTS, (slot + 1) / SEGMENT_SLOTS, "a 2-slot run inside one segment");
            }
            assertEquals(2L * SEGMENT_SLOTS, pool.slotsInUse());
            assertThrows(DmaMappingException.class, () -> pool.map(secure(0, 100), DmaDirection.TO_DEVICE));
            for (long b : bus) {
                pool.unmap(b, 4096, DmaDirection.BIDIRECTIONAL);
            }
            assertEquals(0, pool.slotsInUse());
        }
        long whole = pool.map(secure(0, SEGMENT_SIZE), DmaDirection.TO_DEVICE);
        long other = pool.map(secure(0, SEGMENT_SIZE), DmaDirection.TO_DEVICE);
        assertEquals(SEGMENT_SIZE, Math.abs(whole - other), "both segments whole again");
    }
}

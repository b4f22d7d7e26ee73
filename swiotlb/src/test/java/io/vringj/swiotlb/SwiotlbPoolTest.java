package io.vringj.swiotlb;

import static io.vringj.swiotlb.SwiotlbPool.SEGMENT_SIZE;
import static io.vringj.swiotlb.SwiotlbPool.SLOT_SIZE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaMappingException;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class SwiotlbPoolTest {
    static final long SECURE_BASE = 0;
    static final long SECURE_SIZE = 4L << 20;
    static final long SHARED_BASE = 0x1_0000_0000L;
    static final long SHARED_SIZE = 2L << 20;

    private final GuestMemory memory = GuestMemory.builder()
        .allocate(SECURE_BASE, SECURE_SIZE, RegionKind.SECURE)
        .allocate(SHARED_BASE, SHARED_SIZE, RegionKind.SHARED)
        .build();
    private long nextSecure = SECURE_BASE;

    @AfterEach
    void close() {
        memory.close();
    }

    /** A fresh buffer in SECURE memory, page-aligned plus {@code misalign} bytes. */
    private MemorySegment secureBuffer(long size, int misalign) {
        long gpa = nextSecure + misalign;
        nextSecure = (gpa + size + 4095) & ~4095L;
        return memory.slice(gpa, size);
    }

    private MemorySegment secureBuffer(long size) {
        return secureBuffer(size, 0);
    }

    private SwiotlbPool pool(long size, int areas) {
        return SwiotlbPool.builder(memory, SHARED_BASE, size).areas(areas).build();
    }

    private MemorySegment bounce(long bus, long length) {
        return memory.slice(bus, length);
    }

    private static void fill(MemorySegment s, int seed) {
        for (long i = 0; i < s.byteSize(); i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) (seed + i * 31));
        }
    }

    private static byte[] bytes(MemorySegment s) {
        return s.toArray(ValueLayout.JAVA_BYTE);
    }

    // --- the 2022 info leak -------------------------------------------------------------

    @Test
    void fromDeviceMapOverStaleSlotGivesCallerItsOwnBytesWhereTheDeviceDidNotWrite() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        // someone else's I/O leaves secret bytes in every slot of the pool
        MemorySegment secret = secureBuffer(SEGMENT_SIZE);
        secret.fill((byte) 0x5A);
        long secretBus = pool.map(secret, DmaDirection.TO_DEVICE);
        pool.unmap(secretBus, SEGMENT_SIZE, DmaDirection.TO_DEVICE);
        MemorySegment wholePool = bounce(SHARED_BASE, SEGMENT_SIZE);
        assertEquals(-1, wholePool.asByteBuffer().mismatch(secret.asByteBuffer()), "the pool holds stale data");

        // the caller maps a buffer for the device to fill
        MemorySegment buffer = secureBuffer(8192);
        fill(buffer, 7);
        byte[] own = bytes(buffer);
        long bus = pool.map(buffer, DmaDirection.FROM_DEVICE);

        // the device writes only the first half
        bounce(bus, 4096).fill((byte) 0x11);
        pool.unmap(bus, 8192, DmaDirection.FROM_DEVICE);

        byte[] after = bytes(buffer);
        for (int i = 0; i < 4096; i++) {
            assertEquals(0x11, after[i], "device-written byte " + i);
        }
        for (int i = 4096; i < 8192; i++) {
            assertEquals(own[i], after[i], "byte " + i + " must be the caller's own, never the stale 0x5A");
        }
    }

    // --- the copy table -----------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(DmaDirection.class)
    void copiesExactlyWhenTheTableSays(DmaDirection dir) throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        int n = 3000;
        MemorySegment orig = secureBuffer(n);
        fill(orig, 1);
        boolean toDev = dir != DmaDirection.FROM_DEVICE;
        boolean fromDev = dir != DmaDirection.TO_DEVICE;

        // map: orig → bounce in every direction
        long bus = pool.map(orig, dir);
        assertCounters(pool, n, 0);
        assertArrayEquals(bytes(orig), bytes(bounce(bus, n)));

        // syncForDevice: orig → bounce for TO_DEVICE and BIDIRECTIONAL only
        fill(orig, 2);
        pool.syncForDevice(bus, n, dir);
        assertCounters(pool, toDev ? 2L * n : n, 0);
        assertEquals(toDev, java.util.Arrays.equals(bytes(orig), bytes(bounce(bus, n))));

        // syncForCpu: bounce → orig for FROM_DEVICE and BIDIRECTIONAL only
        fill(bounce(bus, n), 3);
        pool.syncForCpu(bus, n, dir);
        assertCounters(pool, toDev ? 2L * n : n, fromDev ? n : 0);
        assertEquals(fromDev, java.util.Arrays.equals(bytes(orig), bytes(bounce(bus, n))));

        // unmap: bounce → orig for FROM_DEVICE and BIDIRECTIONAL only
        fill(bounce(bus, n), 4);
        byte[] device = bytes(bounce(bus, n));
        byte[] before = bytes(orig);
        pool.unmap(bus, n, dir);
        assertCounters(pool, toDev ? 2L * n : n, fromDev ? 2L * n : 0);
        assertArrayEquals(fromDev ? device : before, bytes(orig));
    }

    private static void assertCounters(SwiotlbPool pool, long toDevice, long fromDevice) {
        SwiotlbStatistics s = pool.statistics();
        assertEquals(toDevice, s.bytesToDevice(), "bytes bounced to the device");
        assertEquals(fromDevice, s.bytesFromDevice(), "bytes bounced from the device");
    }

    @Test
    void partialSyncCopiesOnlyItsRange() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        MemorySegment orig = secureBuffer(5000);
        long bus = pool.map(orig, DmaDirection.BIDIRECTIONAL);
        bounce(bus, 5000).fill((byte) 9);
        pool.syncForCpu(bus + 1000, 100, DmaDirection.BIDIRECTIONAL);
        assertEquals(100, pool.statistics().bytesFromDevice());
        assertEquals(0, orig.get(ValueLayout.JAVA_BYTE, 999));
        assertEquals(9, orig.get(ValueLayout.JAVA_BYTE, 1000));
        assertEquals(9, orig.get(ValueLayout.JAVA_BYTE, 1099));
        assertEquals(0, orig.get(ValueLayout.JAVA_BYTE, 1100));
        pool.unmap(bus, 5000, DmaDirection.BIDIRECTIONAL);
    }

    @Test
    void refusesSyncOutsideTheMapping() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        MemorySegment orig = secureBuffer(100, 0x123);
        long bus = pool.map(orig, orig.address(), DmaDirection.BIDIRECTIONAL, 0xFFF, 0);
        assertEquals(0x123, bus & 0x7FF, "the mapping starts at the kept offset into its slot");
        IllegalArgumentException past = assertThrows(IllegalArgumentException.class,
            () -> pool.syncForCpu(bus + 50, 51, DmaDirection.BIDIRECTIONAL));
        assertTrue(past.getMessage().contains("outside a mapping are refused"), past.getMessage());
        assertTrue(past.getMessage().contains(String.format("0x%x", bus)), past.getMessage());
        // the bytes of the slot before the mapping (the alignment offset) are not the mapping's
        assertThrows(IllegalArgumentException.class, () -> pool.syncForDevice(bus - 1, 1, DmaDirection.BIDIRECTIONAL));
        // a free slot of the pool
        assertThrows(IllegalArgumentException.class,
            () -> pool.syncForCpu(SHARED_BASE + 10 * SLOT_SIZE, 1, DmaDirection.BIDIRECTIONAL));
        // outside the pool altogether
        assertThrows(IllegalArgumentException.class, () -> pool.syncForCpu(SECURE_BASE, 1, DmaDirection.BIDIRECTIONAL));
        // with a different direction than mapped
        assertThrows(IllegalArgumentException.class, () -> pool.syncForCpu(bus, 1, DmaDirection.FROM_DEVICE));
        assertEquals(0, pool.statistics().bytesFromDevice(), "nothing was copied by a refused sync");
        pool.unmap(bus, 100, DmaDirection.BIDIRECTIONAL);
        assertThrows(IllegalArgumentException.class, () -> pool.syncForCpu(bus, 1, DmaDirection.BIDIRECTIONAL));
    }

    // --- unmap errors -------------------------------------------------------------------

    @Test
    void unmapOfAnUnknownAddressNamesIt() {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        long unknown = SHARED_BASE + 4 * SLOT_SIZE;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> pool.unmap(unknown, 64, DmaDirection.TO_DEVICE));
        assertTrue(e.getMessage().contains("0x" + Long.toHexString(unknown)), e.getMessage());
        IllegalArgumentException outside = assertThrows(IllegalArgumentException.class,
            () -> pool.unmap(0x4242_0000L, 64, DmaDirection.TO_DEVICE));
        assertTrue(outside.getMessage().contains("0x42420000"), outside.getMessage());
    }

    @Test
    void unmapTwiceIsAnErrorAndChangesNothing() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        MemorySegment a = secureBuffer(64);
        long bus = pool.map(a, DmaDirection.FROM_DEVICE);
        pool.unmap(bus, 64, DmaDirection.FROM_DEVICE);
        // another mapping takes other slots; the stale address must not reach it
        MemorySegment b = secureBuffer(64);
        long other = pool.map(b, DmaDirection.FROM_DEVICE);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> pool.unmap(bus, 64, DmaDirection.FROM_DEVICE));
        assertTrue(e.getMessage().contains("0x" + Long.toHexString(bus)), e.getMessage());
        assertTrue(e.getMessage().contains("unmapped already"), e.getMessage());
        assertEquals(1, pool.liveMappings());
        assertEquals(1, pool.slotsInUse());
        pool.unmap(other, 64, DmaDirection.FROM_DEVICE);
        assertEquals(0, pool.slotsInUse());
    }

    @Test
    void unmapWithWrongLengthDirectionOrInnerAddressIsRefused() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        long bus = pool.map(secureBuffer(5000), DmaDirection.TO_DEVICE);
        assertThrows(IllegalArgumentException.class, () -> pool.unmap(bus, 4999, DmaDirection.TO_DEVICE));
        assertThrows(IllegalArgumentException.class, () -> pool.unmap(bus, 5000, DmaDirection.FROM_DEVICE));
        IllegalArgumentException inner = assertThrows(IllegalArgumentException.class,
            () -> pool.unmap(bus + SLOT_SIZE, 5000 - SLOT_SIZE, DmaDirection.TO_DEVICE));
        assertTrue(inner.getMessage().contains("not the start"), inner.getMessage());
        assertEquals(1, pool.liveMappings(), "refused unmaps leave the mapping live");
        pool.unmap(bus, 5000, DmaDirection.TO_DEVICE);
        assertEquals(0, pool.liveMappings());
    }

    // --- sizes, segments, alignment -------------------------------------------------------

    @Test
    void aMappingReachingIntoTheSegmentsSecondBitmapWordIsFoundFromAnyOfItsSlots() throws Exception {
        // slots 0..63 and 64..127 of a segment are two words of the bitmaps: a mapping from slot 40
        // to slot 99 is found, from a slot in either word, by its head in the first
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        long before = pool.map(secureBuffer(40 * SLOT_SIZE), DmaDirection.TO_DEVICE);
        MemorySegment buf = secureBuffer(60 * SLOT_SIZE);
        buf.fill((byte) 7);
        long bus = pool.map(buf, DmaDirection.BIDIRECTIONAL);
        assertEquals(SHARED_BASE + 40L * SLOT_SIZE, bus, "next fit: right after the first mapping");
        bounce(bus + 50L * SLOT_SIZE, 10).fill((byte) 9);
        pool.syncForCpu(bus + 50L * SLOT_SIZE, 10, DmaDirection.BIDIRECTIONAL);
        assertEquals(9, buf.get(ValueLayout.JAVA_BYTE, 50L * SLOT_SIZE + 9), "slot 90, second word");
        assertEquals(7, buf.get(ValueLayout.JAVA_BYTE, 50L * SLOT_SIZE + 10));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> pool.unmap(bus + 30L * SLOT_SIZE, 30L * SLOT_SIZE, DmaDirection.BIDIRECTIONAL));
        assertTrue(e.getMessage().contains("not the start") && e.getMessage().contains(Long.toHexString(bus)),
            e.getMessage());
        IllegalArgumentException past = assertThrows(IllegalArgumentException.class,
            () -> pool.syncForCpu(bus + 59L * SLOT_SIZE, SLOT_SIZE + 1, DmaDirection.BIDIRECTIONAL));
        assertTrue(past.getMessage().contains("not inside"), past.getMessage());
        pool.unmap(bus, 60L * SLOT_SIZE, DmaDirection.BIDIRECTIONAL);
        IllegalArgumentException free = assertThrows(IllegalArgumentException.class,
            () -> pool.syncForCpu(bus + 50L * SLOT_SIZE, 10, DmaDirection.BIDIRECTIONAL));
        assertTrue(free.getMessage().contains("no live mapping"), free.getMessage());
        // the freed run joins the free slots after it: 88 slots from slot 40 to the segment's end
        pool.unmap(before, 40 * SLOT_SIZE, DmaDirection.TO_DEVICE);
        assertEquals(SHARED_BASE, pool.map(secureBuffer(SEGMENT_SIZE), DmaDirection.TO_DEVICE),
            "every slot free again: one mapping takes the whole segment");
    }

    @Test
    void fullPoolErrorNamesSizeAndSlotsAndMapsNothing() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        long big = pool.map(secureBuffer(200 * 1024), DmaDirection.TO_DEVICE);
        long used = pool.slotsInUse();
        DmaMappingException e = assertThrows(DmaMappingException.class,
            () -> pool.map(secureBuffer(100 * 1024), DmaDirection.TO_DEVICE));
        assertEquals(DmaMappingException.Reason.NO_SPACE, e.reason());
        assertTrue(e.getMessage().contains("102400 bytes"), e.getMessage());
        assertTrue(e.getMessage().contains(used + " of 128 slots"), e.getMessage());
        assertEquals(used, pool.slotsInUse());
        assertEquals(1, pool.liveMappings());
        assertEquals(1, pool.statistics().failedMaps());
        pool.unmap(big, 200 * 1024, DmaDirection.TO_DEVICE);
    }

    @Test
    void aMappingNeverCrossesASegment() throws Exception {
        SwiotlbPool pool = pool(2 * SEGMENT_SIZE, 1);
        long first = pool.map(secureBuffer(100 * SLOT_SIZE), DmaDirection.TO_DEVICE);
        long second = pool.map(secureBuffer(100 * SLOT_SIZE), DmaDirection.TO_DEVICE);
        assertEquals(SHARED_BASE, first);
        assertEquals(SHARED_BASE + SEGMENT_SIZE, second, "28 free slots are left in segment 0; the run starts in segment 1");
        // 56 slots are free, but as two runs of 28 at the ends of the segments: 29 never fit
        assertEquals(56, pool.slotsTotal() - pool.slotsInUse());
        assertEquals(DmaMappingException.Reason.NO_SPACE, assertThrows(DmaMappingException.class,
            () -> pool.map(secureBuffer(29 * SLOT_SIZE), DmaDirection.TO_DEVICE)).reason());
        long tail0 = pool.map(secureBuffer(28 * SLOT_SIZE), DmaDirection.TO_DEVICE);
        long tail1 = pool.map(secureBuffer(28 * SLOT_SIZE), DmaDirection.TO_DEVICE);
        assertEquals(java.util.Set.of(SHARED_BASE + 100 * SLOT_SIZE, SHARED_BASE + 228 * SLOT_SIZE),
            java.util.Set.of(tail0, tail1));
    }

    @Test
    void largestMappingIsOneSegment() throws Exception {
        SwiotlbPool pool = pool(2 * SEGMENT_SIZE, 1);
        long bus = pool.map(secureBuffer(SEGMENT_SIZE), DmaDirection.TO_DEVICE);
        pool.unmap(bus, SEGMENT_SIZE, DmaDirection.TO_DEVICE);
        DmaMappingException e = assertThrows(DmaMappingException.class,
            () -> pool.map(secureBuffer(SEGMENT_SIZE + 1), DmaDirection.TO_DEVICE));
        assertEquals(DmaMappingException.Reason.TOO_LARGE, e.reason());
        assertTrue(e.getMessage().contains("262145 bytes"), e.getMessage());
        // the alignment offset counts too
        MemorySegment misaligned = secureBuffer(SEGMENT_SIZE, 16);
        assertEquals(DmaMappingException.Reason.TOO_LARGE, assertThrows(DmaMappingException.class,
            () -> pool.map(misaligned, misaligned.address(), DmaDirection.TO_DEVICE, 0xFFF, 0)).reason());
        assertEquals(DmaMappingException.Reason.EMPTY, assertThrows(DmaMappingException.class,
            () -> pool.map(secureBuffer(16).asSlice(0, 0), DmaDirection.TO_DEVICE)).reason());
        assertEquals(0, pool.slotsInUse());
    }

    @Test
    void bounceAddressKeepsOrigBitsUnderMinAlignMask() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        pool.map(secureBuffer(100), DmaDirection.TO_DEVICE); // the cursor is now at slot 1
        for (long orig : new long[] {0x0123, 0x0923, 0x07FF, 0x0800}) {
            MemorySegment buf = secureBuffer(300, (int) orig);
            long bus = pool.map(buf, orig, DmaDirection.TO_DEVICE, 0xFFF, 0);
            assertEquals(orig & 0xFFF, bus & 0xFFF, "bus 0x" + Long.toHexString(bus) + " for orig 0x" + Long.toHexString(orig));
        }
        // without a min_align_mask nothing of orig is kept
        long plain = pool.map(secureBuffer(300, 0x123), 0x123, DmaDirection.TO_DEVICE, 0, 0);
        assertEquals(0, plain & (SLOT_SIZE - 1));
    }

    @Test
    void allocAlignMaskAndPageAlignmentOfLargeMappings() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        long a = pool.map(secureBuffer(100), DmaDirection.TO_DEVICE);
        long smallAfter = pool.map(secureBuffer(100), DmaDirection.TO_DEVICE);
        assertEquals(a + SLOT_SIZE, smallAfter, "a small mapping needs only slot alignment");
        long page = pool.map(secureBuffer(4096), DmaDirection.TO_DEVICE);
        assertEquals(0, page & 0xFFF, "a mapping of a page or more is page-aligned");
        long aligned = pool.map(secureBuffer(100), 0, DmaDirection.TO_DEVICE, 0, 0x3FFF);
        assertEquals(0, aligned & 0x3FFF);
        assertThrows(IllegalArgumentException.class, () -> pool.map(secureBuffer(10), 0, DmaDirection.TO_DEVICE, 0, 0x1000));
    }

    @Test
    void withBothMasksEveryMinAlignBitIsKeptByPaddingSlots() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        // orig has bit 11 set; a page-aligned allocation alone would lose it
        long bus = pool.map(secureBuffer(600, 0x800), 0x2800, DmaDirection.FROM_DEVICE, 0xFFF, 0xFFF);
        assertEquals(0x800, bus & 0xFFF);
        assertEquals(2, pool.slotsInUse(), "one padding slot, then the mapping");
        assertThrows(IllegalArgumentException.class, () -> pool.syncForCpu(bus - 0x800, 1, DmaDirection.FROM_DEVICE),
            "the padding slot is not part of the mapping");
        pool.unmap(bus, 600, DmaDirection.FROM_DEVICE);
        assertEquals(0, pool.slotsInUse());
    }

    // --- areas ----------------------------------------------------------------------------

    @Test
    void searchStartsInTheCallersAreaAndMovesRoundRobin() throws Exception {
        SwiotlbPool pool = pool(2 * SEGMENT_SIZE, 2);
        int mine = (int) Thread.currentThread().threadId() & 1;
        long first = pool.map(secureBuffer(SEGMENT_SIZE), DmaDirection.TO_DEVICE);
        assertEquals(SHARED_BASE + mine * SEGMENT_SIZE, first, "the caller's area is searched first");
        long second = pool.map(secureBuffer(SLOT_SIZE), DmaDirection.TO_DEVICE);
        assertEquals(SHARED_BASE + (1 - mine) * SEGMENT_SIZE, second, "a full area sends the search to the next");
        assertEquals(2, pool.areaCount());
    }

    // --- statistics ------------------------------------------------------------------------

    @Test
    void statisticsTrackSlotsHighWaterLiveMappingsAndFailures() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        long a = pool.map(secureBuffer(5000), DmaDirection.TO_DEVICE);
        long b = pool.map(secureBuffer(100), DmaDirection.FROM_DEVICE);
        SwiotlbStatistics s = pool.statistics();
        assertEquals(128, s.slotsTotal());
        assertEquals(4, s.slotsInUse());
        assertEquals(2, s.liveMappings());
        pool.unmap(a, 5000, DmaDirection.TO_DEVICE);
        assertThrows(DmaMappingException.class, () -> pool.map(secureBuffer(SEGMENT_SIZE), DmaDirection.TO_DEVICE));
        pool.unmap(b, 100, DmaDirection.FROM_DEVICE);
        s = pool.statistics();
        assertEquals(0, s.slotsInUse());
        assertEquals(4, s.highWaterMark());
        assertEquals(0, s.liveMappings());
        assertEquals(1, s.failedMaps());
        assertEquals(5100, s.bytesToDevice());
        assertEquals(100, s.bytesFromDevice());
    }

    // --- nothing half mapped -------------------------------------------------------------

    @Test
    void aMapWhoseCopyFailsLeavesNothingMapped() {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        MemorySegment gone;
        try (Arena arena = Arena.ofConfined()) {
            gone = arena.allocate(4096);
        }
        assertThrows(IllegalStateException.class, () -> pool.map(gone, DmaDirection.TO_DEVICE));
        assertEquals(0, pool.slotsInUse());
        assertEquals(0, pool.liveMappings());
    }

    // --- allocations (restricted pool) ----------------------------------------------------

    @Test
    void allocationsArePageAlignedAndFreedOnce() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        pool.map(secureBuffer(10), DmaDirection.TO_DEVICE);
        long ring = pool.allocate(6000);
        assertEquals(0, ring & 0xFFF);
        assertTrue(pool.owns(ring));
        assertEquals(1, pool.statistics().liveAllocations());
        assertThrows(IllegalArgumentException.class, () -> pool.unmap(ring, 6000, DmaDirection.TO_DEVICE),
            "an allocation is not a mapping");
        assertThrows(IllegalArgumentException.class, () -> pool.syncForCpu(ring, 10, DmaDirection.FROM_DEVICE));
        pool.free(ring, 6000);
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> pool.free(ring, 6000));
        assertTrue(twice.getMessage().contains("0x" + Long.toHexString(ring)), twice.getMessage());
        assertEquals(0, pool.statistics().liveAllocations());
        assertEquals(DmaMappingException.Reason.TOO_LARGE,
            assertThrows(DmaMappingException.class, () -> pool.allocate(SEGMENT_SIZE + 1)).reason());
    }

    // --- transient pools ------------------------------------------------------------------

    @Test
    void growthIsOffByDefault() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        assertFalse(pool.growsByTransientPools());
        pool.map(secureBuffer(SEGMENT_SIZE), DmaDirection.TO_DEVICE);
        DmaMappingException e = assertThrows(DmaMappingException.class, () -> pool.map(secureBuffer(64), DmaDirection.TO_DEVICE));
        assertTrue(e.getMessage().contains("transient pools are off"), e.getMessage());
    }

    @Test
    void fullPoolGrowsByATransientPoolThatIsGivenBackAtUnmap() throws Exception {
        SwiotlbPool reserve = SwiotlbPool.builder(memory, SHARED_BASE + SEGMENT_SIZE, SEGMENT_SIZE).areas(1).build();
        SwiotlbPool pool = SwiotlbPool.builder(memory, SHARED_BASE, SEGMENT_SIZE).areas(1)
            .transientPools(TransientPoolSource.fromReserve(reserve)).build();
        long full = pool.map(secureBuffer(SEGMENT_SIZE), DmaDirection.TO_DEVICE);
        MemorySegment buf = secureBuffer(10_000);
        fill(buf, 3);
        long bus = pool.map(buf, DmaDirection.BIDIRECTIONAL);
        assertTrue(bus >= SHARED_BASE + SEGMENT_SIZE, "the mapping lives in the reserve");
        assertTrue(pool.owns(bus));
        assertEquals(1, pool.statistics().transientPools());
        assertArrayEquals(bytes(buf), bytes(bounce(bus, 10_000)));
        assertEquals(128 + reserve.slotsInUse(), pool.slotsTotal());
        bounce(bus, 10_000).fill((byte) 1);
        pool.unmap(bus, 10_000, DmaDirection.BIDIRECTIONAL);
        assertEquals(1, buf.get(ValueLayout.JAVA_BYTE, 9_999));
        assertEquals(0, pool.statistics().transientPools());
        assertEquals(0, reserve.slotsInUse(), "the transient pool went back to the reserve");
        assertFalse(pool.owns(bus));
        assertThrows(IllegalArgumentException.class, () -> pool.unmap(bus, 10_000, DmaDirection.BIDIRECTIONAL));
        // a TO_DEVICE unmap (looked up and freed under one lock) gives its transient pool back too
        long toDevice = pool.map(secureBuffer(5000), DmaDirection.TO_DEVICE);
        assertEquals(1, pool.statistics().transientPools());
        assertThrows(IllegalArgumentException.class, () -> pool.unmap(toDevice, 4999, DmaDirection.TO_DEVICE));
        assertEquals(1, pool.statistics().transientPools(), "a refused unmap changes nothing");
        pool.unmap(toDevice, 5000, DmaDirection.TO_DEVICE);
        assertEquals(0, pool.statistics().transientPools());
        assertEquals(0, reserve.slotsInUse());
        assertThrows(IllegalArgumentException.class, () -> pool.unmap(toDevice, 5000, DmaDirection.TO_DEVICE));
        pool.unmap(full, SEGMENT_SIZE, DmaDirection.TO_DEVICE);
        assertEquals(0, pool.slotsInUse());
    }

    // --- building -------------------------------------------------------------------------

    @Test
    void rejectsAPoolOutsideSharedMemoryOrOfABadShape() {
        IllegalArgumentException secure = assertThrows(IllegalArgumentException.class,
            () -> SwiotlbPool.builder(memory, SECURE_BASE, SEGMENT_SIZE).build());
        assertTrue(secure.getMessage().contains("SHARED"), secure.getMessage());
        assertThrows(IllegalArgumentException.class, () -> SwiotlbPool.builder(memory, SHARED_BASE, 100_000).build());
        assertThrows(IllegalArgumentException.class, () -> SwiotlbPool.builder(memory, SHARED_BASE + 512, SEGMENT_SIZE).build());
        assertThrows(IllegalArgumentException.class,
            () -> SwiotlbPool.builder(memory, SHARED_BASE, SHARED_SIZE + SEGMENT_SIZE).build());
        IllegalArgumentException areas = assertThrows(IllegalArgumentException.class,
            () -> SwiotlbPool.builder(memory, SHARED_BASE, 2 * SEGMENT_SIZE).areas(4).build());
        assertTrue(areas.getMessage().contains("4"), areas.getMessage());
        assertThrows(IllegalArgumentException.class, () -> SwiotlbPool.builder(memory, SHARED_BASE, SEGMENT_SIZE).areas(3));
    }

    @Test
    void defaultAreasDivideThePoolIntoWholeSegments() {
        SwiotlbPool pool = SwiotlbPool.builder(memory, SHARED_BASE, 6 * SEGMENT_SIZE).build();
        int areas = pool.areaCount();
        assertEquals(1, Integer.bitCount(areas));
        assertEquals(0, 6 % areas);
        assertTrue(areas <= Runtime.getRuntime().availableProcessors());
    }

    // --- many mappings, freed in any order, merge back -------------------------------------

    @Test
    void freedRunsMergeSoTheWholeSegmentIsUsableAgain() throws Exception {
        SwiotlbPool pool = pool(SEGMENT_SIZE, 1);
        List<long[]> maps = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            maps.add(new long[] {pool.map(secureBuffer(SLOT_SIZE * 2L), DmaDirection.TO_DEVICE), SLOT_SIZE * 2L});
        }
        // unmap every other one, then the rest, so runs are merged from both sides
        for (int i = 0; i < 64; i += 2) {
            pool.unmap(maps.get(i)[0], maps.get(i)[1], DmaDirection.TO_DEVICE);
        }
        for (int i = 1; i < 64; i += 2) {
            pool.unmap(maps.get(i)[0], maps.get(i)[1], DmaDirection.TO_DEVICE);
        }
        long whole = pool.map(secureBuffer(SEGMENT_SIZE), DmaDirection.TO_DEVICE);
        assertEquals(SHARED_BASE, whole);
        assertEquals(128, pool.slotsInUse());
    }
}

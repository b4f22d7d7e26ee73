package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class IommuDmaOpsTest {
    private static final long GPA = 0x8000_0000L;
    private static final long IOVA = 0x1_0000_0000L;

    private final GuestMemory memory = GuestMemory.ofShared(GPA, 4 << 20);
    private final Iommu iommu = new Iommu(memory, IOVA, 64 * 4096L);
    private final List<String> invalidations = new ArrayList<>();
    private long now;

    @AfterEach
    void close() {
        memory.close();
    }

    private IommuDmaOps ops(IommuDmaOps.Mode mode) {
        iommu.addDeviceTlb((iova, size) -> invalidations.add(Long.toHexString(iova) + "+" + size));
        return new IommuDmaOps(iommu, mode, new BumpAllocator(memory, GPA + (2 << 20), 1 << 20), 4, 1000, () -> now);
    }

    @Test
    void mapGivesAnIovaWithThePermissionOfTheDirection() throws Exception {
        IommuDmaOps dma = ops(IommuDmaOps.Mode.STRICT);
        MemorySegment buf = memory.slice(GPA + 0x1234, 0x2000);
        long to = dma.map(buf, DmaDirection.TO_DEVICE);
        long from = dma.map(buf, DmaDirection.FROM_DEVICE);
        long both = dma.map(buf, DmaDirection.BIDIRECTIONAL);
        assertEquals(0x234, to & 0xFFF, "the offset within the page is kept");
        assertEquals(GPA + 0x1234, iommu.translate(to));
        assertEquals(GPA + 0x3233, iommu.translate(from + 0x1FFF));
        assertEquals(Permission.RO, iommu.permission(to));
        assertEquals(Permission.WO, iommu.permission(from + 0x1000));
        assertEquals(Permission.RW, iommu.permission(both));
        assertEquals(9, iommu.mappedPages(), "three mappings of three pages each");
    }

    @Test
    void unmapOfUnknownAddressWrongLengthOrTwiceIsAnErrorNamingTheAddress() throws Exception {
        IommuDmaOps dma = ops(IommuDmaOps.Mode.STRICT);
        long bus = dma.map(memory.slice(GPA, 100), DmaDirection.TO_DEVICE);
        String hex = Long.toHexString(bus);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> dma.unmap(bus + 8, 100, DmaDirection.TO_DEVICE))
            .getMessage().contains(Long.toHexString(bus + 8)));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> dma.unmap(bus, 99, DmaDirection.TO_DEVICE))
            .getMessage().contains(hex));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> dma.unmap(bus, 100, DmaDirection.FROM_DEVICE))
            .getMessage().contains(hex));
        dma.unmap(bus, 100, DmaDirection.TO_DEVICE);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> dma.unmap(bus, 100, DmaDirection.TO_DEVICE))
            .getMessage().contains(hex));
    }

    @Test
    void strictUnmapInvalidatesTheDeviceIotlbBeforeTheIovaIsFreedAndBeforeItReturns() throws Exception {
        List<String> seen = new ArrayList<>();
        iommu.addDeviceTlb((iova, size) -> seen.add("mapped=" + iommu.isMapped(iova, size) + " iovaInUse="
            + iommu.isIovaInUse(iova)));
        IommuDmaOps dma = new IommuDmaOps(iommu, IommuDmaOps.Mode.STRICT, null);
        long bus = dma.map(memory.slice(GPA + 0x10, 0x1000), DmaDirection.FROM_DEVICE);
        dma.unmap(bus, 0x1000, DmaDirection.FROM_DEVICE);
        assertEquals(List.of("mapped=false iovaInUse=true"), seen,
            "entries are cleared, the IOVA still held, while the device IOTLB is invalidated");
        assertFalse(iommu.isIovaInUse(bus), "freed once unmap returned");
        assertEquals(-1, iommu.translate(bus));
    }

    @Test
    void lazyNeverReusesAnIovaBeforeItsFlush() throws Exception {
        IommuDmaOps dma = new IommuDmaOps(iommu, IommuDmaOps.Mode.LAZY, null, 1000, Long.MAX_VALUE, () -> now);
        List<long[]> ranges = new ArrayList<>();
        iommu.addDeviceTlb((iova, size) -> {
            invalidations.add(Long.toHexString(iova));
            ranges.add(new long[] {iova, size});
        });
        Set<Long> retired = new HashSet<>();
        MemorySegment buf = memory.slice(GPA, 64);
        for (int i = 0; i < 60; i++) {
            long bus = dma.map(buf, DmaDirection.TO_DEVICE);
            assertFalse(retired.contains(bus), "IOVA 0x" + Long.toHexString(bus) + " reused before its flush");
            dma.unmap(bus, 64, DmaDirection.TO_DEVICE);
            retired.add(bus);
        }
        assertEquals(List.of(), invalidations, "nothing invalidated before the flush");
        assertEquals(60, dma.pendingFlush());
        dma.flush();
        for (long bus : retired) {
            assertTrue(ranges.stream().anyMatch(r -> bus >= r[0] && bus + 64 <= r[0] + r[1]),
                "retired IOVA 0x" + Long.toHexString(bus) + " was invalidated");
        }
        assertEquals(1, invalidations.size(), "60 touching pages merge into one invalidation");
        assertEquals(0, dma.pendingFlush());
        boolean reused = false;
        for (int i = 0; i < 5; i++) { // the window has 64 pages: the fifth map must reuse a flushed one
            reused |= retired.contains(dma.map(buf, DmaDirection.TO_DEVICE));
        }
        assertTrue(reused, "after the flush the IOVAs are reused");
    }

    @Test
    void lazyFlushesWhenTheQueueReachesItsSize() throws Exception {
        IommuDmaOps dma = ops(IommuDmaOps.Mode.LAZY);
        MemorySegment buf = memory.slice(GPA, 64);
        for (int i = 0; i < 3; i++) {
            dma.unmap(dma.map(buf, DmaDirection.TO_DEVICE), 64, DmaDirection.TO_DEVICE);
        }
        assertEquals(List.of(), invalidations);
        dma.unmap(dma.map(buf, DmaDirection.TO_DEVICE), 64, DmaDirection.TO_DEVICE);
        assertEquals(List.of(Long.toHexString(IOVA) + "+" + 4 * 4096), invalidations,
            "the fourth unmap fills the queue of 4 and flushes it: four touching pages, one invalidation");
        assertEquals(1, dma.flushes());
    }

    @Test
    void aLazyFlushHandsItsIovasOutAgainLowestFirst() throws Exception {
        IommuDmaOps dma = ops(IommuDmaOps.Mode.LAZY);
        MemorySegment buf = memory.slice(GPA, 64);
        for (int cycle = 0; cycle < 3; cycle++) {
            long[] bus = new long[4];
            for (int i = 0; i < 4; i++) {
                bus[i] = dma.map(buf, DmaDirection.TO_DEVICE);
            }
            for (int i = 1; i < 4; i++) {
                // a device IOTLB keeps its entries sorted: each new one lands after the others
                assertTrue(bus[i] > bus[i - 1], "cycle " + cycle + ": map " + i + " at 0x" + Long.toHexString(bus[i])
                    + " is not above 0x" + Long.toHexString(bus[i - 1]));
            }
            // retired in a scrambled order; the fourth unmap fills the queue and flushes it
            for (int i : new int[] {2, 0, 3, 1}) {
                dma.unmap(bus[i], 64, DmaDirection.TO_DEVICE);
            }
            assertEquals(cycle + 1, dma.flushes());
        }
    }

    @Test
    void theFlushSortOrdersLikeArraysSort() {
        java.util.Random random = new java.util.Random(15);
        for (int n : new int[] {0, 1, 2, 3, 17, 256, 1000}) {
            long[] keys = new long[n + 5];
            for (int i = 0; i < keys.length; i++) {
                keys[i] = random.nextInt(4) == 0 ? keys[Math.max(0, i - 1)] : random.nextLong() >>> 7;
            }
            long[] expected = keys.clone();
            java.util.Arrays.sort(expected, 0, n);
            IommuDmaOps.sortKeys(keys, n);
            assertEquals(java.util.Arrays.toString(expected), java.util.Arrays.toString(keys), n + " keys (the tail untouched)");
        }
        long[] sorted = {1, 2, 2, 5, 9};
        IommuDmaOps.sortKeys(sorted, 5);
        assertEquals("[1, 2, 2, 5, 9]", java.util.Arrays.toString(sorted), "already sorted");
        long[] lastOut = {1, 2, 3, 4, 0};
        IommuDmaOps.sortKeys(lastOut, 5);
        assertEquals("[0, 1, 2, 3, 4]", java.util.Arrays.toString(lastOut), "sorted but for the last key");
    }

    @Test
    void aLazyFlushNeverInvalidatesTheLiveMappingBetweenTwoRetiredRanges() throws Exception {
        IommuDmaOps dma = new IommuDmaOps(iommu, IommuDmaOps.Mode.LAZY, null, 1000, Long.MAX_VALUE, () -> now);
        iommu.addDeviceTlb((iova, size) -> invalidations.add(Long.toHexString(iova) + "+" + size));
        MemorySegment buf = memory.slice(GPA, 64);
        long a = dma.map(buf, DmaDirection.TO_DEVICE);
        long live = dma.map(buf, DmaDirection.TO_DEVICE);
        long b = dma.map(buf, DmaDirection.TO_DEVICE);
        long c = dma.map(memory.slice(GPA, 2 * 4096), DmaDirection.TO_DEVICE);
        dma.unmap(c, 2 * 4096, DmaDirection.TO_DEVICE);
        dma.unmap(a, 64, DmaDirection.TO_DEVICE);
        dma.unmap(b, 64, DmaDirection.TO_DEVICE);
        dma.flush();
        assertEquals(List.of(Long.toHexString(a) + "+4096", Long.toHexString(b) + "+12288"), invalidations,
            "a alone; b and c (after it) merged; the live mapping between a and b untouched");
        assertEquals(GPA, iommu.translate(live));
    }

    @Test
    void lazyFlushesWhenTheOldestRangeIsOlderThanTheTimeout() throws Exception {
        IommuDmaOps dma = ops(IommuDmaOps.Mode.LAZY);
        MemorySegment buf = memory.slice(GPA, 64);
        dma.unmap(dma.map(buf, DmaDirection.TO_DEVICE), 64, DmaDirection.TO_DEVICE);
        now += 999;
        for (int i = 0; i < 2 * IommuDmaOps.AGE_CHECK_INTERVAL; i++) {
            dma.map(buf, DmaDirection.FROM_DEVICE);
        }
        assertEquals(List.of(), invalidations, "999 ns old: not yet");
        now += 1;
        int maps = 0;
        while (invalidations.isEmpty() && maps < IommuDmaOps.AGE_CHECK_INTERVAL) {
            dma.map(buf, DmaDirection.FROM_DEVICE);
            maps++;
        }
        assertEquals(1, invalidations.size(), "the oldest range reached the 1000 ns timeout: flushed within "
            + IommuDmaOps.AGE_CHECK_INTERVAL + " maps");
        assertEquals(0, dma.pendingFlush());
    }

    @Test
    void lazyFlushesAndRetriesWhenTheWindowIsExhausted() throws Exception {
        IommuDmaOps dma = new IommuDmaOps(iommu, IommuDmaOps.Mode.LAZY, null, 1000, Long.MAX_VALUE, () -> now);
        MemorySegment buf = memory.slice(GPA, 64);
        for (int i = 0; i < 64; i++) {
            dma.unmap(dma.map(buf, DmaDirection.TO_DEVICE), 64, DmaDirection.TO_DEVICE);
        }
        assertEquals(64, dma.pendingFlush());
        dma.map(buf, DmaDirection.TO_DEVICE);
        assertEquals(0, dma.pendingFlush());
    }

    @Test
    void strictMapFailsWithNoSpaceNamingTheSizeWhenTheWindowIsFull() throws Exception {
        IommuDmaOps dma = ops(IommuDmaOps.Mode.STRICT);
        DmaMappingException e = assertThrows(DmaMappingException.class,
            () -> dma.map(memory.slice(GPA, 65 * 4096), DmaDirection.TO_DEVICE));
        assertEquals(DmaMappingException.Reason.NO_SPACE, e.reason());
        assertTrue(e.getMessage().contains("65"), e.getMessage());
        assertEquals(0, iommu.usedIovaPages());
    }

    @Test
    void passthroughIsTheIdentity() throws Exception {
        IommuDmaOps dma = ops(IommuDmaOps.Mode.PASSTHROUGH);
        long bus = dma.map(memory.slice(GPA + 0x777, 10), DmaDirection.FROM_DEVICE);
        assertEquals(GPA + 0x777, bus);
        dma.unmap(bus, 10, DmaDirection.FROM_DEVICE);
        assertEquals(List.of(), invalidations);
        IotlbMessage update = iommu.resolve(GPA + 0x3_0000);
        assertEquals(GPA, update.iova());
        assertEquals(GPA, update.uaddr());
        assertEquals(Permission.RW, update.permission());
        assertNull(iommu.resolve(GPA - 1));
    }

    @Test
    void identityMapMakesAGuestRangeItsOwnIovaForGood() throws Exception {
        Iommu overlapping = new Iommu(memory, GPA, 64 * 4096L);
        IommuDmaOps dma = new IommuDmaOps(overlapping, IommuDmaOps.Mode.STRICT, null);
        dma.identityMap(GPA + 0x4000, 0x2000);
        assertEquals(GPA + 0x5010, overlapping.translate(GPA + 0x5010));
        assertEquals(Permission.RW, overlapping.permission(GPA + 0x4000));
        for (int i = 0; i < 62; i++) {
            long bus = dma.map(memory.slice(GPA, 8), DmaDirection.TO_DEVICE);
            assertFalse(bus >= GPA + 0x4000 && bus < GPA + 0x6000, "map handed out an identity-mapped IOVA");
        }
        IotlbMessage update = overlapping.resolve(GPA + 0x4800);
        assertEquals(GPA + 0x4000, update.iova());
        assertEquals(0x2000, update.size());
        assertThrows(IllegalArgumentException.class, () -> dma.identityMap(GPA + 0x5000, 0x1000));
    }

    @Test
    void resolveGivesTheContiguousRunOfPagesWithOnePermission() throws Exception {
        IommuDmaOps dma = ops(IommuDmaOps.Mode.STRICT);
        long bus = dma.map(memory.slice(GPA + 0x100, 3 * 4096), DmaDirection.FROM_DEVICE);
        IotlbMessage update = iommu.resolve(bus + 0x1800);
        assertEquals(IotlbMessage.Type.UPDATE, update.type());
        assertEquals((bus & ~0xFFFL) + 0x1000, update.iova());
        assertEquals(3 * 4096, update.size());
        assertEquals(GPA + 0x1000, update.uaddr());
        assertEquals(Permission.WO, update.permission());
        assertNotEquals(null, iommu.resolve(bus));
        assertNull(iommu.resolve(bus + 4 * 4096));
    }

    @Test
    void resolveNeverRunsIntoTheNextMappingEvenWhenItIsContiguous() throws Exception {
        IommuDmaOps dma = ops(IommuDmaOps.Mode.STRICT);
        long first = dma.map(memory.slice(GPA, 4096), DmaDirection.TO_DEVICE);
        long second = dma.map(memory.slice(GPA + 4096, 4096), DmaDirection.TO_DEVICE);
        assertEquals(first + 4096, second, "consecutive IOVAs over consecutive guest pages, same permission");
        assertEquals(4096, iommu.resolve(first).size(), "the UPDATE stops where the second mapping starts");
        assertEquals(List.of(iommu.resolve(first), iommu.resolve(second)), iommu.resolveAround(first, 4));
    }

    @Test
    void coherentMemoryIsMappedReadWrite() throws Exception {
        IommuDmaOps dma = ops(IommuDmaOps.Mode.STRICT);
        CoherentBuffer c = dma.allocCoherent(100);
        assertEquals(Permission.RW, iommu.permission(c.busAddress()));
        assertEquals(memory.guestPhysicalAddressOf(c.memory()), iommu.translate(c.busAddress()));
        dma.freeCoherent(c);
        assertEquals(-1, iommu.translate(c.busAddress()));
    }

    @Test
    void mapOfMemoryOutsideTheGuestFailsWithNotGuestMemory() {
        IommuDmaOps dma = ops(IommuDmaOps.Mode.STRICT);
        DmaMappingException e = assertThrows(DmaMappingException.class,
            () -> dma.map(MemorySegment.ofArray(new byte[8]), DmaDirection.TO_DEVICE));
        assertEquals(DmaMappingException.Reason.NOT_GUEST_MEMORY, e.reason());
    }
}

package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class IovaAllocatorTest {
    private static final long BASE = 0x10_0000L;

    @Test
    void liveRangesNeverOverlapUnderRandomAllocateAndFree() {
        IovaAllocator a = new IovaAllocator(BASE, 256 * 4096L);
        byte[] owner = new byte[256];
        List<long[]> live = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(42);
        for (int step = 0; step < 20_000; step++) {
            if (live.isEmpty() || rnd.nextInt(3) != 0) {
                int pages = 1 + rnd.nextInt(8);
                long iova = a.allocate(pages);
                if (iova == 0) {
                    continue;
                }
                int first = (int) ((iova - BASE) / 4096);
                for (int p = first; p < first + pages; p++) {
                    assertEquals(0, owner[p], "page " + p + " handed out twice");
                    owner[p] = 1;
                }
                live.add(new long[] {iova, pages});
            } else {
                long[] r = live.remove(rnd.nextInt(live.size()));
                a.free(r[0], (int) r[1]);
                int first = (int) ((r[0] - BASE) / 4096);
                for (int p = first; p < first + r[1]; p++) {
                    owner[p] = 0;
                }
            }
        }
        int used = 0;
        for (byte b : owner) {
            used += b;
        }
        assertEquals(used, a.usedPages());
    }

    @Test
    void freedRangeIsReusedWhenTheWindowIsOtherwiseFull() {
        IovaAllocator a = new IovaAllocator(BASE, 16 * 4096L);
        long[] got = new long[16];
        for (int i = 0; i < 16; i++) {
            got[i] = a.allocate(1);
            assertTrue(got[i] != 0);
        }
        assertEquals(0, a.allocate(1), "window full");
        a.free(got[5], 1);
        assertEquals(got[5], a.allocate(1));
    }

    @Test
    void rejectsDoubleFreeNamingThePage() {
        IovaAllocator a = new IovaAllocator(BASE, 16 * 4096L);
        long iova = a.allocate(2);
        a.free(iova, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> a.free(iova, 2));
        assertTrue(e.getMessage().contains(Long.toHexString(iova)), e.getMessage());
    }

    @Test
    void reserveRefusesPagesInUseAndAllocationSkipsReservedPages() {
        IovaAllocator a = new IovaAllocator(BASE, 8 * 4096L);
        long first = a.allocate(1);
        assertThrows(IllegalArgumentException.class, () -> a.reserve(first, 2));
        a.reserve(first + 4096, 6);
        assertEquals(first + 7 * 4096, a.allocate(1));
        assertEquals(0, a.allocate(1));
    }

    @Test
    void rejectsMisalignedWindow() {
        assertThrows(IllegalArgumentException.class, () -> new IovaAllocator(BASE + 1, 4096));
        assertThrows(IllegalArgumentException.class, () -> new IovaAllocator(0, 4096));
        assertThrows(IllegalArgumentException.class, () -> new IovaAllocator(BASE, 4000));
    }

    @Test
    void aFreedRangeIsReusedFromItsCacheBeforeTheBitmapIsSearched() {
        IovaAllocator a = new IovaAllocator(BASE, 256 * 4096L);
        long first = a.allocateCached(1);
        a.freeCached(first, 1);
        assertEquals(0, a.usedPages());
        assertEquals(1, a.cachedPages());
        assertFalse(a.isInUse(first), "a cached range is not in use");
        for (int i = 0; i < 1000; i++) {
            long again = a.allocateCached(1);
            assertEquals(first, again, "the next-fit cursor would have moved on; the cache hands the range back");
            a.freeCached(again, 1);
        }
        long three = a.allocateCached(3);
        assertEquals(4, a.usedPages(), "3 pages are rounded up to 4");
        a.freeCached(three, 3);
        assertEquals(three, a.allocateCached(4), "a range of 3 pages and one of 4 share a cache");
    }

    @Test
    void sizesBelow32PagesAreRoundedUpToAPowerOfTwo() {
        assertEquals(1, IovaAllocator.cachedSize(1));
        assertEquals(2, IovaAllocator.cachedSize(2));
        assertEquals(4, IovaAllocator.cachedSize(3));
        assertEquals(8, IovaAllocator.cachedSize(5));
        assertEquals(32, IovaAllocator.cachedSize(17));
        assertEquals(32, IovaAllocator.cachedSize(32));
        assertEquals(33, IovaAllocator.cachedSize(33));
        assertThrows(IllegalArgumentException.class, () -> IovaAllocator.cachedSize(0));
    }

    @Test
    void aWindowFullOfCachedRangesIsDrainedAndSearchedAgain() {
        IovaAllocator a = new IovaAllocator(BASE, 8 * 4096L);
        long[] one = new long[8];
        for (int i = 0; i < 8; i++) {
            one[i] = a.allocateCached(1);
            assertTrue(one[i] != 0);
        }
        assertEquals(0, a.allocateCached(1), "the window is full");
        for (long iova : one) {
            a.freeCached(iova, 1);
        }
        assertEquals(8, a.cachedPages());
        long eight = a.allocateCached(8);
        assertEquals(BASE, eight, "the caches were drained into the bitmap and the run found");
        assertEquals(0, a.cachedPages());
        assertEquals(8, a.usedPages());
    }

    @Test
    void freeingACachedRangeAgainIsRefused() {
        IovaAllocator a = new IovaAllocator(BASE, 64 * 4096L);
        long r = a.allocateCached(2);
        a.freeCached(r, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> a.freeCached(r, 2));
        assertTrue(e.getMessage().contains("freed twice"), e.getMessage());
        assertEquals(2, a.cachedPages());
        assertThrows(IllegalArgumentException.class, () -> a.freeCached(BASE + 40 * 4096L, 1), "never allocated");
    }

    @Test
    void aFullCacheFreesIntoTheBitmap() {
        IovaAllocator a = new IovaAllocator(BASE, 1024 * 4096L);
        long[] r = new long[IovaAllocator.CACHE_DEPTH + 10];
        for (int i = 0; i < r.length; i++) {
            r[i] = a.allocateCached(1);
        }
        for (long iova : r) {
            a.freeCached(iova, 1);
        }
        assertEquals(IovaAllocator.CACHE_DEPTH, a.cachedPages());
        assertEquals(0, a.usedPages());
        assertEquals(1024 - IovaAllocator.CACHE_DEPTH, a.freePages());
    }

    @Test
    void reservingARangeHeldOnlyByCachedRangesDrainsTheCaches() {
        IovaAllocator a = new IovaAllocator(BASE, 16 * 4096L);
        long r = a.allocateCached(4);
        a.freeCached(r, 4);
        a.reserve(r, 4);
        assertEquals(0, a.cachedPages());
        assertEquals(4, a.usedPages());
        assertTrue(a.isInUse(r));
    }
}

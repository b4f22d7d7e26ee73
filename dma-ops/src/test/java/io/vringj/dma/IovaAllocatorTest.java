package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
}

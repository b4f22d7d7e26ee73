package io.vringj.properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.dma.IovaAllocator;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

/**
 * The IOVA allocator under random allocations, frees (in any order) and double frees in a small
 * window: live ranges never overlap and stay inside the window, page-aligned; an allocation fails
 * only when no free run of that many pages exists; a double free is refused and changes nothing;
 * the used-page count and every page's in-use bit match a reference bitmap.
 */
class IovaAllocatorProperties {
    private static final long BASE = 0x100_0000L;
    private static final int PAGES = 48;

    sealed interface Op permits Allocate, Free, FreeAgain {
    }

    record Allocate(int pages) implements Op {
    }

    /** Frees the {@code pick}-th live range. */
    record Free(int pick) implements Op {
    }

    /** Frees the {@code pick}-th range freed before, again. */
    record FreeAgain(int pick) implements Op {
    }

    record Range(long iova, int pages) {
        @Override
        public String toString() {
            return String.format("[0x%x, +%d pages)", iova, pages);
        }
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 5000)
    void liveAllocationsNeverOverlapAndFailOnlyWhenNoRunIsFree(@ForAll("operations") List<Op> ops) {
        IovaAllocator allocator = new IovaAllocator(BASE, PAGES * IovaAllocator.PAGE_SIZE);
        BitSet used = new BitSet(PAGES);
        List<Range> live = new ArrayList<>();
        List<Range> freed = new ArrayList<>();
        int failures = 0;
        for (Op op : ops) {
            switch (op) {
                case Allocate a -> {
                    long iova = allocator.allocate(a.pages());
                    if (iova == 0) {
                        assertFalse(hasFreeRun(used, a.pages()), "allocate(" + a.pages() + ") failed though a run is free: "
                            + used + ", live " + live);
                        failures++;
                        break;
                    }
                    assertEquals(0, iova % IovaAllocator.PAGE_SIZE, "page-aligned");
                    long first = (iova - BASE) / IovaAllocator.PAGE_SIZE;
                    assertTrue(first >= 0 && first + a.pages() <= PAGES, "inside the window: " + Long.toHexString(iova));
                    for (int p = (int) first; p < first + a.pages(); p++) {
                        assertFalse(used.get(p), "page " + p + " handed out twice; live " + live);
                        used.set(p);
                    }
                    live.add(new Range(iova, a.pages()));
                }
                case Free f -> {
                    if (live.isEmpty()) {
                        break;
                    }
                    Range r = live.remove(f.pick() % live.size());
                    allocator.free(r.iova(), r.pages());
                    int first = (int) ((r.iova() - BASE) / IovaAllocator.PAGE_SIZE);
                    used.clear(first, first + r.pages());
                    freed.add(r);
                }
                case FreeAgain f -> {
                    if (freed.isEmpty()) {
                        break;
                    }
                    Range r = freed.get(f.pick() % freed.size());
                    int first = (int) ((r.iova() - BASE) / IovaAllocator.PAGE_SIZE);
                    if (used.get(first, first + r.pages()).isEmpty()) {
                        // wholly free again: a double free must be refused and change nothing
                        int before = allocator.usedPages();
                        assertThrows(IllegalArgumentException.class, () -> allocator.free(r.iova(), r.pages()),
                            "double free of " + r);
                        assertEquals(before, allocator.usedPages(), "a refused free changed the used pages");
                    }
                }
            }
            assertEquals(used.cardinality(), allocator.usedPages(), "used pages");
            assertEquals(PAGES - used.cardinality(), allocator.freePages(), "free pages");
            for (int p = 0; p < PAGES; p++) {
                assertEquals(used.get(p), allocator.isInUse(BASE + p * IovaAllocator.PAGE_SIZE), "page " + p + " in use");
            }
        }
        for (Range r : live) {
            allocator.free(r.iova(), r.pages());
        }
        assertEquals(0, allocator.usedPages(), "everything freed");
        Statistics.label("failed allocations").collect(failures == 0 ? "none" : "some");
    }

    /**
     * The same operations through the range caches ({@code allocateCached} / {@code freeCached},
     * Linux's rcache): sizes are rounded up to a power of two below 32 pages, a freed range may
     * wait in a cache, and yet live ranges never overlap, an allocation fails only when no run of
     * the rounded size is free among the pages no live range holds, a double free is refused, and
     * used + cached + free pages always add up to the window.
     */
    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 5000)
    void cachedAllocationsNeverOverlapAndFailOnlyWhenNoRunIsFree(@ForAll("operations") List<Op> ops) {
        IovaAllocator allocator = new IovaAllocator(BASE, PAGES * IovaAllocator.PAGE_SIZE);
        BitSet live = new BitSet(PAGES);
        List<Range> ranges = new ArrayList<>();
        List<Range> freed = new ArrayList<>();
        int reused = 0;
        for (Op op : ops) {
            switch (op) {
                case Allocate a -> {
                    int size = IovaAllocator.cachedSize(a.pages());
                    int cachedBefore = allocator.cachedPages();
                    long iova = allocator.allocateCached(a.pages());
                    if (iova == 0) {
                        assertFalse(hasFreeRun(live, size), "allocateCached(" + a.pages() + ") failed though a run of "
                            + size + " is free: " + live);
                        break;
                    }
                    if (allocator.cachedPages() == cachedBefore - size) {
                        reused++;
                    }
                    long first = (iova - BASE) / IovaAllocator.PAGE_SIZE;
                    assertTrue(first >= 0 && first + size <= PAGES, "inside the window: " + Long.toHexString(iova));
                    for (int p = (int) first; p < first + size; p++) {
                        assertFalse(live.get(p), "page " + p + " handed out twice; live " + ranges);
                        live.set(p);
                    }
                    ranges.add(new Range(iova, a.pages()));
                }
                case Free f -> {
                    if (ranges.isEmpty()) {
                        break;
                    }
                    Range r = ranges.remove(f.pick() % ranges.size());
                    allocator.freeCached(r.iova(), r.pages());
                    int first = (int) ((r.iova() - BASE) / IovaAllocator.PAGE_SIZE);
                    live.clear(first, first + IovaAllocator.cachedSize(r.pages()));
                    freed.add(r);
                }
                case FreeAgain f -> {
                    if (freed.isEmpty()) {
                        break;
                    }
                    Range r = freed.get(f.pick() % freed.size());
                    int first = (int) ((r.iova() - BASE) / IovaAllocator.PAGE_SIZE);
                    if (live.get(first, first + IovaAllocator.cachedSize(r.pages())).isEmpty()) {
                        int used = allocator.usedPages();
                        int cached = allocator.cachedPages();
                        assertThrows(IllegalArgumentException.class, () -> allocator.freeCached(r.iova(), r.pages()),
                            "double free of " + r);
                        assertEquals(used, allocator.usedPages(), "a refused free changed the used pages");
                        assertEquals(cached, allocator.cachedPages(), "a refused free changed the cached pages");
                    }
                }
            }
            assertEquals(live.cardinality(), allocator.usedPages(), "used pages");
            assertEquals(PAGES, allocator.usedPages() + allocator.cachedPages() + allocator.freePages(), "pages add up");
            for (int p = 0; p < PAGES; p++) {
                assertEquals(live.get(p), allocator.isInUse(BASE + p * IovaAllocator.PAGE_SIZE), "page " + p + " in use");
            }
        }
        for (Range r : ranges) {
            allocator.freeCached(r.iova(), r.pages());
        }
        assertEquals(0, allocator.usedPages(), "everything freed");
        allocator.drainCaches();
        assertEquals(PAGES, allocator.freePages(), "drained, the whole window is free");
        Statistics.label("reused from a cache").collect(reused == 0 ? "none" : "some");
    }

    private static boolean hasFreeRun(BitSet used, int pages) {
        int run = 0;
        for (int p = 0; p < PAGES; p++) {
            run = used.get(p) ? 0 : run + 1;
            if (run >= pages) {
                return true;
            }
        }
        return false;
    }

    @Provide
    Arbitrary<List<Op>> operations() {
        return Arbitraries.<Op>frequencyOf(
                Tuple.of(5, Arbitraries.frequencyOf(Tuple.of(4, Arbitraries.integers().between(1, 4)),
                    Tuple.of(1, Arbitraries.integers().between(5, PAGES))).map(n -> (Op) new Allocate(n))),
                Tuple.of(3, Arbitraries.integers().between(0, 63).map(n -> (Op) new Free(n))),
                Tuple.of(1, Arbitraries.integers().between(0, 63).map(n -> (Op) new FreeAgain(n))))
            .list().ofMinSize(1).ofMaxSize(60);
    }
}

package io.vringj.dma;

import java.util.BitSet;

/**
 * Hands out I/O virtual address ranges in whole 4 KiB pages from a fixed window, as Linux's
 * {@code iova} allocator does for a DMA domain: live ranges never overlap, and a freed range is
 * available again at once (the IOMMU DMA ops decide when to free, which is how the lazy mode
 * keeps an IOVA from being reused before its IOTLB flush).
 *
 * <pre>
 *   window   [base, base + pages * 4096)
 *   inUse    one bit per page (java.util.BitSet; set = allocated, reserved or cached)
 *   cursor   next-fit: the search starts after the last allocation and wraps once
 *
 *   range caches (Linux's IOVA rcache, alloc_iova_fast / free_iova_fast):
 *     order k = 0..5   ranges of 2^k pages (1..32), a LIFO of up to CACHE_DEPTH each
 *     allocateCached(n)  n rounded up to 2^k below 32 pages; pop a cached range of order k,
 *                        else search the bitmap; if that fails, drain every cache and search again
 *     freeCached(iova,n) push onto order k's cache; if it is full, free into the bitmap
 *     cached             one bit per page of a cached range, so a cached range is not "in use"
 *                        and freeing it again is refused
 * </pre>
 *
 * <p>A cached range stays taken in the bitmap (as Linux's cached IOVAs stay in its rbtree), so
 * the steady path of map/unmap never searches. {@link #usedPages()} counts ranges handed out,
 * {@link #cachedPages()} those waiting in the caches.
 *
 * <p>Allocation and freeing allocate no objects. Not thread-safe: the {@link Iommu} that owns
 * it serialises calls.
 */
public final class IovaAllocator {
    /** The page size of I/O virtual addresses. */
    public static final long PAGE_SIZE = 4096;
    /** log2 of {@link #PAGE_SIZE}. */
    public static final int PAGE_SHIFT = 12;

    /** Orders of the range caches: sizes 1, 2, 4, ..., 32 pages (Linux's {@code IOVA_RANGE_CACHE_MAX_SIZE} 6). */
    public static final int CACHE_ORDERS = 6;
    /** Largest range the caches keep, in pages. */
    public static final int MAX_CACHED_PAGES = 1 << (CACHE_ORDERS - 1);
    /**
     * Ranges each order's cache holds: two of Linux's 127-entry magazines (its per-CPU loaded and
     * previous ones), rounded to 256.
     */
    public static final int CACHE_DEPTH = 256;

    private final long base;
    private final int pages;
    private final BitSet inUse;
    private int cursor;
    private int usedPages;

    // range caches: order k holds first pages (relative to base) of free ranges of 2^k pages
    private final int[][] cache = new int[CACHE_ORDERS][CACHE_DEPTH];
    private final int[] cacheCount = new int[CACHE_ORDERS];
    /** One bit per page of a cached range. */
    private final long[] cached;
    private int cachedPages;

    /**
     * @param base the first IOVA of the window, page-aligned and not 0 (0 stays unused so a
     *     bus address of 0 is never handed out)
     * @param size the window's size in bytes, a positive multiple of 4 KiB, at most 2^43
     * @throws IllegalArgumentException if the window is misaligned, empty, too large, or runs
     *     past 2^64
     */
    public IovaAllocator(long base, long size) {
        if (base == 0 || (base & (PAGE_SIZE - 1)) != 0) {
            throw new IllegalArgumentException("IOVA window base 0x" + Long.toHexString(base)
                + " must be a non-zero multiple of 4096");
        }
        if (size <= 0 || (size & (PAGE_SIZE - 1)) != 0 || (size >>> PAGE_SHIFT) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("IOVA window size " + size + " must be a positive multiple of 4096 of at most "
                + "2^31 pages");
        }
        if (Long.compareUnsigned(base, -size) > 0) {
            throw new IllegalArgumentException("IOVA window [0x" + Long.toHexString(base) + ", +0x" + Long.toHexString(size)
                + ") runs past 2^64");
        }
        this.base = base;
        this.pages = (int) (size >>> PAGE_SHIFT);
        this.inUse = new BitSet(pages);
        this.cached = new long[(pages + 63) >>> 6];
    }

    /** @return the first IOVA of the window */
    public long base() {
        return base;
    }

    /** @return the window's size in bytes */
    public long size() {
        return (long) pages << PAGE_SHIFT;
    }

    /** @return how many pages are allocated or reserved (cached ranges not counted) */
    public int usedPages() {
        return usedPages;
    }

    /** @return how many pages wait in the range caches */
    public int cachedPages() {
        return cachedPages;
    }

    /** @return how many pages are free (cached ranges not counted) */
    public int freePages() {
        return pages - usedPages - cachedPages;
    }

    /**
     * Allocates a range through the range caches, as Linux's {@code alloc_iova_fast}: below
     * {@value #MAX_CACHED_PAGES} pages the size is rounded up to a power of two and a range of
     * that size freed earlier is reused before the bitmap is searched.
     *
     * @param count pages, at least 1
     * @return the first IOVA of a range of {@link #cachedSize(int) cachedSize(count)} pages, or
     *     {@code 0} if none is free even after the caches were drained
     */
    public long allocateCached(int count) {
        int size = cachedSize(count);
        if (size <= MAX_CACHED_PAGES) {
            int order = Integer.numberOfTrailingZeros(size);
            int n = cacheCount[order];
            if (n > 0) {
                int start = cache[order][n - 1];
                cacheCount[order] = n - 1;
                markCached(start, size, false);
                cachedPages -= size;
                usedPages += size;
                return base + ((long) start << PAGE_SHIFT);
            }
        }
        long iova = allocate(size);
        if (iova == 0 && cachedPages > 0) {
            // the caches may hold the room: give it back to the bitmap and search again (Linux's
            // free_cpu_cached_iovas / free_global_cached_iovas before its retry)
            drainCaches();
            iova = allocate(size);
        }
        return iova;
    }

    /**
     * Frees a range {@link #allocateCached(int)} returned, into its size's cache if there is room
     * (Linux's {@code free_iova_fast}), else into the bitmap.
     *
     * @param iova the range's first IOVA
     * @param count the pages asked of {@link #allocateCached(int)} (rounded the same way here)
     * @throws IllegalArgumentException if the range is outside the window, misaligned, or not
     *     wholly in use (a double free); nothing is freed then
     */
    public void freeCached(long iova, int count) {
        int size = cachedSize(count);
        if (size > MAX_CACHED_PAGES) {
            free(iova, size);
            return;
        }
        int start = checkRange(iova, size, "free");
        int firstFree = inUse.nextClearBit(start);
        if (firstFree < start + size || isCached(start, size)) {
            throw new IllegalArgumentException(String.format(
                "free of IOVA range [0x%x, +%d pages): it is not allocated (freed twice?)", iova, size));
        }
        int order = Integer.numberOfTrailingZeros(size);
        int n = cacheCount[order];
        if (n == CACHE_DEPTH) {
            free(iova, size);
            return;
        }
        cache[order][n] = start;
        cacheCount[order] = n + 1;
        markCached(start, size, true);
        usedPages -= size;
        cachedPages += size;
    }

    /**
     * @param count pages asked for
     * @return the pages {@link #allocateCached(int)} takes for them: the next power of two below
     *     {@value #MAX_CACHED_PAGES} pages, {@code count} itself from there on
     */
    public static int cachedSize(int count) {
        if (count < 1) {
            throw new IllegalArgumentException("IOVA allocation of " + count + " pages; it must be at least 1");
        }
        if (count == 1 || count >= MAX_CACHED_PAGES) {
            return count;
        }
        // count - 1 >= 1: its highest bit doubled is the least power of two >= count
        return Integer.highestOneBit(count - 1) << 1;
    }

    /** Gives every cached range back to the bitmap. */
    public void drainCaches() {
        for (int order = 0; order < CACHE_ORDERS; order++) {
            int size = 1 << order;
            for (int i = cacheCount[order] - 1; i >= 0; i--) {
                int start = cache[order][i];
                markCached(start, size, false);
                inUse.clear(start, start + size);
            }
            cachedPages -= cacheCount[order] * size;
            cacheCount[order] = 0;
        }
    }

    private void markCached(int start, int size, boolean on) {
        for (int p = start; p < start + size; p++) {
            if (on) {
                cached[p >>> 6] |= 1L << p;
            } else {
                cached[p >>> 6] &= ~(1L << p);
            }
        }
    }

    private boolean isCached(int start, int size) {
        for (int p = start; p < start + size; p++) {
            if ((cached[p >>> 6] & (1L << p)) != 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * Allocates {@code count} contiguous pages.
     *
     * @param count pages, at least 1
     * @return the first IOVA of the range, or {@code 0} if no free run is long enough
     */
    public long allocate(int count) {
        if (count < 1) {
            throw new IllegalArgumentException("IOVA allocation of " + count + " pages; it must be at least 1");
        }
        int start = find(cursor, pages, count);
        if (start < 0) {
            // wrap once: runs starting before the cursor were not looked at yet
            start = cursor > 0 ? find(0, cursor, count) : -1;
            if (start < 0) {
                return 0;
            }
        }
        inUse.set(start, start + count);
        usedPages += count;
        cursor = start + count == pages ? 0 : start + count;
        return base + ((long) start << PAGE_SHIFT);
    }

    /** First clear run of {@code count} bits starting in [from, limit), or -1. */
    private int find(int from, int limit, int count) {
        int p = from;
        while (p < limit) {
            int clear = inUse.nextClearBit(p);
            if (clear >= pages || clear > pages - count) {
                return -1;
            }
            int set = inUse.nextSetBit(clear);
            if (set < 0 || set - clear >= count) {
                return clear;
            }
            p = set;
        }
        return -1;
    }

    /**
     * Frees a range {@link #allocate(int)} returned.
     *
     * @param iova the range's first IOVA
     * @param count its pages
     * @throws IllegalArgumentException if the range is outside the window, misaligned, or not
     *     wholly in use (a double free); nothing is freed then
     */
    public void free(long iova, int count) {
        int start = checkRange(iova, count, "free");
        int firstFree = inUse.nextClearBit(start);
        if (firstFree < start + count) {
            throw new IllegalArgumentException(String.format(
                "free of IOVA range [0x%x, +%d pages): page 0x%x is not allocated (freed twice?)", iova, count,
                base + ((long) firstFree << PAGE_SHIFT)));
        }
        if (isCached(start, count)) {
            // taken in the bitmap, but by a range waiting in a cache: not the caller's to free
            throw new IllegalArgumentException(String.format(
                "free of IOVA range [0x%x, +%d pages): part of it waits in a range cache (freed twice?)", iova, count));
        }
        inUse.clear(start, start + count);
        usedPages -= count;
    }

    /**
     * Takes a given range out of circulation (for identity mappings that must sit at fixed
     * addresses).
     *
     * @param iova the range's first IOVA, page-aligned
     * @param count its pages
     * @throws IllegalArgumentException if any page of it is already in use, or it leaves the
     *     window
     */
    public void reserve(long iova, int count) {
        int start = checkRange(iova, count, "reserve");
        int firstUsed = inUse.nextSetBit(start);
        if (firstUsed >= 0 && firstUsed < start + count && cachedPages > 0) {
            // the range may be taken only by cached ranges: give them back first
            drainCaches();
            firstUsed = inUse.nextSetBit(start);
        }
        if (firstUsed >= 0 && firstUsed < start + count) {
            throw new IllegalArgumentException(String.format(
                "reserve of IOVA range [0x%x, +%d pages): page 0x%x is already in use", iova, count,
                base + ((long) firstUsed << PAGE_SHIFT)));
        }
        inUse.set(start, start + count);
        usedPages += count;
    }

    /**
     * @param iova an IOVA
     * @return whether the page holding it is allocated or reserved (a cached range is not)
     */
    public boolean isInUse(long iova) {
        long off = iova - base;
        if (Long.compareUnsigned(off, size()) >= 0) {
            return false;
        }
        int page = (int) (off >>> PAGE_SHIFT);
        return inUse.get(page) && !isCached(page, 1);
    }

    private int checkRange(long iova, int count, String op) {
        long off = iova - base;
        if (count < 1 || (iova & (PAGE_SIZE - 1)) != 0 || Long.compareUnsigned(off, size()) >= 0
            || (off >>> PAGE_SHIFT) + count > pages) {
            throw new IllegalArgumentException(String.format(
                "%s of IOVA range [0x%x, +%d pages): not a page-aligned range inside the window [0x%x, +0x%x)", op, iova,
                count, base, size()));
        }
        return (int) (off >>> PAGE_SHIFT);
    }

    @Override
    public String toString() {
        return String.format("IovaAllocator[0x%x, +0x%x), %d of %d pages used, %d cached", base, size(), usedPages,
            pages, cachedPages);
    }
}

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
 *   inUse    one bit per page (java.util.BitSet; set = allocated or reserved)
 *   cursor   next-fit: the search starts after the last allocation and wraps once
 * </pre>
 *
 * <p>Allocation and freeing allocate no objects. Not thread-safe: the {@link Iommu} that owns
 * it serialises calls.
 */
public final class IovaAllocator {
    /** The page size of I/O virtual addresses. */
    public static final long PAGE_SIZE = 4096;
    /** log2 of {@link #PAGE_SIZE}. */
    public static final int PAGE_SHIFT = 12;

    private final long base;
    private final int pages;
    private final BitSet inUse;
    private int cursor;
    private int usedPages;

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
    }

    /** @return the first IOVA of the window */
    public long base() {
        return base;
    }

    /** @return the window's size in bytes */
    public long size() {
        return (long) pages << PAGE_SHIFT;
    }

    /** @return how many pages are allocated or reserved */
    public int usedPages() {
        return usedPages;
    }

    /** @return how many pages are free */
    public int freePages() {
        return pages - usedPages;
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
     * @return whether the page holding it is allocated or reserved
     */
    public boolean isInUse(long iova) {
        long off = iova - base;
        return Long.compareUnsigned(off, size()) < 0 && inUse.get((int) (off >>> PAGE_SHIFT));
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
        return String.format("IovaAllocator[0x%x, +0x%x), %d of %d pages used", base, size(), usedPages, pages);
    }
}

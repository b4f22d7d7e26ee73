package io.vringj.dma;

/**
 * A 4 KiB I/O page table, as an IOMMU walks it: four levels of 512 entries over a 48-bit IOVA
 * space (9 + 9 + 9 + 9 + 12 bits), each leaf entry holding the guest-physical page and the
 * read/write permission bits of {@link Permission}.
 *
 * <pre>
 *   IOVA  47..39 | 38..30 | 29..21 | 20..12 | 11..0
 *         level0   level1   level2   leaf     offset in page
 *
 *   leaf entry (long):  guest-physical page address (bits 63..12) | START (bit 2) | W (bit 1) | R (bit 0)
 *                       0 = not present; START marks the first page of each map() call, so a
 *                       walk can tell where one mapping ends and the next begins
 * </pre>
 *
 * <p>Intermediate tables are allocated the first time a range under them is mapped and kept
 * afterwards, so mapping a page allocates only when it opens a new 2 MiB region, and unmapping
 * never allocates. Not thread-safe: the {@link Iommu} serialises calls.
 */
public final class IoPageTable {
    /** Bits of IOVA the table covers. */
    public static final int IOVA_BITS = 48;
    private static final int LEVEL_BITS = 9;
    private static final int ENTRIES = 1 << LEVEL_BITS;
    private static final int INDEX_MASK = ENTRIES - 1;
    private static final long PAGE_MASK = IovaAllocator.PAGE_SIZE - 1;
    private static final long PERM_MASK = 3;
    /** Leaf entry bit: the first page of a mapping. */
    public static final long START = 4;

    private final Object[] root = new Object[ENTRIES];
    private long mappedPages;

    /** An empty table: every IOVA faults. */
    public IoPageTable() {
    }

    /** @return how many pages are mapped */
    public long mappedPages() {
        return mappedPages;
    }

    /**
     * Maps {@code pages} pages from {@code iova} to guest-physical {@code gpa}.
     *
     * @param iova page-aligned, below 2^48
     * @param gpa page-aligned guest-physical address
     * @param pages how many pages, at least 1
     * @param permission RO, WO or RW
     * @throws IllegalArgumentException if an address is misaligned or out of range, the
     *     permission is NONE, or a page is already mapped (nothing is changed then)
     */
    public void map(long iova, long gpa, long pages, Permission permission) {
        checkRange(iova, pages, "map");
        if ((gpa & PAGE_MASK) != 0) {
            throw new IllegalArgumentException("map of IOVA 0x" + Long.toHexString(iova) + " to guest-physical 0x"
                + Long.toHexString(gpa) + ": the guest-physical address must be page-aligned");
        }
        if (permission == Permission.NONE) {
            throw new IllegalArgumentException("map of IOVA 0x" + Long.toHexString(iova) + " with permission NONE");
        }
        for (long i = 0; i < pages; i++) {
            long a = iova + (i << IovaAllocator.PAGE_SHIFT);
            if (lookup(a) != 0) {
                throw new IllegalArgumentException("map of IOVA range [0x" + Long.toHexString(iova) + ", +" + pages
                    + " pages): page 0x" + Long.toHexString(a) + " is already mapped");
            }
        }
        for (long i = 0; i < pages; i++) {
            long a = iova + (i << IovaAllocator.PAGE_SHIFT);
            leaf(a, true)[index(a, 3)] = (gpa + (i << IovaAllocator.PAGE_SHIFT)) | permission.bits() | (i == 0 ? START : 0);
        }
        mappedPages += pages;
    }

    /**
     * Unmaps {@code pages} pages from {@code iova}.
     *
     * @param iova page-aligned, below 2^48
     * @param pages how many pages, at least 1
     * @throws IllegalArgumentException if any page of the range is not mapped (nothing is
     *     changed then)
     */
    public void unmap(long iova, long pages) {
        checkRange(iova, pages, "unmap");
        for (long i = 0; i < pages; i++) {
            long a = iova + (i << IovaAllocator.PAGE_SHIFT);
            if (lookup(a) == 0) {
                throw new IllegalArgumentException("unmap of IOVA range [0x" + Long.toHexString(iova) + ", +" + pages
                    + " pages): page 0x" + Long.toHexString(a) + " is not mapped");
            }
        }
        for (long i = 0; i < pages; i++) {
            long a = iova + (i << IovaAllocator.PAGE_SHIFT);
            leaf(a, false)[index(a, 3)] = 0;
        }
        mappedPages -= pages;
    }

    /**
     * Walks the table for one IOVA.
     *
     * @param iova any IOVA
     * @return the leaf entry of its page (guest-physical page | permission bits), or 0 if not
     *     mapped
     */
    public long lookup(long iova) {
        if ((iova >>> IOVA_BITS) != 0) {
            return 0;
        }
        long[] leaf = leaf(iova, false);
        return leaf == null ? 0 : leaf[index(iova, 3)];
    }

    /**
     * @param entry a leaf entry from {@link #lookup(long)}
     * @return the guest-physical page address it holds
     */
    public static long pageOf(long entry) {
        return entry & ~PAGE_MASK;
    }

    /**
     * @param entry a leaf entry from {@link #lookup(long)}
     * @return whether it is the first page of a mapping
     */
    public static boolean isMappingStart(long entry) {
        return (entry & START) != 0;
    }

    /**
     * @param entry a leaf entry from {@link #lookup(long)}
     * @return its permission
     */
    public static Permission permissionOf(long entry) {
        return Permission.ofBits((int) (entry & PERM_MASK));
    }

    private static int index(long iova, int level) {
        return (int) (iova >>> (IovaAllocator.PAGE_SHIFT + LEVEL_BITS * (3 - level))) & INDEX_MASK;
    }

    private long[] leaf(long iova, boolean create) {
        Object[] table = root;
        for (int level = 0; level < 2; level++) {
            int i = index(iova, level);
            Object nextLevel = table[i];
            if (nextLevel == null) {
                if (!create) {
                    return null;
                }
                nextLevel = new Object[ENTRIES];
                table[i] = nextLevel;
            }
            table = (Object[]) nextLevel;
        }
        int i = index(iova, 2);
        long[] leaf = (long[]) table[i];
        if (leaf == null && create) {
            leaf = new long[ENTRIES];
            table[i] = leaf;
        }
        return leaf;
    }

    private static void checkRange(long iova, long pages, String op) {
        if ((iova & PAGE_MASK) != 0 || pages < 1 || (iova >>> IOVA_BITS) != 0
            || pages > ((1L << IOVA_BITS) - iova) >>> IovaAllocator.PAGE_SHIFT) {
            throw new IllegalArgumentException(op + " of IOVA range [0x" + Long.toHexString(iova) + ", +" + pages
                + " pages): it must be page-aligned, at least one page, and below 2^48");
        }
    }
}

package io.vringj.dma;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.MemoryRegion;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A model of one IOMMU domain: the I/O address space a device sees. It owns an
 * {@link IovaAllocator} (the IOVA window), an {@link IoPageTable} (IOVA page → guest-physical
 * page with RO/WO/RW), and the device IOTLBs that cache its translations (registered as
 * {@link IotlbInvalidator}s).
 *
 * <pre>
 *   driver:  IommuDmaOps.map → allocate IOVA pages → write page table entries → bus address
 *   device:  IOTLB miss → resolve(iova) → UPDATE {iova, size, uaddr = guest-physical, perm}
 *   driver:  IommuDmaOps.unmap → clear entries → invalidate device IOTLBs → free IOVA
 * </pre>
 *
 * <p>An identity domain ({@link #setIdentity()}, used by {@code IommuDmaOps} in
 * {@code PASSTHROUGH} mode, Linux's {@code iommu=pt}) translates every guest-physical address
 * to itself and has no page table.
 *
 * <p><b>Permanent identity ranges.</b> {@link #identityMap(long, long)} maps a guest-physical
 * range 1:1 for good: IOVA = guest-physical address, RW, never unmapped. The swiotlb module maps
 * its bounce pool this way, so bounce addresses are valid bus addresses behind the IOMMU and a
 * device IOTLB resolves them like any other mapping. The range is taken out of the IOVA window
 * if it overlaps it.
 *
 * <p>Thread-safe: every method may be called from any thread. Page table and allocator
 * changes are serialised on this object's monitor (which {@link IommuDmaOps} also holds for its
 * own bookkeeping, so a map or an unmap takes one lock); {@link #invalidateDeviceTlbs(long, long)} runs without
 * that lock, so a device worker that resolves a miss while an invalidation waits for it cannot
 * deadlock.
 */
public final class Iommu implements IotlbResolver {
    /** Largest UPDATE {@link #resolve} gives for one miss: 2 MiB, like a huge page. */
    public static final long MAX_RESOLVE_SIZE = 2L << 20;
    private static final long PAGE = IovaAllocator.PAGE_SIZE;

    private final GuestMemory memory;
    private final IovaAllocator iova;
    private final IoPageTable pageTable = new IoPageTable();
    /** Registered device IOTLBs, replaced as a whole on registration; volatile so invalidations need no lock or iterator. */
    private volatile IotlbInvalidator[] deviceTlbs = new IotlbInvalidator[0];
    private volatile boolean identity;

    /**
     * A translating domain.
     *
     * @param memory the guest memory mappings point into
     * @param iovaBase the first IOVA handed out, page-aligned and non-zero
     * @param iovaSize the IOVA window's size, a multiple of 4 KiB; its end must stay below 2^48
     */
    public Iommu(GuestMemory memory, long iovaBase, long iovaSize) {
        this.memory = Objects.requireNonNull(memory, "memory");
        this.iova = new IovaAllocator(iovaBase, iovaSize);
        if (Long.compareUnsigned(iovaBase + iovaSize, 1L << IoPageTable.IOVA_BITS) > 0) {
            throw new IllegalArgumentException("IOVA window [0x" + Long.toHexString(iovaBase) + ", +0x"
                + Long.toHexString(iovaSize) + ") reaches past the page table's 2^48");
        }
    }

    /** @return the guest memory behind this domain */
    public GuestMemory memory() {
        return memory;
    }

    /** @return whether this is an identity (pass-through) domain */
    public boolean isIdentity() {
        return identity;
    }

    /**
     * Turns this domain into an identity domain (pass-through). Only before anything was mapped.
     *
     * @throws IllegalStateException if mappings exist
     */
    public synchronized void setIdentity() {
        if (pageTable.mappedPages() != 0 || iova.usedPages() != 0) {
            throw new IllegalStateException("cannot make a domain with " + pageTable.mappedPages()
                + " mapped pages an identity domain");
        }
        identity = true;
    }

    /**
     * Registers a device IOTLB to be invalidated when mappings go away.
     *
     * @param deviceTlb where invalidations go
     */
    public synchronized void addDeviceTlb(IotlbInvalidator deviceTlb) {
        Objects.requireNonNull(deviceTlb, "deviceTlb");
        IotlbInvalidator[] now = deviceTlbs;
        IotlbInvalidator[] next = java.util.Arrays.copyOf(now, now.length + 1);
        next[now.length] = deviceTlb;
        // volatile write: pairs with the volatile read in invalidateDeviceTlbs()
        deviceTlbs = next;
    }

    /**
     * Allocates IOVA pages for {@code [gpa, gpa + length)} and maps them.
     *
     * @param gpa the guest-physical address of the buffer
     * @param length its length, at least 1
     * @param permission RO, WO or RW
     * @return the bus address: the IOVA of the buffer's first byte (same offset in its page)
     * @throws DmaMappingException NO_SPACE if the IOVA window has no free run long enough
     */
    public synchronized long map(long gpa, long length, Permission permission) throws DmaMappingException {
        checkTranslating("map");
        long offset = gpa & (PAGE - 1);
        long pages = pagesSpanned(gpa, length);
        if (pages > Integer.MAX_VALUE) {
            throw new DmaMappingException(DmaMappingException.Reason.TOO_LARGE, "buffer of " + length
                + " bytes needs " + pages + " IOVA pages");
        }
        // through the range caches: the steady path of map/unmap reuses a freed range, no search
        long base = iova.allocateCached((int) pages);
        if (base == 0) {
            throw new DmaMappingException(DmaMappingException.Reason.NO_SPACE, "no run of " + pages
                + " free IOVA pages for " + length + " bytes at guest-physical 0x" + Long.toHexString(gpa) + " ("
                + iova + ")");
        }
        pageTable.map(base, gpa - offset, pages, permission);
        return base + offset;
    }

    /**
     * Clears the page table entries of a mapping but keeps its IOVA allocated (the caller frees
     * it with {@link #freeIova} once device IOTLBs were invalidated).
     *
     * @param busAddress what {@link #map} returned
     * @param length the mapped length
     */
    synchronized void clearEntries(long busAddress, long length) {
        pageTable.unmap(busAddress & ~(PAGE - 1), pagesSpanned(busAddress, length));
    }

    /**
     * Returns a mapping's IOVA pages to the allocator.
     *
     * @param busAddress what {@link #map} returned
     * @param length the mapped length
     */
    synchronized void freeIova(long busAddress, long length) {
        iova.freeCached(busAddress & ~(PAGE - 1), (int) pagesSpanned(busAddress, length));
    }

    /**
     * Returns several mappings' IOVA pages to the allocator under one lock, in the order given
     * (the allocator's caches hand out the last one freed first).
     *
     * @param busAddresses what {@link #map} returned, one per mapping
     * @param lengths the mapped lengths
     * @param n how many
     */
    synchronized void freeIovas(long[] busAddresses, long[] lengths, int n) {
        for (int i = 0; i < n; i++) {
            iova.freeCached(busAddresses[i] & ~(PAGE - 1), (int) pagesSpanned(busAddresses[i], lengths[i]));
        }
    }

    /**
     * Invalidates {@code [busAddress, busAddress + length)}, widened to whole pages, in every
     * registered device IOTLB, and returns once each has stopped using it.
     *
     * @param busAddress the first IOVA
     * @param length bytes, at least 1
     */
    public void invalidateDeviceTlbs(long busAddress, long length) {
        long start = busAddress & ~(PAGE - 1);
        long size = pagesSpanned(busAddress, length) * PAGE;
        // volatile read: pairs with the write in addDeviceTlb()
        IotlbInvalidator[] tlbs = deviceTlbs;
        for (int i = 0; i < tlbs.length; i++) {
            tlbs[i].invalidate(start, size);
        }
    }

    /**
     * Maps a guest-physical range to itself for good (IOVA = guest-physical address, RW). See
     * the class comment; the swiotlb bounce pool is mapped this way. In an identity domain
     * every range already is, and this only checks the range.
     *
     * @param gpa page-aligned guest-physical address
     * @param size a positive multiple of 4 KiB
     * @throws IllegalArgumentException if the range is misaligned, not wholly inside one guest
     *     memory region, or overlaps IOVAs already in use
     */
    public synchronized void identityMap(long gpa, long size) {
        if ((gpa & (PAGE - 1)) != 0 || size <= 0 || (size & (PAGE - 1)) != 0) {
            throw new IllegalArgumentException(String.format(
                "identity map of [0x%x, +0x%x): address and size must be page-aligned and the size positive", gpa, size));
        }
        if (memory.regionIndexOf(gpa, size) < 0) {
            throw new IllegalArgumentException(String.format(
                "identity map of [0x%x, +0x%x): not wholly inside one region of %s", gpa, size, memory.regions()));
        }
        if (identity) {
            return;
        }
        long pages = size / PAGE;
        for (long p = 0; p < pages; p++) {
            if (pageTable.lookup(gpa + p * PAGE) != 0) {
                throw new IllegalArgumentException(String.format(
                    "identity map of [0x%x, +0x%x): IOVA 0x%x is already mapped", gpa, size, gpa + p * PAGE));
            }
        }
        // the part inside the IOVA window is reserved there, so map() never hands it out
        long winStart = iova.base();
        long winEnd = winStart + iova.size();
        long lo = Math.max(gpa, winStart);
        long hi = Math.min(gpa + size, winEnd);
        if (lo < hi) {
            iova.reserve(lo, (int) ((hi - lo) / PAGE));
        }
        pageTable.map(gpa, gpa, pages, Permission.RW);
    }

    /**
     * What the IOMMU answers a device IOTLB miss with: an UPDATE for the mapping that holds
     * {@code iova}, from the page of {@code iova} to the end of that mapping (never into the
     * next one, whose lifetime differs), at most {@link #MAX_RESOLVE_SIZE}. Its {@code uaddr} is
     * the guest-physical address. In an identity domain: the guest-physical range itself, RW,
     * within its region and its 2 MiB block.
     *
     * @param address the IOVA that missed
     * @return the UPDATE, or {@code null} if {@code address} is not mapped (the device's
     *     access is then a fault)
     */
    @Override
    public synchronized IotlbMessage resolve(long address) {
        if (identity) {
            int r = memory.regionIndexOf(address, 1);
            if (r < 0) {
                return null;
            }
            long start = identityBlockStart(address, memory.region(r));
            return IotlbMessage.update(start, identityBlockEnd(address, memory.region(r)) - start, start, Permission.RW);
        }
        long page = address & ~(PAGE - 1);
        long entry = pageTable.lookup(page);
        return entry == 0 ? null : runFrom(page, entry);
    }

    /**
     * {@link #resolve(long)} applied straight to {@code iotlb}, without building a message. The
     * UPDATE is applied under this IOMMU's lock, so it is ordered with the page table: an unmap
     * that clears the entries after it also invalidates it, and one that cleared them before
     * makes this a fault (an UPDATE can never revive an unmapped range).
     */
    @Override
    public synchronized boolean resolveInto(long address, DeviceIotlb iotlb) {
        if (identity) {
            int r = memory.regionIndexOf(address, 1);
            if (r < 0) {
                return false;
            }
            long start = identityBlockStart(address, memory.region(r));
            iotlb.update(start, identityBlockEnd(address, memory.region(r)) - start, start, Permission.RW);
            return true;
        }
        long page = address & ~(PAGE - 1);
        long entry = pageTable.lookup(page);
        if (entry == 0) {
            return false;
        }
        iotlb.update(page, runPages(page, entry) * PAGE, IoPageTable.pageOf(entry), IoPageTable.permissionOf(entry));
        return true;
    }

    /** The first address of {@code address}'s 2 MiB block within its region (identity domain). */
    private static long identityBlockStart(long address, MemoryRegion region) {
        return Math.max(address & ~(MAX_RESOLVE_SIZE - 1), region.guestPhysicalAddress());
    }

    /** The end of {@code address}'s 2 MiB block within its region (identity domain). */
    private static long identityBlockEnd(long address, MemoryRegion region) {
        long block = address & ~(MAX_RESOLVE_SIZE - 1);
        return region.end() == 0 ? block + MAX_RESOLVE_SIZE : Math.min(block + MAX_RESOLVE_SIZE, region.end());
    }

    /** The UPDATE for the run of one mapping's pages starting at {@code page}. Under the lock. */
    private IotlbMessage runFrom(long page, long entry) {
        return IotlbMessage.update(page, runPages(page, entry) * PAGE, IoPageTable.pageOf(entry),
            IoPageTable.permissionOf(entry));
    }

    /** How many pages of one mapping run from {@code page} (contiguous, same permission). Under the lock. */
    private long runPages(long page, long entry) {
        long gpa = IoPageTable.pageOf(entry);
        Permission perm = IoPageTable.permissionOf(entry);
        long pages = 1;
        while (pages * PAGE < MAX_RESOLVE_SIZE) {
            long next = pageTable.lookup(page + pages * PAGE);
            if (next == 0 || IoPageTable.isMappingStart(next) || IoPageTable.pageOf(next) != gpa + pages * PAGE
                || IoPageTable.permissionOf(next) != perm) {
                break;
            }
            pages++;
        }
        return pages;
    }

    /**
     * A miss answered with prefetch: the UPDATE {@link #resolve(long)} gives, plus one for every
     * other mapping that starts in the {@code windowPages} pages after it (mappings made
     * together tend to be used together). The caller must deliver these UPDATEs to the device
     * IOTLB in order with invalidations, i.e. hold the channel's lock from this call until they
     * are applied, or a late UPDATE could revive an unmapped range.
     *
     * @param address the IOVA that missed
     * @param windowPages how many pages after the first mapping to look at
     * @return the UPDATEs, empty if {@code address} is not mapped
     */
    public synchronized List<IotlbMessage> resolveAround(long address, int windowPages) {
        List<IotlbMessage> out = new ArrayList<>();
        IotlbMessage first = resolve(address);
        if (first == null) {
            return out;
        }
        out.add(first);
        if (identity) {
            return out;
        }
        long end = first.iova() + first.size() + (long) windowPages * PAGE;
        for (long page = first.iova() + first.size(); Long.compareUnsigned(page, end) < 0; page += PAGE) {
            long entry = pageTable.lookup(page);
            if (entry != 0 && IoPageTable.isMappingStart(entry)) {
                IotlbMessage run = runFrom(page, entry);
                out.add(run);
                page += run.size() - PAGE;
            }
        }
        return out;
    }

    /**
     * Walks the page table for one address, as the IOMMU hardware would.
     *
     * @param address an IOVA
     * @return the guest-physical address it maps to, or {@code -1} if it is not mapped
     */
    public synchronized long translate(long address) {
        if (identity) {
            return memory.regionIndexOf(address, 1) < 0 ? -1 : address;
        }
        long entry = pageTable.lookup(address);
        return entry == 0 ? -1 : IoPageTable.pageOf(entry) | (address & (PAGE - 1));
    }

    /**
     * @param address an IOVA
     * @return the permission of its page, NONE if it is not mapped
     */
    public synchronized Permission permission(long address) {
        if (identity) {
            return memory.regionIndexOf(address, 1) < 0 ? Permission.NONE : Permission.RW;
        }
        long entry = pageTable.lookup(address);
        return entry == 0 ? Permission.NONE : IoPageTable.permissionOf(entry);
    }

    /**
     * @param busAddress the first IOVA
     * @param length bytes, at least 1
     * @return whether every page of the range is mapped
     */
    public synchronized boolean isMapped(long busAddress, long length) {
        if (identity) {
            return memory.regionIndexOf(busAddress, length) >= 0;
        }
        if (length <= 0) {
            return false;
        }
        long start = busAddress & ~(PAGE - 1);
        long pages = pagesSpanned(busAddress, length);
        for (long p = 0; p < pages; p++) {
            if (pageTable.lookup(start + p * PAGE) == 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * @param address an IOVA
     * @return whether its page is allocated in (or reserved from) the IOVA window
     */
    public synchronized boolean isIovaInUse(long address) {
        return iova.isInUse(address);
    }

    /** @return how many IOVA pages are allocated or reserved (ranges waiting in the allocator's caches not counted) */
    public synchronized int usedIovaPages() {
        return iova.usedPages();
    }

    /** @return how many IOVA pages wait in the allocator's range caches for reuse */
    public synchronized int cachedIovaPages() {
        return iova.cachedPages();
    }

    /** @return how many pages the page table maps */
    public synchronized long mappedPages() {
        return pageTable.mappedPages();
    }

    private void checkTranslating(String op) {
        if (identity) {
            throw new IllegalStateException(op + " on an identity (pass-through) domain: bus address = guest-physical");
        }
    }

    /** Pages touched by {@code [address, address + length)}; length ≥ 1 and below 2^63 so no overflow. */
    static long pagesSpanned(long address, long length) {
        long offset = address & (PAGE - 1);
        return (offset + length + PAGE - 1) >>> IovaAllocator.PAGE_SHIFT;
    }

    @Override
    public String toString() {
        return identity ? "Iommu[identity]" : "Iommu[" + iova + ", " + pageTable.mappedPages() + " pages mapped]";
    }
}

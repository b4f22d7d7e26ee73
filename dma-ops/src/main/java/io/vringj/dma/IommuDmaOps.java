package io.vringj.dma;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.MemoryAccessException;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.function.LongSupplier;
import org.agrona.collections.Long2LongHashMap;

/**
 * The DMA API behind an IOMMU, after Linux's {@code dma-iommu.c}: each map allocates I/O
 * virtual addresses from the {@link Iommu}'s window and writes page table entries whose
 * permission comes from the direction ({@code TO_DEVICE} → RO, {@code FROM_DEVICE} → WO,
 * {@code BIDIRECTIONAL} → RW). What happens on unmap depends on the {@link Mode}:
 *
 * <pre>
 *   STRICT       unmap: clear entries → invalidate device IOTLBs (wait) → free IOVA → return
 *   LAZY         unmap: clear entries → queue {IOVA, time}; flush when the queue holds
 *                flushQueueSize ranges, the oldest is flushTimeout old (looked at on every
 *                AGE_CHECK_INTERVAL-th map, where Linux runs a timer), on flush(), or when an
 *                allocation fails: invalidate the queued ranges, touching ones merged into one
 *                invalidation (Linux flushes the whole domain once per batch) → free their IOVAs
 *   PASSTHROUGH  identity (iommu=pt): bus address = guest-physical, no page table, no IOTLB flushes
 * </pre>
 *
 * <p>In LAZY mode an unmapped IOVA is never handed out again before the flush that invalidated
 * it; in the meantime the device may still reach the old buffer through a stale IOTLB entry
 * (the trade-off Linux makes for speed). STRICT closes that window on every unmap.
 *
 * <p>IOVAs come from the {@link IovaAllocator}'s range caches (Linux's rcache): a freed range
 * is handed out again before the allocator searches, so the steady path of map and unmap
 * searches nothing and allocates nothing.
 *
 * <p>Live mappings are remembered by bus address, so an unmap of an unknown address, with the
 * wrong length or direction, or a second unmap is refused with a message that names the
 * address. In PASSTHROUGH mode, as with {@link DirectDmaOps}, only the range is checked.
 * Syncs only check the range: memory is coherent in this model.
 *
 * <p>Thread-safe: any number of driver threads may map and unmap; device IOTLB
 * invalidations run without a lock held. The live set, the flush queue and the counters are
 * guarded by the {@link Iommu}'s monitor, the lock its page table and allocator take anyway, so a
 * map or an unmap takes one lock.
 */
public final class IommuDmaOps implements DmaOps {
    /** How unmapped IOVAs are retired. */
    public enum Mode {
        /** Every unmap invalidates device IOTLBs before it returns. */
        STRICT,
        /** Unmapped IOVAs are invalidated and freed in batches (Linux's flush queue). */
        LAZY,
        /** No translation: bus address = guest-physical address ({@code iommu=pt}). */
        PASSTHROUGH
    }

    /** Default flush-queue size for LAZY mode (Linux's {@code IOVA_FQ_SIZE} is 256). */
    public static final int DEFAULT_FLUSH_QUEUE_SIZE = 256;
    /** Default age at which LAZY mode flushes, 10 ms (Linux's {@code IOVA_FQ_TIMEOUT}). */
    public static final long DEFAULT_FLUSH_TIMEOUT_NANOS = 10_000_000L;

    private static final long NO_MAPPING = -1;
    /**
     * LAZY: a map looks at the oldest queued range's age once per this many maps. The clock costs
     * 20 to 200 ns a read (the latter on VMs), more than the rest of a map; Linux looks at the age
     * from a timer, never on the map path.
     */
    public static final int AGE_CHECK_INTERVAL = 16;
    /** Bits of a flush key that hold a range's page count. */
    private static final int KEY_PAGES_BITS = 21;
    /** {@link DmaDirection#values()} once: the call clones the array every time. */
    private static final DmaDirection[] DIRECTIONS = DmaDirection.values();

    private final Iommu iommu;
    private final GuestMemory memory;
    private final Mode mode;
    private final DirectDmaOps.CoherentAllocator coherent;
    private final LongSupplier clock;
    private final long flushTimeoutNanos;

    /** Live mappings: bus address → (length &lt;&lt; 2) | direction ordinal. Guarded by the Iommu. */
    private final Long2LongHashMap live = new Long2LongHashMap(NO_MAPPING);

    // LAZY flush queue, a ring of (bus address, length, time); guarded by the Iommu
    private final long[] fqBus;
    private final long[] fqLength;
    private final long[] fqTime;
    private int fqHead;
    private int fqCount;
    /** Maps since the last age check. Guarded by the Iommu. */
    private int mapsSinceAgeCheck;
    // ranges taken out of the queue by the flush in progress; guarded by flushLock
    private final long[] flushBus;
    private final long[] flushLength;
    /** The flush's ranges as sortable keys: first page &lt;&lt; 21 | pages. Guarded by flushLock. */
    private final long[] flushKey;
    private final Object flushLock = new Object();

    private long maps;
    private long unmaps;
    private long flushes;

    /**
     * IOMMU DMA ops with the default LAZY thresholds and the system clock.
     *
     * @param iommu the domain; a PASSTHROUGH ops turns it into an identity domain
     * @param mode how unmaps are retired
     * @param coherent where coherent memory comes from, or {@code null} for none
     */
    public IommuDmaOps(Iommu iommu, Mode mode, DirectDmaOps.CoherentAllocator coherent) {
        this(iommu, mode, coherent, DEFAULT_FLUSH_QUEUE_SIZE, DEFAULT_FLUSH_TIMEOUT_NANOS, System::nanoTime);
    }

    /**
     * @param iommu the domain; a PASSTHROUGH ops turns it into an identity domain
     * @param mode how unmaps are retired
     * @param coherent where coherent memory comes from, or {@code null} for none
     * @param flushQueueSize LAZY: flush when this many unmapped ranges wait, at least 1
     * @param flushTimeoutNanos LAZY: flush when the oldest waiting range is this old, at least 1
     * @param clock nanosecond clock for the age threshold
     * @throws IllegalStateException if a PASSTHROUGH ops is given a domain with mappings
     */
    public IommuDmaOps(Iommu iommu, Mode mode, DirectDmaOps.CoherentAllocator coherent, int flushQueueSize,
                       long flushTimeoutNanos, LongSupplier clock) {
        this.iommu = Objects.requireNonNull(iommu, "iommu");
        this.memory = iommu.memory();
        this.mode = Objects.requireNonNull(mode, "mode");
        this.coherent = coherent;
        this.clock = Objects.requireNonNull(clock, "clock");
        if (flushQueueSize < 1) {
            throw new IllegalArgumentException("flush queue size " + flushQueueSize + " must be at least 1");
        }
        if (flushTimeoutNanos < 1) {
            throw new IllegalArgumentException("flush timeout " + flushTimeoutNanos + " ns must be at least 1");
        }
        this.flushTimeoutNanos = flushTimeoutNanos;
        int fq = mode == Mode.LAZY ? flushQueueSize : 0;
        fqBus = new long[fq];
        fqLength = new long[fq];
        fqTime = new long[fq];
        flushBus = new long[fq];
        flushLength = new long[fq];
        flushKey = new long[fq];
        if (mode == Mode.PASSTHROUGH) {
            iommu.setIdentity();
        } else if (iommu.isIdentity()) {
            throw new IllegalStateException(mode + " DMA ops need a translating domain; " + iommu + " is an identity domain");
        }
    }

    /** @return the mode */
    public Mode mode() {
        return mode;
    }

    /** @return the IOMMU domain */
    public Iommu iommu() {
        return iommu;
    }

    /**
     * Maps a guest-physical range 1:1 for good; see {@link Iommu#identityMap(long, long)}.
     *
     * @param gpa page-aligned guest-physical address
     * @param size a positive multiple of 4 KiB
     */
    public void identityMap(long gpa, long size) {
        iommu.identityMap(gpa, size);
    }

    @Override
    public long map(MemorySegment buffer, DmaDirection direction) throws DmaMappingException {
        Objects.requireNonNull(direction, "direction");
        long length = buffer.byteSize();
        if (length == 0) {
            throw new DmaMappingException(DmaMappingException.Reason.EMPTY,
                "buffer at native address 0x" + Long.toHexString(buffer.address()) + " has no bytes");
        }
        if (length > 0xFFFF_FFFFL) {
            throw new DmaMappingException(DmaMappingException.Reason.TOO_LARGE,
                "buffer of " + length + " bytes; one mapping holds at most 2^32-1");
        }
        long gpa;
        try {
            gpa = memory.guestPhysicalAddressOf(buffer);
        } catch (MemoryAccessException e) {
            throw new DmaMappingException(DmaMappingException.Reason.NOT_GUEST_MEMORY, e.getMessage());
        }
        if (mode == Mode.PASSTHROUGH) {
            return gpa;
        }
        return mapTranslated(gpa, length, direction);
    }

    private long mapTranslated(long gpa, long length, DmaDirection direction) throws DmaMappingException {
        Permission perm = Permission.of(direction);
        long record = (length << 2) | direction.ordinal();
        long bus;
        boolean flushNow;
        try {
            // one monitor for the page table, the allocator and the live set (the Iommu's own
            // lock, taken again inside map: a recursive enter costs no atomic instruction)
            synchronized (iommu) {
                bus = iommu.map(gpa, length, perm);
                flushNow = recordLocked(bus, record);
            }
        } catch (DmaMappingException e) {
            if (mode != Mode.LAZY || e.reason() != DmaMappingException.Reason.NO_SPACE || pendingFlush() == 0) {
                throw e;
            }
            // retired IOVAs are waiting for their flush: flush now and try once more (as
            // Linux's alloc_iova_fast does when its caches are full)
            flush();
            synchronized (iommu) {
                bus = iommu.map(gpa, length, perm);
                flushNow = recordLocked(bus, record);
            }
        }
        if (flushNow) {
            flush();
        }
        return bus;
    }

    /**
     * Remembers a live mapping and counts it. Under the Iommu's monitor.
     *
     * @return whether LAZY mode's age check says the flush queue is due
     */
    private boolean recordLocked(long bus, long record) {
        live.put(bus, record);
        maps++;
        // the age check rides on the lock the map takes anyway (Linux runs it from a timer)
        return mode == Mode.LAZY && fqCount > 0 && ++mapsSinceAgeCheck >= AGE_CHECK_INTERVAL && ageCheckLocked();
    }

    @Override
    public void unmap(long busAddress, long length, DmaDirection direction) {
        Objects.requireNonNull(direction, "direction");
        if (mode == Mode.PASSTHROUGH) {
            checkGuestRange(busAddress, length, "unmap");
            return;
        }
        boolean flushNow = false;
        synchronized (iommu) {
            long rec = live.get(busAddress);
            if (rec == NO_MAPPING) {
                throw new IllegalArgumentException(String.format(
                    "unmap of bus address 0x%x: no live mapping starts there (never mapped, or unmapped twice)", busAddress));
            }
            long mappedLength = rec >>> 2;
            DmaDirection mappedDirection = DIRECTIONS[(int) (rec & 3)];
            if (mappedLength != length || mappedDirection != direction) {
                throw new IllegalArgumentException(String.format(
                    "unmap of bus address 0x%x with %d bytes %s; it was mapped with %d bytes %s", busAddress, length,
                    direction, mappedLength, mappedDirection));
            }
            live.remove(busAddress);
            unmaps++;
            iommu.clearEntries(busAddress, length);
            if (mode == Mode.LAZY) {
                if (fqCount == fqBus.length) {
                    flushNow = true;
                } else {
                    int slot = wrap(fqHead + fqCount);
                    fqBus[slot] = busAddress;
                    fqLength[slot] = length;
                    if (fqCount == 0) {
                        // a flush empties the whole queue, so only its first range's time is ever
                        // the oldest: the clock is read once per batch, not per unmap
                        fqTime[slot] = clock.getAsLong();
                    }
                    fqCount++;
                    flushNow = fqCount >= fqBus.length;
                    busAddress = 0;
                }
            }
        }
        if (mode == Mode.STRICT) {
            // the device must be done with the range before its IOVA can be handed out again
            iommu.invalidateDeviceTlbs(busAddress, length);
            iommu.freeIova(busAddress, length);
            return;
        }
        if (flushNow) {
            flush();
            if (busAddress != 0) {
                // the queue was full: this range was not queued; retire it strictly
                iommu.invalidateDeviceTlbs(busAddress, length);
                iommu.freeIova(busAddress, length);
            }
        }
    }

    /** A flush-queue index below twice its size, folded back into it (no division on the unmap path). */
    private int wrap(int index) {
        return index >= fqBus.length ? index - fqBus.length : index;
    }

    /** Whether the oldest queued range reached the flush timeout; resets the map count. Under the Iommu's monitor. */
    private boolean ageCheckLocked() {
        mapsSinceAgeCheck = 0;
        return clock.getAsLong() - fqTime[fqHead] >= flushTimeoutNanos;
    }

    /**
     * LAZY mode: invalidates every queued range in the device IOTLBs, then frees their IOVAs.
     * Does nothing in the other modes or when nothing is queued.
     */
    public void flush() {
        if (mode != Mode.LAZY) {
            return;
        }
        synchronized (flushLock) {
            int n;
            synchronized (iommu) {
                n = fqCount;
                for (int i = 0; i < n; i++) {
                    int slot = wrap(fqHead + i);
                    flushBus[i] = fqBus[slot];
                    flushLength[i] = fqLength[slot];
                }
                fqHead = wrap(fqHead + n);
                fqCount = 0;
                if (n > 0) {
                    flushes++;
                }
            }
            invalidateMerged(n);
            // flushKey is sorted now: free from the highest range down, so the allocator's LIFO
            // caches hand the ranges out again lowest first and a device IOTLB, whose entries are
            // sorted by IOVA, appends each new entry instead of shifting all it holds
            for (int i = 0; i < n; i++) {
                long key = flushKey[n - 1 - i];
                flushBus[i] = (key >>> KEY_PAGES_BITS) << IovaAllocator.PAGE_SHIFT;
                flushLength[i] = (key & ((1L << KEY_PAGES_BITS) - 1)) << IovaAllocator.PAGE_SHIFT;
            }
            iommu.freeIovas(flushBus, flushLength, n);
        }
    }

    /**
     * Invalidates the flush's {@code n} ranges with one call per run of touching pages: ranges
     * handed out one after another sit side by side, so a batch of hundreds usually needs one or
     * two invalidations. Pages between runs belong to live mappings and are not invalidated.
     */
    private void invalidateMerged(int n) {
        for (int i = 0; i < n; i++) {
            // an IOVA is below 2^48 (36-bit page number) and a mapping below 2^32 bytes (at most
            // 2^20 + 1 pages, 21 bits): the key fits 57 bits and sorts by first page
            long firstPage = flushBus[i] >>> IovaAllocator.PAGE_SHIFT;
            flushKey[i] = firstPage << KEY_PAGES_BITS | Iommu.pagesSpanned(flushBus[i], flushLength[i]);
        }
        sortKeys(flushKey, n);
        long runStart = -1;
        long runEnd = -1;
        for (int i = 0; i < n; i++) {
            long first = flushKey[i] >>> KEY_PAGES_BITS;
            long end = first + (flushKey[i] & ((1L << KEY_PAGES_BITS) - 1));
            if (first <= runEnd) {
                runEnd = Math.max(runEnd, end);
                continue;
            }
            if (runStart >= 0) {
                iommu.invalidateDeviceTlbs(runStart << IovaAllocator.PAGE_SHIFT, (runEnd - runStart) << IovaAllocator.PAGE_SHIFT);
            }
            runStart = first;
            runEnd = end;
        }
        if (runStart >= 0) {
            iommu.invalidateDeviceTlbs(runStart << IovaAllocator.PAGE_SHIFT, (runEnd - runStart) << IovaAllocator.PAGE_SHIFT);
        }
    }

    /**
     * Sorts {@code keys[0, n)} ascending in place: a heapsort, O(n log n) and allocation-free
     * (Arrays.sort allocates run bookkeeping for input with runs, which a flush queue has).
     */
    static void sortKeys(long[] keys, int n) {
        int sortedTo = 1;
        while (sortedTo < n && keys[sortedTo - 1] <= keys[sortedTo]) {
            sortedTo++;
        }
        if (sortedTo >= n) {
            // the usual flush: ranges mapped one after another, lowest first, retired in order
            return;
        }
        for (int i = n / 2 - 1; i >= 0; i--) {
            siftDown(keys, i, n);
        }
        for (int end = n - 1; end > 0; end--) {
            long top = keys[0];
            keys[0] = keys[end];
            keys[end] = top;
            siftDown(keys, 0, end);
        }
    }

    /** Moves {@code keys[i]} down the max-heap {@code keys[0, n)} to where it belongs. */
    private static void siftDown(long[] keys, int i, int n) {
        long v = keys[i];
        int at = i;
        while (true) {
            // at < n / 2 here, so 2 * at + 1 < n and cannot overflow for an int n
            int child = 2 * at + 1;
            if (child >= n) {
                break;
            }
            if (child + 1 < n && keys[child + 1] > keys[child]) {
                child++;
            }
            if (keys[child] <= v) {
                break;
            }
            keys[at] = keys[child];
            at = child;
        }
        keys[at] = v;
    }

    /** @return LAZY mode: how many unmapped ranges wait for a flush */
    public int pendingFlush() {
        synchronized (iommu) {
            return fqCount;
        }
    }

    /** @return how many maps succeeded (coherent allocations included) */
    public long maps() {
        synchronized (iommu) {
            return maps;
        }
    }

    /** @return how many unmaps succeeded */
    public long unmaps() {
        synchronized (iommu) {
            return unmaps;
        }
    }

    /** @return LAZY mode: how many flushes retired at least one range */
    public long flushes() {
        synchronized (iommu) {
            return flushes;
        }
    }

    /** @return how many mappings are live */
    public int liveMappings() {
        synchronized (iommu) {
            return live.size();
        }
    }

    @Override
    public void syncForCpu(long busAddress, long length, DmaDirection direction) {
        checkMapped(busAddress, length, "syncForCpu");
    }

    @Override
    public void syncForDevice(long busAddress, long length, DmaDirection direction) {
        checkMapped(busAddress, length, "syncForDevice");
    }

    private void checkMapped(long busAddress, long length, String op) {
        if (mode == Mode.PASSTHROUGH) {
            checkGuestRange(busAddress, length, op);
        } else if (!iommu.isMapped(busAddress, length)) {
            throw new IllegalArgumentException(String.format("%s of [0x%x, +%d): not inside a live mapping", op,
                busAddress, length));
        }
    }

    private void checkGuestRange(long busAddress, long length, String op) {
        if (memory.regionIndexOf(busAddress, length) < 0) {
            throw new IllegalArgumentException(String.format("%s of [0x%x, +%d): not a range of guest memory %s", op,
                busAddress, length, memory.regions()));
        }
    }

    /** @return false: memory is coherent in this model, syncs only check the range */
    @Override
    public boolean needsSync(long busAddress) {
        return false;
    }

    @Override
    public CoherentBuffer allocCoherent(long size) throws DmaMappingException {
        if (size <= 0) {
            throw new IllegalArgumentException("coherent allocation of " + size + " bytes; it must be at least 1");
        }
        MemorySegment m = coherent == null ? null : coherent.allocate(size);
        if (m == null) {
            throw new DmaMappingException(DmaMappingException.Reason.NO_SPACE,
                "no coherent memory of " + size + " bytes " + (coherent == null ? "(no coherent allocator was given)" : "left"));
        }
        return new CoherentBuffer(m, map(m, DmaDirection.BIDIRECTIONAL));
    }

    @Override
    public void freeCoherent(CoherentBuffer buffer) {
        unmap(buffer.busAddress(), buffer.memory().byteSize(), DmaDirection.BIDIRECTIONAL);
    }

    @Override
    public String toString() {
        return "IommuDmaOps[" + mode + ", " + iommu + "]";
    }
}

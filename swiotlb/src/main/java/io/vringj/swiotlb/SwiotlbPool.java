package io.vringj.swiotlb;

import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaMappingException;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.MemoryRegion;
import io.vringj.memory.RegionKind;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * The software I/O TLB: a bounce pool in {@code SHARED} guest memory, after Linux's
 * {@code kernel/dma/swiotlb.c}. A protected guest's device can reach only shared memory, so
 * every buffer it uses is copied into slots of this pool and back.
 *
 * <pre>
 *   bus = guest-physical address of the slot (the device reaches the pool directly, or
 *         through an IOMMU that maps it 1:1)
 *
 *   ┌──────── segment 0 (128 slots, 256 KiB) ───────┬──────── segment 1 ───── ...
 *   │ slot 0 │ slot 1 │ ... 2 KiB each             │
 *   └────────────────── area 0 (own lock) ─────────┴── area 1 (own lock) ... ─
 * </pre>
 *
 * <ul>
 *   <li>Slots are 2 KiB; a mapping takes whole slots and never crosses a 128-slot segment, so
 *       the largest mapping is {@value #MAX_MAPPING_SIZE} bytes.</li>
 *   <li>The pool is split into areas (a power of two), each with its own lock. A search starts
 *       in the caller's area (chosen from the calling thread) and moves round-robin.</li>
 *   <li>Alignment: the bounce address keeps {@code orig & minAlignMask & (SLOT_SIZE - 1)}; the
 *       first slot honours {@code allocAlignMask}, and a mapping of a page or more with neither
 *       mask is page-aligned. When both masks are given, the bits of {@code minAlignMask} under
 *       {@code allocAlignMask} are kept too, by padding slots before the mapping, so the bounce
 *       address always agrees with {@code orig} in every bit of {@code minAlignMask}.</li>
 *   <li>Small maps (up to 4 slots, 8 KiB) take a fast path: an unmapped small run waits on its
 *       area's free hints and the next map of its size that its alignment suits takes it back
 *       with no search and no merge (never the run released last, so a stale second unmap finds
 *       it unmapped); a search that finds nothing merges the hints back first.</li>
 * </ul>
 *
 * <p>When bytes are copied (the table in Linux's swiotlb):
 * <pre>
 *   operation        TO_DEVICE        FROM_DEVICE      BIDIRECTIONAL
 *   map              orig → bounce    orig → bounce    orig → bounce
 *   syncForDevice    orig → bounce    —                orig → bounce
 *   syncForCpu       —                bounce → orig    bounce → orig
 *   unmap            —                bounce → orig    bounce → orig
 * </pre>
 * The map-time copy for {@code FROM_DEVICE} is the 2022 info-leak fix: a device that writes
 * less than the whole buffer must not make the slot's stale bytes (someone else's earlier I/O)
 * appear in the caller's buffer at unmap; the caller gets its own bytes back instead.
 *
 * <p>A copy outside a mapping is refused, an unmap of an address that is not the start of a
 * live mapping (unknown, or unmapped already) throws naming the address, and a full pool is a
 * {@link DmaMappingException} naming the size asked and the slots used and total, with nothing
 * mapped. With a {@link TransientPoolSource} given to the builder, a full pool grows by a
 * transient pool for that one mapping; growth is off by default.
 *
 * <p>Thread-safe: any number of threads may map, unmap, sync, allocate and free at once. A
 * mapping must not be unmapped while another thread syncs it (as with Linux's DMA API, that is
 * the caller's bug; the pool still never copies outside the slots of the mapping it looked up).
 * Map and unmap allocate nothing.
 */
public final class SwiotlbPool {
    /** log2 of the slot size ({@code IO_TLB_SHIFT}). */
    public static final int SLOT_SHIFT = 11;
    /** Bytes in one slot: 2 KiB. */
    public static final int SLOT_SIZE = 1 << SLOT_SHIFT;
    /** Slots in one segment ({@code IO_TLB_SEGSIZE}); no mapping crosses a segment. */
    public static final int SEGMENT_SLOTS = 128;
    /** Bytes in one segment: 256 KiB. */
    public static final long SEGMENT_SIZE = (long) SEGMENT_SLOTS * SLOT_SIZE;
    /** The largest single mapping or allocation, alignment offset included: one segment. */
    public static final long MAX_MAPPING_SIZE = SEGMENT_SIZE;
    /** The page size used for the alignment of large mappings and of allocations. */
    public static final long PAGE_SIZE = 4096;
    /** Linux's default pool size: 64 MiB. */
    public static final long DEFAULT_SIZE = 64L << 20;

    private final GuestMemory memory;
    private final SlotTable main;
    private final TransientPoolSource transientSource;
    private final Object growLock = new Object();
    /** Transient pools, replaced as a whole under {@link #growLock}; volatile so lookups need no lock. */
    private volatile SlotTable[] transients = new SlotTable[0];

    private final AtomicLong slotsInUse = new AtomicLong();
    private final AtomicLong transientSlots = new AtomicLong();
    private final AtomicLong highWaterMark = new AtomicLong();
    private final AtomicLong liveMappings = new AtomicLong();
    private final AtomicLong liveAllocations = new AtomicLong();
    private final LongAdder bytesToDevice = new LongAdder();
    private final LongAdder bytesFromDevice = new LongAdder();
    private final LongAdder failedMaps = new LongAdder();

    /** Per-thread scratch record for unmap and sync lookups, so they allocate nothing. */
    private static final ThreadLocal<SlotTable.Mapping> SCRATCH = ThreadLocal.withInitial(SlotTable.Mapping::new);

    private SwiotlbPool(Builder b, MemorySegment slots, int areas) {
        this.memory = b.memory;
        this.main = new SlotTable(b.base, slots, areas, false);
        this.transientSource = b.transientSource;
    }

    /**
     * Starts building a pool over {@code [base, base + size)} of {@code memory}.
     *
     * @param memory the guest memory
     * @param base the guest-physical address of the pool, page-aligned, inside a {@code SHARED} region
     * @param size the pool size, a positive multiple of {@link #SEGMENT_SIZE}
     * @return a builder
     */
    public static Builder builder(GuestMemory memory, long base, long size) {
        return new Builder(memory, base, size);
    }

    /**
     * Maps {@code original} for the device with no alignment masks: the mapping starts at a
     * slot, or at a page for a page or more. Equivalent to
     * {@code map(original, original.address(), direction, 0, 0)}.
     *
     * @param original the caller's buffer
     * @param direction which way the data will move
     * @return the bus address of the bounce copy
     * @throws DmaMappingException if the buffer is empty or too large, or the pool is full
     */
    public long map(MemorySegment original, DmaDirection direction) throws DmaMappingException {
        return map(original, original.address(), direction, 0, 0);
    }

    /**
     * Maps {@code original} for the device: takes slots and copies the buffer into them (for
     * every direction, see the class comment). Linux's {@code swiotlb_tbl_map_single}.
     *
     * @param original the caller's buffer
     * @param originalAddress the address whose low bits the bounce address keeps under
     *     {@code minAlignMask} (the buffer's guest-physical address)
     * @param direction which way the data will move
     * @param minAlignMask the device's {@code min_align_mask}: 0 or 2^k-1 with k at most 18
     * @param allocAlignMask alignment of the first slot: 0 or 2^k-1 with k at most 18
     * @return the bus address of the bounce copy
     * @throws DmaMappingException {@code EMPTY} for an empty buffer, {@code TOO_LARGE} above one
     *     segment, {@code NO_SPACE} when no run of free slots fits; nothing is left mapped
     * @throws IllegalArgumentException if a mask is not of the form 2^k-1 or is larger than a segment
     */
    public long map(MemorySegment original, long originalAddress, DmaDirection direction, long minAlignMask,
                    long allocAlignMask) throws DmaMappingException {
        Objects.requireNonNull(original, "original");
        Objects.requireNonNull(direction, "direction");
        checkMask(minAlignMask, "minAlignMask");
        checkMask(allocAlignMask, "allocAlignMask");
        long size = original.byteSize();
        if (size == 0) {
            throw new DmaMappingException(DmaMappingException.Reason.EMPTY, String.format(
                "buffer at native address 0x%x has no bytes", original.address()));
        }
        // the bits of orig under min_align_mask that the slot and allocation alignment do not
        // already fix: kept by starting the mapping this far into its first slot(s). With an
        // allocAlignMask wider than a slot this may skip whole padding slots (Linux 6.9's fix
        // for devices that give both masks); otherwise it is below one slot.
        int offset = (int) (originalAddress & minAlignMask & (allocAlignMask | (SLOT_SIZE - 1)));
        SlotTable.Mapping m = SCRATCH.get();
        if (!takeSlots(size, offset, originalAddress, minAlignMask, allocAlignMask, SlotTable.stateOf(direction),
            original, true, m)) {
            throw full(size, "map");
        }
        SlotTable table = m.table;
        long bus = m.start;
        m.table = null;
        try {
            // every direction copies at map time; for FROM_DEVICE this is the 2022 info-leak fix.
            // Plain stores outside the area lock: no one else knows these slots yet, and the
            // device sees them only after the caller publishes the bus address (the ring's
            // release store of avail idx pairs with the device's acquire load).
            MemorySegment.copy(original, 0, table.memory, bus - table.base, size);
        } catch (RuntimeException | Error e) {
            // the original could not be read (closed arena, ...): nothing stays mapped
            freeSlots(table, m.head, false);
            throw e;
        }
        bytesToDevice.add(size);
        liveMappings.incrementAndGet();
        return bus;
    }

    /**
     * Ends a mapping: for {@code FROM_DEVICE} and {@code BIDIRECTIONAL} copies the bounce slots
     * back into the original buffer, then frees the slots. Linux's {@code swiotlb_tbl_unmap_single}.
     *
     * @param busAddress what {@link #map} returned
     * @param length the length mapped
     * @param direction the direction mapped
     * @throws IllegalArgumentException if no live mapping starts at {@code busAddress} (never
     *     mapped, or unmapped already), or its length or direction differ; nothing changes
     */
    public void unmap(long busAddress, long length, DmaDirection direction) {
        Objects.requireNonNull(direction, "direction");
        SlotTable table = tableOf(busAddress);
        if (table == null) {
            throw notInPool("unmap", busAddress, length);
        }
        if (direction == DmaDirection.TO_DEVICE) {
            // nothing to copy back: look up, check and free under one hold of the area's lock
            int head = table.releaseMapping(busAddress, length, SlotTable.MAPPED_TO_DEVICE, slotsInUse);
            if (head < 0) {
                throw lookupFailed("unmap", table, busAddress, length, direction.name() + " mapping", head);
            }
            liveMappings.decrementAndGet();
            if (table.isTransient) {
                dropTransient(table);
            }
            return;
        }
        SlotTable.Mapping m = SCRATCH.get();
        int head = table.beginRelease(busAddress, length, SlotTable.stateOf(direction), m);
        if (head < 0) {
            throw lookupFailed("unmap", table, busAddress, length, direction.name() + " mapping", head);
        }
        MemorySegment original = m.original;
        m.original = null;
        try {
            // the device's writes to the slots happened before the driver saw the used entry
            // (its acquire load of used idx pairs with the device's release store)
            if (direction != DmaDirection.TO_DEVICE) {
                MemorySegment.copy(table.memory, busAddress - table.base, original, 0, length);
                bytesFromDevice.add(length);
            }
        } finally {
            // the slots are freed even if the copy back failed (the caller's buffer is gone)
            freeSlots(table, head, false);
            liveMappings.decrementAndGet();
        }
    }

    /**
     * Gives part of a live mapping back to the CPU: for {@code FROM_DEVICE} and
     * {@code BIDIRECTIONAL} copies those bounce bytes into the original; for {@code TO_DEVICE}
     * copies nothing.
     *
     * @param busAddress inside a live mapping
     * @param length bytes from {@code busAddress}, at least 1, inside the same mapping
     * @param direction the mapping's direction
     * @throws IllegalArgumentException if the range is not inside one live mapping of this
     *     direction; nothing is copied
     */
    public void syncForCpu(long busAddress, long length, DmaDirection direction) {
        sync(busAddress, length, direction, true);
    }

    /**
     * Gives part of a live mapping to the device: for {@code TO_DEVICE} and
     * {@code BIDIRECTIONAL} copies those bytes of the original into the bounce slots; for
     * {@code FROM_DEVICE} copies nothing.
     *
     * @param busAddress inside a live mapping
     * @param length bytes from {@code busAddress}, at least 1, inside the same mapping
     * @param direction the mapping's direction
     * @throws IllegalArgumentException if the range is not inside one live mapping of this
     *     direction; nothing is copied
     */
    public void syncForDevice(long busAddress, long length, DmaDirection direction) {
        sync(busAddress, length, direction, false);
    }

    private void sync(long busAddress, long length, DmaDirection direction, boolean forCpu) {
        Objects.requireNonNull(direction, "direction");
        String op = forCpu ? "syncForCpu" : "syncForDevice";
        if (length <= 0) {
            throw new IllegalArgumentException(String.format(
                "%s of [0x%x, +%d): the length must be at least 1", op, busAddress, length));
        }
        SlotTable table = tableOf(busAddress);
        if (table == null) {
            throw notInPool(op, busAddress, length);
        }
        SlotTable.Mapping m = SCRATCH.get();
        int result = table.lookupForSync(busAddress, length, m);
        MemorySegment original = m.original;
        m.original = null;
        if (result < 0) {
            throw lookupFailed(op, table, busAddress, length, "mapping", result);
        }
        if (m.state != SlotTable.stateOf(direction)) {
            throw new IllegalArgumentException(String.format(
                "%s of [0x%x, +%d) as %s: the mapping at 0x%x is a %s", op, busAddress, length, direction, m.start,
                SlotTable.stateName(m.state)));
        }
        long originalOffset = busAddress - m.start;
        if (forCpu && direction != DmaDirection.TO_DEVICE) {
            MemorySegment.copy(table.memory, busAddress - table.base, original, originalOffset, length);
            bytesFromDevice.add(length);
        } else if (!forCpu && direction != DmaDirection.FROM_DEVICE) {
            MemorySegment.copy(original, originalOffset, table.memory, busAddress - table.base, length);
            bytesToDevice.add(length);
        }
    }

    /**
     * Takes page-aligned slots with no original buffer behind them: memory the CPU and the
     * device share, for a restricted DMA pool's coherent allocations (Linux's
     * {@code swiotlb_alloc}). Nothing is copied, ever. Never grows the pool.
     *
     * @param size bytes, 1..{@link #MAX_MAPPING_SIZE}
     * @return the bus (guest-physical) address of the allocation, page-aligned
     * @throws DmaMappingException {@code TOO_LARGE} above one segment, {@code NO_SPACE} when full
     * @throws IllegalArgumentException if {@code size} is less than 1
     */
    public long allocate(long size) throws DmaMappingException {
        if (size <= 0) {
            throw new IllegalArgumentException("allocation of " + size + " bytes; it must be at least 1");
        }
        SlotTable.Mapping m = SCRATCH.get();
        if (!takeSlots(size, 0, 0, 0, PAGE_SIZE - 1, SlotTable.ALLOCATED, null, false, m)) {
            throw full(size, "allocation");
        }
        liveAllocations.incrementAndGet();
        return m.start;
    }

    /**
     * Frees what {@link #allocate(long)} returned.
     *
     * @param busAddress the allocation's address
     * @param size its size
     * @throws IllegalArgumentException if no live allocation of that size starts there
     */
    public void free(long busAddress, long size) {
        SlotTable table = tableOf(busAddress);
        if (table == null) {
            throw notInPool("free", busAddress, size);
        }
        SlotTable.Mapping m = SCRATCH.get();
        int head = table.beginRelease(busAddress, size, SlotTable.ALLOCATED, m);
        m.original = null;
        if (head < 0) {
            throw lookupFailed("free", table, busAddress, size, "coherent allocation", head);
        }
        freeSlots(table, head, true);
    }

    /**
     * @param busAddress any bus address
     * @return whether it lies in this pool's slots (the default pool or a live transient pool):
     *     Linux's {@code is_swiotlb_buffer}
     */
    public boolean owns(long busAddress) {
        return tableOf(busAddress) != null;
    }

    /** @return the guest memory the pool lives in */
    public GuestMemory memory() {
        return memory;
    }

    /** @return the guest-physical (and bus) address of slot 0 of the default pool */
    public long base() {
        return main.base;
    }

    /** @return the size of the default pool in bytes */
    public long size() {
        return main.memory.byteSize();
    }

    /** @return how many areas (locks) the default pool has */
    public int areaCount() {
        return main.areas.length;
    }

    /** @return whether the pool grows by transient pools when full */
    public boolean growsByTransientPools() {
        return transientSource != null;
    }

    /** @return slots held now, in the default and transient pools */
    public long slotsInUse() {
        return slotsInUse.get();
    }

    /** @return slots in the default pool plus those of live transient pools */
    public long slotsTotal() {
        return main.slotCount + transientSlots.get();
    }

    /** @return the most slots ever in use at once */
    public long highWaterMark() {
        return highWaterMark.get();
    }

    /** @return mappings not yet unmapped */
    public long liveMappings() {
        return liveMappings.get();
    }

    /** @return a snapshot of every counter */
    public SwiotlbStatistics statistics() {
        return new SwiotlbStatistics(slotsTotal(), slotsInUse.get(), highWaterMark.get(), liveMappings.get(),
            liveAllocations.get(), bytesToDevice.sum(), bytesFromDevice.sum(), failedMaps.sum(), transients.length);
    }

    @Override
    public String toString() {
        return String.format("SwiotlbPool[0x%x, +%d KiB, %d slots in %d areas, %d in use]", main.base,
            main.memory.byteSize() >> 10, main.slotCount, main.areas.length, slotsInUse.get());
    }

    // ---------------------------------------------------------------------------------------

    /** Slots needed for {@code bytes}. */
    static int slotsFor(long bytes) {
        return (int) ((bytes + SLOT_SIZE - 1) >>> SLOT_SHIFT);
    }

    /**
     * Finds and takes slots for {@code size + offset} bytes, first in the default pool (from
     * the caller's area, round-robin), then, if allowed and configured, in a new transient
     * pool. On success fills {@code out.table}, {@code out.head} and {@code out.start}.
     */
    private boolean takeSlots(long size, int offset, long orig, long minAlignMask, long allocAlignMask, byte state,
                              MemorySegment original, boolean mayGrow, SlotTable.Mapping out)
        throws DmaMappingException {
        long allocSize = size + offset;
        if (allocSize > MAX_MAPPING_SIZE) {
            throw new DmaMappingException(DmaMappingException.Reason.TOO_LARGE, String.format(
                "%d bytes (+%d bytes of alignment offset) is more than one %d-slot segment (%d bytes) can hold",
                size, offset, SEGMENT_SLOTS, MAX_MAPPING_SIZE));
        }
        int nslots = slotsFor(allocSize);
        long alignMask = allocAlignMask;
        if (alignMask == 0 && minAlignMask == 0 && size >= PAGE_SIZE) {
            // historically, mappings of a page or more are page-aligned when nothing else is asked
            alignMask = PAGE_SIZE - 1;
        }
        alignMask |= SLOT_SIZE - 1;
        // bits below the alignment are kept by the offset into the first slot
        long iotlbMask = minAlignMask & ~alignMask;
        long strideMask = Math.max(alignMask, iotlbMask);
        // stepping by this many slots keeps every bit of both masks unchanged
        int stride = (int) ((Long.highestOneBit(strideMask) << 1) >>> SLOT_SHIFT);

        SlotTable.Area[] areas = main.areas;
        int first = (int) Thread.currentThread().threadId() & (areas.length - 1);
        for (int i = 0; i < areas.length; i++) {
            SlotTable.Area area = areas[(first + i) & (areas.length - 1)];
            int slot = main.take(area, nslots, orig, alignMask, iotlbMask, stride, state, offset, size, original);
            if (slot >= 0) {
                took(main, slot, nslots, offset, out);
                return true;
            }
        }
        if (mayGrow && transientSource != null) {
            return takeTransient(nslots, orig, alignMask, iotlbMask, stride, state, offset, size, original, out);
        }
        return false;
    }

    private boolean takeTransient(int nslots, long orig, long alignMask, long iotlbMask, int stride, byte state,
                                  int offset, long size, MemorySegment original, SlotTable.Mapping out) {
        // room for the alignment: the first slot may have to move up to (stride - 1) slots in
        long bytes = (long) (nslots + stride - 1) << SLOT_SHIFT;
        MemorySegment slots = transientSource.allocate(bytes);
        if (slots == null) {
            return false;
        }
        long base;
        try {
            base = checkTransient(slots, bytes);
        } catch (RuntimeException e) {
            transientSource.free(slots);
            throw e;
        }
        SlotTable table = new SlotTable(base, slots, 1, true);
        int slot = table.take(table.areas[0], nslots, orig, alignMask, iotlbMask, stride, state, offset, size, original);
        if (slot < 0) {
            transientSource.free(slots);
            return false;
        }
        synchronized (growLock) {
            SlotTable[] now = transients;
            SlotTable[] next = Arrays.copyOf(now, now.length + 1);
            next[now.length] = table;
            // volatile write: publishes the table to lock-free lookups in tableOf()
            transients = next;
            transientSlots.addAndGet(table.slotCount);
        }
        took(table, slot, nslots, offset, out);
        return true;
    }

    private long checkTransient(MemorySegment slots, long bytes) {
        if (slots.byteSize() != bytes) {
            throw new IllegalStateException(String.format("transient pool source %s returned %d bytes; %d were asked",
                transientSource, slots.byteSize(), bytes));
        }
        long base = memory.guestPhysicalAddressOf(slots);
        MemoryRegion region = memory.regionOf(base, bytes);
        if (region.kind() != RegionKind.SHARED || (base & (PAGE_SIZE - 1)) != 0) {
            throw new IllegalStateException(String.format(
                "transient pool source %s returned [0x%x, +%d) in %s; it must be page-aligned SHARED memory",
                transientSource, base, bytes, region));
        }
        return base;
    }

    private void took(SlotTable table, int slot, int nslots, int offset, SlotTable.Mapping out) {
        out.table = table;
        out.head = slot;
        out.start = table.slotAddress(slot) + offset;
        long used = slotsInUse.addAndGet(nslots);
        // raise the high-water mark monotonically; a racing thread with a higher count wins
        long high = highWaterMark.get();
        while (used > high && !highWaterMark.compareAndSet(high, used)) {
            high = highWaterMark.get();
        }
    }

    private void freeSlots(SlotTable table, int head, boolean allocation) {
        table.release(head, slotsInUse);
        if (allocation) {
            liveAllocations.decrementAndGet();
        }
        if (table.isTransient) {
            dropTransient(table);
        }
    }

    /** Forgets a transient pool whose one mapping is gone and gives its memory back. */
    private void dropTransient(SlotTable table) {
        synchronized (growLock) {
            SlotTable[] now = transients;
            SlotTable[] next = new SlotTable[now.length - 1];
            int j = 0;
            for (SlotTable t : now) {
                if (t != table) {
                    next[j++] = t;
                }
            }
            // volatile write: lookups stop finding the table before its memory is given back
            transients = next;
            transientSlots.addAndGet(-table.slotCount);
        }
        transientSource.free(table.memory);
    }

    private SlotTable tableOf(long busAddress) {
        if (main.contains(busAddress)) {
            return main;
        }
        // volatile read: pairs with the writes in takeTransient() and freeSlots()
        for (SlotTable t : transients) {
            if (t.contains(busAddress)) {
                return t;
            }
        }
        return null;
    }

    private DmaMappingException full(long size, String what) {
        failedMaps.increment();
        return new DmaMappingException(DmaMappingException.Reason.NO_SPACE, String.format(
            "swiotlb buffer is full: %s of %d bytes (%d slots) found no free run; %d of %d slots in use%s",
            what, size, slotsFor(size), slotsInUse.get(), slotsTotal(),
            transientSource == null ? " (transient pools are off)" : " and no transient pool could be added"));
    }

    private IllegalArgumentException notInPool(String op, long busAddress, long length) {
        return new IllegalArgumentException(String.format(
            "%s of [0x%x, +%d): bus address 0x%x is not in %s", op, busAddress, length, busAddress, this));
    }

    private static IllegalArgumentException lookupFailed(String op, SlotTable table, long busAddress, long length,
                                                         String wanted, int code) {
        String why = switch (code) {
            case SlotTable.Lookup.NOT_START -> "it is not the start of a " + wanted + "; it lies inside "
                + table.describeMappingAt(busAddress);
            case SlotTable.Lookup.WRONG_KIND -> "it is not a " + wanted + " but " + table.describeMappingAt(busAddress);
            case SlotTable.Lookup.WRONG_LENGTH -> "the length differs from " + table.describeMappingAt(busAddress);
            case SlotTable.Lookup.OUTSIDE -> "the range is not inside " + table.describeMappingAt(busAddress)
                + "; copies outside a mapping are refused";
            default -> "no live " + wanted + " is there (never mapped, or unmapped already)";
        };
        return new IllegalArgumentException(String.format("%s of [0x%x, +%d): %s", op, busAddress, length, why));
    }

    private static void checkMask(long mask, String name) {
        if (mask < 0 || (mask & (mask + 1)) != 0 || mask >= MAX_MAPPING_SIZE) {
            throw new IllegalArgumentException(String.format(
                "%s 0x%x must be 0 or 2^k-1 and below the segment size 0x%x", name, mask, MAX_MAPPING_SIZE));
        }
    }

    /** Collects the settings of a {@link SwiotlbPool}. */
    public static final class Builder {
        private final GuestMemory memory;
        private final long base;
        private final long size;
        private int areas;
        private TransientPoolSource transientSource;

        private Builder(GuestMemory memory, long base, long size) {
            this.memory = Objects.requireNonNull(memory, "memory");
            this.base = base;
            this.size = size;
        }

        /**
         * Sets the number of areas. By default it is the number of available processors,
         * rounded down to a power of two and lowered until each area holds a whole, equal
         * number of segments.
         *
         * @param areas a power of two that divides the number of segments
         * @return this builder
         */
        public Builder areas(int areas) {
            if (areas < 1 || Integer.bitCount(areas) != 1) {
                throw new IllegalArgumentException("swiotlb areas " + areas + " must be a power of two, at least 1");
            }
            this.areas = areas;
            return this;
        }

        /**
         * Turns on growth: when the pool is full, a mapping gets a transient pool of its own from
         * {@code source}, given back at unmap. Off by default.
         *
         * @param source where transient pools come from
         * @return this builder
         */
        public Builder transientPools(TransientPoolSource source) {
            this.transientSource = Objects.requireNonNull(source, "source");
            return this;
        }

        /**
         * @return the pool
         * @throws IllegalArgumentException if the range is misaligned, not a whole number of
         *     segments, not inside one {@code SHARED} region, or the areas do not divide it
         */
        public SwiotlbPool build() {
            if (size <= 0 || size % SEGMENT_SIZE != 0 || size / SLOT_SIZE > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(String.format(
                    "swiotlb pool size %d must be a positive multiple of the %d-byte segment", size, SEGMENT_SIZE));
            }
            if ((base & (PAGE_SIZE - 1)) != 0) {
                throw new IllegalArgumentException(String.format(
                    "swiotlb pool base 0x%x must be aligned to the %d-byte page", base, PAGE_SIZE));
            }
            int index = memory.regionIndexOf(base, size);
            if (index < 0) {
                throw new IllegalArgumentException(String.format(
                    "swiotlb pool [0x%x, +%d) is not wholly inside one region of %s", base, size, memory));
            }
            MemoryRegion region = memory.region(index);
            if (region.kind() != RegionKind.SHARED) {
                throw new IllegalArgumentException(String.format(
                    "swiotlb pool [0x%x, +%d) lies in %s; a bounce pool must be in SHARED memory the device can reach",
                    base, size, region));
            }
            long segments = size / SEGMENT_SIZE;
            int n = areas;
            if (n == 0) {
                n = Integer.highestOneBit(Runtime.getRuntime().availableProcessors());
                while (n > 1 && (n > segments || segments % n != 0)) {
                    n >>= 1;
                }
            } else if (n > segments || segments % n != 0) {
                throw new IllegalArgumentException(String.format(
                    "swiotlb areas %d do not divide the pool's %d segments; each area must hold whole segments",
                    n, segments));
            }
            return new SwiotlbPool(this, memory.slice(base, size), n);
        }
    }
}

package io.vringj.swiotlb;

import static io.vringj.swiotlb.SwiotlbPool.SEGMENT_SLOTS;
import static io.vringj.swiotlb.SwiotlbPool.SLOT_SHIFT;
import static io.vringj.swiotlb.SwiotlbPool.SLOT_SIZE;

import io.vringj.dma.DmaDirection;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The slots of one pool (the default pool or a transient one), after Linux's
 * {@code struct io_tlb_pool}: contiguous shared memory cut into 2 KiB slots, grouped in
 * 128-slot segments, split into areas that each own a contiguous run of whole segments and a
 * lock.
 *
 * <pre>
 *   slot i  at bus address base + i·2048
 *   ├ bit i of used    set while i is in use (or hinted); bits past the last slot stay set
 *   ├ bit i of heads   set when a mapping starts at i; the mapping that holds a used slot
 *   │                  is the nearest head at or below it in its segment
 *   └ at a head only:
 *       state[h]   FREE / TO_DEVICE / FROM_DEVICE / BIDIRECTIONAL / UNMAPPING / ALLOCATED
 *       offset[h]  bytes from the slot start to the mapping (min_align_mask offset)
 *       size[h]    bytes mapped
 *       original[h] the caller's buffer (null for an allocation)
 *
 *   area a: slots [a·areaSlots, (a+1)·areaSlots), cursor index, used count, lock = the Area,
 *           free hints: up to HINTS small released runs (head, slots) kept ready for reuse
 * </pre>
 *
 * <p><b>Free hints (the small-map fast path).</b> Releasing a mapping of at most
 * {@link #HINT_MAX_SLOTS} slots does not merge it into the free runs (a walk back to the start
 * of its segment, as Linux's swiotlb does); its slots stay out of the free runs, its head marked
 * {@link #HINTED}, and the run joins the end of the area's hint list. A map of that many slots
 * takes the oldest hinted run whose alignment fits: no search, no merge, no recount. The run
 * released last is never taken (it waits for one more release), so a stale second unmap of an
 * address finds it unmapped rather than someone else's new mapping.
 * Hinted slots are not in use (the pool's counters and a lookup say so); a search that finds no
 * free run first merges every hint of the area back (the slow path), so a map still fails only
 * when no run fits.
 *
 * <p><b>Bitmaps, not free counts.</b> Linux keeps, per slot, the number of free slots from it
 * to the end of its segment, and rewrites those counts on every map and unmap, walking back to
 * the start of the segment: at 64 KiB that is about 80 slots per map and as many per unmap. Here
 * a segment is two 64-bit words of {@code used}, so "{@code n} free slots from {@code i} within
 * the segment" is one or two masked word tests, and taking or releasing a run is one or two
 * word writes, whatever its length. The search visits the same candidates in the same order and
 * takes the same run as the counts would.
 *
 * <p>Every array element (and bitmap word) of a slot is read and written only while holding the
 * lock of the area that contains it; since a mapping never crosses a segment, an area holds
 * whole segments and a segment is whole words, one mapping is guarded by one lock.
 */
final class SlotTable {
    static final byte FREE = 0;
    static final byte MAPPED_TO_DEVICE = 1;
    static final byte MAPPED_FROM_DEVICE = 2;
    static final byte MAPPED_BIDIRECTIONAL = 3;
    static final byte UNMAPPING = 4;
    static final byte ALLOCATED = 5;
    /** Head of a released small run waiting on its area's hint stack. */
    static final byte HINTED = 6;

    /** Largest run, in slots, that is kept as a free hint: 8 KiB (2 pages). */
    static final int HINT_MAX_SLOTS = 4;
    /** Free hints per area. */
    static final int HINTS = 16;

    /** One area: a search cursor and a use count, guarded by the object's monitor. */
    static final class Area {
        final int firstSlot;
        final int slots;
        /** Where the next search starts, relative to {@link #firstSlot}. */
        int index;
        /** Slots in use in this area (hinted slots not counted). */
        int used;
        /** Free hints: the head slot and the slots of each hinted run, oldest first. */
        final int[] hintHead = new int[HINTS];
        final int[] hintSlots = new int[HINTS];
        int hintCount;

        Area(int firstSlot, int slots) {
            this.firstSlot = firstSlot;
            this.slots = slots;
        }
    }

    final long base;
    final MemorySegment memory;
    final int slotCount;
    final Area[] areas;
    final boolean isTransient;
    private final int areaShiftSlots;

    /** Bit i set: slot i is in use or hinted (and every bit past the last slot, so no run reaches there). */
    private final long[] used;
    /** Bit i set: a mapping (or hinted run) starts at slot i. */
    private final long[] heads;
    private final byte[] state;
    private final int[] offset;
    private final long[] size;
    private final MemorySegment[] original;

    /**
     * @param base bus (guest-physical) address of slot 0, page-aligned
     * @param memory the CPU's view of the slots
     * @param areaCount a power of two; each area gets slotCount / areaCount slots, a whole
     *     number of segments unless there is only one area
     */
    SlotTable(long base, MemorySegment memory, int areaCount, boolean isTransient) {
        this.base = base;
        this.memory = memory;
        this.slotCount = (int) (memory.byteSize() >>> SLOT_SHIFT);
        this.isTransient = isTransient;
        int areaSlots = slotCount / areaCount;
        this.areaShiftSlots = Integer.numberOfTrailingZeros(Integer.highestOneBit(areaSlots));
        this.areas = new Area[areaCount];
        for (int a = 0; a < areaCount; a++) {
            areas[a] = new Area(a * areaSlots, areaCount == 1 ? slotCount : areaSlots);
        }
        // whole segments of words, so a run test within a segment never reads past the array
        int words = ((slotCount + SEGMENT_SLOTS - 1) / SEGMENT_SLOTS) * (SEGMENT_SLOTS / Long.SIZE);
        used = new long[words];
        heads = new long[words];
        state = new byte[slotCount];
        offset = new int[slotCount];
        size = new long[slotCount];
        original = new MemorySegment[slotCount];
        // a free run stops at the end of the table (a transient pool need not be whole segments)
        for (int i = slotCount; i < words * Long.SIZE; i++) {
            used[i >>> 6] |= 1L << i;
        }
    }

    /** @return whether {@code busAddress} is inside this table's slots */
    boolean contains(long busAddress) {
        return Long.compareUnsigned(busAddress - base, (long) slotCount << SLOT_SHIFT) < 0;
    }

    /** @return the area whose lock guards {@code slot} */
    Area areaOf(int slot) {
        if (areas.length == 1) {
            return areas[0];
        }
        // areas have equal power-of-two-times-segment sizes only when areaSlots is a power of
        // two; otherwise divide
        int areaSlots = areas[0].slots;
        return areas[(areaSlots & (areaSlots - 1)) == 0 ? slot >>> areaShiftSlots : slot / areaSlots];
    }

    /** @return the slot that holds {@code busAddress}; the caller checked {@link #contains} */
    int slotOf(long busAddress) {
        return (int) ((busAddress - base) >>> SLOT_SHIFT);
    }

    /** @return the bus address of the first byte of {@code slot} */
    long slotAddress(int slot) {
        return base + ((long) slot << SLOT_SHIFT);
    }

    /**
     * Searches one area for {@code nslots} free slots whose first slot's bus address has no bit
     * of {@code alignMask} set and matches {@code orig} in the bits of {@code iotlbMask}, and
     * takes them. Holds the area's lock.
     *
     * @return the first slot, or -1 if the area has no such run
     */
    int take(Area area, int nslots, long orig, long alignMask, long iotlbMask, int stride, byte mappingState,
             int mappingOffset, long mappingSize, MemorySegment mappingOriginal) {
        synchronized (area) {
            if (nslots > area.slots - area.used) {
                return -1;
            }
            int found = nslots <= HINT_MAX_SLOTS ? takeHint(area, nslots, orig, alignMask, iotlbMask) : -1;
            if (found < 0) {
                found = search(area, nslots, orig, alignMask, iotlbMask, stride);
                if (found < 0 && area.hintCount > 0) {
                    // the hints may hold the room: merge them back into the free runs, search again
                    drainHints(area);
                    found = search(area, nslots, orig, alignMask, iotlbMask, stride);
                }
                if (found < 0) {
                    return -1;
                }
                claim(area, found, nslots);
            }
            state[found] = mappingState;
            offset[found] = mappingOffset;
            size[found] = mappingSize;
            original[found] = mappingOriginal;
            area.used += nslots;
            return found;
        }
    }

    /**
     * Takes the oldest hinted run of exactly {@code nslots} slots whose first slot satisfies the
     * masks, never the one released last. Its slots are already out of the free runs and point to
     * their head. Under the area's lock.
     *
     * @return its head, or -1
     */
    private int takeHint(Area area, int nslots, long orig, long alignMask, long iotlbMask) {
        int usable = area.hintCount - 1;
        for (int h = 0; h < usable; h++) {
            if (area.hintSlots[h] != nslots) {
                continue;
            }
            int head = area.hintHead[h];
            long address = slotAddress(head);
            if ((address & alignMask) != 0 || (address & iotlbMask) != (orig & iotlbMask)) {
                continue;
            }
            // the younger hints move down one place, keeping the list oldest first
            int count = --area.hintCount;
            System.arraycopy(area.hintHead, h + 1, area.hintHead, h, count - h);
            System.arraycopy(area.hintSlots, h + 1, area.hintSlots, h, count - h);
            return head;
        }
        return -1;
    }

    /** Merges every hinted run of the area back into the free runs. Under the area's lock. */
    private void drainHints(Area area) {
        while (area.hintCount > 0) {
            int h = --area.hintCount;
            freeRun(area.hintHead[h], area.hintSlots[h]);
        }
    }

    /** The next-fit search of one area; -1 if no run fits. Under the area's lock. */
    private int search(Area area, int nslots, long orig, long alignMask, long iotlbMask, int stride) {
        {
            int index = area.index;
            int found = -1;
            for (int checked = 0; checked < area.slots; ) {
                int slot = area.firstSlot + index;
                long address = slotAddress(slot);
                if ((address & alignMask) != 0 || (address & iotlbMask) != (orig & iotlbMask)) {
                    index = wrap(area, index + 1);
                    checked++;
                    continue;
                }
                // a run never crosses a segment boundary
                if (isFreeRun(slot, nslots)) {
                    found = slot;
                    break;
                }
                index = wrap(area, index + stride);
                checked += stride;
            }
            return found;
        }
    }

    /** Takes {@code nslots} free slots from {@code found} out of the free runs. Under the area's lock. */
    private void claim(Area area, int found, int nslots) {
        setRun(used, found, nslots, true);
        heads[found >>> 6] |= 1L << found;
        area.index = wrap(area, found - area.firstSlot + nslots);
    }

    /**
     * @return whether the {@code nslots} slots from {@code slot} are free and inside {@code slot}'s
     *     segment (Linux's {@code slots[slot].list >= nslots})
     */
    private boolean isFreeRun(int slot, int nslots) {
        if ((slot & (SEGMENT_SLOTS - 1)) + nslots > SEGMENT_SLOTS) {
            return false;
        }
        int end = slot + nslots;
        for (int s = slot; s < end; ) {
            int bits = Math.min(Long.SIZE - (s & (Long.SIZE - 1)), end - s);
            if ((used[s >>> 6] & runMask(s, bits)) != 0) {
                return false;
            }
            s += bits;
        }
        return true;
    }

    /** Sets or clears the bits of {@code nslots} slots from {@code slot} (inside one segment: at most two words). */
    private static void setRun(long[] bitmap, int slot, int nslots, boolean set) {
        int end = slot + nslots;
        for (int s = slot; s < end; ) {
            int bits = Math.min(Long.SIZE - (s & (Long.SIZE - 1)), end - s);
            long mask = runMask(s, bits);
            bitmap[s >>> 6] = set ? bitmap[s >>> 6] | mask : bitmap[s >>> 6] & ~mask;
            s += bits;
        }
    }

    /** The bits of {@code bits} slots from {@code slot} within its word ({@code 1 <= bits <= 64 - slot % 64}). */
    private static long runMask(int slot, int bits) {
        return (-1L >>> (Long.SIZE - bits)) << slot;
    }

    /**
     * @return the first slot of the mapping (or hinted run) holding {@code slot}, or -1 if it is
     *     free: the nearest head at or below it in its segment. Under the area's lock.
     */
    private int headOf(int slot) {
        int w = slot >>> 6;
        if ((used[w] & (1L << slot)) == 0 || slot >= slotCount) {
            return -1;
        }
        long below = heads[w] & (-1L >>> (Long.SIZE - 1 - (slot & (Long.SIZE - 1))));
        if (below == 0 && (w & 1) == 1) {
            // the segment's first word: a run may start there and reach into the second
            w--;
            below = heads[w];
        }
        return below == 0 ? -1 : (w << 6) + Long.SIZE - 1 - Long.numberOfLeadingZeros(below);
    }

    private static int wrap(Area area, int index) {
        return index < area.slots ? index : index % area.slots;
    }

    /**
     * Finds the live mapping that starts exactly at {@code busAddress} with this length and
     * state, copies its record into {@code into}, and marks it {@link #UNMAPPING} so no one
     * else can unmap or sync it.
     *
     * @return the head slot, or a negative {@link Lookup} code saying what was wrong
     */
    int beginRelease(long busAddress, long length, byte expectedState, Mapping into) {
        int slot = slotOf(busAddress);
        Area area = areaOf(slot);
        synchronized (area) {
            int head = check(slot, busAddress, length, expectedState);
            if (head < 0) {
                return head;
            }
            into.head = head;
            into.start = busAddress;
            into.size = length;
            into.state = state[head];
            into.original = original[head];
            state[head] = UNMAPPING;
            return head;
        }
    }

    /**
     * @return the head of the live mapping that starts exactly at {@code busAddress} with this
     *     length and state, or a negative {@link Lookup} code. Under the lock of {@code slot}'s area.
     */
    private int check(int slot, long busAddress, long length, byte expectedState) {
        int head = headOf(slot);
        if (head < 0 || state[head] == UNMAPPING || state[head] == HINTED) {
            return Lookup.NOT_MAPPED;
        }
        if (slotAddress(head) + offset[head] != busAddress) {
            return Lookup.NOT_START;
        }
        if (state[head] != expectedState) {
            return Lookup.WRONG_KIND;
        }
        if (size[head] != length) {
            return Lookup.WRONG_LENGTH;
        }
        return head;
    }

    /**
     * Returns the slots of the mapping at {@code head} to the free lists, merging with the free
     * runs after and before it. Holds the area's lock.
     *
     * @param slotsInUse the pool's count of slots in use, lowered here before the slots are freed
     * @return how many slots were freed
     */
    int release(int head, AtomicLong slotsInUse) {
        Area area = areaOf(head);
        synchronized (area) {
            return releaseLocked(area, head, slotsInUse);
        }
    }

    /**
     * {@link #beginRelease} and {@link #release} under one hold of the area's lock, for an unmap
     * that copies nothing back ({@code TO_DEVICE}): the same checks, and the slots are free when it
     * returns.
     *
     * @param slotsInUse the pool's count of slots in use
     * @return the head slot, or a negative {@link Lookup} code saying what was wrong (nothing changed)
     */
    int releaseMapping(long busAddress, long length, byte expectedState, AtomicLong slotsInUse) {
        int slot = slotOf(busAddress);
        Area area = areaOf(slot);
        synchronized (area) {
            int head = check(slot, busAddress, length, expectedState);
            if (head >= 0) {
                releaseLocked(area, head, slotsInUse);
            }
            return head;
        }
    }

    /** The release of the mapping at {@code head}; the caller holds {@code area}'s lock. */
    private int releaseLocked(Area area, int head, AtomicLong slotsInUse) {
        int nslots = slotsOf(head);
        // count down before the slots become free: a map on another thread may take them the
        // moment they are, and counts up only after; so the pool's count never exceeds the
        // slots really held (the two-thread exhaustion test once saw 259 of 256 otherwise)
        slotsInUse.addAndGet(-nslots);
        original[head] = null;
        size[head] = 0;
        offset[head] = 0;
        area.used -= nslots;
        if (nslots <= HINT_MAX_SLOTS && !isTransient && area.hintCount < HINTS) {
            // the fast path: the run stays out of the free runs, ready for the next small map
            state[head] = HINTED;
            area.hintHead[area.hintCount] = head;
            area.hintSlots[area.hintCount] = nslots;
            area.hintCount++;
            return nslots;
        }
        freeRun(head, nslots);
        return nslots;
    }

    /**
     * Returns {@code nslots} slots from {@code head} to the free runs, merging with the free runs
     * after and before them. Under the area's lock.
     */
    private void freeRun(int head, int nslots) {
        // the free runs before and after join it by themselves: a run is only its clear bits
        setRun(used, head, nslots, false);
        heads[head >>> 6] &= ~(1L << head);
        state[head] = FREE;
    }

    /** Slots held by the mapping at {@code head}; the caller holds the area's lock. */
    private int slotsOf(int head) {
        return SwiotlbPool.slotsFor(offset[head] + size[head]);
    }

    /**
     * Reads a live mapping's record for a sync: under the lock, checks that
     * {@code [busAddress, +length)} lies inside the mapping that holds {@code busAddress}, then
     * copies the facts into {@code into}.
     *
     * @return 0, or a negative {@link Lookup} code
     */
    int lookupForSync(long busAddress, long length, Mapping into) {
        int slot = slotOf(busAddress);
        Area area = areaOf(slot);
        synchronized (area) {
            int head = headOf(slot);
            if (head < 0 || state[head] == UNMAPPING || state[head] == ALLOCATED || state[head] == HINTED) {
                return Lookup.NOT_MAPPED;
            }
            long start = slotAddress(head) + offset[head];
            into.head = head;
            into.start = start;
            into.size = size[head];
            into.state = state[head];
            into.original = original[head];
            // busAddress >= start here unless it points into the alignment offset before the mapping
            if (Long.compareUnsigned(busAddress, start) < 0 || length > size[head] - (busAddress - start)) {
                return Lookup.OUTSIDE;
            }
            return 0;
        }
    }

    /** @return the start of the mapping holding {@code busAddress} and its size, for messages */
    String describeMappingAt(long busAddress) {
        int slot = slotOf(busAddress);
        synchronized (areaOf(slot)) {
            int head = headOf(slot);
            if (head < 0 || state[head] == HINTED) {
                return "no live mapping holds it";
            }
            return String.format("the live %s at [0x%x, +%d)", stateName(state[head]),
                slotAddress(head) + offset[head], size[head]);
        }
    }

    static byte stateOf(DmaDirection direction) {
        return switch (direction) {
            case TO_DEVICE -> MAPPED_TO_DEVICE;
            case FROM_DEVICE -> MAPPED_FROM_DEVICE;
            case BIDIRECTIONAL -> MAPPED_BIDIRECTIONAL;
        };
    }

    static String stateName(byte state) {
        return switch (state) {
            case MAPPED_TO_DEVICE -> "TO_DEVICE mapping";
            case MAPPED_FROM_DEVICE -> "FROM_DEVICE mapping";
            case MAPPED_BIDIRECTIONAL -> "BIDIRECTIONAL mapping";
            case UNMAPPING -> "mapping being unmapped";
            case ALLOCATED -> "coherent allocation";
            default -> "free slot";
        };
    }

    /** Why a lookup failed. */
    static final class Lookup {
        static final int NOT_MAPPED = -1;
        static final int NOT_START = -2;
        static final int WRONG_KIND = -3;
        static final int WRONG_LENGTH = -4;
        static final int OUTSIDE = -5;

        private Lookup() {
        }
    }

    /** A mutable copy of one mapping's record, owned by one caller. */
    static final class Mapping {
        SlotTable table;
        int head;
        long start;
        long size;
        byte state;
        MemorySegment original;
    }
}

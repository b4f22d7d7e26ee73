package io.vringj.swiotlb;

import static io.vringj.swiotlb.SwiotlbPool.SEGMENT_SIZE;
import static io.vringj.swiotlb.SwiotlbPool.SEGMENT_SLOTS;
import static io.vringj.swiotlb.SwiotlbPool.SLOT_SIZE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaMappingException;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

/**
 * The slot allocator against a model: any sequence of maps (sizes, masks and original offsets
 * drawn at random) and unmaps keeps every rule, and a map fails only when the model finds no run
 * of free slots that satisfies the same rules anywhere in the pool.
 */
class SwiotlbPoolModelTest {
    static final long SHARED_BASE = 0x1_0000_0000L;
    static final int SEGMENTS = 4;
    static final int SLOTS = SEGMENTS * SEGMENT_SLOTS;
    static final long[] MIN_ALIGN = {0, 0x3FF, 0xFFF, 0x3FFF};
    static final long[] ALLOC_ALIGN = {0, 0, 0xFFF, 0x3FFF};

    record Live(long bus, long size, int firstSlot, int slots) {
    }

    @Property(tries = 150)
    void slotsNeverOverlapNorCrossSegmentsAlignmentHoldsAndMapsFailOnlyWhenNothingFits(
        @ForAll @Size(min = 1, max = 120) List<@IntRange(min = 0, max = Integer.MAX_VALUE) Integer> ops,
        @ForAll @IntRange(min = 0, max = 2) int areaShift) throws Exception {
        try (GuestMemory memory = GuestMemory.builder()
            .allocate(0, 2 * SEGMENT_SIZE, RegionKind.SECURE)
            .allocate(SHARED_BASE, SEGMENTS * SEGMENT_SIZE, RegionKind.SHARED)
            .build()) {
            SwiotlbPool pool = SwiotlbPool.builder(memory, SHARED_BASE, SEGMENTS * SEGMENT_SIZE).areas(1 << areaShift).build();
            boolean[] used = new boolean[SLOTS];
            List<Live> live = new ArrayList<>();
            for (int op : ops) {
                if (op % 3 == 0 && !live.isEmpty()) {
                    Live l = live.remove((op / 3) % live.size());
                    pool.unmap(l.bus, l.size, DmaDirection.TO_DEVICE);
                    for (int s = l.firstSlot; s < l.firstSlot + l.slots; s++) {
                        used[s] = false;
                    }
                } else {
                    int r = op / 3;
                    // mostly small, sometimes up to a whole segment
                    long size = (r & 7) == 0 ? 1 + (r >>> 3) % SEGMENT_SIZE : 1 + (r >>> 3) % (6 * SLOT_SIZE);
                    long minAlign = MIN_ALIGN[(r >>> 20) & 3];
                    long allocAlign = ALLOC_ALIGN[(r >>> 22) & 3];
                    long orig = (r >>> 8) & 0x3FFF;
                    int offset = (int) (orig & minAlign & (allocAlign | (SLOT_SIZE - 1)));
                    MemorySegment original = memory.slice(orig, Math.min(size, 2 * SEGMENT_SIZE - orig));
                    long length = original.byteSize();
                    boolean fits = offset + length <= SEGMENT_SIZE
                        && modelFits(used, length, offset, orig, minAlign, allocAlign);
                    long bus;
                    try {
                        bus = pool.map(original, orig, DmaDirection.TO_DEVICE, minAlign, allocAlign);
                    } catch (DmaMappingException e) {
                        assertFalse(fits, "the pool refused a map the model can place: " + e.getMessage());
                        continue;
                    }
                    assertTrue(fits, "the pool placed a map the model cannot");
                    long slotStart = bus - offset;
                    int first = (int) ((slotStart - SHARED_BASE) / SLOT_SIZE);
                    int n = (int) ((offset + length + SLOT_SIZE - 1) / SLOT_SIZE);
                    assertEquals(0, slotStart & (SLOT_SIZE - 1), "slot-aligned");
                    assertEquals(orig & minAlign, bus & minAlign, "min_align_mask bits of orig kept");
                    assertEquals(0, slotStart & allocAlign, "alloc_align_mask honoured");
                    if (minAlign == 0 && allocAlign == 0 && length >= 4096) {
                        assertEquals(0, bus & 0xFFF, "page-aligned");
                    }
                    assertEquals(first / SEGMENT_SLOTS, (first + n - 1) / SEGMENT_SLOTS, "crosses a segment");
                    for (int s = first; s < first + n; s++) {
                        assertFalse(used[s], "slot " + s + " given twice");
                        used[s] = true;
                    }
                    live.add(new Live(bus, length, first, n));
                }
                long inUse = 0;
                for (boolean u : used) {
                    inUse += u ? 1 : 0;
                }
                assertEquals(inUse, pool.slotsInUse());
                assertEquals(live.size(), pool.liveMappings());
            }
            for (Live l : live) {
                pool.unmap(l.bus, l.size, DmaDirection.TO_DEVICE);
            }
            assertEquals(0, pool.slotsInUse());
            // every free run merged back: each segment takes a whole-segment mapping again
            for (int s = 0; s < SEGMENTS; s++) {
                pool.map(memory.slice(0, SEGMENT_SIZE), DmaDirection.TO_DEVICE);
            }
            assertEquals(SLOTS, pool.slotsInUse());
        }
    }

    /** Whether some run of free slots satisfies the rules, by brute force. */
    private static boolean modelFits(boolean[] used, long length, int offset, long orig, long minAlign, long allocAlign) {
        int n = (int) ((offset + length + SLOT_SIZE - 1) / SLOT_SIZE);
        long align = allocAlign;
        if (align == 0 && minAlign == 0 && length >= 4096) {
            align = 0xFFF;
        }
        for (int first = 0; first + n <= SLOTS; first++) {
            long address = SHARED_BASE + (long) first * SLOT_SIZE;
            if ((address & align) != 0 || ((address + offset) & minAlign) != (orig & minAlign)) {
                continue;
            }
            if (first / SEGMENT_SLOTS != (first + n - 1) / SEGMENT_SLOTS) {
                continue;
            }
            boolean free = true;
            for (int s = first; s < first + n && free; s++) {
                free = !used[s];
            }
            if (free) {
                return true;
            }
        }
        return false;
    }
}

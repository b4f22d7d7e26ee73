package io.vringj.properties;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaMappingException;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.swiotlb.SwiotlbPool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

/**
 * The swiotlb bounce pool under random maps (all three directions, sizes from one byte to a
 * whole segment), device writes into bounce slots, CPU writes with syncForDevice, syncForCpu,
 * unmaps in any order and coherent allocations — against a model of what each buffer must hold.
 *
 * <p>Checked after every step: live mappings and allocations never share a slot and lie inside
 * the pool; the pool's slots in use equal the slots of the live mappings and allocations, and
 * drop to 0 when all are gone; every direction round-trips (the device reads the caller's bytes,
 * the caller gets the device's bytes back); and {@code FROM_DEVICE} never leaks — bytes the device
 * did not write come back as the caller's own, never as stale bounce data from earlier I/O.
 */
class SwiotlbPoolProperties {
    private static final long POOL_BASE = 0x8000_0000L;
    private static final long POOL_SIZE = 2 * SwiotlbPool.SEGMENT_SIZE;
    private static final long SECURE_BASE = 0;
    private static final long AREA = SwiotlbPool.MAX_MAPPING_SIZE;
    private static final int AREAS = 12;
    private static final GuestMemory MEMORY = GuestMemory.builder()
        .allocate(SECURE_BASE, AREA * AREAS, RegionKind.SECURE)
        .allocate(POOL_BASE, POOL_SIZE, RegionKind.SHARED)
        .build(Arena.ofAuto());

    sealed interface Op permits Map, DeviceWrite, CpuWriteAndSync, SyncForCpu, Unmap, Allocate, Free {
    }

    record Map(int length, DmaDirection direction, int seed) implements Op {
    }

    record DeviceWrite(int pick, int percent, int seed) implements Op {
    }

    record CpuWriteAndSync(int pick, int seed) implements Op {
    }

    record SyncForCpu(int pick) implements Op {
    }

    record Unmap(int pick) implements Op {
    }

    record Allocate(int size) implements Op {
    }

    record Free(int pick) implements Op {
    }

    /** A live mapping and what its original and bounce buffers must hold. */
    static final class Live {
        final long bus;
        final int area;
        final MemorySegment original;
        final DmaDirection direction;
        final byte[] expectedOriginal;
        final byte[] expectedBounce;

        Live(long bus, int area, MemorySegment original, DmaDirection direction) {
            this.bus = bus;
            this.area = area;
            this.original = original;
            this.direction = direction;
            this.expectedOriginal = original.toArray(ValueLayout.JAVA_BYTE);
            this.expectedBounce = expectedOriginal.clone();
        }

        long length() {
            return original.byteSize();
        }

        MemorySegment bounce() {
            return MEMORY.slice(bus, length());
        }

        @Override
        public String toString() {
            return String.format("%s mapping of %d bytes at bus 0x%x", direction, length(), bus);
        }
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 5000)
    void slotsAreConservedMappingsNeverOverlapEveryDirectionRoundTripsAndNothingLeaks(
        @ForAll("operations") List<Op> ops) throws Exception {
        SwiotlbPool pool = SwiotlbPool.builder(MEMORY, POOL_BASE, POOL_SIZE).areas(2).build();
        // the pool's slots start with someone else's data: anything that leaks is recognisable
        MEMORY.slice(POOL_BASE, POOL_SIZE).fill((byte) 0xEE);
        List<Live> live = new ArrayList<>();
        List<long[]> allocations = new ArrayList<>();
        BitSet freeAreas = new BitSet();
        freeAreas.set(0, AREAS);
        StringBuilder log = new StringBuilder();
        try {
            for (Op op : ops) {
                log.append("  ").append(op).append('\n');
                switch (op) {
                    case Map m -> {
                        int area = freeAreas.nextSetBit(0);
                        if (area < 0) {
                            break;
                        }
                        MemorySegment original = MEMORY.slice(SECURE_BASE + area * AREA, m.length());
                        fill(original, m.seed());
                        long slotsBefore = pool.slotsInUse();
                        try {
                            long bus = pool.map(original, m.direction());
                            Live l = new Live(bus, area, original, m.direction());
                            freeAreas.clear(area);
                            live.add(l);
                            // every direction copies at map time: the device sees the caller's bytes
                            assertArrayEquals(l.expectedBounce, l.bounce().toArray(ValueLayout.JAVA_BYTE),
                                "bounce right after map of " + l);
                        } catch (DmaMappingException e) {
                            assertEquals(DmaMappingException.Reason.NO_SPACE, e.reason(), e.getMessage());
                            assertEquals(slotsBefore, pool.slotsInUse(), "a failed map took slots");
                            Statistics.label("maps refused").collect("pool full");
                        }
                    }
                    case DeviceWrite w -> {
                        Live l = pick(live, w.pick());
                        if (l == null || l.direction == DmaDirection.TO_DEVICE) {
                            break;
                        }
                        int n = (int) (l.length() * w.percent() / 100);
                        byte[] bytes = pattern(n, w.seed());
                        MemorySegment.copy(MemorySegment.ofArray(bytes), 0, l.bounce(), 0, n);
                        System.arraycopy(bytes, 0, l.expectedBounce, 0, n);
                    }
                    case CpuWriteAndSync c -> {
                        Live l = pick(live, c.pick());
                        if (l == null || l.direction == DmaDirection.FROM_DEVICE) {
                            break;
                        }
                        fill(l.original, c.seed());
                        byte[] now = l.original.toArray(ValueLayout.JAVA_BYTE);
                        System.arraycopy(now, 0, l.expectedOriginal, 0, now.length);
                        pool.syncForDevice(l.bus, l.length(), l.direction);
                        System.arraycopy(now, 0, l.expectedBounce, 0, now.length);
                    }
                    case SyncForCpu s -> {
                        Live l = pick(live, s.pick());
                        if (l == null || l.direction == DmaDirection.TO_DEVICE) {
                            break;
                        }
                        pool.syncForCpu(l.bus, l.length(), l.direction);
                        System.arraycopy(l.expectedBounce, 0, l.expectedOriginal, 0, l.expectedBounce.length);
                    }
                    case Unmap u -> {
                        Live l = pick(live, u.pick());
                        if (l == null) {
                            break;
                        }
                        pool.unmap(l.bus, l.length(), l.direction);
                        if (l.direction != DmaDirection.TO_DEVICE) {
                            System.arraycopy(l.expectedBounce, 0, l.expectedOriginal, 0, l.expectedBounce.length);
                        }
                        // FROM_DEVICE: bytes the device did not write are the caller's own, never stale slot data
                        assertArrayEquals(l.expectedOriginal, l.original.toArray(ValueLayout.JAVA_BYTE),
                            "original after unmap of " + l);
                        live.remove(l);
                        freeAreas.set(l.area);
                    }
                    case Allocate a -> {
                        try {
                            long bus = pool.allocate(a.size());
                            assertEquals(0, bus % SwiotlbPool.PAGE_SIZE, "coherent allocation is page-aligned");
                            allocations.add(new long[] {bus, a.size()});
                        } catch (DmaMappingException e) {
                            assertEquals(DmaMappingException.Reason.NO_SPACE, e.reason(), e.getMessage());
                        }
                    }
                    case Free f -> {
                        if (allocations.isEmpty()) {
                            break;
                        }
                        long[] a = allocations.remove(Math.floorMod(f.pick(), allocations.size()));
                        pool.free(a[0], a[1]);
                    }
                }
                checkSlots(pool, live, allocations);
            }
            for (Live l : live) {
                pool.unmap(l.bus, l.length(), l.direction);
            }
            for (long[] a : allocations) {
                pool.free(a[0], a[1]);
            }
            assertEquals(0, pool.slotsInUse(), "slots in use once everything is unmapped and freed");
            assertEquals(0, pool.liveMappings(), "live mappings at the end");
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\noperations:\n" + log + "live: " + live + "\n" + pool, e);
        }
        Statistics.label("most mappings live").collect(live.size() < 2 ? "0-1" : "2+");
    }

    /** Slots of live mappings and allocations are disjoint, inside the pool, and add up to slotsInUse. */
    private static void checkSlots(SwiotlbPool pool, List<Live> live, List<long[]> allocations) {
        BitSet slots = new BitSet();
        long total = 0;
        List<long[]> ranges = new ArrayList<>();
        for (Live l : live) {
            ranges.add(new long[] {l.bus, l.length()});
        }
        ranges.addAll(allocations);
        for (long[] r : ranges) {
            assertTrue(r[0] >= POOL_BASE && r[0] + r[1] <= POOL_BASE + POOL_SIZE,
                String.format("[0x%x, +%d) outside the pool", r[0], r[1]));
            int first = (int) ((r[0] - POOL_BASE) / SwiotlbPool.SLOT_SIZE);
            int end = (int) ((r[0] + r[1] - POOL_BASE + SwiotlbPool.SLOT_SIZE - 1) / SwiotlbPool.SLOT_SIZE);
            assertTrue(first / SwiotlbPool.SEGMENT_SLOTS == (end - 1) / SwiotlbPool.SEGMENT_SLOTS,
                String.format("[0x%x, +%d) crosses a segment", r[0], r[1]));
            for (int s = first; s < end; s++) {
                if (slots.get(s)) {
                    fail(String.format("slot %d is in two live mappings or allocations (one is [0x%x, +%d))", s, r[0], r[1]));
                }
                slots.set(s);
            }
            total += end - first;
        }
        assertEquals(total, pool.slotsInUse(), "slots in use = slots of live mappings and allocations");
        assertEquals(live.size(), pool.liveMappings(), "live mappings");
    }

    private static Live pick(List<Live> live, int pick) {
        return live.isEmpty() ? null : live.get(Math.floorMod(pick, live.size()));
    }

    private static byte[] pattern(int n, int seed) {
        byte[] bytes = new byte[n];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }

    private static void fill(MemorySegment segment, int seed) {
        MemorySegment.copy(MemorySegment.ofArray(pattern((int) segment.byteSize(), seed)), 0, segment, 0,
            segment.byteSize());
    }

    @Provide
    Arbitrary<List<Op>> operations() {
        Arbitrary<Integer> length = Arbitraries.frequencyOf(
            Tuple.of(6, Arbitraries.integers().between(1, 3 * SwiotlbPool.SLOT_SIZE)),
            Tuple.of(2, Arbitraries.of(SwiotlbPool.SLOT_SIZE, SwiotlbPool.SLOT_SIZE + 1, 4096, 4097, 8192)),
            Tuple.of(1, Arbitraries.integers().between(1, (int) SwiotlbPool.MAX_MAPPING_SIZE)));
        Arbitrary<Integer> seed = Arbitraries.integers();
        Arbitrary<Integer> pick = Arbitraries.integers().between(0, 15);
        return Arbitraries.<Op>frequencyOf(
                Tuple.of(5, Combinators.combine(length, Arbitraries.of(DmaDirection.class), seed).as(Map::new)),
                Tuple.of(3, Combinators.combine(pick, Arbitraries.of(0, 1, 50, 100), seed).as(DeviceWrite::new)),
                Tuple.of(1, Combinators.combine(pick, seed).as(CpuWriteAndSync::new)),
                Tuple.of(1, pick.map(SyncForCpu::new)),
                Tuple.of(3, pick.map(Unmap::new)),
                Tuple.of(1, Arbitraries.integers().between(1, 3 * 4096).map(Allocate::new)),
                Tuple.of(1, pick.map(Free::new)))
            .list().ofMinSize(1).ofMaxSize(30);
    }
}

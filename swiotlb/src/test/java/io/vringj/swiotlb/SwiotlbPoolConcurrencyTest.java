package io.vringj.swiotlb;

import static io.vringj.swiotlb.SwiotlbPool.SEGMENT_SIZE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaMappingException;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Two threads fight over a pool too small for both. */
class SwiotlbPoolConcurrencyTest {
    static final long SHARED_BASE = 0x1_0000_0000L;
    static final int BUFFERS_PER_THREAD = 24;
    static final int MAX_BUFFER = 32 * 1024;
    static final int ROUNDS = 1500;
    /** The pool's own slots. */
    static final long MAX_SLOTS = 256;
    /** The pool's slots plus every slot of the reserve transient pools come from. */
    static final long MAX_SLOTS_GROWING = 512;

    @Test
    void exhaustionUnderTwoThreadsFailsCleanlyLeaksNothingAndReturnsToZero() throws Exception {
        try (GuestMemory memory = GuestMemory.builder()
            .allocate(0, 2L * BUFFERS_PER_THREAD * MAX_BUFFER, RegionKind.SECURE)
            .allocate(SHARED_BASE, 2 * SEGMENT_SIZE, RegionKind.SHARED)
            .build()) {
            // 256 slots; each thread may want up to 24 × 16 = 384
            SwiotlbPool pool = SwiotlbPool.builder(memory, SHARED_BASE, 2 * SEGMENT_SIZE).areas(2).build();
            CyclicBarrier start = new CyclicBarrier(2);
            ExecutorService threads = Executors.newFixedThreadPool(2);
            try {
                Future<long[]> a = threads.submit(() -> fight(memory, pool, 0, start, MAX_SLOTS));
                Future<long[]> b = threads.submit(() -> fight(memory, pool, 1, start, MAX_SLOTS));
                long[] ra = a.get(2, TimeUnit.MINUTES);
                long[] rb = b.get(2, TimeUnit.MINUTES);
                assertTrue(ra[1] > 0 && rb[1] > 0, "both threads ran into a full pool: " + ra[1] + ", " + rb[1]);
                SwiotlbStatistics s = pool.statistics();
                assertEquals(ra[1] + rb[1], s.failedMaps());
                assertEquals(0, s.slotsInUse(), "every slot came back");
                assertEquals(0, s.liveMappings());
                assertTrue(s.highWaterMark() <= 256 && s.highWaterMark() > 200, "high water " + s.highWaterMark());
                assertEquals(ra[0] + rb[0], s.bytesToDevice(), "each successful map copied its buffer once");
                assertEquals(ra[0] + rb[0], s.bytesFromDevice(), "each unmap copied it back once");
            } finally {
                threads.shutdownNow();
            }
        }
    }

    @Test
    void transientPoolsGrowAndShrinkUnderTwoThreadsAndAllGoBack() throws Exception {
        try (GuestMemory memory = GuestMemory.builder()
            .allocate(0, 2L * BUFFERS_PER_THREAD * MAX_BUFFER, RegionKind.SECURE)
            .allocate(SHARED_BASE, 4 * SEGMENT_SIZE, RegionKind.SHARED)
            .build()) {
            SwiotlbPool reserve = SwiotlbPool.builder(memory, SHARED_BASE + 2 * SEGMENT_SIZE, 2 * SEGMENT_SIZE).areas(2).build();
            SwiotlbPool pool = SwiotlbPool.builder(memory, SHARED_BASE, 2 * SEGMENT_SIZE).areas(2)
                .transientPools(TransientPoolSource.fromReserve(reserve)).build();
            CyclicBarrier start = new CyclicBarrier(2);
            ExecutorService threads = Executors.newFixedThreadPool(2);
            try {
                Future<long[]> a = threads.submit(() -> fight(memory, pool, 0, start, MAX_SLOTS_GROWING));
                Future<long[]> b = threads.submit(() -> fight(memory, pool, 1, start, MAX_SLOTS_GROWING));
                long[] ra = a.get(2, TimeUnit.MINUTES);
                long[] rb = b.get(2, TimeUnit.MINUTES);
                SwiotlbStatistics s = pool.statistics();
                assertTrue(s.highWaterMark() > 256, "transient pools took the pool past its own 256 slots: "
                    + s.highWaterMark());
                assertEquals(ra[1] + rb[1], s.failedMaps(), "maps refused once the reserve was full too");
                assertEquals(0, s.slotsInUse());
                assertEquals(0, s.transientPools(), "every transient pool was given back");
                assertEquals(256, s.slotsTotal());
                assertEquals(0, reserve.slotsInUse(), "the reserve is whole again");
                assertEquals(0, reserve.statistics().liveAllocations());
            } finally {
                threads.shutdownNow();
            }
        }
    }

    /** @return {bytes mapped, failed maps} */
    private static long[] fight(GuestMemory memory, SwiotlbPool pool, int thread, CyclicBarrier start, long maxSlots)
        throws Exception {
        SplittableRandom random = new SplittableRandom(thread);
        MemorySegment[] buffers = new MemorySegment[BUFFERS_PER_THREAD];
        for (int i = 0; i < buffers.length; i++) {
            buffers[i] = memory.slice((long) (thread * BUFFERS_PER_THREAD + i) * MAX_BUFFER, MAX_BUFFER);
        }
        long[] bus = new long[BUFFERS_PER_THREAD];
        int[] size = new int[BUFFERS_PER_THREAD];
        long mappedBytes = 0;
        long failures = 0;
        start.await();
        for (int round = 0; round < ROUNDS; round++) {
            int held = 0;
            byte tag = (byte) (thread * 100 + round);
            while (held < BUFFERS_PER_THREAD) {
                int n = 1 + random.nextInt(MAX_BUFFER);
                MemorySegment buffer = buffers[held].asSlice(0, n);
                buffer.fill(tag);
                long used = pool.slotsInUse();
                try {
                    bus[held] = pool.map(buffer, DmaDirection.BIDIRECTIONAL);
                } catch (DmaMappingException e) {
                    assertEquals(DmaMappingException.Reason.NO_SPACE, e.reason(), e.getMessage());
                    assertTrue(e.getMessage().contains(n + " bytes"), e.getMessage());
                    failures++;
                    long now = pool.slotsInUse();
                    assertTrue(now >= 0 && now <= maxSlots, "slots in use " + now + " (before the map " + used + ")");
                    break;
                }
                size[held] = n;
                mappedBytes += n;
                held++;
            }
            for (int i = 0; i < held; i++) {
                // no other mapping, of either thread, may have been given these slots
                MemorySegment slots = memory.slice(bus[i], size[i]);
                long wrong = firstNot(slots, tag);
                assertEquals(-1, wrong, "thread " + thread + " round " + round + ": bounce byte " + wrong + " was overwritten");
                slots.fill((byte) ~tag);
                pool.unmap(bus[i], size[i], DmaDirection.BIDIRECTIONAL);
                assertEquals(-1, firstNot(buffers[i].asSlice(0, size[i]), (byte) ~tag), "copied back");
            }
        }
        return new long[] {mappedBytes, failures};
    }

    private static long firstNot(MemorySegment s, byte value) {
        long n = s.byteSize();
        long i = 0;
        long pattern = (value & 0xFFL) * 0x0101_0101_0101_0101L;
        for (; i + 8 <= n; i += 8) {
            if (s.get(ValueLayout.JAVA_LONG_UNALIGNED, i) != pattern) {
                break;
            }
        }
        for (; i < n; i++) {
            if (s.get(ValueLayout.JAVA_BYTE, i) != value) {
                return i;
            }
        }
        return -1;
    }
}

package io.vringj.perf.swiotlb;

import io.vringj.dma.DirectDmaOps;
import io.vringj.dma.DmaDirection;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.perf.regress.Interleaved;
import io.vringj.perf.ring.JvmFlags;
import io.vringj.swiotlb.SwiotlbDmaOps;
import io.vringj.swiotlb.SwiotlbPool;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.infra.ThreadParams;

/**
 * Question 6: what does bouncing through swiotlb cost against the floor, a plain
 * {@code MemorySegment.copy} of the same bytes, and does splitting the pool into areas help two
 * threads that bounce at once? Target: bounce bandwidth at least 80% of the copy's.
 *
 * <ul>
 *   <li>{@code bounce}: {@link SwiotlbDmaOps} in {@code FORCE_BOUNCE} mode over
 *       {@link DirectDmaOps} maps a buffer of {@code bytes} from a {@code SECURE} region
 *       {@code TO_DEVICE} (one copy into the pool's {@code SHARED} slots) and unmaps it (no copy
 *       back for {@code TO_DEVICE}) — slot search, bookkeeping and one copy;</li>
 *   <li>{@code copy}: {@code MemorySegment.copy} of the same bytes from the same buffer into the
 *       same kind of pool memory, each copy at the next {@code bytes}-sized place in a region of
 *       the pool's size (as the pool's next-fit search moves through its slots) — the copy
 *       alone, with the same cache footprint.</li>
 *   <li>{@code oneArea} / {@code severalAreas}: two threads bounce 4 KiB each, through a pool of
 *       one area (one lock) or of {@value #SEVERAL_AREAS} areas (a lock each; a thread starts its
 *       search in its own area).</li>
 * </ul>
 * Throughput is operations per second; at equal bytes per operation, the ratio of two
 * throughputs is the ratio of their bandwidths.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {JvmFlags.HEAP, JvmFlags.HEADLESS})
public class SwiotlbBounceBenchmark {
    /** Areas of the pool in {@code severalAreas}. */
    public static final int SEVERAL_AREAS = 4;
    private static final long SECURE_BASE = 0x1000_0000L;
    private static final long SECURE_SIZE = 4L << 20;
    private static final long SHARED_BASE = 0x8000_0000L;
    private static final long POOL_SIZE = 4L << 20;
    private static final long CONTENDED_BYTES = 4096;
    /** The values of {@link Buffer#bytes}' {@code @Param}. */
    static final List<String> SIZES = List.of("4096", "65536", "262144");

    /** Guest memory: originals in a SECURE region, the bounce pool in a SHARED one. */
    @State(Scope.Benchmark)
    public static class Guest {
        GuestMemory memory;
        SwiotlbDmaOps oneArea;
        SwiotlbDmaOps severalAreas;

        /** Builds the memory and two pools over the same shared region. */
        @Setup(Level.Trial)
        public void setUp() {
            memory = GuestMemory.builder().allocate(SECURE_BASE, SECURE_SIZE, RegionKind.SECURE)
                .allocate(SHARED_BASE, 2 * POOL_SIZE, RegionKind.SHARED).build();
            DirectDmaOps direct = new DirectDmaOps(memory);
            oneArea = SwiotlbDmaOps.builder(SwiotlbPool.builder(memory, SHARED_BASE, POOL_SIZE).areas(1).build(),
                direct, SwiotlbDmaOps.Mode.FORCE_BOUNCE).build();
            severalAreas = SwiotlbDmaOps.builder(SwiotlbPool.builder(memory, SHARED_BASE + POOL_SIZE, POOL_SIZE)
                .areas(SEVERAL_AREAS).build(), direct, SwiotlbDmaOps.Mode.FORCE_BOUNCE).build();
        }

        /** Frees the guest memory. */
        @TearDown(Level.Trial)
        public void tearDown() {
            memory.close();
        }
    }

    /** One thread's buffer in SECURE memory, and where {@code copy} writes in the pool's region. */
    @State(Scope.Thread)
    public static class Buffer {
        /** Bytes per operation ({@link #SIZES}). */
        @Param({"4096", "65536", "262144"})
        public long bytes;

        MemorySegment original;
        MemorySegment target;
        long targetOffset;

        /**
         * @param guest the shared guest memory
         * @param thread which thread this is (each gets its own buffer)
         */
        @Setup(Level.Trial)
        public void setUp(Guest guest, ThreadParams thread) {
            init(guest, thread.getThreadIndex());
        }

        void init(Guest guest, int threadIndex) {
            long offset = (long) threadIndex * SwiotlbPool.MAX_MAPPING_SIZE;
            original = guest.memory.slice(SECURE_BASE + offset, bytes);
            original.fill((byte) 0x5a);
            // the second pool's memory: only the severalAreas benchmark uses that pool, never in this fork
            target = guest.memory.slice(SHARED_BASE + POOL_SIZE, POOL_SIZE);
        }
    }

    /** One thread's 4 KiB buffer for the contention benchmarks. */
    @State(Scope.Thread)
    public static class SmallBuffer {
        MemorySegment original;

        /**
         * @param guest the shared guest memory
         * @param thread which thread this is
         */
        @Setup(Level.Trial)
        public void setUp(Guest guest, ThreadParams thread) {
            init(guest, thread.getThreadIndex());
        }

        void init(Guest guest, int threadIndex) {
            original = guest.memory.slice(SECURE_BASE + (long) threadIndex * CONTENDED_BYTES, CONTENDED_BYTES);
            original.fill((byte) 0x3c);
        }
    }

    /**
     * For the interleaved harness ({@link Interleaved}): an instance set up for {@code bounce} or
     * {@code copy} at the given {@code bytes}, each side with guest memory of its own, and its loop.
     * Each operation returns the last byte it wrote into the pool's memory (the original's
     * {@code 0x5a}), read while it is still mapped, so the loop proves the bytes arrived; both sides
     * pay that one load.
     *
     * @param method {@code bounce} or {@code copy} (the two-thread benchmarks are measured by JMH)
     * @param params {@code bytes}, one of the sizes the benchmark's {@code @Param} lists
     * @return the loop and the tear-down freeing the guest memory
     */
    static Interleaved.Target interleavedTarget(String method, Map<String, String> params) {
        String bytes = params.get("bytes");
        if (params.size() != 1 || bytes == null || !SIZES.contains(bytes)) {
            throw new IllegalArgumentException("parameters " + params + " must be bytes, one of " + SIZES);
        }
        SwiotlbBounceBenchmark b = new SwiotlbBounceBenchmark();
        Guest guest = new Guest();
        guest.setUp();
        Buffer buffer = new Buffer();
        buffer.bytes = Long.parseLong(bytes);
        buffer.init(guest, 0);
        MemorySegment pool = guest.memory.slice(SHARED_BASE, POOL_SIZE);
        long last = buffer.bytes - 1;
        Interleaved.Operation op = switch (method) {
            case "bounce" -> () -> {
                long bus = guest.oneArea.map(buffer.original, DmaDirection.TO_DEVICE);
                long written = pool.get(ValueLayout.JAVA_BYTE, bus - SHARED_BASE + last);
                guest.oneArea.unmap(bus, buffer.bytes, DmaDirection.TO_DEVICE);
                return written;
            };
            case "copy" -> () -> {
                long at = buffer.targetOffset;
                b.copy(buffer);
                return buffer.target.get(ValueLayout.JAVA_BYTE, at + last);
            };
            default -> {
                guest.tearDown();
                throw new IllegalArgumentException("\"" + method + "\" is not a one-thread benchmark of "
                    + SwiotlbBounceBenchmark.class.getSimpleName() + "; expected bounce or copy");
            }
        };
        return new Interleaved.Target(method, Interleaved.repeat(op), guest::tearDown);
    }

    /**
     * @param guest the pools
     * @param buffer the original
     * @return the bounce address (so the map is not dead code)
     * @throws Exception if the pool is full (it must not be: one mapping at a time)
     */
    @Benchmark
    public long bounce(Guest guest, Buffer buffer) throws Exception {
        long bus = guest.oneArea.map(buffer.original, DmaDirection.TO_DEVICE);
        guest.oneArea.unmap(bus, buffer.bytes, DmaDirection.TO_DEVICE);
        return bus;
    }

    /**
     * @param buffer the original and the target in shared memory
     */
    @Benchmark
    public void copy(Buffer buffer) {
        long at = buffer.targetOffset;
        MemorySegment.copy(buffer.original, 0, buffer.target, at, buffer.bytes);
        // POOL_SIZE is a multiple of every size measured, so a copy never runs past the end
        buffer.targetOffset = (at + buffer.bytes) % POOL_SIZE;
    }

    /**
     * @param guest the pools
     * @param buffer this thread's original
     * @return the bounce address
     * @throws Exception if the pool is full (it must not be)
     */
    @Benchmark
    @Threads(2)
    public long oneArea(Guest guest, SmallBuffer buffer) throws Exception {
        long bus = guest.oneArea.map(buffer.original, DmaDirection.TO_DEVICE);
        guest.oneArea.unmap(bus, CONTENDED_BYTES, DmaDirection.TO_DEVICE);
        return bus;
    }

    /**
     * @param guest the pools
     * @param buffer this thread's original
     * @return the bounce address
     * @throws Exception if the pool is full (it must not be)
     */
    @Benchmark
    @Threads(2)
    public long severalAreas(Guest guest, SmallBuffer buffer) throws Exception {
        long bus = guest.severalAreas.map(buffer.original, DmaDirection.TO_DEVICE);
        guest.severalAreas.unmap(bus, CONTENDED_BYTES, DmaDirection.TO_DEVICE);
        return bus;
    }
}

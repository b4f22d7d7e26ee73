package io.vringj.perf.dma;

import io.vringj.dma.CoherentBuffer;
import io.vringj.dma.DirectDmaOps;
import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaMappingException;
import io.vringj.dma.DmaOps;
import io.vringj.perf.regress.Interleaved;
import io.vringj.perf.ring.JvmFlags;
import io.vringj.perf.ring.Payloads;
import io.vringj.perf.ring.RingFixture;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.BenchmarkParams;

/**
 * Question 3: does the DMA-ops indirection cost anything? One request's whole trip on one thread
 * (stamp a 64-byte buffer, map it, add, publish, pop, read in place, return used, poll used,
 * unmap) with the bus address
 * <ul>
 *   <li>{@code premapped}: computed once at set-up (no {@link DmaOps} call at all);</li>
 *   <li>{@code directMonomorphic}: from {@link DirectDmaOps} at a call site that has only seen
 *       that type;</li>
 *   <li>{@code directMegamorphic}: from {@link DirectDmaOps} at a call site that, before it was
 *       compiled, saw three {@link DmaOps} types in turn (so the JIT cannot inline the call).</li>
 * </ul>
 * Target: direct within 2% of premapped. Each benchmark runs in its own fork, so only the
 * megamorphic fork's profile is polluted. Single-threaded: the ring's cross-thread cost is
 * question 2's, and leaving it out makes the indirection's share visible.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {JvmFlags.HEAP, JvmFlags.HEADLESS})
@State(Scope.Thread)
public class DmaIndirectionBenchmark {
    private static final long PAYLOAD = 64;
    /** Calls per type that pollute the megamorphic fork's profile before the benchmark runs. */
    private static final int POLLUTION_ROUNDS = 30_000;

    private RingFixture ring;
    private DriverQueue driver;
    private DeviceQueue device;
    private MemorySegment region;
    private MemorySegment buffer;
    private long offset;
    private long premappedBus;
    private DmaOps direct;
    private final BufferChain chain = new BufferChain(1);
    private final DescriptorChain popped = new DescriptorChain();
    private long sequence;

    /**
     * Builds the ring; for the megamorphic benchmark, runs the shared trip through three DmaOps types.
     *
     * @param params names the benchmark being set up
     * @throws Exception if the ring cannot be built
     */
    @Setup(Level.Trial)
    public void setUp(BenchmarkParams params) throws Exception {
        init(params.getBenchmark().endsWith("directMegamorphic"));
    }

    void init(boolean polluteCallSite) throws Exception {
        ring = new RingFixture(16, PAYLOAD);
        driver = ring.driver();
        device = ring.device();
        region = ring.regionSegment();
        buffer = ring.slotSegment(0);
        offset = ring.slotOffset(0);
        premappedBus = ring.slotAddress(0);
        direct = new DirectDmaOps(ring.memory());
        if (polluteCallSite) {
            DmaOps[] kinds = {direct, new ForwardingDmaOps(direct), new CountingDmaOps(direct)};
            for (int i = 0; i < POLLUTION_ROUNDS * kinds.length; i++) {
                mappedTrip(kinds[i % kinds.length]);
            }
        }
    }

    /**
     * For the interleaved harness ({@link Interleaved}): an instance set up for {@code method} and
     * a loop of that method. The megamorphic instance pollutes the shared call site in set-up, as its
     * own fork does, so it is never paired with the monomorphic one.
     *
     * @param method premapped, directMonomorphic or directMegamorphic
     * @return the instance's loop and tear-down
     * @throws Exception if the ring cannot be built
     */
    static Interleaved.Target interleavedTarget(String method) throws Exception {
        DmaIndirectionBenchmark b = new DmaIndirectionBenchmark();
        Interleaved.Trips trips = switch (method) {
            case "premapped" -> Interleaved.repeat(b::premapped);
            case "directMonomorphic", "directMegamorphic" -> Interleaved.repeat(() -> b.mappedTrip(b.direct));
            default -> throw new IllegalArgumentException("unknown DMA indirection benchmark \"" + method
                + "\"; expected premapped, directMonomorphic or directMegamorphic");
        };
        b.init(method.equals("directMegamorphic"));
        return new Interleaved.Target(method, trips, b::tearDown);
    }

    /** Frees the guest memory. */
    @TearDown(Level.Trial)
    public void tearDown() {
        ring.close();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if the ring breaks (it must not)
     */
    @Benchmark
    public long premapped() throws Exception {
        Payloads.stamp(region, offset, PAYLOAD, sequence++);
        return trip(premappedBus);
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if mapping or the ring fails (they must not)
     */
    @Benchmark
    public long directMonomorphic() throws Exception {
        return mappedTrip(direct);
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if mapping or the ring fails (they must not)
     */
    @Benchmark
    public long directMegamorphic() throws Exception {
        return mappedTrip(direct);
    }

    /** The one call site every mapped benchmark (and the pollution) goes through. */
    private long mappedTrip(DmaOps ops) throws Exception {
        Payloads.stamp(region, offset, PAYLOAD, sequence++);
        long bus = ops.map(buffer, DmaDirection.TO_DEVICE);
        long read = trip(bus);
        ops.unmap(bus, PAYLOAD, DmaDirection.TO_DEVICE);
        return read;
    }

    private long trip(long bus) throws Exception {
        driver.add(chain.clear().addReadable(bus, PAYLOAD));
        driver.publishQuiet();
        device.pop(popped);
        long read = Payloads.read(popped.pieceSegment(0), popped.pieceOffset(0), popped.pieceLength(0));
        device.addUsed(popped.head(), 0);
        device.publishUsedQuiet();
        if (driver.pollUsed() == DriverQueue.NONE) {
            throw new IllegalStateException("the device's used chain did not reach the driver");
        }
        return read;
    }

    /** A second DmaOps type: forwards every call. */
    static final class ForwardingDmaOps implements DmaOps {
        private final DmaOps delegate;

        ForwardingDmaOps(DmaOps delegate) {
            this.delegate = delegate;
        }

        @Override
        public long map(MemorySegment b, DmaDirection direction) throws DmaMappingException {
            return delegate.map(b, direction);
        }

        @Override
        public void unmap(long busAddress, long length, DmaDirection direction) {
            delegate.unmap(busAddress, length, direction);
        }

        @Override
        public void syncForCpu(long busAddress, long length, DmaDirection direction) {
            delegate.syncForCpu(busAddress, length, direction);
        }

        @Override
        public void syncForDevice(long busAddress, long length, DmaDirection direction) {
            delegate.syncForDevice(busAddress, length, direction);
        }

        @Override
        public CoherentBuffer allocCoherent(long size) throws DmaMappingException {
            return delegate.allocCoherent(size);
        }

        @Override
        public void freeCoherent(CoherentBuffer b) {
            delegate.freeCoherent(b);
        }
    }

    /** A third DmaOps type: forwards and counts live mappings. */
    static final class CountingDmaOps implements DmaOps {
        private final DmaOps delegate;
        private long live;

        CountingDmaOps(DmaOps delegate) {
            this.delegate = delegate;
        }

        @Override
        public long map(MemorySegment b, DmaDirection direction) throws DmaMappingException {
            long bus = delegate.map(b, direction);
            live++;
            return bus;
        }

        @Override
        public void unmap(long busAddress, long length, DmaDirection direction) {
            delegate.unmap(busAddress, length, direction);
            live--;
        }

        @Override
        public void syncForCpu(long busAddress, long length, DmaDirection direction) {
            delegate.syncForCpu(busAddress, length, direction);
        }

        @Override
        public void syncForDevice(long busAddress, long length, DmaDirection direction) {
            delegate.syncForDevice(busAddress, length, direction);
        }

        @Override
        public CoherentBuffer allocCoherent(long size) throws DmaMappingException {
            return delegate.allocCoherent(size);
        }

        @Override
        public void freeCoherent(CoherentBuffer b) {
            delegate.freeCoherent(b);
        }

        @Override
        public String toString() {
            return "CountingDmaOps[live=" + live + "]";
        }
    }
}

package io.vringj.perf.dma;

import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.IotlbAddressSpace;
import io.vringj.dma.Permission;
import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
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
 * Question 5: what does a device pay for reaching memory through its IOTLB when every lookup
 * hits, and how much of that does the per-queue ring-area translation cache save? One premapped
 * 64-byte request's trip on one thread (stamp, add, publish, pop, read in place, return used,
 * poll used) with the device over
 * <ul>
 *   <li>{@code identity}: {@link AddressSpace#identity} (bus = guest-physical, no IOMMU);</li>
 *   <li>{@code iotlbCached}: an {@link IotlbAddressSpace} over a {@link DeviceIotlb} holding one
 *       read-write entry for the whole guest memory (IOVA = guest-physical), so every lookup
 *       hits; the device queue translates its ring areas once and keeps them while the IOTLB's
 *       epoch stands still (Linux's per-queue ring-area cache);</li>
 *   <li>{@code iotlbUncached}: the same IOTLB behind a view whose epoch moves on every look, so
 *       the queue translates its three ring areas again on every operation — the device
 *       without the cache (allocation-free, like the rest).</li>
 * </ul>
 * Target: the cached IOTLB at least 95% of identity (Linux measured 98% with the cache, 63–82%
 * without).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {JvmFlags.HEAP, JvmFlags.HEADLESS})
@State(Scope.Thread)
public class DeviceIotlbBenchmark {
    private static final long PAYLOAD = 64;
    private static final int QUEUE_SIZE = 16;

    private RingFixture ring;
    private DriverQueue driver;
    private DeviceQueue device;
    private MemorySegment region;
    private long offset;
    private long bus;
    private final BufferChain chain = new BufferChain(1);
    private final DescriptorChain popped = new DescriptorChain();
    private long sequence;

    /**
     * Builds the ring with the device view the benchmark method names.
     *
     * @param params names the benchmark being set up
     * @throws Exception if the ring cannot be built
     */
    @Setup(Level.Trial)
    public void setUp(BenchmarkParams params) throws Exception {
        String name = params.getBenchmark();
        init(name.substring(name.lastIndexOf('.') + 1));
    }

    void init(String view) throws Exception {
        RingFixture.DeviceView deviceView = switch (view) {
            case "identity" -> AddressSpace::identity;
            case "iotlbCached" -> memory -> allHits(memory.region(0).size(), new DeviceIotlb(AddressSpace.identity(memory)));
            case "iotlbUncached" -> memory -> new EpochMovesOnEveryLook(
                allHits(memory.region(0).size(), new DeviceIotlb(AddressSpace.identity(memory))));
            default -> throw new IllegalArgumentException("unknown device view benchmark \"" + view
                + "\"; expected identity, iotlbCached or iotlbUncached");
        };
        ring = new RingFixture(QUEUE_SIZE, PAYLOAD, deviceView);
        driver = ring.driver();
        device = ring.device();
        region = ring.regionSegment();
        offset = ring.slotOffset(0);
        bus = ring.slotAddress(0);
    }

    private static AddressSpace allHits(long size, DeviceIotlb iotlb) {
        iotlb.update(RingFixture.GUEST_BASE, size, RingFixture.GUEST_BASE, Permission.RW);
        return new IotlbAddressSpace(iotlb);
    }

    /**
     * For the interleaved harness ({@link Interleaved}): an instance set up for {@code method} and
     * its loop. Every view runs the same trip, as the benchmark methods do.
     *
     * @param method identity, iotlbCached or iotlbUncached
     * @return the instance's loop and tear-down
     * @throws Exception if the ring cannot be built
     */
    static Interleaved.Target interleavedTarget(String method) throws Exception {
        DeviceIotlbBenchmark b = new DeviceIotlbBenchmark();
        b.init(method);
        return new Interleaved.Target(method, Interleaved.repeat(b::trip), b::tearDown);
    }

    /** Frees the guest memory. */
    @TearDown(Level.Trial)
    public void tearDown() {
        ring.close();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if the ring fails (it must not)
     */
    @Benchmark
    public long identity() throws Exception {
        return trip();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if the ring fails (it must not)
     */
    @Benchmark
    public long iotlbCached() throws Exception {
        return trip();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if the ring fails (it must not)
     */
    @Benchmark
    public long iotlbUncached() throws Exception {
        return trip();
    }

    private long trip() throws Exception {
        Payloads.stamp(region, offset, PAYLOAD, sequence++);
        driver.add(chain.clear().addReadable(bus, PAYLOAD));
        driver.publishQuiet();
        if (!device.pop(popped)) {
            throw new IllegalStateException("the device did not see the chain the driver published");
        }
        long read = Payloads.read(popped.pieceSegment(0), popped.pieceOffset(0), popped.pieceLength(0));
        device.addUsed(popped.head(), 0);
        device.publishUsedQuiet();
        if (driver.pollUsed() == DriverQueue.NONE) {
            throw new IllegalStateException("the device's used chain did not reach the driver");
        }
        return read;
    }

    /** An address space whose epoch moves on every look: a device queue over it never keeps its ring areas. */
    static final class EpochMovesOnEveryLook implements AddressSpace {
        private final AddressSpace inner;
        private long epoch;

        EpochMovesOnEveryLook(AddressSpace inner) {
            this.inner = inner;
        }

        @Override
        public void translate(long busAddress, long length, Access access, TranslationSink sink)
            throws TranslationException {
            inner.translate(busAddress, length, access, sink);
        }

        @Override
        public long epoch() {
            return ++epoch;
        }
    }
}

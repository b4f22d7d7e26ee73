package io.vringj.perf.dma;

import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.DirectDmaOps;
import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaOps;
import io.vringj.dma.Iommu;
import io.vringj.dma.IommuDmaOps;
import io.vringj.dma.IotlbAddressSpace;
import io.vringj.memory.AddressSpace;
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
 * Question 4: what does each IOMMU mode cost a request that maps and unmaps its buffer? One
 * request's whole trip on one thread — stamp a 64-byte buffer, map it {@code TO_DEVICE}, add,
 * publish, pop, read in place, return used, poll used, unmap — with
 * <ul>
 *   <li>{@code direct}: {@link DirectDmaOps}; the device translates by identity;</li>
 *   <li>{@code passthrough}: {@link IommuDmaOps} in {@code PASSTHROUGH} mode ({@code iommu=pt}:
 *       bus = guest-physical, only the range is checked); the device translates by identity;</li>
 *   <li>{@code lazy}: {@code LAZY} mode — a fresh IOVA and page-table entries per map, unmapped
 *       IOVAs retired in batches of {@value IommuDmaOps#DEFAULT_FLUSH_QUEUE_SIZE} with one device
 *       IOTLB invalidation each;</li>
 *   <li>{@code strict}: {@code STRICT} mode — every unmap invalidates the device IOTLB before it
 *       returns (which also resets the device's ring-area translation cache).</li>
 * </ul>
 * In lazy and strict mode the device reaches memory through a {@link DeviceIotlb} that asks the
 * IOMMU synchronously on a miss ({@link Iommu#resolve}); the ring areas are mapped 1:1 in the
 * IOMMU once, as coherent ring memory is. So the figure is the whole path's cost of the mode:
 * driver-side map/unmap plus the device's misses and invalidations. Targets: passthrough at least
 * 98% of direct, lazy at least 70%; strict is measured.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {JvmFlags.HEAP, JvmFlags.HEADLESS})
@State(Scope.Thread)
public class IommuModesBenchmark {
    private static final long PAYLOAD = 64;
    private static final int QUEUE_SIZE = 16;
    private static final long IOVA_BASE = 0x1_0000_0000L;
    private static final long IOVA_SIZE = 256L << 20;

    private RingFixture ring;
    private DriverQueue driver;
    private DeviceQueue device;
    private MemorySegment region;
    private MemorySegment buffer;
    private long offset;
    private DmaOps ops;
    private final BufferChain chain = new BufferChain(1);
    private final DescriptorChain popped = new DescriptorChain();
    private long sequence;

    /**
     * Builds the ring and the DMA ops of the mode the benchmark method names.
     *
     * @param params names the benchmark being set up
     * @throws Exception if the ring cannot be built
     */
    @Setup(Level.Trial)
    public void setUp(BenchmarkParams params) throws Exception {
        String name = params.getBenchmark();
        init(name.substring(name.lastIndexOf('.') + 1));
    }

    void init(String mode) throws Exception {
        DmaOps[] built = new DmaOps[1];
        RingFixture.DeviceView view = switch (mode) {
            case "direct" -> memory -> {
                built[0] = new DirectDmaOps(memory);
                return AddressSpace.identity(memory);
            };
            case "passthrough" -> memory -> {
                built[0] = new IommuDmaOps(new Iommu(memory, IOVA_BASE, IOVA_SIZE), IommuDmaOps.Mode.PASSTHROUGH, null);
                return AddressSpace.identity(memory);
            };
            case "lazy", "strict" -> memory -> {
                Iommu iommu = new Iommu(memory, IOVA_BASE, IOVA_SIZE);
                // ring memory is coherent: mapped 1:1 once, so the ring areas' addresses are bus addresses
                iommu.identityMap(RingFixture.GUEST_BASE, RingFixture.ringAreaBytes(QUEUE_SIZE));
                DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
                iommu.addDeviceTlb(iotlb::invalidate);
                built[0] = new IommuDmaOps(iommu, mode.equals("lazy") ? IommuDmaOps.Mode.LAZY : IommuDmaOps.Mode.STRICT,
                    null);
                return new IotlbAddressSpace(iotlb, iommu);
            };
            default -> throw new IllegalArgumentException("unknown IOMMU mode benchmark \"" + mode
                + "\"; expected direct, passthrough, lazy or strict");
        };
        ring = new RingFixture(QUEUE_SIZE, PAYLOAD, view);
        ops = built[0];
        driver = ring.driver();
        device = ring.device();
        region = ring.regionSegment();
        buffer = ring.slotSegment(0);
        offset = ring.slotOffset(0);
    }

    /**
     * For the interleaved harness ({@link Interleaved}): an instance set up for {@code method} and
     * its loop. Every mode runs the same trip, as the benchmark methods do.
     *
     * @param method direct, passthrough, lazy or strict
     * @return the instance's loop and tear-down
     * @throws Exception if the ring cannot be built
     */
    static Interleaved.Target interleavedTarget(String method) throws Exception {
        IommuModesBenchmark b = new IommuModesBenchmark();
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
     * @throws Exception if mapping or the ring fails (they must not)
     */
    @Benchmark
    public long direct() throws Exception {
        return trip();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if mapping or the ring fails (they must not)
     */
    @Benchmark
    public long passthrough() throws Exception {
        return trip();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if mapping or the ring fails (they must not)
     */
    @Benchmark
    public long lazy() throws Exception {
        return trip();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if mapping or the ring fails (they must not)
     */
    @Benchmark
    public long strict() throws Exception {
        return trip();
    }

    private long trip() throws Exception {
        Payloads.stamp(region, offset, PAYLOAD, sequence++);
        long bus = ops.map(buffer, DmaDirection.TO_DEVICE);
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
        ops.unmap(bus, PAYLOAD, DmaDirection.TO_DEVICE);
        return read;
    }
}

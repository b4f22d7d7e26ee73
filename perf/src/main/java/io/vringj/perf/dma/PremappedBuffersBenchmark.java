package io.vringj.perf.dma;

import io.vringj.dma.CoherentBuffer;
import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.DirectDmaOps;
import io.vringj.dma.DmaBuffer;
import io.vringj.dma.DmaBufferPool;
import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaDriverQueue;
import io.vringj.dma.DmaOps;
import io.vringj.dma.Iommu;
import io.vringj.dma.IommuDmaOps;
import io.vringj.dma.IotlbAddressSpace;
import io.vringj.memory.AddressSpace;
import io.vringj.perf.regress.Interleaved;
import io.vringj.perf.ring.JvmFlags;
import io.vringj.perf.ring.Payloads;
import io.vringj.perf.ring.RingFixture;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingSizes;
import io.vringj.swiotlb.ProtectedGuest;
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
 * Question 8: do premapped buffers make the DMA path as fast as the direct one? One 64-byte
 * request's whole trip on one thread through {@link DmaDriverQueue} (take a buffer, stamp it,
 * add, publish, pop, read in place, return used, poll used, give it back) with
 * <ul>
 *   <li>{@code direct}: {@link DirectDmaOps}, mapped per request (a guest-physical lookup), the
 *       device over identity: the unprotected ring, and the floor every other figure is judged by;</li>
 *   <li>{@code passthroughPremapped}, {@code lazyPremapped}, {@code strictPremapped}: a
 *       {@link DmaBufferPool} mapped once through {@link IommuDmaOps} in that mode; requests offer
 *       its buffers with {@link DmaDriverQueue#addPremapped}, so no IOVA is allocated, no page table
 *       written and no IOTLB entry invalidated per request; in lazy and strict mode the device
 *       translates through a {@link DeviceIotlb} (all hits after warm-up);</li>
 *   <li>{@code lazyMapped}, {@code strictMapped}: the classic path, every request mapped and
 *       unmapped through {@link IommuDmaOps} (a fresh IOVA from the allocator's caches, page-table
 *       entries, a device IOTLB miss per request, invalidations: batched in lazy mode, one per
 *       unmap in strict mode);</li>
 *   <li>{@code protectedPool}: a {@link ProtectedGuest}: rings and a coherent
 *       {@link DmaBufferPool} in its shared region, the device over its shared-only view, nothing
 *       bounced;</li>
 *   <li>{@code protectedBounce}: the same guest with the buffer in private memory, bounced
 *       through swiotlb per request (map copies in, unmap frees the slots).</li>
 * </ul>
 * Targets: every premapped IOMMU mode at least 95% of {@code direct}; {@code protectedPool} at
 * least 95% of {@code direct} (the unprotected ring); lazy mapped at least 30%, strict mapped at
 * least 20%.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {JvmFlags.HEAP, JvmFlags.HEADLESS})
@State(Scope.Thread)
public class PremappedBuffersBenchmark {
    private static final long PAYLOAD = 64;
    private static final int QUEUE_SIZE = 16;
    private static final long IOVA_BASE = 0x1_0000_0000L;
    private static final long IOVA_SIZE = 256L << 20;
    private static final long FEATURES = RingFixture.FEATURES;

    private RingFixture ring;
    private ProtectedGuest guest;
    private DmaDriverQueue driver;
    private DeviceQueue device;
    private DmaBufferPool pool;
    private final DmaBuffer[] premapped = new DmaBuffer[1];
    private final MemorySegment[] mapped = new MemorySegment[1];
    private final DescriptorChain popped = new DescriptorChain();
    private long sequence;

    /**
     * Builds the ring, the DMA ops and the pool of the configuration the benchmark method names.
     *
     * @param params names the benchmark being set up
     * @throws Exception if the ring cannot be built
     */
    @Setup(Level.Trial)
    public void setUp(BenchmarkParams params) throws Exception {
        String name = params.getBenchmark();
        init(name.substring(name.lastIndexOf('.') + 1));
    }

    void init(String config) throws Exception {
        switch (config) {
            case "direct" -> fixture(null, false);
            case "passthroughPremapped" -> fixture(IommuDmaOps.Mode.PASSTHROUGH, true);
            case "lazyPremapped" -> fixture(IommuDmaOps.Mode.LAZY, true);
            case "strictPremapped" -> fixture(IommuDmaOps.Mode.STRICT, true);
            case "lazyMapped" -> fixture(IommuDmaOps.Mode.LAZY, false);
            case "strictMapped" -> fixture(IommuDmaOps.Mode.STRICT, false);
            case "protectedPool" -> protectedGuest(true);
            case "protectedBounce" -> protectedGuest(false);
            default -> throw new IllegalArgumentException("unknown premapped-buffer benchmark \"" + config
                + "\"; expected direct, passthroughPremapped, lazyPremapped, strictPremapped, lazyMapped, strictMapped, "
                + "protectedPool or protectedBounce");
        }
    }

    /** A ring fixture over direct DMA ({@code mode} null) or the IOMMU in {@code mode}. */
    private void fixture(IommuDmaOps.Mode mode, boolean usePool) throws Exception {
        DmaOps[] built = new DmaOps[1];
        RingFixture.DeviceView view = memory -> {
            if (mode == null) {
                built[0] = new DirectDmaOps(memory);
                return AddressSpace.identity(memory);
            }
            Iommu iommu = new Iommu(memory, IOVA_BASE, IOVA_SIZE);
            if (mode == IommuDmaOps.Mode.PASSTHROUGH) {
                built[0] = new IommuDmaOps(iommu, mode, null);
                return AddressSpace.identity(memory);
            }
            // ring memory is coherent: mapped 1:1 once, so the ring areas' addresses are bus addresses
            iommu.identityMap(RingFixture.GUEST_BASE, RingFixture.ringAreaBytes(QUEUE_SIZE));
            DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
            iommu.addDeviceTlb(iotlb::invalidate);
            built[0] = new IommuDmaOps(iommu, mode, null);
            return new IotlbAddressSpace(iotlb, iommu);
        };
        ring = new RingFixture(QUEUE_SIZE, PAYLOAD, view);
        DmaOps ops = built[0];
        driver = new DmaDriverQueue(ring.driver(), ops, 1);
        device = ring.device();
        // the fixture's Q payload slots are contiguous, one cache line each
        MemorySegment slots = ring.memory().slice(ring.slotAddress(0), QUEUE_SIZE * PAYLOAD);
        if (usePool) {
            pool = DmaBufferPool.map(ops, slots, PAYLOAD, DmaDirection.TO_DEVICE);
        } else {
            mapped[0] = ring.slotSegment(0);
        }
    }

    private void protectedGuest(boolean usePool) throws Exception {
        guest = ProtectedGuest.builder().secureMemory(0, 1L << 20).bouncePoolSize(4L << 20).areas(1).build();
        DmaOps ops = guest.dmaOps();
        RingSizes sizes = RingSizes.of(FEATURES, QUEUE_SIZE);
        CoherentBuffer desc = ops.allocCoherent(sizes.descriptorArea());
        CoherentBuffer avail = ops.allocCoherent(sizes.driverArea());
        CoherentBuffer used = ops.allocCoherent(sizes.deviceArea());
        DriverQueue ringDriver = DriverQueue.create(FEATURES, QUEUE_SIZE, desc.memory(), avail.memory(), used.memory());
        device = DeviceQueue.create(FEATURES, QUEUE_SIZE, new RingAddresses(desc.busAddress(), avail.busAddress(),
            used.busAddress()), guest.deviceAddressSpace());
        // both sides poll, as in every other configuration
        ringDriver.disableInterrupts();
        device.disableNotifications();
        driver = new DmaDriverQueue(ringDriver, ops, 1);
        if (usePool) {
            pool = DmaBufferPool.allocate(ops, PAYLOAD, QUEUE_SIZE);
        } else {
            mapped[0] = guest.secureMemory().asSlice(0, PAYLOAD);
        }
    }

    /**
     * For the interleaved harness ({@link Interleaved}): an instance set up for {@code method} and
     * its loop: the premapped trip for the pool configurations, the mapped trip for the others, as
     * the benchmark methods do.
     *
     * @param method a benchmark method's name
     * @return the instance's loop and tear-down
     * @throws Exception if the ring cannot be built
     */
    static Interleaved.Target interleavedTarget(String method) throws Exception {
        PremappedBuffersBenchmark b = new PremappedBuffersBenchmark();
        b.init(method);
        Interleaved.Trips trips = b.pool != null ? Interleaved.repeat(b::premappedTrip)
            : Interleaved.repeat(b::mappedTrip);
        return new Interleaved.Target(method, trips, b::tearDown);
    }

    /** Frees the guest memory. */
    @TearDown(Level.Trial)
    public void tearDown() {
        if (ring != null) {
            ring.close();
        }
        if (guest != null) {
            guest.close();
        }
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if mapping or the ring fails (they must not)
     */
    @Benchmark
    public long direct() throws Exception {
        return mappedTrip();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if the ring fails (it must not)
     */
    @Benchmark
    public long passthroughPremapped() throws Exception {
        return premappedTrip();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if the ring fails (it must not)
     */
    @Benchmark
    public long lazyPremapped() throws Exception {
        return premappedTrip();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if the ring fails (it must not)
     */
    @Benchmark
    public long strictPremapped() throws Exception {
        return premappedTrip();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if mapping or the ring fails (they must not)
     */
    @Benchmark
    public long lazyMapped() throws Exception {
        return mappedTrip();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if mapping or the ring fails (they must not)
     */
    @Benchmark
    public long strictMapped() throws Exception {
        return mappedTrip();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if the ring fails (it must not)
     */
    @Benchmark
    public long protectedPool() throws Exception {
        return premappedTrip();
    }

    /**
     * @return the payload read on the device side
     * @throws Exception if mapping or the ring fails (they must not)
     */
    @Benchmark
    public long protectedBounce() throws Exception {
        return mappedTrip();
    }

    private long premappedTrip() throws Exception {
        DmaBuffer b = pool.take();
        Payloads.stamp(b.segment(), 0, PAYLOAD, sequence++);
        premapped[0] = b;
        if (driver.addPremapped(premapped, 1, 0, b) < 0) {
            throw new IllegalStateException("the ring had no room for one request");
        }
        long read = deviceTrip();
        pool.give((DmaBuffer) driver.usedToken());
        return read;
    }

    private long mappedTrip() throws Exception {
        Payloads.stamp(mapped[0], 0, PAYLOAD, sequence++);
        if (driver.add(mapped, 1, 0, null) < 0) {
            throw new IllegalStateException("the ring had no room for one request");
        }
        return deviceTrip();
    }

    private long deviceTrip() throws Exception {
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
}

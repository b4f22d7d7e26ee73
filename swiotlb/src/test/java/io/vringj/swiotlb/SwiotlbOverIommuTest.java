package io.vringj.swiotlb;

import static io.vringj.swiotlb.SwiotlbPool.SEGMENT_SIZE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.dma.CoherentBuffer;
import io.vringj.dma.DmaDirection;
import io.vringj.dma.Iommu;
import io.vringj.dma.IommuDmaOps;
import io.vringj.dma.IotlbMessage;
import io.vringj.dma.Permission;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** SwiotlbDmaOps stacked over IommuDmaOps: the pool is mapped 1:1 once, bounces cost no IOMMU work. */
class SwiotlbOverIommuTest {
    static final long SECURE_BASE = 0;
    static final long SHARED_BASE = 0x1_0000_0000L;
    static final long POOL_BASE = SHARED_BASE;
    static final long RESTRICTED_BASE = SHARED_BASE + SEGMENT_SIZE;
    static final long SHARED_DATA = SHARED_BASE + 2 * SEGMENT_SIZE;
    static final long IOVA_BASE = 0x40_0000_0000L;

    private final GuestMemory memory = GuestMemory.builder()
        .allocate(SECURE_BASE, 1L << 20, RegionKind.SECURE)
        .allocate(SHARED_BASE, 4 * SEGMENT_SIZE, RegionKind.SHARED)
        .build();
    private final Iommu iommu = new Iommu(memory, IOVA_BASE, 256 * 4096L);
    private final IommuDmaOps iommuOps = new IommuDmaOps(iommu, IommuDmaOps.Mode.STRICT, null);
    private final SwiotlbPool pool = SwiotlbPool.builder(memory, POOL_BASE, SEGMENT_SIZE).areas(1).build();
    private final SwiotlbPool restricted = SwiotlbPool.builder(memory, RESTRICTED_BASE, SEGMENT_SIZE).areas(1).build();

    @AfterEach
    void close() {
        memory.close();
    }

    @Test
    void bothPoolsAreMappedOneToOneOnceAndBouncesCostNoIommuWork() throws Exception {
        SwiotlbDmaOps ops = SwiotlbDmaOps.builder(pool, iommuOps, SwiotlbDmaOps.Mode.FORCE_BOUNCE)
            .coherentPool(restricted).build();
        assertTrue(iommu.isMapped(POOL_BASE, SEGMENT_SIZE));
        assertTrue(iommu.isMapped(RESTRICTED_BASE, SEGMENT_SIZE));
        assertEquals(POOL_BASE + 0x1234, iommu.translate(POOL_BASE + 0x1234));
        long pagesAfterSetUp = iommu.mappedPages();

        long bus = ops.map(memory.slice(SECURE_BASE + 4096, 3000), DmaDirection.FROM_DEVICE);
        assertTrue(pool.owns(bus));
        assertEquals(0, iommuOps.maps(), "a bounce maps nothing in the IOMMU");
        assertEquals(pagesAfterSetUp, iommu.mappedPages());
        // the device's IOTLB resolves the bounce address to itself
        IotlbMessage update = iommu.resolve(bus);
        assertEquals(bus & ~0xFFFL, update.uaddr() & ~0xFFFL);
        assertEquals(Permission.RW, update.permission());
        ops.unmap(bus, 3000, DmaDirection.FROM_DEVICE);

        CoherentBuffer ring = ops.allocCoherent(4096);
        assertEquals(ring.busAddress(), iommu.translate(ring.busAddress()), "rings are reachable 1:1 too");
        ops.freeCoherent(ring);

        // a second stack over the same IOMMU and pools leaves the identity maps alone
        SwiotlbDmaOps again = SwiotlbDmaOps.builder(pool, iommuOps, SwiotlbDmaOps.Mode.FORCE_BOUNCE)
            .coherentPool(restricted).build();
        assertEquals(pagesAfterSetUp, iommu.mappedPages());
        assertEquals(SwiotlbDmaOps.Mode.FORCE_BOUNCE, again.mode());
    }

    @Test
    void reachableBuffersGoThroughTheIommuAndUnreachableOnesBounce() throws Exception {
        SwiotlbDmaOps ops = SwiotlbDmaOps.builder(pool, iommuOps, SwiotlbDmaOps.Mode.BOUNCE_WHEN_UNREACHABLE).build();
        MemorySegment shared = memory.slice(SHARED_DATA + 0x10, 500);
        long iova = ops.map(shared, DmaDirection.TO_DEVICE);
        assertFalse(pool.owns(iova));
        assertTrue(iova >= IOVA_BASE, "an IOVA from the window, not the pool");
        assertEquals(SHARED_DATA + 0x10, iommu.translate(iova));
        assertEquals(1, iommuOps.maps());

        long bounced = ops.map(memory.slice(SECURE_BASE, 500), DmaDirection.TO_DEVICE);
        assertTrue(pool.owns(bounced));
        assertEquals(1, iommuOps.maps(), "the SECURE buffer bounced without an IOMMU map");

        ops.unmap(iova, 500, DmaDirection.TO_DEVICE);
        assertEquals(0, iommuOps.liveMappings(), "the IOVA went back to the IOMMU ops");
        ops.unmap(bounced, 500, DmaDirection.TO_DEVICE);
        assertEquals(0, pool.slotsInUse());
    }

    @Test
    void refusesTransientPoolsOverATranslatingIommu() {
        SwiotlbPool reserve = SwiotlbPool.builder(memory, SHARED_DATA, SEGMENT_SIZE).areas(1).build();
        SwiotlbPool growing = SwiotlbPool.builder(memory, POOL_BASE, SEGMENT_SIZE).areas(1)
            .transientPools(TransientPoolSource.fromReserve(reserve)).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> SwiotlbDmaOps.builder(growing, iommuOps, SwiotlbDmaOps.Mode.FORCE_BOUNCE).build());
        assertTrue(e.getMessage().contains("transient"), e.getMessage());
        assertFalse(iommu.isMapped(POOL_BASE, 4096), "nothing was mapped");
    }
}

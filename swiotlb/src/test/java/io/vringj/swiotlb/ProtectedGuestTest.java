package io.vringj.swiotlb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.dma.CoherentBuffer;
import io.vringj.dma.DeviceRefusedException;
import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaDriverQueue;
import io.vringj.dma.DmaMappingException;
import io.vringj.memory.Access;
import io.vringj.memory.RegionKind;
import io.vringj.memory.TranslationException;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

class ProtectedGuestTest {
    static final long V1 = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
    static final long PLATFORM = VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM);

    private static ProtectedGuest small() {
        return ProtectedGuest.builder().secureMemory(0, 4L << 20).bouncePoolSize(1L << 20)
            .coherentPoolSize(SwiotlbPool.SEGMENT_SIZE).build();
    }

    @Test
    void oneCallBuildsSecureMemorySharedPoolsAProtectedDeviceViewAndForcedBouncing() throws Exception {
        try (ProtectedGuest guest = small()) {
            assertEquals(RegionKind.SECURE, guest.secureRegion().kind());
            assertEquals(RegionKind.SHARED, guest.sharedRegion().kind());
            assertEquals(2, guest.memory().regionCount());
            assertEquals(ProtectedGuest.DEFAULT_SHARED_BASE, guest.bouncePool().base());
            assertEquals(1L << 20, guest.bouncePool().size());
            assertEquals(guest.bouncePool().base() + guest.bouncePool().size(), guest.coherentPool().base());
            assertEquals(SwiotlbDmaOps.Mode.FORCE_BOUNCE, guest.dmaOps().mode());
            assertSame(guest.coherentPool(), guest.dmaOps().coherentPool());

            MemorySegment buffer = guest.secureMemory().asSlice(8192, 100);
            long bus = guest.dmaOps().map(buffer, DmaDirection.TO_DEVICE);
            assertTrue(guest.bouncePool().owns(bus));
            assertEquals(100, guest.deviceAddressSpace().translate(bus, 100, Access.READ).byteSize());
            assertEquals(TranslationException.Kind.FAULT, assertThrows(TranslationException.class,
                () -> guest.deviceAddressSpace().translate(8192, 100, Access.READ)).kind());
            guest.dmaOps().unmap(bus, 100, DmaDirection.TO_DEVICE);
        }
    }

    @Test
    void thePolicyHandsEveryDeviceTheBouncingOpsAndRefusesDevicesWithoutAccessPlatform() throws Exception {
        try (ProtectedGuest guest = small()) {
            assertTrue(guest.dmaPolicy().protectedGuest());
            assertSame(guest.dmaOps(), guest.dmaPolicy().choose("virtio-rng", V1 | PLATFORM, V1 | PLATFORM));
            DeviceRefusedException refused = assertThrows(DeviceRefusedException.class,
                () -> guest.dmaPolicy().choose("virtio-legacy", V1, V1));
            assertTrue(refused.getMessage().contains("ACCESS_PLATFORM"), refused.getMessage());
        }
    }

    @Test
    void aRequestThatDoesNotFitTheBouncePoolLeavesNothingMappedAndTheRingUntouched() throws Exception {
        try (ProtectedGuest guest = ProtectedGuest.builder().secureMemory(0, 4L << 20)
            .bouncePoolSize(SwiotlbPool.SEGMENT_SIZE).coherentPoolSize(SwiotlbPool.SEGMENT_SIZE).build()) {
            int q = 16;
            long features = V1 | PLATFORM;
            CoherentBuffer desc = guest.dmaOps().allocCoherent(16L * q);
            CoherentBuffer avail = guest.dmaOps().allocCoherent(6 + 2L * q);
            CoherentBuffer used = guest.dmaOps().allocCoherent(6 + 8L * q);
            DmaDriverQueue driver = new DmaDriverQueue(
                DriverQueue.create(features, q, desc.memory(), avail.memory(), used.memory()), guest.dmaOps(), 2);
            MemorySegment[] request = {guest.secureMemory().asSlice(0, 200 * 1024),
                guest.secureMemory().asSlice(1L << 20, 100 * 1024)};
            DmaMappingException e = assertThrows(DmaMappingException.class, () -> driver.add(request, 1, 1, null));
            assertEquals(DmaMappingException.Reason.NO_SPACE, e.reason());
            assertTrue(e.getMessage().contains("102400 bytes"), e.getMessage());
            SwiotlbStatistics s = guest.bouncePool().statistics();
            assertEquals(0, s.slotsInUse(), "the readable buffer mapped first was unmapped again");
            assertEquals(0, s.liveMappings());
            assertEquals(1, s.failedMaps());
            assertEquals(q, driver.queue().numFree(), "the ring is untouched");
        }
    }

    @Test
    void confidentialPoolSizeIsSixPercentClampedToLinuxBounds() {
        assertEquals(64L << 20, ProtectedGuest.confidentialPoolSize(512L << 20));
        assertEquals(1L << 30, ProtectedGuest.confidentialPoolSize(64L << 30));
        long eightGib = ProtectedGuest.confidentialPoolSize(8L << 30);
        assertTrue(eightGib >= (8L << 30) / 100 * 6 && eightGib % SwiotlbPool.SEGMENT_SIZE == 0, "" + eightGib);
    }

    @Test
    void aBadLayoutFailsAndLeavesNoMemoryBehind() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> ProtectedGuest.builder().secureMemory(0, 4L << 20).sharedBase(1L << 20).bouncePoolSize(1L << 20).build());
        assertTrue(e.getMessage().contains("overlaps"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
            () -> ProtectedGuest.builder().secureMemory(0, 4L << 20).bouncePoolSize(100_000).build());
    }
}

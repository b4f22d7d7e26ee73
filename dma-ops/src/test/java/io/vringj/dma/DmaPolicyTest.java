package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.GuestMemory;
import io.vringj.ring.VirtioFeatures;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class DmaPolicyTest {
    private static final long V1 = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
    private static final long AP = VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM);

    private final GuestMemory memory = GuestMemory.ofShared(0x1000_0000L, 1 << 16);
    private final DmaOps direct = new DirectDmaOps(memory);
    private final DmaOps platform = new IommuDmaOps(new Iommu(memory, 0x1_0000_0000L, 1 << 20), IommuDmaOps.Mode.STRICT, null);
    private final DmaOps bounce = new DirectDmaOps(memory);

    @AfterEach
    void close() {
        memory.close();
    }

    @Test
    void accessPlatformNegotiatedUsesThePlatformOpsOtherwiseDirect() throws Exception {
        DmaPolicy policy = DmaPolicy.builder().platformOps(platform).directOps(direct).build();
        assertSame(platform, policy.choose("rng", V1 | AP, V1 | AP));
        assertSame(direct, policy.choose("rng", V1 | AP, V1));
        assertTrue(DmaPolicy.useDmaApi(AP));
        assertFalse(DmaPolicy.useDmaApi(V1));
    }

    @Test
    void platformHookOverridesPerDevice() throws Exception {
        DmaPolicy policy = DmaPolicy.builder().platformOps(platform).directOps(direct)
            .platformHook((device, features) -> device.equals("blk") ? bounce : null).build();
        assertSame(bounce, policy.choose("blk", V1, V1));
        assertSame(direct, policy.choose("rng", V1, V1));
    }

    @Test
    void xenLikePlatformAlwaysUsesTheDmaApi() throws Exception {
        DmaPolicy policy = DmaPolicy.builder().platformOps(platform).directOps(direct).alwaysUseDmaApi(true).build();
        assertSame(platform, policy.choose("rng", V1, V1));
    }

    @Test
    void protectedGuestRefusesADeviceWithoutVersion1AndAccessPlatformNamingBoth() {
        DmaPolicy policy = DmaPolicy.builder().platformOps(platform).directOps(direct).protectedGuest(true)
            .platformHook((d, f) -> bounce).build();
        DeviceRefusedException e = assertThrows(DeviceRefusedException.class, () -> policy.choose("rng", 0, 0));
        assertTrue(e.getMessage().contains("VIRTIO_F_VERSION_1") && e.getMessage().contains("VIRTIO_F_ACCESS_PLATFORM"),
            e.getMessage());
        assertEquals(V1 | AP, e.missingFeatures());
        DeviceRefusedException onlyAp = assertThrows(DeviceRefusedException.class, () -> policy.choose("rng", V1, V1));
        assertEquals(AP, onlyAp.missingFeatures());
        assertFalse(onlyAp.getMessage().contains("VERSION_1"), onlyAp.getMessage());
    }

    @Test
    void protectedGuestHookForcesBouncingForAnAcceptedDevice() throws Exception {
        DmaPolicy policy = DmaPolicy.builder().platformOps(platform).directOps(direct).protectedGuest(true)
            .platformHook((d, f) -> bounce).build();
        assertSame(bounce, policy.choose("rng", V1 | AP, V1 | AP));
    }
}

package io.vringj.dma;

import io.vringj.ring.VirtioFeatures;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Chooses the {@link DmaOps} a virtio device's rings and buffers go through, as Linux's
 * {@code vring_use_dma_api()} decides whether a virtqueue uses the DMA API:
 *
 * <pre>
 *   protected guest and the device does not offer VERSION_1 + ACCESS_PLATFORM → refuse the device
 *   platform hook returns ops for the device                                → those ops
 *   ACCESS_PLATFORM negotiated (or the platform always uses the DMA API, Xen) → platform ops
 *   otherwise                                                                → direct (bus = guest-physical)
 * </pre>
 *
 * <p>The hook is how a platform overrides the choice per device; a protected guest's hook
 * returns the bouncing (swiotlb) ops for every device, because its devices cannot reach
 * private memory whatever was negotiated.
 *
 * <p>Immutable and thread-safe.
 */
public final class DmaPolicy {
    private static final long REQUIRED_BY_PROTECTED_GUEST =
        VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM);

    /** A platform's per-device override of the choice. */
    @FunctionalInterface
    public interface PlatformHook {
        /**
         * @param device the device's name
         * @param negotiatedFeatures the features negotiated with it
         * @return the ops this device must use, or {@code null} to let the policy decide
         */
        DmaOps opsFor(String device, long negotiatedFeatures);
    }

    private final DmaOps platformOps;
    private final DmaOps directOps;
    private final PlatformHook hook;
    private final boolean protectedGuest;
    private final boolean alwaysUseDmaApi;

    private DmaPolicy(Builder b) {
        this.platformOps = Objects.requireNonNull(b.platformOps, "platformOps");
        this.directOps = Objects.requireNonNull(b.directOps, "directOps");
        this.hook = b.hook;
        this.protectedGuest = b.protectedGuest;
        this.alwaysUseDmaApi = b.alwaysUseDmaApi;
    }

    /** @return a builder */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Linux's {@code vring_use_dma_api()} without the platform: whether a device with these
     * negotiated features goes through the DMA API.
     *
     * @param negotiatedFeatures the negotiated feature bits
     * @return whether {@code VIRTIO_F_ACCESS_PLATFORM} was negotiated
     */
    public static boolean useDmaApi(long negotiatedFeatures) {
        return VirtioFeatures.has(negotiatedFeatures, VirtioFeatures.ACCESS_PLATFORM);
    }

    /**
     * Checks a device's offered features before negotiation. A protected guest refuses a
     * device that does not offer both {@code VERSION_1} and {@code ACCESS_PLATFORM}.
     *
     * @param device the device's name
     * @param offeredFeatures the features the device offers
     * @throws DeviceRefusedException if this is a protected guest and a required feature is
     *     missing; the message names each one
     */
    public void checkDevice(String device, long offeredFeatures) throws DeviceRefusedException {
        if (!protectedGuest) {
            return;
        }
        long missing = REQUIRED_BY_PROTECTED_GUEST & ~offeredFeatures;
        if (missing != 0) {
            List<String> names = new ArrayList<>();
            if (VirtioFeatures.has(missing, VirtioFeatures.VERSION_1)) {
                names.add("VIRTIO_F_VERSION_1 (bit 32)");
            }
            if (VirtioFeatures.has(missing, VirtioFeatures.ACCESS_PLATFORM)) {
                names.add("VIRTIO_F_ACCESS_PLATFORM (bit 33)");
            }
            throw new DeviceRefusedException(device, missing, "device " + device + " offers features 0x"
                + Long.toHexString(offeredFeatures) + " without " + String.join(" and ", names)
                + "; a protected guest needs both to keep its memory private");
        }
    }

    /**
     * Chooses the device's DMA ops.
     *
     * @param device the device's name
     * @param offeredFeatures what the device offered
     * @param negotiatedFeatures what was negotiated
     * @return the ops its rings and buffers go through
     * @throws DeviceRefusedException as {@link #checkDevice}
     */
    public DmaOps choose(String device, long offeredFeatures, long negotiatedFeatures) throws DeviceRefusedException {
        checkDevice(device, offeredFeatures);
        if (hook != null) {
            DmaOps override = hook.opsFor(device, negotiatedFeatures);
            if (override != null) {
                return override;
            }
        }
        if (protectedGuest && !useDmaApi(negotiatedFeatures)) {
            // offered but not negotiated: the driver must not run the device around the DMA API
            throw new DeviceRefusedException(device, VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM), "device "
                + device + " offered VIRTIO_F_ACCESS_PLATFORM (bit 33) but it was not negotiated (features 0x"
                + Long.toHexString(negotiatedFeatures) + "); a protected guest must negotiate it");
        }
        return alwaysUseDmaApi || useDmaApi(negotiatedFeatures) ? platformOps : directOps;
    }

    /** @return whether this guest is protected */
    public boolean protectedGuest() {
        return protectedGuest;
    }

    /** Collects a {@link DmaPolicy}. */
    public static final class Builder {
        private DmaOps platformOps;
        private DmaOps directOps;
        private PlatformHook hook;
        private boolean protectedGuest;
        private boolean alwaysUseDmaApi;

        private Builder() {
        }

        /**
         * @param ops what a device that negotiated {@code ACCESS_PLATFORM} uses (IOMMU, swiotlb)
         * @return this builder
         */
        public Builder platformOps(DmaOps ops) {
            this.platformOps = ops;
            return this;
        }

        /**
         * @param ops what a device that did not negotiate it uses (usually {@link DirectDmaOps})
         * @return this builder
         */
        public Builder directOps(DmaOps ops) {
            this.directOps = ops;
            return this;
        }

        /**
         * @param hook the platform's per-device override, or {@code null}
         * @return this builder
         */
        public Builder platformHook(PlatformHook hook) {
            this.hook = hook;
            return this;
        }

        /**
         * @param value whether the guest is protected (SEV, TDX, POWER secure VM, s390 PV)
         * @return this builder
         */
        public Builder protectedGuest(boolean value) {
            this.protectedGuest = value;
            return this;
        }

        /**
         * @param value whether the platform always uses the DMA API (Linux on Xen)
         * @return this builder
         */
        public Builder alwaysUseDmaApi(boolean value) {
            this.alwaysUseDmaApi = value;
            return this;
        }

        /**
         * @return the policy
         * @throws NullPointerException if the platform or direct ops are missing
         */
        public DmaPolicy build() {
            return new DmaPolicy(this);
        }
    }
}

package io.vringj.ring;

/**
 * Feature bits of the VIRTIO 1.x transport that the ring engine acts on [virtio 6].
 * A feature set is a {@code long} bit mask; use {@link #bit(int)} to build one and
 * {@link #has(long, int)} to test one.
 */
public final class VirtioFeatures {
    /** Descriptors may point to indirect tables [virtio 2.7.5.3]. */
    public static final int INDIRECT_DESC = 28;
    /** {@code used_event} / {@code avail_event} replace the notification flags [virtio 2.7.7]. */
    public static final int EVENT_IDX = 29;
    /** A VIRTIO 1.x (non-legacy) device. */
    public static final int VERSION_1 = 32;
    /** The device reaches memory through the platform's IOMMU / DMA API (was IOMMU_PLATFORM). */
    public static final int ACCESS_PLATFORM = 33;
    /** The packed virtqueue layout [virtio 2.8]. */
    public static final int RING_PACKED = 34;
    /** The device uses buffers in the order they were made available. */
    public static final int IN_ORDER = 35;
    /** The platform needs real memory barriers between driver and device. */
    public static final int ORDER_PLATFORM = 36;

    private VirtioFeatures() {
    }

    /**
     * @param bit a feature bit number, 0..63
     * @return a feature mask with just that bit set
     */
    public static long bit(int bit) {
        if (bit < 0 || bit > 63) {
            throw new IllegalArgumentException("feature bit " + bit + " is outside 0..63");
        }
        return 1L << bit;
    }

    /**
     * @param features a feature mask
     * @param bit a feature bit number, 0..63
     * @return whether {@code bit} is set in {@code features}
     */
    public static boolean has(long features, int bit) {
        return (features & bit(bit)) != 0;
    }
}

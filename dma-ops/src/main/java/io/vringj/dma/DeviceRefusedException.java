package io.vringj.dma;

/**
 * A protected guest refused a device because it does not offer the features such a guest
 * needs ({@code VIRTIO_F_VERSION_1} and {@code VIRTIO_F_ACCESS_PLATFORM}), as Linux's
 * {@code virtio_features_ok()} does with {@code -ENODEV}. The message names the device and
 * every missing feature.
 */
public final class DeviceRefusedException extends Exception {
    private static final long serialVersionUID = 1L;

    private final String device;
    private final long missingFeatures;

    /**
     * @param device the device's name
     * @param missingFeatures the feature bits it lacks, as a mask
     * @param message what was missing, in words
     */
    public DeviceRefusedException(String device, long missingFeatures, String message) {
        super(message);
        this.device = device;
        this.missingFeatures = missingFeatures;
    }

    /** @return the device's name */
    public String device() {
        return device;
    }

    /** @return the feature bits the device lacks */
    public long missingFeatures() {
        return missingFeatures;
    }
}

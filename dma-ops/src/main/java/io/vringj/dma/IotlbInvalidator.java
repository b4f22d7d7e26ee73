package io.vringj.dma;

/**
 * Where an {@link Iommu} sends invalidations of device IOTLBs: in process, straight to a
 * {@link DeviceIotlb} (or through {@link IotlbMessageCodec} bytes to an
 * {@link IotlbMessageProcessor}); in vhost-user, as an {@code IOTLB_MSG} the back end
 * acknowledges.
 *
 * <p>{@link #invalidate(long, long)} must not return before the device stopped using every
 * translation of the range: that is what makes a strict unmap strict.
 */
@FunctionalInterface
public interface IotlbInvalidator {
    /**
     * Removes every device IOTLB entry overlapping {@code [iova, iova + size)} and waits until no
     * device worker still uses one.
     *
     * @param iova the first IOVA
     * @param size bytes, at least 1
     */
    void invalidate(long iova, long size);
}

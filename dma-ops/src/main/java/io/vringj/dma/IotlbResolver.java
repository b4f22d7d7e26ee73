package io.vringj.dma;

/**
 * The synchronous way to fill a device IOTLB: the device asks the IOMMU model directly instead
 * of sending a MISS and waiting for an UPDATE. {@link Iommu#resolve(long)} is one
 * ({@code iommu::resolve}).
 */
@FunctionalInterface
public interface IotlbResolver {
    /**
     * @param iova the address that missed
     * @return an UPDATE covering {@code iova}, or {@code null} if it is not mapped (a fault)
     */
    IotlbMessage resolve(long iova);
}

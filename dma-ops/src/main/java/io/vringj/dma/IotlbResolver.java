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

    /**
     * Resolves a miss straight into the device IOTLB: the allocation-free form
     * {@link IotlbAddressSpace} uses. The default applies {@link #resolve(long)}'s UPDATE;
     * {@link Iommu} overrides it without building a message.
     *
     * @param iova the address that missed
     * @param iotlb where the UPDATE goes
     * @return whether an UPDATE covering {@code iova} was applied (false: a fault)
     */
    default boolean resolveInto(long iova, DeviceIotlb iotlb) {
        IotlbMessage update = resolve(iova);
        if (update == null || update.type() != IotlbMessage.Type.UPDATE || !update.covers(iova)) {
            return false;
        }
        iotlb.update(update.iova(), update.size(), update.uaddr(), update.permission());
        return true;
    }
}

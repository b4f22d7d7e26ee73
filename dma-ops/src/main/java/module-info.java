/**
 * vringj dma-ops: the DMA API a driver maps buffers through, its direct and IOMMU
 * implementations, the policy that picks one, and the device IOTLB.
 */
module io.vringj.dma {
    requires transitive io.vringj.core;

    exports io.vringj.dma;
}

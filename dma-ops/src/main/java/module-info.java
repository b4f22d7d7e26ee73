/**
 * vringj dma-ops: the DMA API a driver maps buffers through, its direct and IOMMU
 * implementations, the policy that picks one, and the device IOTLB.
 */
module io.vringj.dma {
    requires transitive io.vringj.core;
    // IommuDmaOps keeps its mappings in an Agrona primitive map
    requires org.agrona;

    exports io.vringj.dma;
}

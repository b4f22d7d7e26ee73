package io.vringj.dma;

/**
 * Which way data moves between the CPU and the device for one mapping, as in Linux's
 * {@code enum dma_data_direction}. It decides the IOMMU permission of the mapping and when a
 * bounce buffer is copied.
 */
public enum DmaDirection {
    /** The device reads the buffer (a device-readable descriptor, an indirect table). */
    TO_DEVICE,
    /** The device writes the buffer (a device-writable descriptor). */
    FROM_DEVICE,
    /** Both. */
    BIDIRECTIONAL
}

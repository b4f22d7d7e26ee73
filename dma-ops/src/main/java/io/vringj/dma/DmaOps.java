package io.vringj.dma;

import java.lang.foreign.MemorySegment;

/**
 * The DMA API a driver maps buffers through, after Linux's {@code struct dma_map_ops}: a
 * buffer in guest memory (the CPU's view, a {@link MemorySegment}) becomes a bus address the
 * device can use, and back.
 *
 * <pre>
 *   map(buffer, dir)          → bus address  (a bouncing implementation copies here)
 *   syncForDevice / syncForCpu  hand ownership back and forth while mapped
 *   unmap(bus, length, dir)     (a bouncing implementation copies back here)
 * </pre>
 *
 * <p>Implementations: direct (bus = guest-physical), IOMMU (strict, lazy, passthrough) and
 * swiotlb (bounce through a shared pool). Each says in its Javadoc which operations are
 * thread-safe.
 */
public interface DmaOps {

    /**
     * Maps a buffer for the device.
     *
     * @param buffer the CPU's view of the buffer, inside the guest memory this object serves
     * @param direction which way the data will move
     * @return the bus address the device uses
     * @throws DmaMappingException if the buffer cannot be mapped; nothing is left mapped
     */
    long map(MemorySegment buffer, DmaDirection direction) throws DmaMappingException;

    /**
     * Ends a mapping; for {@code FROM_DEVICE} and {@code BIDIRECTIONAL} the CPU then sees what
     * the device wrote.
     *
     * @param busAddress what {@link #map} returned
     * @param length the length that was mapped
     * @param direction the direction that was mapped
     * @throws IllegalArgumentException if no such mapping is live (unknown address, wrong length
     *     or direction, or unmapped twice); the message names the address
     */
    void unmap(long busAddress, long length, DmaDirection direction);

    /**
     * Gives a live mapping back to the CPU: it now sees what the device wrote.
     *
     * @param busAddress inside a live mapping
     * @param length bytes from {@code busAddress}, inside the same mapping
     * @param direction the mapping's direction
     * @throws IllegalArgumentException if the range is not inside a live mapping
     */
    void syncForCpu(long busAddress, long length, DmaDirection direction);

    /**
     * Gives a live mapping to the device: it now sees what the CPU wrote.
     *
     * @param busAddress inside a live mapping
     * @param length bytes from {@code busAddress}, inside the same mapping
     * @param direction the mapping's direction
     * @throws IllegalArgumentException if the range is not inside a live mapping
     */
    void syncForDevice(long busAddress, long length, DmaDirection direction);

    /**
     * Whether a live mapping needs {@link #syncForDevice} / {@link #syncForCpu} to hand its
     * bytes over, as Linux's {@code dma_need_sync}: a caller that keeps a buffer mapped across
     * requests ({@link DmaBufferPool}) skips the syncs when this is false. Direct and IOMMU
     * mappings are coherent (false); a bounced mapping is not (true).
     *
     * @param busAddress what {@link #map} returned
     * @return whether syncs are needed; {@code true} unless the implementation knows better
     */
    default boolean needsSync(long busAddress) {
        return true;
    }

    /**
     * Allocates memory the CPU and the device share without syncs (for rings).
     *
     * @param size bytes, at least 1
     * @return the memory and its bus address, page-aligned
     * @throws DmaMappingException if no memory is left that the device can reach
     */
    CoherentBuffer allocCoherent(long size) throws DmaMappingException;

    /**
     * Frees what {@link #allocCoherent(long)} returned.
     *
     * @param buffer the allocation
     * @throws IllegalArgumentException if it is not a live allocation of this object
     */
    void freeCoherent(CoherentBuffer buffer);
}

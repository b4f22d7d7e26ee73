package io.vringj.swiotlb;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * Where a {@link SwiotlbPool} gets memory for a transient pool when it is full and growth is
 * on (Linux's {@code CONFIG_SWIOTLB_DYNAMIC}): shared guest memory that holds exactly one
 * mapping and is given back when that mapping is unmapped.
 *
 * <p>Linux takes pages from the page allocator and decrypts them; here guest memory is fixed
 * when it is built, so the memory comes from a reserve the caller set aside in a
 * {@code SHARED} region — {@link #fromReserve(SwiotlbPool)} carves it from a second pool.
 * Implementations must be safe for concurrent use.
 */
public interface TransientPoolSource {

    /**
     * @param size bytes wanted, a multiple of the 2 KiB slot size
     * @return page-aligned memory of exactly {@code size} bytes inside a {@code SHARED} region of
     *     the pool's guest memory, or {@code null} if none is left
     */
    MemorySegment allocate(long size);

    /**
     * Gives back what {@link #allocate(long)} returned.
     *
     * @param memory the allocation
     */
    void free(MemorySegment memory);

    /**
     * Transient pools carved from a reserve pool's allocations ({@link SwiotlbPool#allocate}).
     * Each transient pool is then at most one 256 KiB segment.
     *
     * @param reserve a pool over shared memory of the same guest memory, used for nothing else
     * @return a source over it
     */
    static TransientPoolSource fromReserve(SwiotlbPool reserve) {
        Objects.requireNonNull(reserve, "reserve");
        return new TransientPoolSource() {
            @Override
            public MemorySegment allocate(long size) {
                try {
                    long bus = reserve.allocate(size);
                    return reserve.memory().slice(bus, size);
                } catch (io.vringj.dma.DmaMappingException e) {
                    return null;
                }
            }

            @Override
            public void free(MemorySegment memory) {
                reserve.free(reserve.memory().guestPhysicalAddressOf(memory), memory.byteSize());
            }

            @Override
            public String toString() {
                return "TransientPoolSource[reserve " + reserve + "]";
            }
        };
    }
}

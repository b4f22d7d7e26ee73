package io.vringj.dma;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.MemoryAccessException;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * No IOMMU: the bus address of a buffer is its guest-physical address, and syncs do nothing
 * (Linux's {@code dma_direct_*}, and what a virtio ring does when {@code ACCESS_PLATFORM} was
 * not negotiated). It keeps no mappings, so it cannot tell an unmap of a never-mapped address
 * from a real one; it does check that the range is guest memory.
 *
 * <p>Coherent allocations come from a caller-supplied {@link CoherentAllocator} over guest
 * memory (see {@link #DirectDmaOps(GuestMemory, CoherentAllocator)}); without one,
 * {@link #allocCoherent(long)} fails with {@link DmaMappingException.Reason#NO_SPACE}.
 *
 * <p>Thread-safe: it holds no mutable state of its own.
 */
public final class DirectDmaOps implements DmaOps {
    private final GuestMemory memory;
    private final CoherentAllocator coherent;

    /**
     * Finds memory for {@link DmaOps#allocCoherent(long)} in guest memory.
     */
    @FunctionalInterface
    public interface CoherentAllocator {
        /**
         * @param size bytes, at least 1
         * @return page-aligned guest memory of at least {@code size} bytes, or {@code null} if none is left
         */
        MemorySegment allocate(long size);
    }

    /**
     * Direct DMA with no coherent allocator.
     *
     * @param memory the guest memory buffers live in
     */
    public DirectDmaOps(GuestMemory memory) {
        this(memory, null);
    }

    /**
     * @param memory the guest memory buffers live in
     * @param coherent where coherent allocations come from, or {@code null} for none
     */
    public DirectDmaOps(GuestMemory memory, CoherentAllocator coherent) {
        this.memory = Objects.requireNonNull(memory, "memory");
        this.coherent = coherent;
    }

    /** @return the guest memory this object serves */
    public GuestMemory memory() {
        return memory;
    }

    @Override
    public long map(MemorySegment buffer, DmaDirection direction) throws DmaMappingException {
        Objects.requireNonNull(direction, "direction");
        if (buffer.byteSize() == 0) {
            throw empty(buffer);
        }
        try {
            return memory.guestPhysicalAddressOf(buffer);
        } catch (MemoryAccessException e) {
            throw new DmaMappingException(DmaMappingException.Reason.NOT_GUEST_MEMORY, e.getMessage());
        }
    }

    private static DmaMappingException empty(MemorySegment buffer) {
        return new DmaMappingException(DmaMappingException.Reason.EMPTY,
            "buffer at native address 0x" + Long.toHexString(buffer.address()) + " has no bytes");
    }

    @Override
    public void unmap(long busAddress, long length, DmaDirection direction) {
        checkRange(busAddress, length, "unmap");
    }

    @Override
    public void syncForCpu(long busAddress, long length, DmaDirection direction) {
        checkRange(busAddress, length, "syncForCpu");
    }

    @Override
    public void syncForDevice(long busAddress, long length, DmaDirection direction) {
        checkRange(busAddress, length, "syncForDevice");
    }

    private void checkRange(long busAddress, long length, String op) {
        if (memory.regionIndexOf(busAddress, length) < 0) {
            throw notGuestMemory(op, busAddress, length);
        }
    }

    // the messages are built out of line, so that map, unmap and the syncs stay small enough to inline
    private IllegalArgumentException notGuestMemory(String op, long busAddress, long length) {
        return new IllegalArgumentException(String.format("%s of [0x%x, +%d): not a range of guest memory %s",
            op, busAddress, length, memory.regions()));
    }

    /** @return false: memory is coherent in this model, syncs only check the range */
    @Override
    public boolean needsSync(long busAddress) {
        return false;
    }

    @Override
    public CoherentBuffer allocCoherent(long size) throws DmaMappingException {
        if (size <= 0) {
            throw new IllegalArgumentException("coherent allocation of " + size + " bytes; it must be at least 1");
        }
        MemorySegment m = coherent == null ? null : coherent.allocate(size);
        if (m == null) {
            throw new DmaMappingException(DmaMappingException.Reason.NO_SPACE,
                "no coherent memory of " + size + " bytes " + (coherent == null ? "(no coherent allocator was given)" : "left"));
        }
        return new CoherentBuffer(m, memory.guestPhysicalAddressOf(m));
    }

    @Override
    public void freeCoherent(CoherentBuffer buffer) {
        checkRange(buffer.busAddress(), buffer.memory().byteSize(), "freeCoherent");
    }
}

package io.vringj.swiotlb;

import io.vringj.dma.CoherentBuffer;
import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaMappingException;
import io.vringj.dma.DmaOps;
import io.vringj.dma.Iommu;
import io.vringj.dma.IommuDmaOps;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.MemoryAccessException;
import io.vringj.memory.RegionKind;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * A {@link DmaOps} that bounces buffers through a {@link SwiotlbPool}, stacked over an inner
 * {@code DmaOps} for everything it does not bounce (Linux's {@code dma_direct_map_page} /
 * {@code iommu_dma_map_page} falling back to {@code swiotlb_map}).
 *
 * <pre>
 *   map(buffer, dir)
 *     FORCE_BOUNCE, or BOUNCE_WHEN_UNREACHABLE and the device cannot reach the buffer
 *         → pool.map: copy into shared slots, bus = the slots' guest-physical address
 *     otherwise → inner.map(buffer, dir)
 *   unmap / syncForCpu / syncForDevice(bus, ...)
 *     pool.owns(bus) → the pool (copies per its table), otherwise → inner
 *   allocCoherent(size)
 *     a restricted pool is set → its page-aligned slots in shared memory, otherwise → inner
 * </pre>
 *
 * <p>A bounced buffer's bus address is the guest-physical address of its slots. Over
 * {@link io.vringj.dma.DirectDmaOps} that is what the device uses anyway. Over a translating
 * {@link IommuDmaOps}, {@link Builder#build()} maps the bounce pool and the restricted pool 1:1
 * in the IOMMU once ({@link Iommu#identityMap(long, long)}, which also keeps those addresses
 * out of the IOVA window), so a bounce costs no IOMMU work per buffer; transient pools are then
 * refused, since they would not be mapped.
 *
 * <p>The device can reach a buffer when it lies in a {@link RegionKind#SHARED} region and at or
 * below the device's DMA mask (Linux's {@code dma_capable}); a {@code SECURE} buffer is always
 * bounced.
 *
 * <p>Thread-safe when the inner ops are: the pool is.
 */
public final class SwiotlbDmaOps implements DmaOps {

    /** When buffers are bounced. */
    public enum Mode {
        /** Every map bounces (a protected guest; Linux's {@code swiotlb=force}). */
        FORCE_BOUNCE,
        /** Only buffers the device cannot reach bounce; others go to the inner ops. */
        BOUNCE_WHEN_UNREACHABLE
    }

    private final SwiotlbPool pool;
    private final DmaOps inner;
    private final GuestMemory memory;
    private final Mode mode;
    private final SwiotlbPool coherentPool;
    private final long minAlignMask;
    private final long dmaMask;

    private SwiotlbDmaOps(Builder b) {
        this.pool = b.pool;
        this.inner = b.inner;
        this.memory = b.pool.memory();
        this.mode = b.mode;
        this.coherentPool = b.coherentPool;
        this.minAlignMask = b.minAlignMask;
        this.dmaMask = b.dmaMask;
    }

    /**
     * @param pool the bounce pool
     * @param inner what maps buffers that are not bounced, and what unmaps them
     * @param mode when to bounce
     * @return a builder
     */
    public static Builder builder(SwiotlbPool pool, DmaOps inner, Mode mode) {
        return new Builder(pool, inner, mode);
    }

    /** @return the bounce pool */
    public SwiotlbPool pool() {
        return pool;
    }

    /** @return the ops buffers go to when they are not bounced */
    public DmaOps inner() {
        return inner;
    }

    /** @return when buffers bounce */
    public Mode mode() {
        return mode;
    }

    /** @return the restricted pool coherent allocations come from, or {@code null} */
    public SwiotlbPool coherentPool() {
        return coherentPool;
    }

    @Override
    public long map(MemorySegment buffer, DmaDirection direction) throws DmaMappingException {
        Objects.requireNonNull(direction, "direction");
        long length = buffer.byteSize();
        if (length == 0) {
            throw new DmaMappingException(DmaMappingException.Reason.EMPTY,
                "buffer at native address 0x" + Long.toHexString(buffer.address()) + " has no bytes");
        }
        long gpa;
        try {
            gpa = memory.guestPhysicalAddressOf(buffer);
        } catch (MemoryAccessException e) {
            throw new DmaMappingException(DmaMappingException.Reason.NOT_GUEST_MEMORY, e.getMessage());
        }
        if (mode == Mode.FORCE_BOUNCE || !reachable(gpa, length)) {
            return pool.map(buffer, gpa, direction, minAlignMask, 0);
        }
        return inner.map(buffer, direction);
    }

    /**
     * Whether the device can reach {@code [gpa, gpa + length)} without a bounce.
     *
     * @param gpa the guest-physical address
     * @param length the length, at least 1
     * @return true if the range lies in one {@code SHARED} region and at or below the DMA mask
     */
    public boolean reachable(long gpa, long length) {
        int index = memory.regionIndexOf(gpa, length);
        return index >= 0 && memory.region(index).kind() == RegionKind.SHARED
            && Long.compareUnsigned(gpa + length - 1, dmaMask) <= 0;
    }

    @Override
    public void unmap(long busAddress, long length, DmaDirection direction) {
        if (pool.owns(busAddress)) {
            pool.unmap(busAddress, length, direction);
        } else {
            inner.unmap(busAddress, length, direction);
        }
    }

    /** @return true for a bounced mapping (its bytes move only on syncs), else what the inner ops say */
    @Override
    public boolean needsSync(long busAddress) {
        return pool.owns(busAddress) || inner.needsSync(busAddress);
    }

    @Override
    public void syncForCpu(long busAddress, long length, DmaDirection direction) {
        if (pool.owns(busAddress)) {
            pool.syncForCpu(busAddress, length, direction);
        } else {
            inner.syncForCpu(busAddress, length, direction);
        }
    }

    @Override
    public void syncForDevice(long busAddress, long length, DmaDirection direction) {
        if (pool.owns(busAddress)) {
            pool.syncForDevice(busAddress, length, direction);
        } else {
            inner.syncForDevice(busAddress, length, direction);
        }
    }

    /**
     * From the restricted pool when one is set: page-aligned slots of shared memory, at most
     * one segment ({@value SwiotlbPool#MAX_MAPPING_SIZE} bytes), so rings live where the device
     * can reach them. Otherwise from the inner ops.
     */
    @Override
    public CoherentBuffer allocCoherent(long size) throws DmaMappingException {
        if (coherentPool == null) {
            return inner.allocCoherent(size);
        }
        long bus = coherentPool.allocate(size);
        return new CoherentBuffer(coherentPool.memory().slice(bus, size), bus);
    }

    @Override
    public void freeCoherent(CoherentBuffer buffer) {
        Objects.requireNonNull(buffer, "buffer");
        if (coherentPool != null && coherentPool.owns(buffer.busAddress())) {
            coherentPool.free(buffer.busAddress(), buffer.memory().byteSize());
        } else {
            inner.freeCoherent(buffer);
        }
    }

    @Override
    public String toString() {
        return "SwiotlbDmaOps[" + mode + ", " + pool + " over " + inner
            + (coherentPool == null ? "" : ", coherent from " + coherentPool) + "]";
    }

    /** Collects the settings of a {@link SwiotlbDmaOps}. */
    public static final class Builder {
        private final SwiotlbPool pool;
        private final DmaOps inner;
        private final Mode mode;
        private SwiotlbPool coherentPool;
        private long minAlignMask;
        private long dmaMask = -1L;

        private Builder(SwiotlbPool pool, DmaOps inner, Mode mode) {
            this.pool = Objects.requireNonNull(pool, "pool");
            this.inner = Objects.requireNonNull(inner, "inner");
            this.mode = Objects.requireNonNull(mode, "mode");
        }

        /**
         * Serves {@link DmaOps#allocCoherent(long)} from a restricted pool (Linux's
         * {@code restricted-dma-pool}) instead of the inner ops.
         *
         * @param restricted a pool in shared memory of the same guest memory, used for nothing else
         * @return this builder
         */
        public Builder coherentPool(SwiotlbPool restricted) {
            Objects.requireNonNull(restricted, "restricted");
            if (restricted.memory() != pool.memory()) {
                throw new IllegalArgumentException("the restricted pool " + restricted
                    + " lives in another guest memory than the bounce pool " + pool);
            }
            this.coherentPool = restricted;
            return this;
        }

        /**
         * The device's {@code min_align_mask}: the bounce address keeps these low bits of the
         * buffer's guest-physical address (below the slot size). Default 0.
         *
         * @param mask 0 or 2^k-1, below the segment size
         * @return this builder
         */
        public Builder minAlignMask(long mask) {
            if (mask < 0 || (mask & (mask + 1)) != 0 || mask >= SwiotlbPool.MAX_MAPPING_SIZE) {
                throw new IllegalArgumentException(String.format(
                    "minAlignMask 0x%x must be 0 or 2^k-1 and below the segment size", mask));
            }
            this.minAlignMask = mask;
            return this;
        }

        /**
         * The highest guest-physical address the device can reach; buffers above it bounce in
         * {@link Mode#BOUNCE_WHEN_UNREACHABLE}. Default: all 64 bits.
         *
         * @param mask e.g. {@code 0xFFFF_FFFFL} for a 32-bit device
         * @return this builder
         */
        public Builder dmaMask(long mask) {
            this.dmaMask = mask;
            return this;
        }

        /**
         * Builds the ops. Over a translating {@link IommuDmaOps}, first maps the bounce pool and
         * the restricted pool 1:1 in its IOMMU (once; a range already mapped 1:1 is left as it is).
         *
         * @return the DMA ops
         * @throws IllegalArgumentException over a translating IOMMU, if the pool may grow by
         *     transient pools, or a pool's range is already mapped to something else
         */
        public SwiotlbDmaOps build() {
            if (inner instanceof IommuDmaOps iommuOps && iommuOps.mode() != IommuDmaOps.Mode.PASSTHROUGH) {
                if (pool.growsByTransientPools()) {
                    throw new IllegalArgumentException("pool " + pool + " grows by transient pools, which the IOMMU "
                        + iommuOps.iommu() + " would not map; turn growth off to stack over IOMMU DMA ops");
                }
                identityMap(iommuOps.iommu(), pool);
                if (coherentPool != null) {
                    identityMap(iommuOps.iommu(), coherentPool);
                }
            }
            return new SwiotlbDmaOps(this);
        }

        private static void identityMap(Iommu iommu, SwiotlbPool p) {
            if (iommu.isMapped(p.base(), p.size()) && iommu.translate(p.base()) == p.base()
                && iommu.translate(p.base() + p.size() - 1) == p.base() + p.size() - 1) {
                return;
            }
            iommu.identityMap(p.base(), p.size());
        }
    }
}

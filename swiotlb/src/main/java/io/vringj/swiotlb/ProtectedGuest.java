package io.vringj.swiotlb;

import io.vringj.dma.DirectDmaOps;
import io.vringj.dma.DmaPolicy;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.MemoryRegion;
import io.vringj.memory.RegionKind;
import java.lang.foreign.MemorySegment;

/**
 * A protected guest (SEV, TDX, POWER secure VMs, s390 PV) built in one call: its private
 * memory, the small shared window all device I/O goes through, the device's view of memory,
 * and the DMA ops that force every buffer through the bounce pool.
 *
 * <pre>
 *   secureBase  ┌──────────────────────┐
 *               │ SECURE main memory   │  the guest's buffers; no device may touch it
 *               └──────────────────────┘
 *   sharedBase  ┌──────────────────────┐
 *               │ bounce pool          │  SwiotlbPool: every buffer is copied in and out
 *               ├──────────────────────┤
 *               │ restricted pool      │  coherent allocations: the rings live here
 *               └──────────────────────┘  (one SHARED region)
 *
 *   device      AddressSpace.sharedOnly(memory): a SECURE address is a FAULT
 *   driver      SwiotlbDmaOps FORCE_BOUNCE over DirectDmaOps, coherent from the restricted pool
 *   policy      DmaPolicy, protected: refuses a device without VERSION_1 + ACCESS_PLATFORM, and
 *               its platform hook hands every device the force-bounce ops
 * </pre>
 *
 * <p>Buffers that live as long as the device can skip the bounce entirely:
 * {@code DmaBufferPool.allocate(guest.dmaOps(), size, count)} carves them from the restricted
 * pool (size it with {@link Builder#coherentPoolSize(long)}), which is shared memory the device
 * reaches directly, and {@code DmaDriverQueue.addPremapped} offers them with no copy.
 *
 * <p>Closing it frees the guest memory.
 */
public final class ProtectedGuest implements AutoCloseable {
    /** Default guest-physical base of the private memory. */
    public static final long DEFAULT_SECURE_BASE = 0;
    /** Default guest-physical base of the shared window: 64 GiB, well above any test's main memory. */
    public static final long DEFAULT_SHARED_BASE = 64L << 30;
    /** Default size of the restricted pool for rings: 1 MiB. */
    public static final long DEFAULT_COHERENT_POOL_SIZE = 1L << 20;
    /** Lower clamp of Linux's bounce pool size for confidential guests: 64 MiB. */
    public static final long MIN_CONFIDENTIAL_POOL = 64L << 20;
    /** Upper clamp of Linux's bounce pool size for confidential guests: 1 GiB. */
    public static final long MAX_CONFIDENTIAL_POOL = 1L << 30;

    private final GuestMemory memory;
    private final MemoryRegion secure;
    private final MemoryRegion shared;
    private final SwiotlbPool bouncePool;
    private final SwiotlbPool coherentPool;
    private final SwiotlbDmaOps dmaOps;
    private final AddressSpace deviceAddressSpace;
    private final DmaPolicy dmaPolicy;

    private ProtectedGuest(Builder b) {
        long sharedSize = b.bouncePoolSize + b.coherentPoolSize;
        this.memory = GuestMemory.builder()
            .allocate(b.secureBase, b.secureSize, RegionKind.SECURE)
            .allocate(b.sharedBase, sharedSize, RegionKind.SHARED)
            .build();
        try {
            this.secure = memory.regionOf(b.secureBase, b.secureSize);
            this.shared = memory.regionOf(b.sharedBase, sharedSize);
            SwiotlbPool.Builder pool = SwiotlbPool.builder(memory, b.sharedBase, b.bouncePoolSize);
            if (b.areas > 0) {
                pool.areas(b.areas);
            }
            this.bouncePool = pool.build();
            this.coherentPool = SwiotlbPool.builder(memory, b.sharedBase + b.bouncePoolSize, b.coherentPoolSize)
                .areas(1).build();
            this.dmaOps = SwiotlbDmaOps.builder(bouncePool, new DirectDmaOps(memory), SwiotlbDmaOps.Mode.FORCE_BOUNCE)
                .coherentPool(coherentPool).minAlignMask(b.minAlignMask).build();
            this.deviceAddressSpace = AddressSpace.sharedOnly(memory);
            SwiotlbDmaOps bouncing = dmaOps;
            this.dmaPolicy = DmaPolicy.builder()
                .protectedGuest(true)
                .platformOps(bouncing)
                .directOps(new DirectDmaOps(memory))
                // the platform forces bouncing: no device of this guest may reach private memory,
                // whatever it negotiated
                .platformHook((device, negotiated) -> bouncing)
                .build();
        } catch (RuntimeException | Error e) {
            memory.close();
            throw e;
        }
    }

    /** @return a builder with Linux's defaults for a guest of 1 GiB */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Linux's bounce pool size for a confidential x86 guest: 6% of its memory, clamped to
     * [64 MiB, 1 GiB], here rounded up to whole 256 KiB segments.
     *
     * @param guestMemorySize the guest's memory in bytes
     * @return the pool size
     */
    public static long confidentialPoolSize(long guestMemorySize) {
        long size = Math.clamp(guestMemorySize / 100 * 6, MIN_CONFIDENTIAL_POOL, MAX_CONFIDENTIAL_POOL);
        return (size + SwiotlbPool.SEGMENT_SIZE - 1) / SwiotlbPool.SEGMENT_SIZE * SwiotlbPool.SEGMENT_SIZE;
    }

    /** @return the guest memory: one SECURE and one SHARED region */
    public GuestMemory memory() {
        return memory;
    }

    /** @return the private region; the guest's buffers live here */
    public MemoryRegion secureRegion() {
        return secure;
    }

    /** @return the CPU's view of the private region, for carving buffers */
    public MemorySegment secureMemory() {
        return secure.segment();
    }

    /** @return the shared region holding both pools */
    public MemoryRegion sharedRegion() {
        return shared;
    }

    /** @return the bounce pool */
    public SwiotlbPool bouncePool() {
        return bouncePool;
    }

    /** @return the restricted pool coherent allocations (rings) come from */
    public SwiotlbPool coherentPool() {
        return coherentPool;
    }

    /** @return the DMA ops every device of this guest uses: force-bounce, coherent from the restricted pool */
    public SwiotlbDmaOps dmaOps() {
        return dmaOps;
    }

    /**
     * @return the policy that picks a device's DMA ops: protected, so it refuses devices that do
     *     not offer {@code VERSION_1} and {@code ACCESS_PLATFORM}, and its hook forces every
     *     device through {@link #dmaOps()}
     */
    public DmaPolicy dmaPolicy() {
        return dmaPolicy;
    }

    /** @return how a device of this guest reaches memory: shared regions only */
    public AddressSpace deviceAddressSpace() {
        return deviceAddressSpace;
    }

    /** Frees the guest memory; nothing of this guest may be used afterwards. */
    @Override
    public void close() {
        memory.close();
    }

    @Override
    public String toString() {
        return "ProtectedGuest[" + secure + ", " + shared + ", " + bouncePool + "]";
    }

    /** Collects the layout of a {@link ProtectedGuest}. */
    public static final class Builder {
        private long secureBase = DEFAULT_SECURE_BASE;
        private long secureSize = 1L << 30;
        private long sharedBase = DEFAULT_SHARED_BASE;
        private long bouncePoolSize = confidentialPoolSize(1L << 30);
        private long coherentPoolSize = DEFAULT_COHERENT_POOL_SIZE;
        private int areas;
        private long minAlignMask;

        private Builder() {
        }

        /**
         * @param base guest-physical base of the private memory, page-aligned
         * @param size its size in bytes
         * @return this builder
         */
        public Builder secureMemory(long base, long size) {
            this.secureBase = base;
            this.secureSize = size;
            return this;
        }

        /**
         * @param base guest-physical base of the shared window, page-aligned
         * @return this builder
         */
        public Builder sharedBase(long base) {
            this.sharedBase = base;
            return this;
        }

        /**
         * @param size the bounce pool's size, a multiple of 256 KiB (default: Linux's rule for
         *     the default guest size, see {@link #confidentialPoolSize(long)})
         * @return this builder
         */
        public Builder bouncePoolSize(long size) {
            this.bouncePoolSize = size;
            return this;
        }

        /**
         * @param size the restricted pool's size for rings, a multiple of 256 KiB (default 1 MiB)
         * @return this builder
         */
        public Builder coherentPoolSize(long size) {
            this.coherentPoolSize = size;
            return this;
        }

        /**
         * @param areas the bounce pool's areas (default: see {@link SwiotlbPool.Builder#areas(int)})
         * @return this builder
         */
        public Builder areas(int areas) {
            this.areas = areas;
            return this;
        }

        /**
         * @param mask the devices' {@code min_align_mask} (default 0)
         * @return this builder
         */
        public Builder minAlignMask(long mask) {
            this.minAlignMask = mask;
            return this;
        }

        /**
         * Allocates the memory and builds everything.
         *
         * @return the guest
         * @throws IllegalArgumentException if the regions overlap or a size breaks a pool's rules
         */
        public ProtectedGuest build() {
            return new ProtectedGuest(this);
        }
    }
}

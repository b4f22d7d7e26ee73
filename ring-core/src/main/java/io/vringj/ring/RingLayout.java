package io.vringj.ring;

/**
 * Where a virtqueue's three areas go when they share one block of memory: the equivalent of
 * Linux's {@code vring_init} / {@code vring_size} (include/uapi/linux/virtio_ring.h), for the
 * split layout and, the same way, for the packed one.
 *
 * <pre>
 * split [virtio 2.7]                                        packed [virtio 2.8]
 *   base                      descriptor table  16·Q          base                      descriptor ring   16·Q
 *   base + 16·Q               available ring    6 + 2·Q       base + 16·Q               driver event      4
 *                               used_event at +4+2Q                                       suppression
 *   ALIGN(avail end, align)   used ring         6 + 8·Q       ALIGN(driver end, align)  device event      4
 *                               avail_event at +4+8Q                                      suppression
 *   total = used end - base                                   total = device end - base
 * </pre>
 *
 * <p>The device-written area starts at the next multiple of {@code align} (an absolute
 * address, as {@code vring_init} computes it), so that the driver's and the device's stores do
 * not share a cache line or page; legacy PCI used 4096, Linux's modern transports
 * {@code SMP_CACHE_BYTES}. When {@code base} is a multiple of {@code align}, {@link #totalSize()}
 * of a split ring is exactly {@code vring_size(Q, align)}:
 * {@code ALIGN(16·Q + 2·(3 + Q), align) + 2·3 + 8·Q}.
 *
 * <p>Offsets are from {@code base}: in a segment of {@link #totalSize()} bytes at {@code base},
 * the split ring's {@code used_event} is at {@link #usedEventOffset()} and its
 * {@code avail_event} at {@link #availEventOffset()}. For a packed ring these name the event
 * suppression structures that play the same parts: the driver's (where the driver says which
 * used descriptor it wants an interrupt for) and the device's (which available descriptor the
 * device wants a kick for); each starts with its {@code le16 desc_event}.
 */
public final class RingLayout {
    private final boolean packed;
    private final int queueSize;
    private final long base;
    private final long align;
    private final RingAddresses addresses;
    private final long totalSize;
    private final long usedEventOffset;
    private final long availEventOffset;

    private RingLayout(boolean packed, int queueSize, long base, long align, RingAddresses addresses, long totalSize,
                       long usedEventOffset, long availEventOffset) {
        this.packed = packed;
        this.queueSize = queueSize;
        this.base = base;
        this.align = align;
        this.addresses = addresses;
        this.totalSize = totalSize;
        this.usedEventOffset = usedEventOffset;
        this.availEventOffset = availEventOffset;
    }

    /**
     * Lays out a ring in one block at {@code base} ({@code vring_init}).
     *
     * @param features the negotiated features (only {@link VirtioFeatures#RING_PACKED} matters)
     * @param queueSize Q, valid for the layout (split: a power of two in 1..32768; packed: 1..32768)
     * @param base where the block starts; a multiple of 16 (the descriptor area's alignment),
     *     read as an unsigned 64-bit address
     * @param align where the device-written area may start: a power of two, at least 4 (the used
     *     ring's and the event suppression structures' alignment)
     * @return the layout
     * @throws IllegalArgumentException naming the value and the rule, when Q, {@code base} or
     *     {@code align} is not valid, or the block would run past the end of the 64-bit address space
     */
    public static RingLayout of(long features, int queueSize, long base, long align) {
        boolean packed = VirtioFeatures.has(features, VirtioFeatures.RING_PACKED);
        RingSizes sizes = RingSizes.of(features, queueSize);
        int descAlign = packed ? PackedRing.DESC_ALIGN : SplitRing.DESC_ALIGN;
        int deviceAlign = packed ? PackedRing.EVENT_ALIGN : SplitRing.USED_ALIGN;
        if (align < deviceAlign || Long.bitCount(align) != 1) {
            throw new IllegalArgumentException("alignment " + align + " is not valid: it must be a power of two, at "
                + "least " + deviceAlign + " (the " + (packed ? "device event suppression" : "used ring")
                + "'s alignment)");
        }
        if (base % descAlign != 0) {
            throw new IllegalArgumentException("base address 0x" + Long.toHexString(base) + " is not aligned to "
                + descAlign + " bytes, as the descriptor " + (packed ? "ring" : "table") + " must be");
        }
        // every size is below 2^20 (Q <= 32768) and align <= 2^62: each sum below is checked for wrap-around
        long driverArea = addUnsigned(base, sizes.descriptorArea(), queueSize, base, align);
        long driverEnd = addUnsigned(driverArea, sizes.driverArea(), queueSize, base, align);
        long deviceArea = addUnsigned(driverEnd, align - 1, queueSize, base, align) & -align;
        long deviceEnd = addUnsigned(deviceArea, sizes.deviceArea(), queueSize, base, align);
        long usedEvent = packed ? driverArea - base : driverArea - base + SplitRing.usedEventOffset(queueSize);
        long availEvent = packed ? deviceArea - base : deviceArea - base + SplitRing.availEventOffset(queueSize);
        return new RingLayout(packed, queueSize, base, align, new RingAddresses(base, driverArea, deviceArea),
            deviceEnd - base, usedEvent, availEvent);
    }

    /**
     * The bytes a ring laid out from an {@code align}-aligned base needs ({@code vring_size}).
     *
     * @param features the negotiated features (only {@link VirtioFeatures#RING_PACKED} matters)
     * @param queueSize Q, valid for the layout
     * @param align as for {@link #of}
     * @return the total size
     * @throws IllegalArgumentException as {@link #of} does
     */
    public static long size(long features, int queueSize, long align) {
        return of(features, queueSize, 0, align).totalSize();
    }

    private static long addUnsigned(long address, long bytes, int queueSize, long base, long align) {
        long sum = address + bytes;
        if (Long.compareUnsigned(sum, address) < 0) {
            throw new IllegalArgumentException("a ring of queue size " + queueSize + " at base 0x"
                + Long.toHexString(base) + " with alignment " + align + " runs past the end of the 64-bit address space");
        }
        return sum;
    }

    /** @return whether this is the packed layout */
    public boolean packed() {
        return packed;
    }

    /** @return Q */
    public int queueSize() {
        return queueSize;
    }

    /** @return the address the block starts at (the descriptor area) */
    public long base() {
        return base;
    }

    /** @return the alignment of the device-written area */
    public long align() {
        return align;
    }

    /** @return the addresses of the three areas, for {@link DriverQueue#create} and {@link DeviceQueue#create} */
    public RingAddresses addresses() {
        return addresses;
    }

    /** @return the bytes from {@code base} to the end of the device-written area */
    public long totalSize() {
        return totalSize;
    }

    /**
     * @return the offset from {@code base} of the split ring's {@code used_event}; packed: of the
     *     driver event suppression structure
     */
    public long usedEventOffset() {
        return usedEventOffset;
    }

    /**
     * @return the offset from {@code base} of the split ring's {@code avail_event}; packed: of the
     *     device event suppression structure
     */
    public long availEventOffset() {
        return availEventOffset;
    }

    /** @return the offset from {@code base} of the driver area (available ring / driver event suppression) */
    public long driverAreaOffset() {
        return addresses.driverArea() - base;
    }

    /** @return the offset from {@code base} of the device area (used ring / device event suppression) */
    public long deviceAreaOffset() {
        return addresses.deviceArea() - base;
    }

    @Override
    public String toString() {
        return String.format("RingLayout[%s, Q=%d, base=0x%x, align=%d, driver=+0x%x, device=+0x%x, total=%d, "
                + "usedEvent=+0x%x, availEvent=+0x%x]", packed ? "packed" : "split", queueSize, base, align,
            driverAreaOffset(), deviceAreaOffset(), totalSize, usedEventOffset, availEventOffset);
    }
}

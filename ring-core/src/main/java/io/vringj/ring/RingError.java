package io.vringj.ring;

/**
 * Every way a peer can be wrong about a virtqueue, as rust-vmm lists them: one constant per
 * rule, each with whether it breaks the queue for good. A fatal error latches the queue
 * broken; later calls report the same error and do not touch the ring.
 */
public enum RingError {
    // --- device side: what a driver may have written wrong [virtio 2.7] ---
    /** The avail ring names a head index at or beyond the queue size. */
    HEAD_OUT_OF_RANGE(true, "head index is at or beyond the queue size"),
    /** A descriptor's {@code next} is at or beyond the size of its table. */
    NEXT_OUT_OF_RANGE(true, "next index is at or beyond the size of its descriptor table"),
    /** A walk visited more descriptors than its table has: the chain loops. */
    CHAIN_LOOP(true, "chain has more descriptors than its table, so it loops"),
    /** A device-readable descriptor follows a device-writable one [virtio 2.7.4.2]. */
    READABLE_AFTER_WRITABLE(true, "device-readable descriptor after a device-writable one"),
    /** A descriptor of length zero. */
    ZERO_LENGTH(true, "descriptor has length 0"),
    /** A descriptor with both INDIRECT and NEXT [virtio 2.7.5.3.1]. */
    INDIRECT_WITH_NEXT(true, "descriptor has both INDIRECT and NEXT"),
    /** An INDIRECT descriptor inside an indirect table [virtio 2.7.5.3.1]. */
    NESTED_INDIRECT(true, "INDIRECT descriptor inside an indirect table"),
    /** An indirect table whose length is zero or not a multiple of 16. */
    BAD_INDIRECT_LENGTH(true, "indirect table length is 0 or not a multiple of 16"),
    /** An indirect table with more than {@link DeviceQueue#MAX_INDIRECT_ENTRIES} entries (Linux vhost's limit). */
    INDIRECT_TOO_LARGE(true, "indirect table has more than 65536 entries"),
    /** INDIRECT used although VIRTIO_F_INDIRECT_DESC was not negotiated. */
    INDIRECT_NOT_NEGOTIATED(true, "INDIRECT descriptor but VIRTIO_F_INDIRECT_DESC was not negotiated"),
    /** The chain's total length is 2^32 or more [virtio 2.7.5]. */
    CHAIN_TOO_LONG(true, "chain's total length is 2^32 bytes or more"),
    /** The chain maps to more than {@link DeviceQueue#MAX_CHAIN_PIECES} memory pieces (QEMU's VIRTQUEUE_MAX_SIZE). */
    CHAIN_TOO_MANY_PIECES(true, "chain maps to more than 1024 memory pieces"),
    /** The avail idx is more than the queue size ahead of the device's last seen index. */
    AVAIL_IDX_TOO_FAR(true, "avail idx is more than the queue size ahead of the device"),
    /** The avail ring offers a head that is already in flight on the device. */
    HEAD_IN_FLIGHT(true, "head is already in flight on the device"),
    /** A buffer, indirect table or ring area the device may not reach. */
    ADDRESS_FAULT(true, "address the device may not reach"),
    /** No IOTLB entry yet for a buffer: retry once one arrives. Not fatal; nothing was consumed. */
    TRANSLATION_MISS(false, "no IOTLB translation yet; retry after an update"),

    // --- driver side: what a device may have written wrong ---
    /** The used ring names an id at or beyond the queue size, or one the driver did not make available. */
    USED_ID_NOT_IN_FLIGHT(true, "used id is not a head the driver has in flight"),
    /** The used length is larger than the writable part of the chain. */
    USED_LENGTH_TOO_LARGE(true, "used length is larger than the writable part of the chain"),
    /** The used idx is more than the queue size ahead of the driver's last seen index. */
    USED_IDX_TOO_FAR(true, "used idx is more than the queue size ahead of the driver"),
    /**
     * With VIRTIO_F_IN_ORDER, a split ring's used entry names a buffer further on than the used idx
     * moved: the batch it closes (every buffer made available before it and not yet used, then the
     * buffer itself) has more buffers than the device published, so the device used a later buffer
     * before an earlier one [virtio 2.7.9].
     */
    USED_NOT_IN_ORDER(true, "used entry closes a batch of more buffers than the used idx moved by (VIRTIO_F_IN_ORDER)");

    private final boolean fatal;
    private final String rule;

    RingError(boolean fatal, String rule) {
        this.fatal = fatal;
        this.rule = rule;
    }

    /** @return whether this error latches the queue broken */
    public boolean fatal() {
        return fatal;
    }

    /** @return the rule that was broken, in a few words */
    public String rule() {
        return rule;
    }
}

package io.vringj.dma;

import io.vringj.memory.Access;

/**
 * What a device may do with an I/O page or a device IOTLB entry. The values are the bits of
 * vhost's {@code VHOST_ACCESS_RO} (1), {@code VHOST_ACCESS_WO} (2) and {@code VHOST_ACCESS_RW}
 * (3), which are also the read/write bits of an I/O page table entry.
 */
public enum Permission {
    /** No access (an invalidation or a batch marker carries no permission). */
    NONE(0),
    /** The device may read. */
    RO(1),
    /** The device may write. */
    WO(2),
    /** The device may read and write. */
    RW(3);

    private static final Permission[] BY_BITS = {NONE, RO, WO, RW};

    private final int bits;

    Permission(int bits) {
        this.bits = bits;
    }

    /** @return the vhost encoding: RO 1, WO 2, RW 3, NONE 0 */
    public int bits() {
        return bits;
    }

    /**
     * @param bits 0..3
     * @return the permission with that encoding
     * @throws IllegalArgumentException if {@code bits} is outside 0..3
     */
    public static Permission ofBits(int bits) {
        if (bits < 0 || bits > 3) {
            throw new IllegalArgumentException("permission " + bits + " is not one of 0 (none), 1 (RO), 2 (WO), 3 (RW)");
        }
        return BY_BITS[bits];
    }

    /**
     * The permission a mapping gets from its DMA direction: the device reads a
     * {@code TO_DEVICE} buffer, writes a {@code FROM_DEVICE} one, and both for
     * {@code BIDIRECTIONAL}.
     *
     * @param direction the mapping's direction
     * @return RO, WO or RW
     */
    public static Permission of(DmaDirection direction) {
        return switch (direction) {
            case TO_DEVICE -> RO;
            case FROM_DEVICE -> WO;
            case BIDIRECTIONAL -> RW;
        };
    }

    /**
     * The permission a device access needs.
     *
     * @param access read or write
     * @return RO for a read, WO for a write
     */
    public static Permission of(Access access) {
        return access == Access.READ ? RO : WO;
    }

    /**
     * @param access what the device wants to do
     * @return whether this permission allows it
     */
    public boolean allows(Access access) {
        return (bits & (access == Access.READ ? 1 : 2)) != 0;
    }

    /**
     * @param other another permission
     * @return whether every access {@code other} allows is allowed by this one
     */
    public boolean covers(Permission other) {
        return (bits & other.bits) == other.bits;
    }
}

package io.vringj.dma;

import java.util.Objects;

/**
 * One message of the vhost device IOTLB protocol, {@code struct vhost_iotlb_msg}: the device
 * asks for a translation ({@link Type#MISS}), the IOMMU side answers with
 * ({@link Type#UPDATE}) or withdraws ({@link Type#INVALIDATE}) one, the device reports a
 * refused access ({@link Type#ACCESS_FAIL}), and updates may be grouped
 * ({@link Type#BATCH_BEGIN} / {@link Type#BATCH_END}). {@link IotlbMessageCodec} turns messages
 * into their binary layout and back.
 *
 * @param type what the message means
 * @param iova the first I/O virtual address concerned (0 for batch markers)
 * @param size bytes from {@code iova} (0 for a miss the device cannot size, and for batch markers)
 * @param uaddr for an UPDATE, the address the range maps to (the device resolves it in its
 *     own memory view); 0 otherwise
 * @param permission for an UPDATE the entry's permission, for a MISS or ACCESS_FAIL the access
 *     wanted; NONE for the others
 */
public record IotlbMessage(Type type, long iova, long size, long uaddr, Permission permission) {

    /** The message types, with their {@code VHOST_IOTLB_*} codes. */
    public enum Type {
        /** The device found no entry for {@code iova} ({@code VHOST_IOTLB_MISS}, 1). */
        MISS(1),
        /** A new entry {@code [iova, iova+size) → uaddr} ({@code VHOST_IOTLB_UPDATE}, 2). */
        UPDATE(2),
        /** Remove entries overlapping {@code [iova, iova+size)} ({@code VHOST_IOTLB_INVALIDATE}, 3). */
        INVALIDATE(3),
        /** The device was refused an access by permission ({@code VHOST_IOTLB_ACCESS_FAIL}, 4). */
        ACCESS_FAIL(4),
        /** Updates until {@link #BATCH_END} form one batch ({@code VHOST_IOTLB_BATCH_BEGIN}, 5). */
        BATCH_BEGIN(5),
        /** End of a batch: apply it ({@code VHOST_IOTLB_BATCH_END}, 6). */
        BATCH_END(6);

        private final int code;

        Type(int code) {
            this.code = code;
        }

        /** @return the {@code VHOST_IOTLB_*} code */
        public int code() {
            return code;
        }

        /**
         * @param code a {@code VHOST_IOTLB_*} code
         * @return the type, or {@code null} if the code is unknown
         */
        public static Type ofCode(int code) {
            return code >= 1 && code <= 6 ? values()[code - 1] : null;
        }
    }

    /**
     * @throws NullPointerException if {@code type} or {@code permission} is null
     */
    public IotlbMessage {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(permission, "permission");
    }

    /**
     * @param iova the address that missed
     * @param permission the access wanted (RO or WO)
     * @return a MISS
     */
    public static IotlbMessage miss(long iova, Permission permission) {
        return new IotlbMessage(Type.MISS, iova, 0, 0, permission);
    }

    /**
     * @param iova the entry's first IOVA
     * @param size its size in bytes
     * @param uaddr where it maps to
     * @param permission what the device may do there
     * @return an UPDATE
     */
    public static IotlbMessage update(long iova, long size, long uaddr, Permission permission) {
        return new IotlbMessage(Type.UPDATE, iova, size, uaddr, permission);
    }

    /**
     * @param iova the range's first IOVA
     * @param size its size in bytes
     * @return an INVALIDATE
     */
    public static IotlbMessage invalidate(long iova, long size) {
        return new IotlbMessage(Type.INVALIDATE, iova, size, 0, Permission.NONE);
    }

    /**
     * @param iova the address refused
     * @param permission the access that was refused
     * @return an ACCESS_FAIL
     */
    public static IotlbMessage accessFail(long iova, Permission permission) {
        return new IotlbMessage(Type.ACCESS_FAIL, iova, 0, 0, permission);
    }

    /** @return a BATCH_BEGIN */
    public static IotlbMessage batchBegin() {
        return new IotlbMessage(Type.BATCH_BEGIN, 0, 0, 0, Permission.NONE);
    }

    /** @return a BATCH_END */
    public static IotlbMessage batchEnd() {
        return new IotlbMessage(Type.BATCH_END, 0, 0, 0, Permission.NONE);
    }

    /**
     * @param address an IOVA
     * @return whether {@code address} lies in {@code [iova, iova + size)}
     */
    public boolean covers(long address) {
        return Long.compareUnsigned(address - iova, size) < 0;
    }

    @Override
    public String toString() {
        return String.format("IotlbMessage[%s iova=0x%x size=0x%x uaddr=0x%x perm=%s]", type, iova, size, uaddr, permission);
    }
}

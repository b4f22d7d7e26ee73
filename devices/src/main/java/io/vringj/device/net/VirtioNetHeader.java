package io.vringj.device.net;

import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * {@code struct virtio_net_hdr_v1}, the header in front of every frame on the rx and tx queues
 * [virtio 5.1.6]. All fields are little-endian.
 *
 * <pre>
 *   offset  0        1          2        4          6            8             10            12
 *           ┌────────┬──────────┬────────┬──────────┬────────────┬─────────────┬─────────────┐
 *           │ flags  │ gso_type │hdr_len │ gso_size │ csum_start │ csum_offset │ num_buffers │
 *           │  u8    │   u8     │ le16   │  le16    │   le16     │   le16      │   le16      │
 *           └────────┴──────────┴────────┴──────────┴────────────┴─────────────┴─────────────┘
 *           └──────────────── legacy virtio_net_hdr: 10 bytes ───────────────┘
 * </pre>
 *
 * <p>The 12-byte form is used whenever {@code VERSION_1} or {@code MRG_RXBUF} is negotiated;
 * only a legacy device without either uses the 10-byte form without {@code num_buffers}
 * [virtio 5.1.6.1]. With {@code VERSION_1} the header and the frame may be laid out across
 * descriptors in any way [virtio 2.6.4]; the device side of this package accepts any layout.
 *
 * <p>{@code num_buffers} is written by the device on rx: how many rx chains the frame spans with
 * {@code MRG_RXBUF}, 1 without it [virtio 5.1.6.4]. The driver sets it to 0 on tx.
 *
 * <p>Neither side offers checksum or segmentation offload, so a valid tx header has
 * {@code gso_type} {@link #GSO_NONE} and no {@link #F_NEEDS_CSUM} [virtio 5.1.6.2.1].
 */
public final class VirtioNetHeader {
    /** Bytes of {@code virtio_net_hdr_v1}. */
    public static final int SIZE = 12;
    /** Bytes of the legacy {@code virtio_net_hdr} (no {@code num_buffers}). */
    public static final int LEGACY_SIZE = 10;

    /** Offset of {@code flags} (u8). */
    public static final long FLAGS = 0;
    /** Offset of {@code gso_type} (u8). */
    public static final long GSO_TYPE = 1;
    /** Offset of {@code hdr_len} (le16). */
    public static final long HDR_LEN = 2;
    /** Offset of {@code gso_size} (le16). */
    public static final long GSO_SIZE = 4;
    /** Offset of {@code csum_start} (le16). */
    public static final long CSUM_START = 6;
    /** Offset of {@code csum_offset} (le16). */
    public static final long CSUM_OFFSET = 8;
    /** Offset of {@code num_buffers} (le16). */
    public static final long NUM_BUFFERS = 10;

    /** {@code flags}: the driver left the checksum to the device (needs VIRTIO_NET_F_CSUM). */
    public static final int F_NEEDS_CSUM = 1;
    /** {@code gso_type}: not a segmentation offload frame. */
    public static final int GSO_NONE = 0;

    private static final ValueLayout.OfShort LE16 =
        ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private VirtioNetHeader() {
    }

    /**
     * @param features the negotiated features
     * @return the header's size on the queues: {@link #SIZE} with {@code VERSION_1} or
     *     {@code MRG_RXBUF}, {@link #LEGACY_SIZE} otherwise [virtio 5.1.6.1]
     */
    public static int size(long features) {
        return VirtioFeatures.has(features, VirtioFeatures.VERSION_1) || NetFeatures.mergeableRxBuffers(features)
            ? SIZE : LEGACY_SIZE;
    }

    /**
     * @param header memory holding a header
     * @param offset where it starts
     * @return {@code flags}
     */
    public static int flags(MemorySegment header, long offset) {
        return Byte.toUnsignedInt(header.get(ValueLayout.JAVA_BYTE, offset + FLAGS));
    }

    /**
     * @param header memory holding a header
     * @param offset where it starts
     * @return {@code gso_type}
     */
    public static int gsoType(MemorySegment header, long offset) {
        return Byte.toUnsignedInt(header.get(ValueLayout.JAVA_BYTE, offset + GSO_TYPE));
    }

    /**
     * @param header memory holding a 12-byte header
     * @param offset where it starts
     * @return {@code num_buffers}
     */
    public static int numBuffers(MemorySegment header, long offset) {
        return Short.toUnsignedInt(header.get(LE16, offset + NUM_BUFFERS));
    }

    /**
     * Writes a header with no offloads: every field 0 but {@code num_buffers}.
     *
     * @param header memory for the header
     * @param offset where it starts
     * @param size {@link #SIZE} or {@link #LEGACY_SIZE}
     * @param numBuffers {@code num_buffers} (ignored for the legacy size)
     */
    public static void write(MemorySegment header, long offset, int size, int numBuffers) {
        header.set(ValueLayout.JAVA_LONG_UNALIGNED, offset, 0L);
        header.set(LE16, offset + CSUM_OFFSET, (short) 0);
        if (size == SIZE) {
            header.set(LE16, offset + NUM_BUFFERS, (short) numBuffers);
        }
    }

    /**
     * Checks a tx header against what was negotiated: neither checksum nor segmentation offload
     * is offered, so {@link #F_NEEDS_CSUM} and a {@code gso_type} other than {@link #GSO_NONE}
     * are not allowed [virtio 5.1.6.2.1]. Other flag bits are ignored [virtio 5.1.6.2.2].
     *
     * @param header memory holding a header
     * @param offset where it starts
     * @return whether the device may send the frame as is
     */
    public static boolean isPlainTx(MemorySegment header, long offset) {
        return (flags(header, offset) & F_NEEDS_CSUM) == 0 && gsoType(header, offset) == GSO_NONE;
    }
}

package io.vringj.dma;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * Encodes {@link IotlbMessage}s in the binary layout of {@code struct vhost_iotlb_msg}, padded to
 * 64 bytes as in the kernel's {@code struct vhost_msg} union, and decodes them back.
 *
 * <pre>
 *   offset  size  field
 *        0     8  iova
 *        8     8  size
 *       16     8  uaddr
 *       24     1  perm   (0 none, 1 RO, 2 WO, 3 RW)
 *       25     1  type   (1 MISS, 2 UPDATE, 3 INVALIDATE, 4 ACCESS_FAIL, 5 BATCH_BEGIN, 6 BATCH_END)
 *       26     6  tail padding of the C struct (sizeof = 32)
 *       32    32  padding to 64 bytes
 * </pre>
 *
 * <p>Fields are in the host's byte order, as vhost and vhost-user define them (little-endian on
 * x86-64 and arm64). {@link #encode} writes all 64 bytes, padding zeroed. {@link #decode} needs
 * at least the 32 bytes of the C struct — what a vhost-user {@code IOTLB_MSG} payload carries —
 * and ignores padding; fewer bytes, an unknown type or an unknown permission are refused.
 *
 * <p>Stateless and thread-safe.
 */
public final class IotlbMessageCodec {
    /** Bytes {@link #encode} writes. */
    public static final int ENCODED_SIZE = 64;
    /** Bytes of {@code struct vhost_iotlb_msg}, the least {@link #decode} accepts. */
    public static final int STRUCT_SIZE = 32;
    /** Offset of {@code iova}. */
    public static final long IOVA_OFFSET = 0;
    /** Offset of {@code size}. */
    public static final long SIZE_OFFSET = 8;
    /** Offset of {@code uaddr}. */
    public static final long UADDR_OFFSET = 16;
    /** Offset of {@code perm}. */
    public static final long PERM_OFFSET = 24;
    /** Offset of {@code type}. */
    public static final long TYPE_OFFSET = 25;

    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.nativeOrder());

    private IotlbMessageCodec() {
    }

    /**
     * Writes {@code message} as 64 bytes at {@code offset} of {@code dst}.
     *
     * @param message the message
     * @param dst where to write
     * @param offset where in {@code dst}; 64 bytes must fit
     * @throws IndexOutOfBoundsException if they do not
     */
    public static void encode(IotlbMessage message, MemorySegment dst, long offset) {
        Objects.requireNonNull(message, "message");
        MemorySegment m = dst.asSlice(offset, ENCODED_SIZE);
        m.fill((byte) 0);
        m.set(U64, IOVA_OFFSET, message.iova());
        m.set(U64, SIZE_OFFSET, message.size());
        m.set(U64, UADDR_OFFSET, message.uaddr());
        m.set(ValueLayout.JAVA_BYTE, PERM_OFFSET, (byte) message.permission().bits());
        m.set(ValueLayout.JAVA_BYTE, TYPE_OFFSET, (byte) message.type().code());
    }

    /**
     * @param message the message
     * @return its 64 bytes
     */
    public static byte[] encode(IotlbMessage message) {
        byte[] bytes = new byte[ENCODED_SIZE];
        encode(message, MemorySegment.ofArray(bytes), 0);
        return bytes;
    }

    /**
     * Reads a message.
     *
     * @param src the bytes
     * @param offset where the message starts
     * @param length how many bytes of it there are (at least {@link #STRUCT_SIZE})
     * @return the message
     * @throws IotlbProtocolException if the message is truncated, or its type or permission is
     *     unknown
     * @throws IndexOutOfBoundsException if {@code [offset, offset + length)} is not inside
     *     {@code src}
     */
    public static IotlbMessage decode(MemorySegment src, long offset, long length) throws IotlbProtocolException {
        if (length < STRUCT_SIZE) {
            throw new IotlbProtocolException("IOTLB message of " + length + " bytes is truncated; struct vhost_iotlb_msg has "
                + STRUCT_SIZE);
        }
        MemorySegment m = src.asSlice(offset, length);
        int typeCode = Byte.toUnsignedInt(m.get(ValueLayout.JAVA_BYTE, TYPE_OFFSET));
        IotlbMessage.Type type = IotlbMessage.Type.ofCode(typeCode);
        if (type == null) {
            throw new IotlbProtocolException("IOTLB message type " + typeCode + " is unknown; known are 1 MISS, 2 UPDATE, "
                + "3 INVALIDATE, 4 ACCESS_FAIL, 5 BATCH_BEGIN, 6 BATCH_END");
        }
        int perm = Byte.toUnsignedInt(m.get(ValueLayout.JAVA_BYTE, PERM_OFFSET));
        if (perm > 3) {
            throw new IotlbProtocolException("IOTLB " + type + " message has permission " + perm
                + "; known are 0 none, 1 RO, 2 WO, 3 RW");
        }
        return new IotlbMessage(type, m.get(U64, IOVA_OFFSET), m.get(U64, SIZE_OFFSET), m.get(U64, UADDR_OFFSET),
            Permission.ofBits(perm));
    }

    /**
     * @param bytes a whole message
     * @return the message
     * @throws IotlbProtocolException as {@link #decode(MemorySegment, long, long)}
     */
    public static IotlbMessage decode(byte[] bytes) throws IotlbProtocolException {
        return decode(MemorySegment.ofArray(bytes), 0, bytes.length);
    }
}

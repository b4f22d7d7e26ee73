package io.vringj.ring;

import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The split virtqueue layout [virtio 2.7], little-endian whatever the host.
 *
 * <pre>
 * descriptor table (align 16, 16·Q bytes), entry i at 16·i:
 *   +0  le64 addr      +8  le32 len      +12 le16 flags      +14 le16 next
 *
 * available ring (align 2, 6 + 2·Q bytes), written by the driver:
 *   +0  le16 flags (NO_INTERRUPT)   +2  le16 idx   +4  le16 ring[Q]   +4+2Q  le16 used_event
 *
 * used ring (align 4, 6 + 8·Q bytes), written by the device:
 *   +0  le16 flags (NO_NOTIFY)      +2  le16 idx   +4  {le32 id, le32 len}[Q]   +4+8Q  le16 avail_event
 * </pre>
 *
 * <p>The accessors are {@code static final} var handles with exact {@code long} offsets, so a
 * silently widened {@code int} is a compile-time or link-time error rather than a slow path.
 */
public final class SplitRing {
    /** The largest queue size a split ring may have. */
    public static final int MAX_QUEUE_SIZE = 32768;

    /** Descriptor table alignment in bytes. */
    public static final int DESC_ALIGN = 16;
    /** Available ring alignment in bytes. */
    public static final int AVAIL_ALIGN = 2;
    /** Used ring alignment in bytes. */
    public static final int USED_ALIGN = 4;

    /** Size of one descriptor. */
    public static final long DESC_SIZE = 16;
    static final long DESC_ADDR = 0;
    static final long DESC_LEN = 8;
    static final long DESC_FLAGS = 12;
    static final long DESC_NEXT = 14;

    /** Descriptor flag: the chain continues at {@code next}. */
    public static final short DESC_F_NEXT = 1;
    /** Descriptor flag: the buffer is device-writable. */
    public static final short DESC_F_WRITE = 2;
    /** Descriptor flag: the buffer is an indirect descriptor table. */
    public static final short DESC_F_INDIRECT = 4;

    static final long AVAIL_FLAGS = 0;
    static final long AVAIL_IDX = 2;
    static final long AVAIL_RING = 4;
    /** Avail flag: the driver does not want interrupts. */
    public static final short AVAIL_F_NO_INTERRUPT = 1;

    static final long USED_FLAGS = 0;
    static final long USED_IDX = 2;
    static final long USED_RING = 4;
    static final long USED_ELEM_SIZE = 8;
    static final long USED_ELEM_ID = 0;
    static final long USED_ELEM_LEN = 4;
    /** Used flag: the device does not want kicks. */
    public static final short USED_F_NO_NOTIFY = 1;

    static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);

    /*
     * Descriptor reads on the device side. The descriptor table is checked to be 16-byte aligned at
     * activation, but an indirect table sits wherever the driver put it: the spec sets no alignment
     * for it [virtio 2.7.5.3], so the walk reads descriptors through unaligned layouts (on x86 and
     * arm64 the same load instruction).
     */
    static final ValueLayout.OfShort DESC_LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt DESC_LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong DESC_LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** {@code le16} at (segment, offset): plain, acquire and release access for the idx fields. */
    static final VarHandle SHORT = LE_SHORT.varHandle().withInvokeExactBehavior();

    private SplitRing() {
    }

    /**
     * @param queueSize Q
     * @return the bytes of the descriptor table
     */
    public static long descriptorTableSize(int queueSize) {
        return DESC_SIZE * queueSize;
    }

    /**
     * @param queueSize Q
     * @return the bytes of the available ring, {@code used_event} included
     */
    public static long availRingSize(int queueSize) {
        return 6 + 2L * queueSize;
    }

    /**
     * @param queueSize Q
     * @return the bytes of the used ring, {@code avail_event} included
     */
    public static long usedRingSize(int queueSize) {
        return 6 + USED_ELEM_SIZE * queueSize;
    }

    /**
     * Checks a split-ring queue size: a power of two in 1..32768.
     *
     * @param queueSize Q
     * @return {@code queueSize}
     * @throws IllegalArgumentException naming the value and the rule
     */
    public static int checkQueueSize(int queueSize) {
        if (queueSize < 1 || queueSize > MAX_QUEUE_SIZE || Integer.bitCount(queueSize) != 1) {
            throw new IllegalArgumentException("queue size " + queueSize
                + " is not valid for a split ring: it must be a power of two in 1.." + MAX_QUEUE_SIZE);
        }
        return queueSize;
    }

    /**
     * The event-index test [virtio 2.7.7.2]: should the side that moved an index from
     * {@code old} to {@code newIdx} notify a peer that asked to hear at {@code event}?
     *
     * @param event the peer's event index (used_event or avail_event)
     * @param newIdx the index after the update
     * @param old the index before the update
     * @return {@code (u16)(new - event - 1) < (u16)(new - old)}
     */
    public static boolean needEvent(int event, int newIdx, int old) {
        return ((newIdx - event - 1) & 0xFFFF) < ((newIdx - old) & 0xFFFF);
    }
}

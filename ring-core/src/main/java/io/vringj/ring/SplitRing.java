package io.vringj.ring;

import static io.vringj.ring.RingFormat.SHORT;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

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
 * <p>The descriptor's common fields and the accessors are in {@link RingFormat}, shared with the
 * packed layout; {@link RingLayout} places the three areas in one block of memory.
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

    /** Size of one descriptor (the same 16 bytes in both layouts). */
    public static final long DESC_SIZE = RingFormat.DESC_SIZE;
    static final long DESC_FLAGS = 12;
    static final long DESC_NEXT = 14;

    /** Descriptor flag: the chain continues at {@code next}. */
    public static final short DESC_F_NEXT = RingFormat.DESC_F_NEXT;
    /** Descriptor flag: the buffer is device-writable. */
    public static final short DESC_F_WRITE = RingFormat.DESC_F_WRITE;
    /** Descriptor flag: the buffer is an indirect descriptor table. */
    public static final short DESC_F_INDIRECT = RingFormat.DESC_F_INDIRECT;

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
     * @param queueSize Q
     * @return the offset of {@code used_event} in the available ring ({@code 4 + 2·Q})
     */
    public static long usedEventOffset(int queueSize) {
        return AVAIL_RING + 2L * queueSize;
    }

    /**
     * @param queueSize Q
     * @return the offset of {@code avail_event} in the used ring ({@code 4 + 8·Q})
     */
    public static long availEventOffset(int queueSize) {
        return USED_RING + USED_ELEM_SIZE * queueSize;
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

    /*
     * The split notification rule [virtio 2.7.7, 2.7.10], used by both sides: the driver deciding a
     * kick reads the used ring (flags NO_NOTIFY, avail_event); the device deciding an interrupt reads
     * the available ring (flags NO_INTERRUPT, used_event). Both suppression flags are bit 0 of the
     * ring's first le16, and each event index sits just past its ring's entries.
     */

    /** {@code flags} is the first le16 of both rings ({@link #AVAIL_FLAGS}, {@link #USED_FLAGS}). */
    private static final long RING_FLAGS = AVAIL_FLAGS;
    /** The suppression bit is bit 0 in both ({@link #AVAIL_F_NO_INTERRUPT}, {@link #USED_F_NO_NOTIFY}). */
    private static final short NO_NOTIFICATION = AVAIL_F_NO_INTERRUPT;

    /**
     * After a publication (the release store of our idx is done): a full fence, then the peer's
     * ring decides whether to notify it. The fence makes our idx visible before we read the peer's
     * wish, or the peer may recheck, find nothing and sleep while we read a stale "don't notify";
     * it pairs with the fence in the peer's {@link #arm}.
     *
     * @param peerRing the ring the peer writes (driver: used ring; device: available ring)
     * @param peerEventOffset where its event index is ({@link #availEventOffset} / {@link #usedEventOffset})
     * @param eventIdx whether EVENT_IDX was negotiated
     * @param newIdx our idx after the publication
     * @param oldIdx our idx before it
     * @return whether to notify the peer
     */
    static boolean notifyAfterPublish(MemorySegment peerRing, long peerEventOffset, boolean eventIdx, int newIdx,
                                      int oldIdx) {
        VarHandle.fullFence();
        int field = Short.toUnsignedInt((short) SHORT.getOpaque(peerRing, notifyField(eventIdx, peerEventOffset)));
        return notifyWanted(eventIdx, field, newIdx, oldIdx);
    }

    /**
     * @return the offset, in the peer's ring, of the field a side reads after its publish fence to
     *     decide whether to notify: the peer's event index with EVENT_IDX, its flags without
     */
    static long notifyField(boolean eventIdx, long peerEventOffset) {
        return eventIdx ? peerEventOffset : RING_FLAGS;
    }

    /**
     * The notification rule itself [virtio 2.7.7, 2.7.10], from the field {@link #notifyField}
     * names (read after the fence; the device side reads it through its translated ring area).
     */
    static boolean notifyWanted(boolean eventIdx, int field, int newIdx, int oldIdx) {
        if (eventIdx) {
            return needEvent(field, newIdx, oldIdx);
        }
        return (field & NO_NOTIFICATION) == 0;
    }

    /**
     * Asks the peer for notifications: clears our suppression flag and (with EVENT_IDX) writes the
     * index we want to hear about, then a full fence, so the caller's recheck of the peer's idx
     * that follows cannot miss a publication whose decision read our old wish; pairs with the
     * fence in {@link #notifyAfterPublish} on the other side.
     *
     * @param ownRing the ring we write (driver: available ring; device: used ring)
     * @param ownEventOffset where our event index is ({@link #usedEventOffset} / {@link #availEventOffset})
     * @param eventIdx whether EVENT_IDX was negotiated
     * @param idx the index we want to hear about
     * @param currentFlags the flags we last wrote
     * @return the flags now written
     */
    static short arm(MemorySegment ownRing, long ownEventOffset, boolean eventIdx, int idx, short currentFlags) {
        short flags = currentFlags;
        if ((flags & NO_NOTIFICATION) != 0) {
            flags &= ~NO_NOTIFICATION;
            SHORT.setRelease(ownRing, RING_FLAGS, flags);
        }
        if (eventIdx) {
            SHORT.setRelease(ownRing, ownEventOffset, (short) idx);
        }
        // full fence: pairs with the fence in notifyAfterPublish on the other side
        VarHandle.fullFence();
        return flags;
    }
}

package io.vringj.ring;

import static io.vringj.ring.RingFormat.SHORT;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * The packed virtqueue layout [virtio 2.8], little-endian whatever the host.
 *
 * <pre>
 * descriptor ring (align 16, 16·Q bytes), entry i at 16·i, written by both sides:
 *   +0  le64 addr      +8  le32 len      +12 le16 id      +14 le16 flags
 *   flags: NEXT 1, WRITE 2, INDIRECT 4, AVAIL 1&lt;&lt;7, USED 1&lt;&lt;15
 *
 * driver event suppression (driver area, align 4, 4 bytes), written by the driver:
 * device event suppression (device area, align 4, 4 bytes), written by the device:
 *   +0  le16 desc_event {off:15, wrap:1}    +2  le16 flags (ENABLE 0, DISABLE 1, DESC 2)
 * </pre>
 *
 * <p>Both sides keep a wrap counter that starts at 1 and flips each time their index passes Q.
 * A descriptor is available when {@code AVAIL == wrap} and {@code USED != wrap} (the driver's
 * avail wrap counter); used when both bits equal the device's used wrap counter.
 */
public final class PackedRing {
    /** The largest queue size a packed ring may have. */
    public static final int MAX_QUEUE_SIZE = 32768;
    /** Descriptor ring alignment in bytes. */
    public static final int DESC_ALIGN = 16;
    /** Event suppression structure alignment in bytes. */
    public static final int EVENT_ALIGN = 4;
    /** Size of one event suppression structure. */
    public static final long EVENT_SIZE = 4;

    /** Size of one descriptor (the same 16 bytes in both layouts). */
    public static final long DESC_SIZE = RingFormat.DESC_SIZE;
    static final long DESC_ID = 12;
    static final long DESC_FLAGS = 14;

    /** Descriptor flag: the chain continues in the next descriptor. */
    public static final int DESC_F_NEXT = RingFormat.DESC_F_NEXT;
    /** Descriptor flag: device-writable. */
    public static final int DESC_F_WRITE = RingFormat.DESC_F_WRITE;
    /** Descriptor flag: an indirect table. */
    public static final int DESC_F_INDIRECT = RingFormat.DESC_F_INDIRECT;
    /** Descriptor flag: available (compared with the driver's wrap counter). */
    public static final int DESC_F_AVAIL = 1 << 7;
    /** Descriptor flag: used (compared with the device's wrap counter). */
    public static final int DESC_F_USED = 1 << 15;

    /**
     * A fresh ring's state: position 0, wrap counter 1, encoded as {@code position | wrap << 15}
     * (vhost-user's {@code SET_VRING_BASE} encoding of one side).
     */
    public static final int INITIAL_STATE = 0x8000;

    static final long EVENT_OFF_WRAP = 0;
    static final long EVENT_FLAGS = 2;
    /** Event suppression: notify on every event. */
    public static final short EVENT_FLAG_ENABLE = 0;
    /** Event suppression: do not notify. */
    public static final short EVENT_FLAG_DISABLE = 1;
    /** Event suppression: notify when the position in {@code desc_event} is reached (EVENT_IDX). */
    public static final short EVENT_FLAG_DESC = 2;

    private PackedRing() {
    }

    /**
     * @param queueSize Q
     * @return the bytes of the descriptor ring
     */
    public static long descriptorRingSize(int queueSize) {
        return DESC_SIZE * queueSize;
    }

    /**
     * Checks a packed-ring queue size: 1..32768, any value (not only powers of two).
     *
     * @param queueSize Q
     * @return {@code queueSize}
     * @throws IllegalArgumentException naming the value and the rule
     */
    public static int checkQueueSize(int queueSize) {
        if (queueSize < 1 || queueSize > MAX_QUEUE_SIZE) {
            throw new IllegalArgumentException("queue size " + queueSize
                + " is not valid for a packed ring: it must be in 1.." + MAX_QUEUE_SIZE);
        }
        return queueSize;
    }

    /** The AVAIL/USED bits a driver writes to make a descriptor available in lap {@code wrap}. */
    static int availBits(boolean wrap) {
        return wrap ? DESC_F_AVAIL : DESC_F_USED;
    }

    /** The AVAIL/USED bits a device writes to mark a descriptor used in lap {@code wrap}. */
    static int usedBits(boolean wrap) {
        return wrap ? DESC_F_AVAIL | DESC_F_USED : 0;
    }

    static boolean isAvailable(int flags, boolean wrap) {
        return ((flags & DESC_F_AVAIL) != 0) == wrap && ((flags & DESC_F_USED) != 0) != wrap;
    }

    static boolean isUsed(int flags, boolean wrap) {
        return ((flags & DESC_F_AVAIL) != 0) == wrap && ((flags & DESC_F_USED) != 0) == wrap;
    }

    /** {@code desc_event} for a position and wrap counter. */
    static short offWrap(int position, boolean wrap) {
        return (short) (position | (wrap ? 0x8000 : 0));
    }

    /**
     * After a publication (the release store is done): a full fence, then the peer's event
     * suppression structure decides whether to notify it. The fence makes our store visible
     * before we read the peer's wish, or the peer may recheck the ring, find nothing and sleep
     * while we read a stale "don't notify"; it pairs with the fence in the peer's
     * {@link #arm} before its recheck.
     *
     * @param peerEvent the peer's event suppression structure
     * @param eventIdx whether EVENT_IDX was negotiated (DESC means ENABLE otherwise)
     * @param newPos our position after the publication
     * @param moved how many descriptors the publication moved us
     * @param wrap our wrap counter at {@code newPos}
     */
    static boolean notifyAfterPublish(MemorySegment peerEvent, boolean eventIdx, int newPos, int moved, boolean wrap,
                                      int queueSize) {
        VarHandle.fullFence();
        short flags = (short) SHORT.getOpaque(peerEvent, EVENT_FLAGS);
        int offWrap = Short.toUnsignedInt((short) SHORT.getOpaque(peerEvent, EVENT_OFF_WRAP));
        return notify(flags, offWrap, eventIdx, newPos, moved, wrap, queueSize);
    }

    /**
     * The decision of {@link #notifyAfterPublish} from the peer's event suppression fields read
     * after the fence (the device side reads them through its translated ring area).
     */
    static boolean notify(short flags, int offWrap, boolean eventIdx, int newPos, int moved, boolean wrap,
                          int queueSize) {
        if (!eventIdx && flags == EVENT_FLAG_DESC) {
            flags = EVENT_FLAG_ENABLE;
        }
        return needNotify(flags, offWrap, newPos, moved, wrap, queueSize);
    }

    /**
     * Asks the peer for notifications: writes our event position (with EVENT_IDX) and flags into
     * our own event suppression structure, then a full fence, so the caller's recheck of the ring
     * that follows cannot miss a publication whose notification decision read our old wish.
     *
     * @param ownEvent our event suppression structure
     * @param eventIdx whether EVENT_IDX was negotiated
     * @param position the position we want to hear about
     * @param wrap its wrap counter
     * @param currentFlags the flags we last wrote
     * @return the flags now written
     */
    static short arm(MemorySegment ownEvent, boolean eventIdx, int position, boolean wrap, short currentFlags) {
        if (eventIdx) {
            SHORT.setRelease(ownEvent, EVENT_OFF_WRAP, offWrap(position, wrap));
        }
        short wanted = eventIdx ? EVENT_FLAG_DESC : EVENT_FLAG_ENABLE;
        if (currentFlags != wanted) {
            SHORT.setRelease(ownEvent, EVENT_FLAGS, wanted);
        }
        // full fence: pairs with the fence in notifyAfterPublish on the other side
        VarHandle.fullFence();
        return wanted;
    }

    /**
     * Linux's packed notification test: should the side that moved its position from
     * {@code old} to {@code newPos} (in descriptors, wrap counter {@code wrap} at {@code newPos})
     * notify a peer whose suppression structure holds {@code offWrap} / {@code flags}?
     */
    static boolean needNotify(short flags, int offWrap, int newPos, int moved, boolean wrap, int queueSize) {
        if (flags != EVENT_FLAG_DESC) {
            return flags != EVENT_FLAG_DISABLE;
        }
        int event = offWrap & 0x7FFF;
        if (((offWrap & 0x8000) != 0) != wrap) {
            // the event is in the other lap: bring it into this lap's numbering
            event -= queueSize;
        }
        return SplitRing.needEvent(event, newPos, newPos - moved);
    }
}

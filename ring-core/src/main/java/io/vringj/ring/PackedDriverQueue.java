package io.vringj.ring;

import static io.vringj.ring.PackedRing.DESC_FLAGS;
import static io.vringj.ring.PackedRing.DESC_ID;
import static io.vringj.ring.PackedRing.EVENT_FLAGS;
import static io.vringj.ring.PackedRing.EVENT_FLAG_DESC;
import static io.vringj.ring.PackedRing.EVENT_FLAG_DISABLE;
import static io.vringj.ring.PackedRing.EVENT_FLAG_ENABLE;
import static io.vringj.ring.PackedRing.EVENT_OFF_WRAP;
import static io.vringj.ring.RingFormat.DESC_ADDR;
import static io.vringj.ring.RingFormat.DESC_F_INDIRECT;
import static io.vringj.ring.RingFormat.DESC_F_NEXT;
import static io.vringj.ring.RingFormat.DESC_F_WRITE;
import static io.vringj.ring.RingFormat.DESC_LEN;
import static io.vringj.ring.RingFormat.DESC_LE_INT;
import static io.vringj.ring.RingFormat.DESC_LE_LONG;
import static io.vringj.ring.RingFormat.DESC_LE_SHORT;
import static io.vringj.ring.RingFormat.DESC_SIZE;
import static io.vringj.ring.RingFormat.LE_INT;
import static io.vringj.ring.RingFormat.LE_LONG;
import static io.vringj.ring.RingFormat.LE_SHORT;
import static io.vringj.ring.RingFormat.SHORT;
import static io.vringj.ring.RingFormat.checkArea;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * The driver side of a packed virtqueue [virtio 2.8].
 *
 * <p>A chain of n descriptors takes the next n ring positions; its buffer id (from a private
 * free list of ids) goes in every descriptor, so in the last one. The head's flags are written
 * last: for a batch of adds, the first head of the batch is held back and written by
 * {@link #publish()} with a release store, which makes the whole batch available at once.
 *
 * <pre>
 *   nextAvail/availWrap   next position to fill and its lap
 *   lastUsed/usedWrap     next position the device writes a used descriptor to
 *   pendingHead           position of the held-back head, or -1
 * </pre>
 */
final class PackedDriverQueue extends DriverQueueBase {
    private final MemorySegment desc;
    private final MemorySegment driverEvent;
    private final MemorySegment deviceEvent;

    /** Free buffer ids, as a linked list through this array. */
    private final int[] nextFreeId;
    private int freeId;
    private int numFree;

    private int nextAvail;
    private boolean availWrap;
    private int lastUsed;
    private boolean usedWrap;

    private int pendingHead = -1;
    /** Flags of the head just written by writeDescriptor, not yet stored. */
    private short pendingHeadFlags;
    /** Flags of the batch's first head, stored by publish(). */
    private short batchHeadFlags;
    private int descriptorsAdded;
    private short eventFlagsShadow = EVENT_FLAG_ENABLE;

    /**
     * @param start the position (bits 0-14) and wrap counter (bit 15) where both the next available
     *     and the next used descriptor are: {@link PackedRing#INITIAL_STATE} for a fresh ring, or a
     *     state restored from a vring base with nothing in flight
     */
    PackedDriverQueue(long features, int queueSize, MemorySegment desc, MemorySegment driverEvent,
                      MemorySegment deviceEvent, int start) {
        super(features, PackedRing.checkQueueSize(queueSize));
        if (start < 0 || start > 0xFFFF || (start & 0x7FFF) >= queueSize) {
            throw new IllegalArgumentException("start state 0x" + Integer.toHexString(start) + " is not a packed ring "
                + "state: the position (bits 0-14) must be below the queue size " + queueSize
                + " and bit 15 is the wrap counter; nothing above bit 15");
        }
        this.desc = checkArea("descriptor ring", desc, PackedRing.descriptorRingSize(queueSize),
            PackedRing.DESC_ALIGN);
        this.driverEvent = checkArea("driver event suppression", driverEvent, PackedRing.EVENT_SIZE,
            PackedRing.EVENT_ALIGN);
        this.deviceEvent = checkArea("device event suppression", deviceEvent, PackedRing.EVENT_SIZE,
            PackedRing.EVENT_ALIGN);
        nextFreeId = new int[queueSize];
        for (int i = 0; i < queueSize; i++) {
            nextFreeId[i] = i + 1;
        }
        numFree = queueSize;
        int position = start & 0x7FFF;
        boolean wrap = (start & 0x8000) != 0;
        nextAvail = lastUsed = position;
        availWrap = usedWrap = wrap;
        // The driver owns ring memory until the device is activated: start from a clean state, in which no
        // descriptor is available or used for the lap it is next reached in. Descriptors before the position were
        // used in this lap, those from it on in the previous one (all zero for a fresh ring: lap 0, position 0).
        this.desc.fill((byte) 0);
        for (int i = 0; i < queueSize; i++) {
            this.desc.set(LE_SHORT, i * DESC_SIZE + DESC_FLAGS, (short) PackedRing.usedBits(i < position ? wrap : !wrap));
        }
        this.driverEvent.fill((byte) 0);
        this.deviceEvent.fill((byte) 0);
        // release: the set-up above is visible before the segments reach the device's thread
        VarHandle.releaseFence();
    }

    @Override
    public int numFree() {
        return numFree;
    }

    @Override
    public int add(BufferChain chain) throws VirtqueueException {
        checkNotBroken();
        checkChainSize(chain);
        int n = chain.size();
        if (n > numFree) {
            return NO_ROOM;
        }
        int id = takeId();
        int head = nextAvail;
        int readable = chain.readableCount();
        for (int k = 0; k < n; k++) {
            int flags = (k >= readable ? DESC_F_WRITE : 0) | (k < n - 1 ? DESC_F_NEXT : 0);
            writeDescriptor(k, chain.busAddress(k), chain.length(k), id, flags);
        }
        numFree -= n;
        return offer(id, n, chain.writableLength(), head);
    }

    private int takeId() {
        int id = freeId;
        freeId = nextFreeId[id];
        return id;
    }

    /** Writes descriptor {@code k} of a chain at the next position; the head's flags are only remembered. */
    private void writeDescriptor(int k, long addr, long len, int id, int flags) {
        long off = nextAvail * DESC_SIZE;
        desc.set(LE_LONG, off + DESC_ADDR, addr);
        desc.set(LE_INT, off + DESC_LEN, (int) len);
        desc.set(LE_SHORT, off + DESC_ID, (short) id);
        short all = (short) (flags | PackedRing.availBits(availWrap));
        if (k == 0) {
            pendingHeadFlags = all;
        } else {
            desc.set(LE_SHORT, off + DESC_FLAGS, all);
        }
        if (++nextAvail == queueSize) {
            nextAvail = 0;
            availWrap = !availWrap;
        }
    }

    private int offer(int id, int descriptors, long writable, int head) {
        markInFlight(id, descriptors, writable);
        descriptorsAdded += descriptors;
        if (pendingHead < 0) {
            pendingHead = head;
            batchHeadFlags = pendingHeadFlags;
        } else {
            // a later head of the batch: the device cannot reach it before the first head, whose
            // release store in publish() makes this plain store visible too
            desc.set(LE_SHORT, head * DESC_SIZE + DESC_FLAGS, pendingHeadFlags);
        }
        return id;
    }

    @Override
    public void writeIndirectTable(BufferChain chain, MemorySegment table) {
        checkTableSize(chain, table);
        int readable = chain.readableCount();
        for (int k = 0; k < chain.size(); k++) {
            long off = k * DESC_SIZE;
            table.set(DESC_LE_LONG, off + DESC_ADDR, chain.busAddress(k));
            table.set(DESC_LE_INT, off + DESC_LEN, (int) chain.length(k));
            table.set(DESC_LE_SHORT, off + DESC_ID, (short) 0);
            // only WRITE is valid inside a packed indirect table [virtio 2.8.19]
            table.set(DESC_LE_SHORT, off + DESC_FLAGS, (short) (k >= readable ? DESC_F_WRITE : 0));
        }
    }

    @Override
    public int addIndirect(BufferChain chain, long tableBusAddress) throws VirtqueueException {
        checkIndirectAllowed(chain);
        checkNotBroken();
        if (numFree == 0) {
            return NO_ROOM;
        }
        int id = takeId();
        int head = nextAvail;
        writeDescriptor(0, tableBusAddress, DESC_SIZE * chain.size(), id, DESC_F_INDIRECT);
        numFree--;
        return offer(id, 1, chain.writableLength(), head);
    }

    @Override
    public void publishQuiet() {
        if (broken == null && pendingHead >= 0) {
            publishHead();
        }
    }

    /** @return how many descriptors the publication moved */
    private int publishHead() {
        // release: every descriptor of the batch is visible before the first head is available;
        // pairs with the acquire of the head's flags in PackedDeviceQueue.pop
        SHORT.setRelease(desc, pendingHead * DESC_SIZE + DESC_FLAGS, batchHeadFlags);
        pendingHead = -1;
        int moved = descriptorsAdded;
        descriptorsAdded = 0;
        return moved;
    }

    @Override
    public boolean publish() {
        if (broken != null || pendingHead < 0) {
            return false;
        }
        int moved = publishHead();
        return PackedRing.notifyAfterPublish(deviceEvent, eventIdx, nextAvail, moved, availWrap, queueSize);
    }

    @Override
    public int pollUsed() throws VirtqueueException {
        if (inOrder) {
            return pollUsedInOrder();
        }
        checkNotBroken();
        long off = lastUsed * DESC_SIZE;
        // acquire: pairs with the release store of the used descriptor's flags in PackedDeviceQueue.publishUsed
        int flags = (short) SHORT.getAcquire(desc, off + DESC_FLAGS);
        if (!PackedRing.isUsed(flags, usedWrap)) {
            return NONE;
        }
        int id = Short.toUnsignedInt(desc.get(LE_SHORT, off + DESC_ID));
        long len = Integer.toUnsignedLong(desc.get(LE_INT, off + DESC_LEN));
        if ((flags & DESC_F_WRITE) == 0 && id < queueSize && chainWritable(id) == 0) {
            // a used descriptor without WRITE has its length reserved, and drivers ignore it [virtio 2.8.4];
            // DPDK's vhost writes the bytes it read there for tx chains
            len = 0;
        }
        return takeBack(id, len);
    }

    /**
     * {@link #pollUsed()} with VIRTIO_F_IN_ORDER: the used descriptor where a batch starts (over the
     * first descriptor of its first buffer) names the batch's last buffer; the device skipped the
     * descriptors of the rest [virtio 2.8.8], so they are not read.
     */
    private int pollUsedInOrder() throws VirtqueueException {
        checkNotBroken();
        if (!inBatch()) {
            long off = lastUsed * DESC_SIZE;
            // acquire: pairs with the release store of the used descriptor's flags in PackedDeviceQueue.publishUsed
            int flags = (short) SHORT.getAcquire(desc, off + DESC_FLAGS);
            if (!PackedRing.isUsed(flags, usedWrap)) {
                return NONE;
            }
            int id = Short.toUnsignedInt(desc.get(LE_SHORT, off + DESC_ID));
            long len = Integer.toUnsignedLong(desc.get(LE_INT, off + DESC_LEN));
            if ((flags & DESC_F_WRITE) == 0 && id < queueSize && chainWritable(id) == 0) {
                // reserved without WRITE, as in pollUsed [virtio 2.8.4]
                len = 0;
            }
            // a packed batch has no count of its own to check against: every buffer in flight may be in it
            beginBatch(id, len, lastUsed, queueSize);
        }
        int id = nextInBatch();
        return takeBack(id, batchLength(id));
    }

    /** Frees buffer {@code id} (checked by takeUsed), moves past its descriptors and keeps the event position current. */
    private int takeBack(int id, long len) throws VirtqueueException {
        int n = takeUsed(id, len, lastUsed);
        nextFreeId[id] = freeId;
        freeId = id;
        numFree += n;
        lastUsed += n;
        if (lastUsed >= queueSize) {
            lastUsed -= queueSize;
            usedWrap = !usedWrap;
        }
        if (eventIdx && eventFlagsShadow == EVENT_FLAG_DESC) {
            // keep the event position current while interrupts are wanted; the fence that makes it
            // safe to sleep is in enableInterrupts
            SHORT.setRelease(driverEvent, EVENT_OFF_WRAP, PackedRing.offWrap(lastUsed, usedWrap));
        }
        return id;
    }

    @Override
    public boolean enableInterrupts() {
        eventFlagsShadow = PackedRing.arm(driverEvent, eventIdx, lastUsed, usedWrap, eventFlagsShadow);
        if (broken != null || inBatch()) {
            // "poll now": the caller's next pollUsed reports the error, or takes the rest of the batch,
            // instead of sleeping
            return true;
        }
        // acquire: pairs with the release store of the used descriptor's flags in PackedDeviceQueue.publishUsed;
        // what it finds is checked by pollUsed like any other used descriptor
        int flags = (short) SHORT.getAcquire(desc, lastUsed * DESC_SIZE + DESC_FLAGS);
        return PackedRing.isUsed(flags, usedWrap);
    }

    @Override
    public void disableInterrupts() {
        if (eventFlagsShadow != EVENT_FLAG_DISABLE) {
            eventFlagsShadow = EVENT_FLAG_DISABLE;
            SHORT.setRelease(driverEvent, EVENT_FLAGS, EVENT_FLAG_DISABLE);
        }
    }

    @Override
    public String toString() {
        return "PackedDriverQueue[size=" + queueSize + ", free=" + numFree + ", nextAvail=" + nextAvail + "/"
            + (availWrap ? 1 : 0) + ", lastUsed=" + lastUsed + "/" + (usedWrap ? 1 : 0)
            + (broken != null ? ", broken: " + broken.getMessage() : "") + "]";
    }
}

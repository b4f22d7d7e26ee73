package io.vringj.ring;

import static io.vringj.ring.RingFormat.DESC_ADDR;
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
import static io.vringj.ring.SplitRing.AVAIL_FLAGS;
import static io.vringj.ring.SplitRing.AVAIL_F_NO_INTERRUPT;
import static io.vringj.ring.SplitRing.AVAIL_IDX;
import static io.vringj.ring.SplitRing.AVAIL_RING;
import static io.vringj.ring.SplitRing.DESC_FLAGS;
import static io.vringj.ring.SplitRing.DESC_F_INDIRECT;
import static io.vringj.ring.SplitRing.DESC_F_NEXT;
import static io.vringj.ring.SplitRing.DESC_F_WRITE;
import static io.vringj.ring.SplitRing.DESC_NEXT;
import static io.vringj.ring.SplitRing.USED_ELEM_ID;
import static io.vringj.ring.SplitRing.USED_ELEM_LEN;
import static io.vringj.ring.SplitRing.USED_ELEM_SIZE;
import static io.vringj.ring.SplitRing.USED_IDX;
import static io.vringj.ring.SplitRing.USED_RING;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * The driver side of a split virtqueue [virtio 2.7].
 *
 * <p>State the device can see lives in the three ring segments; state it must not be able to
 * corrupt lives in Java arrays: the free list and each descriptor's successor ({@code next}),
 * how many descriptors each in-flight head holds, and how many bytes of it are writable. A
 * device that rewrites the descriptor table therefore cannot make the driver free the wrong
 * descriptors, and a used id or length the driver did not hand out is caught here.
 *
 * <pre>
 *   availShadow   next avail idx to write      (driver-private copy of avail->idx)
 *   availPublished avail idx the device may see (last release store)
 *   lastUsed      next used idx to consume
 *   cachedUsed    last used->idx read with acquire; reread only when lastUsed catches up
 * </pre>
 */
final class SplitDriverQueue extends DriverQueueBase {
    private final int mask;

    private final MemorySegment desc;
    private final MemorySegment avail;
    private final MemorySegment used;
    private final long usedEventOffset;
    private final long availEventOffset;

    /** Successor of each descriptor: in a chain, the chain's next; when free, the next free one. */
    private final int[] next;

    private int freeHead;
    private int numFree;

    private int availShadow;
    private int availPublished;
    private short availFlagsShadow;
    private int lastUsed;
    private int cachedUsed;


    SplitDriverQueue(long features, int queueSize, MemorySegment desc, MemorySegment avail, MemorySegment used,
                     int startIndex) {
        super(features, SplitRing.checkQueueSize(queueSize));
        if (startIndex < 0 || startIndex > 0xFFFF) {
            throw new IllegalArgumentException("start index " + startIndex + " is outside 0..65535");
        }
        this.mask = queueSize - 1;
        this.desc = checkArea("descriptor table", desc, SplitRing.descriptorTableSize(queueSize), SplitRing.DESC_ALIGN);
        this.avail = checkArea("available ring", avail, SplitRing.availRingSize(queueSize), SplitRing.AVAIL_ALIGN);
        this.used = checkArea("used ring", used, SplitRing.usedRingSize(queueSize), SplitRing.USED_ALIGN);
        this.usedEventOffset = SplitRing.usedEventOffset(queueSize);
        this.availEventOffset = SplitRing.availEventOffset(queueSize);

        next = new int[queueSize];
        for (int i = 0; i < queueSize; i++) {
            // in order, descriptors are used in ring order and the last one's successor is 0 [virtio 2.7.5]
            next[i] = inOrder ? (i + 1) & mask : i + 1;
        }
        freeHead = 0;
        numFree = queueSize;

        availShadow = availPublished = lastUsed = cachedUsed = startIndex;
        // The driver owns ring memory until the device is activated: start from a clean state.
        this.desc.fill((byte) 0);
        this.avail.fill((byte) 0);
        this.used.fill((byte) 0);
        avail.set(LE_SHORT, AVAIL_IDX, (short) startIndex);
        used.set(LE_SHORT, USED_IDX, (short) startIndex);
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
        long[] addresses = chain.addressArray();
        long[] lengths = chain.lengthArray();
        int readable = chain.readableCount();
        int head = freeHead;
        int i = head;
        int last = head;
        for (int k = 0; k < n; k++) {
            long off = i * DESC_SIZE;
            short flags = (short) ((k >= readable ? DESC_F_WRITE : 0) | (k < n - 1 ? DESC_F_NEXT : 0));
            desc.set(LE_LONG, off + DESC_ADDR, addresses[k]);
            desc.set(LE_INT, off + DESC_LEN, (int) lengths[k]);
            desc.set(LE_SHORT, off + DESC_FLAGS, flags);
            desc.set(LE_SHORT, off + DESC_NEXT, (short) (k < n - 1 ? next[i] : 0));
            last = i;
            i = next[i];
        }
        freeHead = next[last];
        numFree -= n;
        return offer(head, n, chain.writableLength());
    }

    @Override
    public void writeIndirectTable(BufferChain chain, MemorySegment table) {
        checkTableSize(chain, table);
        int n = chain.size();
        int readable = chain.readableCount();
        for (int k = 0; k < n; k++) {
            long off = k * DESC_SIZE;
            short flags = (short) ((k >= readable ? DESC_F_WRITE : 0) | (k < n - 1 ? DESC_F_NEXT : 0));
            table.set(DESC_LE_LONG, off + DESC_ADDR, chain.busAddress(k));
            table.set(DESC_LE_INT, off + DESC_LEN, (int) chain.length(k));
            table.set(DESC_LE_SHORT, off + DESC_FLAGS, flags);
            table.set(DESC_LE_SHORT, off + DESC_NEXT, (short) (k < n - 1 ? k + 1 : 0));
        }
    }

    @Override
    public int addIndirect(BufferChain chain, long tableBusAddress) throws VirtqueueException {
        checkIndirectAllowed(chain);
        checkNotBroken();
        int n = chain.size();
        if (numFree == 0) {
            return NO_ROOM;
        }
        int head = freeHead;
        long off = head * DESC_SIZE;
        desc.set(LE_LONG, off + DESC_ADDR, tableBusAddress);
        desc.set(LE_INT, off + DESC_LEN, (int) (n * DESC_SIZE));
        desc.set(LE_SHORT, off + DESC_FLAGS, DESC_F_INDIRECT);
        desc.set(LE_SHORT, off + DESC_NEXT, (short) 0);
        freeHead = next[head];
        numFree--;
        return offer(head, 1, chain.writableLength());
    }

    private int offer(int head, int descriptors, long writable) {
        markInFlight(head, descriptors, writable);
        avail.set(LE_SHORT, AVAIL_RING + 2L * (availShadow & mask), (short) head);
        availShadow = (availShadow + 1) & 0xFFFF;
        if (availShadow == ((availPublished + 0xFFFF) & 0xFFFF)) {
            // 65535 adds without a publish would make the next one look like none: publish now
            // (as Linux's virtqueue_add does); the kick decision is left to the caller's publish
            publishIndex();
        }
        return head;
    }

    private int publishIndex() {
        int old = availPublished;
        // release: descriptors and ring entries above are visible before the index; pairs with
        // the acquire of avail->idx in SplitDeviceQueue.pop
        SHORT.setRelease(avail, AVAIL_IDX, (short) availShadow);
        availPublished = availShadow;
        return old;
    }

    @Override
    public boolean publish() {
        if (broken != null || availShadow == availPublished) {
            return false;
        }
        int old = publishIndex();
        // the fence and the kick rule: pairs with the fence SplitDeviceQueue.enableNotifications makes in arm
        return SplitRing.notifyAfterPublish(used, availEventOffset, eventIdx, availPublished, old);
    }

    @Override
    public void publishQuiet() {
        if (broken == null && availShadow != availPublished) {
            publishIndex();
        }
    }

    @Override
    public int pollUsed() throws VirtqueueException {
        if (inOrder) {
            return pollUsedInOrder();
        }
        checkNotBroken();
        if (lastUsed == cachedUsed) {
            int ahead = readUsedIdx();
            if (ahead < 0) {
                throw broken;
            }
            if (ahead == 0) {
                return NONE;
            }
        }
        long elem = USED_RING + USED_ELEM_SIZE * (lastUsed & mask);
        long id = Integer.toUnsignedLong(used.get(LE_INT, elem + USED_ELEM_ID));
        long len = Integer.toUnsignedLong(used.get(LE_INT, elem + USED_ELEM_LEN));
        int head = (int) id;
        int n = takeUsed(id, len, lastUsed);
        // return the chain's descriptors to the free list, following our private links
        int last = head;
        for (int k = 1; k < n; k++) {
            last = next[last];
        }
        next[last] = freeHead;
        freeHead = head;
        numFree += n;
        lastUsed = (lastUsed + 1) & 0xFFFF;
        if (eventIdx && (availFlagsShadow & AVAIL_F_NO_INTERRUPT) == 0) {
            // keep used_event current while interrupts are wanted; the fence that makes it safe to
            // sleep is in enableInterrupts
            SHORT.setRelease(avail, usedEventOffset, (short) lastUsed);
        }
        return head;
    }

    /**
     * {@link #pollUsed()} with VIRTIO_F_IN_ORDER: the entry at the used idx where a batch starts names
     * the batch's last buffer, the device moved the used idx by the batch's size and left the
     * entries in between unwritten [virtio 2.7.9]. Descriptors come back in ring order, so they
     * rejoin the free range without relinking.
     */
    private int pollUsedInOrder() throws VirtqueueException {
        checkNotBroken();
        if (!inBatch()) {
            if (lastUsed == cachedUsed) {
                int ahead = readUsedIdx();
                if (ahead < 0) {
                    throw broken;
                }
                if (ahead == 0) {
                    return NONE;
                }
            }
            long elem = USED_RING + USED_ELEM_SIZE * (lastUsed & mask);
            long id = Integer.toUnsignedLong(used.get(LE_INT, elem + USED_ELEM_ID));
            long len = Integer.toUnsignedLong(used.get(LE_INT, elem + USED_ELEM_LEN));
            // the idx that made this entry visible covers the whole batch: a device moves it past the
            // batch in the same publication
            beginBatch(id, len, lastUsed, (cachedUsed - lastUsed) & 0xFFFF);
        }
        int head = nextInBatch();
        numFree += takeUsed(head, batchLength(head), lastUsed);
        lastUsed = (lastUsed + 1) & 0xFFFF;
        if (eventIdx && (availFlagsShadow & AVAIL_F_NO_INTERRUPT) == 0) {
            // as in pollUsed: used_event follows the buffers taken back
            SHORT.setRelease(avail, usedEventOffset, (short) lastUsed);
        }
        return head;
    }

    /**
     * Rereads used->idx into {@code cachedUsed}; every read of it goes through here, so each applies the
     * same rule: the device may not be further ahead than the chains in flight.
     *
     * @return how many used entries are waiting, or -1 if the device broke the rule (the queue is then broken)
     */
    private int readUsedIdx() {
        // acquire: pairs with the release store of used->idx in SplitDeviceQueue.publishUsed
        int idx = Short.toUnsignedInt((short) SHORT.getAcquire(used, USED_IDX));
        int ahead = (idx - lastUsed) & 0xFFFF;
        if (ahead > inFlight()) {
            // more used entries than chains in flight: at least one of them is bogus
            fail(RingError.USED_IDX_TOO_FAR, "used idx " + idx + ", driver's last used idx " + lastUsed + ", "
                + inFlight() + " chains in flight, queue size " + queueSize);
            return -1;
        }
        cachedUsed = idx;
        return ahead;
    }

    @Override
    public boolean enableInterrupts() {
        // our wish (flags / used_event), then a full fence before the recheck of used->idx below; pairs with the
        // fence SplitDeviceQueue.publishUsed makes in notifyAfterPublish
        availFlagsShadow = SplitRing.arm(avail, usedEventOffset, eventIdx, lastUsed, availFlagsShadow);
        // a broken queue answers "poll now", so the caller's next pollUsed reports the error instead of sleeping
        return broken != null || readUsedIdx() != 0;
    }

    @Override
    public void disableInterrupts() {
        if ((availFlagsShadow & AVAIL_F_NO_INTERRUPT) == 0) {
            availFlagsShadow |= AVAIL_F_NO_INTERRUPT;
            SHORT.setRelease(avail, AVAIL_FLAGS, availFlagsShadow);
        }
    }

    @Override
    public String toString() {
        return "SplitDriverQueue[size=" + queueSize + ", free=" + numFree + ", avail=" + availShadow + ", lastUsed="
            + lastUsed + (broken != null ? ", broken: " + broken.getMessage() : "") + "]";
    }
}

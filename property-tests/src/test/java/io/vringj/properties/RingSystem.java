package io.vringj.properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.PackedRing;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.SplitRing;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.testing.PackedRingDump;
import io.vringj.testing.SplitRingDump;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A real ring — {@link DriverQueue} and {@link DeviceQueue} over one {@link GuestMemory}, split
 * [virtio 2.7] or packed [virtio 2.8] — next to a small reference model of what both sides should
 * do. Every step runs on both and compares: buffer ids (heads) handed back, lengths, payload
 * bytes, free descriptors, in-flight counts, what is published in guest memory, and each kick /
 * interrupt decision evaluated on the model's view of the peer's suppression state.
 *
 * <p>What the two layouts share (chains, payloads, the order of publication, draining) is here;
 * what differs sits behind {@link Layout}: the split ring keeps avail/used indices and flags or
 * event indices ({@link Split}), the packed ring keeps a position and wrap counter per side and
 * two event suppression structures ({@link Packed}).
 *
 * <p>Buffers live in per-chain areas of {@value #AREA_SIZE} bytes: readable buffers from offset 0,
 * writable ones from {@value #WRITABLE_OFFSET}, the indirect table at {@value #TABLE_OFFSET}.
 */
final class RingSystem {
    static final long BASE = 0x1000_0000L;
    static final long MEMORY_SIZE = 1 << 20;
    static final RingAddresses RINGS = new RingAddresses(BASE, BASE + 0x1000, BASE + 0x2000);
    static final long AREAS = BASE + 0x1_0000;
    static final long AREA_SIZE = 0x400;
    static final long WRITABLE_OFFSET = 0x100;
    static final long TABLE_OFFSET = 0x200;
    /** The most readable (and the most writable) buffers in one chain. */
    static final int MAX_BUFFERS_PER_SIDE = 3;
    static final int MAX_BUFFER_LENGTH = 64;

    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** A chain the model knows about: its buffers, its payload token and where it is. */
    static final class Chain {
        final int token;
        final int area;
        final boolean indirect;
        final BufferChain buffers;
        /** Descriptors it takes in the table (split) or ring positions (packed): 1 when indirect. */
        final int descriptors;
        /** Its head (split) or buffer id (packed). */
        int id = -1;
        /** Packed only: its first ring position and the driver's wrap counter there; -1 on a split ring. */
        int position = -1;
        boolean wrap;
        /** The chain as the device popped it (each pop gets its own, so it survives later pops). */
        DescriptorChain popped;

        Chain(int token, int area, boolean indirect, BufferChain buffers) {
            this.token = token;
            this.area = area;
            this.indirect = indirect;
            this.buffers = buffers;
            this.descriptors = indirect ? 1 : buffers.size();
        }

        @Override
        public String toString() {
            return "chain#" + token + "(" + (position < 0 ? "head " + id : "id " + id + " at " + position + "/"
                + (wrap ? 1 : 0)) + (indirect ? ", indirect " : ", ") + buffers + ")";
        }
    }

    record Used(Chain chain, long written) {
    }

    /**
     * What differs between the layouts: where each side is in the ring, how publication shows in
     * guest memory, and the suppression state each side reads before it notifies. The shared
     * model calls one hook per step, after the real queue ran it.
     */
    interface Layout {
        /** The driver added {@code chain}, taking {@code needed} descriptors. */
        void added(Chain chain, int needed);

        /** The driver published what it added; @return whether it must kick, by the model */
        boolean published();

        /** The driver took back {@code chain}. */
        void polled(Chain chain);

        /** The driver enabled interrupts. */
        void interruptsEnabled();

        /** The driver disabled interrupts. */
        void interruptsDisabled();

        /** The device popped {@code chain}. */
        void popped(Chain chain);

        /** The device added {@code chain} to the used ring. */
        void usedAdded(Chain chain);

        /** The device published what it used; @return whether it must interrupt, by the model */
        boolean usedPublished();

        /** The device enabled notifications. */
        void notificationsEnabled();

        /** The device disabled notifications. */
        void notificationsDisabled();

        /** Asserts what guest memory and the queues show of this layout's state. */
        void checkInvariants();

        /** @return the suppression state behind a kick decision, for messages */
        String kickState();

        /** @return the suppression state behind an interrupt decision, for messages */
        String interruptState();

        /** @return the model's view and the ring in virtio terms */
        String describe();
    }

    final GuestMemory memory;
    final int queueSize;
    final long features;
    final boolean eventIdx;
    final boolean indirectNegotiated;
    final DriverQueue driver;
    final DeviceQueue device;
    private final Layout layout;
    private final StringBuilder log = new StringBuilder();

    // ---- the model, common to both layouts ----
    int numFree;
    boolean deviceNotificationsEnabled = true;
    final ArrayDeque<Chain> addedUnpublished = new ArrayDeque<>();
    final ArrayDeque<Chain> publishedUnpopped = new ArrayDeque<>();
    final List<Chain> deviceInFlight = new ArrayList<>();
    final List<Used> usedUnpublished = new ArrayList<>();
    final ArrayDeque<Used> usedUnpolled = new ArrayDeque<>();
    final Map<Integer, Chain> driverInFlight = new HashMap<>();
    final BitSet freeAreas = new BitSet();
    int nextToken;
    final BitSet completed = new BitSet();

    private RingSystem(GuestMemory memory, int queueSize, long features, int driverStart, int deviceStart,
                       boolean packed, int splitStart) {
        this.memory = memory;
        this.queueSize = queueSize;
        this.features = features;
        this.eventIdx = VirtioFeatures.has(features, VirtioFeatures.EVENT_IDX);
        this.indirectNegotiated = VirtioFeatures.has(features, VirtioFeatures.INDIRECT_DESC);
        this.driver = DriverQueue.create(features, queueSize, memory, RINGS, driverStart);
        try {
            this.device = DeviceQueue.create(features, queueSize, RINGS, AddressSpace.identity(memory), deviceStart);
        } catch (VirtqueueException e) {
            throw new AssertionError("a fresh ring must activate: " + e.getMessage(), e);
        }
        numFree = queueSize;
        freeAreas.set(0, queueSize);
        this.layout = packed ? new Packed() : new Split(splitStart);
    }

    /**
     * @param startIndex the avail and used idx both sides start at
     * @return a split ring and its model
     */
    static RingSystem split(GuestMemory memory, int queueSize, long features, int startIndex) {
        return new RingSystem(memory, queueSize, features, startIndex, startIndex, false, startIndex);
    }

    /** @return a packed ring (RING_PACKED added to {@code features}) and its model, both at position 0 of lap 1 */
    static RingSystem packed(GuestMemory memory, int queueSize, long features) {
        int state = PackedRing.INITIAL_STATE;
        return new RingSystem(memory, queueSize, features | VirtioFeatures.bit(VirtioFeatures.RING_PACKED), state,
            state | state << 16, true, 0);
    }

    /** @return the split layout's model; fails on a packed ring */
    Split splitModel() {
        return (Split) layout;
    }

    /** @return the packed layout's model; fails on a split ring */
    Packed packedModel() {
        return (Packed) layout;
    }

    // ---------------------------------------------------------------- driver side

    /** Driver adds a chain of the given lengths; writable lengths come after readable ones. */
    void driverAdd(int[] readable, int[] writable, boolean wantIndirect) {
        int n = readable.length + writable.length;
        boolean indirect = wantIndirect && indirectNegotiated && n <= queueSize;
        int needed = indirect ? 1 : n;
        int area = freeAreas.nextSetBit(0);
        log("driver add R" + Arrays.toString(readable) + " W" + Arrays.toString(writable) + (indirect ? " indirect" : ""));
        BufferChain buffers = new BufferChain(n);
        int token = nextToken;
        long areaBase = AREAS + Math.max(area, 0) * AREA_SIZE;
        long at = areaBase;
        for (int i = 0; i < readable.length; i++) {
            buffers.addReadable(at, readable[i]);
            if (area >= 0) {
                ChainPayloads.fill(memory.slice(at, readable[i]), token, i);
            }
            at += readable[i];
        }
        at = areaBase + WRITABLE_OFFSET;
        for (int len : writable) {
            buffers.addWritable(at, len);
            at += len;
        }
        int id;
        try {
            if (indirect) {
                if (needed <= numFree) {
                    // the split and packed descriptors are both 16 bytes [virtio 2.7.5, 2.8.13]
                    driver.writeIndirectTable(buffers, memory.slice(areaBase + TABLE_OFFSET, n * SplitRing.DESC_SIZE));
                }
                id = driver.addIndirect(buffers, areaBase + TABLE_OFFSET);
            } else {
                id = driver.add(buffers);
            }
        } catch (VirtqueueException e) {
            throw new AssertionError("driver add on a healthy ring failed: " + e.getMessage(), e);
        }
        if (needed > numFree) {
            assertEquals(DriverQueue.NO_ROOM, id, "add of " + needed + " descriptors with " + numFree + " free");
            return;
        }
        assertTrue(area >= 0, "model: a free descriptor implies a free buffer area");
        assertTrue(id >= 0 && id < queueSize, "buffer id " + id + " outside 0.." + (queueSize - 1));
        assertFalse(driverInFlight.containsKey(id), "buffer id " + id + " handed out while still in flight as "
            + driverInFlight.get(id));
        Chain chain = new Chain(token, area, indirect, buffers);
        chain.id = id;
        nextToken++;
        freeAreas.clear(area);
        numFree -= needed;
        layout.added(chain, needed);
        driverInFlight.put(id, chain);
        addedUnpublished.add(chain);
    }

    /** Driver publishes (kicks if told to). */
    void driverPublish() {
        boolean kick = driver.publish();
        log("driver publish -> kick=" + kick);
        boolean expected = false;
        if (!addedUnpublished.isEmpty()) {
            expected = layout.published();
            publishedUnpopped.addAll(addedUnpublished);
            addedUnpublished.clear();
        }
        assertEquals(expected, kick, "kick decision (EVENT_IDX " + eventIdx + ", " + layout.kickState() + ")");
    }

    /** Driver takes back one used chain. */
    void driverPoll() {
        int id;
        try {
            id = driver.pollUsed();
        } catch (VirtqueueException e) {
            throw new AssertionError("driver poll on a healthy ring failed: " + e.getMessage(), e);
        }
        log("driver poll -> " + id + (id >= 0 ? " len " + driver.usedLength() : ""));
        Used expected = usedUnpolled.poll();
        if (expected == null) {
            assertEquals(DriverQueue.NONE, id, "nothing used was published, yet pollUsed returned an id");
            return;
        }
        Chain chain = expected.chain();
        assertEquals(chain.id, id, "used buffer id (expected " + chain + ")");
        assertEquals(expected.written(), driver.usedLength(), "used length of " + chain);
        ChainPayloads.checkWritten(memory, chain.buffers, chain.token, expected.written(), chain);
        assertFalse(completed.get(chain.token), chain + " completed twice");
        completed.set(chain.token);
        driverInFlight.remove(id);
        numFree += chain.descriptors;
        freeAreas.set(chain.area);
        layout.polled(chain);
    }

    void driverEnableInterrupts() {
        boolean pending = driver.enableInterrupts();
        log("driver enable interrupts -> " + pending);
        layout.interruptsEnabled();
        assertEquals(!usedUnpolled.isEmpty(), pending, "enableInterrupts: used chains already waiting");
    }

    void driverDisableInterrupts() {
        log("driver disable interrupts");
        driver.disableInterrupts();
        layout.interruptsDisabled();
    }

    // ---------------------------------------------------------------- device side

    /** Device pops one chain and checks it is the next published one, payload included. */
    void devicePop() {
        DescriptorChain popped = new DescriptorChain();
        boolean got;
        try {
            got = device.pop(popped);
        } catch (VirtqueueException e) {
            throw new AssertionError("device pop of a valid ring failed: " + e.getMessage(), e);
        }
        log("device pop -> " + (got ? "id " + popped.head() : "none"));
        Chain chain = publishedUnpopped.poll();
        if (chain == null) {
            assertFalse(got, "device popped id " + popped.head() + " though nothing unpopped was published");
            return;
        }
        assertTrue(got, "published " + chain + " was not popped (lost)");
        assertEquals(chain.id, popped.head(), "popped buffer id, expected " + chain);
        ChainPayloads.checkPopped(popped, chain.buffers, chain.indirect, chain.token, chain);
        chain.popped = popped;
        deviceInFlight.add(chain);
        layout.popped(chain);
    }

    /** Device completes the {@code index}-th in-flight chain, writing {@code percent}% of its writable part. */
    void deviceAddUsed(int index, int percent) {
        Chain chain = deviceInFlight.remove(index % deviceInFlight.size());
        long written = chain.buffers.writableLength() * percent / 100;
        log("device add used " + chain + " written " + written);
        ChainPayloads.writeReply(chain.popped, chain.token, written);
        device.addUsed(chain.id, written);
        usedUnpublished.add(new Used(chain, written));
        layout.usedAdded(chain);
    }

    void devicePublishUsed() {
        boolean interrupt = device.publishUsed();
        log("device publish used -> interrupt=" + interrupt);
        boolean expected = false;
        if (!usedUnpublished.isEmpty()) {
            expected = layout.usedPublished();
            usedUnpolled.addAll(usedUnpublished);
            usedUnpublished.clear();
        }
        assertEquals(expected, interrupt, "interrupt decision (EVENT_IDX " + eventIdx + ", " + layout.interruptState()
            + ")");
    }

    void deviceEnableNotifications() {
        boolean pending;
        try {
            pending = device.enableNotifications();
        } catch (VirtqueueException e) {
            throw new AssertionError("enableNotifications on a healthy ring failed: " + e.getMessage(), e);
        }
        log("device enable notifications -> " + pending);
        deviceNotificationsEnabled = true;
        layout.notificationsEnabled();
        assertEquals(!publishedUnpopped.isEmpty(), pending, "enableNotifications: chains already available");
    }

    void deviceDisableNotifications() {
        log("device disable notifications");
        device.disableNotifications();
        deviceNotificationsEnabled = false;
        layout.notificationsDisabled();
    }

    // ---------------------------------------------------------------- invariants

    /** What must hold between any two steps. */
    void checkInvariants() {
        assertFalse(driver.isBroken(), "driver broke on a valid ring");
        assertFalse(device.isBroken(), "device broke on a valid ring");
        assertEquals(numFree, driver.numFree(), "numFree");
        assertEquals(driverInFlight.size(), driver.inFlight(), "driver in-flight chains");
        assertEquals(deviceInFlight.size(), device.inFlight(), "device in-flight chains");
        int descriptors = 0;
        for (Chain c : driverInFlight.values()) {
            descriptors += c.descriptors;
        }
        assertEquals(queueSize - descriptors, numFree, "model: free descriptors");
        if (driverInFlight.isEmpty()) {
            assertEquals(queueSize, driver.numFree(), "numFree when idle");
        }
        layout.checkInvariants();
    }

    /** Completes everything in flight, in reverse order, and checks every chain came back exactly once. */
    void drain() {
        driverPublish();
        while (!publishedUnpopped.isEmpty()) {
            devicePop();
        }
        devicePop();
        while (!deviceInFlight.isEmpty()) {
            deviceAddUsed(deviceInFlight.size() - 1, 100);
        }
        devicePublishUsed();
        while (!usedUnpolled.isEmpty()) {
            driverPoll();
        }
        driverPoll();
        checkInvariants();
        assertEquals(queueSize, driver.numFree(), "numFree after draining");
        assertEquals(nextToken, completed.cardinality(), "chains completed (each exactly once)");
        assertEquals(0, driver.inFlight(), "driver in flight after draining");
        assertEquals(0, device.inFlight(), "device in flight after draining");
    }

    // ---------------------------------------------------------------- reporting

    private void log(String step) {
        log.append("  ").append(step).append('\n');
    }

    /** @return the steps run so far, the model's view and the ring as it is now, in virtio terms */
    String describe() {
        return "Q=" + queueSize + " features=0x" + Long.toHexString(features) + "\n" + "steps:\n" + log
            + "model: numFree " + numFree + ", " + layout.describe();
    }

    @Override
    public String toString() {
        return "RingSystem[" + layout.getClass().getSimpleName() + ", Q=" + queueSize + ", features=0x"
            + Long.toHexString(features) + ", " + driverInFlight.size() + " in flight]";
    }

    /** Runs a step; on failure the message carries the steps so far and the ring dump. */
    void step(Runnable step) {
        try {
            step.run();
            checkInvariants();
        } catch (AssertionError | RuntimeException e) {
            throw new AssertionError(e.getMessage() + "\n" + describe(), e);
        }
    }

    // ---------------------------------------------------------------- split layout

    /**
     * The split ring's state [virtio 2.7]: 16-bit free-running indices (the driver's shadow and
     * published avail idx, the device's last avail and used idx, the driver's last used idx), the
     * flags NO_NOTIFY / NO_INTERRUPT, and with EVENT_IDX the {@code used_event} and
     * {@code avail_event} fields as the peer would read them.
     */
    final class Split implements Layout {
        final int startIndex;
        int availShadow;
        int availPublished;
        int lastAvail;
        int usedShadow;
        int usedPublished;
        int lastUsed;
        /** Driver's avail flags NO_INTERRUPT and used_event as the device would read them. */
        boolean driverNoInterrupt;
        int usedEvent;
        /** Device's used flags NO_NOTIFY and avail_event as the driver would read them. */
        boolean deviceNoNotify;
        int availEvent;

        Split(int startIndex) {
            this.startIndex = startIndex;
            availShadow = availPublished = lastAvail = startIndex;
            usedShadow = usedPublished = lastUsed = startIndex;
        }

        @Override
        public void added(Chain chain, int needed) {
            availShadow = (availShadow + 1) & 0xFFFF;
        }

        @Override
        public boolean published() {
            int old = availPublished;
            availPublished = availShadow;
            return eventIdx ? SplitRing.needEvent(availEvent, availPublished, old) : !deviceNoNotify;
        }

        @Override
        public void polled(Chain chain) {
            lastUsed = (lastUsed + 1) & 0xFFFF;
            if (eventIdx && !driverNoInterrupt) {
                usedEvent = lastUsed;
            }
        }

        @Override
        public void interruptsEnabled() {
            driverNoInterrupt = false;
            if (eventIdx) {
                usedEvent = lastUsed;
            }
        }

        @Override
        public void interruptsDisabled() {
            driverNoInterrupt = true;
        }

        @Override
        public void popped(Chain chain) {
            lastAvail = (lastAvail + 1) & 0xFFFF;
            if (eventIdx && deviceNotificationsEnabled) {
                availEvent = lastAvail;
            }
        }

        @Override
        public void usedAdded(Chain chain) {
            usedShadow = (usedShadow + 1) & 0xFFFF;
        }

        @Override
        public boolean usedPublished() {
            int old = usedPublished;
            usedPublished = usedShadow;
            return eventIdx ? SplitRing.needEvent(usedEvent, usedPublished, old) : !driverNoInterrupt;
        }

        @Override
        public void notificationsEnabled() {
            deviceNoNotify = false;
            if (eventIdx) {
                availEvent = lastAvail;
            }
        }

        @Override
        public void notificationsDisabled() {
            deviceNoNotify = true;
        }

        @Override
        public void checkInvariants() {
            assertEquals(lastAvail, device.lastAvailIdx(), "device's last avail idx");
            MemorySegment avail = memory.slice(RINGS.driverArea(), SplitRing.availRingSize(queueSize));
            MemorySegment used = memory.slice(RINGS.deviceArea(), SplitRing.usedRingSize(queueSize));
            assertEquals(availPublished, Short.toUnsignedInt(avail.get(LE_SHORT, 2)), "avail idx in guest memory");
            assertEquals(usedPublished, Short.toUnsignedInt(used.get(LE_SHORT, 2)), "used idx in guest memory");
            // nothing published is lost: every published, unconsumed chain is still counted by the indices
            assertEquals(publishedUnpopped.size(), (availPublished - lastAvail) & 0xFFFF, "published, not yet popped");
            assertEquals(usedUnpolled.size(), (usedPublished - lastUsed) & 0xFFFF, "used, not yet polled");
            if (eventIdx && !driverNoInterrupt) {
                assertEquals(usedEvent, Short.toUnsignedInt(avail.get(LE_SHORT, SplitRing.usedEventOffset(queueSize))),
                    "used_event");
            }
            if (eventIdx && deviceNotificationsEnabled) {
                assertEquals(availEvent,
                    Short.toUnsignedInt(used.get(LE_SHORT, SplitRing.availEventOffset(queueSize))), "avail_event");
            }
        }

        @Override
        public String kickState() {
            return "avail_event " + availEvent + ", NO_NOTIFY " + deviceNoNotify;
        }

        @Override
        public String interruptState() {
            return "used_event " + usedEvent + ", NO_INTERRUPT " + driverNoInterrupt;
        }

        @Override
        public String describe() {
            return "split ring, start index " + startIndex + "\n" + driver + "\n" + device + "\n"
                + SplitRingDump.dump(memory, RINGS, queueSize);
        }

        /** @return whether the avail or used index passed 65535 during the run */
        boolean wrapped() {
            return nextToken > 0 && (availShadow < startIndex || lastUsed < startIndex);
        }
    }

    // ---------------------------------------------------------------- packed layout

    /** A position in the ring and its wrap counter, as both sides keep them [virtio 2.8.1]. */
    static final class Cursor {
        int position;
        boolean wrap = true;

        void advance(int n, int queueSize) {
            position += n;
            if (position >= queueSize) {
                position -= queueSize;
                wrap = !wrap;
            }
        }

        /** {@code desc_event} / {@code lastAvailIdx} encoding: off in bits 0-14, wrap in bit 15. */
        int offWrap() {
            return position | (wrap ? 0x8000 : 0);
        }

        @Override
        public String toString() {
            return position + "/" + (wrap ? 1 : 0);
        }
    }

    /** The model of one event suppression structure [virtio 2.8.10]. */
    static final class Event {
        int flags = PackedRing.EVENT_FLAG_ENABLE;
        int offWrap;

        @Override
        public String toString() {
            return PackedRingDump.eventFlags(flags) + " {off=" + (offWrap & 0x7FFF) + ", wrap=" + (offWrap >>> 15) + "}";
        }
    }

    /**
     * The packed ring's state [virtio 2.8]: each side's position and wrap counter for making
     * available and for using, the descriptors added / used since the last publication, and both
     * event suppression structures as the peer would read them. The kick / interrupt rule is
     * Linux's ({@code ENABLE}, {@code DISABLE}, or {@code DESC} with {@code vring_need_event} on
     * the event offset, moved back by Q when its wrap counter is not the notifier's).
     */
    final class Packed implements Layout {
        final Cursor driverAvail = new Cursor();
        final Cursor driverUsed = new Cursor();
        final Cursor deviceAvail = new Cursor();
        final Cursor deviceUsed = new Cursor();
        /** Ring positions added by the driver / used by the device since its last publication. */
        int addedDescriptors;
        int usedDescriptors;
        /** Written by the driver, read by the device before an interrupt. */
        final Event driverEvent = new Event();
        /** Written by the device, read by the driver before a kick. */
        final Event deviceEvent = new Event();
        /** Times either side's wrap counter flipped, and how often a chain straddled the end of the ring. */
        int laps;
        int chainsAcrossTheEnd;
        /** DESC decisions that notified, that did not, and whose event was in the other lap. */
        int descNotified;
        int descSuppressed;
        int descOtherLap;
        private final MemorySegment ring = memory.slice(RINGS.descriptorArea(), PackedRing.descriptorRingSize(queueSize));
        private final MemorySegment driverEventArea = memory.slice(RINGS.driverArea(), PackedRing.EVENT_SIZE);
        private final MemorySegment deviceEventArea = memory.slice(RINGS.deviceArea(), PackedRing.EVENT_SIZE);

        /**
         * Linux's {@code virtqueue_kick_prepare_packed} / {@code vhost_notify} for packed rings:
         * with {@code DESC}, the event offset is moved back by Q when its wrap counter differs from
         * the notifier's at {@code newPos}, then {@code vring_need_event(event, new, new - moved)}
         * in 16-bit arithmetic. Without EVENT_IDX a peer never asks for {@code DESC}; if it did, it
         * would mean {@code ENABLE}.
         */
        boolean needNotify(Event peer, Cursor notifier, int moved) {
            int flags = peer.flags;
            if (!eventIdx && flags == PackedRing.EVENT_FLAG_DESC) {
                flags = PackedRing.EVENT_FLAG_ENABLE;
            }
            if (flags != PackedRing.EVENT_FLAG_DESC) {
                return flags != PackedRing.EVENT_FLAG_DISABLE;
            }
            int event = peer.offWrap & 0x7FFF;
            boolean otherLap = ((peer.offWrap & 0x8000) != 0) != notifier.wrap;
            if (otherLap) {
                event -= queueSize;
            }
            int newIdx = notifier.position;
            int old = newIdx - moved;
            // vring_need_event: (u16)(new - event - 1) < (u16)(new - old)
            boolean need = ((newIdx - event - 1) & 0xFFFF) < ((newIdx - old) & 0xFFFF);
            if (need) {
                descNotified++;
            } else {
                descSuppressed++;
            }
            if (otherLap) {
                descOtherLap++;
            }
            return need;
        }

        private void advance(Cursor cursor, int n) {
            boolean before = cursor.wrap;
            cursor.advance(n, queueSize);
            if (cursor.wrap != before) {
                laps++;
            }
        }

        @Override
        public void added(Chain chain, int needed) {
            chain.position = driverAvail.position;
            chain.wrap = driverAvail.wrap;
            if (driverAvail.position + needed > queueSize) {
                chainsAcrossTheEnd++;
            }
            advance(driverAvail, needed);
            addedDescriptors += needed;
        }

        @Override
        public boolean published() {
            boolean need = needNotify(deviceEvent, driverAvail, addedDescriptors);
            addedDescriptors = 0;
            return need;
        }

        @Override
        public void polled(Chain chain) {
            advance(driverUsed, chain.descriptors);
            if (eventIdx && driverEvent.flags == PackedRing.EVENT_FLAG_DESC) {
                driverEvent.offWrap = driverUsed.offWrap();
            }
        }

        @Override
        public void interruptsEnabled() {
            driverEvent.flags = eventIdx ? PackedRing.EVENT_FLAG_DESC : PackedRing.EVENT_FLAG_ENABLE;
            if (eventIdx) {
                driverEvent.offWrap = driverUsed.offWrap();
            }
        }

        @Override
        public void interruptsDisabled() {
            driverEvent.flags = PackedRing.EVENT_FLAG_DISABLE;
        }

        @Override
        public void popped(Chain chain) {
            advance(deviceAvail, chain.descriptors);
            if (eventIdx && deviceNotificationsEnabled) {
                deviceEvent.offWrap = deviceAvail.offWrap();
            }
        }

        @Override
        public void usedAdded(Chain chain) {
            advance(deviceUsed, chain.descriptors);
            usedDescriptors += chain.descriptors;
        }

        @Override
        public boolean usedPublished() {
            boolean need = needNotify(driverEvent, deviceUsed, usedDescriptors);
            usedDescriptors = 0;
            return need;
        }

        @Override
        public void notificationsEnabled() {
            deviceEvent.flags = eventIdx ? PackedRing.EVENT_FLAG_DESC : PackedRing.EVENT_FLAG_ENABLE;
            if (eventIdx) {
                deviceEvent.offWrap = deviceAvail.offWrap();
            }
        }

        @Override
        public void notificationsDisabled() {
            deviceEvent.flags = PackedRing.EVENT_FLAG_DISABLE;
        }

        private int descFlags(int position) {
            return Short.toUnsignedInt(ring.get(LE_SHORT, position * PackedRing.DESC_SIZE + 14));
        }

        private static boolean isAvailable(int flags, boolean wrap) {
            return ((flags & PackedRing.DESC_F_AVAIL) != 0) == wrap && ((flags & PackedRing.DESC_F_USED) != 0) != wrap;
        }

        private static boolean isUsed(int flags, boolean wrap) {
            return ((flags & PackedRing.DESC_F_AVAIL) != 0) == wrap && ((flags & PackedRing.DESC_F_USED) != 0) == wrap;
        }

        @Override
        public void checkInvariants() {
            assertEquals(deviceAvail.offWrap(), device.lastAvailIdx(), "device's last avail position | wrap << 15");
            // nothing published is lost, nothing unpublished leaks: the device's next descriptor is
            // available exactly when a published chain waits, the driver's next is used exactly when
            // a published used chain waits
            assertEquals(!publishedUnpopped.isEmpty(), isAvailable(descFlags(deviceAvail.position), deviceAvail.wrap),
                "descriptor at the device's position " + deviceAvail + " available");
            assertEquals(!usedUnpolled.isEmpty(), isUsed(descFlags(driverUsed.position), driverUsed.wrap),
                "descriptor at the driver's used position " + driverUsed + " used");
            assertEquals(driverEvent.flags, Short.toUnsignedInt(driverEventArea.get(LE_SHORT, 2)),
                "driver event suppression flags");
            assertEquals(driverEvent.offWrap, Short.toUnsignedInt(driverEventArea.get(LE_SHORT, 0)),
                "driver event suppression desc_event");
            assertEquals(deviceEvent.flags, Short.toUnsignedInt(deviceEventArea.get(LE_SHORT, 2)),
                "device event suppression flags");
            assertEquals(deviceEvent.offWrap, Short.toUnsignedInt(deviceEventArea.get(LE_SHORT, 0)),
                "device event suppression desc_event");
        }

        @Override
        public String kickState() {
            return "device event suppression " + deviceEvent + ", driver next avail " + driverAvail;
        }

        @Override
        public String interruptState() {
            return "driver event suppression " + driverEvent + ", device next used " + deviceUsed;
        }

        @Override
        public String describe() {
            return "packed ring: driver next avail " + driverAvail + ", driver next used " + driverUsed
                + ", device next avail " + deviceAvail + ", device next used " + deviceUsed + "\n"
                + "model: driver event " + driverEvent + ", device event " + deviceEvent + "\n"
                + PackedRingDump.dump(memory, RINGS, queueSize, driver, device);
        }
    }
}

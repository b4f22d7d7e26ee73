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
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.testing.PackedRingDump;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A real packed ring — {@link DriverQueue} and {@link DeviceQueue} created with
 * {@code VIRTIO_F_RING_PACKED} over one {@link GuestMemory} — next to a small reference model of
 * what both sides should do [virtio 2.8]. The model keeps each side's position and wrap counter,
 * the descriptors every chain takes in the ring, and both event suppression structures as the
 * peer would read them. Every step runs on both and compares: buffer ids handed back, lengths,
 * payload bytes, free descriptors, in-flight counts, positions and wrap counters, the event
 * suppression structures in guest memory, whether the next descriptor is available / used, and
 * each kick / interrupt decision (Linux's packed rule evaluated on the model: {@code ENABLE},
 * {@code DISABLE}, or {@code DESC} with {@code vring_need_event} on the event offset, moved back
 * by Q when its wrap counter is not the notifier's).
 *
 * <p>Buffers live in per-chain areas laid out as in {@link RingSystem}.
 */
final class PackedRingSystem {
    static final RingAddresses RINGS = RingSystem.RINGS;

    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int DESC_SIZE = 16;

    /** A chain the model knows about: its buffers, its payload token and where it is. */
    static final class Chain {
        final int token;
        final int area;
        final boolean indirect;
        final BufferChain buffers;
        /** Ring positions the chain takes: 1 for an indirect chain. */
        final int descriptors;
        /** Its first ring position and the driver's wrap counter there. */
        final int position;
        final boolean wrap;
        int id = -1;
        DescriptorChain popped;

        Chain(int token, int area, boolean indirect, BufferChain buffers, int position, boolean wrap) {
            this.token = token;
            this.area = area;
            this.indirect = indirect;
            this.buffers = buffers;
            this.descriptors = indirect ? 1 : buffers.size();
            this.position = position;
            this.wrap = wrap;
        }

        @Override
        public String toString() {
            return "chain#" + token + "(id " + id + " at " + position + "/" + (wrap ? 1 : 0)
                + (indirect ? ", indirect " : ", ") + buffers + ")";
        }
    }

    record Used(Chain chain, long written) {
    }

    /** A position in the ring and its wrap counter, as both sides keep them. */
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

    /** The model of one event suppression structure. */
    static final class Event {
        int flags = PackedRing.EVENT_FLAG_ENABLE;
        int offWrap;

        @Override
        public String toString() {
            return PackedRingDump.eventFlags(flags) + " {off=" + (offWrap & 0x7FFF) + ", wrap=" + (offWrap >>> 15) + "}";
        }
    }

    final GuestMemory memory;
    final int queueSize;
    final long features;
    final boolean eventIdx;
    final boolean indirectNegotiated;
    final DriverQueue driver;
    final DeviceQueue device;
    private final MemorySegment ring;
    private final MemorySegment driverEventArea;
    private final MemorySegment deviceEventArea;
    private final StringBuilder log = new StringBuilder();

    // ---- the model ----
    int numFree;
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
    /** Times either side's wrap counter flipped, and how often a chain straddled the end of the ring. */
    int laps;
    int chainsAcrossTheEnd;
    /** DESC decisions that notified, that did not, and whose event was in the other lap. */
    int descNotified;
    int descSuppressed;
    int descOtherLap;

    PackedRingSystem(GuestMemory memory, int queueSize, long features) {
        this.memory = memory;
        this.queueSize = queueSize;
        this.features = features | VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
        this.eventIdx = VirtioFeatures.has(features, VirtioFeatures.EVENT_IDX);
        this.indirectNegotiated = VirtioFeatures.has(features, VirtioFeatures.INDIRECT_DESC);
        this.driver = DriverQueue.create(this.features, queueSize, memory, RINGS);
        try {
            this.device = DeviceQueue.create(this.features, queueSize, RINGS, AddressSpace.identity(memory));
        } catch (VirtqueueException e) {
            throw new AssertionError("a fresh packed ring must activate: " + e.getMessage(), e);
        }
        ring = memory.slice(RINGS.descriptorArea(), PackedRing.descriptorRingSize(queueSize));
        driverEventArea = memory.slice(RINGS.driverArea(), PackedRing.EVENT_SIZE);
        deviceEventArea = memory.slice(RINGS.deviceArea(), PackedRing.EVENT_SIZE);
        numFree = queueSize;
        freeAreas.set(0, queueSize);
    }

    // ---------------------------------------------------------------- the rule

    /**
     * Linux's {@code virtqueue_kick_prepare_packed} / {@code vhost_notify} for packed rings: with
     * {@code DESC}, the event offset is moved back by Q when its wrap counter differs from the
     * notifier's at {@code newPos}, then {@code vring_need_event(event, new, new - moved)} in
     * 16-bit arithmetic. Without EVENT_IDX a peer never asks for {@code DESC}; if it did, it
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

    // ---------------------------------------------------------------- driver side

    /** Driver adds a chain of the given lengths; writable lengths come after readable ones. */
    void driverAdd(int[] readable, int[] writable, boolean wantIndirect) {
        int n = readable.length + writable.length;
        boolean indirect = wantIndirect && indirectNegotiated && n <= queueSize;
        int needed = indirect ? 1 : n;
        int area = freeAreas.nextSetBit(0);
        log("driver add R" + java.util.Arrays.toString(readable) + " W" + java.util.Arrays.toString(writable)
            + (indirect ? " indirect" : ""));
        BufferChain buffers = new BufferChain(n);
        int token = nextToken;
        long areaBase = RingSystem.AREAS + Math.max(area, 0) * RingSystem.AREA_SIZE;
        long at = areaBase;
        for (int i = 0; i < readable.length; i++) {
            buffers.addReadable(at, readable[i]);
            if (area >= 0) {
                ChainPayloads.fill(memory.slice(at, readable[i]), token, i);
            }
            at += readable[i];
        }
        at = areaBase + RingSystem.WRITABLE_OFFSET;
        for (int len : writable) {
            buffers.addWritable(at, len);
            at += len;
        }
        int id;
        try {
            if (indirect) {
                if (needed <= numFree) {
                    driver.writeIndirectTable(buffers,
                        memory.slice(areaBase + RingSystem.TABLE_OFFSET, (long) n * DESC_SIZE));
                }
                id = driver.addIndirect(buffers, areaBase + RingSystem.TABLE_OFFSET);
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
        Chain chain = new Chain(token, area, indirect, buffers, driverAvail.position, driverAvail.wrap);
        chain.id = id;
        nextToken++;
        freeAreas.clear(area);
        numFree -= needed;
        if (driverAvail.position + needed > queueSize) {
            chainsAcrossTheEnd++;
        }
        advance(driverAvail, needed);
        addedDescriptors += needed;
        driverInFlight.put(id, chain);
        addedUnpublished.add(chain);
    }

    private void advance(Cursor cursor, int n) {
        boolean before = cursor.wrap;
        cursor.advance(n, queueSize);
        if (cursor.wrap != before) {
            laps++;
        }
    }

    /** Driver publishes (kicks if told to). */
    void driverPublish() {
        boolean kick = driver.publish();
        log("driver publish -> kick=" + kick);
        boolean expected = false;
        if (!addedUnpublished.isEmpty()) {
            expected = needNotify(deviceEvent, driverAvail, addedDescriptors);
            publishedUnpopped.addAll(addedUnpublished);
            addedUnpublished.clear();
            addedDescriptors = 0;
        }
        assertEquals(expected, kick, "kick decision (EVENT_IDX " + eventIdx + ", device event suppression "
            + deviceEvent + ", driver next avail " + driverAvail + ")");
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
        advance(driverUsed, chain.descriptors);
        if (eventIdx && driverEvent.flags == PackedRing.EVENT_FLAG_DESC) {
            driverEvent.offWrap = driverUsed.offWrap();
        }
    }

    void driverEnableInterrupts() {
        boolean pending = driver.enableInterrupts();
        log("driver enable interrupts -> " + pending);
        driverEvent.flags = eventIdx ? PackedRing.EVENT_FLAG_DESC : PackedRing.EVENT_FLAG_ENABLE;
        if (eventIdx) {
            driverEvent.offWrap = driverUsed.offWrap();
        }
        assertEquals(!usedUnpolled.isEmpty(), pending, "enableInterrupts: used chains already waiting");
    }

    void driverDisableInterrupts() {
        log("driver disable interrupts");
        driver.disableInterrupts();
        driverEvent.flags = PackedRing.EVENT_FLAG_DISABLE;
    }

    // ---------------------------------------------------------------- device side

    /** Device pops one chain and checks it is the next published one, payload included. */
    void devicePop() {
        DescriptorChain popped = new DescriptorChain();
        boolean got;
        try {
            got = device.pop(popped);
        } catch (VirtqueueException e) {
            throw new AssertionError("device pop of a valid packed ring failed: " + e.getMessage(), e);
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
        advance(deviceAvail, chain.descriptors);
        if (eventIdx && deviceNotificationsEnabled) {
            deviceEvent.offWrap = deviceAvail.offWrap();
        }
    }

    /** Device completes the {@code index}-th in-flight chain, writing {@code percent}% of its writable part. */
    void deviceAddUsed(int index, int percent) {
        Chain chain = deviceInFlight.remove(index % deviceInFlight.size());
        long written = chain.buffers.writableLength() * percent / 100;
        log("device add used " + chain + " written " + written);
        ChainPayloads.writeReply(chain.popped, chain.token, written);
        device.addUsed(chain.id, written);
        usedUnpublished.add(new Used(chain, written));
        advance(deviceUsed, chain.descriptors);
        usedDescriptors += chain.descriptors;
    }

    void devicePublishUsed() {
        boolean interrupt = device.publishUsed();
        log("device publish used -> interrupt=" + interrupt);
        boolean expected = false;
        if (!usedUnpublished.isEmpty()) {
            expected = needNotify(driverEvent, deviceUsed, usedDescriptors);
            usedUnpolled.addAll(usedUnpublished);
            usedUnpublished.clear();
            usedDescriptors = 0;
        }
        assertEquals(expected, interrupt, "interrupt decision (EVENT_IDX " + eventIdx + ", driver event suppression "
            + driverEvent + ", device next used " + deviceUsed + ")");
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
        deviceEvent.flags = eventIdx ? PackedRing.EVENT_FLAG_DESC : PackedRing.EVENT_FLAG_ENABLE;
        if (eventIdx) {
            deviceEvent.offWrap = deviceAvail.offWrap();
        }
        assertEquals(!publishedUnpopped.isEmpty(), pending, "enableNotifications: chains already available");
    }

    void deviceDisableNotifications() {
        log("device disable notifications");
        device.disableNotifications();
        deviceNotificationsEnabled = false;
        deviceEvent.flags = PackedRing.EVENT_FLAG_DISABLE;
    }

    // ---------------------------------------------------------------- invariants

    private int descFlags(int position) {
        return Short.toUnsignedInt(ring.get(LE_SHORT, (long) position * DESC_SIZE + 14));
    }

    private static boolean isAvailable(int flags, boolean wrap) {
        return ((flags & PackedRing.DESC_F_AVAIL) != 0) == wrap && ((flags & PackedRing.DESC_F_USED) != 0) != wrap;
    }

    private static boolean isUsed(int flags, boolean wrap) {
        return ((flags & PackedRing.DESC_F_AVAIL) != 0) == wrap && ((flags & PackedRing.DESC_F_USED) != 0) == wrap;
    }

    /** What must hold between any two steps. */
    void checkInvariants() {
        assertFalse(driver.isBroken(), "driver broke on a valid ring");
        assertFalse(device.isBroken(), "device broke on a valid ring");
        assertEquals(numFree, driver.numFree(), "numFree");
        assertEquals(driverInFlight.size(), driver.inFlight(), "driver in-flight chains");
        assertEquals(deviceInFlight.size(), device.inFlight(), "device in-flight chains");
        assertEquals(deviceAvail.offWrap(), device.lastAvailIdx(), "device's last avail position | wrap << 15");
        // nothing published is lost, nothing unpublished leaks: the device's next descriptor is
        // available exactly when a published chain waits, the driver's next is used exactly when
        // a published used chain waits
        assertEquals(!publishedUnpopped.isEmpty(), isAvailable(descFlags(deviceAvail.position), deviceAvail.wrap),
            "descriptor at the device's position " + deviceAvail + " available");
        assertEquals(!usedUnpolled.isEmpty(), isUsed(descFlags(driverUsed.position), driverUsed.wrap),
            "descriptor at the driver's used position " + driverUsed + " used");
        int ringDescriptors = 0;
        for (Chain c : driverInFlight.values()) {
            ringDescriptors += c.descriptors;
        }
        assertEquals(queueSize - ringDescriptors, numFree, "model: free ring positions");
        if (driverInFlight.isEmpty()) {
            assertEquals(queueSize, driver.numFree(), "numFree when idle");
        }
        assertEquals(driverEvent.flags, Short.toUnsignedInt(driverEventArea.get(LE_SHORT, 2)),
            "driver event suppression flags");
        assertEquals(driverEvent.offWrap, Short.toUnsignedInt(driverEventArea.get(LE_SHORT, 0)),
            "driver event suppression desc_event");
        assertEquals(deviceEvent.flags, Short.toUnsignedInt(deviceEventArea.get(LE_SHORT, 2)),
            "device event suppression flags");
        assertEquals(deviceEvent.offWrap, Short.toUnsignedInt(deviceEventArea.get(LE_SHORT, 0)),
            "device event suppression desc_event");
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
        return "packed Q=" + queueSize + " features=0x" + Long.toHexString(features) + "\n"
            + "steps:\n" + log
            + "model: driver next avail " + driverAvail + ", driver next used " + driverUsed + ", device next avail "
            + deviceAvail + ", device next used " + deviceUsed + ", numFree " + numFree + "\n"
            + "model: driver event " + driverEvent + ", device event " + deviceEvent + "\n"
            + PackedRingDump.dump(memory, RINGS, queueSize, driver, device);
    }

    @Override
    public String toString() {
        return "PackedRingSystem[Q=" + queueSize + ", features=0x" + Long.toHexString(features) + ", "
            + driverInFlight.size() + " in flight]";
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
}

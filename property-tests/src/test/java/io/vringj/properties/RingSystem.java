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
import io.vringj.ring.RingAddresses;
import io.vringj.ring.SplitRing;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.testing.SplitRingDump;
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
 * A real split ring — {@link DriverQueue} and {@link DeviceQueue} over one {@link GuestMemory} —
 * next to a small reference model of what both sides should do. Every step runs on both and
 * compares: heads handed back, lengths, payload bytes, free descriptors, in-flight counts,
 * published indices and each kick / interrupt decision (the need_event or flag rule evaluated on
 * the model's view of the event indices and flags).
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
        final int descriptors;
        int head = -1;
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
            return "chain#" + token + "(head " + head + (indirect ? ", indirect " : ", ") + buffers + ")";
        }
    }

    record Used(Chain chain, long written) {
    }

    final GuestMemory memory;
    final int queueSize;
    final long features;
    final int startIndex;
    final boolean eventIdx;
    final boolean indirectNegotiated;
    final DriverQueue driver;
    final DeviceQueue device;
    private final StringBuilder log = new StringBuilder();

    // ---- the model ----
    int numFree;
    int availShadow;
    int availPublished;
    int lastAvail;
    int usedShadow;
    int usedPublished;
    int lastUsed;
    final ArrayDeque<Chain> addedUnpublished = new ArrayDeque<>();
    final ArrayDeque<Chain> publishedUnpopped = new ArrayDeque<>();
    final List<Chain> deviceInFlight = new ArrayList<>();
    final List<Used> usedUnpublished = new ArrayList<>();
    final ArrayDeque<Used> usedUnpolled = new ArrayDeque<>();
    final Map<Integer, Chain> driverInFlight = new HashMap<>();
    final BitSet freeAreas = new BitSet();
    /** Driver's avail flags NO_INTERRUPT and used_event as the device would read them. */
    boolean driverNoInterrupt;
    int usedEvent;
    /** Device's used flags NO_NOTIFY and avail_event as the driver would read them. */
    boolean deviceNoNotify;
    boolean deviceNotificationsEnabled = true;
    int availEvent;
    int nextToken;
    final BitSet completed = new BitSet();

    RingSystem(GuestMemory memory, int queueSize, long features, int startIndex) {
        this.memory = memory;
        this.queueSize = queueSize;
        this.features = features;
        this.startIndex = startIndex;
        this.eventIdx = VirtioFeatures.has(features, VirtioFeatures.EVENT_IDX);
        this.indirectNegotiated = VirtioFeatures.has(features, VirtioFeatures.INDIRECT_DESC);
        this.driver = DriverQueue.create(features, queueSize, memory, RINGS, startIndex);
        try {
            this.device = DeviceQueue.create(features, queueSize, RINGS, AddressSpace.identity(memory), startIndex);
        } catch (VirtqueueException e) {
            throw new AssertionError("a fresh ring must activate: " + e.getMessage(), e);
        }
        numFree = queueSize;
        availShadow = availPublished = lastAvail = startIndex;
        usedShadow = usedPublished = lastUsed = startIndex;
        freeAreas.set(0, queueSize);
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
        int head;
        try {
            if (indirect) {
                MemorySegment table = memory.slice(areaBase + TABLE_OFFSET, n * SplitRing.DESC_SIZE);
                if (needed <= numFree) {
                    driver.writeIndirectTable(buffers, table);
                }
                head = driver.addIndirect(buffers, areaBase + TABLE_OFFSET);
            } else {
                head = driver.add(buffers);
            }
        } catch (VirtqueueException e) {
            throw new AssertionError("driver add on a healthy ring failed: " + e.getMessage(), e);
        }
        if (needed > numFree) {
            assertEquals(DriverQueue.NO_ROOM, head, "add of " + needed + " descriptors with " + numFree + " free");
            return;
        }
        assertTrue(area >= 0, "model: a free descriptor implies a free buffer area");
        assertTrue(head >= 0 && head < queueSize, "head " + head + " outside 0.." + (queueSize - 1));
        assertFalse(driverInFlight.containsKey(head), "head " + head + " handed out while still in flight as "
            + driverInFlight.get(head));
        Chain chain = new Chain(token, area, indirect, buffers);
        chain.head = head;
        nextToken++;
        freeAreas.clear(area);
        numFree -= needed;
        availShadow = (availShadow + 1) & 0xFFFF;
        driverInFlight.put(head, chain);
        addedUnpublished.add(chain);
    }

    /** Driver publishes (kicks if told to). */
    void driverPublish() {
        boolean kick = driver.publish();
        log("driver publish -> kick=" + kick);
        boolean expected;
        if (addedUnpublished.isEmpty()) {
            expected = false;
        } else {
            int old = availPublished;
            availPublished = availShadow;
            publishedUnpopped.addAll(addedUnpublished);
            addedUnpublished.clear();
            expected = eventIdx ? SplitRing.needEvent(availEvent, availPublished, old) : !deviceNoNotify;
        }
        assertEquals(expected, kick, "kick decision (event idx " + eventIdx + ", avail_event " + availEvent
            + ", NO_NOTIFY " + deviceNoNotify + ")");
    }

    /** Driver takes back one used chain. */
    void driverPoll() {
        int head;
        try {
            head = driver.pollUsed();
        } catch (VirtqueueException e) {
            throw new AssertionError("driver poll on a healthy ring failed: " + e.getMessage(), e);
        }
        log("driver poll -> " + head + (head >= 0 ? " len " + driver.usedLength() : ""));
        Used expected = usedUnpolled.poll();
        if (expected == null) {
            assertEquals(DriverQueue.NONE, head, "nothing used was published, yet pollUsed returned a head");
            return;
        }
        Chain chain = expected.chain();
        assertEquals(chain.head, head, "used head (expected " + chain + ")");
        assertEquals(expected.written(), driver.usedLength(), "used length of " + chain);
        ChainPayloads.checkWritten(memory, chain.buffers, chain.token, expected.written(), chain);
        assertFalse(completed.get(chain.token), chain + " completed twice");
        completed.set(chain.token);
        driverInFlight.remove(head);
        numFree += chain.descriptors;
        freeAreas.set(chain.area);
        lastUsed = (lastUsed + 1) & 0xFFFF;
        if (eventIdx && !driverNoInterrupt) {
            usedEvent = lastUsed;
        }
    }

    void driverEnableInterrupts() {
        boolean pending = driver.enableInterrupts();
        log("driver enable interrupts -> " + pending);
        driverNoInterrupt = false;
        if (eventIdx) {
            usedEvent = lastUsed;
        }
        assertEquals(!usedUnpolled.isEmpty(), pending, "enableInterrupts: used chains already waiting");
    }

    void driverDisableInterrupts() {
        log("driver disable interrupts");
        driver.disableInterrupts();
        driverNoInterrupt = true;
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
        log("device pop -> " + (got ? "head " + popped.head() : "none"));
        Chain chain = publishedUnpopped.poll();
        if (chain == null) {
            assertFalse(got, "device popped head " + popped.head() + " though nothing unpopped was published");
            return;
        }
        assertTrue(got, "published " + chain + " was not popped (lost)");
        assertEquals(chain.head, popped.head(), "popped head, expected " + chain);
        ChainPayloads.checkPopped(popped, chain.buffers, chain.indirect, chain.token, chain);
        chain.popped = popped;
        deviceInFlight.add(chain);
        lastAvail = (lastAvail + 1) & 0xFFFF;
        if (eventIdx && deviceNotificationsEnabled) {
            availEvent = lastAvail;
        }
    }

    /** Device completes the {@code index}-th in-flight chain, writing {@code percent}% of its writable part. */
    void deviceAddUsed(int index, int percent) {
        Chain chain = deviceInFlight.remove(index % deviceInFlight.size());
        long written = chain.buffers.writableLength() * percent / 100;
        log("device add used " + chain + " written " + written);
        ChainPayloads.writeReply(chain.popped, chain.token, written);
        device.addUsed(chain.head, written);
        usedUnpublished.add(new Used(chain, written));
        usedShadow = (usedShadow + 1) & 0xFFFF;
    }

    void devicePublishUsed() {
        boolean interrupt = device.publishUsed();
        log("device publish used -> interrupt=" + interrupt);
        boolean expected;
        if (usedUnpublished.isEmpty()) {
            expected = false;
        } else {
            int old = usedPublished;
            usedPublished = usedShadow;
            usedUnpolled.addAll(usedUnpublished);
            usedUnpublished.clear();
            expected = eventIdx ? SplitRing.needEvent(usedEvent, usedPublished, old) : !driverNoInterrupt;
        }
        assertEquals(expected, interrupt, "interrupt decision (event idx " + eventIdx + ", used_event " + usedEvent
            + ", NO_INTERRUPT " + driverNoInterrupt + ")");
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
        deviceNoNotify = false;
        if (eventIdx) {
            availEvent = lastAvail;
        }
        assertEquals(!publishedUnpopped.isEmpty(), pending, "enableNotifications: chains already available");
    }

    void deviceDisableNotifications() {
        log("device disable notifications");
        device.disableNotifications();
        deviceNotificationsEnabled = false;
        deviceNoNotify = true;
    }

    // ---------------------------------------------------------------- invariants

    /** What must hold between any two steps. */
    void checkInvariants() {
        assertFalse(driver.isBroken(), "driver broke on a valid ring");
        assertFalse(device.isBroken(), "device broke on a valid ring");
        assertEquals(numFree, driver.numFree(), "numFree");
        assertEquals(driverInFlight.size(), driver.inFlight(), "driver in-flight chains");
        assertEquals(deviceInFlight.size(), device.inFlight(), "device in-flight chains");
        assertEquals(lastAvail, device.lastAvailIdx(), "device's last avail idx");
        MemorySegment avail = memory.slice(RINGS.driverArea(), SplitRing.availRingSize(queueSize));
        MemorySegment used = memory.slice(RINGS.deviceArea(), SplitRing.usedRingSize(queueSize));
        assertEquals(availPublished, Short.toUnsignedInt(avail.get(LE_SHORT, 2)), "avail idx in guest memory");
        assertEquals(usedPublished, Short.toUnsignedInt(used.get(LE_SHORT, 2)), "used idx in guest memory");
        // nothing published is lost: every published, unconsumed chain is still counted by the indices
        assertEquals(publishedUnpopped.size(), (availPublished - lastAvail) & 0xFFFF, "published, not yet popped");
        assertEquals(usedUnpolled.size(), (usedPublished - lastUsed) & 0xFFFF, "used, not yet polled");
        if (driverInFlight.isEmpty()) {
            assertEquals(queueSize, driver.numFree(), "numFree when idle");
        }
        if (eventIdx && !driverNoInterrupt) {
            assertEquals(usedEvent, Short.toUnsignedInt(avail.get(LE_SHORT, 4 + 2L * queueSize)), "used_event");
        }
        if (eventIdx && deviceNotificationsEnabled) {
            assertEquals(availEvent, Short.toUnsignedInt(used.get(LE_SHORT, 4 + 8L * queueSize)), "avail_event");
        }
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
    }

    // ---------------------------------------------------------------- reporting

    private void log(String step) {
        log.append("  ").append(step).append('\n');
    }

    /** @return the steps run so far and the ring as it is now, in virtio terms */
    String describe() {
        return "Q=" + queueSize + " features=0x" + Long.toHexString(features) + " start index " + startIndex + "\n"
            + "steps:\n" + log + driver + "\n" + device + "\n" + SplitRingDump.dump(memory, RINGS, queueSize);
    }

    /** @return whether the avail or used index passed 65535 during the run */
    boolean wrapped() {
        return nextToken > 0 && (availShadow < startIndex || lastUsed < startIndex);
    }

    @Override
    public String toString() {
        return "RingSystem[Q=" + queueSize + ", features=0x" + Long.toHexString(features) + ", start " + startIndex
            + ", " + driverInFlight.size() + " in flight]";
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

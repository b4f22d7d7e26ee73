package io.vringj.properties.jcstress;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.SplitRing;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * One small split ring per jcstress state: the real {@link DriverQueue} and {@link DeviceQueue}
 * over a page of guest memory. jcstress makes many states, so the memory comes from an automatic
 * arena the garbage collector frees.
 *
 * <pre>
 *   +0x000 descriptor table (Q=4)   +0x100 avail ring   +0x200 used ring   +0x400 buffers
 * </pre>
 */
final class Rings {
    static final int Q = 4;
    static final long BASE = 0x1000_0000L;
    static final RingAddresses ADDRESSES = new RingAddresses(BASE, BASE + 0x100, BASE + 0x200);
    static final long REQUEST = BASE + 0x400;
    static final long REPLY = BASE + 0x800;
    /** The readable length the driver offers: a stale descriptor (len 0) cannot look like it. */
    static final int REQUEST_LENGTH = 42;
    /** The writable length the driver offers. */
    static final int REPLY_LENGTH = 64;
    /** What the device writes: a stale used element cannot look like it. */
    static final int WRITTEN = 17;

    static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);

    final GuestMemory memory;
    final DriverQueue driver;
    final DeviceQueue device;
    final MemorySegment avail;
    final MemorySegment used;
    final BufferChain chain = new BufferChain(2).addReadable(REQUEST, REQUEST_LENGTH).addWritable(REPLY, REPLY_LENGTH);

    Rings(boolean eventIdx, int startIndex) {
        memory = GuestMemory.builder().allocate(BASE, 0x1000, RegionKind.SHARED).build(Arena.ofAuto());
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | (eventIdx ? VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) : 0);
        driver = DriverQueue.create(features, Q, memory, ADDRESSES, startIndex);
        try {
            device = DeviceQueue.create(features, Q, ADDRESSES, AddressSpace.identity(memory), startIndex);
        } catch (VirtqueueException e) {
            throw new IllegalStateException("a fresh ring must activate", e);
        }
        avail = memory.slice(ADDRESSES.driverArea(), SplitRing.availRingSize(Q));
        used = memory.slice(ADDRESSES.deviceArea(), SplitRing.usedRingSize(Q));
    }

    /** Fills every avail ring entry with a head the device would reject, so a stale entry shows. */
    void poisonAvailRing() {
        for (int i = 0; i < Q; i++) {
            avail.set(LE_SHORT, 4 + 2L * i, (short) 0x7FFF);
        }
    }

    /** Fills every used element with an id and length the driver would reject, so a stale one shows. */
    void poisonUsedRing() {
        for (int i = 0; i < Q; i++) {
            used.set(LE_INT, 4 + 8L * i, 0x7FFF);
            used.set(LE_INT, 4 + 8L * i + 4, -1);
        }
    }

    /** Stores avail_event as a device that stopped updating it long ago would have left it. */
    void staleAvailEvent(int value) {
        used.set(LE_SHORT, 4 + 8L * Q, (short) value);
    }

    /** Stores used_event as a driver that stopped updating it long ago would have left it. */
    void staleUsedEvent(int value) {
        avail.set(LE_SHORT, 4 + 2L * Q, (short) value);
    }

    int add() {
        try {
            return driver.add(chain);
        } catch (VirtqueueException e) {
            throw new IllegalStateException(e);
        }
    }
}

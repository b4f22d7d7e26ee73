package io.vringj.properties.jcstress;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.PackedRing;
import io.vringj.ring.RingLayout;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.testing.RawPackedRing;
import io.vringj.testing.RawSplitRing;
import java.lang.foreign.Arena;
import org.openjdk.jcstress.infra.results.II_Result;

/**
 * One small ring per jcstress state, split or packed: the real {@link DriverQueue} and
 * {@link DeviceQueue} over a page of guest memory, the ring placed by {@link RingLayout}, and the
 * shared fixtures' raw writers to poison it. jcstress makes many states, so the memory comes from
 * an automatic arena the garbage collector frees.
 *
 * <pre>
 *   +0x000 the ring (Q=4, laid out with alignment 0x100)   +0x400 request   +0x800 reply
 * </pre>
 */
final class Rings {
    static final int Q = 4;
    static final long BASE = 0x1000_0000L;
    static final long ALIGN = 0x100;
    static final long REQUEST = BASE + 0x400;
    static final long REPLY = BASE + 0x800;
    /** The readable length the driver offers: a stale descriptor (len 0) cannot look like it. */
    static final int REQUEST_LENGTH = 42;
    /** The writable length the driver offers. */
    static final int REPLY_LENGTH = 64;
    /** What the device writes: a stale used element cannot look like it. */
    static final int WRITTEN = 17;
    /** Packed state of position 3 in lap 1: a two-descriptor chain crosses the end of the ring. */
    static final int PACKED_NEAR_WRAP = PackedRing.INITIAL_STATE | (Q - 1);

    final GuestMemory memory;
    final DriverQueue driver;
    final DeviceQueue device;
    /** The split ring's writer, or null on a packed ring. */
    final RawSplitRing split;
    /** The packed ring's writer, or null on a split ring. */
    final RawPackedRing packed;
    final BufferChain chain = new BufferChain(2).addReadable(REQUEST, REQUEST_LENGTH).addWritable(REPLY, REPLY_LENGTH);

    private Rings(boolean packedRing, boolean eventIdx, int start, int deviceStart) {
        memory = GuestMemory.builder().allocate(BASE, 0x1000, RegionKind.SHARED).build(Arena.ofAuto());
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | (eventIdx ? VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) : 0)
            | (packedRing ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0);
        RingLayout layout = RingLayout.of(features, Q, BASE, ALIGN);
        if (layout.totalSize() > REQUEST - BASE) {
            throw new IllegalStateException(layout + " does not fit below the request buffer");
        }
        driver = DriverQueue.create(features, Q, memory, layout.addresses(), start);
        try {
            device = DeviceQueue.create(features, Q, layout.addresses(), AddressSpace.identity(memory), deviceStart);
        } catch (VirtqueueException e) {
            throw new IllegalStateException("a fresh ring must activate", e);
        }
        split = packedRing ? null : RawSplitRing.over(memory, features, Q, layout.addresses());
        packed = packedRing ? RawPackedRing.over(memory, features, Q, layout.addresses()) : null;
    }

    /**
     * @param eventIdx whether VIRTIO_F_EVENT_IDX is negotiated
     * @param startIndex the avail and used idx both sides start at
     * @return a split ring
     */
    static Rings split(boolean eventIdx, int startIndex) {
        return new Rings(false, eventIdx, startIndex, startIndex);
    }

    /**
     * @param eventIdx whether VIRTIO_F_EVENT_IDX is negotiated
     * @param state position and wrap counter ({@link PackedRing#INITIAL_STATE} layout) both sides start at
     * @return a packed ring
     */
    static Rings packed(boolean eventIdx, int state) {
        return new Rings(true, eventIdx, state, state | state << 16);
    }

    /** Fills every avail ring entry with a head the device would reject, so a stale entry shows. */
    void poisonAvailRing() {
        for (int i = 0; i < Q; i++) {
            split.availEntry(i, 0x7FFF);
        }
    }

    /** Fills every used element with an id and length the driver would reject, so a stale one shows. */
    void poisonUsedRing() {
        for (int i = 0; i < Q; i++) {
            split.usedElement(i, 0x7FFF, 0xFFFF_FFFFL);
        }
    }

    /** Stores avail_event as a device that stopped updating it long ago would have left it. */
    void staleAvailEvent(int value) {
        split.availEvent(value);
    }

    /** Stores used_event as a driver that stopped updating it long ago would have left it. */
    void staleUsedEvent(int value) {
        split.usedEvent(value);
    }

    /** Stores the device event suppression structure as a device that asked long ago to hear about {@code offWrap}. */
    void staleDeviceEvent(int offWrap) {
        packed.deviceEvent(offWrap, PackedRing.EVENT_FLAG_DESC);
    }

    /** Stores the driver event suppression structure as a driver that asked long ago to hear about {@code offWrap}. */
    void staleDriverEvent(int offWrap) {
        packed.driverEvent(offWrap, PackedRing.EVENT_FLAG_DESC);
    }

    /**
     * Fills every packed descriptor with a buffer id the driver never offered, a length that
     * would change the readable length, and flags that are not available in either lap, so a
     * stale descriptor shows as a rejected chain or a wrong length.
     */
    void poisonDescriptorRing() {
        for (int i = 0; i < Q; i++) {
            RawPackedRing.writeDescriptor(packed.desc, i, BASE + 0xC00, 1000, 0x7FFF, 0);
        }
    }

    /**
     * Overwrites the buffer id and length of every packed descriptor and leaves the flags alone,
     * so a driver that sees a used descriptor's flags but stale id or len rejects it.
     */
    void poisonDescriptorIdsAndLengths() {
        for (int i = 0; i < Q; i++) {
            RawPackedRing.writeDescriptor(packed.desc, i, 0, 0xFFFF_FFFFL, 0x7FFF, packed.descFlags(i));
        }
    }

    int add() {
        try {
            return driver.add(chain);
        } catch (VirtqueueException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The driver adds the chain and publishes; @return whether it must kick */
    boolean addAndPublish() {
        add();
        return driver.publish();
    }

    /** Set-up: the driver adds and publishes the chain and the device pops it; @return its head (buffer id) */
    int popOne() {
        int head = add();
        driver.publish();
        try {
            if (!device.pop(new DescriptorChain())) {
                throw new IllegalStateException("set-up: the device must pop the published chain");
            }
        } catch (VirtqueueException e) {
            throw new IllegalStateException(e);
        }
        return head;
    }

    /** The device returns {@code head} with {@link #WRITTEN} bytes and publishes; @return whether it must interrupt */
    boolean addUsedAndPublish(int head) {
        device.addUsed(head, WRITTEN);
        return device.publishUsed();
    }

    /** The device enables notifications; @return whether a chain is already available (the recheck) */
    boolean enableNotifications() {
        try {
            return device.enableNotifications();
        } catch (VirtqueueException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The device pops into {@code popped}; r1: 1 popped, 0 nothing, -1 rejected; r2: readable bytes or the error. */
    void pop(DescriptorChain popped, II_Result r) {
        try {
            if (device.pop(popped)) {
                r.r1 = 1;
                r.r2 = (int) popped.readableLength();
            }
        } catch (VirtqueueException e) {
            r.r1 = -1;
            r.r2 = e.error().ordinal();
        }
    }

    /** The driver polls; r1: the id polled, -1 nothing, -2 rejected; r2: the used length or the error. */
    void poll(II_Result r) {
        try {
            int polled = driver.pollUsed();
            r.r1 = polled;
            r.r2 = polled == DriverQueue.NONE ? 0 : (int) driver.usedLength();
        } catch (VirtqueueException e) {
            r.r1 = -2;
            r.r2 = e.error().ordinal();
        }
    }
}

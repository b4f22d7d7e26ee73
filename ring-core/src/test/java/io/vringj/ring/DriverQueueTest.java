package io.vringj.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.testing.RawSplitRing;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The driver side: adds, the free list, what a bogus device can do, and the kick decision. */
class DriverQueueTest {
    private static final long BUF = RawSplitRing.BUFFERS;

    @Test
    void addWithoutRoomLeavesTheRingUnchanged() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            BufferChain three = new BufferChain(8).addReadable(BUF, 8).addReadable(BUF, 8).addWritable(BUF, 8);
            assertTrue(driver.add(three) >= 0);
            byte[] before = ring.desc.toArray(ValueLayout.JAVA_BYTE);
            byte[] availBefore = ring.avail.toArray(ValueLayout.JAVA_BYTE);
            assertEquals(DriverQueue.NO_ROOM, driver.add(three));
            assertEquals(1, driver.numFree());
            assertEquals(java.util.Arrays.toString(before), java.util.Arrays.toString(ring.desc.toArray(ValueLayout.JAVA_BYTE)));
            assertEquals(java.util.Arrays.toString(availBefore),
                java.util.Arrays.toString(ring.avail.toArray(ValueLayout.JAVA_BYTE)));
        }
    }

    @Test
    void severalAddsThenOnePublishAreSeenTogether() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            BufferChain chain = new BufferChain(2).addReadable(BUF, 8);
            driver.add(chain);
            driver.add(chain);
            DescriptorChain popped = new DescriptorChain();
            assertFalse(device.pop(popped), "nothing is visible before publish");
            assertTrue(driver.publish());
            assertTrue(device.pop(popped));
            assertTrue(device.pop(popped));
            assertFalse(device.pop(popped));
        }
    }

    @Test
    void quietPublicationsMakeChainsVisibleWithoutADecision() throws Exception {
        for (boolean packed : new boolean[] {false, true}) {
            try (RawSplitRing ring = packed ? RawSplitRing.of(8, VirtioFeatures.RING_PACKED) : RawSplitRing.of(8)) {
                DriverQueue driver = ring.driver();
                DeviceQueue device = ring.device();
                BufferChain chain = new BufferChain(1).addWritable(BUF, 8);
                int a = driver.add(chain);
                int b = driver.add(chain);
                DescriptorChain popped = new DescriptorChain();
                assertFalse(device.pop(popped), "nothing is visible before a publication");
                driver.publishQuiet();
                assertTrue(device.pop(popped));
                assertTrue(device.pop(popped));
                device.addUsed(a, 3);
                device.addUsed(b, 5);
                assertEquals(DriverQueue.NONE, driver.pollUsed(), "nothing is used before a publication");
                device.publishUsedQuiet();
                assertEquals(a, driver.pollUsed());
                assertEquals(3, driver.usedLength());
                assertEquals(b, driver.pollUsed());
                assertEquals(5, driver.usedLength());
                assertFalse(driver.publish(), "a quiet publication leaves nothing for publish() to do");
                assertFalse(device.publishUsed());
            }
        }
    }

    @Test
    void bufferChainRejectsReadableAfterWritableAndEmptyOrHugeBuffers() {
        BufferChain chain = new BufferChain(4).addWritable(BUF, 8);
        assertThrows(IllegalStateException.class, () -> chain.addReadable(BUF, 8));
        assertThrows(IllegalArgumentException.class, () -> chain.addWritable(BUF, 0));
        assertThrows(IllegalArgumentException.class, () -> chain.addWritable(BUF, 1L << 32));
        BufferChain big = new BufferChain(4).addReadable(BUF, 0xFFFF_FFF0L);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> big.addWritable(BUF, 0x10));
        assertTrue(e.getMessage().contains("2^32"), e.getMessage());
        BufferChain full = new BufferChain(1).addReadable(BUF, 1);
        assertThrows(IllegalStateException.class, () -> full.addReadable(BUF, 1));
    }

    @Test
    void addRejectsAnEmptyChain() {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            assertThrows(IllegalArgumentException.class, () -> driver.add(new BufferChain(1)));
        }
    }

    @Test
    void indirectNeedsTheFeature() {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> driver.addIndirect(new BufferChain(1).addReadable(BUF, 1), RawSplitRing.INDIRECT));
            assertTrue(e.getMessage().contains("INDIRECT_DESC"), e.getMessage());
        }
    }

    @Test
    void indirectChainUsesOneDescriptorAndRoundTrips() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.INDIRECT_DESC)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            BufferChain chain = new BufferChain(8).addReadable(BUF, 4).addReadable(BUF + 4, 4).addWritable(BUF + 8, 16)
                .addWritable(BUF + 24, 16).addWritable(BUF + 40, 16);
            driver.writeIndirectTable(chain, ring.memory.slice(RawSplitRing.INDIRECT, 16 * 5));
            int head = driver.addIndirect(chain, RawSplitRing.INDIRECT);
            assertEquals(7, driver.numFree());
            driver.publish();
            DescriptorChain popped = new DescriptorChain();
            assertTrue(device.pop(popped));
            assertEquals(head, popped.head());
            assertEquals(8, popped.readableLength());
            assertEquals(48, popped.writableLength());
            device.addUsed(head, 48);
            device.publishUsed();
            assertEquals(head, driver.pollUsed());
            assertEquals(48, driver.usedLength());
            assertEquals(8, driver.numFree());
        }
    }

    @Test
    void indirectTableLargerThanQueueSizeIsRefused() {
        try (RawSplitRing ring = RawSplitRing.of(2, VirtioFeatures.INDIRECT_DESC)) {
            DriverQueue driver = ring.driver();
            BufferChain three = new BufferChain(3).addReadable(BUF, 1).addReadable(BUF, 1).addReadable(BUF, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> driver.addIndirect(three, RawSplitRing.INDIRECT));
            assertTrue(e.getMessage().contains("3 descriptors"), e.getMessage());
            assertEquals(2, driver.numFree());
        }
    }

    @Test
    void reportsUsedIdThatIsNotInFlight() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.publish();
            ring.writeUsed(0, 3, 0, 1);
            VirtqueueException e = assertThrows(VirtqueueException.class, driver::pollUsed);
            assertEquals(RingError.USED_ID_NOT_IN_FLIGHT, e.error());
            assertTrue(driver.isBroken());
            assertSame(e, assertThrows(VirtqueueException.class, driver::pollUsed));
            assertSame(e, assertThrows(VirtqueueException.class, () -> driver.add(new BufferChain(1).addReadable(BUF, 1))));
        }
    }

    @Test
    void reportsUsedIdAtOrBeyondQueueSize() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.publish();
            ring.writeUsed(0, 70000, 0, 1);
            assertEquals(RingError.USED_ID_NOT_IN_FLIGHT, assertThrows(VirtqueueException.class, driver::pollUsed).error());
        }
    }

    @Test
    void reportsUsedLengthLargerThanTheWritablePart() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            int head = driver.add(new BufferChain(2).addReadable(BUF, 100).addWritable(BUF, 8));
            driver.publish();
            ring.writeUsed(0, head, 9, 1);
            VirtqueueException e = assertThrows(VirtqueueException.class, driver::pollUsed);
            assertEquals(RingError.USED_LENGTH_TOO_LARGE, e.error());
            assertTrue(e.getMessage().contains("used length 9"), e.getMessage());
        }
    }

    @Test
    void neverHandsOutTheSameHeadTwice() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            int a = driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.publish();
            // the device repeats head a
            ring.writeUsed(0, a, 0, 1);
            ring.writeUsed(1, a, 0, 2);
            assertEquals(a, driver.pollUsed());
            VirtqueueException e = assertThrows(VirtqueueException.class, driver::pollUsed);
            assertEquals(RingError.USED_ID_NOT_IN_FLIGHT, e.error());
        }
    }

    @Test
    void reportsUsedIdxFurtherAheadThanChainsInFlight() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            int a = driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.publish();
            ring.writeUsed(0, a, 0, 2);
            assertEquals(RingError.USED_IDX_TOO_FAR, assertThrows(VirtqueueException.class, driver::pollUsed).error());
        }
    }

    @Test
    void reportsUsedIdxJumpSeenByEnableInterrupts() throws Exception {
        // issue 11 item 6: Q=4, one chain in flight, the device sets used idx = 3
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            int a = driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.publish();
            ring.writeUsed(0, a, 0, 3);
            assertTrue(driver.enableInterrupts(), "poll now: the ring is not empty (and the device broke a rule)");
            VirtqueueException e = assertThrows(VirtqueueException.class, driver::pollUsed);
            assertEquals(RingError.USED_IDX_TOO_FAR, e.error());
            assertTrue(e.getMessage().contains("used idx 3"), e.getMessage());
            assertTrue(driver.isBroken());
            assertSame(e, assertThrows(VirtqueueException.class, driver::pollUsed));
            assertTrue(driver.enableInterrupts(), "a broken queue never tells the caller to sleep");
        }
    }

    @Test
    void reportsUsedIdxJumpAfterSomeChainsCameBack() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            int a = driver.add(new BufferChain(1).addWritable(BUF, 8));
            int b = driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.publish();
            ring.writeUsed(0, a, 0, 1);
            assertTrue(driver.enableInterrupts());
            assertEquals(a, driver.pollUsed());
            assertFalse(driver.enableInterrupts());
            // one chain in flight, used idx moves by two
            ring.writeUsed(1, b, 0, 3);
            assertTrue(driver.enableInterrupts());
            assertEquals(RingError.USED_IDX_TOO_FAR, assertThrows(VirtqueueException.class, driver::pollUsed).error());
        }
    }

    @Test
    void kickFollowsNoNotifyWithoutEventIdx() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            BufferChain c = new BufferChain(1).addReadable(BUF, 8);
            driver.add(c);
            assertTrue(driver.publish());
            device.disableNotifications();
            driver.add(c);
            assertFalse(driver.publish(), "NO_NOTIFY is set");
            assertFalse(driver.publish(), "nothing new to publish");
            assertTrue(device.enableNotifications(), "two chains are waiting");
            driver.add(c);
            assertTrue(driver.publish());
        }
    }

    @Test
    void kickFollowsAvailEventWithEventIdx() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.EVENT_IDX)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            BufferChain c = new BufferChain(1).addReadable(BUF, 8);
            driver.add(c);
            assertTrue(driver.publish(), "avail_event 0: the first chain is kicked");
            driver.add(c);
            assertFalse(driver.publish(), "the device has not consumed up to the event yet");
            DescriptorChain popped = new DescriptorChain();
            assertTrue(device.pop(popped));
            assertTrue(device.pop(popped));
            assertFalse(device.enableNotifications());
            driver.add(c);
            assertTrue(driver.publish(), "the device asked to hear about avail idx 2");
        }
    }

    @Test
    void interruptFollowsUsedEventWithEventIdx() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.EVENT_IDX)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            BufferChain c = new BufferChain(1).addWritable(BUF, 8);
            DescriptorChain popped = new DescriptorChain();
            for (int i = 0; i < 3; i++) {
                driver.add(c);
            }
            driver.publish();
            assertFalse(driver.enableInterrupts());
            device.pop(popped);
            device.addUsed(popped.head(), 0);
            assertTrue(device.publishUsed(), "used_event 0");
            device.pop(popped);
            device.addUsed(popped.head(), 0);
            assertFalse(device.publishUsed(), "the driver has not caught up");
            assertTrue(driver.pollUsed() >= 0);
            assertTrue(driver.pollUsed() >= 0);
            device.pop(popped);
            device.addUsed(popped.head(), 0);
            assertTrue(device.publishUsed(), "the driver polled up to 2 and wants to hear about it");
        }
    }

    @Test
    void interruptFollowsNoInterruptFlagWithoutEventIdx() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            BufferChain c = new BufferChain(1).addWritable(BUF, 8);
            DescriptorChain popped = new DescriptorChain();
            driver.add(c);
            driver.add(c);
            driver.publish();
            driver.disableInterrupts();
            device.pop(popped);
            device.addUsed(popped.head(), 0);
            assertFalse(device.publishUsed());
            assertTrue(driver.enableInterrupts(), "a used chain arrived while interrupts were off");
            device.pop(popped);
            device.addUsed(popped.head(), 0);
            assertTrue(device.publishUsed());
        }
    }

    @Test
    void indicesWrapPast65535() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.EVENT_IDX)) {
            int start = 65533;
            DriverQueue driver = DriverQueue.create(ring.features, 4, ring.memory, ring.addresses(), start);
            DeviceQueue device = DeviceQueue.create(ring.features, 4, ring.addresses(),
                io.vringj.memory.AddressSpace.identity(ring.memory), start);
            DescriptorChain popped = new DescriptorChain();
            Set<Integer> seenIdx = new HashSet<>();
            for (int round = 0; round < 10; round++) {
                int a = driver.add(new BufferChain(2).addReadable(BUF, 8).addWritable(BUF + 8, 8));
                driver.publish();
                assertTrue(device.pop(popped));
                assertEquals(a, popped.head());
                device.addUsed(a, round % 9);
                device.publishUsed();
                assertEquals(a, driver.pollUsed());
                assertEquals(round % 9, driver.usedLength());
                seenIdx.add(ring.usedIdx());
            }
            assertTrue(seenIdx.contains(0) && seenIdx.contains(65535), "indices went through 65535 and 0: " + seenIdx);
            assertEquals(4, driver.numFree());
            assertEquals((start + 10) & 0xFFFF, device.lastAvailIdx());
        }
    }

    @Test
    void needEventMatchesTheSpecFormula() {
        // (u16)(new - event - 1) < (u16)(new - old)
        assertTrue(SplitRing.needEvent(0, 1, 0));
        assertFalse(SplitRing.needEvent(1, 1, 0));
        assertTrue(SplitRing.needEvent(65535, 0, 65534), "across the wrap");
        assertFalse(SplitRing.needEvent(5, 3, 0));
        assertTrue(SplitRing.needEvent(2, 3, 0));
    }
}

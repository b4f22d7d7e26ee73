package io.vringj.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.testing.RawPackedRing;
import io.vringj.testing.RawSplitRing;
import org.junit.jupiter.api.Test;

/**
 * VIRTIO_F_IN_ORDER [virtio 2.7.9, 2.8.8]: a device may return a batch of buffers with one used
 * entry naming the last; the driver takes the whole batch back in the order it made the buffers
 * available, and refuses an entry that breaks the order.
 */
class InOrderTest {
    private static final long BUF = RawSplitRing.BUFFERS;

    private static BufferChain readOnly() {
        return new BufferChain(1).addReadable(BUF, 64);
    }

    private static BufferChain mixed() {
        return new BufferChain(2).addReadable(BUF, 16).addWritable(BUF + 64, 32);
    }

    private static BufferChain writable(long len) {
        return new BufferChain(1).addWritable(BUF + 128, len);
    }

    // --- split, driver side ---

    @Test
    void splitBatchWithOneUsedEntryIsTakenBackWholeAndInOrder() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            assertTrue(driver.inOrder());
            int a = driver.add(readOnly());
            int b = driver.add(mixed());
            int c = driver.add(writable(100));
            driver.publish();
            // one entry, at the batch's first used slot, naming the batch's last buffer; idx moves by 3
            ring.writeUsed(0, c, 40, 3);
            assertEquals(a, driver.pollUsed());
            assertEquals(0, driver.usedLength(), "a skipped read-only buffer was used completely: 0 bytes written");
            assertEquals(b, driver.pollUsed());
            assertEquals(32, driver.usedLength(), "a skipped buffer gets its whole writable length");
            assertEquals(c, driver.pollUsed());
            assertEquals(40, driver.usedLength(), "the named buffer gets the entry's length");
            assertEquals(DriverQueue.NONE, driver.pollUsed());
            assertEquals(8, driver.numFree());
            assertEquals(0, driver.inFlight());
        }
    }

    @Test
    void splitBatchesFollowEachOtherAndEntriesForSingleBuffersStillWork() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            int[] heads = new int[5];
            for (int i = 0; i < 5; i++) {
                heads[i] = driver.add(readOnly());
            }
            driver.publish();
            ring.usedElement(0, heads[1], 0).usedElement(2, heads[2], 0).writeUsed(3, heads[4], 0, 5);
            for (int i = 0; i < 5; i++) {
                assertEquals(heads[i], driver.pollUsed(), "buffer " + i);
            }
            assertEquals(DriverQueue.NONE, driver.pollUsed());
        }
    }

    @Test
    void splitDriverUsesDescriptorTableEntriesInRingOrder() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            BufferChain three = new BufferChain(3).addReadable(BUF, 1).addReadable(BUF, 1).addReadable(BUF, 1);
            assertEquals(0, driver.add(three));
            driver.publish();
            ring.writeUsed(0, 0, 0, 1);
            assertEquals(0, driver.pollUsed());
            // a free list would hand out descriptor 0 again; in order, the next chain starts at 3 and wraps to 0
            BufferChain two = new BufferChain(2).addReadable(BUF, 1).addReadable(BUF, 1);
            assertEquals(3, driver.add(two));
            assertEquals(SplitRing.DESC_F_NEXT, ring.desc.get(RingFormat.LE_SHORT, 16 * 3 + 12) & 0xFFFF);
            assertEquals(0, ring.desc.get(RingFormat.LE_SHORT, 16 * 3 + 14),
                "the last descriptor's successor is 0 [virtio 2.7.5]");
            assertEquals(1, driver.add(readOnly()));
        }
    }

    @Test
    void splitFreeListIsUnchangedWithoutInOrder() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            assertFalse(driver.inOrder());
            BufferChain three = new BufferChain(3).addReadable(BUF, 1).addReadable(BUF, 1).addReadable(BUF, 1);
            assertEquals(0, driver.add(three));
            driver.publish();
            ring.writeUsed(0, 0, 0, 1);
            assertEquals(0, driver.pollUsed());
            assertEquals(0, driver.add(readOnly()), "without IN_ORDER the freed chain is reused first");
        }
    }

    @Test
    void splitUsedIdThatIsNotOutstandingBreaksTheQueue() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            int a = driver.add(readOnly());
            int b = driver.add(readOnly());
            driver.publish();
            ring.writeUsed(0, a, 0, 1);
            assertEquals(a, driver.pollUsed());
            // the device names the buffer already taken back: earlier than the next expected (b)
            ring.writeUsed(1, a, 0, 2);
            VirtqueueException e = assertThrows(VirtqueueException.class, driver::pollUsed);
            assertEquals(RingError.USED_ID_NOT_IN_FLIGHT, e.error());
            assertTrue(e.getMessage().contains("next buffer expected is id " + b), e.getMessage());
            assertTrue(driver.isBroken());
            assertSame(e, assertThrows(VirtqueueException.class, driver::pollUsed));
            assertSame(e, assertThrows(VirtqueueException.class, () -> driver.add(readOnly())));
            assertEquals(1, driver.inFlight(), "nothing of the bad entry was taken back");
        }
    }

    @Test
    void splitUsedIdOutOfRangeBreaksTheQueue() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            driver.add(readOnly());
            driver.publish();
            ring.writeUsed(0, 0xFFFF_FFFF, 0, 1);
            assertEquals(RingError.USED_ID_NOT_IN_FLIGHT, assertThrows(VirtqueueException.class, driver::pollUsed).error());
        }
    }

    @Test
    void splitEntryNamingALaterBufferThanTheUsedIdxMovedIsOutOfOrder() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            driver.add(readOnly());
            driver.add(readOnly());
            int c = driver.add(readOnly());
            driver.publish();
            // the device used the third buffer first: one entry, idx moved by one
            ring.writeUsed(0, c, 0, 1);
            VirtqueueException e = assertThrows(VirtqueueException.class, driver::pollUsed);
            assertEquals(RingError.USED_NOT_IN_ORDER, e.error());
            assertTrue(e.getMessage().contains("batch of 3 buffers"), e.getMessage());
            assertTrue(driver.isBroken());
            assertEquals(3, driver.inFlight());
            assertTrue(driver.enableInterrupts(), "a broken queue says poll now");
        }
    }

    @Test
    void splitUsedLengthTooLargeForTheNamedBufferHandsBackNothing() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            driver.add(writable(16));
            int b = driver.add(writable(16));
            driver.publish();
            ring.writeUsed(0, b, 17, 2);
            assertEquals(RingError.USED_LENGTH_TOO_LARGE, assertThrows(VirtqueueException.class, driver::pollUsed).error());
            assertEquals(2, driver.inFlight());
        }
    }

    @Test
    void splitDriverAsksToPollAgainInTheMiddleOfABatch() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.IN_ORDER, VirtioFeatures.EVENT_IDX)) {
            DriverQueue driver = ring.driver();
            int a = driver.add(readOnly());
            int b = driver.add(readOnly());
            driver.publish();
            ring.writeUsed(0, b, 0, 2);
            assertEquals(a, driver.pollUsed());
            assertTrue(driver.enableInterrupts(), "b is still to be taken back");
            assertEquals(b, driver.pollUsed());
            assertFalse(driver.enableInterrupts());
        }
    }

    // --- split, device side ---

    @Test
    void splitDeviceReturnsARunOfReadOnlyChainsWithOneEntry() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            assertTrue(device.inOrder());
            int[] heads = new int[4];
            for (int i = 0; i < 4; i++) {
                heads[i] = driver.add(readOnly());
            }
            driver.publish();
            DescriptorChain chain = new DescriptorChain();
            for (int i = 0; i < 4; i++) {
                assertTrue(device.pop(chain));
                device.addUsed(chain.head(), 0);
            }
            assertEquals(0, ring.usedIdx(), "nothing is visible before the publish");
            device.publishUsed();
            assertEquals(4, ring.usedIdx());
            assertEquals(heads[3], ring.usedId(0), "one entry naming the run's last chain");
            for (int slot = 1; slot < 4; slot++) {
                assertEquals(0, ring.usedId(slot), "slot " + slot + " is skipped");
            }
            for (int i = 0; i < 4; i++) {
                assertEquals(heads[i], driver.pollUsed());
                assertEquals(0, driver.usedLength());
            }
            assertEquals(DriverQueue.NONE, driver.pollUsed());
        }
    }

    @Test
    void splitDeviceWritesAnEntryForEveryChainWithAWritablePart() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            int a = driver.add(readOnly());
            int b = driver.add(readOnly());
            int c = driver.add(writable(16));
            int d = driver.add(writable(16));
            int e = driver.add(readOnly());
            driver.publish();
            DescriptorChain chain = new DescriptorChain();
            long[] written = {0, 0, 7, 16, 0};
            for (long len : written) {
                assertTrue(device.pop(chain));
                device.addUsed(chain.head(), len);
            }
            device.publishUsed();
            assertEquals(5, ring.usedIdx());
            assertEquals(c, ring.usedId(0), "a, b and c in one entry naming c");
            assertEquals(7, ring.usedLen(0));
            assertEquals(d, ring.usedId(3), "d written completely still gets its own entry");
            assertEquals(16, ring.usedLen(3));
            assertEquals(e, ring.usedId(4), "the held run is written by the publish");
            int[] expect = {a, b, c, d, e};
            for (int i = 0; i < 5; i++) {
                assertEquals(expect[i], driver.pollUsed());
                assertEquals(written[i], driver.usedLength());
            }
        }
    }

    @Test
    void withoutInOrderEveryUsedChainGetsItsOwnEntry() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            assertFalse(device.inOrder());
            int[] heads = new int[3];
            for (int i = 0; i < 3; i++) {
                heads[i] = driver.add(readOnly());
            }
            driver.publish();
            DescriptorChain chain = new DescriptorChain();
            for (int i = 0; i < 3; i++) {
                assertTrue(device.pop(chain));
            }
            device.addUsed(heads[2], 0);
            device.addUsed(heads[0], 0);
            device.addUsed(heads[1], 0);
            device.publishUsed();
            assertEquals(3, ring.usedIdx());
            assertEquals(heads[2], ring.usedId(0));
            assertEquals(heads[0], ring.usedId(1));
            assertEquals(heads[1], ring.usedId(2));
        }
    }

    @Test
    void inOrderDeviceRefusesToUseAChainBeforeOnePoppedEarlier() throws Exception {
        for (boolean packed : new boolean[] {false, true}) {
            try (RawSplitRing ring = packed ? RawSplitRing.of(8, VirtioFeatures.IN_ORDER, VirtioFeatures.RING_PACKED)
                : RawSplitRing.of(8, VirtioFeatures.IN_ORDER)) {
                DriverQueue driver = ring.driver();
                DeviceQueue device = ring.device();
                int a = driver.add(readOnly());
                int b = driver.add(readOnly());
                driver.publish();
                DescriptorChain chain = new DescriptorChain();
                assertTrue(device.pop(chain));
                assertTrue(device.pop(chain));
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> device.addUsed(b, 0));
                assertTrue(e.getMessage().contains("head " + b + " is used before head " + a), e.getMessage());
                assertEquals(2, device.inFlight(), "the refused add changed nothing");
                device.addUsed(a, 0);
                device.addUsed(b, 0);
                device.publishUsed();
                assertEquals(a, driver.pollUsed());
                assertEquals(b, driver.pollUsed());
            }
        }
    }

    // --- packed, driver side ---

    @Test
    void packedBatchWithOneUsedDescriptorIsTakenBackWholeAndInOrder() throws Exception {
        try (RawPackedRing ring = RawPackedRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            int a = driver.add(mixed());            // positions 0-1
            int b = driver.add(readOnly());         // position 2
            int c = driver.add(new BufferChain(3).addReadable(BUF, 8).addWritable(BUF, 8).addWritable(BUF, 8)); // 3-5
            driver.publish();
            // one used descriptor over the batch's first descriptor, naming its last buffer
            ring.used(0, c, 12, true);
            assertEquals(a, driver.pollUsed());
            assertEquals(32, driver.usedLength());
            assertEquals(b, driver.pollUsed());
            assertEquals(0, driver.usedLength());
            assertEquals(c, driver.pollUsed());
            assertEquals(12, driver.usedLength());
            assertEquals(DriverQueue.NONE, driver.pollUsed());
            // the next used descriptor is where the batch ended: position 6, wrapping past the end
            int d = driver.add(new BufferChain(3).addReadable(BUF, 8).addReadable(BUF, 8).addReadable(BUF, 8)); // 6,7,0
            int e = driver.add(readOnly()); // position 1, lap 0
            driver.publish();
            ring.used(6, e, 0, true);
            assertEquals(d, driver.pollUsed());
            assertEquals(e, driver.pollUsed());
            assertEquals(DriverQueue.NONE, driver.pollUsed());
            int f = driver.add(readOnly()); // position 2, lap 0
            driver.publish();
            ring.used(2, f, 0, false);
            assertEquals(f, driver.pollUsed());
            assertEquals(8, driver.numFree());
        }
    }

    @Test
    void packedUsedIdThatIsNotOutstandingBreaksTheQueue() throws Exception {
        try (RawPackedRing ring = RawPackedRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            int a = driver.add(readOnly());
            int b = driver.add(readOnly());
            driver.publish();
            ring.used(0, a, 0, true);
            assertEquals(a, driver.pollUsed());
            // names the buffer already taken back, earlier than the next expected
            ring.used(1, a, 0, true);
            VirtqueueException e = assertThrows(VirtqueueException.class, driver::pollUsed);
            assertEquals(RingError.USED_ID_NOT_IN_FLIGHT, e.error());
            assertTrue(e.getMessage().contains("next buffer expected is id " + b), e.getMessage());
            assertTrue(driver.isBroken());
            assertSame(e, assertThrows(VirtqueueException.class, driver::pollUsed));
            assertEquals(1, driver.inFlight());
        }
    }

    @Test
    void packedUsedIdBeyondTheQueueSizeOrLengthTooLargeBreaksTheQueue() throws Exception {
        try (RawPackedRing ring = RawPackedRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            driver.add(readOnly());
            driver.publish();
            ring.used(0, 8, 0, true);
            assertEquals(RingError.USED_ID_NOT_IN_FLIGHT, assertThrows(VirtqueueException.class, driver::pollUsed).error());
        }
        try (RawPackedRing ring = RawPackedRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            driver.add(writable(16));
            int b = driver.add(writable(16));
            driver.publish();
            RawPackedRing.writeDescriptor(ring.desc, 0, 0, 17, b, RawPackedRing.usedBits(true) | RingFormat.DESC_F_WRITE);
            assertEquals(RingError.USED_LENGTH_TOO_LARGE, assertThrows(VirtqueueException.class, driver::pollUsed).error());
            assertEquals(2, driver.inFlight());
        }
    }

    @Test
    void packedDriverAsksToPollAgainInTheMiddleOfABatch() throws Exception {
        try (RawPackedRing ring = RawPackedRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            int a = driver.add(readOnly());
            int b = driver.add(readOnly());
            driver.publish();
            ring.used(0, b, 0, true);
            assertEquals(a, driver.pollUsed());
            assertTrue(driver.enableInterrupts(), "b is still to be taken back, though position 1 is not marked used");
            assertEquals(b, driver.pollUsed());
            assertFalse(driver.enableInterrupts());
        }
    }

    // --- packed, device side ---

    @Test
    void packedDeviceReturnsARunWithOneUsedDescriptorAndSkipsItsDescriptors() throws Exception {
        try (RawPackedRing ring = RawPackedRing.of(8, VirtioFeatures.IN_ORDER)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            int a = driver.add(new BufferChain(2).addReadable(BUF, 8).addReadable(BUF, 8)); // 0-1
            int b = driver.add(readOnly());                                               // 2
            int c = driver.add(writable(16));                                              // 3
            int d = driver.add(readOnly());                                               // 4
            driver.publish();
            DescriptorChain chain = new DescriptorChain();
            long[] written = {0, 0, 5, 0};
            for (long len : written) {
                assertTrue(device.pop(chain));
                device.addUsed(chain.head(), len);
            }
            device.publishUsed();
            assertEquals(RawPackedRing.usedBits(true), ring.descFlags(0) & RawPackedRing.usedBits(true));
            assertEquals(c, ring.descId(0), "a, b and c in one used descriptor naming c");
            assertEquals(5, ring.descLen(0));
            assertEquals(RawPackedRing.availBits(true), ring.descFlags(2) & RawPackedRing.usedBits(true),
                "b's descriptor is skipped, still marked available");
            assertEquals(d, ring.descId(4), "the run held at the end is written by the publish");
            assertEquals(RawPackedRing.usedBits(true), ring.descFlags(4) & RawPackedRing.usedBits(true));
            int[] expect = {a, b, c, d};
            for (int i = 0; i < 4; i++) {
                assertEquals(expect[i], driver.pollUsed());
                assertEquals(written[i], driver.usedLength());
            }
            assertEquals(DriverQueue.NONE, driver.pollUsed());
            assertEquals(8, driver.numFree());
        }
    }

    @Test
    void packedDeviceWithoutInOrderWritesEveryUsedDescriptor() throws Exception {
        try (RawPackedRing ring = RawPackedRing.of(8)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            int a = driver.add(readOnly());
            int b = driver.add(readOnly());
            driver.publish();
            DescriptorChain chain = new DescriptorChain();
            assertTrue(device.pop(chain));
            assertTrue(device.pop(chain));
            device.addUsed(a, 0);
            device.addUsed(b, 0);
            device.publishUsed();
            assertEquals(a, ring.descId(0));
            assertEquals(b, ring.descId(1));
            assertEquals(RawPackedRing.usedBits(true), ring.descFlags(1) & RawPackedRing.usedBits(true));
        }
    }
}

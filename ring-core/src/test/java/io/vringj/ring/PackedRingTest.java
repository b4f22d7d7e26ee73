package io.vringj.ring;

import static io.vringj.ring.PackedRing.DESC_F_INDIRECT;
import static io.vringj.ring.PackedRing.DESC_F_NEXT;
import static io.vringj.ring.PackedRing.DESC_F_WRITE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.AddressSpace;
import io.vringj.testing.RawPackedRing;
import io.vringj.testing.RawSplitRing;
import org.junit.jupiter.api.Test;

/** The packed ring [virtio 2.8]: each device rule with the smallest ring that breaks it, the driver's checks, and notifications. */
class PackedRingTest {
    private static final long BUF = RawSplitRing.BUFFERS;

    private static VirtqueueException popFails(DeviceQueue device, RingError expected) {
        VirtqueueException e = assertThrows(VirtqueueException.class, () -> device.pop(new DescriptorChain()));
        assertEquals(expected, e.error(), e.getMessage());
        assertTrue(device.isBroken());
        assertSame(e, assertThrows(VirtqueueException.class, () -> device.pop(new DescriptorChain())),
            "a broken queue reports the same error again");
        return e;
    }

    @Test
    void acceptsAChainWhoseIdIsInTheLastDescriptor() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            ring.avail(BUF, 10, 9, DESC_F_NEXT).avail(BUF + 16, 20, 2, DESC_F_WRITE);
            DeviceQueue device = ring.device();
            DescriptorChain chain = new DescriptorChain();
            assertTrue(device.pop(chain));
            assertEquals(2, chain.head(), "the buffer id of the last descriptor");
            assertEquals(10, chain.readableLength());
            assertEquals(20, chain.writableLength());
            assertFalse(device.pop(chain));
            device.addUsed(2, 20);
            assertTrue(device.publishUsed());
            assertEquals(2, ring.descId(0));
            assertEquals(20, ring.descLen(0));
            assertEquals(PackedRing.DESC_F_AVAIL | PackedRing.DESC_F_USED, ring.descFlags(0) & 0x8080);
        }
    }

    @Test
    void rejectsChainLongerThanQueueSize() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(2)) {
            ring.avail(BUF, 8, 0, DESC_F_NEXT).avail(BUF, 8, 0, DESC_F_NEXT);
            popFails(ring.device(), RingError.CHAIN_LOOP);
        }
    }

    @Test
    void rejectsBufferIdAtOrBeyondQueueSize() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            ring.avail(BUF, 8, 4, 0);
            popFails(ring.device(), RingError.HEAD_OUT_OF_RANGE);
        }
    }

    @Test
    void rejectsBufferIdAlreadyInFlight() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            ring.avail(BUF, 8, 1, 0).avail(BUF, 8, 1, 0);
            DeviceQueue device = ring.device();
            assertTrue(device.pop(new DescriptorChain()));
            popFails(device, RingError.HEAD_IN_FLIGHT);
        }
    }

    @Test
    void rejectsReadableAfterWritable() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            ring.avail(BUF, 8, 0, DESC_F_WRITE | DESC_F_NEXT).avail(BUF, 8, 0, 0);
            popFails(ring.device(), RingError.READABLE_AFTER_WRITABLE);
        }
    }

    @Test
    void rejectsZeroLengthBuffer() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            ring.avail(BUF, 0, 0, 0);
            popFails(ring.device(), RingError.ZERO_LENGTH);
        }
    }

    @Test
    void rejectsTotalLengthOf4GiBOrMore() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            ring.avail(BUF, 0xFFFF_FFFFL, 0, DESC_F_NEXT).avail(BUF, 1, 0, 0);
            AddressSpace identity = AddressSpace.identity(ring.memory);
            AddressSpace anything = (bus, len, access, sink) -> {
                if (bus < BUF) {
                    identity.translate(bus, len, access, sink);
                } else {
                    sink.accept(ring.memory.slice(BUF, 1), 0, len);
                }
            };
            popFails(ring.device(anything), RingError.CHAIN_TOO_LONG);
        }
    }

    @Test
    void rejectsIndirectTogetherWithNext() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4, VirtioFeatures.INDIRECT_DESC)) {
            ring.indirect(0, BUF, 8, 0);
            ring.avail(RawSplitRing.INDIRECT, 16, 0, DESC_F_INDIRECT | DESC_F_NEXT).avail(BUF, 8, 0, 0);
            popFails(ring.device(), RingError.INDIRECT_WITH_NEXT);
        }
    }

    @Test
    void rejectsIndirectInsideATable() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4, VirtioFeatures.INDIRECT_DESC)) {
            ring.indirect(0, RawSplitRing.INDIRECT, 16, DESC_F_INDIRECT);
            ring.avail(RawSplitRing.INDIRECT, 16, 0, DESC_F_INDIRECT);
            popFails(ring.device(), RingError.NESTED_INDIRECT);
        }
    }

    @Test
    void ignoresFlagsOtherThanWriteInsideATable() throws Exception {
        // issue 11 item 2, as DPDK's virtio driver writes its tables: NEXT and AVAIL/USED bits on entries
        try (RawPackedRing ring = new RawPackedRing(8, VirtioFeatures.INDIRECT_DESC)) {
            ring.indirect(0, BUF, 64, DESC_F_NEXT | PackedRing.DESC_F_AVAIL)
                .indirect(1, BUF + 64, 64, DESC_F_WRITE | PackedRing.DESC_F_AVAIL);
            ring.avail(RawSplitRing.INDIRECT, 32, 5, DESC_F_INDIRECT);
            DeviceQueue device = ring.device();
            DescriptorChain chain = new DescriptorChain();
            assertTrue(device.pop(chain));
            assertEquals(5, chain.head());
            assertEquals(64, chain.readableLength());
            assertEquals(64, chain.writableLength());
            assertEquals(3, chain.descriptorCount(), "the INDIRECT descriptor and both entries");
            assertFalse(device.isBroken());
        }
    }

    @Test
    void walksEveryEntryOfATableWhateverItsNextAndUsedBits() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4, VirtioFeatures.INDIRECT_DESC)) {
            // entry 0 says "no NEXT", entry 1 carries the USED bit: all len/16 entries are still walked in order
            ring.indirect(0, BUF, 8, 0)
                .indirect(1, BUF + 8, 16, PackedRing.DESC_F_USED | DESC_F_NEXT)
                .indirect(2, BUF + 24, 32, DESC_F_WRITE | PackedRing.DESC_F_USED | PackedRing.DESC_F_AVAIL);
            ring.avail(RawSplitRing.INDIRECT, 48, 1, DESC_F_INDIRECT);
            DescriptorChain chain = new DescriptorChain();
            assertTrue(ring.device().pop(chain));
            assertEquals(24, chain.readableLength());
            assertEquals(32, chain.writableLength());
        }
    }

    @Test
    void rejectsIndirectInsideATableAmongStrayFlags() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4, VirtioFeatures.INDIRECT_DESC)) {
            ring.indirect(0, BUF, 8, DESC_F_NEXT | PackedRing.DESC_F_AVAIL)
                .indirect(1, RawSplitRing.INDIRECT, 16, DESC_F_INDIRECT | PackedRing.DESC_F_AVAIL);
            ring.avail(RawSplitRing.INDIRECT, 32, 0, DESC_F_INDIRECT);
            popFails(ring.device(), RingError.NESTED_INDIRECT);
        }
    }

    @Test
    void rejectsBadIndirectTableLengths() throws Exception {
        for (long len : new long[] {0, 24}) {
            try (RawPackedRing ring = new RawPackedRing(4, VirtioFeatures.INDIRECT_DESC)) {
                for (int i = 0; i < 5; i++) {
                    ring.indirect(i, BUF, 8, 0);
                }
                ring.avail(RawSplitRing.INDIRECT, len, 0, DESC_F_INDIRECT);
                popFails(ring.device(), RingError.BAD_INDIRECT_LENGTH);
            }
        }
    }

    @Test
    void walksAnIndirectTableAtAnUnalignedAddress() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4, VirtioFeatures.INDIRECT_DESC)) {
            long table = RawSplitRing.INDIRECT + 3;
            DriverQueue driver = ring.driver();
            BufferChain chain = new BufferChain(2).addReadable(BUF, 8).addWritable(BUF + 8, 8);
            driver.writeIndirectTable(chain, ring.memory.slice(table, 32));
            driver.addIndirect(chain, table);
            driver.publish();
            DescriptorChain popped = new DescriptorChain();
            assertTrue(ring.device().pop(popped));
            assertEquals(8, popped.writableLength());
        }
    }

    @Test
    void rejectsIndirectWhenNotNegotiated() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            ring.indirect(0, BUF, 8, 0);
            ring.avail(RawSplitRing.INDIRECT, 16, 0, DESC_F_INDIRECT);
            popFails(ring.device(), RingError.INDIRECT_NOT_NEGOTIATED);
        }
    }

    @Test
    void rejectsBufferOutsideMemoryOrNotAllowed() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            ring.avail(0x7000_0000L, 8, 0, 0);
            popFails(ring.device(), RingError.ADDRESS_FAULT);
        }
        try (RawPackedRing ring = new RawPackedRing(4)) {
            ring.avail(RawSplitRing.SECURE_BASE, 8, 0, 0);
            popFails(ring.device(AddressSpace.sharedOnly(ring.memory)), RingError.ADDRESS_FAULT);
        }
    }

    @Test
    void acceptsAnyQueueSizeUpTo32768AndRejectsOthers() {
        assertEquals(3, PackedRing.checkQueueSize(3));
        assertEquals(32768, PackedRing.checkQueueSize(32768));
        assertThrows(IllegalArgumentException.class, () -> PackedRing.checkQueueSize(0));
        assertThrows(IllegalArgumentException.class, () -> PackedRing.checkQueueSize(32769));
    }

    @Test
    void chainsWrapMidChainInAQueueOfSizeThree() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(3, VirtioFeatures.INDIRECT_DESC)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            DescriptorChain chain = new DescriptorChain();
            BufferChain two = new BufferChain(2).addReadable(BUF, 8).addWritable(BUF + 8, 8);
            for (int round = 0; round < 50; round++) {
                int id = driver.add(two);
                assertTrue(id >= 0);
                driver.publish();
                assertTrue(device.pop(chain), "round " + round);
                assertEquals(id, chain.head());
                device.addUsed(id, round % 9);
                device.publishUsed();
                assertEquals(id, driver.pollUsed());
                assertEquals(round % 9, driver.usedLength());
                assertEquals(3, driver.numFree());
            }
            // an indirect chain takes one position
            BufferChain five = new BufferChain(5).addReadable(BUF, 8).addReadable(BUF, 8).addWritable(BUF, 8);
            driver.writeIndirectTable(five, ring.memory.slice(RawSplitRing.INDIRECT, 48));
            int id = driver.addIndirect(five, RawSplitRing.INDIRECT);
            assertEquals(2, driver.numFree());
            driver.publish();
            assertTrue(device.pop(chain));
            assertEquals(16, chain.readableLength());
            assertEquals(8, chain.writableLength());
            device.addUsed(id, 8);
            device.publishUsed();
            assertEquals(id, driver.pollUsed());
            assertEquals(3, driver.numFree());
        }
    }

    @Test
    void driverReportsUsedIdNotInFlightAndOverlongLength() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            DriverQueue driver = ring.driver();
            int id = driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.publish();
            ring.used(0, id + 1, 0, true);
            VirtqueueException e = assertThrows(VirtqueueException.class, driver::pollUsed);
            assertEquals(RingError.USED_ID_NOT_IN_FLIGHT, e.error());
            assertTrue(driver.isBroken());
        }
        try (RawPackedRing ring = new RawPackedRing(4)) {
            DriverQueue driver = ring.driver();
            int id = driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.publish();
            ring.used(0, id, 9, true);
            assertEquals(RingError.USED_LENGTH_TOO_LARGE, assertThrows(VirtqueueException.class, driver::pollUsed).error());
        }
    }

    @Test
    void driverIgnoresTheReservedLengthOfAUsedReadOnlyChain() throws Exception {
        // [virtio 2.8.4]: without WRITE on the used descriptor its length is reserved (DPDK's vhost puts the bytes it read there)
        try (RawPackedRing ring = new RawPackedRing(4)) {
            DriverQueue driver = ring.driver();
            int id = driver.add(new BufferChain(1).addReadable(BUF, 76));
            driver.publish();
            ring.used(0, id, 76, true);
            assertEquals(id, driver.pollUsed());
            assertEquals(0, driver.usedLength());
            assertFalse(driver.isBroken());
        }
    }

    @Test
    void driverChecksUsedDescriptorsSeenByEnableInterrupts() throws Exception {
        // the packed counterpart of the split ring's used-idx jump: every used descriptor is checked when taken
        try (RawPackedRing ring = new RawPackedRing(4)) {
            DriverQueue driver = ring.driver();
            int a = driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.publish();
            ring.used(0, a, 0, true).used(1, a, 0, true);
            assertTrue(driver.enableInterrupts());
            assertEquals(a, driver.pollUsed());
            assertTrue(driver.enableInterrupts());
            VirtqueueException e = assertThrows(VirtqueueException.class, driver::pollUsed);
            assertEquals(RingError.USED_ID_NOT_IN_FLIGHT, e.error());
            assertTrue(driver.enableInterrupts(), "a broken queue never tells the caller to sleep");
        }
    }

    @Test
    void driverNeverHandsOutTheSameIdTwice() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            DriverQueue driver = ring.driver();
            int a = driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.publish();
            ring.used(0, a, 0, true).used(1, a, 0, true);
            assertEquals(a, driver.pollUsed());
            assertEquals(RingError.USED_ID_NOT_IN_FLIGHT, assertThrows(VirtqueueException.class, driver::pollUsed).error());
        }
    }

    @Test
    void driverDoesNotMistakeItsOwnAvailableDescriptorForUsed() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            DriverQueue driver = ring.driver();
            driver.add(new BufferChain(1).addWritable(BUF, 8));
            driver.publish();
            assertEquals(DriverQueue.NONE, driver.pollUsed());
        }
    }

    @Test
    void nothingIsAvailableBeforePublishAndABatchAppearsAtOnce() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(8)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            BufferChain c = new BufferChain(1).addReadable(BUF, 8);
            driver.add(c);
            driver.add(c);
            DescriptorChain chain = new DescriptorChain();
            assertFalse(device.pop(chain));
            assertTrue(driver.publish());
            assertTrue(device.pop(chain));
            assertTrue(device.pop(chain));
            assertFalse(device.pop(chain));
        }
    }

    @Test
    void kickFollowsDeviceEventSuppression() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(8)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            BufferChain c = new BufferChain(1).addReadable(BUF, 8);
            driver.add(c);
            assertTrue(driver.publish(), "ENABLE");
            device.disableNotifications();
            driver.add(c);
            assertFalse(driver.publish(), "DISABLE");
            assertTrue(device.enableNotifications(), "two chains waiting");
        }
        try (RawPackedRing ring = new RawPackedRing(4, VirtioFeatures.EVENT_IDX)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            BufferChain c = new BufferChain(1).addReadable(BUF, 8);
            DescriptorChain chain = new DescriptorChain();
            assertFalse(device.enableNotifications());
            driver.add(c);
            assertTrue(driver.publish(), "the device asked for position 0");
            driver.add(c);
            assertFalse(driver.publish(), "the device has not moved on");
            assertTrue(device.pop(chain));
            assertTrue(device.pop(chain));
            assertFalse(device.enableNotifications());
            // across the wrap: positions 2 and 3 then 0 of the next lap
            for (int i = 0; i < 2; i++) {
                device.addUsed(i, 0);
            }
            device.publishUsed();
            driver.pollUsed();
            driver.pollUsed();
            driver.add(c);
            assertTrue(driver.publish(), "event at position 2");
        }
    }

    @Test
    void interruptFollowsDriverEventSuppression() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(8, VirtioFeatures.EVENT_IDX)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            BufferChain c = new BufferChain(1).addWritable(BUF, 8);
            DescriptorChain chain = new DescriptorChain();
            for (int i = 0; i < 3; i++) {
                driver.add(c);
            }
            driver.publish();
            assertFalse(driver.enableInterrupts());
            device.pop(chain);
            device.addUsed(chain.head(), 0);
            assertTrue(device.publishUsed(), "the driver asked for position 0");
            device.pop(chain);
            device.addUsed(chain.head(), 0);
            assertFalse(device.publishUsed(), "the driver has not caught up");
            driver.pollUsed();
            driver.pollUsed();
            device.pop(chain);
            device.addUsed(chain.head(), 0);
            assertTrue(device.publishUsed());
            driver.disableInterrupts();
            driver.add(c);
            driver.publish();
            device.pop(chain);
            device.addUsed(chain.head(), 0);
            assertFalse(device.publishUsed(), "DISABLE");
        }
    }

    @Test
    void driverRestoredMidRingWorksWithADeviceStartedAtTheSameBase() throws Exception {
        // Q=5 (not a power of two), both sides at position 3 of lap 0, so chains cross the end of the ring and the
        // wrap counters flip from 0 to 1
        for (boolean eventIdx : new boolean[] {false, true}) {
            int[] bits = eventIdx ? new int[] {VirtioFeatures.EVENT_IDX} : new int[0];
            try (RawPackedRing ring = new RawPackedRing(5, bits)) {
                int state = 3;
                DriverQueue driver = DriverQueue.create(ring.features, 5, ring.memory, ring.addresses(), state);
                DeviceQueue device = DeviceQueue.create(ring.features, 5, ring.addresses(),
                    AddressSpace.identity(ring.memory), state | state << 16);
                assertEquals(3, device.lastAvailIdx());
                DescriptorChain chain = new DescriptorChain();
                assertFalse(device.pop(chain), "the restored ring holds nothing available");
                assertEquals(DriverQueue.NONE, driver.pollUsed(), "the restored ring holds nothing used");
                assertFalse(driver.enableInterrupts());
                int expectedPosition = 3;
                boolean wrap = false;
                for (int round = 0; round < 7; round++) {
                    int n = 1 + round % 3;
                    BufferChain buffers = new BufferChain(n);
                    for (int k = 0; k < n - 1; k++) {
                        buffers.addReadable(BUF + 64L * k, 10 + round);
                    }
                    buffers.addWritable(BUF + 0x1000, 32);
                    int id = driver.add(buffers);
                    assertTrue(id >= 0);
                    assertTrue(driver.publish(), "round " + round + ": the device has notifications on");
                    assertTrue(device.pop(chain), "round " + round);
                    assertEquals(id, chain.head());
                    assertEquals((long) (n - 1) * (10 + round), chain.readableLength());
                    device.addUsed(chain.head(), 7);
                    assertTrue(device.publishUsed(), "round " + round + ": the driver has interrupts on");
                    assertEquals(id, driver.pollUsed());
                    assertEquals(7, driver.usedLength());
                    expectedPosition += n;
                    if (expectedPosition >= 5) {
                        expectedPosition -= 5;
                        wrap = !wrap;
                    }
                    int expectedState = expectedPosition | (wrap ? 0x8000 : 0);
                    assertEquals(expectedState | expectedState << 16, device.vringBase(), "round " + round);
                    assertEquals(DriverQueue.NONE, driver.pollUsed());
                    assertFalse(driver.enableInterrupts());
                }
                assertTrue(wrap || expectedPosition < 3, "the rounds went past the end of the ring");
                assertEquals(5, driver.numFree());
                assertFalse(device.isBroken());
                assertFalse(driver.isBroken());
            }
        }
    }

    @Test
    void driverStartStateIsChecked() {
        try (RawPackedRing ring = new RawPackedRing(5)) {
            for (int bad : new int[] {5, 0x8005, 0x7FFF, 0x1_0000, -1}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> DriverQueue.create(ring.features, 5, ring.memory, ring.addresses(), bad));
                assertTrue(e.getMessage().contains("0x" + Integer.toHexString(bad)), e.getMessage());
            }
            assertEquals(PackedRing.INITIAL_STATE | PackedRing.INITIAL_STATE << 16, DeviceQueue.PACKED_INITIAL_VRING_BASE);
        }
    }

    @Test
    void restoresPositionsAndWrapCountersFromVringBase() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            DeviceQueue fresh = ring.device();
            assertEquals(0x8000, fresh.lastAvailIdx(), "position 0, wrap counter 1");
            assertEquals(0x8000_8000, fresh.vringBase(), "QEMU's encoding of a fresh packed queue");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceQueue.create(
                ring.features, 4, ring.addresses(), AddressSpace.identity(ring.memory), 0x8000_8004));
            assertTrue(e.getMessage().contains("0x80008004"), e.getMessage());
            // avail at position 2 of lap 0, used at position 1 of lap 1: one chain of one descriptor in flight
            DeviceQueue restored = DeviceQueue.create(ring.features, 4, ring.addresses(),
                AddressSpace.identity(ring.memory), 0x8001_0002);
            assertEquals(2, restored.lastAvailIdx());
            assertEquals(0x8001_0002, restored.vringBase());
        }
    }
}

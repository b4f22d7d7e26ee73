package io.vringj.ring;

import static io.vringj.ring.SplitRing.DESC_F_INDIRECT;
import static io.vringj.ring.SplitRing.DESC_F_NEXT;
import static io.vringj.ring.SplitRing.DESC_F_WRITE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import io.vringj.testing.RawSplitRing;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * Each rule the device side enforces, with the smallest ring that breaks it. Every fatal rule
 * also latches the queue broken.
 */
class SplitDeviceValidationTest {
    private static final long BUF = RawSplitRing.BUFFERS;

    private static VirtqueueException popFails(RawSplitRing ring, RingError expected) throws Exception {
        DeviceQueue device = ring.device();
        return popFails(device, expected);
    }

    private static VirtqueueException popFails(DeviceQueue device, RingError expected) {
        VirtqueueException e = assertThrows(VirtqueueException.class, () -> device.pop(new DescriptorChain()));
        assertEquals(expected, e.error(), e.getMessage());
        if (expected.fatal()) {
            assertTrue(device.isBroken());
            VirtqueueException again = assertThrows(VirtqueueException.class, () -> device.pop(new DescriptorChain()));
            assertSame(e, again, "a broken queue reports the same error again");
        }
        return e;
    }

    @Test
    void acceptsAValidChainWithReadableThenWritable() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(0, BUF, 10, DESC_F_NEXT, 1).desc(1, BUF + 100, 20, DESC_F_WRITE, 0).offer(0);
            DeviceQueue device = ring.device();
            DescriptorChain chain = new DescriptorChain();
            assertTrue(device.pop(chain));
            assertEquals(0, chain.head());
            assertEquals(10, chain.readableLength());
            assertEquals(20, chain.writableLength());
            assertEquals(1, chain.readablePieceCount());
            assertEquals(1, chain.writablePieceCount());
            assertFalse(device.pop(chain), "only one chain was offered");
        }
    }

    @Test
    void rejectsHeadAtOrBeyondQueueSize() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.offer(4);
            VirtqueueException e = popFails(ring, RingError.HEAD_OUT_OF_RANGE);
            assertTrue(e.getMessage().contains("head 4"), e.getMessage());
        }
    }

    @Test
    void rejectsNextAtOrBeyondQueueSize() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(0, BUF, 8, DESC_F_NEXT, 4).offer(0);
            VirtqueueException e = popFails(ring, RingError.NEXT_OUT_OF_RANGE);
            assertTrue(e.getMessage().contains("next 4"), e.getMessage());
        }
    }

    @Test
    void rejectsChainLongerThanQueueSize() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(2)) {
            ring.desc(0, BUF, 8, DESC_F_NEXT, 1).desc(1, BUF, 8, DESC_F_NEXT, 0).offer(0);
            popFails(ring, RingError.CHAIN_LOOP);
        }
    }

    @Test
    void rejectsSelfLoop() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8)) {
            ring.desc(3, BUF, 8, DESC_F_NEXT, 3).offer(3);
            popFails(ring, RingError.CHAIN_LOOP);
        }
    }

    @Test
    void rejectsReadableAfterWritable() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(0, BUF, 8, DESC_F_WRITE | DESC_F_NEXT, 1).desc(1, BUF + 8, 8, 0, 0).offer(0);
            popFails(ring, RingError.READABLE_AFTER_WRITABLE);
        }
    }

    @Test
    void rejectsZeroLengthBuffer() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(0, BUF, 0, 0, 0).offer(0);
            popFails(ring, RingError.ZERO_LENGTH);
        }
    }

    @Test
    void rejectsIndirectTogetherWithNext() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.INDIRECT_DESC)) {
            ring.indirect(0, BUF, 8, 0, 0);
            ring.desc(0, RawSplitRing.INDIRECT, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1).desc(1, BUF, 8, 0, 0).offer(0);
            popFails(ring, RingError.INDIRECT_WITH_NEXT);
        }
    }

    @Test
    void rejectsIndirectInsideATable() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.INDIRECT_DESC)) {
            ring.indirect(0, RawSplitRing.INDIRECT, 16, DESC_F_INDIRECT, 0);
            ring.desc(0, RawSplitRing.INDIRECT, 16, DESC_F_INDIRECT, 0).offer(0);
            popFails(ring, RingError.NESTED_INDIRECT);
        }
    }

    @Test
    void rejectsIndirectTableOfLengthZero() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.INDIRECT_DESC)) {
            ring.desc(0, RawSplitRing.INDIRECT, 0, DESC_F_INDIRECT, 0).offer(0);
            popFails(ring, RingError.BAD_INDIRECT_LENGTH);
        }
    }

    @Test
    void rejectsIndirectTableLengthNotAMultipleOf16() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.INDIRECT_DESC)) {
            ring.indirect(0, BUF, 8, 0, 0);
            ring.desc(0, RawSplitRing.INDIRECT, 24, DESC_F_INDIRECT, 0).offer(0);
            popFails(ring, RingError.BAD_INDIRECT_LENGTH);
        }
    }

    @Test
    void rejectsLoopInsideAnIndirectTable() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.INDIRECT_DESC)) {
            ring.indirect(0, BUF, 8, DESC_F_NEXT, 1).indirect(1, BUF, 8, DESC_F_NEXT, 0);
            ring.desc(0, RawSplitRing.INDIRECT, 32, DESC_F_INDIRECT, 0).offer(0);
            popFails(ring, RingError.CHAIN_LOOP);
        }
    }

    @Test
    void rejectsNextBeyondIndirectTableSize() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.INDIRECT_DESC)) {
            // next 2 is inside the queue size but outside the 2-entry table
            ring.indirect(0, BUF, 8, DESC_F_NEXT, 2).indirect(1, BUF, 8, 0, 0);
            ring.desc(0, RawSplitRing.INDIRECT, 32, DESC_F_INDIRECT, 0).offer(0);
            popFails(ring, RingError.NEXT_OUT_OF_RANGE);
        }
    }

    @Test
    void walksAnIndirectTableAtAnUnalignedAddress() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.INDIRECT_DESC)) {
            long table = RawSplitRing.INDIRECT + 1;
            DriverQueue driver = ring.driver();
            BufferChain chain = new BufferChain(2).addReadable(BUF, 8).addWritable(BUF + 8, 8);
            driver.writeIndirectTable(chain, ring.memory.slice(table, 32));
            driver.addIndirect(chain, table);
            driver.publish();
            DescriptorChain popped = new DescriptorChain();
            assertTrue(ring.device().pop(popped));
            assertEquals(8, popped.readableLength());
            assertEquals(8, popped.writableLength());
        }
    }

    @Test
    void rejectsIndirectWhenNotNegotiated() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.indirect(0, BUF, 8, 0, 0);
            ring.desc(0, RawSplitRing.INDIRECT, 16, DESC_F_INDIRECT, 0).offer(0);
            popFails(ring, RingError.INDIRECT_NOT_NEGOTIATED);
        }
    }

    @Test
    void acceptsAValidIndirectTable() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.INDIRECT_DESC)) {
            ring.indirect(0, BUF, 8, DESC_F_NEXT, 1).indirect(1, BUF + 8, 8, DESC_F_NEXT, 2)
                .indirect(2, BUF + 16, 32, DESC_F_WRITE, 0);
            ring.desc(2, RawSplitRing.INDIRECT, 48, DESC_F_INDIRECT, 0).offer(2);
            DescriptorChain chain = new DescriptorChain();
            assertTrue(ring.device().pop(chain));
            assertEquals(2, chain.head());
            assertEquals(16, chain.readableLength());
            assertEquals(32, chain.writableLength());
        }
    }

    @Test
    void rejectsTotalLengthOf4GiBOrMore() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            // the buffers themselves are never reached: the total is checked before translation
            ring.desc(0, BUF, 0xFFFF_FFFFL, DESC_F_NEXT, 1).desc(1, BUF, 1, 0, 0).offer(0);
            // 0xFFFFFFFF bytes at BUF is not in memory: use a space that lets any range through
            DeviceQueue device = ring.device(anything(ring));
            VirtqueueException e = popFails(device, RingError.CHAIN_TOO_LONG);
            assertTrue(e.getMessage().contains("4294967296"), e.getMessage());
        }
    }

    /** Identity for the rings, and any buffer range maps onto the first byte of BUFFERS. */
    private static AddressSpace anything(RawSplitRing ring) {
        AddressSpace identity = AddressSpace.identity(ring.memory);
        return (bus, len, access, sink) -> {
            if (bus < RawSplitRing.BUFFERS) {
                identity.translate(bus, len, access, sink);
            } else {
                sink.accept(ring.memory.slice(RawSplitRing.BUFFERS, 1), 0, len);
            }
        };
    }

    @Test
    void rejectsAvailIdxMoreThanQueueSizeAhead() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.availIdx(5);
            VirtqueueException e = popFails(ring, RingError.AVAIL_IDX_TOO_FAR);
            assertTrue(e.getMessage().contains("avail idx 5"), e.getMessage());
        }
    }

    @Test
    void acceptsAvailIdxExactlyQueueSizeAhead() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(2)) {
            ring.desc(0, BUF, 8, 0, 0).desc(1, BUF, 8, 0, 0).offer(0, 1);
            DeviceQueue device = ring.device();
            DescriptorChain chain = new DescriptorChain();
            assertTrue(device.pop(chain));
            assertTrue(device.pop(chain));
            assertFalse(device.pop(chain));
        }
    }

    @Test
    void rejectsHeadThatIsAlreadyInFlight() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(1, BUF, 8, 0, 0).offer(1, 1);
            DeviceQueue device = ring.device();
            assertTrue(device.pop(new DescriptorChain()));
            popFails(device, RingError.HEAD_IN_FLIGHT);
        }
    }

    @Test
    void rejectsBufferOutsideGuestMemory() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(0, 0x7000_0000L, 8, 0, 0).offer(0);
            VirtqueueException e = popFails(ring, RingError.ADDRESS_FAULT);
            assertEquals(TranslationException.Kind.FAULT, ((TranslationException) e.getCause()).kind());
        }
    }

    @Test
    void rejectsBufferCrossingTheEndOfARegion() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(0, RawSplitRing.SHARED_BASE + (1 << 20) - 4, 8, 0, 0).offer(0);
            popFails(ring, RingError.ADDRESS_FAULT);
        }
    }

    @Test
    void rejectsBufferTheAddressSpaceDoesNotAllow() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(0, RawSplitRing.SECURE_BASE + 0x100, 8, 0, 0).offer(0);
            DeviceQueue device = ring.device(AddressSpace.sharedOnly(ring.memory));
            VirtqueueException e = popFails(device, RingError.ADDRESS_FAULT);
            assertTrue(e.getMessage().contains("SECURE"), e.getMessage());
        }
    }

    @Test
    void rejectsIndirectTableOutsideMemory() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.INDIRECT_DESC)) {
            ring.desc(0, 0x7000_0000L, 16, DESC_F_INDIRECT, 0).offer(0);
            popFails(ring, RingError.ADDRESS_FAULT);
        }
    }

    @Test
    void rejectsRingAreaOutsideMemoryAtActivation() {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            VirtqueueException e = assertThrows(VirtqueueException.class, () -> DeviceQueue.create(ring.features, 4,
                new RingAddresses(0x7000_0000L, RawSplitRing.AVAIL, RawSplitRing.USED), AddressSpace.identity(ring.memory)));
            assertEquals(RingError.ADDRESS_FAULT, e.error());
        }
    }

    @Test
    void rejectsMisalignedRingArea() {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            VirtqueueException e = assertThrows(VirtqueueException.class, () -> DeviceQueue.create(ring.features, 4,
                new RingAddresses(RawSplitRing.DESC + 8, RawSplitRing.AVAIL, RawSplitRing.USED), AddressSpace.identity(ring.memory)));
            assertEquals(RingError.ADDRESS_FAULT, e.error());
            assertTrue(e.getMessage().contains("aligned to 16"), e.getMessage());
        }
    }

    @Test
    void brokenQueueDoesNotTouchTheRing() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.offer(9);
            DeviceQueue device = ring.device();
            popFails(device, RingError.HEAD_OUT_OF_RANGE);
            byte[] usedBefore = ring.used.toArray(ValueLayout.JAVA_BYTE);
            // a later valid offer is not consumed, and nothing is published or flagged
            ring.desc(0, BUF, 8, 0, 0).offer(0);
            assertThrows(VirtqueueException.class, () -> device.pop(new DescriptorChain()));
            assertThrows(VirtqueueException.class, device::enableNotifications);
            device.disableNotifications();
            assertFalse(device.publishUsed());
            assertThrows(IllegalStateException.class, () -> device.addUsed(0, 0));
            assertArrayEquals(usedBefore, ring.used.toArray(ValueLayout.JAVA_BYTE));
        }
    }

    @Test
    void missConsumesNothingAndTheSameHeadIsPoppedAfterRetry() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(0, BUF, 8, 0, 0).offer(0);
            AddressSpace identity = AddressSpace.identity(ring.memory);
            boolean[] miss = {true};
            AddressSpace missing = (bus, len, access, sink) -> {
                if (bus == BUF && miss[0]) {
                    throw new TranslationException(TranslationException.Kind.MISS, bus, len, access, "not yet");
                }
                identity.translate(bus, len, access, sink);
            };
            DeviceQueue device = ring.device(missing);
            DescriptorChain chain = new DescriptorChain();
            VirtqueueException e = assertThrows(VirtqueueException.class, () -> device.pop(chain));
            assertEquals(RingError.TRANSLATION_MISS, e.error());
            assertFalse(device.isBroken());
            assertEquals(0, device.lastAvailIdx());
            miss[0] = false;
            assertTrue(device.pop(chain));
            assertEquals(0, chain.head());
        }
    }

    @Test
    void rejectsQueueSizeThatIsNotAPowerOfTwo() {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceQueue.create(
                ring.features, 3, ring.addresses(), AddressSpace.identity(ring.memory)));
            assertTrue(e.getMessage().contains("queue size 3"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> SplitRing.checkQueueSize(65536));
            assertThrows(IllegalArgumentException.class, () -> SplitRing.checkQueueSize(0));
            assertEquals(32768, SplitRing.checkQueueSize(32768));
        }
    }

    @Test
    void addUsedRejectsHeadNotInFlightAndOverlongLength() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(0, BUF, 8, DESC_F_WRITE, 0).offer(0);
            DeviceQueue device = ring.device();
            assertThrows(IllegalStateException.class, () -> device.addUsed(0, 0));
            assertTrue(device.pop(new DescriptorChain()));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> device.addUsed(0, 9));
            assertTrue(e.getMessage().contains("written length 9"), e.getMessage());
            device.addUsed(0, 8);
            assertThrows(IllegalStateException.class, () -> device.addUsed(0, 8));
            assertTrue(device.publishUsed());
            assertEquals(1, ring.usedIdx());
            assertEquals(0, ring.usedId(0));
            assertEquals(8, ring.usedLen(0));
        }
    }
}

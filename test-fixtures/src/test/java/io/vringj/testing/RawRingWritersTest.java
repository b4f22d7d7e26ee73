package io.vringj.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.GuestMemory;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.PackedRing;
import io.vringj.ring.RingError;
import io.vringj.ring.RingLayout;
import io.vringj.ring.SplitRing;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import org.junit.jupiter.api.Test;

/** What the raw writers write is what the real queues read, at the offsets the spec gives. */
class RawRingWritersTest {
    private static final long BUF = RawSplitRing.BUFFERS;

    @Test
    void aSplitChainWrittenByHandIsPoppedAsWritten() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(2, BUF, 10, SplitRing.DESC_F_NEXT, 3).desc(3, BUF + 0x100, 20, SplitRing.DESC_F_WRITE, 0).offer(2);
            DescriptorChain chain = new DescriptorChain();
            assertTrue(ring.device().pop(chain));
            assertEquals(2, chain.head());
            assertEquals(10, chain.readableLength());
            assertEquals(20, chain.writableLength());
        }
    }

    @Test
    void aUsedElementWrittenByHandIsWhatTheDriverPolls() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            DriverQueue driver = ring.driver();
            int head = driver.add(new BufferChain(1).addWritable(BUF, 64));
            driver.publish();
            ring.writeUsed(0, head, 33, 1);
            assertEquals(head, driver.pollUsed());
            assertEquals(33, driver.usedLength());
            assertEquals(1, ring.usedIdx());
            assertEquals(head, ring.usedId(0));
            assertEquals(33, ring.usedLen(0));
        }
    }

    @Test
    void aMaliciousHeadIsRejectedByTheDevice() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.availEntry(0, 0x7FFF).availIdx(1);
            VirtqueueException e = assertThrows(VirtqueueException.class, () -> ring.device().pop(new DescriptorChain()));
            assertEquals(RingError.HEAD_OUT_OF_RANGE, e.error(), e.getMessage());
        }
    }

    @Test
    void eventFieldsLieWhereTheLayoutHelperPutsThem() {
        try (RawSplitRing ring = RawSplitRing.of(8, VirtioFeatures.EVENT_IDX)) {
            ring.usedEvent(0x1234).availEvent(0x5678);
            RingLayout layout = RingLayout.of(ring.features, 8, 0, 4);
            assertEquals(0x1234, Short.toUnsignedInt(ring.avail.get(RawSplitRing.LE_SHORT,
                layout.usedEventOffset() - layout.driverAreaOffset())));
            assertEquals(0x5678, Short.toUnsignedInt(ring.used.get(RawSplitRing.LE_SHORT,
                layout.availEventOffset() - layout.deviceAreaOffset())));
        }
    }

    @Test
    void aSplitRingOverMemoryTheCallerOwnsLeavesItOpen() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(RawSplitRing.SHARED_BASE, RawSplitRing.REGION_SIZE)) {
            long features = RawSplitRing.features();
            RingLayout layout = RingLayout.of(features, 4, RawSplitRing.SHARED_BASE, 4096);
            RawSplitRing ring = RawSplitRing.over(memory, features, 4, layout.addresses());
            ring.desc(0, BUF, 8, 0, 0).offer(0);
            ring.close();
            assertTrue(ring.device().pop(new DescriptorChain()), "memory still open after close()");
        }
    }

    @Test
    void packedDescriptorsWrittenByHandCrossTheEndOfTheRing() throws Exception {
        try (RawPackedRing ring = RawPackedRing.of(2)) {
            DeviceQueue device = ring.device();
            DescriptorChain chain = new DescriptorChain();
            ring.avail(BUF, 5, 0, 0);
            assertTrue(device.pop(chain));
            assertEquals(0, chain.head());
            device.addUsed(0, 0);
            device.publishUsed();
            ring.avail(BUF + 0x100, 6, 1, 0).avail(BUF + 0x200, 9, 0, 0);
            assertTrue(device.pop(chain));
            assertEquals(1, chain.head());
            assertTrue(device.pop(chain), "the third descriptor is in lap 0 at position 0");
            assertEquals(0, chain.head());
            assertEquals(9, chain.readableLength());
            assertEquals(RawPackedRing.availBits(false), ring.descFlags(0) & (PackedRing.DESC_F_AVAIL | PackedRing.DESC_F_USED));
        }
    }

    @Test
    void aPackedUsedDescriptorWrittenByHandIsWhatTheDriverPolls() throws Exception {
        try (RawPackedRing ring = RawPackedRing.of(4)) {
            DriverQueue driver = ring.driver();
            int id = driver.add(new BufferChain(1).addWritable(BUF, 64));
            driver.publish();
            assertEquals(DriverQueue.NONE, driver.pollUsed());
            ring.used(0, id, 21, true);
            assertEquals(id, driver.pollUsed());
            assertEquals(21, driver.usedLength());
            assertEquals(id, ring.descId(0));
            assertEquals(21, ring.descLen(0));
        }
    }

    @Test
    void packedEventStructuresAreWrittenAsOffWrapThenFlags() throws Exception {
        try (RawPackedRing ring = RawPackedRing.of(4, VirtioFeatures.EVENT_IDX)) {
            // a fresh driver queue clears the ring areas, so the device's wish is written after it
            DriverQueue driver = ring.driver();
            ring.driverEvent(0x8003, PackedRing.EVENT_FLAG_DISABLE).deviceEvent(0x0002, PackedRing.EVENT_FLAG_DESC);
            assertEquals(0x8003, Short.toUnsignedInt(ring.driverEvent.get(RawSplitRing.LE_SHORT, 0)));
            assertEquals(PackedRing.EVENT_FLAG_DISABLE, ring.driverEvent.get(RawSplitRing.LE_SHORT, 2));
            driver.add(new BufferChain(1).addReadable(BUF, 1));
            assertFalse(driver.publish(), "the device asked for descriptor 2 of lap 0, not reached by position 1 of lap 1");
        }
    }
}

package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Once an IOTLB invalidation has returned, no ring-area access of a device queue goes through a
 * translation of the removed range (issue 11, item 1): every operation — disableNotifications,
 * addUsed, publishUsed included — translates the ring areas again when the epoch moved, and
 * writes where the current entry says (or misses and writes nothing).
 *
 * <pre>
 *   IOVA 0x77000000 .. +0x4000  →  gpaA:  +0 descriptors, +0x1000 driver area, +0x2000 device area,
 *                                         +0x3000 buffers
 *   later: INVALIDATE +0x2000, UPDATE +0x2000 → gpaB
 * </pre>
 */
class RingAreaInvalidationTest {
    private static final long GPA = 0x4000_0000L;
    private static final long GPA_A = GPA + 0x10000;
    private static final long GPA_B = GPA + 0x40000;
    private static final long IOVA = 0x7700_0000L;
    private static final int Q = 16;
    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final GuestMemory memory = GuestMemory.ofShared(GPA, 1 << 20);
    private final DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
    private final List<IotlbMessage> sent = new ArrayList<>();
    private final DescriptorChain chain = new DescriptorChain();

    RingAreaInvalidationTest() {
        iotlb.setMessageSink(sent::add);
    }

    @AfterEach
    void close() {
        memory.close();
    }

    private static long features(boolean packed) {
        long f = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX);
        return packed ? f | VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : f;
    }

    private short le16(long gpa) {
        return memory.slice(gpa, 2).get(LE16, 0);
    }

    private int le32(long gpa) {
        return memory.slice(gpa, 4).get(LE32, 0);
    }

    /** The exact sequence; returns the device queue after the second section's disableNotifications. */
    private DeviceQueue reproduce(boolean packed, DeviceIotlb.Worker worker) throws Exception {
        iotlb.update(IOVA, 0x4000, GPA_A, Permission.RW);
        long features = features(packed);
        DriverQueue driver = DriverQueue.create(features, Q, memory, new RingAddresses(GPA_A, GPA_A + 0x1000,
            GPA_A + 0x2000));
        DeviceQueue device = DeviceQueue.create(features, Q, new RingAddresses(IOVA, IOVA + 0x1000, IOVA + 0x2000),
            new IotlbAddressSpace(iotlb));
        driver.add(new BufferChain(1).addWritable(IOVA + 0x3000, 64));
        driver.publish();

        worker.enter();
        assertTrue(device.pop(chain));
        device.enableNotifications();
        worker.exit();

        iotlb.invalidate(IOVA + 0x2000, 0x1000);
        iotlb.update(IOVA + 0x2000, 0x1000, GPA_B, Permission.RW);

        worker.enter();
        device.disableNotifications();
        worker.exit();
        return device;
    }

    @Test
    void splitDisableNotificationsAfterAnInvalidationNeverWritesTheOldUsedRing() throws Exception {
        try (DeviceIotlb.Worker worker = iotlb.registerWorker()) {
            DeviceQueue device = reproduce(false, worker);
            // used->flags: the old page must be untouched; the new one holds NO_NOTIFY, or the write missed
            assertEquals(0, le16(GPA_A + 0x2000), "used flags written through the invalidated translation");
            assertTrue(le16(GPA_B) == 1 || !sent.isEmpty(), "the write neither landed at gpaB nor missed");

            // the INVALIDATE removed the whole entry (as vhost's del_range): answer the MISSes
            iotlb.update(IOVA, 0x2000, GPA_A, Permission.RW);
            iotlb.update(IOVA + 0x3000, 0x1000, GPA_A + 0x3000, Permission.RW);
            worker.enter();
            device.disableNotifications();
            device.addUsed(chain.head(), 8);
            device.publishUsed();
            worker.exit();
            assertEquals(1, le16(GPA_B), "used flags NO_NOTIFY at the new page");
            assertEquals(1, le16(GPA_B + 2), "used idx published at the new page");
            assertEquals(chain.head(), le32(GPA_B + 4), "used element id at the new page");
            assertEquals(8, le32(GPA_B + 8), "used element len at the new page");
            assertEquals(0, le16(GPA_A + 0x2000), "old used flags untouched");
            assertEquals(0, le16(GPA_A + 0x2002), "old used idx untouched");
            assertEquals(0, le32(GPA_A + 0x2004), "old used element untouched");
        }
    }

    @Test
    void packedDisableNotificationsAfterAnInvalidationNeverWritesTheOldEventArea() throws Exception {
        try (DeviceIotlb.Worker worker = iotlb.registerWorker()) {
            DeviceQueue device = reproduce(true, worker);
            // the device event suppression flags (offset 2): enableNotifications wrote DESC (2) there
            assertEquals(2, le16(GPA_A + 0x2002), "device event flags written through the invalidated translation");
            assertTrue(le16(GPA_B + 2) == 1 || !sent.isEmpty(), "the write neither landed at gpaB nor missed");

            iotlb.update(IOVA, 0x2000, GPA_A, Permission.RW);
            iotlb.update(IOVA + 0x3000, 0x1000, GPA_A + 0x3000, Permission.RW);
            worker.enter();
            device.disableNotifications();
            worker.exit();
            assertEquals(1, le16(GPA_B + 2), "DISABLE written at the new page");
            assertEquals(2, le16(GPA_A + 0x2002), "old event flags untouched");
        }
    }

    @Test
    void whenEveryRingPageIsUpdatedAgainTheFlagsWriteLandsAtTheNewPage() throws Exception {
        for (boolean packed : new boolean[] {false, true}) {
            memory.slice(GPA, 1 << 20).fill((byte) 0);
            iotlb.invalidateAll();
            iotlb.update(IOVA, 0x4000, GPA_A, Permission.RW);
            long features = features(packed);
            DriverQueue driver = DriverQueue.create(features, Q, memory, new RingAddresses(GPA_A, GPA_A + 0x1000,
                GPA_A + 0x2000));
            DeviceQueue device = DeviceQueue.create(features, Q, new RingAddresses(IOVA, IOVA + 0x1000, IOVA + 0x2000),
                new IotlbAddressSpace(iotlb));
            driver.add(new BufferChain(1).addWritable(IOVA + 0x3000, 64));
            driver.publish();
            assertTrue(device.pop(chain));
            device.enableNotifications();
            // the remap of only the device area, every other page kept: an UPDATE trims, it does not drop
            iotlb.update(IOVA + 0x2000, 0x1000, GPA_B, Permission.RW);
            device.disableNotifications();
            long flags = packed ? 2 : 0;
            assertEquals(1, le16(GPA_B + flags), (packed ? "packed" : "split") + ": the hint lands at the new page");
            assertEquals(packed ? 2 : 0, le16(GPA_A + 0x2000 + flags), "nothing written at the old page");
            device.addUsed(chain.head(), 8);
            device.publishUsed();
            if (packed) {
                // the descriptor ring did not move: the driver sees the used descriptor
                assertEquals(chain.head(), driver.pollUsed());
            } else {
                assertEquals(1, le16(GPA_B + 2), "used idx at the new page");
                assertEquals(0, le16(GPA_A + 0x2002), "old used idx untouched");
            }
        }
    }

    @Test
    void aUsedEntryAddedWhileTheUsedRingMissesIsWrittenByTheFirstPublishThatReachesIt() throws Exception {
        for (boolean packed : new boolean[] {false, true}) {
            memory.slice(GPA, 1 << 20).fill((byte) 0);
            iotlb.invalidateAll();
            sent.clear();
            iotlb.update(IOVA, 0x4000, GPA_A, Permission.RW);
            long features = features(packed);
            DriverQueue driver = DriverQueue.create(features, Q, memory, new RingAddresses(GPA_A, GPA_A + 0x1000,
                GPA_A + 0x2000));
            DeviceQueue device = DeviceQueue.create(features, Q, new RingAddresses(IOVA, IOVA + 0x1000, IOVA + 0x2000),
                new IotlbAddressSpace(iotlb));
            int head = driver.add(new BufferChain(1).addWritable(IOVA + 0x3000, 64));
            driver.publish();
            assertTrue(device.pop(chain));
            // the ring the used entry goes to is taken away between pop and addUsed
            long usedPage = packed ? IOVA : IOVA + 0x2000;
            iotlb.invalidate(usedPage, 0x1000);
            device.addUsed(chain.head(), 8);
            assertFalse(device.publishUsed(), "nothing published while the ring misses");
            assertEquals(DriverQueue.NONE, driver.pollUsed(), "nothing reached the driver");
            assertFalse(device.isBroken(), "a miss does not break the queue");
            assertTrue(sent.stream().anyMatch(m -> m.type() == IotlbMessage.Type.MISS), "a MISS went out");
            iotlb.update(IOVA, 0x4000, GPA_A, Permission.RW);
            device.publishUsed();
            assertEquals(head, driver.pollUsed(), (packed ? "packed" : "split") + ": the deferred entry arrives");
            assertEquals(8, driver.usedLength());
        }
    }

    /** The IOTLB's address space, counting the translations of the ring pages (below IOVA + 0x3000). */
    private static final class CountingRingTranslations implements AddressSpace {
        private final IotlbAddressSpace delegate;
        int ringTranslations;

        CountingRingTranslations(IotlbAddressSpace delegate) {
            this.delegate = delegate;
        }

        @Override
        public void translate(long busAddress, long length, Access access, io.vringj.memory.TranslationSink sink)
            throws io.vringj.memory.TranslationException {
            if (tryTranslate(busAddress, length, access, sink) != 0) {
                throw new io.vringj.memory.TranslationException(io.vringj.memory.TranslationException.Kind.MISS,
                    busAddress, length, access, "miss");
            }
        }

        @Override
        public long tryTranslate(long busAddress, long length, Access access, io.vringj.memory.TranslationSink sink)
            throws io.vringj.memory.TranslationException {
            if (busAddress < IOVA + 0x3000) {
                ringTranslations++;
            }
            return delegate.tryTranslate(busAddress, length, access, sink);
        }

        @Override
        public long epoch() {
            return delegate.epoch();
        }

        @Override
        public boolean unchangedSince(long epoch, long busAddress, long length) {
            return delegate.unchangedSince(epoch, busAddress, length);
        }
    }

    @Test
    void anInvalidationOfABufferPageLeavesTheRingAreasTranslatedOneOfARingPageDoesNot() throws Exception {
        for (boolean packed : new boolean[] {false, true}) {
            memory.slice(GPA, 1 << 20).fill((byte) 0);
            iotlb.invalidateAll();
            // the rings in one entry, the buffer page in another (as an IOMMU maps them: apart)
            iotlb.update(IOVA, 0x3000, GPA_A, Permission.RW);
            iotlb.update(IOVA + 0x3000, 0x1000, GPA_A + 0x3000, Permission.RW);
            long features = features(packed);
            DriverQueue driver = DriverQueue.create(features, Q, memory, new RingAddresses(GPA_A, GPA_A + 0x1000,
                GPA_A + 0x2000));
            CountingRingTranslations space = new CountingRingTranslations(new IotlbAddressSpace(iotlb));
            DeviceQueue device = DeviceQueue.create(features, Q, new RingAddresses(IOVA, IOVA + 0x1000, IOVA + 0x2000),
                space);
            String layout = packed ? "packed" : "split";
            for (int round = 0; round < 3; round++) {
                // a strict unmap and a map of the buffer page: an INVALIDATE, then an UPDATE, between requests
                iotlb.invalidate(IOVA + 0x3000, 0x1000);
                iotlb.update(IOVA + 0x3000, 0x1000, GPA_A + 0x3000, Permission.RW);
                int before = space.ringTranslations;
                int head = driver.add(new BufferChain(1).addWritable(IOVA + 0x3000, 64));
                driver.publish();
                assertTrue(device.pop(chain));
                device.addUsed(chain.head(), 8);
                device.publishUsed();
                assertEquals(head, driver.pollUsed(), layout);
                assertEquals(before, space.ringTranslations, layout + ": the buffer page's INVALIDATE took no ring "
                    + "entry away, so the ring areas were not translated again");
            }
            // now the device area's page: the INVALIDATE removes the rings' entry whole
            iotlb.invalidate(IOVA + 0x2000, 0x1000);
            iotlb.update(IOVA, 0x2000, GPA_A, Permission.RW);
            iotlb.update(IOVA + 0x2000, 0x1000, GPA_B, Permission.RW);
            int before = space.ringTranslations;
            int head = driver.add(new BufferChain(1).addWritable(IOVA + 0x3000, 64));
            driver.publish();
            assertTrue(device.pop(chain));
            assertTrue(space.ringTranslations > before, layout + ": the ring areas were translated again");
            device.addUsed(chain.head(), 8);
            device.publishUsed();
            if (!packed) {
                assertEquals(4, le16(GPA_B + 2), "split: used idx published at the device area's new page");
                assertEquals(3, le16(GPA_A + 0x2002), "split: the old page keeps the index of three rounds");
            } else {
                assertEquals(head, driver.pollUsed(), "packed: the descriptor ring did not move");
            }
        }
    }

    @Test
    void aMissedTranslationIsReportedWithItsAddressAndAccess() throws Exception {
        iotlb.update(IOVA, 0x3000, GPA_A, Permission.RW);
        long features = features(false);
        DriverQueue driver = DriverQueue.create(features, Q, memory, new RingAddresses(GPA_A, GPA_A + 0x1000,
            GPA_A + 0x2000));
        DeviceQueue device = DeviceQueue.create(features, Q, new RingAddresses(IOVA, IOVA + 0x1000, IOVA + 0x2000),
            new IotlbAddressSpace(iotlb));
        driver.add(new BufferChain(1).addWritable(IOVA + 0x3010, 64));
        driver.publish();
        assertEquals(DeviceQueue.MISSED, device.tryPop(chain));
        assertEquals(IOVA + 0x3010, device.missAddress());
        assertEquals(Access.WRITE, device.missAccess());
        assertEquals(List.of(IotlbMessage.miss(IOVA + 0x3010, Permission.WO)), sent);
        iotlb.update(IOVA + 0x3000, 0x1000, GPA_A + 0x3000, Permission.RW);
        assertEquals(DeviceQueue.POPPED, device.tryPop(chain));
    }
}

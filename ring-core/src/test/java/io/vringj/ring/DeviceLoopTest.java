package io.vringj.ring;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one device loop: batches, notifications, and the miss-and-retry rule behind an IOTLB. */
class DeviceLoopTest {
    static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
    static final int QUEUE_SIZE = 8;
    static final RingAddresses RINGS = new RingAddresses(0, 0x1000, 0x2000);
    static final long BUFFERS = 0x4000;

    /** Fills nothing, reports 7 bytes written per chain and records the heads in order. */
    static final class Recorder implements ChainHandler {
        final int[] heads = new int[64];
        int count;

        @Override
        public long handle(DescriptorChain chain) {
            heads[count++] = chain.head();
            return 7;
        }
    }

    @Test
    void handlesEveryAvailableChainThenEnablesNotificationsAndReportsIdle() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(0, 0x10000)) {
            DriverQueue driver = DriverQueue.create(FEATURES, QUEUE_SIZE, memory, RINGS);
            DeviceQueue device = DeviceQueue.create(FEATURES, QUEUE_SIZE, RINGS, AddressSpace.identity(memory));
            int[] notified = new int[1];
            DeviceLoop loop = new DeviceLoop(device, new Recorder(), () -> notified[0]++);
            for (int i = 0; i < 3; i++) {
                driver.add(new BufferChain(1).addWritable(BUFFERS + 0x100L * i, 16));
            }
            driver.publish();
            assertEquals(DeviceLoop.IDLE, loop.run(64));
            assertEquals(3, loop.chains());
            assertEquals(21, loop.bytesWritten());
            assertEquals(1, notified[0], "one interrupt for the batch");
            for (int i = 0; i < 3; i++) {
                assertTrue(driver.pollUsed() >= 0);
                assertEquals(7, driver.usedLength());
            }
            // notifications are enabled again: the next chain would be kicked
            driver.add(new BufferChain(1).addWritable(BUFFERS, 16));
            assertTrue(driver.publish(), "the driver must kick after the loop went idle");
        }
    }

    @Test
    void pollLeavesNotificationsDisabledOnADryRingAndRunEnablesThemAndRechecks() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(0, 0x10000)) {
            DriverQueue driver = DriverQueue.create(FEATURES, QUEUE_SIZE, memory, RINGS);
            DeviceQueue device = DeviceQueue.create(FEATURES, QUEUE_SIZE, RINGS, AddressSpace.identity(memory));
            DeviceLoop loop = new DeviceLoop(device, new Recorder(), () -> { });
            assertEquals(DeviceLoop.EMPTY, loop.poll(64));
            // a busy-polling device wants no kicks: the driver publishes without one
            driver.add(new BufferChain(1).addWritable(BUFFERS, 16));
            assertEquals(false, driver.publish(), "no kick while the device busy polls");
            assertEquals(DeviceLoop.EMPTY, loop.poll(64));
            assertEquals(1, loop.chains(), "the chain was found by polling, without a kick");
            // a chain published while the device stops polling is found by run's recheck
            driver.add(new BufferChain(1).addWritable(BUFFERS + 0x100, 16));
            assertEquals(false, driver.publish());
            assertEquals(DeviceLoop.IDLE, loop.run(64));
            assertEquals(2, loop.chains());
            driver.add(new BufferChain(1).addWritable(BUFFERS + 0x200, 16));
            assertTrue(driver.publish(), "after run went idle the driver kicks again");
        }
    }

    @Test
    void stopsAtTheChainLimitAndReportsBusy() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(0, 0x10000)) {
            DriverQueue driver = DriverQueue.create(FEATURES, QUEUE_SIZE, memory, RINGS);
            DeviceQueue device = DeviceQueue.create(FEATURES, QUEUE_SIZE, RINGS, AddressSpace.identity(memory));
            DeviceLoop loop = new DeviceLoop(device, new Recorder(), () -> { });
            for (int i = 0; i < 5; i++) {
                driver.add(new BufferChain(1).addWritable(BUFFERS + 0x100L * i, 16));
            }
            driver.publish();
            assertEquals(DeviceLoop.BUSY, loop.run(2));
            assertEquals(2, loop.chains());
            assertEquals(DeviceLoop.IDLE, loop.run(64));
            assertEquals(5, loop.chains());
        }
    }

    /** Identity over guest memory, except that one page misses until it is installed. */
    static final class MissingPage implements AddressSpace, MissParking.Translations {
        final AddressSpace identity;
        final long page;
        boolean installed;
        /** Whether the request for the page is still unanswered (false: answered, then taken away). */
        boolean requestPending = true;
        long stamp;
        int lookupsOfPage;

        MissingPage(GuestMemory memory, long page) {
            this.identity = AddressSpace.identity(memory);
            this.page = page;
        }

        @Override
        public void translate(long busAddress, long length, Access access, TranslationSink sink)
            throws TranslationException {
            if (busAddress >= page && busAddress < page + 0x1000) {
                lookupsOfPage++;
                if (!installed) {
                    throw new TranslationException(TranslationException.Kind.MISS, busAddress, length, access, "test");
                }
            }
            identity.translate(busAddress, length, access, sink);
        }

        @Override
        public long stamp() {
            return stamp;
        }

        @Override
        public boolean mayRetry(long busAddress, Access access) {
            return installed || !requestPending;
        }
    }

    @Test
    void parksOnAMissAndRetriesTheSameHeadOnceTheTranslationCovers() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(0, 0x10000)) {
            long missing = 0x8000;
            MissingPage space = new MissingPage(memory, missing);
            DriverQueue driver = DriverQueue.create(FEATURES, QUEUE_SIZE, memory, RINGS);
            DeviceQueue device = DeviceQueue.create(FEATURES, QUEUE_SIZE, RINGS, space);
            Recorder recorder = new Recorder();
            DeviceLoop loop = new DeviceLoop(device, recorder, () -> { }, new MissParking(space));
            int first = driver.add(new BufferChain(1).addWritable(missing, 16));
            int second = driver.add(new BufferChain(1).addWritable(BUFFERS, 16));
            driver.publish();
            assertEquals(DeviceLoop.PARKED, loop.run(64));
            assertEquals(0, loop.chains(), "nothing was consumed");
            int lookups = space.lookupsOfPage;
            // nothing changed: the loop does not touch the ring again
            assertEquals(DeviceLoop.PARKED, loop.run(64));
            assertEquals(lookups, space.lookupsOfPage);
            // a change that does not cover the address, while its request is unanswered, keeps it parked
            space.stamp++;
            assertEquals(DeviceLoop.PARKED, loop.run(64));
            assertEquals(lookups, space.lookupsOfPage);
            // answered and taken away again before the retry: the loop retries (and so asks again)
            space.requestPending = false;
            space.stamp++;
            assertEquals(DeviceLoop.PARKED, loop.run(64));
            assertEquals(lookups + 1, space.lookupsOfPage, "retried once, missed again, parked again");
            assertEquals(0, loop.chains(), "nothing was consumed by the retry that missed");
            assertEquals(DeviceLoop.PARKED, loop.run(64));
            assertEquals(lookups + 1, space.lookupsOfPage, "parked again until the next change");
            space.installed = true;
            space.stamp++;
            assertEquals(DeviceLoop.IDLE, loop.run(64));
            assertEquals(2, recorder.count);
            assertEquals(first, recorder.heads[0], "the head that missed is handled first");
            assertEquals(second, recorder.heads[1]);
        }
    }

    @Test
    void withoutMissParkingAMissIsThrown() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(0, 0x10000)) {
            MissingPage space = new MissingPage(memory, 0x8000);
            DriverQueue driver = DriverQueue.create(FEATURES, QUEUE_SIZE, memory, RINGS);
            DeviceQueue device = DeviceQueue.create(FEATURES, QUEUE_SIZE, RINGS, space);
            DeviceLoop loop = new DeviceLoop(device, new Recorder(), () -> { });
            driver.add(new BufferChain(1).addWritable(0x8000, 16));
            driver.publish();
            VirtqueueException e = assertThrows(VirtqueueException.class, () -> loop.run(64));
            assertEquals(RingError.TRANSLATION_MISS, e.error());
        }
    }
}

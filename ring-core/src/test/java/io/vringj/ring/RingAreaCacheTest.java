package io.vringj.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The per-queue ring-area translation cache: when the address space's epoch moves, a device queue
 * translates its ring areas again unless the address space vouches
 * ({@link AddressSpace#unchangedSince}) that nothing under any of them changed since it last
 * translated them; it asks with the epoch it last knew and each area's bus range.
 *
 * <pre>
 *   rings at bus 0 (descriptors), 0x1000 (driver area), 0x2000 (device area); buffers at 0x4000
 * </pre>
 */
class RingAreaCacheTest {
    private static final int QUEUE_SIZE = 8;
    private static final RingAddresses RINGS = new RingAddresses(0, 0x1000, 0x2000);
    private static final long BUFFERS = 0x4000;

    /** Identity, with an epoch the test moves and an answer to unchangedSince the test picks; counts ring translations. */
    static final class Space implements AddressSpace {
        final AddressSpace identity;
        long epoch;
        boolean vouch;
        int ringTranslations;
        final List<String> asked = new ArrayList<>();

        Space(GuestMemory memory) {
            identity = AddressSpace.identity(memory);
        }

        @Override
        public void translate(long busAddress, long length, Access access, TranslationSink sink)
            throws TranslationException {
            if (busAddress < BUFFERS) {
                ringTranslations++;
            }
            identity.translate(busAddress, length, access, sink);
        }

        @Override
        public long epoch() {
            return epoch;
        }

        @Override
        public boolean unchangedSince(long since, long busAddress, long length) {
            asked.add(since + ":" + Long.toHexString(busAddress) + "+" + length);
            return vouch;
        }
    }

    private static long features(boolean packed) {
        long f = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        return packed ? f | VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : f;
    }

    /** One request through driver and device; returns how many ring-area translations it took. */
    private static int trip(DriverQueue driver, DeviceQueue device, Space space) throws Exception {
        int before = space.ringTranslations;
        int head = driver.add(new BufferChain(1).addWritable(BUFFERS, 16));
        driver.publish();
        DescriptorChain chain = new DescriptorChain();
        assertTrue(device.pop(chain));
        device.addUsed(chain.head(), 16);
        device.publishUsed();
        assertEquals(head, driver.pollUsed());
        return space.ringTranslations - before;
    }

    @Test
    void anEpochStepTheAddressSpaceVouchesForKeepsTheRingAreasAndAsksOnceAboutEachArea() throws Exception {
        for (boolean packed : new boolean[] {false, true}) {
            try (GuestMemory memory = GuestMemory.ofShared(0, 0x10000)) {
                Space space = new Space(memory);
                DriverQueue driver = DriverQueue.create(features(packed), QUEUE_SIZE, memory, RINGS);
                DeviceQueue device = DeviceQueue.create(features(packed), QUEUE_SIZE, RINGS, space);
                assertEquals(0, trip(driver, device, space), "epoch unchanged: nothing translated again");
                space.epoch = 1;
                space.vouch = true;
                assertEquals(0, trip(driver, device, space), (packed ? "packed" : "split")
                    + ": the step left the rings alone, so they are not translated again");
                long descriptorBytes = packed ? PackedRing.descriptorRingSize(QUEUE_SIZE)
                    : SplitRing.descriptorTableSize(QUEUE_SIZE);
                long driverBytes = packed ? PackedRing.EVENT_SIZE : SplitRing.availRingSize(QUEUE_SIZE);
                long deviceBytes = packed ? PackedRing.EVENT_SIZE : SplitRing.usedRingSize(QUEUE_SIZE);
                assertEquals(List.of("0:0+" + descriptorBytes, "0:1000+" + driverBytes, "0:2000+" + deviceBytes),
                    space.asked, "asked once per area (the packed descriptor ring once), with the epoch last known");
                space.asked.clear();
                assertEquals(0, trip(driver, device, space), "the new epoch was taken as current");
                assertEquals(List.of(), space.asked);
            }
        }
    }

    @Test
    void anEpochStepTheAddressSpaceDoesNotVouchForTranslatesTheRingAreasAgain() throws Exception {
        for (boolean packed : new boolean[] {false, true}) {
            try (GuestMemory memory = GuestMemory.ofShared(0, 0x10000)) {
                Space space = new Space(memory);
                DriverQueue driver = DriverQueue.create(features(packed), QUEUE_SIZE, memory, RINGS);
                DeviceQueue device = DeviceQueue.create(features(packed), QUEUE_SIZE, RINGS, space);
                space.epoch = 1;
                space.vouch = false;
                // split: three areas; packed: the descriptor ring twice (read, write) and two event areas
                assertEquals(packed ? 4 : 3, trip(driver, device, space));
                space.epoch = 2;
                space.vouch = true;
                space.asked.clear();
                assertEquals(0, trip(driver, device, space));
                assertTrue(space.asked.get(0).startsWith("1:"), "asked since the epoch of the last translation: "
                    + space.asked);
            }
        }
    }
}

package io.vringj.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.PackedRing;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class PackedRingDumpTest {
    private static final long BASE = 0x1000_0000L;
    private static final RingAddresses RINGS = new RingAddresses(BASE, BASE + 0x1000, BASE + 0x2000);
    private static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
        | VirtioFeatures.bit(VirtioFeatures.RING_PACKED) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX)
        | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC);

    @Test
    void decodesLapBitsOfEveryDescriptorAndBothEventStructures() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(BASE, 0x10000)) {
            DriverQueue driver = DriverQueue.create(FEATURES, 3, memory, RINGS);
            DeviceQueue device = DeviceQueue.create(FEATURES, 3, RINGS, AddressSpace.identity(memory));
            BufferChain chain = new BufferChain(2).addReadable(BASE + 0x4000, 16).addWritable(BASE + 0x4100, 64);
            int id = driver.add(chain);
            driver.publish();
            driver.enableInterrupts();
            DescriptorChain popped = new DescriptorChain();
            assertTrue(device.pop(popped));
            device.addUsed(popped.head(), 8);
            device.publishUsed();

            String dump = PackedRingDump.dump(memory, RINGS, 3, driver, device);

            assertTrue(dump.startsWith("packed ring Q=3 at "), dump);
            // the used descriptor is written in place of the head, the second keeps the driver's flags
            assertTrue(dump.contains("  [0] addr=0x10004000 len=8 id=" + id + " flags=AVAIL|USED (used in lap 1)"), dump);
            assertTrue(dump.contains("  [1] addr=0x10004100 len=64 id=" + id + " flags=WRITE|AVAIL (available in lap 1)"),
                dump);
            assertTrue(dump.contains("  [2] addr=0x0 len=0 id=0 flags=0 (used in lap 0, or never written)   "
                + "<- device next avail"), dump);
            assertTrue(dump.contains("driver event suppression: flags=DESC desc_event={off=0, wrap=1}"), dump);
            assertTrue(dump.contains("device event suppression: flags=ENABLE desc_event={off=2, wrap=1}"), dump);
            assertTrue(dump.contains("(last avail 0x8002 = position 2, wrap 1)"), dump);
        }
    }

    @Test
    void printsIndirectTablesAndAreasOutsideGuestMemory() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(BASE, 0x10000)) {
            DriverQueue driver = DriverQueue.create(FEATURES, 2, memory, RINGS);
            BufferChain chain = new BufferChain(2).addReadable(BASE + 0x4000, 16).addWritable(BASE + 0x4100, 32);
            driver.writeIndirectTable(chain, memory.slice(BASE + 0x5000, 32));
            driver.addIndirect(chain, BASE + 0x5000);
            driver.publish();
            // a second descriptor pointing at a table outside guest memory, with a bit no flag has
            MemorySegment ring = memory.slice(BASE, PackedRing.descriptorRingSize(2));
            ring.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 16, 0x7000_0000L);
            ring.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 24, 48);
            ring.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 30,
                (short) (PackedRing.DESC_F_INDIRECT | PackedRing.DESC_F_USED | 0x40));

            String dump = PackedRingDump.dump(memory, RINGS, 2);

            assertTrue(dump.contains("  [0] addr=0x10005000 len=32 id=0 flags=INDIRECT|AVAIL (available in lap 1)\n"
                + "    indirect table, 2 entries:\n"
                + "    [0] addr=0x10004000 len=16 id=0 flags=0\n"
                + "    [1] addr=0x10004100 len=32 id=0 flags=WRITE\n"), dump);
            assertTrue(dump.contains("  [1] addr=0x70000000 len=48 id=0 flags=INDIRECT|USED|0x40 (available in lap 0)\n"
                + "    indirect table: (not in guest memory)\n"), dump);
            assertEquals(-1, dump.indexOf("device:"), "no device side given, none printed");
        }
        try (GuestMemory elsewhere = GuestMemory.ofShared(0x9000_0000L, 0x1000)) {
            String dump = PackedRingDump.dump(elsewhere, RINGS, 4);
            assertTrue(dump.contains("descriptor ring:\n  (not in guest memory)"), dump);
            assertTrue(dump.contains("driver event suppression: (not in guest memory)"), dump);
        }
    }

    @Test
    void namesEventFlagsIncludingReservedValues() {
        assertEquals("ENABLE", PackedRingDump.eventFlags(0));
        assertEquals("DISABLE", PackedRingDump.eventFlags(1));
        assertEquals("DESC", PackedRingDump.eventFlags(2));
        assertEquals("0x3(reserved)", PackedRingDump.eventFlags(3));
        assertEquals("0", PackedRingDump.descriptorFlags(0));
        assertEquals("NEXT|WRITE|INDIRECT|AVAIL|USED|0x8", PackedRingDump.descriptorFlags(0x808F));
    }
}

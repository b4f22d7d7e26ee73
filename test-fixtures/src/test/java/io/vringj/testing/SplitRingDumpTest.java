package io.vringj.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.VirtioFeatures;
import org.junit.jupiter.api.Test;

class SplitRingDumpTest {
    private static final RingAddresses RINGS = new RingAddresses(0x1000_0000L, 0x1000_1000L, 0x1000_2000L);

    @Test
    void printsDescriptorsIndirectTablesAndBothRingsInVirtioTerms() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(0x1000_0000L, 0x1_0000)) {
            long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC)
                | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX);
            DriverQueue driver = DriverQueue.create(features, 4, memory, RINGS, 65535);
            DeviceQueue device = DeviceQueue.create(features, 4, RINGS, AddressSpace.identity(memory), 65535);
            driver.add(new BufferChain(2).addReadable(0x1000_4000L, 16).addWritable(0x1000_5000L, 64));
            BufferChain indirect = new BufferChain(1).addWritable(0x1000_6000L, 8);
            driver.writeIndirectTable(indirect, memory.slice(0x1000_3000L, 16));
            driver.addIndirect(indirect, 0x1000_3000L);
            driver.publish();
            DescriptorChain chain = new DescriptorChain();
            device.pop(chain);
            device.addUsed(chain.head(), 5);
            device.publishUsed();
            device.disableNotifications();
            driver.disableInterrupts();

            String dump = SplitRingDump.dump(memory, RINGS, 4);

            assertEquals("""
                split ring Q=4 at RingAddresses[desc=0x10000000, driver=0x10001000, device=0x10002000]
                descriptor table:
                  [0] addr=0x10004000 len=16 flags=NEXT next=1
                  [1] addr=0x10005000 len=64 flags=WRITE next=0
                  [2] addr=0x10003000 len=16 flags=INDIRECT next=0
                    indirect table, 1 entries:
                    [0] addr=0x10006000 len=8 flags=WRITE next=0
                  [3] addr=0x0 len=0 flags=0 next=0
                avail: flags=0x1(NO_INTERRUPT) idx=1 ring=[2, 0, 0, 0] used_event=0
                used:  flags=0x1(NO_NOTIFY) idx=0 ring=[{id=0 len=0}, {id=0 len=0}, {id=0 len=0}, {id=0 len=5}] avail_event=0
                """, dump);
        }
    }

    @Test
    void saysWhenAnAreaIsNotInGuestMemory() {
        try (GuestMemory memory = GuestMemory.ofShared(0x1000_0000L, 0x1000)) {
            String dump = SplitRingDump.dump(memory, new RingAddresses(0x1000_0000L, 0x5000_0000L, 0x1000_0ff0L), 4);
            assertTrue(dump.contains("avail: (not in guest memory)"), dump);
            assertTrue(dump.contains("used:  (not in guest memory)"), dump);
        }
    }

    @Test
    void namesEveryDescriptorFlagAndShowsUnknownBits() {
        assertEquals("0", SplitRingDump.descriptorFlags(0));
        assertEquals("NEXT|WRITE|INDIRECT", SplitRingDump.descriptorFlags(7));
        assertEquals("WRITE|0x8000", SplitRingDump.descriptorFlags(0x8002));
    }
}

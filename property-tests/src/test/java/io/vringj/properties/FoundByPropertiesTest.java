package io.vringj.properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.SplitRing;
import io.vringj.ring.VirtioFeatures;
import org.junit.jupiter.api.Test;

/**
 * Rings the properties found breaking ring-core, shrunk and kept as plain tests so the fix
 * stays fixed whatever the random seed.
 */
class FoundByPropertiesTest {

    @Test
    void walksAnIndirectTableAtAnAddressThatIsNotEightByteAligned() throws Exception {
        // shrunk from the malicious-driver property: the device read the table with aligned
        // layouts and let an IllegalArgumentException escape from pop()
        try (GuestMemory memory = GuestMemory.ofShared(0x2000_0000L, 0x1_0000)) {
            long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC);
            RingAddresses rings = new RingAddresses(0x2000_0000L, 0x2000_1000L, 0x2000_2000L);
            DriverQueue driver = DriverQueue.create(features, 2, memory, rings);
            DeviceQueue device = DeviceQueue.create(features, 2, rings, AddressSpace.identity(memory));
            long table = 0x2000_3001L;
            BufferChain chain = new BufferChain(2).addReadable(0x2000_4000L, 16).addWritable(0x2000_5000L, 64);
            driver.writeIndirectTable(chain, memory.slice(table, 2 * SplitRing.DESC_SIZE));
            int head = driver.addIndirect(chain, table);
            driver.publish();

            DescriptorChain popped = new DescriptorChain();
            assertTrue(device.pop(popped), "the chain behind an odd-addressed indirect table is popped");
            assertEquals(head, popped.head());
            assertEquals(16, popped.readableLength());
            assertEquals(64, popped.writableLength());
            assertEquals(3, popped.descriptorCount(), "the indirect descriptor and the two in its table");
        }
    }
}

package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.SplitRing;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import org.junit.jupiter.api.Test;

/**
 * The steady-state request path allocates nothing: mapping and adding through
 * {@link DmaDriverQueue}, popping through a {@link DeviceIotlb} whose entries are present,
 * completing, and polling back with unmapping. (Indirect chains are left out: ring-core's
 * device side translates an indirect table into a fresh slice on every pop.)
 */
class AllocationFreeTest {
    private static final long GPA = 0x8000_0000L;
    private static final int Q = 64;

    private static long allocatedBytes() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean())
            .getThreadAllocatedBytes(Thread.currentThread().threadId());
    }

    @Test
    void theRequestPathThroughDmaOpsAndTheDeviceIotlbAllocatesNothing() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(GPA, 4 << 20)) {
            IommuDmaOps dma = new IommuDmaOps(new Iommu(memory, 0x1_0000_0000L, 1 << 20), IommuDmaOps.Mode.PASSTHROUGH,
                new BumpAllocator(memory, GPA, 1 << 20));
            DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
            iotlb.update(GPA, 4 << 20, GPA, Permission.RW);
            CoherentBuffer d = dma.allocCoherent(SplitRing.descriptorTableSize(Q));
            CoherentBuffer a = dma.allocCoherent(SplitRing.availRingSize(Q));
            CoherentBuffer u = dma.allocCoherent(SplitRing.usedRingSize(Q));
            CoherentBuffer t = dma.allocCoherent(16L * 3 * Q);
            DmaDriverQueue driver = new DmaDriverQueue(
                DriverQueue.create(DmaRingHarness.FEATURES, Q, d.memory(), a.memory(), u.memory()), dma, 3, t.memory());
            DeviceQueue device = DeviceQueue.create(DmaRingHarness.FEATURES, Q,
                new RingAddresses(d.busAddress(), a.busAddress(), u.busAddress()), new IotlbAddressSpace(iotlb));
            DeviceIotlb.Worker worker = iotlb.registerWorker();
            MemorySegment[] buffers = {memory.slice(GPA + 0x20_0000, 100), memory.slice(GPA + 0x21_0ff0, 64),
                memory.slice(GPA + 0x22_0000, 32)};
            MemorySegment scratch = MemorySegment.ofArray(new byte[256]);
            DescriptorChain chain = new DescriptorChain();
            Object token = new Object();

            long before = 0;
            long rounds = 0;
            for (int i = 0; i < 120_000; i++) {
                if (i == 20_000) {
                    before = allocatedBytes();
                }
                int head = driver.add(buffers, 2, 1, token);
                driver.publish();
                worker.enter();
                device.pop(chain);
                chain.copyFromReadable(0, scratch, 0, chain.readableLength());
                chain.copyToWritable(0, scratch, 0, 32);
                device.addUsed(chain.head(), 32);
                device.publishUsed();
                worker.exit();
                assertEquals(head, driver.pollUsed());
                rounds++;
            }
            long allocated = allocatedBytes() - before;
            assertEquals(120_000, rounds);
            // any per-request allocation costs at least 16 bytes a request (1.6 MB here); the
            // bound leaves room for one-off allocations of the runtime (JIT transitions) on this thread
            assertTrue(allocated < 100_000, "100,000 requests allocated " + allocated
                + " bytes on the request path: less than one byte a request was expected");
        }
    }
}

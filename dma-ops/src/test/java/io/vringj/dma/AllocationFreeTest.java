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
 * completing, and polling back with unmapping — every other request through an indirect table.
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
                int head = (i & 1) == 0 ? driver.add(buffers, 2, 1, token) : driver.addIndirect(buffers, 2, 1, token);
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

    /**
     * Per-request mapping behind a strict IOMMU, the device asking the IOMMU synchronously: every
     * request maps a fresh IOVA, so every pop misses in the device IOTLB and resolves, and every
     * unmap invalidates (moving the epoch, so the ring areas are translated again twice a
     * request). None of the device's side of it allocates. (The IOMMU is driven directly, as
     * IommuDmaOps's strict unmap does — clear, invalidate, free — to measure the IOTLB path alone.)
     */
    @Test
    void aMissResolvedSynchronouslyAndTheRingAreasTranslatedAgainAllocateNothing() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(GPA, 4 << 20)) {
            Iommu iommu = new Iommu(memory, 0x1_0000_0000L, 1 << 20);
            DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
            iommu.addDeviceTlb(iotlb::invalidate);
            long rings = GPA + 0x30_0000;
            iommu.identityMap(rings, 0x4000);
            RingAddresses addresses = new RingAddresses(rings, rings + 0x1000, rings + 0x2000);
            DriverQueue driver = DriverQueue.create(DmaRingHarness.FEATURES, Q, memory, addresses);
            DeviceQueue device = DeviceQueue.create(DmaRingHarness.FEATURES, Q, addresses, new IotlbAddressSpace(iotlb, iommu));
            long bufferGpa = GPA + 0x20_0000;
            io.vringj.ring.BufferChain request = new io.vringj.ring.BufferChain(1);
            DescriptorChain chain = new DescriptorChain();
            long missesBefore = 0;
            long before = 0;
            for (int i = 0; i < 60_000; i++) {
                if (i == 20_000) {
                    before = allocatedBytes();
                    missesBefore = iotlb.misses();
                }
                long bus = iommu.map(bufferGpa, 64, Permission.RO);
                int head = driver.add(request.clear().addReadable(bus, 64));
                driver.publish();
                assertEquals(DeviceQueue.POPPED, device.tryPop(chain));
                device.addUsed(chain.head(), 0);
                device.publishUsed();
                assertEquals(head, driver.pollUsed());
                iommu.clearEntries(bus, 64);
                iommu.invalidateDeviceTlbs(bus, 64);
                iommu.freeIova(bus, 64);
            }
            long allocated = allocatedBytes() - before;
            assertTrue(iotlb.misses() - missesBefore >= 40_000, "every request missed: " + (iotlb.misses() - missesBefore));
            assertTrue(allocated < 100_000, "40,000 requests that each missed allocated " + allocated + " bytes");
        }
    }

    /**
     * Message mode: a miss parks the queue and sends a MISS (through a sink that encodes it
     * without a message object); pops while parked, the UPDATE, the retry and the INVALIDATE that
     * takes the page away again allocate nothing.
     */
    @Test
    void aMissParkedAndRetriedInMessageModeAllocatesNothing() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(GPA, 4 << 20)) {
            DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
            long[] lastMiss = new long[2];
            iotlb.setMessageSink(new IotlbMessageSink() {
                @Override
                public void send(IotlbMessage message) {
                    throw new AssertionError("only MISSes are sent here: " + message);
                }

                @Override
                public void sendMiss(long iova, Permission permission) {
                    lastMiss[0] = iova;
                    lastMiss[1]++;
                }
            });
            long rings = GPA;
            iotlb.update(rings, 0x4000, rings, Permission.RW);
            RingAddresses addresses = new RingAddresses(rings, rings + 0x1000, rings + 0x2000);
            DriverQueue driver = DriverQueue.create(DmaRingHarness.FEATURES, Q, memory, addresses);
            ParkingDeviceQueue device = new ParkingDeviceQueue(
                DeviceQueue.create(DmaRingHarness.FEATURES, Q, addresses, new IotlbAddressSpace(iotlb)), iotlb);
            io.vringj.ring.BufferChain request = new io.vringj.ring.BufferChain(1);
            DescriptorChain chain = new DescriptorChain();
            long before = 0;
            long parksBefore = 0;
            long sentBefore = 0;
            for (int i = 0; i < 60_000; i++) {
                if (i == 20_000) {
                    before = allocatedBytes();
                    parksBefore = device.parks();
                    sentBefore = lastMiss[1];
                }
                // a buffer on a page the IOTLB does not hold: the device must miss
                long page = GPA + 0x10_0000 + (i & 255) * 0x1000L;
                int head = driver.add(request.clear().addReadable(page + 0x10, 64));
                driver.publish();
                assertEquals(ParkingDeviceQueue.PARKED, device.pop(chain));
                assertEquals(ParkingDeviceQueue.PARKED, device.pop(chain), "parked until the UPDATE");
                assertEquals(page + 0x10, lastMiss[0]);
                iotlb.update(page, 0x1000, page, Permission.RO);
                assertEquals(ParkingDeviceQueue.POPPED, device.pop(chain));
                device.queue().addUsed(chain.head(), 0);
                device.queue().publishUsed();
                assertEquals(head, driver.pollUsed());
                iotlb.invalidate(page, 0x1000);
            }
            long allocated = allocatedBytes() - before;
            assertEquals(40_000, device.parks() - parksBefore, "every request parked once");
            assertEquals(40_000, lastMiss[1] - sentBefore, "one MISS a request");
            assertTrue(allocated < 100_000, "40,000 parked requests allocated " + allocated + " bytes");
        }
    }

    @Test
    void strictAndLazyMapAndUnmapAllocateNothingOnceTheirIovasAreCached() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(GPA, 4 << 20)) {
            for (IommuDmaOps.Mode mode : new IommuDmaOps.Mode[] {IommuDmaOps.Mode.STRICT, IommuDmaOps.Mode.LAZY}) {
                Iommu iommu = new Iommu(memory, 0x1_0000_0000L, 64L << 20);
                long[] invalidated = new long[1];
                iommu.addDeviceTlb((iova, size) -> invalidated[0]++);
                IommuDmaOps dma = new IommuDmaOps(iommu, mode, null);
                MemorySegment[] buffers = {memory.slice(GPA + 0x1000, 64), memory.slice(GPA + 0x3ff0, 100),
                    memory.slice(GPA + 0x8000, 3 * 4096)};
                long[] bus = new long[3];
                DmaDirection[] directions = DmaDirection.values();
                long before = 0;
                for (int i = 0; i < 60_000; i++) {
                    if (i == 10_000) {
                        before = allocatedBytes();
                    }
                    for (int b = 0; b < 3; b++) {
                        bus[b] = dma.map(buffers[b], directions[b]);
                    }
                    for (int b = 2; b >= 0; b--) {
                        dma.unmap(bus[b], buffers[b].byteSize(), directions[b]);
                    }
                }
                long allocated = allocatedBytes() - before;
                assertTrue(invalidated[0] > 0, mode + ": the device IOTLB was invalidated");
                assertTrue(allocated < 100_000, mode + ": 150,000 maps and unmaps allocated " + allocated + " bytes");
                assertEquals(0, iommu.mappedPages());
            }
        }
    }

    /**
     * LAZY mode with the default flush queue of 256, requests completing out of order (a batch
     * of 256 in flight, the even ones retired first): every flush sorts, invalidates and frees its
     * ranges without allocating (a library sort allocates bookkeeping for input that comes in
     * runs, as a flush queue's keys then do).
     */
    @Test
    void lazyFlushesOfRangesRetiredOutOfOrderAllocateNothing() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(GPA, 4 << 20)) {
            Iommu iommu = new Iommu(memory, 0x1_0000_0000L, 64L << 20);
            long[] invalidated = new long[1];
            iommu.addDeviceTlb((iova, size) -> invalidated[0]++);
            IommuDmaOps dma = new IommuDmaOps(iommu, IommuDmaOps.Mode.LAZY, null);
            MemorySegment buffer = memory.slice(GPA + 0x1000, 64);
            long[] bus = new long[IommuDmaOps.DEFAULT_FLUSH_QUEUE_SIZE];
            long before = 0;
            long flushesBefore = 0;
            for (int cycle = 0; cycle < 2_400; cycle++) {
                if (cycle == 400) {
                    before = allocatedBytes();
                    flushesBefore = dma.flushes();
                }
                for (int i = 0; i < bus.length; i++) {
                    bus[i] = dma.map(buffer, DmaDirection.TO_DEVICE);
                }
                for (int parity = 0; parity < 2; parity++) {
                    for (int i = parity; i < bus.length; i += 2) {
                        dma.unmap(bus[i], 64, DmaDirection.TO_DEVICE);
                    }
                }
            }
            long allocated = allocatedBytes() - before;
            assertTrue(dma.flushes() - flushesBefore >= 2_000, "a flush per cycle: " + (dma.flushes() - flushesBefore));
            assertTrue(allocated < 100_000, (dma.flushes() - flushesBefore) + " flushes allocated " + allocated + " bytes");
        }
    }

    @Test
    void premappedRequestsAllocateNothing() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(GPA, 4 << 20)) {
            Iommu iommu = new Iommu(memory, 0x1_0000_0000L, 1 << 20);
            IommuDmaOps dma = new IommuDmaOps(iommu, IommuDmaOps.Mode.STRICT, new BumpAllocator(memory, GPA, 1 << 20));
            iommu.identityMap(GPA, 1 << 20);
            DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
            iommu.addDeviceTlb(iotlb::invalidate);
            CoherentBuffer d = dma.allocCoherent(SplitRing.descriptorTableSize(Q));
            CoherentBuffer a = dma.allocCoherent(SplitRing.availRingSize(Q));
            CoherentBuffer u = dma.allocCoherent(SplitRing.usedRingSize(Q));
            DmaDriverQueue driver = new DmaDriverQueue(
                DriverQueue.create(DmaRingHarness.FEATURES, Q, d.memory(), a.memory(), u.memory()), dma, 2);
            DeviceQueue device = DeviceQueue.create(DmaRingHarness.FEATURES, Q,
                new RingAddresses(d.busAddress(), a.busAddress(), u.busAddress()), new IotlbAddressSpace(iotlb,
                    iommu));
            DmaBufferPool pool = DmaBufferPool.map(dma, memory.slice(GPA + (2 << 20), 64 * 1024), 1024,
                DmaDirection.BIDIRECTIONAL);
            DmaBuffer[] request = new DmaBuffer[2];
            DescriptorChain chain = new DescriptorChain();
            MemorySegment scratch = MemorySegment.ofArray(new byte[256]);
            long before = 0;
            for (int i = 0; i < 120_000; i++) {
                if (i == 20_000) {
                    before = allocatedBytes();
                }
                request[0] = pool.take();
                request[1] = pool.take();
                request[0].setLength(100);
                int head = driver.addPremapped(request, 1, 1, request[0]);
                driver.publish();
                device.pop(chain);
                chain.copyFromReadable(0, scratch, 0, chain.readableLength());
                chain.copyToWritable(0, scratch, 0, 32);
                device.addUsed(chain.head(), 32);
                device.publishUsed();
                assertEquals(head, driver.pollUsed());
                pool.give(request[1]);
                pool.give((DmaBuffer) driver.usedToken());
            }
            long allocated = allocatedBytes() - before;
            assertTrue(allocated < 100_000, "100,000 premapped requests allocated " + allocated + " bytes");
            assertEquals(64 + 3, dma.liveMappings(), "the pool's mappings and the three ring areas only");
        }
    }
}

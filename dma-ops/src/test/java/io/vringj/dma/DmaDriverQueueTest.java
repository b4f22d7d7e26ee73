package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingError;
import io.vringj.ring.RingSizes;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.ring.SplitRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Set;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class DmaDriverQueueTest {
    private static final long BASE = 0x4000_0000L;
    private static final int Q = 8;

    private final GuestMemory memory = GuestMemory.ofShared(BASE, 1 << 20);
    private final RecordingDmaOps dma = new RecordingDmaOps(new DirectDmaOps(memory, new BumpAllocator(memory, BASE, 1 << 16)));

    @AfterEach
    void close() {
        memory.close();
    }

    /** Counts live mappings and can be told to fail the n-th map. */
    static final class RecordingDmaOps implements DmaOps {
        final DmaOps inner;
        final List<String> live = new ArrayList<>();
        int failAfter = Integer.MAX_VALUE;

        RecordingDmaOps(DmaOps inner) {
            this.inner = inner;
        }

        @Override
        public long map(MemorySegment buffer, DmaDirection direction) throws DmaMappingException {
            if (failAfter-- <= 0) {
                throw new DmaMappingException(DmaMappingException.Reason.NO_SPACE, "test says no");
            }
            long bus = inner.map(buffer, direction);
            live.add(bus + "/" + buffer.byteSize() + "/" + direction);
            return bus;
        }

        @Override
        public void unmap(long busAddress, long length, DmaDirection direction) {
            if (!live.remove(busAddress + "/" + length + "/" + direction)) {
                throw new IllegalArgumentException("unmap of 0x" + Long.toHexString(busAddress) + " not mapped");
            }
            inner.unmap(busAddress, length, direction);
        }

        @Override
        public void syncForCpu(long busAddress, long length, DmaDirection direction) {
            inner.syncForCpu(busAddress, length, direction);
        }

        @Override
        public void syncForDevice(long busAddress, long length, DmaDirection direction) {
            inner.syncForDevice(busAddress, length, direction);
        }

        @Override
        public CoherentBuffer allocCoherent(long size) throws DmaMappingException {
            return inner.allocCoherent(size);
        }

        @Override
        public void freeCoherent(CoherentBuffer buffer) {
            inner.freeCoherent(buffer);
        }
    }

    private RingAddresses rings;

    private DmaDriverQueue queue(boolean indirect) throws DmaMappingException {
        CoherentBuffer d = dma.allocCoherent(SplitRing.descriptorTableSize(Q));
        CoherentBuffer a = dma.allocCoherent(SplitRing.availRingSize(Q));
        CoherentBuffer u = dma.allocCoherent(SplitRing.usedRingSize(Q));
        rings = new RingAddresses(d.busAddress(), a.busAddress(), u.busAddress());
        DriverQueue ring = DriverQueue.create(DmaRingHarness.FEATURES, Q, d.memory(), a.memory(), u.memory());
        return new DmaDriverQueue(ring, dma, 3, indirect ? dma.allocCoherent(16 * 3 * Q).memory() : null);
    }

    private MemorySegment[] buffers() {
        return new MemorySegment[] {memory.slice(BASE + 0x20000, 100), memory.slice(BASE + 0x21000, 50),
            memory.slice(BASE + 0x22000, 64)};
    }

    @Test
    void mapFailurePartWayUnmapsEverythingAndLeavesTheRingUnchanged() throws Exception {
        DmaDriverQueue q = queue(true);
        for (int failAt = 0; failAt < 4; failAt++) {
            dma.failAfter = failAt;
            boolean indirect = failAt == 3; // the fourth map is the indirect table
            DmaMappingException e = assertThrows(DmaMappingException.class,
                () -> {
                    if (indirect) {
                        q.addIndirect(buffers(), 2, 1, "x");
                    } else {
                        q.add(buffers(), 2, 1, "x");
                    }
                });
            assertEquals(DmaMappingException.Reason.NO_SPACE, e.reason());
            assertEquals(List.of(), dma.live, "mappings left after a failure at map " + failAt);
            assertEquals(Q, q.queue().numFree());
            assertEquals(0, q.inFlight());
            assertFalse(q.publish(), "nothing was added, so nothing is published");
        }
    }

    @Test
    void noRoomMapsNothingAndReturnsNoRoom() throws Exception {
        DmaDriverQueue q = queue(false);
        MemorySegment[] one = {memory.slice(BASE + 0x30000, 8)};
        for (int i = 0; i < Q; i++) {
            assertTrue(q.add(one, 1, 0, i) >= 0);
        }
        int mapped = dma.live.size();
        assertEquals(DriverQueue.NO_ROOM, q.add(buffers(), 2, 1, "late"));
        assertEquals(mapped, dma.live.size(), "a NO_ROOM add leaves no mapping behind");
    }

    @Test
    void pollUsedUnmapsTheHeadsMappingsAndReturnsItsToken() throws Exception {
        DmaDriverQueue q = queue(true);
        MemorySegment[] b = buffers();
        b[0].fill((byte) 7);
        Object token = new Object();
        int head = q.addIndirect(b, 2, 1, token);
        assertEquals(4, dma.live.size(), "three buffers and the indirect table are mapped");
        q.publish();

        DeviceQueue device = DeviceQueue.create(DmaRingHarness.FEATURES, Q, rings, AddressSpace.identity(memory));
        DescriptorChain chain = new DescriptorChain();
        assertTrue(device.pop(chain));
        assertEquals(150, chain.readableLength());
        chain.copyToWritable(0, MemorySegment.ofArray(new byte[] {1, 2, 3}), 0, 3);
        device.addUsed(chain.head(), 3);
        device.publishUsed();

        assertEquals(head, q.pollUsed());
        assertSame(token, q.usedToken());
        assertEquals(3, q.usedLength());
        assertEquals(List.of(), dma.live);
        assertEquals(3, b[2].get(ValueLayout.JAVA_BYTE, 2));
        assertEquals(DriverQueue.NONE, q.pollUsed());
    }

    @Test
    void anInOrderBatchReturnedWithOneUsedEntryUnmapsEveryRequestAndHandsBackEachToken() throws Exception {
        long features = DmaRingHarness.FEATURES | VirtioFeatures.bit(VirtioFeatures.IN_ORDER);
        CoherentBuffer d = dma.allocCoherent(SplitRing.descriptorTableSize(Q));
        CoherentBuffer a = dma.allocCoherent(SplitRing.availRingSize(Q));
        CoherentBuffer u = dma.allocCoherent(SplitRing.usedRingSize(Q));
        RingAddresses addresses = new RingAddresses(d.busAddress(), a.busAddress(), u.busAddress());
        DmaDriverQueue q = new DmaDriverQueue(DriverQueue.create(features, Q, d.memory(), a.memory(), u.memory()), dma, 3);
        String[] tokens = {"a", "b", "c"};
        int[] heads = new int[3];
        for (int i = 0; i < 3; i++) {
            // read-only requests (a transmit): the device returns them with one used entry
            heads[i] = q.add(new MemorySegment[] {memory.slice(BASE + 0x20000 + 0x1000L * i, 64)}, 1, 0, tokens[i]);
        }
        q.publish();
        DeviceQueue device = DeviceQueue.create(features, Q, addresses, AddressSpace.identity(memory));
        DescriptorChain chain = new DescriptorChain();
        for (int i = 0; i < 3; i++) {
            assertTrue(device.pop(chain));
            device.addUsed(chain.head(), 0);
        }
        device.publishUsed();
        assertEquals(heads[2], u.memory().get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 4),
            "one used entry, naming the last");
        for (int i = 0; i < 3; i++) {
            assertEquals(heads[i], q.pollUsed());
            assertSame(tokens[i], q.usedToken());
            assertEquals(0, q.usedLength());
        }
        assertEquals(DriverQueue.NONE, q.pollUsed());
        assertEquals(List.of(), dma.live, "every request's buffer was unmapped");
    }

    @Test
    void aFullIovaWindowPartWayThroughAnAddLeavesNoMappingAndNoIovaBehind() throws Exception {
        Iommu iommu = new Iommu(memory, 0x1_0000_0000L, 4 * 4096L);
        IommuDmaOps iommuDma = new IommuDmaOps(iommu, IommuDmaOps.Mode.STRICT, null);
        DriverQueue ring = DriverQueue.create(DmaRingHarness.FEATURES, Q, memory, new RingAddresses(BASE + 0x40000,
            BASE + 0x41000, BASE + 0x42000));
        DmaDriverQueue q = new DmaDriverQueue(ring, iommuDma, 3);
        // two pages, then one, then two more: the third buffer does not fit in the 4-page window
        MemorySegment[] b = {memory.slice(BASE + 0x50000, 8192), memory.slice(BASE + 0x53000, 16),
            memory.slice(BASE + 0x54000, 8192)};
        DmaMappingException e = assertThrows(DmaMappingException.class, () -> q.add(b, 2, 1, null));
        assertEquals(DmaMappingException.Reason.NO_SPACE, e.reason());
        assertEquals(0, iommu.usedIovaPages(), "the IOVAs of the first two buffers were given back");
        assertEquals(0, iommu.mappedPages());
        assertEquals(0, iommuDma.liveMappings());
        assertEquals(Q, ring.numFree());
        assertTrue(q.add(new MemorySegment[] {b[0], b[1]}, 1, 1, null) >= 0, "the queue works afterwards");
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void detachUnusedAfterTheDeviceBrokeTheQueueHandsBackEveryRequestUnmapped(boolean packed) throws Exception {
        long features = packed ? DmaRingHarness.PACKED_FEATURES : DmaRingHarness.FEATURES;
        RingSizes sizes = RingSizes.of(features, Q);
        CoherentBuffer d = dma.allocCoherent(sizes.descriptorArea());
        CoherentBuffer a = dma.allocCoherent(sizes.driverArea());
        CoherentBuffer u = dma.allocCoherent(sizes.deviceArea());
        DmaDriverQueue q = new DmaDriverQueue(DriverQueue.create(features, Q, d.memory(), a.memory(), u.memory()), dma,
            3, dma.allocCoherent(16 * 3 * Q).memory());
        DmaBufferPool pool = DmaBufferPool.map(dma, memory.slice(BASE + 0x70000, 4096), 64, DmaDirection.BIDIRECTIONAL);
        int poolMappings = dma.live.size();
        Set<Object> tokens = new HashSet<>();
        q.add(buffers(), 2, 1, "mapped");
        q.addIndirect(buffers(), 2, 1, "indirect");
        DmaBuffer held = pool.take();
        q.addPremapped(new DmaBuffer[] {held}, 0, 1, "premapped");
        q.add(new MemorySegment[] {memory.slice(BASE + 0x30000, 8)}, 1, 0, null);
        q.publish();
        assertEquals(4, q.inFlight());
        assertEquals(poolMappings + 3 + 4 + 1, dma.live.size());

        DmaRingHarness.reportBogusUsedId(features, d.memory(), u.memory());
        VirtqueueException broken = assertThrows(VirtqueueException.class, q::pollUsed);
        assertEquals(RingError.USED_ID_NOT_IN_FLIGHT, broken.error());

        int detached = 0;
        boolean sawNull = false;
        int head;
        while ((head = q.detachUnused()) != DriverQueue.NONE) {
            assertTrue(head >= 0 && head < Q);
            assertEquals(0, q.usedLength());
            if (q.usedToken() == null) {
                sawNull = true;
            } else {
                assertTrue(tokens.add(q.usedToken()), "each token is handed back once");
            }
            detached++;
        }
        assertEquals(4, detached);
        assertEquals(Set.of("mapped", "indirect", "premapped"), tokens);
        assertTrue(sawNull);
        assertEquals(DriverQueue.NONE, q.detachUnused(), "nothing is handed back twice");
        assertEquals(poolMappings, dma.live.size(), "only the pool's own mappings are left");
        assertEquals(0, q.inFlight());
        assertFalse(held.inFlight(), "the premapped buffer is held by the caller again");
        pool.give(held);
        pool.close();
        assertEquals(List.of(), dma.live);
        IllegalStateException after = assertThrows(IllegalStateException.class, () -> q.add(buffers(), 2, 1, null));
        assertTrue(after.getMessage().contains("detached"), after.getMessage());
        assertThrows(IllegalStateException.class, q::pollUsed);
        assertThrows(IllegalStateException.class, q::publish);
    }

    @Test
    void detachUnusedOnAnIdleQueueHandsBackNothing() throws Exception {
        DmaDriverQueue q = queue(false);
        assertEquals(DriverQueue.NONE, q.detachUnused());
        assertTrue(q.isDetached());
        assertEquals(List.of(), dma.live);
    }

    @Test
    void indirectTableMemoryWithoutTheFeatureIsRefused() throws Exception {
        DriverQueue ring = DriverQueue.create(0, Q, memory, new RingAddresses(BASE + 0x40000, BASE + 0x41000,
            BASE + 0x42000));
        IllegalStateException e = assertThrows(IllegalStateException.class,
            () -> new DmaDriverQueue(ring, dma, 2, memory.slice(BASE + 0x60000, 4096)));
        assertTrue(e.getMessage().contains("INDIRECT_DESC"), e.getMessage());
    }

    @Test
    void rejectsRequestWithMoreBuffersThanMaxBuffers() throws Exception {
        DmaDriverQueue q = queue(false);
        MemorySegment[] four = {buffers()[0], buffers()[1], buffers()[2], buffers()[2]};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> q.add(four, 2, 2, null));
        assertTrue(e.getMessage().contains("4 buffers"), e.getMessage());
        assertEquals(List.of(), dma.live);
    }

    @Test
    void directDmaWithIdentityAddressSpaceMovesAMillionChainsIntact() throws Exception {
        try (GuestMemory big = GuestMemory.ofShared(BASE, 8 << 20)) {
            DirectDmaOps direct = new DirectDmaOps(big, new BumpAllocator(big, BASE, 1 << 20));
            DmaRingHarness.Result r = DmaRingHarness.run(big, BASE + (1 << 20), direct, 256, 1_000_000, true,
                new DmaRingHarness.Device() {
                    @Override
                    public DeviceQueue activate(RingAddresses rings) throws Exception {
                        return DeviceQueue.create(DmaRingHarness.FEATURES, 256, rings, AddressSpace.identity(big));
                    }

                    @Override
                    public int pop(DeviceQueue queue, DescriptorChain chain) throws Exception {
                        return queue.pop(chain) ? 1 : 0;
                    }
                });
            assertEquals(1_000_000, r.chains());
            assertEquals(500_000, r.indirect());
        }
    }

    @Test
    void directDmaWithIdentityAddressSpaceMovesAMillionChainsIntactOnThePackedRing() throws Exception {
        try (GuestMemory big = GuestMemory.ofShared(BASE, 8 << 20)) {
            DirectDmaOps direct = new DirectDmaOps(big, new BumpAllocator(big, BASE, 1 << 20));
            DmaRingHarness.Result r = DmaRingHarness.run(DmaRingHarness.PACKED_FEATURES, big, BASE + (1 << 20), direct, 256, 1_000_000, true,
                new DmaRingHarness.Device() {
                    @Override
                    public DeviceQueue activate(RingAddresses rings) throws Exception {
                        return DeviceQueue.create(DmaRingHarness.PACKED_FEATURES, 256, rings, AddressSpace.identity(big));
                    }

                    @Override
                    public int pop(DeviceQueue queue, DescriptorChain chain) throws Exception {
                        return queue.pop(chain) ? 1 : 0;
                    }
                });
            assertEquals(1_000_000, r.chains());
            assertEquals(500_000, r.indirect());
        }
    }
}

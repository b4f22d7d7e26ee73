package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingSizes;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class DmaBufferPoolTest {
    private static final long BASE = 0x4000_0000L;
    private static final long POOL_MEMORY = BASE + 0x80000;
    private static final int Q = 8;

    private final GuestMemory memory = GuestMemory.ofShared(BASE, 1 << 20);
    private final DmaDriverQueueTest.RecordingDmaOps dma =
        new DmaDriverQueueTest.RecordingDmaOps(new DirectDmaOps(memory, new BumpAllocator(memory, BASE, 1 << 16)));

    @AfterEach
    void close() {
        memory.close();
    }

    private DmaBufferPool pool(int buffers, long size, DmaDirection direction) throws DmaMappingException {
        return DmaBufferPool.map(dma, memory.slice(POOL_MEMORY, buffers * ((size + 63) & -64L)), size, direction);
    }

    private RingAddresses rings;

    private DmaDriverQueue queue(long features, DmaOps ops) throws DmaMappingException {
        RingSizes sizes = RingSizes.of(features, Q);
        CoherentBuffer d = ops.allocCoherent(sizes.descriptorArea());
        CoherentBuffer a = ops.allocCoherent(sizes.driverArea());
        CoherentBuffer u = ops.allocCoherent(sizes.deviceArea());
        rings = new RingAddresses(d.busAddress(), a.busAddress(), u.busAddress());
        return new DmaDriverQueue(DriverQueue.create(features, Q, d.memory(), a.memory(), u.memory()), ops, 2);
    }

    @Test
    void mapsEveryBufferOnceAndTakesInIndexOrderUntilExhausted() throws Exception {
        DmaBufferPool pool = pool(4, 100, DmaDirection.BIDIRECTIONAL);
        assertEquals(4, pool.size());
        assertEquals(4, dma.live.size(), "one mapping per buffer, made at once");
        for (int i = 0; i < 4; i++) {
            DmaBuffer b = pool.take();
            assertEquals(i, b.index());
            assertEquals(POOL_MEMORY + i * 128, b.busAddress(), "buffers are 64-byte aligned strides");
            assertEquals(100, b.length());
        }
        assertNull(pool.take(), "an empty pool is a null, not a wait");
        assertNull(pool.take());
        assertEquals(2, pool.exhausted());
        assertEquals(0, pool.available());
    }

    @Test
    void givingBackTwiceToAnotherPoolOrWhileInFlightIsRefused() throws Exception {
        DmaBufferPool pool = pool(2, 64, DmaDirection.BIDIRECTIONAL);
        DmaBufferPool other = DmaBufferPool.map(dma, memory.slice(POOL_MEMORY + 0x10000, 64), 64,
            DmaDirection.BIDIRECTIONAL);
        DmaBuffer b = pool.take();
        IllegalArgumentException wrongPool = assertThrows(IllegalArgumentException.class, () -> other.give(b));
        assertTrue(wrongPool.getMessage().contains("belongs to"), wrongPool.getMessage());
        pool.give(b);
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> pool.give(b));
        assertTrue(twice.getMessage().contains("given back twice"), twice.getMessage());
        assertEquals(2, pool.available());

        DmaDriverQueue q = queue(DmaRingHarness.FEATURES, dma);
        DmaBuffer c = pool.take();
        assertTrue(q.addPremapped(new DmaBuffer[] {c}, 1, 0, null) >= 0);
        IllegalStateException inFlight = assertThrows(IllegalStateException.class, () -> pool.give(c));
        assertTrue(inFlight.getMessage().contains("in flight"), inFlight.getMessage());
        assertThrows(IllegalStateException.class, () -> c.setLength(10));
        IllegalStateException closing = assertThrows(IllegalStateException.class, pool::close);
        assertTrue(closing.getMessage().contains("1 in flight"), closing.getMessage());
    }

    @Test
    void lengthsAreCheckedResetOnTakeAndMisuseIsNamed() throws Exception {
        DmaBufferPool pool = pool(1, 100, DmaDirection.TO_DEVICE);
        DmaDriverQueue q = queue(DmaRingHarness.FEATURES, dma);
        DmaBuffer b = pool.take();
        IllegalArgumentException zero = assertThrows(IllegalArgumentException.class, () -> b.setLength(0));
        assertTrue(zero.getMessage().contains("length 0 of buffer 0 is outside 1..100"), zero.getMessage());
        IllegalArgumentException over = assertThrows(IllegalArgumentException.class, () -> b.setLength(101));
        assertTrue(over.getMessage().contains("length 101 of buffer 0 is outside 1..100"), over.getMessage());
        assertEquals(100, b.length(), "a refused length leaves the old one");
        b.setLength(7);
        pool.give(b);
        assertSame(b, pool.take());
        assertEquals(100, b.length(), "take resets the length to the capacity");
        b.setLength(7);
        assertTrue(q.addPremapped(new DmaBuffer[] {b}, 1, 0, null) >= 0);
        IllegalStateException fixed = assertThrows(IllegalStateException.class, () -> b.setLength(10));
        assertTrue(fixed.getMessage().contains("is in flight; its length is fixed"), fixed.getMessage());
        assertEquals(7, b.length());
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
            () -> q.addPremapped(new DmaBuffer[] {null}, 1, 0, null));
        assertTrue(none.getMessage().contains("buffer 0 is null"), none.getMessage());
        IllegalArgumentException counts = assertThrows(IllegalArgumentException.class,
            () -> q.addPremapped(new DmaBuffer[] {b}, -1, 1, null));
        assertTrue(counts.getMessage().contains("must not be negative"), counts.getMessage());
        IllegalArgumentException tooMany = assertThrows(IllegalArgumentException.class,
            () -> q.addPremapped(new DmaBuffer[] {b, b, b}, 3, 0, null));
        assertTrue(tooMany.getMessage().contains("request of 3 buffers; it must have 1..2"), tooMany.getMessage());
        IllegalArgumentException shortArray = assertThrows(IllegalArgumentException.class,
            () -> q.addPremapped(new DmaBuffer[] {b}, 1, 1, null));
        assertTrue(shortArray.getMessage().contains("buffers array holds 1 entries; 2 were announced"),
            shortArray.getMessage());
        assertEquals(DriverQueue.NONE, q.pollUsed(), "nothing used yet");
        assertEquals(0, q.detachUnused());
        assertSame(null, q.usedToken());
        IllegalStateException detached = assertThrows(IllegalStateException.class,
            () -> q.addPremapped(new DmaBuffer[] {b}, 1, 0, null));
        assertTrue(detached.getMessage().contains("was detached"), detached.getMessage());
        pool.give(b);
        pool.close();
        IllegalStateException closed = assertThrows(IllegalStateException.class, pool::take);
        assertTrue(closed.getMessage().contains("is closed"), closed.getMessage());
    }

    /**
     * The device fills the writable part in order, so a bounced writable buffer is synced for the
     * CPU only for the bytes that reached it, counting the bytes earlier unbounced buffers took.
     */
    @ParameterizedTest
    @ValueSource(longs = {64, 100})
    void aBouncedWritableBufferIsSyncedOnlyForTheBytesThatReachedIt(long used) throws Exception {
        long bouncedFrom = POOL_MEMORY + 0x10000;
        List<String> synced = new java.util.ArrayList<>();
        DmaOps inner = new DirectDmaOps(memory, new BumpAllocator(memory, BASE, 1 << 16));
        DmaOps ops = new DmaOps() {
            @Override
            public long map(MemorySegment buffer, DmaDirection direction) throws DmaMappingException {
                return inner.map(buffer, direction);
            }

            @Override
            public void unmap(long busAddress, long length, DmaDirection direction) {
                inner.unmap(busAddress, length, direction);
            }

            @Override
            public void syncForCpu(long busAddress, long length, DmaDirection direction) {
                synced.add(Long.toHexString(busAddress) + "+" + length);
            }

            @Override
            public void syncForDevice(long busAddress, long length, DmaDirection direction) {
            }

            @Override
            public boolean needsSync(long busAddress) {
                return busAddress >= bouncedFrom;
            }

            @Override
            public CoherentBuffer allocCoherent(long size) throws DmaMappingException {
                return inner.allocCoherent(size);
            }

            @Override
            public void freeCoherent(CoherentBuffer b) {
                inner.freeCoherent(b);
            }
        };
        DmaBufferPool direct = DmaBufferPool.map(ops, memory.slice(POOL_MEMORY, 64), 64, DmaDirection.FROM_DEVICE);
        DmaBufferPool bounced = DmaBufferPool.map(ops, memory.slice(bouncedFrom, 64), 64, DmaDirection.FROM_DEVICE);
        DmaDriverQueue q = queue(DmaRingHarness.FEATURES, ops);
        DeviceQueue device = DeviceQueue.create(DmaRingHarness.FEATURES, Q, rings, AddressSpace.identity(memory));
        int head = q.addPremapped(new DmaBuffer[] {direct.take(), bounced.take()}, 0, 2, null);
        q.publish();
        DescriptorChain chain = new DescriptorChain();
        assertTrue(device.pop(chain));
        device.addUsed(chain.head(), used);
        device.publishUsed();
        assertEquals(head, q.pollUsed());
        // the first 64 bytes went to the unbounced buffer; only what is left reached the bounced one
        assertEquals(used > 64 ? List.of(Long.toHexString(bouncedFrom) + "+" + (used - 64)) : List.of(), synced);
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void premappedRequestsMapNothingAndTheDeviceSeesAndWritesTheBuffers(boolean packed) throws Exception {
        long features = packed ? DmaRingHarness.PACKED_FEATURES : DmaRingHarness.FEATURES;
        DmaBufferPool out = pool(2, 256, DmaDirection.TO_DEVICE);
        DmaBufferPool in = DmaBufferPool.map(dma, memory.slice(POOL_MEMORY + 0x10000, 512), 256,
            DmaDirection.FROM_DEVICE);
        DmaDriverQueue q = queue(features, dma);
        DeviceQueue device = DeviceQueue.create(features, Q, rings, AddressSpace.identity(memory));
        List<String> mappedAtStart = List.copyOf(dma.live);
        DescriptorChain chain = new DescriptorChain();
        DmaBuffer[] request = new DmaBuffer[2];
        for (int round = 0; round < 3 * Q; round++) {
            request[0] = out.take();
            request[1] = in.take();
            request[0].segment().set(ValueLayout.JAVA_LONG, 0, round);
            request[0].setLength(8);
            request[1].setLength(16);
            String token = "r" + round;
            int head = q.addPremapped(request, 1, 1, token);
            assertTrue(head >= 0);
            assertTrue(request[0].inFlight() && request[1].inFlight());
            q.publish();
            assertTrue(device.pop(chain));
            assertEquals(8, chain.readableLength());
            assertEquals(16, chain.writableLength());
            MemorySegment reply = MemorySegment.ofArray(new long[] {round * 3L});
            chain.copyToWritable(0, reply, 0, 8);
            device.addUsed(chain.head(), 8);
            device.publishUsed();
            assertEquals(head, q.pollUsed());
            assertSame(token, q.usedToken());
            assertEquals(8, q.usedLength());
            assertEquals(round * 3L, request[1].segment().get(ValueLayout.JAVA_LONG, 0));
            assertFalse(request[1].inFlight(), "the caller holds the buffers again");
            out.give(request[0]);
            in.give(request[1]);
        }
        assertEquals(4, mappedAtStart.size());
        assertEquals(mappedAtStart, dma.live, "no map or unmap per request");
        out.close();
        in.close();
        assertEquals(List.of(), dma.live, "closing the pools unmapped their buffers");
    }

    @Test
    void anOfferThatBreaksARuleChangesNothing() throws Exception {
        DmaBufferPool out = pool(2, 64, DmaDirection.TO_DEVICE);
        DmaBufferPool both = DmaBufferPool.map(dma, memory.slice(POOL_MEMORY + 0x10000, 256), 64,
            DmaDirection.BIDIRECTIONAL);
        DmaDriverQueue q = queue(DmaRingHarness.FEATURES, dma);
        DmaBuffer a = out.take();
        DmaBuffer b = both.take();
        DmaBuffer notTaken = both.buffer(3);

        IllegalArgumentException role = assertThrows(IllegalArgumentException.class,
            () -> q.addPremapped(new DmaBuffer[] {b, a}, 1, 1, null));
        assertTrue(role.getMessage().contains("mapped TO_DEVICE but offered device-writable"), role.getMessage());
        IllegalStateException inPool = assertThrows(IllegalStateException.class,
            () -> q.addPremapped(new DmaBuffer[] {a, notTaken}, 1, 1, null));
        assertTrue(inPool.getMessage().contains("in its pool"), inPool.getMessage());
        IllegalStateException twice = assertThrows(IllegalStateException.class,
            () -> q.addPremapped(new DmaBuffer[] {b, b}, 1, 1, null));
        assertTrue(twice.getMessage().contains("in flight"), twice.getMessage());
        assertFalse(a.inFlight() || b.inFlight(), "a refused offer leaves the buffers held");
        assertEquals(Q, q.queue().numFree());
        assertEquals(0, q.inFlight());

        DmaOps otherOps = new DirectDmaOps(memory);
        DmaDriverQueue foreign = new DmaDriverQueue(DriverQueue.create(DmaRingHarness.FEATURES, Q, memory,
            new RingAddresses(BASE + 0x40000, BASE + 0x41000, BASE + 0x42000)), otherOps, 2);
        IllegalArgumentException ops = assertThrows(IllegalArgumentException.class,
            () -> foreign.addPremapped(new DmaBuffer[] {a}, 1, 0, null));
        assertTrue(ops.getMessage().contains("was mapped through"), ops.getMessage());

        assertTrue(q.addPremapped(new DmaBuffer[] {a, b}, 1, 1, null) >= 0, "the same buffers, offered correctly");
    }

    /**
     * A buffer's ops and its pool's direction are checked by one compare per buffer (the ops the
     * pool's direction allows for the role, or none); each way of breaking them is still refused
     * with its own rule, the foreign ops named before the direction.
     */
    @Test
    void eachRoleTheDirectionForbidsAndForeignOpsAreRefusedByName() throws Exception {
        DmaBufferPool in = pool(2, 64, DmaDirection.FROM_DEVICE);
        DmaBufferPool both = DmaBufferPool.map(dma, memory.slice(POOL_MEMORY + 0x10000, 256), 64,
            DmaDirection.BIDIRECTIONAL);
        DmaDriverQueue q = queue(DmaRingHarness.FEATURES, dma);
        DmaBuffer w = in.take();

        IllegalArgumentException readable = assertThrows(IllegalArgumentException.class,
            () -> q.addPremapped(new DmaBuffer[] {w}, 1, 0, null));
        assertEquals("buffer 0 (" + w + ") is mapped FROM_DEVICE but offered device-readable", readable.getMessage());

        DmaOps otherOps = new DirectDmaOps(memory);
        DmaDriverQueue foreign = new DmaDriverQueue(DriverQueue.create(DmaRingHarness.FEATURES, Q, memory,
            new RingAddresses(BASE + 0x40000, BASE + 0x41000, BASE + 0x42000)), otherOps, 2);
        // wrong ops and wrong role at once: the ops are named
        IllegalArgumentException ops = assertThrows(IllegalArgumentException.class,
            () -> foreign.addPremapped(new DmaBuffer[] {w}, 1, 0, null));
        assertEquals("buffer 0 (" + w + ") was mapped through " + dma + "; this queue maps through " + otherOps,
            ops.getMessage());
        // the right role through foreign ops: still the ops
        IllegalArgumentException opsWritable = assertThrows(IllegalArgumentException.class,
            () -> foreign.addPremapped(new DmaBuffer[] {w}, 0, 1, null));
        assertEquals(ops.getMessage(), opsWritable.getMessage());
        assertFalse(w.inFlight(), "every refusal left the buffer held");
        assertEquals(0, q.inFlight() + foreign.inFlight());

        // what each direction allows goes through: FROM_DEVICE writable, BIDIRECTIONAL either way
        DmaBuffer r = both.take();
        DmaBuffer rw = both.take();
        int head = q.addPremapped(new DmaBuffer[] {r, w}, 1, 1, null);
        assertTrue(head >= 0);
        assertTrue(q.addPremapped(new DmaBuffer[] {rw}, 0, 1, null) >= 0);
        assertTrue(r.inFlight() && w.inFlight() && rw.inFlight());
    }

    @Test
    void aMapFailurePartWayUnmapsTheBuffersMappedSoFar() {
        dma.failAfter = 3;
        assertThrows(DmaMappingException.class, () -> pool(5, 64, DmaDirection.FROM_DEVICE));
        assertEquals(List.of(), dma.live);
    }

    @Test
    void aPoolOverTheIommuMapsOnceAndClosingGivesEveryIovaBack() throws Exception {
        Iommu iommu = new Iommu(memory, 0x1_0000_0000L, 1 << 20);
        IommuDmaOps strict = new IommuDmaOps(iommu, IommuDmaOps.Mode.STRICT, null);
        DmaBufferPool pool = DmaBufferPool.map(strict, memory.slice(POOL_MEMORY, 8 * 4096), 4096,
            DmaDirection.BIDIRECTIONAL);
        assertEquals(8, strict.liveMappings());
        assertEquals(8, iommu.mappedPages());
        Set<Long> bus = new HashSet<>();
        for (int i = 0; i < 8; i++) {
            DmaBuffer b = pool.buffer(i);
            assertEquals(memory.guestPhysicalAddressOf(b.segment()), iommu.translate(b.busAddress()));
            assertTrue(bus.add(b.busAddress()));
        }
        pool.close();
        assertEquals(0, strict.liveMappings());
        assertEquals(0, iommu.mappedPages());
        assertThrows(IllegalStateException.class, pool::take);
    }

    @Test
    void aCoherentPoolTakesWholeBuffersFromChunksOfAtMost256KiB() throws Exception {
        DmaOps ops = new DirectDmaOps(memory, new BumpAllocator(memory, BASE, 1 << 20));
        DmaBufferPool pool = DmaBufferPool.allocate(ops, 100_000, 5);
        assertTrue(pool.isCoherent());
        assertEquals(DmaDirection.BIDIRECTIONAL, pool.direction());
        long[] starts = new long[5];
        for (int i = 0; i < 5; i++) {
            DmaBuffer b = pool.take();
            assertNotNull(b);
            assertEquals(memory.guestPhysicalAddressOf(b.segment()), b.busAddress(), "direct: bus = guest-physical");
            assertEquals(0, b.busAddress() % DmaBufferPool.ALIGNMENT);
            starts[i] = b.busAddress();
        }
        // two buffers per 256 KiB chunk: buffers 0/1, 2/3 share a chunk, 4 is alone in the third
        assertEquals(starts[0] + 100_032, starts[1]);
        assertEquals(starts[2] + 100_032, starts[3]);
        assertTrue(starts[2] >= starts[1] + 100_000 && starts[4] >= starts[3] + 100_000);
        IllegalArgumentException tooLarge = assertThrows(IllegalArgumentException.class,
            () -> DmaBufferPool.allocate(ops, DmaBufferPool.COHERENT_CHUNK + 1, 1));
        assertTrue(tooLarge.getMessage().contains("coherent buffer size"), tooLarge.getMessage());
    }
}

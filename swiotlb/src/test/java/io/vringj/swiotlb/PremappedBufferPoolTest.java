package io.vringj.swiotlb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.dma.CoherentBuffer;
import io.vringj.dma.DmaBuffer;
import io.vringj.dma.DmaBufferPool;
import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaDriverQueue;
import io.vringj.memory.RegionKind;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingSizes;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Premapped buffers in a protected guest: a pool carved from coherent memory lives in the shared
 * region and needs no bounce at all; a pool mapped from private memory is bounced once and then
 * synced per request, and still moves the right bytes both ways.
 */
class PremappedBufferPoolTest {
    private static final long SPLIT = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
        | VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM);
    private static final long PACKED = SPLIT | VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
    private static final int Q = 16;
    private static final int ROUNDS = 100;

    private record Ring(DmaDriverQueue driver, DeviceQueue device) {
        static Ring of(long features, ProtectedGuest guest) throws Exception {
            SwiotlbDmaOps dma = guest.dmaOps();
            RingSizes sizes = RingSizes.of(features, Q);
            CoherentBuffer d = dma.allocCoherent(sizes.descriptorArea());
            CoherentBuffer a = dma.allocCoherent(sizes.driverArea());
            CoherentBuffer u = dma.allocCoherent(sizes.deviceArea());
            DmaDriverQueue driver = new DmaDriverQueue(DriverQueue.create(features, Q, d.memory(), a.memory(),
                u.memory()), dma, 2);
            DeviceQueue device = DeviceQueue.create(features, Q, new RingAddresses(d.busAddress(), a.busAddress(),
                u.busAddress()), guest.deviceAddressSpace());
            return new Ring(driver, device);
        }

        /** One request: the device checks the readable stamp and writes {@code reply} bytes back. */
        void trip(DmaBuffer out, DmaBuffer in, long stamp, int reply) throws Exception {
            out.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0, stamp);
            out.setLength(64);
            int head = driver.addPremapped(new DmaBuffer[] {out, in}, 1, 1, stamp);
            assertTrue(head >= 0);
            driver.publish();
            DescriptorChain chain = new DescriptorChain();
            assertTrue(device.pop(chain));
            MemorySegment seen = MemorySegment.ofArray(new long[8]);
            chain.copyFromReadable(0, seen, 0, 64);
            assertEquals(stamp, seen.get(ValueLayout.JAVA_LONG, 0), "the device sees what the CPU wrote");
            MemorySegment answer = MemorySegment.ofArray(new byte[reply]);
            answer.fill((byte) stamp);
            chain.copyToWritable(0, answer, 0, reply);
            device.addUsed(chain.head(), reply);
            device.publishUsed();
            assertEquals(head, driver.pollUsed());
            assertEquals(stamp, driver.usedToken());
            assertEquals(reply, driver.usedLength());
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aCoherentPoolLivesInTheSharedRegionAndBouncesNothing(boolean packed) throws Exception {
        try (ProtectedGuest guest = ProtectedGuest.builder().secureMemory(0, 1 << 20).bouncePoolSize(1 << 20)
            .build()) {
            Ring ring = Ring.of(packed ? PACKED : SPLIT, guest);
            DmaBufferPool pool = DmaBufferPool.allocate(guest.dmaOps(), 2048, 2 * Q);
            DmaBuffer probe = pool.buffer(0);
            assertEquals(RegionKind.SHARED, guest.memory().region(guest.memory().regionIndexOf(probe.busAddress(), 1))
                .kind());
            SwiotlbStatistics before = guest.bouncePool().statistics();
            for (int round = 1; round <= ROUNDS; round++) {
                DmaBuffer out = pool.take();
                DmaBuffer in = pool.take();
                ring.trip(out, in, round, 100);
                assertEquals((byte) round, in.segment().get(ValueLayout.JAVA_BYTE, 99));
                pool.give(out);
                pool.give(in);
            }
            SwiotlbStatistics after = guest.bouncePool().statistics();
            assertEquals(before.bytesToDevice(), after.bytesToDevice(), "no byte was bounced");
            assertEquals(before.bytesFromDevice(), after.bytesFromDevice());
            assertEquals(0, after.slotsInUse());
            pool.close();
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aPoolMappedFromPrivateMemoryIsBouncedOnceAndSyncedPerRequest(boolean packed) throws Exception {
        try (ProtectedGuest guest = ProtectedGuest.builder().secureMemory(0, 1 << 20).bouncePoolSize(1 << 20)
            .build()) {
            Ring ring = Ring.of(packed ? PACKED : SPLIT, guest);
            DmaBufferPool pool = DmaBufferPool.map(guest.dmaOps(), guest.secureMemory().asSlice(0, 4 * 4096), 4096,
                DmaDirection.BIDIRECTIONAL);
            SwiotlbPool bounce = guest.bouncePool();
            assertEquals(4, bounce.liveMappings(), "each buffer is bounced once, when the pool is built");
            long copiedIn = bounce.statistics().bytesToDevice();
            for (int round = 1; round <= ROUNDS; round++) {
                DmaBuffer out = pool.take();
                DmaBuffer in = pool.take();
                in.segment().fill((byte) 0x77);
                ring.trip(out, in, round, 100);
                assertEquals((byte) round, in.segment().get(ValueLayout.JAVA_BYTE, 99), "synced for the CPU");
                assertEquals((byte) 0x77, in.segment().get(ValueLayout.JAVA_BYTE, 100),
                    "only the used length is copied back");
                pool.give(out);
                pool.give(in);
            }
            SwiotlbStatistics after = bounce.statistics();
            assertEquals(copiedIn + ROUNDS * 64L, after.bytesToDevice(), "one sync of the offered bytes per request");
            assertEquals(ROUNDS * 100L, after.bytesFromDevice(), "one sync of the used bytes per request");
            assertEquals(4, after.liveMappings());
            pool.close();
            assertEquals(0, bounce.liveMappings());
            assertFalse(bounce.statistics().slotsInUse() > 0);
        }
    }
}

package io.vringj.swiotlb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.dma.CoherentBuffer;
import io.vringj.dma.DmaDriverQueue;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.PackedRing;
import io.vringj.ring.RingError;
import io.vringj.ring.RingSizes;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.BitSet;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A device that breaks the queue while every bounce slot is in flight: without
 * {@link DmaDriverQueue#detachUnused()} the slots stay taken for good (the 4 MiB pool's 2048
 * slots were stranded); with it every request comes back, bounced as Linux's unmap does, and the
 * pool is idle again.
 */
class DetachUnusedTest {
    private static final long SPLIT = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
        | VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM);
    private static final long PACKED = SPLIT | VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
    private static final int Q = 512;
    private static final int REQUESTS = 256;
    /** One readable and one writable buffer of 8 KiB (4 slots each): 256 requests fill 2048 slots. */
    private static final long BUFFER = 8192;
    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void detachingAfterABrokenDeviceFreesEveryBounceSlotOfA4MiBPool(boolean packed) throws Exception {
        long features = packed ? PACKED : SPLIT;
        try (ProtectedGuest guest = ProtectedGuest.builder().secureMemory(0, 2 * REQUESTS * BUFFER + (1 << 20))
            .bouncePoolSize(4L << 20).areas(1).build()) {
            SwiotlbDmaOps dma = guest.dmaOps();
            SwiotlbPool pool = guest.bouncePool();
            assertEquals(2048, pool.slotsTotal());
            RingSizes sizes = RingSizes.of(features, Q);
            CoherentBuffer desc = dma.allocCoherent(sizes.descriptorArea());
            CoherentBuffer avail = dma.allocCoherent(sizes.driverArea());
            CoherentBuffer used = dma.allocCoherent(sizes.deviceArea());
            DmaDriverQueue queue = new DmaDriverQueue(DriverQueue.create(features, Q, desc.memory(), avail.memory(),
                used.memory()), dma, 2);
            GuestMemory memory = guest.memory();
            MemorySegment[][] requests = new MemorySegment[REQUESTS][];
            for (int r = 0; r < REQUESTS; r++) {
                MemorySegment out = memory.slice(2 * r * BUFFER, BUFFER);
                MemorySegment in = memory.slice((2 * r + 1) * BUFFER, BUFFER);
                out.fill((byte) r);
                in.fill((byte) 0x11);
                requests[r] = new MemorySegment[] {out, in};
                assertTrue(queue.add(requests[r], 1, 1, r) >= 0);
            }
            queue.publish();
            assertEquals(2048, pool.slotsInUse(), "every slot is in flight");
            assertEquals(512, pool.liveMappings());

            // the device wrote into request 7's writable bounce slots before it went bad: the
            // bounce address of that buffer is found by its bytes (the map-time copy put 0x11 there)
            MemorySegment shared = guest.sharedRegion().segment();
            long writable7 = findWritableSlot(shared, pool, 7);
            shared.set(ValueLayout.JAVA_LONG_UNALIGNED, writable7, 0x0D0E_0A0D_BEEFL);

            breakQueue(features, desc.memory(), used.memory());
            VirtqueueException broken = assertThrows(VirtqueueException.class, queue::pollUsed);
            assertEquals(RingError.USED_ID_NOT_IN_FLIGHT, broken.error());
            assertEquals(2048, pool.slotsInUse(), "a broken queue alone gives nothing back");

            BitSet tokens = new BitSet();
            while (queue.detachUnused() != DriverQueue.NONE) {
                int token = (Integer) queue.usedToken();
                assertTrue(!tokens.get(token), "token " + token + " handed back twice");
                tokens.set(token);
            }
            assertEquals(REQUESTS, tokens.cardinality());
            SwiotlbStatistics stats = pool.statistics();
            assertEquals(0, stats.slotsInUse());
            assertEquals(0, stats.liveMappings());
            assertEquals(2048, stats.highWaterMark());
            assertEquals(0, queue.inFlight());
            // unmap copied the bounce slots back, as Linux's does: the device's bytes for request 7,
            // the caller's own bytes (from the map-time copy) everywhere else
            assertEquals(0x0D0E_0A0D_BEEFL, requests[7][1].get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
            assertEquals(0x1111_1111_1111_1111L, requests[8][1].get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
            long bus = pool.map(requests[0][0], io.vringj.dma.DmaDirection.TO_DEVICE);
            pool.unmap(bus, BUFFER, io.vringj.dma.DmaDirection.TO_DEVICE);
        }
    }

    /** The offset in the shared region of the bounce slots holding request {@code r}'s readable bytes, plus 8 KiB. */
    private static long findWritableSlot(MemorySegment shared, SwiotlbPool pool, int r) {
        long poolOffset = pool.base() - ProtectedGuest.DEFAULT_SHARED_BASE;
        for (long off = poolOffset; off < poolOffset + pool.size(); off += BUFFER) {
            if (shared.get(ValueLayout.JAVA_BYTE, off) == (byte) r
                && shared.get(ValueLayout.JAVA_BYTE, off + BUFFER) == 0x11) {
                return off + BUFFER;
            }
        }
        throw new AssertionError("request " + r + "'s bounce slots were not found");
    }

    /** Writes one used entry whose id the driver does not have in flight. */
    private static void breakQueue(long features, MemorySegment desc, MemorySegment used) {
        if (VirtioFeatures.has(features, VirtioFeatures.RING_PACKED)) {
            desc.set(LE16, 12, (short) 0x7FFF);
            desc.set(LE16, 14, (short) (PackedRing.DESC_F_AVAIL | PackedRing.DESC_F_USED));
        } else {
            used.set(LE32, 4, 70_000);
            used.set(LE16, 2, (short) 1);
        }
    }
}

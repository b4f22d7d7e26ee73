package io.vringj.swiotlb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.dma.CoherentBuffer;
import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.DmaDriverQueue;
import io.vringj.dma.DmaMappingException;
import io.vringj.dma.DmaOps;
import io.vringj.dma.Iommu;
import io.vringj.dma.IommuDmaOps;
import io.vringj.dma.IotlbAddressSpace;
import io.vringj.memory.AddressSpace;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingError;
import io.vringj.ring.RingSizes;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.testing.RecordingAddressSpace;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.junit.jupiter.api.Test;

/**
 * A protected guest end to end: a driver thread offers requests from SECURE memory through the
 * dma-ops glue ({@link DmaDriverQueue}) and the force-bounce {@link SwiotlbDmaOps} (every
 * fourth through an indirect table, also in SECURE memory and bounced); the rings come from the
 * restricted pool; a device thread, which reaches memory only through an instrumented protected
 * address space, echoes each request into its reply buffer.
 *
 * <p><b>Size distribution.</b> Each request has one readable and one writable buffer of the
 * same size, drawn from 64 B to 64 KiB inclusive: 94.8% in 64..512 B, 5% in 513 B..8 KiB,
 * 0.2% in 8 KiB..64 KiB, and every 4096th chain exactly 64 B or exactly 64 KiB. Every band is
 * hit thousands of times in a million chains, but the mean stays near 580 B, so a million chains move about 0.6 GB per copy pass (three
 * bounce copies, one device copy, one fill and one check per byte): a few seconds, not minutes.
 */
class ProtectedGuestEndToEndTest {
    static final int CHAINS = 1_000_000;
    static final int QUEUE_SIZE = 256;
    static final int IN_FLIGHT = 128;
    static final int MAX_SIZE = 64 * 1024;
    static final int SOURCE_SIZE = 2 * MAX_SIZE;
    static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
        | VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC);
    /** Every this-many-th chain goes through an indirect table (itself bounced TO_DEVICE). */
    static final int INDIRECT_EVERY = 4;
    /** Bytes of a two-entry indirect table. */
    static final int TABLE_BYTES = 2 * 16;

    /** {@link #FEATURES} on the packed ring. */
    static final long PACKED_FEATURES = FEATURES | VirtioFeatures.bit(VirtioFeatures.RING_PACKED);

    /** The rings of one queue, allocated coherent (in the restricted pool). */
    record Rings(long features, CoherentBuffer desc, CoherentBuffer avail, CoherentBuffer used) {
        static Rings allocate(long features, DmaOps ops) throws DmaMappingException {
            RingSizes sizes = RingSizes.of(features, QUEUE_SIZE);
            return new Rings(features, ops.allocCoherent(sizes.descriptorArea()), ops.allocCoherent(sizes.driverArea()),
                ops.allocCoherent(sizes.deviceArea()));
        }

        void free(DmaOps ops) {
            ops.freeCoherent(desc);
            ops.freeCoherent(avail);
            ops.freeCoherent(used);
        }

        RingAddresses busAddresses() {
            return new RingAddresses(desc.busAddress(), avail.busAddress(), used.busAddress());
        }

        DriverQueue driver() {
            return DriverQueue.create(features, QUEUE_SIZE, desc.memory(), avail.memory(), used.memory());
        }
    }

    static ProtectedGuest guest() {
        return ProtectedGuest.builder()
            .secureMemory(0, 2L * IN_FLIGHT * MAX_SIZE + (1 << 20))
            .bouncePoolSize(8L << 20)
            .coherentPoolSize(1L << 20)
            .build();
    }

    @Test
    void aMillionMixedChainsRoundTripOnThePackedRing() throws Exception {
        try (ProtectedGuest guest = guest()) {
            RecordingAddressSpace deviceView = RecordingAddressSpace.sharedOnly(guest.deviceAddressSpace(), guest.secureRegion(),
                guest.sharedRegion());
            DmaOps ops = guest.dmaPolicy().choose("virtio-echo", PACKED_FEATURES, PACKED_FEATURES);
            DriverResult result = roundTrip(PACKED_FEATURES, guest, ops, deviceView, deviceView, CHAINS);
            SwiotlbStatistics s = guest.bouncePool().statistics();
            assertEquals(2 * result.bytes + (long) TABLE_BYTES * result.indirect, s.bytesToDevice());
            assertEquals(result.bytes, s.bytesFromDevice());
            assertEquals(0, s.slotsInUse());
            assertEquals(CHAINS / INDIRECT_EVERY, result.indirect);
        }
    }

    @Test
    void aMillionMixedChainsRoundTripAndTheDeviceNeverTouchesSecureMemory() throws Exception {
        try (ProtectedGuest guest = guest()) {
            RecordingAddressSpace deviceView = RecordingAddressSpace.sharedOnly(guest.deviceAddressSpace(), guest.secureRegion(),
                guest.sharedRegion());
            // the driver asks the guest's DMA policy for its ops, as a virtio driver would at probe
            DmaOps ops = guest.dmaPolicy().choose("virtio-echo", FEATURES, FEATURES);
            assertSame(guest.dmaOps(), ops, "the protected platform forces the bouncing ops");
            DriverResult result = roundTrip(FEATURES, guest, ops, deviceView, deviceView, CHAINS);

            // every byte was bounced exactly as the copy table says, and nothing leaked
            SwiotlbStatistics s = guest.bouncePool().statistics();
            assertEquals(2 * result.bytes + (long) TABLE_BYTES * result.indirect, s.bytesToDevice(),
                "map copies the request (TO_DEVICE), the reply (FROM_DEVICE) and each indirect table");
            assertEquals(result.bytes, s.bytesFromDevice(), "unmap copies the reply back");
            assertEquals(0, s.slotsInUse());
            assertEquals(0, s.liveMappings());
            assertTrue(result.sawMax && result.sawMin, "both ends of the size range were used");
            assertEquals(CHAINS / INDIRECT_EVERY, result.indirect);
        }
    }

    /**
     * The same protected guest, but the device sits behind an IOMMU and translates through a
     * device IOTLB: the bounce and restricted pools are mapped 1:1 once, so no buffer costs an
     * IOMMU map, and the IOTLB misses only a handful of times (one 2 MiB block per miss) however
     * many chains run.
     */
    @Test
    void overAnIommuThePoolsAreMappedOnceAndBouncesCostNoIommuWork() throws Exception {
        int chains = 200_000;
        try (ProtectedGuest guest = guest()) {
            Iommu iommu = new Iommu(guest.memory(), 0x100_0000_0000L, 1L << 30);
            IommuDmaOps iommuOps = new IommuDmaOps(iommu, IommuDmaOps.Mode.STRICT, null);
            SwiotlbDmaOps ops = SwiotlbDmaOps.builder(guest.bouncePool(), iommuOps, SwiotlbDmaOps.Mode.FORCE_BOUNCE)
                .coherentPool(guest.coherentPool()).build();
            RecordingAddressSpace physical = RecordingAddressSpace.sharedOnly(guest.deviceAddressSpace(), guest.secureRegion(),
                guest.sharedRegion());
            DeviceIotlb iotlb = new DeviceIotlb(physical);
            DriverResult result = roundTrip(FEATURES, guest, ops, new IotlbAddressSpace(iotlb, iommu::resolve), physical,
                chains);

            assertEquals(chains, result.completed);
            assertEquals(0, iommuOps.maps(), "no buffer was mapped in the IOMMU");
            long blocks = (guest.sharedRegion().size() + Iommu.MAX_RESOLVE_SIZE - 1) / Iommu.MAX_RESOLVE_SIZE + 1;
            assertTrue(iotlb.misses() <= blocks, "IOTLB misses " + iotlb.misses() + " for " + chains
                + " chains; at most one per 2 MiB block of the pools (" + blocks + ")");
            assertEquals(0, iotlb.faults());
            assertEquals(0, guest.bouncePool().slotsInUse());
        }
    }

    /**
     * Runs {@code chains} requests between a driver thread (this one) and a device thread.
     *
     * @param ops what the driver maps through (rings come from its coherent allocator)
     * @param deviceView how the device reaches memory
     * @param recorder the instrumented physical view somewhere below {@code deviceView}
     */
    private static DriverResult roundTrip(long features, ProtectedGuest guest, DmaOps ops, AddressSpace deviceView,
                                          RecordingAddressSpace recorder, int chains) throws Exception {
        Rings rings = Rings.allocate(features, ops);
        DeviceQueue device = DeviceQueue.create(features, QUEUE_SIZE, rings.busAddresses(), deviceView);
        // indirect tables live in SECURE memory after the buffers, so they bounce like buffers
        MemorySegment tables = guest.secureMemory().asSlice(2L * IN_FLIGHT * MAX_SIZE, (long) QUEUE_SIZE * TABLE_BYTES);
        DmaDriverQueue driver = new DmaDriverQueue(rings.driver(), ops, 2, tables);

        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> deviceFailure = new AtomicReference<>();
        long[] deviceChains = new long[1];
        Thread deviceThread = new Thread(() -> {
            try {
                deviceChains[0] = runDevice(device, stop);
            } catch (Throwable t) {
                deviceFailure.set(t);
            }
        }, "virtio-device");
        deviceThread.start();
        DriverResult result;
        try {
            result = runDriver(guest, driver, deviceFailure, chains);
        } finally {
            stop.set(true);
            deviceThread.join(60_000);
        }
        assertNull(deviceFailure.get(), () -> "device thread failed: " + deviceFailure.get());
        assertFalse(deviceThread.isAlive());
        assertEquals(chains, result.completed);
        assertEquals(chains, deviceChains[0]);
        // the instrumented device view (read after join): plenty of traffic, none toward SECURE memory
        assertTrue(recorder.bytesTranslated() >= 2 * result.bytes, "bytes translated " + recorder.bytesTranslated());
        assertEquals(0, recorder.watchedRequests(), "device requests that touched SECURE memory");
        assertEquals(0, recorder.violations().size(), "pieces handed to the device outside SHARED memory");
        rings.free(ops);
        return result;
    }

    record DriverResult(long completed, long bytes, long indirect, boolean sawMin, boolean sawMax) {
    }

    private static DriverResult runDriver(ProtectedGuest guest, DmaDriverQueue driver,
                                          AtomicReference<Throwable> deviceFailure, int chains) throws Exception {
        MemorySegment secure = guest.secureMemory();
        byte[] random = new byte[SOURCE_SIZE];
        new SplittableRandom(42).nextBytes(random);
        MemorySegment source = MemorySegment.ofArray(random);

        int[] sizes = new int[chains];
        SplittableRandom sizeRandom = new SplittableRandom(7);
        boolean sawMin = false;
        boolean sawMax = false;
        for (int i = 0; i < chains; i++) {
            int band = sizeRandom.nextInt(1000);
            int size = band < 948 ? 64 + sizeRandom.nextInt(449)
                : band < 998 ? 513 + sizeRandom.nextInt(8192 - 512)
                : 8193 + sizeRandom.nextInt(MAX_SIZE - 8192);
            // the ends of the range, exactly, once every 4096 chains each
            if ((i & 4095) == 4095) {
                size = MAX_SIZE;
            } else if ((i & 4095) == 2047) {
                size = 64;
            }
            sizes[i] = size;
            sawMin |= size == 64;
            sawMax |= size == MAX_SIZE;
        }

        MemorySegment[] request = new MemorySegment[IN_FLIGHT];
        MemorySegment[] reply = new MemorySegment[IN_FLIGHT];
        Integer[] tokens = new Integer[IN_FLIGHT];
        int[] freeSlots = new int[IN_FLIGHT];
        int freeCount = IN_FLIGHT;
        int[] chainOfSlot = new int[IN_FLIGHT];
        for (int i = 0; i < IN_FLIGHT; i++) {
            request[i] = secure.asSlice((long) (2 * i) * MAX_SIZE, MAX_SIZE);
            reply[i] = secure.asSlice((long) (2 * i + 1) * MAX_SIZE, MAX_SIZE);
            tokens[i] = i;
            freeSlots[i] = i;
        }
        MemorySegment[] buffers = new MemorySegment[2];
        IdleStrategy idle = new BackoffIdleStrategy(100, 10, 1_000, 100_000);
        int sent = 0;
        long completed = 0;
        long bytes = 0;
        long indirect = 0;
        while (completed < chains) {
            if (deviceFailure.get() != null) {
                throw new AssertionError("device thread failed", deviceFailure.get());
            }
            int work = 0;
            while (sent < chains && freeCount > 0) {
                int slot = freeSlots[freeCount - 1];
                int size = sizes[sent];
                MemorySegment.copy(source, sourceOffset(sent), request[slot], 0, size);
                buffers[0] = request[slot].asSlice(0, size);
                buffers[1] = reply[slot].asSlice(0, size);
                int head;
                try {
                    head = sent % INDIRECT_EVERY == 0
                        ? driver.addIndirect(buffers, 1, 1, tokens[slot])
                        : driver.add(buffers, 1, 1, tokens[slot]);
                } catch (DmaMappingException e) {
                    // the pool is fragmented for now: take used chains back and try again
                    assertEquals(DmaMappingException.Reason.NO_SPACE, e.reason(), e.getMessage());
                    break;
                }
                if (head == DriverQueue.NO_ROOM) {
                    break;
                }
                freeCount--;
                if (sent % INDIRECT_EVERY == 0) {
                    indirect++;
                }
                chainOfSlot[slot] = sent;
                sent++;
                work++;
            }
            driver.publish();
            while (driver.pollUsed() != DriverQueue.NONE) {
                int slot = (Integer) driver.usedToken();
                int chain = chainOfSlot[slot];
                int size = sizes[chain];
                assertEquals(size, driver.usedLength(), "used length of chain " + chain);
                long mismatch = MemorySegment.mismatch(source, sourceOffset(chain), sourceOffset(chain) + size,
                    reply[slot], 0, size);
                if (mismatch >= 0) {
                    throw new AssertionError("chain " + chain + " of " + size + " bytes: reply differs at byte " + mismatch);
                }
                bytes += size;
                completed++;
                freeSlots[freeCount++] = slot;
                work++;
            }
            idle.idle(work);
        }
        return new DriverResult(completed, bytes, indirect, sawMin, sawMax);
    }

    /** Where chain {@code n}'s bytes start in the random source: odd stride, so neighbours differ. */
    private static long sourceOffset(int n) {
        return (n * 8191L) & (MAX_SIZE - 1);
    }

    /** Echoes each request into its reply, in place in the bounce slots. @return chains served */
    private static long runDevice(DeviceQueue device, AtomicBoolean stop) throws VirtqueueException {
        DescriptorChain chain = new DescriptorChain();
        IdleStrategy idle = new BackoffIdleStrategy(100, 10, 1_000, 100_000);
        long served = 0;
        while (!stop.get()) {
            int work = 0;
            while (device.pop(chain)) {
                long length = chain.readableLength();
                if (chain.writableLength() < length) {
                    throw new AssertionError("chain " + chain + " has less room than request");
                }
                // both pieces are bounce slots in SHARED memory: a device-side copy, no secure access
                MemorySegment.copy(chain.pieceSegment(0), chain.pieceOffset(0),
                    chain.pieceSegment(1), chain.pieceOffset(1), length);
                device.addUsed(chain.head(), length);
                served++;
                work++;
                if ((work & 31) == 0) {
                    device.publishUsed();
                }
            }
            device.publishUsed();
            idle.idle(work);
        }
        return served;
    }

    @Test
    void aDeviceThatTriesASecureAddressGetsAFault() throws Exception {
        try (ProtectedGuest guest = guest()) {
            Rings rings = Rings.allocate(FEATURES, guest.dmaOps());
            RecordingAddressSpace deviceView = RecordingAddressSpace.sharedOnly(guest.deviceAddressSpace(), guest.secureRegion(),
                guest.sharedRegion());
            DeviceQueue device = DeviceQueue.create(FEATURES, QUEUE_SIZE, rings.busAddresses(), deviceView);
            // a driver that bypasses the DMA API and hands the device a guest-physical SECURE address
            DriverQueue rogue = rings.driver();
            long secret = guest.secureRegion().guestPhysicalAddress() + 4096;
            rogue.add(new BufferChain(1).addReadable(secret, 512));
            rogue.publish();
            VirtqueueException e = assertThrows(VirtqueueException.class, () -> device.pop(new DescriptorChain()));
            assertEquals(RingError.ADDRESS_FAULT, e.error(), e.getMessage());
            assertTrue(device.isBroken());
            assertEquals(1, deviceView.watchedRequests(), "the instrumented view saw the attempt");
            assertEquals(0, deviceView.violations().size(), "and handed out nothing of SECURE memory");
        }
    }
}

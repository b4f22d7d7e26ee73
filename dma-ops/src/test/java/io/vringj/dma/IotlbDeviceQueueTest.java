package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.TranslationException;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceLoop;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingError;
import io.vringj.ring.SplitRing;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A device queue behind a device IOTLB, driven by IOMMU DMA ops: misses, parking, faults, strict unmap. */
class IotlbDeviceQueueTest {
    private static final long GPA = 0x8000_0000L;
    private static final long IOVA = 0x1_0000_0000L;
    private static final int Q = 8;

    private final GuestMemory memory = GuestMemory.ofShared(GPA, 4 << 20);
    private final Iommu iommu = new Iommu(memory, IOVA, 1 << 20);
    private final IommuDmaOps dma = new IommuDmaOps(iommu, IommuDmaOps.Mode.STRICT, new BumpAllocator(memory, GPA, 1 << 20));
    private final DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
    private final IotlbMessageProcessor processor = new IotlbMessageProcessor(iotlb);
    private final List<IotlbMessage> toIommu = new ArrayList<>();
    private DmaDriverQueue driver;
    private RingAddresses rings;

    IotlbDeviceQueueTest() throws Exception {
        iotlb.setMessageSink(toIommu::add);
        iommu.addDeviceTlb((iova, size) -> {
            try {
                processor.process(IotlbMessage.invalidate(iova, size));
            } catch (IotlbProtocolException e) {
                throw new AssertionError(e);
            }
        });
        CoherentBuffer d = dma.allocCoherent(SplitRing.descriptorTableSize(Q));
        CoherentBuffer a = dma.allocCoherent(SplitRing.availRingSize(Q));
        CoherentBuffer u = dma.allocCoherent(SplitRing.usedRingSize(Q));
        rings = new RingAddresses(d.busAddress(), a.busAddress(), u.busAddress());
        driver = new DmaDriverQueue(DriverQueue.create(DmaRingHarness.FEATURES, Q, d.memory(), a.memory(), u.memory()), dma, 4);
    }

    @AfterEach
    void close() {
        memory.close();
    }

    /** Answers every MISS sent so far with the IOMMU's UPDATE, as bytes through the codec. */
    private int answerMisses() throws Exception {
        int answered = 0;
        List<IotlbMessage> misses = new ArrayList<>(toIommu);
        toIommu.clear();
        for (IotlbMessage m : misses) {
            if (m.type() == IotlbMessage.Type.MISS) {
                IotlbMessage update = iommu.resolve(m.iova());
                processor.process(MemorySegment.ofArray(IotlbMessageCodec.encode(update)), 0, IotlbMessageCodec.ENCODED_SIZE);
                answered++;
            }
        }
        return answered;
    }

    private DeviceQueue activate() throws Exception {
        for (int round = 0; round < 10; round++) {
            try {
                return DeviceQueue.create(DmaRingHarness.FEATURES, Q, rings, new IotlbAddressSpace(iotlb));
            } catch (VirtqueueException e) {
                assertEquals(RingError.TRANSLATION_MISS, e.error());
                answerMisses();
            }
        }
        throw new AssertionError("ring areas never resolved");
    }

    private MemorySegment filled(long gpa, int length, int value) {
        MemorySegment s = memory.slice(gpa, length);
        s.fill((byte) value);
        return s;
    }

    @Test
    void aMissParksTheQueueAndTheSameRequestsRetryInOrderAfterTheUpdates() throws Exception {
        DeviceQueue queue = activate();
        ParkingDeviceQueue parking = new ParkingDeviceQueue(queue, iotlb);
        int[] heads = new int[3];
        for (int i = 0; i < 3; i++) {
            heads[i] = driver.add(new MemorySegment[] {filled(GPA + 0x20_0000 + i * 0x2000, 16, i + 1)}, 1, 0, i);
        }
        driver.publish();
        DescriptorChain chain = new DescriptorChain();
        List<Integer> popped = new ArrayList<>();
        int rounds = 0;
        while (popped.size() < 3 && rounds++ < 20) {
            int r = parking.pop(chain);
            if (r == ParkingDeviceQueue.POPPED) {
                popped.add(chain.head());
                byte[] data = new byte[16];
                chain.copyFromReadable(0, MemorySegment.ofArray(data), 0, 16);
                assertEquals(popped.size(), data[0], "request " + chain.head() + " carries its own bytes");
            } else if (r == ParkingDeviceQueue.PARKED) {
                assertEquals(ParkingDeviceQueue.PARKED, parking.pop(chain), "parked until an update covers the miss");
                assertEquals(1, toIommu.size(), "one MISS for the pending range, not one per retry");
                answerMisses();
            }
        }
        assertEquals(List.of(heads[0], heads[1], heads[2]), popped, "nothing lost or reordered");
        assertEquals(3, parking.parks());
    }

    @Test
    void theRingAreaTranslationCacheIsDroppedByAnInvalidationAndRefilledAfterTheUpdate() throws Exception {
        DeviceQueue queue = activate();
        DescriptorChain chain = new DescriptorChain();
        assertFalse(queue.pop(chain), "nothing available yet; the cached ring translations serve the pop");
        toIommu.clear();
        processor.process(IotlbMessage.invalidate(rings.deviceArea() & ~0xFFFL, 0x1000));
        VirtqueueException miss = assertThrows(VirtqueueException.class, () -> queue.pop(chain));
        assertEquals(RingError.TRANSLATION_MISS, miss.error(), "the used ring is translated again, not taken from the cache");
        assertEquals(List.of(IotlbMessage.miss(rings.deviceArea(), Permission.WO)), toIommu);
        assertEquals(1, answerMisses());
        int head = driver.add(new MemorySegment[] {filled(GPA + 0x20_0000, 8, 5)}, 1, 0, null);
        driver.publish();
        ParkingDeviceQueue parking = new ParkingDeviceQueue(queue, iotlb);
        int r = ParkingDeviceQueue.PARKED;
        for (int i = 0; i < 5 && (r = parking.pop(chain)) != ParkingDeviceQueue.POPPED; i++) {
            answerMisses();
        }
        assertEquals(ParkingDeviceQueue.POPPED, r);
        assertEquals(head, chain.head());
    }

    @Test
    void aDeviceThatWritesIntoAToDeviceBufferFaultsAndWritesNothing() throws Exception {
        MemorySegment buffer = filled(GPA + 0x30_0000, 64, 0x11);
        long bus = dma.map(buffer, DmaDirection.TO_DEVICE);
        iotlb.update(iommu.resolve(bus).iova(), iommu.resolve(bus).size(), iommu.resolve(bus).uaddr(),
            iommu.resolve(bus).permission());
        IotlbAddressSpace space = new IotlbAddressSpace(iotlb);
        List<MemorySegment> pieces = new ArrayList<>();
        TranslationException e = assertThrows(TranslationException.class,
            () -> space.translate(bus, 64, Access.WRITE, (s, o, l) -> pieces.add(s.asSlice(o, l))));
        assertEquals(TranslationException.Kind.FAULT, e.kind());
        assertTrue(pieces.isEmpty(), "no piece handed out for the write");
        assertTrue(toIommu.contains(IotlbMessage.accessFail(bus, Permission.WO)), "ACCESS_FAIL reported: " + toIommu);

        // the same through a ring: a driver (buggy or malicious) marks the TO_DEVICE buffer writable
        DeviceQueue queue = activate();
        DriverQueue raw = driver.queue();
        raw.add(new BufferChain(1).addWritable(bus, 64));
        raw.publish();
        VirtqueueException v = assertThrows(VirtqueueException.class, () -> queue.pop(new DescriptorChain()));
        assertEquals(RingError.ADDRESS_FAULT, v.error());
        byte[] expected = new byte[64];
        java.util.Arrays.fill(expected, (byte) 0x11);
        assertArrayEquals(expected, buffer.toArray(ValueLayout.JAVA_BYTE), "the buffer is untouched");
    }

    @Test
    void afterAStrictUnmapTheOldIovaMissesAndNeverReturnsOldData() throws Exception {
        MemorySegment old = filled(GPA + 0x30_0000, 32, 0x0D);
        long bus = dma.map(old, DmaDirection.TO_DEVICE);
        IotlbMessage u = iommu.resolve(bus);
        iotlb.update(u.iova(), u.size(), u.uaddr(), u.permission());
        IotlbAddressSpace space = new IotlbAddressSpace(iotlb);
        assertEquals(0x0D, space.translate(bus, 32, Access.READ).get(ValueLayout.JAVA_BYTE, 0));

        dma.unmap(bus, 32, DmaDirection.TO_DEVICE);
        TranslationException miss = assertThrows(TranslationException.class, () -> space.translate(bus, 32, Access.READ));
        assertEquals(TranslationException.Kind.MISS, miss.kind());
        assertEquals(null, iommu.resolve(bus), "the IOMMU has nothing to answer the miss with");

        // the IOVA window is reused: whatever buffer is mapped there now, the device sees its data
        MemorySegment fresh = filled(GPA + 0x31_0000, 32, 0x0F);
        long reused = -1;
        for (int i = 0; i < 256 && reused != bus; i++) {
            reused = dma.map(fresh, DmaDirection.TO_DEVICE);
            if (reused != bus) {
                dma.unmap(reused, 32, DmaDirection.TO_DEVICE);
            }
        }
        assertEquals(bus, reused, "the allocator handed the old IOVA out again");
        IotlbAddressSpace resolving = new IotlbAddressSpace(iotlb, iommu::resolve);
        assertEquals(0x0F, resolving.translate(bus, 32, Access.READ).get(ValueLayout.JAVA_BYTE, 0),
            "the old IOVA now shows the new buffer, never the old data");
    }

    @Test
    void theSynchronousResolverFillsTheIotlbWithoutMessages() throws Exception {
        MemorySegment buf = filled(GPA + 0x30_0000, 0x3000, 0x22);
        long bus = dma.map(buf, DmaDirection.BIDIRECTIONAL);
        IotlbAddressSpace space = new IotlbAddressSpace(iotlb, iommu::resolve);
        iotlb.setMessageSink(null);
        List<Long> lengths = new ArrayList<>();
        space.translate(bus, 0x3000, Access.WRITE, (s, o, l) -> lengths.add(l));
        assertEquals(0x3000L, lengths.stream().mapToLong(Long::longValue).sum());
        assertTrue(iotlb.covers(bus, 0x3000, Access.READ));
        TranslationException unmapped = assertThrows(TranslationException.class,
            () -> space.translate(IOVA + 0xF_0000, 8, Access.READ));
        assertEquals(TranslationException.Kind.FAULT, unmapped.kind(), "no mapping: a fault, not an endless miss");
        assertFalse(toIommu.stream().anyMatch(m -> m.type() == IotlbMessage.Type.MISS));
    }

    /**
     * The wedge a guest IOMMU's domain flush caused: the UPDATE that answers a MISS, then an
     * INVALIDATE of everything, both before the parked device retries. Nothing covers the address
     * and nothing is pending any more, so the loop must retry and ask again, not wait for ever.
     */
    @Test
    void aMissAnsweredAndThenInvalidatedBeforeTheRetryIsAskedForAgain() throws Exception {
        assertMissAskedAgainAfter(update -> {
            processor.process(update);
            processor.process(IotlbMessage.invalidate(0, 1L << 62));
        });
    }

    @Test
    void aMissAnsweredAndInvalidatedInOneBatchIsAskedForAgain() throws Exception {
        assertMissAskedAgainAfter(update -> {
            processor.process(IotlbMessage.batchBegin());
            processor.process(update);
            processor.process(IotlbMessage.invalidate(update.iova(), update.size()));
            processor.process(IotlbMessage.batchEnd());
        });
    }

    /** What the IOMMU side does between the device's miss and its retry. */
    @FunctionalInterface
    private interface Interleaving {
        void apply(IotlbMessage update) throws Exception;
    }

    private void assertMissAskedAgainAfter(Interleaving between) throws Exception {
        DeviceQueue queue = activate();
        toIommu.clear();
        int[] handled = new int[1];
        DeviceLoop loop = new DeviceLoop(queue, chain -> {
            handled[0]++;
            return 0;
        }, () -> { }, IotlbTranslations.parking(iotlb));
        driver.add(new MemorySegment[] {filled(GPA + 0x20_0000, 16, 7)}, 1, 0, "request");
        driver.publish();

        assertEquals(DeviceLoop.PARKED, loop.run(8));
        assertEquals(1, toIommu.size(), "the buffer missed: one MISS");
        IotlbMessage miss = toIommu.remove(0);
        IotlbMessage update = iommu.resolve(miss.iova());
        between.apply(update);
        // the ring areas went with the invalidation too; whatever misses first must be asked for again
        int rounds = 0;
        while (handled[0] == 0 && rounds++ < 10) {
            int state = loop.run(8);
            if (state == DeviceLoop.PARKED) {
                assertFalse(toIommu.isEmpty(), "round " + rounds + ": parked with no MISS outstanding: the queue is wedged");
                answerMisses();
            }
        }
        assertEquals(1, handled[0], "the request was handled once its translations came back");
        assertFalse(iotlb.missPending(miss.iova(), Access.READ));
    }
}

package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingError;
import io.vringj.ring.VirtqueueException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * A million requests with checksums through IOMMU DMA ops on the driver side and a device IOTLB
 * on the device side, for each IOMMU mode; misses are resolved by MISS / UPDATE messages
 * (encoded, queued to an IOMMU-side thread, answered, decoded) or by the synchronous resolver.
 */
class IommuEndToEndTest {
    private static final long GPA = 0x8000_0000L;
    private static final long IOVA = 0x1_0000_0000L;
    private static final int Q = 256;
    private static final long CHAINS = 1_000_000;

    /** What one run observed besides the checksums. */
    record Observed(DmaRingHarness.Result result, long misses, long updateMessages, long invalidations, IommuDmaOps dma) {
    }

    private static Observed run(IommuDmaOps.Mode mode, boolean synchronousResolver) throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(GPA, 16 << 20)) {
            Iommu iommu = new Iommu(memory, IOVA, 256L << 20);
            IommuDmaOps dma = new IommuDmaOps(iommu, mode, new BumpAllocator(memory, GPA, 1 << 20));
            DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
            IotlbMessageProcessor processor = new IotlbMessageProcessor(iotlb);
            AtomicLong updates = new AtomicLong();
            AtomicLong invalidations = new AtomicLong();
            AtomicReference<Throwable> iommuSideFailure = new AtomicReference<>();
            Thread iommuSide = null;
            IotlbAddressSpace space;
            if (synchronousResolver) {
                space = new IotlbAddressSpace(iotlb, iommu::resolve);
                iommu.addDeviceTlb((iova, size) -> {
                    invalidations.incrementAndGet();
                    iotlb.invalidate(iova, size);
                });
            } else {
                space = new IotlbAddressSpace(iotlb);
                LinkedBlockingQueue<byte[]> toIommu = new LinkedBlockingQueue<>();
                iotlb.setMessageSink(m -> toIommu.add(IotlbMessageCodec.encode(m)));
                iommu.addDeviceTlb((iova, size) -> {
                    invalidations.incrementAndGet();
                    deliver(processor, IotlbMessage.invalidate(iova, size));
                });
                iommuSide = new Thread(() -> {
                    try {
                        while (true) {
                            IotlbMessage m = IotlbMessageCodec.decode(toIommu.take());
                            if (m.type() != IotlbMessage.Type.MISS) {
                                throw new AssertionError("unexpected message from the device: " + m);
                            }
                            // resolve and apply under the channel lock, in order with invalidations
                            synchronized (processor) {
                                deliver(processor, IotlbMessage.batchBegin());
                                for (IotlbMessage u : iommu.resolveAround(m.iova(), 64)) {
                                    deliver(processor, u);
                                    updates.incrementAndGet();
                                }
                                deliver(processor, IotlbMessage.batchEnd());
                            }
                        }
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    } catch (Throwable t) {
                        iommuSideFailure.set(t);
                    }
                }, "iommu");
                iommuSide.setDaemon(true);
                iommuSide.start();
            }
            try {
                DmaRingHarness.Result r = DmaRingHarness.run(memory, GPA + (2 << 20), dma, Q, CHAINS, true,
                    new IotlbDevice(iotlb, space));
                if (iommuSideFailure.get() != null) {
                    throw new AssertionError("IOMMU side failed", iommuSideFailure.get());
                }
                return new Observed(r, iotlb.misses(), updates.get(), invalidations.get(), dma);
            } finally {
                if (iommuSide != null) {
                    iommuSide.interrupt();
                    iommuSide.join(5000);
                }
            }
        }
    }

    /** Encodes a message to bytes and has the device's processor decode and apply them. */
    static void deliver(IotlbMessageProcessor processor, IotlbMessage message) {
        byte[] bytes = IotlbMessageCodec.encode(message);
        try {
            processor.process(java.lang.foreign.MemorySegment.ofArray(bytes), 0, bytes.length);
        } catch (IotlbProtocolException e) {
            throw new AssertionError(e);
        }
    }

    /** A device worker behind the IOTLB: parks on misses, brackets its work in critical sections. */
    static final class IotlbDevice implements DmaRingHarness.Device {
        private final DeviceIotlb iotlb;
        private final IotlbAddressSpace space;
        private DeviceIotlb.Worker worker;
        private ParkingDeviceQueue parking;

        IotlbDevice(DeviceIotlb iotlb, IotlbAddressSpace space) {
            this.iotlb = iotlb;
            this.space = space;
        }

        @Override
        public DeviceQueue activate(RingAddresses rings) throws Exception {
            worker = iotlb.registerWorker();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (true) {
                worker.enter();
                try {
                    DeviceQueue q = DeviceQueue.create(DmaRingHarness.FEATURES, Q, rings, space);
                    parking = new ParkingDeviceQueue(q, iotlb);
                    return q;
                } catch (VirtqueueException e) {
                    if (e.error() != RingError.TRANSLATION_MISS || System.nanoTime() > deadline) {
                        throw e;
                    }
                } finally {
                    worker.exit();
                }
                Thread.yield();
            }
        }

        @Override
        public int pop(DeviceQueue queue, DescriptorChain chain) throws Exception {
            return parking.pop(chain);
        }

        @Override
        public void enter() {
            worker.enter();
        }

        @Override
        public void exit() {
            worker.exit();
        }

        @Override
        public void idle() {
            Thread.onSpinWait();
            Thread.yield();
        }
    }

    @Test
    void strictMovesAMillionChainsWithMissesResolvedByMessages() throws Exception {
        Observed o = run(IommuDmaOps.Mode.STRICT, false);
        assertEquals(CHAINS, o.result().chains());
        assertTrue(o.misses() > 0 && o.updateMessages() > 0, "misses were resolved by UPDATE messages");
        assertEquals(o.dma().unmaps(), o.invalidations(), "every strict unmap invalidated the device IOTLB");
        assertTrue(o.result().parks() > 0, "the device parked on misses");
    }

    @Test
    void lazyMovesAMillionChainsWithMissesResolvedByMessages() throws Exception {
        Observed o = run(IommuDmaOps.Mode.LAZY, false);
        assertEquals(CHAINS, o.result().chains());
        assertTrue(o.misses() > 0 && o.updateMessages() > 0);
        assertTrue(o.dma().flushes() > 0, "the flush queue was flushed");
        assertTrue(o.invalidations() <= o.dma().unmaps());
    }

    @Test
    void passthroughMovesAMillionChainsWithMissesResolvedByMessages() throws Exception {
        Observed o = run(IommuDmaOps.Mode.PASSTHROUGH, false);
        assertEquals(CHAINS, o.result().chains());
        assertTrue(o.misses() > 0 && o.updateMessages() > 0, "identity entries came as UPDATE messages");
        assertEquals(0, o.invalidations(), "pass-through never invalidates");
    }

    @Test
    void synchronousResolverMovesAMillionChains() throws Exception {
        Observed o = run(IommuDmaOps.Mode.STRICT, true);
        assertEquals(CHAINS, o.result().chains());
        assertTrue(o.misses() > 0, "misses happened and were resolved in place");
        assertEquals(0, o.result().parks(), "the synchronous resolver never parks");
    }
}

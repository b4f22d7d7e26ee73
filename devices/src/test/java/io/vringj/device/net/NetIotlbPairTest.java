package io.vringj.device.net;

import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.IotlbAddressSpace;
import io.vringj.dma.IotlbMessage;
import io.vringj.dma.IotlbTranslations;
import io.vringj.dma.Permission;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A queue pair behind a device IOTLB in message mode, in one thread: ring and buffer addresses
 * are IOVAs, a miss sends a MISS and waits for the test's update. The rules of
 * {@link NetQueuePair}'s class comment, one test each.
 */
class NetIotlbPairTest {
    static final long BASE = 0x10_0000;
    static final long SIZE = 1 << 20;
    static final long IOVA_OFFSET = 0x1_0000_0000L;
    static final long PAGE = 0x1000;
    static final int QUEUE_SIZE = 8;
    static final long RX_DESC = BASE;
    static final long RX_AVAIL = BASE + 0x1000;
    static final long RX_USED = BASE + 0x2000;
    static final long TX_DESC = BASE + 0x3000;
    static final long TX_AVAIL = BASE + 0x4000;
    static final long TX_USED = BASE + 0x5000;
    static final long TX_BUFFERS = BASE + 0x10000;
    static final long RX_A = BASE + 0x20000;
    static final long RX_B = BASE + 0x21000;
    static final long RX_C = BASE + 0x22000;
    static final long ELSEWHERE = BASE + 0x30000;

    static long iova(long gpa) {
        return gpa + IOVA_OFFSET;
    }

    /** One pair over an IOTLB whose ring pages are mapped; buffers are mapped by each test. */
    static final class Rig implements AutoCloseable {
        final GuestMemory memory = GuestMemory.ofShared(BASE, SIZE);
        final DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
        final List<IotlbMessage> sent = new ArrayList<>();
        final DriverQueue rxDriver;
        final DriverQueue txDriver;
        final NetStatistics statistics = new NetStatistics();
        final NetQueuePair pair;
        int txFrames;

        Rig(boolean packed, boolean mergeable, FrameHandler handler) throws VirtqueueException {
            long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
                | (packed ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0)
                | (mergeable ? VirtioFeatures.bit(NetFeatures.MRG_RXBUF) : 0);
            iotlb.setMessageSink(sent::add);
            for (long page = RX_DESC; page <= TX_USED; page += PAGE) {
                // one entry per page, as QEMU sends them: an INVALIDATE removes whole entries
                map(page, PAGE);
            }
            rxDriver = DriverQueue.create(features, QUEUE_SIZE, memory, new RingAddresses(RX_DESC, RX_AVAIL, RX_USED));
            txDriver = DriverQueue.create(features, QUEUE_SIZE, memory, new RingAddresses(TX_DESC, TX_AVAIL, TX_USED));
            IotlbAddressSpace space = new IotlbAddressSpace(iotlb);
            DeviceQueue rx = DeviceQueue.create(features, QUEUE_SIZE,
                new RingAddresses(iova(RX_DESC), iova(RX_AVAIL), iova(RX_USED)), space);
            DeviceQueue tx = DeviceQueue.create(features, QUEUE_SIZE,
                new RingAddresses(iova(TX_DESC), iova(TX_AVAIL), iova(TX_USED)), space);
            pair = new NetQueuePair("test", rx, tx, handler, () -> { }, () -> { }, NetDevice.DEFAULT_MAX_FRAME_LENGTH,
                NetDevice.DEFAULT_BATCH, statistics, new IotlbTranslations(iotlb));
        }

        void map(long gpa, long size) {
            iotlb.update(iova(gpa), size, gpa, Permission.RW);
        }

        /** Offers one frame on tx (header and frame in one descriptor, a buffer of its own). */
        void send(byte[] frame) throws VirtqueueException {
            byte[] payload = NetRig.withHeader(frame);
            long gpa = TX_BUFFERS + txFrames++ * 0x200L;
            MemorySegment.copy(MemorySegment.ofArray(payload), 0, memory.slice(gpa, payload.length), 0, payload.length);
            assertTrue(txDriver.add(new BufferChain(1).addReadable(iova(gpa), payload.length)) >= 0);
            txDriver.publish();
        }

        /** Posts one writable rx buffer. */
        int post(long gpa, int length) throws VirtqueueException {
            int head = rxDriver.add(new BufferChain(1).addWritable(iova(gpa), length));
            assertTrue(head >= 0);
            rxDriver.publish();
            return head;
        }

        byte[] bytes(long gpa, long length) {
            return memory.slice(gpa, length).toArray(ValueLayout.JAVA_BYTE);
        }

        @Override
        public void close() {
            memory.close();
        }
    }

    static byte[] reflected(byte[] frame) {
        byte[] b = frame.clone();
        System.arraycopy(frame, 0, b, 6, 6);
        System.arraycopy(frame, 6, b, 0, 6);
        return b;
    }

    @ParameterizedTest(name = "packed {0}")
    @ValueSource(booleans = {false, true})
    void aTxMissParksTouchesNoRingUntilTheUpdateAndRetriesTheSameChain(boolean packed) throws Exception {
        try (Rig rig = new Rig(packed, false, new Reflector())) {
            rig.map(RX_A, PAGE);
            rig.map(RX_B, PAGE);
            int rx0 = rig.post(RX_A, 1600);
            int rx1 = rig.post(RX_B, 1600);
            byte[] f0 = NetRig.frame(100, 1);
            byte[] f1 = NetRig.frame(200, 2);
            rig.send(f0);
            rig.send(f1);

            assertEquals(0, rig.pair.doWork(), "the first tx buffer misses: nothing done");
            assertTrue(rig.pair.isParked());
            assertEquals(1, rig.sent.size(), "one MISS: " + rig.sent);
            assertEquals(iova(TX_BUFFERS), rig.sent.getFirst().iova());
            long misses = rig.iotlb.misses();
            rig.map(ELSEWHERE, PAGE); // an update elsewhere: the MISS is still pending
            for (int i = 0; i < 3; i++) {
                assertEquals(0, rig.pair.doWork());
            }
            assertEquals(misses, rig.iotlb.misses(), "a parked pair walks no ring");
            assertEquals(DriverQueue.NONE, rig.txDriver.pollUsed(), "the chain was not consumed");

            rig.map(TX_BUFFERS, PAGE);
            assertEquals(2, rig.pair.doWork(), "both frames, in order, after the update");
            assertFalse(rig.pair.isParked());
            assertEquals(rx0, rig.rxDriver.pollUsed());
            assertArrayEquals(reflected(f0), rig.bytes(RX_A + 12, rig.rxDriver.usedLength() - 12));
            assertEquals(rx1, rig.rxDriver.pollUsed());
            assertArrayEquals(reflected(f1), rig.bytes(RX_B + 12, rig.rxDriver.usedLength() - 12));
            assertEquals(0, rig.statistics.totalDrops());
        }
    }

    @ParameterizedTest(name = "packed {0}")
    @ValueSource(booleans = {false, true})
    void anRxMissDropsFramesWithoutTouchingTheRingUntilTheUpdate(boolean packed) throws Exception {
        try (Rig rig = new Rig(packed, false, new Reflector())) {
            rig.map(TX_BUFFERS, PAGE);
            int rx0 = rig.post(RX_A, 1600);
            rig.send(NetRig.frame(100, 1));
            assertEquals(1, rig.pair.doWork());
            assertEquals(1, rig.statistics.drops(NetDrop.RX_TRANSLATION_MISS));
            long misses = rig.iotlb.misses();

            rig.send(NetRig.frame(100, 2));
            assertEquals(1, rig.pair.doWork());
            assertEquals(2, rig.statistics.drops(NetDrop.RX_TRANSLATION_MISS), "dropped while parked");
            assertEquals(misses, rig.iotlb.misses(), "without walking the rx ring again");
            assertEquals(DriverQueue.NONE, rig.rxDriver.pollUsed(), "the rx buffer was not consumed");

            rig.map(RX_A, PAGE);
            byte[] f2 = NetRig.frame(100, 3);
            rig.send(f2);
            assertEquals(1, rig.pair.doWork());
            assertEquals(rx0, rig.rxDriver.pollUsed(), "the same rx buffer takes the next frame");
            assertArrayEquals(reflected(f2), rig.bytes(RX_A + 12, rig.rxDriver.usedLength() - 12));
            assertEquals(2, rig.statistics.totalDrops());
        }
    }

    @ParameterizedTest(name = "packed {0}")
    @ValueSource(booleans = {false, true})
    void heldRxBuffersAreGivenBackUnusedOnceTheirTranslationChanged(boolean packed) throws Exception {
        try (Rig rig = new Rig(packed, true, new Reflector())) {
            rig.map(TX_BUFFERS, PAGE);
            rig.map(RX_A, PAGE);
            rig.map(RX_B, PAGE);
            rig.map(RX_C, PAGE);
            rig.memory.slice(RX_A, PAGE).fill((byte) 0xEE);
            rig.memory.slice(ELSEWHERE, PAGE).fill((byte) 0xEE);
            int a = rig.post(RX_A, 64);
            rig.send(NetRig.frame(100, 1));
            assertEquals(1, rig.pair.doWork());
            assertEquals(1, rig.statistics.drops(NetDrop.NO_RX_BUFFER), "112 bytes do not fit in 64");
            assertEquals(1, rig.pair.heldRxBuffers(), "the buffer popped for it is held for the next frame");

            // the guest's IOMMU moves buffer A's page: the held chain's translation is stale
            rig.iotlb.invalidate(iova(RX_A), PAGE);
            rig.iotlb.update(iova(RX_A), PAGE, ELSEWHERE, Permission.RW);
            int b = rig.post(RX_B, 64);
            int c = rig.post(RX_C, 64);
            byte[] f1 = NetRig.frame(100, 2);
            rig.send(f1);
            assertEquals(1, rig.pair.doWork());

            assertEquals(a, rig.rxDriver.pollUsed());
            assertEquals(0, rig.rxDriver.usedLength(), "the held buffer comes back unused");
            assertEquals(b, rig.rxDriver.pollUsed());
            assertEquals(64, rig.rxDriver.usedLength());
            assertEquals(c, rig.rxDriver.pollUsed());
            assertEquals(112 - 64, rig.rxDriver.usedLength());
            byte[] got = new byte[100];
            System.arraycopy(rig.bytes(RX_B + 12, 52), 0, got, 0, 52);
            System.arraycopy(rig.bytes(RX_C, 48), 0, got, 52, 48);
            assertArrayEquals(reflected(f1), got);
            byte[] untouched = new byte[(int) PAGE];
            Arrays.fill(untouched, (byte) 0xEE);
            assertArrayEquals(untouched, rig.bytes(RX_A, PAGE), "nothing written through the stale translation");
            assertArrayEquals(untouched, rig.bytes(ELSEWHERE, PAGE), "nor through the new one");
            assertEquals(0, rig.pair.heldRxBuffers());
        }
    }

    @Test
    void anRxPublishThatMissedIsMadeByTheNextCall() throws Exception {
        Rig[] self = new Rig[1];
        Reflector reflector = new Reflector();
        // the guest's IOMMU takes the used ring away after the frame went in, before the publish
        FrameHandler handler = new FrameHandler() {
            @Override
            public void onFrame(Frame frame, RxPort rx) {
                reflector.onFrame(frame, rx);
                self[0].iotlb.invalidate(iova(RX_USED), PAGE);
            }

            @Override
            public String summary() {
                return reflector.summary();
            }
        };
        try (Rig rig = new Rig(false, false, handler)) {
            self[0] = rig;
            rig.map(TX_BUFFERS, PAGE);
            rig.map(RX_A, PAGE);
            int rx0 = rig.post(RX_A, 1600);
            byte[] f0 = NetRig.frame(100, 1);
            rig.send(f0);
            assertEquals(1, rig.pair.doWork());
            assertEquals(DriverQueue.NONE, rig.rxDriver.pollUsed(), "the used ring missed: nothing published");

            rig.map(RX_USED, PAGE);
            assertEquals(0, rig.pair.doWork(), "no tx work");
            assertEquals(rx0, rig.rxDriver.pollUsed(), "published by the next call");
            assertArrayEquals(reflected(f0), rig.bytes(RX_A + 12, rig.rxDriver.usedLength() - 12));
        }
    }
}

package io.vringj.device.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.ring.DescriptorChain;
import io.vringj.ring.RingError;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The driver side against a hostile device (back end): num_buffers that lie, used lengths
 * shorter than the header, lengths larger than the buffer. Drops are counted and the buffers
 * reposted; ring-rule violations are typed errors.
 */
class HostileDeviceTest {
    static final int Q = 16;
    static final int RX_BUFFER = 128;

    /** A device written by hand: pops rx buffers and returns them with whatever it is told. */
    private static final class LyingDevice {
        final NetRig rig;
        final DescriptorChain chain = new DescriptorChain();

        LyingDevice(NetRig rig) {
            this.rig = rig;
        }

        /** Pops one rx buffer, writes a header with {@code numBuffers} and {@code frame} after it, uses {@code used} bytes. */
        void deliver(int numBuffers, byte[] frame, long used) throws VirtqueueException {
            assertTrue(rig.rxDevice.pop(chain));
            MemorySegment header = MemorySegment.ofArray(new byte[12]);
            VirtioNetHeader.write(header, 0, 12, numBuffers);
            chain.copyToWritable(0, header, 0, 12);
            chain.copyToWritable(12, MemorySegment.ofArray(frame), 0, frame.length);
            rig.rxDevice.addUsed(chain.head(), used);
        }

        /** Pops one rx buffer (a continuation) and fills it with {@code bytes}. */
        void continuation(byte[] bytes) throws VirtqueueException {
            assertTrue(rig.rxDevice.pop(chain));
            chain.copyToWritable(0, MemorySegment.ofArray(bytes), 0, bytes.length);
            rig.rxDevice.addUsed(chain.head(), bytes.length);
        }

        void publish() {
            rig.rxDevice.publishUsed();
        }
    }

    private static List<byte[]> receive(NetDriver driver) throws VirtqueueException {
        return NetRig.receiveAll(driver);
    }

    private static void goodFrameStillArrives(LyingDevice device, NetDriver driver) throws VirtqueueException {
        byte[] good = NetRig.frame(90, 77);
        device.deliver(1, good, 12 + good.length);
        device.publish();
        List<byte[]> got = receive(driver);
        assertEquals(1, got.size());
        assertArrayEquals(good, got.get(0));
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void numBuffersZeroIsDroppedAndTheBufferReposted(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, true, false), Q)) {
            NetDriver driver = rig.driver(RX_BUFFER, 256);
            LyingDevice device = new LyingDevice(rig);
            device.deliver(0, NetRig.frame(60, 1), 72);
            device.publish();
            assertEquals(0, receive(driver).size());
            assertEquals(1, driver.statistics().drops(NetDrop.BAD_NUM_BUFFERS));
            goodFrameStillArrives(device, driver);
            assertEquals(Q, rig.rxDriver.inFlight() + driver.rxBuffersAwaitingRefill(), "every buffer posted or waiting for the next batch");
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void numBuffersMoreThanTheDeviceUsedDropsWhatArrived(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, true, false), Q)) {
            NetDriver driver = rig.driver(RX_BUFFER, 256);
            LyingDevice device = new LyingDevice(rig);
            device.deliver(3, NetRig.frame(116, 1), RX_BUFFER);
            device.continuation(new byte[50]);
            device.publish();
            assertEquals(0, receive(driver).size());
            device.deliver(65535, NetRig.frame(60, 2), 72);
            device.publish();
            assertEquals(0, receive(driver).size());
            assertEquals(2, driver.statistics().drops(NetDrop.BAD_NUM_BUFFERS));
            goodFrameStillArrives(device, driver);
            assertEquals(Q, rig.rxDriver.inFlight() + driver.rxBuffersAwaitingRefill(), "every buffer posted or waiting for the next batch");
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void mergedFrameIsHandedOverAsPiecesOfEachBuffer(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, true, false), Q)) {
            NetDriver driver = rig.driver(RX_BUFFER, 256);
            LyingDevice device = new LyingDevice(rig);
            byte[] frame = NetRig.frame(116 + 128 + 30, 5);
            device.deliver(3, java.util.Arrays.copyOf(frame, 116), RX_BUFFER);
            device.continuation(java.util.Arrays.copyOfRange(frame, 116, 244));
            device.continuation(java.util.Arrays.copyOfRange(frame, 244, 274));
            device.publish();
            List<Integer> pieces = new ArrayList<>();
            List<byte[]> got = new ArrayList<>();
            driver.receive(f -> {
                pieces.add(f.pieceCount());
                got.add(NetRig.bytes(f));
            }, 8);
            assertEquals(List.of(3), pieces);
            assertArrayEquals(frame, got.get(0));
            assertEquals(0, driver.statistics().totalDrops());
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void usedLengthShorterThanTheHeaderIsDropped(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, true, false), Q)) {
            NetDriver driver = rig.driver(RX_BUFFER, 256);
            LyingDevice device = new LyingDevice(rig);
            device.deliver(1, NetRig.frame(60, 1), 11);
            device.deliver(1, NetRig.frame(60, 1), 0);
            device.publish();
            assertEquals(0, receive(driver).size());
            assertEquals(2, driver.statistics().drops(NetDrop.SHORT_RX_BUFFER));
            goodFrameStillArrives(device, driver);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void withoutMergingNumBuffersIsNotRead(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, false, false), Q)) {
            NetDriver driver = rig.driver(NetDriver.MIN_RX_BUFFER_WITHOUT_MERGE, 256);
            LyingDevice device = new LyingDevice(rig);
            byte[] frame = NetRig.frame(60, 1);
            device.deliver(0, frame, 72); // QEMU and vhost before 2025 left num_buffers 0 here
            device.publish();
            List<byte[]> got = receive(driver);
            assertEquals(1, got.size());
            assertArrayEquals(frame, got.get(0));
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void usedLengthLongerThanTheBufferIsATypedError(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, true, false), Q)) {
            NetDriver driver = rig.driver(RX_BUFFER, 256);
            // a device that writes a used entry by hand, past its buffer's size: the ring rule catches it
            LyingDevice device = new LyingDevice(rig);
            assertTrue(rig.rxDevice.pop(device.chain));
            int head = device.chain.head();
            writeUsedBehindTheQueue(rig, packed, head, RX_BUFFER + 1);
            VirtqueueException e = assertThrows(VirtqueueException.class, () -> driver.receive(f -> { }, 8));
            assertEquals(RingError.USED_LENGTH_TOO_LARGE, e.error());
        }
    }

    /** Writes the first used entry directly into the ring, as a hostile device would. */
    private static void writeUsedBehindTheQueue(NetRig rig, boolean packed, int id, int len) {
        io.vringj.ring.RingSizes sizes = io.vringj.ring.RingSizes.of(rig.features, rig.queueSize);
        long desc = NetRig.BASE;
        long driverArea = desc + ((sizes.descriptorArea() + 4095) & ~4095L);
        long deviceArea = driverArea + ((sizes.driverArea() + 4095) & ~4095L);
        java.lang.foreign.ValueLayout.OfInt le32 = java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
        java.lang.foreign.ValueLayout.OfShort le16 = java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;
        if (packed) {
            MemorySegment d = rig.slice(desc, 16);
            d.set(le32, 8, len);
            d.set(le16, 12, (short) id);
            // used: AVAIL and USED both equal to the device's wrap counter (1)
            d.set(le16, 14, (short) (1 << 7 | 1 << 15 | 2));
        } else {
            MemorySegment used = rig.slice(deviceArea, 4 + 8);
            used.set(le32, 4, id);
            used.set(le32, 8, len);
            used.set(le16, 2, (short) 1);
        }
    }
}

package io.vringj.device.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingError;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The device side against a hostile driver (guest or front end): bad tx chains, bad rx buffers,
 * frames that do not fit. Each is a counted drop with the chain returned, and the queue goes on;
 * a broken ring rule is a typed error.
 */
class HostileDriverTest {
    static final int Q = 8;

    /** The frame bytes the last used rx chain of a raw rx post got, read back from guest memory. */
    private static int usedLength(NetRig rig, int head) throws VirtqueueException {
        int got = rig.rxDriver.pollUsed();
        assertEquals(head, got);
        return (int) rig.rxDriver.usedLength();
    }

    /** After a bad chain the next good one still goes through: the queue was not broken. */
    private static void goodFrameStillCounts(NetRig rig, NetQueuePair pair, long before) throws VirtqueueException {
        rig.rawTx(NetRig.withHeader(NetRig.frame(60, 9)), new int[] {72}, new int[0]);
        NetRig.drain(pair);
        assertEquals(before + 1, pair.statistics().txFrames());
    }

    private static void allTxReturned(NetRig rig) throws VirtqueueException {
        while (rig.txDriver.pollUsed() != DriverQueue.NONE) {
            assertEquals(0, rig.txDriver.usedLength());
        }
        assertEquals(0, rig.txDriver.inFlight());
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void txChainShorterThanTheHeaderIsABadHeader(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, true, false), Q)) {
            NetQueuePair pair = rig.pair(NetDevice.sink());
            rig.rawTx(new byte[11], new int[] {11}, new int[0]);
            rig.rawTx(new byte[12], new int[] {5, 6}, new int[0]);
            NetRig.drain(pair);
            assertEquals(2, pair.statistics().drops(NetDrop.BAD_HEADER));
            assertEquals(0, pair.statistics().txFrames());
            goodFrameStillCounts(rig, pair, 0);
            allTxReturned(rig);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void txChainWithAWritableDescriptorIsDropped(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, false, false), Q)) {
            NetQueuePair pair = rig.pair(NetDevice.sink());
            rig.rawTx(NetRig.withHeader(NetRig.frame(60, 1)), new int[] {72}, new int[] {64});
            rig.rawTx(new byte[0], new int[0], new int[] {100});
            NetRig.drain(pair);
            assertEquals(2, pair.statistics().drops(NetDrop.BAD_TX_CHAIN));
            assertEquals(0, ((Sink) pair.handler()).frames());
            goodFrameStillCounts(rig, pair, 0);
            allTxReturned(rig);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void txHeaderAskingForOffloadsNotNegotiatedIsABadHeader(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, false, false), Q)) {
            NetQueuePair pair = rig.pair(NetDevice.sink());
            byte[] csum = NetRig.withHeader(NetRig.frame(60, 1));
            csum[0] = VirtioNetHeader.F_NEEDS_CSUM;
            byte[] gso = NetRig.withHeader(NetRig.frame(60, 1));
            gso[1] = 1; // GSO_TCPV4
            byte[] otherFlag = NetRig.withHeader(NetRig.frame(60, 1));
            otherFlag[0] = 2; // DATA_VALID: a flag the device ignores [virtio 5.1.6.2.2]
            rig.rawTx(csum, new int[] {csum.length}, new int[0]);
            rig.rawTx(gso, new int[] {3, gso.length - 3}, new int[0]);
            rig.rawTx(otherFlag, new int[] {otherFlag.length}, new int[0]);
            NetRig.drain(pair);
            assertEquals(2, pair.statistics().drops(NetDrop.BAD_HEADER));
            assertEquals(1, pair.statistics().txFrames());
            allTxReturned(rig);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void runtAndOverlongTxFramesAreDropped(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, false, false), Q)) {
            NetDevice device = new NetDevice("sink", Sink::new, 1, false, 1514);
            NetQueuePair pair = rig.pair(device);
            rig.rawTx(NetRig.withHeader(new byte[13]), new int[] {25}, new int[0]);
            rig.rawTx(NetRig.withHeader(NetRig.frame(1515, 2)), new int[] {12 + 1515}, new int[0]);
            rig.rawTx(NetRig.withHeader(NetRig.frame(1514, 2)), new int[] {12 + 1514}, new int[0]);
            NetRig.drain(pair);
            assertEquals(1, pair.statistics().drops(NetDrop.RUNT_FRAME));
            assertEquals(1, pair.statistics().drops(NetDrop.FRAME_TOO_LONG));
            assertEquals(1, pair.statistics().txFrames());
            assertEquals(1514, pair.statistics().txBytes());
            allTxReturned(rig);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void frameWithNoRxBufferPostedIsDroppedAndTheTxChainStillReturns(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, false, false), Q)) {
            NetQueuePair pair = rig.pair(NetDevice.reflect());
            rig.rawTx(NetRig.withHeader(NetRig.frame(60, 1)), new int[] {72}, new int[0]);
            NetRig.drain(pair);
            assertEquals(1, pair.statistics().drops(NetDrop.NO_RX_BUFFER));
            assertEquals(0, pair.statistics().rxFrames());
            allTxReturned(rig);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void withoutMergingAFrameLongerThanTheRxBufferIsDroppedAndTheBufferReturnedEmpty(boolean packed)
        throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, false, false), Q)) {
            NetQueuePair pair = rig.pair(NetDevice.reflect());
            int small = rig.rawRx(new int[0], new int[] {12 + 100}, null);
            long[] gpa = new long[1];
            int big = rig.rawRx(new int[0], new int[] {12 + 200}, gpa);
            rig.rawTx(NetRig.withHeader(NetRig.frame(150, 1)), new int[] {162}, new int[0]);
            rig.rawTx(NetRig.withHeader(NetRig.frame(150, 2)), new int[] {162}, new int[0]);
            NetRig.drain(pair);
            assertEquals(1, pair.statistics().drops(NetDrop.FRAME_TOO_LONG));
            assertEquals(0, usedLength(rig, small));
            assertEquals(162, usedLength(rig, big));
            assertEquals(1, VirtioNetHeader.numBuffers(rig.slice(gpa[0], 12), 0), "num_buffers 1 without MRG_RXBUF");
            byte[] got = new byte[150];
            MemorySegment.copy(rig.slice(gpa[0] + 12, 150), ValueLayout.JAVA_BYTE, 0, got, 0, 150);
            byte[] expect = NetRig.frame(150, 2);
            NetRig.putMac(expect, 0, NetRig.MAC_A);
            NetRig.putMac(expect, 6, NetRig.MAC_B);
            assertArrayEquals(expect, got);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void rxChainWithAReadableDescriptorOrShorterThanTheHeaderIsReturnedEmpty(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, true, false), Q)) {
            NetQueuePair pair = rig.pair(NetDevice.reflect());
            int readable = rig.rawRx(new int[] {16}, new int[] {200}, null);
            int tiny = rig.rawRx(new int[0], new int[] {11}, null);
            int good = rig.rawRx(new int[0], new int[] {4, 8, 300}, null); // header split over descriptors
            rig.rawTx(NetRig.withHeader(NetRig.frame(100, 1)), new int[] {112}, new int[0]);
            NetRig.drain(pair);
            assertEquals(2, pair.statistics().drops(NetDrop.BAD_RX_BUFFER));
            assertEquals(0, usedLength(rig, readable));
            assertEquals(0, usedLength(rig, tiny));
            assertEquals(112, usedLength(rig, good));
            assertEquals(1, pair.statistics().rxFrames());
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void mergedFrameWithTooFewBuffersHoldsThemForTheNextFrameAndCloseReturnsThem(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, true, false), Q)) {
            NetQueuePair pair = rig.pair(NetDevice.reflect());
            long[] first = new long[1];
            long[] second = new long[1];
            int a = rig.rawRx(new int[0], new int[] {64}, first);
            int b = rig.rawRx(new int[0], new int[] {64}, second);
            rig.rawTx(NetRig.withHeader(NetRig.frame(200, 1)), new int[] {212}, new int[0]);
            NetRig.drain(pair);
            assertEquals(1, pair.statistics().drops(NetDrop.NO_RX_BUFFER));
            assertEquals(2, pair.heldRxBuffers());
            assertEquals(DriverQueue.NONE, rig.rxDriver.pollUsed(), "held buffers are not returned");
            // a 100-byte frame fits the two held buffers: 12 + 52 in the first, 48 in the second
            rig.rawTx(NetRig.withHeader(NetRig.frame(100, 2)), new int[] {112}, new int[0]);
            NetRig.drain(pair);
            assertEquals(64, usedLength(rig, a));
            assertEquals(48, usedLength(rig, b));
            assertEquals(2, VirtioNetHeader.numBuffers(rig.slice(first[0], 12), 0));
            assertEquals(0, pair.heldRxBuffers());
            // hold one again, then stop: close returns it with 0 bytes
            int c = rig.rawRx(new int[0], new int[] {64}, null);
            rig.rawTx(NetRig.withHeader(NetRig.frame(200, 3)), new int[] {212}, new int[0]);
            NetRig.drain(pair);
            assertEquals(1, pair.heldRxBuffers());
            pair.close();
            assertEquals(0, usedLength(rig, c));
            assertEquals(0, pair.heldRxBuffers());
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void mergedFrameLongerThanTheMaximumIsDropped(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, true, false), Q)) {
            NetQueuePair pair = rig.pair(new NetDevice("reflect", Reflector::new, 1, false, 100));
            rig.rawRx(new int[0], new int[] {4096}, null);
            rig.rawTx(NetRig.withHeader(NetRig.frame(101, 1)), new int[] {113}, new int[0]);
            NetRig.drain(pair);
            assertEquals(1, pair.statistics().drops(NetDrop.FRAME_TOO_LONG));
            assertEquals(0, pair.heldRxBuffers());
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void aBrokenTxRingIsATypedErrorEveryTime(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, false, false), Q)) {
            NetQueuePair pair = rig.pair(NetDevice.sink());
            // a zero-length descriptor breaks a ring rule [virtio 2.7.5]: write one behind the queue's back
            rig.rawTx(NetRig.withHeader(NetRig.frame(60, 1)), new int[] {72}, new int[0]);
            MemorySegment descriptors = rig.slice(ringBase(rig, 1), 16);
            descriptors.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 0);
            VirtqueueException e = assertThrows(VirtqueueException.class, pair::doWork);
            assertEquals(RingError.ZERO_LENGTH, e.error());
            assertSame(e, pair.failure());
            assertSame(e, assertThrows(VirtqueueException.class, pair::doWork));
            assertTrue(rig.txDevice.isBroken());
        }
    }

    /** The descriptor area of queue {@code index} (0 rx, 1 tx): the rig lays rx then tx out from its base. */
    private static long ringBase(NetRig rig, int index) {
        io.vringj.ring.RingSizes sizes = io.vringj.ring.RingSizes.of(rig.features, rig.queueSize);
        long perQueue = 0;
        for (long area : new long[] {sizes.descriptorArea(), sizes.driverArea(), sizes.deviceArea()}) {
            perQueue += (area + 4095) & ~4095L;
        }
        return NetRig.BASE + index * perQueue;
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void rxHeaderSplitOverDescriptorsIsWrittenAcrossThem(boolean packed) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, false, false), Q)) {
            NetQueuePair pair = rig.pair(NetDevice.reflect());
            long[] gpas = new long[3];
            int head = rig.rawRx(new int[0], new int[] {5, 9, 200}, gpas);
            rig.rawTx(NetRig.withHeader(NetRig.frame(80, 4)), new int[] {92}, new int[0]);
            NetRig.drain(pair);
            assertEquals(92, usedLength(rig, head));
            byte[] header = new byte[12];
            MemorySegment.copy(rig.slice(gpas[0], 5), ValueLayout.JAVA_BYTE, 0, header, 0, 5);
            MemorySegment.copy(rig.slice(gpas[1], 9), ValueLayout.JAVA_BYTE, 0, header, 5, 7);
            assertEquals(1, VirtioNetHeader.numBuffers(MemorySegment.ofArray(header), 0));
            byte[] frameStart = new byte[2];
            MemorySegment.copy(rig.slice(gpas[1] + 7, 2), ValueLayout.JAVA_BYTE, 0, frameStart, 0, 2);
            assertEquals((byte) (NetRig.MAC_A >>> 40), frameStart[0], "the frame starts right after the header");
            assertEquals(0, pair.statistics().totalDrops());
        }
    }
}

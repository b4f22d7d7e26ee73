package io.vringj.device.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Driver side ↔ device side over real rings in guest memory, for each mode, split and packed, with and without MRG_RXBUF. */
class NetLoopbackTest {
    static final int Q = 64;

    static Stream<Arguments> layouts() {
        return Stream.of(
            Arguments.of(false, false, false), Arguments.of(false, true, false),
            Arguments.of(true, false, false), Arguments.of(true, true, false),
            Arguments.of(false, true, true), Arguments.of(true, true, true));
    }

    private static int rxBuffer(boolean mergeable) {
        // merged: small buffers so that long frames span several; otherwise a whole 1514-byte frame
        return mergeable ? 256 : NetDriver.MIN_RX_BUFFER_WITHOUT_MERGE;
    }

    private static int longest(boolean mergeable) {
        return mergeable ? 4000 : 1514;
    }

    @ParameterizedTest(name = "packed={0} mrg={1} eventIdx={2}")
    @MethodSource("layouts")
    void sinkCountsFramesAndBytesAndChecksumsEveryByte(boolean packed, boolean mergeable, boolean eventIdx)
        throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, mergeable, eventIdx), Q)) {
            NetDriver driver = rig.driver(rxBuffer(mergeable), VirtioNetHeader.SIZE + 9000);
            NetDevice device = NetDevice.sink();
            NetQueuePair pair = rig.pair(device);
            long bytes = 0;
            long checksum = 0;
            int frames = 300;
            for (int i = 0; i < frames; i++) {
                byte[] f = NetRig.frame(14 + (i * 131) % 8987, i);
                bytes += f.length;
                checksum += NetRig.referenceSum(f, 0, f.length);
                if (driver.freeTxBuffers() == 0) {
                    driver.flush();
                    NetRig.drain(pair);
                }
                NetRig.send(driver, f);
            }
            driver.flush();
            NetRig.drain(pair);
            driver.reclaim();
            Sink sink = (Sink) pair.handler();
            assertEquals(frames, sink.frames());
            assertEquals(bytes, sink.bytes());
            assertEquals(checksum, sink.checksum());
            assertEquals(frames, pair.statistics().txFrames());
            assertEquals(bytes, pair.statistics().txBytes());
            assertEquals(0, pair.statistics().totalDrops());
            assertEquals(0, pair.statistics().rxFrames());
            assertEquals(frames, driver.statistics().txFrames());
            assertEquals(Q, driver.freeTxBuffers(), "every tx buffer came back");
            assertTrue(device.report().contains("sink: " + frames + " frames"), device.report());
        }
    }

    @ParameterizedTest(name = "packed={0} mrg={1} eventIdx={2}")
    @MethodSource("layouts")
    void reflectSwapsMacsAndKeepsEveryOtherByte(boolean packed, boolean mergeable, boolean eventIdx) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, mergeable, eventIdx), Q)) {
            NetDriver driver = rig.driver(rxBuffer(mergeable), VirtioNetHeader.SIZE + 4000);
            NetQueuePair pair = rig.pair(NetDevice.reflect());
            List<byte[]> sent = new ArrayList<>();
            List<byte[]> received = new ArrayList<>();
            int[] maxPieces = {0};
            // two frames a round: at most 2 x 16 merged buffers, and the driver keeps at least Q/2 posted
            for (int round = 0; round < 60; round++) {
                for (int i = 0; i < 2; i++) {
                    int n = sent.size();
                    byte[] f = NetRig.frame(14 + (n * 397) % (longest(mergeable) - 13), n);
                    sent.add(f);
                    NetRig.send(driver, f);
                }
                driver.flush();
                NetRig.drain(pair);
                while (driver.receive(fr -> {
                    maxPieces[0] = Math.max(maxPieces[0], fr.pieceCount());
                    received.add(NetRig.bytes(fr));
                }, 16) > 0) {
                    // until empty
                }
            }
            assertEquals(sent.size(), received.size(), "every frame came back: " + pair.statistics());
            for (int i = 0; i < sent.size(); i++) {
                byte[] expect = sent.get(i).clone();
                System.arraycopy(sent.get(i), 6, expect, 0, 6);
                System.arraycopy(sent.get(i), 0, expect, 6, 6);
                assertArrayEquals(expect, received.get(i), "frame " + i);
            }
            if (mergeable) {
                assertTrue(maxPieces[0] >= 16, "4000-byte frames span 16 buffers of 256: " + maxPieces[0]);
            } else {
                assertEquals(1, maxPieces[0]);
            }
            assertEquals(sent.size(), pair.statistics().rxFrames());
            assertEquals(sent.size(), ((Reflector) pair.handler()).reflected());
            assertEquals(0, pair.statistics().totalDrops());
            assertEquals(0, driver.statistics().totalDrops());
            assertEquals(sent.size(), driver.statistics().rxFrames());
            assertEquals(0, pair.heldRxBuffers());
        }
    }

    @ParameterizedTest(name = "packed={0} mrg={1} eventIdx={2}")
    @MethodSource("layouts")
    void responderAnswersArpAndEchoOverTheRings(boolean packed, boolean mergeable, boolean eventIdx)
        throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, mergeable, eventIdx), Q)) {
            NetDriver driver = rig.driver(rxBuffer(mergeable), VirtioNetHeader.SIZE + 2000);
            NetQueuePair pair = rig.pair(NetDevice.responder(ResponderTest.OUR_MAC, ResponderTest.OUR_IP));
            NetRig.send(driver, ResponderTest.arpRequest(ResponderTest.OUR_IP));
            byte[] echo = ResponderTest.echoRequest(ResponderTest.OUR_MAC, ResponderTest.OUR_IP, 1400, 7);
            NetRig.send(driver, echo);
            driver.flush();
            NetRig.drain(pair);
            List<byte[]> replies = NetRig.receiveAll(driver);
            assertEquals(2, replies.size());
            ResponderTest.checkArpReply(replies.get(0));
            ResponderTest.checkEchoReply(echo, replies.get(1));
        }
    }
}

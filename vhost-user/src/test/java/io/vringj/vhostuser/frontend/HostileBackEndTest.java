package io.vringj.vhostuser.frontend;

import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.VhostUserProtocol;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import static io.vringj.vhostuser.VhostUserProtocol.FLAG_NEED_REPLY;
import static io.vringj.vhostuser.VhostUserProtocol.FLAG_REPLY;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Back ends that break the protocol: each is a clear error naming the value and the rule, the
 * connection is closed, no fd or mapping is left behind, and the JVM carries on.
 */
class HostileBackEndTest {
    static final int REPLY_TIMEOUT_MILLIS = 300;
    static final String MEMORY = "vringj-hostile-test";

    @TempDir
    Path dir;

    FrontEndOptions.Builder options() {
        return FrontEndOptions.client(dir.resolve("hostile.sock").toString()).queueSize(8)
            .features(VirtioFeatures.bit(VirtioFeatures.VERSION_1)).memoryName(MEMORY)
            .replyTimeout(Duration.ofMillis(REPLY_TIMEOUT_MILLIS));
    }

    /** Opens a front end against a back end scripted by {@code script}; returns the error open() throws. */
    Exception openFails(Consumer<ScriptedBackEnd> script) throws Exception {
        try (ScriptedBackEnd backEnd = ScriptedBackEnd.listening(dir.resolve("hostile.sock").toString())) {
            script.accept(backEnd);
            backEnd.start();
            return assertThrows(Exception.class, () -> VhostUserFrontEnd.open(options().build()));
        }
    }

    /**
     * Runs {@code scenario} twice (the first loads classes) and checks that the second leaves as
     * many open fds and no mapping of guest memory behind.
     */
    String withoutLeaks(Scenario scenario) throws Exception {
        scenario.run();
        List<String> before = Resources.openFds();
        String message = scenario.run();
        List<String> after = Resources.awaitFds(before, 2000);
        assertEquals(before.size(), after.size(), "fds before " + before + "\nafter " + after);
        assertEquals(0, Resources.memfdMappings(MEMORY), "guest memory is unmapped");
        return message;
    }

    @FunctionalInterface
    interface Scenario {
        String run() throws Exception;
    }

    @Test
    void aReplyWithTheWrongRequestCodeIsRefused() throws Exception {
        String m = withoutLeaks(() -> openFails(b -> b.on(VhostUserProtocol.GET_FEATURES, (req, reply, ch) -> {
            ch.write(reply.header(VhostUserProtocol.GET_PROTOCOL_FEATURES, FLAG_REPLY, 8).putU64(0, 1L << 32));
            return true;
        })).getMessage());
        assertEquals("reply to GET_FEATURES has request code 15 (GET_PROTOCOL_FEATURES); a reply repeats its "
            + "request's code 1", m);
    }

    @Test
    void aReplyOfTheWrongSizeIsRefused() throws Exception {
        String m = withoutLeaks(() -> openFails(b -> b.on(VhostUserProtocol.GET_FEATURES, (req, reply, ch) -> {
            ch.write(reply.header(VhostUserProtocol.GET_FEATURES, FLAG_REPLY, 4).putU32(0, 1));
            return true;
        })).getMessage());
        assertEquals("reply to GET_FEATURES has a 4-byte payload; it must be 8 bytes", m);
    }

    @Test
    void aReplyWithoutTheReplyFlagOrWithNeedReplyIsRefused() throws Exception {
        String noReply = withoutLeaks(() -> openFails(b -> b.on(VhostUserProtocol.GET_FEATURES, (req, reply, ch) -> {
            ch.write(reply.header(VhostUserProtocol.GET_FEATURES, 0, 8).putU64(0, 0));
            return true;
        })).getMessage());
        assertEquals("reply to GET_FEATURES has flags 0x1; a reply's flags must be exactly 0x5 (version 1 and REPLY)",
            noReply);
        String needReply = openFails(b -> b.on(VhostUserProtocol.GET_FEATURES, (req, reply, ch) -> {
            ch.write(reply.header(VhostUserProtocol.GET_FEATURES, FLAG_REPLY | FLAG_NEED_REPLY, 8).putU64(0, 0));
            return true;
        })).getMessage();
        assertTrue(needReply.contains("has flags 0xd; a reply's flags must be exactly 0x5"), needReply);
    }

    @Test
    void aReplyThatCarriesFdsIsRefusedAndTheFdsClosed() throws Exception {
        String m = withoutLeaks(() -> openFails(b -> b.on(VhostUserProtocol.GET_FEATURES, (req, reply, ch) -> {
            try (EventFd stray = EventFd.create()) {
                ch.write(reply.header(VhostUserProtocol.GET_FEATURES, FLAG_REPLY, 8).putU64(0, 1L << 32), stray.fd());
            }
            return true;
        })).getMessage());
        assertEquals("reply to GET_FEATURES came with 1 fds; a reply carries none", m);
    }

    @Test
    void aBackEndThatNeverRepliesTimesOut() throws Exception {
        long start = System.nanoTime();
        String m = withoutLeaks(() -> openFails(b -> b.on(VhostUserProtocol.GET_FEATURES, ScriptedBackEnd.SILENCE))
            .getMessage());
        assertEquals("back end did not reply to GET_FEATURES within " + REPLY_TIMEOUT_MILLIS
            + " ms (the reply time-out)", m);
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(10), "two bounded waits, no hang");
    }

    @Test
    void aBackEndThatNeverAcknowledgesTheMemoryTableTimesOut() throws Exception {
        String m = withoutLeaks(() -> openFails(b -> b.on(VhostUserProtocol.SET_MEM_TABLE, ScriptedBackEnd.SILENCE))
            .getMessage());
        assertEquals("back end did not reply to SET_MEM_TABLE within " + REPLY_TIMEOUT_MILLIS
            + " ms (the reply time-out)", m);
    }

    @Test
    void aBackEndThatClosesMidSetupIsAClearError() throws Exception {
        String m = withoutLeaks(() -> openFails(b -> b.on(VhostUserProtocol.GET_PROTOCOL_FEATURES,
            ScriptedBackEnd.CLOSE)).getMessage());
        assertEquals("back end closed the connection instead of replying to GET_PROTOCOL_FEATURES", m);
        String acked = openFails(b -> b.on(VhostUserProtocol.SET_FEATURES, ScriptedBackEnd.CLOSE)).getMessage();
        assertEquals("back end closed the connection instead of replying to SET_FEATURES", acked,
            "with REPLY_ACK the front end waits for SET_FEATURES' acknowledgement and finds the end of stream");
        // closing on a request without a reply: the next write meets EPIPE, or the next read the end of stream
        String unacked = withoutLeaks(() -> openFails(b -> b.on(VhostUserProtocol.SET_OWNER, ScriptedBackEnd.CLOSE))
            .getMessage());
        // (or, with the request unread, recvmsg meets ECONNRESET): each is the same clear error
        assertTrue(unacked.startsWith("back end closed the connection before GET_FEATURES could be sent (sendmsg failed")
            || unacked.startsWith("back end closed the connection instead of replying to GET_FEATURES"), unacked);
    }

    @Test
    void aRequestTheBackEndRefusesIsAnError() throws Exception {
        String m = withoutLeaks(() -> openFails(b -> b.on(VhostUserProtocol.SET_MEM_TABLE, (req, reply, ch) -> {
            ch.write(reply.header(VhostUserProtocol.SET_MEM_TABLE, FLAG_REPLY, 8).putU64(0, 1));
            return true;
        })).getMessage());
        assertEquals("back end refused SET_MEM_TABLE: REPLY_ACK status 0x1 (0 is success)", m);
    }

    @Test
    void multiqueueNeedsEnoughQueuesFromGetQueueNum() throws Exception {
        try (ScriptedBackEnd backEnd = ScriptedBackEnd.listening(dir.resolve("hostile.sock").toString())) {
            backEnd.queueNum = 1;
            backEnd.start();
            ProtocolException e = assertThrows(ProtocolException.class,
                () -> VhostUserFrontEnd.open(options().queues(4).multiQueue(2).build()));
            assertEquals("back end answers GET_QUEUE_NUM with 1; the front end needs 2 (4 vrings, 2 per unit)",
                e.getMessage());
        }
        try (ScriptedBackEnd backEnd = ScriptedBackEnd.listening(dir.resolve("hostile.sock").toString())) {
            backEnd.offeredProtocolFeatures = 1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK;
            backEnd.start();
            ProtocolException e = assertThrows(ProtocolException.class,
                () -> VhostUserFrontEnd.open(options().queues(4).multiQueue(2).build()));
            assertTrue(e.getMessage().contains("does not offer protocol feature MQ"), e.getMessage());
        }
        try (ScriptedBackEnd backEnd = ScriptedBackEnd.listening(dir.resolve("hostile.sock").toString())) {
            backEnd.queueNum = 2;
            backEnd.start();
            try (VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(options().queues(4).multiQueue(2).build())) {
                assertEquals(2, frontEnd.backEndQueueNum());
                assertTrue((frontEnd.protocolFeatures() & (1L << VhostUserProtocol.PROTOCOL_F_MQ)) != 0);
            }
        }
    }

    @Test
    void optionalMultiqueueUsesWhatTheBackEndServesButNotAnAnswerOfZero() throws Exception {
        try (ScriptedBackEnd backEnd = ScriptedBackEnd.listening(dir.resolve("hostile.sock").toString())) {
            backEnd.queueNum = 2;
            backEnd.start();
            try (VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(options().queues(8).multiQueueIfOffered(2).build())) {
                assertEquals(2, frontEnd.backEndQueueNum());
                assertEquals(4, frontEnd.usableQueueCount(), "two units of two vrings of the eight configured");
                assertThrows(IllegalArgumentException.class, () -> frontEnd.startQueues(5));
            }
        }
        try (ScriptedBackEnd backEnd = ScriptedBackEnd.listening(dir.resolve("hostile.sock").toString())) {
            backEnd.offeredProtocolFeatures = 1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK;
            backEnd.start();
            try (VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(options().queues(8).multiQueueIfOffered(2).build())) {
                assertEquals(-1, frontEnd.backEndQueueNum(), "no GET_QUEUE_NUM without the MQ protocol feature");
                assertEquals(2, frontEnd.usableQueueCount(), "one unit without multiqueue");
            }
        }
        try (ScriptedBackEnd backEnd = ScriptedBackEnd.listening(dir.resolve("hostile.sock").toString())) {
            backEnd.queueNum = 0;
            backEnd.start();
            ProtocolException e = assertThrows(ProtocolException.class,
                () -> VhostUserFrontEnd.open(options().queues(8).multiQueueIfOffered(2).build()));
            assertEquals("back end answers GET_QUEUE_NUM with 0; the front end needs at least 1 (8 vrings, 2 per unit)",
                e.getMessage());
        }
    }

    /** Opens and starts against a back end that misbehaves on GET_VRING_BASE; returns the stop's error. */
    String stopFails(boolean packed, ScriptedBackEnd.Misbehaviour onGetVringBase, int base) throws Exception {
        try (ScriptedBackEnd backEnd = ScriptedBackEnd.listening(dir.resolve("hostile.sock").toString())) {
            backEnd.vringBase = base;
            if (onGetVringBase != null) {
                backEnd.on(VhostUserProtocol.GET_VRING_BASE, onGetVringBase);
            }
            backEnd.start();
            long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
                | (packed ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0);
            VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(options().features(features).build());
            String[] heard = new String[1];
            frontEnd.addListener((fe, reason) -> heard[0] = reason);
            try {
                frontEnd.startQueues();
                ProtocolException e = assertThrows(ProtocolException.class, () -> frontEnd.stopQueue(0));
                assertEquals(FrontEndState.DISCONNECTED, frontEnd.state(), "the connection is not trusted any more");
                assertEquals(e.getMessage(), heard[0], "the listener hears why");
                return e.getMessage();
            } finally {
                frontEnd.close();
            }
        }
    }

    @Test
    void getVringBaseMustEchoTheVringIndex() throws Exception {
        String m = withoutLeaks(() -> stopFails(false, (req, reply, ch) -> {
            ch.write(reply.header(VhostUserProtocol.GET_VRING_BASE, FLAG_REPLY, 8).putU32(0, 1).putU32(4, 0));
            return true;
        }, 0));
        assertEquals("reply to GET_VRING_BASE for vring 0 names vring 1; a vring state reply echoes the index it was "
            + "asked for", m);
    }

    @Test
    void getVringBaseMustBeARingStateOfThisQueue() throws Exception {
        String split = withoutLeaks(() -> stopFails(false, null, 0x1_0000));
        assertEquals("GET_VRING_BASE for vring 0 answers 0x10000; a split ring's vring base is a 16-bit avail index",
            split);
        String packed = stopFails(true, null, 0x8000_0008);
        assertEquals("GET_VRING_BASE for vring 0 answers 0x80000008; a packed ring's positions (bits 0-14 and 16-30) "
            + "must be below the queue size 8", packed);
    }

    @Test
    void aBackEndThatNeverAnswersGetVringBaseTimesOut() throws Exception {
        String m = withoutLeaks(() -> stopFails(false, ScriptedBackEnd.SILENCE, 0));
        assertEquals("back end did not reply to GET_VRING_BASE within " + REPLY_TIMEOUT_MILLIS
            + " ms (the reply time-out)", m);
    }

    @Test
    void sendsTheSetUpInDpdksOrderWithStatusAndStopsWithEnableThenGetVringBase() throws Exception {
        try (ScriptedBackEnd backEnd = ScriptedBackEnd.listening(dir.resolve("hostile.sock").toString())) {
            backEnd.vringBase = 0x8000_8003;
            backEnd.start();
            long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
            try (VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(options().features(features).build())) {
                frontEnd.startQueues();
                assertEquals(0x8000_8003, frontEnd.stopQueue(0));
            }
            backEnd.close();
            List<String> names = backEnd.received.stream().map(VhostUserProtocol::requestName).toList();
            assertEquals(List.of("SET_OWNER", "GET_FEATURES", "GET_PROTOCOL_FEATURES", "SET_PROTOCOL_FEATURES",
                "SET_FEATURES", "SET_STATUS", "SET_MEM_TABLE", "SET_VRING_CALL", "SET_VRING_NUM", "SET_VRING_BASE",
                "SET_VRING_ADDR", "SET_VRING_KICK", "SET_VRING_ENABLE", "SET_STATUS", "SET_VRING_ENABLE",
                "GET_VRING_BASE"), names);
            long featuresOk = VhostUserProtocol.STATUS_ACKNOWLEDGE | VhostUserProtocol.STATUS_DRIVER
                | VhostUserProtocol.STATUS_FEATURES_OK;
            assertEquals(List.of(featuresOk, featuresOk | VhostUserProtocol.STATUS_DRIVER_OK),
                backEnd.statuses);
        }
    }

    @Test
    void aBackEndThatHangsUpWhileIdleIsReportedAndTheFrontEndCanBeClosed() throws Exception {
        String m = withoutLeaks(() -> {
            try (ScriptedBackEnd backEnd = ScriptedBackEnd.listening(dir.resolve("hostile.sock").toString())) {
                backEnd.start();
                try (VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(options().build())) {
                    java.util.concurrent.CountDownLatch lost = new java.util.concurrent.CountDownLatch(1);
                    frontEnd.addListener((fe, reason) -> lost.countDown());
                    frontEnd.startQueues();
                    backEnd.close();
                    assertTrue(lost.await(5, TimeUnit.SECONDS));
                    assertEquals(FrontEndState.DISCONNECTED, frontEnd.state());
                    return frontEnd.disconnectReason();
                }
            }
        });
        assertTrue(m.startsWith("back end hung up"), m);
        assertFalse(Files.exists(dir.resolve("hostile.sock")));
    }

    @Test
    void aSocketThatIsNotABackEndFailsToConnect() {
        NativeCallException e = assertThrows(NativeCallException.class, () -> VhostUserFrontEnd.open(
            options().connectTimeout(Duration.ZERO).build()));
        assertTrue(e.getMessage().startsWith("connect failed: errno 2 (ENOENT)"), e.getMessage());
    }
}

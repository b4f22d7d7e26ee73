package io.vringj.perf.channel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The two-process harness: a peer JVM starts, receives and checks every message, reports a tally
 * that must match what was sent, and goes away; a wrong count, a wrong checksum or a peer that
 * dies is a failure, never a figure.
 */
class PeerSessionTest {
    private static final int MESSAGES = 5_000;

    /** Sends {@code count} messages of {@code length} bytes in batches, waiting out back-pressure. */
    private static void sendAll(Link link, int count, int length, int batch) {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (link.sent().count() < count) {
            int n = link.send((int) Math.min(batch, count - link.sent().count()), length);
            if (n == 0) {
                assertTrue(System.nanoTime() - deadline < 0, "the peer stopped taking messages");
                Thread.onSpinWait();
            }
        }
    }

    @Test
    void aSinkPeerReceivesEveryMessageAndReportsAMatchingTally() throws Exception {
        PeerSession session = PeerSession.open(Transport.AGRONA_MMAP, PeerRole.SINK, 4096);
        try {
            sendAll(session.link(), MESSAGES, 4096, 32);
            session.finish();
            assertTrue(session.peer().isAlive(), "the peer waits for the benchmark to close its end first");
        } finally {
            session.close();
        }
        assertFalse(session.peer().isAlive(), "the peer exits once the benchmark closed its end");
    }

    @Test
    void vringjsChannelCarriesEveryMessageToASinkPeer() throws Exception {
        for (int length : new int[] {64, 4096}) {
            try (PeerSession session = PeerSession.open(Transport.VRINGJ, PeerRole.SINK, length)) {
                sendAll(session.link(), MESSAGES, length, 32);
                session.finish();
            }
        }
    }

    @Test
    void vringjsChannelCarriesEveryMessageFromItsDeviceEndToo() throws Exception {
        try (PeerSession session = PeerSession.open(Transport.VRINGJ_DEVICE_END, PeerRole.SINK, 1024)) {
            sendAll(session.link(), MESSAGES, 1024, 32);
            session.finish();
        }
    }

    @Test
    void vringjsChannelCarriesEveryMessageToAnEchoPeerAndBack() throws Exception {
        try (PeerSession session = PeerSession.open(Transport.VRINGJ, PeerRole.ECHO, 64)) {
            Link link = session.link();
            for (int i = 0; i < 500; i++) {
                sendAll(link, i + 1, 64, 1);
                long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                while (link.receive(1) == 0) {
                    assertTrue(System.nanoTime() - deadline < 0, "no echo of message " + i);
                }
            }
            assertEquals(500, link.received().count());
            session.finish();
        }
    }

    @Test
    void aCountOrChecksumThatDiffersFromWhatWasSentFailsTheRun() throws Exception {
        try (PeerSession session = PeerSession.open(Transport.AGRONA_MMAP, PeerRole.SINK, 64)) {
            Link link = session.link();
            sendAll(link, 100, 64, 1);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> session.peer()
                .finish(link.sent().count() + 1, link.sent().checksum(), Duration.ofSeconds(30)));
            assertTrue(e.getMessage().contains("peer received 100 messages"), e.getMessage());
            assertTrue(e.getMessage().contains("the benchmark sent 101"), e.getMessage());
        }
        try (PeerSession session = PeerSession.open(Transport.AGRONA_MMAP, PeerRole.SINK, 64)) {
            Link link = session.link();
            sendAll(link, 100, 64, 1);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> session.peer()
                .finish(100, link.sent().checksum() + 1, Duration.ofSeconds(30)));
            assertTrue(e.getMessage().contains("not valid"), e.getMessage());
        }
    }

    @Test
    void anEchoPeerOverAeronSendsEveryMessageBack() throws Exception {
        try (PeerSession session = PeerSession.open(Transport.AERON, PeerRole.ECHO, 64)) {
            Link link = session.link();
            for (int i = 0; i < 1_000; i++) {
                sendAll(link, i + 1, 64, 1);
                long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                while (link.receive(1) == 0) {
                    assertTrue(System.nanoTime() - deadline < 0, "no echo of message " + i);
                }
            }
            assertEquals(1_000, link.received().count());
            assertEquals(0, link.received().bad());
            session.finish();
        }
    }

    @Test
    void aPeerThatDiesIsReportedWithItsExitStatus() throws Exception {
        try (PeerProcess peer = PeerProcess.start(List.of("carrier-pigeon", "sink", "/nonexistent", "64"))) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> peer.awaitReady(Duration.ofSeconds(60)));
            assertTrue(e.getMessage().contains("exit status 2"), e.getMessage());
            assertTrue(e.getMessage().contains("unknown transport \"carrier-pigeon\""), e.getMessage());
        }
    }

    @Test
    void aMessageTooShortForItsStampsIsRefusedBeforeAnyPeerStarts() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> PeerSession.open(Transport.AGRONA_MMAP, PeerRole.SINK, 15));
        assertTrue(e.getMessage().contains("message length 15 must be at least 16"), e.getMessage());
    }

    @Test
    void aDamagedOrReorderedMessageCountsAsBad() {
        MessageTally sent = new MessageTally();
        MessageTally received = new MessageTally();
        long a = sent.next();
        long b = sent.next();
        received.received(a, ~a);
        received.received(b, b);
        assertEquals(1, received.bad(), "a torn message: its last stamp is not the complement");
        assertEquals(sent.checksum(), received.checksum());
        MessageTally reordered = new MessageTally();
        reordered.received(b, ~b);
        reordered.received(a, ~a);
        assertEquals(2, reordered.bad());
        MessageTally repeated = new MessageTally();
        repeated.received(a, ~a);
        repeated.received(a, ~a);
        assertTrue(repeated.checksum() != sent.checksum(), "a repeat instead of the next one changes the checksum");
    }

    @Test
    void aPeerWhoseBenchmarkGoesAwayExitsByItself() throws Exception {
        PeerSession session = PeerSession.open(Transport.AGRONA_MMAP, PeerRole.SINK, 64);
        PeerProcess peer = session.peer();
        ProcessHandle handle = ProcessHandle.of(peer.pid()).orElseThrow();
        session.close();
        assertFalse(handle.isAlive());
    }

    @Test
    void theRoundTripBenchmarkStepCompletesRoundTripsAndChecksThemAtTearDown() throws Exception {
        ChannelRoundTripBenchmark b = new ChannelRoundTripBenchmark();
        ChannelRoundTripBenchmark.AgronaMmapPinger pinger = new ChannelRoundTripBenchmark.AgronaMmapPinger();
        ChannelRoundTripBenchmark.RoundTripCounters counters = new ChannelRoundTripBenchmark.RoundTripCounters();
        pinger.setUp();
        long warmUp = pinger.link.sent().count();
        assertTrue(warmUp > 0 && pinger.link.received().count() == warmUp, "the set-up's warm-up came back whole");
        try {
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (counters.roundTrips < 500 && System.nanoTime() - deadline < 0) {
                b.agronaMmap(pinger, counters);
            }
            assertEquals(500, counters.roundTrips);
            assertEquals(warmUp + 501, pinger.link.sent().count(), "the next message is already out");
        } finally {
            pinger.tearDown();
        }
    }

    @Test
    void theThroughputBenchmarkStepSendsWholeBatchesAndCountsAFullTransport() throws Exception {
        ChannelThroughputBenchmark b = new ChannelThroughputBenchmark();
        ChannelThroughputBenchmark.AgronaMmapSender sender = new ChannelThroughputBenchmark.AgronaMmapSender();
        ChannelThroughputBenchmark.SendCounters counters = new ChannelThroughputBenchmark.SendCounters();
        sender.init(1024, 32);
        long warmUp = sender.link.sent().count();
        assertTrue(warmUp > 0, "the set-up warms the session up");
        try {
            for (int i = 0; i < 2_000; i++) {
                b.agronaMmap(sender, counters);
            }
            assertEquals(warmUp + counters.messages, sender.link.sent().count());
            long sendingCalls = 2_000 - counters.sendFailures;
            assertTrue(sendingCalls > 0, "the peer takes messages");
            assertTrue(counters.messages >= sendingCalls && counters.messages <= 32 * sendingCalls,
                "a call sends 1 to 32 messages or counts a full ring: " + counters.messages + " in " + sendingCalls);
        } finally {
            sender.tearDown();
        }
    }
}

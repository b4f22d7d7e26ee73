package io.vringj.vhostuser.backend;

import io.vringj.device.net.NetDevice;
import io.vringj.device.net.NetFeatures;
import io.vringj.device.net.NetQueuePair;
import io.vringj.device.net.NetStatistics;
import io.vringj.device.net.Reflector;
import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.VhostUserProtocol;
import io.vringj.vhostuser.frontend.FrontEndOptions;
import io.vringj.vhostuser.frontend.VhostUserFrontEnd;
import io.vringj.vhostuser.frontend.net.NetPeer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import picocli.CommandLine;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Multiqueue over a real Unix socket: our front end ({@link NetPeer}) drives our back end's
 * virtio-net with several rx/tx pairs ({@code VIRTIO_NET_F_MQ}, vhost-user {@code PROTOCOL_F_MQ},
 * {@code GET_QUEUE_NUM} in queue pairs, one worker thread per pair) in {@code reflect} mode:
 * every frame comes back on the pair it was sent on, none is lost, and each pair's counters on
 * both sides agree. Without MQ negotiated only pair 0 exists [virtio 5.1.2].
 */
class NetMultiQueueTest {
    static final int SIZE = 64;

    @TempDir
    Path dir;

    static NetPeer.Options options(String socket, long count, boolean packed, int queuePairs) {
        return new NetPeer.Options(socket, false, 0, count, SIZE, packed, NetPeer.Mode.BOTH, 256,
            Duration.ofSeconds(60), Duration.ofSeconds(10), queuePairs, true);
    }

    /** The device's pair worker for pair {@code p} (the device lists them in start order). */
    static NetQueuePair devicePair(NetDevice device, int p) {
        for (NetQueuePair q : device.pairs()) {
            if (q.roleName().endsWith("-pair-" + p)) {
                return q;
            }
        }
        throw new AssertionError("the device has no worker for pair " + p + ": " + device.report());
    }

    /** Names of the back end's live pair-worker threads. */
    static Set<String> pairThreads() {
        Set<String> names = new TreeSet<>();
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith("vhost-user-pair-") && t.isAlive()) {
                names.add(t.getName());
            }
        }
        return names;
    }

    @ParameterizedTest(name = "{0} pairs {1}")
    @CsvSource({"2,split", "2,packed", "4,split", "4,packed"})
    @Timeout(120)
    void reflectSendsEveryFrameBackOnThePairItCameFrom(int pairs, String layout) throws Exception {
        NetDevice device = NetDevice.reflect(pairs);
        long count = 4000L * pairs;
        try (BackendHarness backEnd = new BackendHarness(dir, device);
             NetPeer peer = NetPeer.open(options(backEnd.path, count, layout.equals("packed"), pairs))) {
            VhostUserFrontEnd fe = peer.frontEnd();
            assertEquals(pairs, peer.queuePairs());
            assertTrue(VirtioFeatures.has(fe.features(), NetFeatures.MQ), "VIRTIO_NET_F_MQ negotiated");
            assertTrue((fe.protocolFeatures() & 1L << VhostUserProtocol.PROTOCOL_F_MQ) != 0, "PROTOCOL_F_MQ negotiated");
            assertEquals(pairs, fe.backEndQueueNum(), "GET_QUEUE_NUM counts queue pairs");
            assertTrue(fe.hasConfig(), "PROTOCOL_F_CONFIG negotiated");
            byte[] maxPairs = fe.readConfig(NetDevice.CONFIG_MAX_VIRTQUEUE_PAIRS, 2);
            assertEquals(pairs, (maxPairs[0] & 0xFF) | (maxPairs[1] & 0xFF) << 8, "max_virtqueue_pairs [virtio 5.1.4]");
            Set<String> expectedThreads = new TreeSet<>();
            for (int p = 0; p < pairs; p++) {
                expectedThreads.add("vhost-user-pair-" + p);
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (!pairThreads().equals(expectedThreads) && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertEquals(expectedThreads, pairThreads(), "one worker thread per pair");

            NetPeer.Result result = peer.run();
            assertNull(result.failure(), result.summary());
            assertTrue(result.complete(), result.summary());
            assertEquals(count, result.sent(), result.summary());
            assertEquals(count, result.received(), "none lost: " + result.summary() + "\n" + device.report());
            assertEquals(0, result.misrouted(), "every frame came back on its own pair: " + result.summary());
            assertEquals(0, result.drops(), result.summary());
            assertEquals(pairs, result.pairs().size());
            assertEquals(pairs, device.pairs().size(), device.report());
            for (int p = 0; p < pairs; p++) {
                NetPeer.PairResult ours = result.pairs().get(p);
                assertEquals(p, ours.pair());
                assertEquals(count / pairs, ours.sent(), "pair " + p + " sent its share: " + result.summary());
                assertEquals(ours.sent(), ours.received(), "pair " + p + ": " + result.summary());
                assertEquals(0, ours.misrouted(), "pair " + p + ": " + result.summary());
                assertEquals((long) SIZE * ours.received(), ours.receivedBytes(), "pair " + p);
                NetQueuePair worker = devicePair(device, p);
                NetStatistics theirs = worker.statistics();
                assertEquals(ours.sent(), theirs.txFrames(), "pair " + p + " device tx: " + device.report());
                assertEquals(ours.received(), theirs.rxFrames(), "pair " + p + " device rx: " + device.report());
                assertEquals(0, theirs.totalDrops(), "pair " + p + ": " + device.report());
                assertEquals(ours.received(), ((Reflector) worker.handler()).reflected(), "pair " + p);
            }
        }
    }

    @Test
    @Timeout(60)
    void theNetPeerCommandDrivesEveryPairLosslessly() throws Exception {
        NetDevice device = NetDevice.reflect(2);
        try (BackendHarness backEnd = new BackendHarness(dir, device)) {
            int exit = new CommandLine(new VhostUserCommand()).execute("net-peer", "--socket", backEnd.path, "--mode",
                "both", "--count", "2000", "--queue-pairs", "2", "--lossless", "--packed", "--duration", "50");
            assertEquals(0, exit, "net-peer reached its count: " + device.report());
            for (int p = 0; p < 2; p++) {
                NetStatistics s = devicePair(device, p).statistics();
                assertEquals(1000, s.txFrames(), "pair " + p + ": " + device.report());
                assertEquals(1000, s.rxFrames(), "pair " + p + ": " + device.report());
            }
        }
    }

    @Test
    @Timeout(60)
    void aCountIsSharedBetweenThePairsEvenWhenSomeGetNone() throws Exception {
        NetDevice device = NetDevice.reflect(4);
        try (BackendHarness backEnd = new BackendHarness(dir, device);
             NetPeer peer = NetPeer.open(options(backEnd.path, 3, false, 4))) {
            NetPeer.Result result = peer.run();
            assertTrue(result.complete(), result.summary());
            assertEquals(3, result.sent(), result.summary());
            assertEquals(3, result.received(), result.summary());
            long[] perPair = result.pairs().stream().mapToLong(NetPeer.PairResult::sent).toArray();
            assertArrayEquals(new long[] {1, 1, 1, 0}, perPair, "the first count % pairs take one more: " + result.summary());
        }
    }

    @Test
    @Timeout(60)
    void aFrontEndThatAsksForTwoPairsFromAOnePairBackEndFallsBackToPairZero() throws Exception {
        NetDevice device = NetDevice.reflect();
        long count = 3000;
        try (BackendHarness backEnd = new BackendHarness(dir, device);
             NetPeer peer = NetPeer.open(options(backEnd.path, count, false, 2))) {
            assertFalse(VirtioFeatures.has(peer.frontEnd().offeredFeatures(), NetFeatures.MQ), "a one-pair device");
            assertEquals(0, peer.frontEnd().protocolFeatures() & 1L << VhostUserProtocol.PROTOCOL_F_MQ);
            assertEquals(1, peer.queuePairs(), "fallback to one pair");
            NetPeer.Result result = peer.run();
            assertTrue(result.complete(), result.summary());
            assertEquals(count, result.received(), result.summary());
            assertEquals(1, result.pairs().size());
            assertEquals(1, device.pairs().size(), device.report());
            assertEquals(count, device.pairs().getFirst().statistics().rxFrames(), device.report());
        }
    }

    @Test
    @Timeout(60)
    void aFrontEndWithoutMultiqueueDrivesPairZeroOfAFourPairBackEnd() throws Exception {
        NetDevice device = NetDevice.reflect(4);
        long count = 3000;
        try (BackendHarness backEnd = new BackendHarness(dir, device);
             NetPeer peer = NetPeer.open(options(backEnd.path, count, true, 1))) {
            assertTrue(VirtioFeatures.has(peer.frontEnd().offeredFeatures(), NetFeatures.MQ), "offered");
            assertFalse(VirtioFeatures.has(peer.frontEnd().features(), NetFeatures.MQ), "not negotiated");
            NetPeer.Result result = peer.run();
            assertTrue(result.complete(), result.summary());
            assertEquals(count, result.received(), result.summary());
            assertEquals(1, device.pairs().size(), "only pair 0 started: " + device.report());
            assertEquals(count, devicePair(device, 0).statistics().txFrames(), device.report());
        }
    }

    @Test
    @Timeout(60)
    void theConfigSpaceHasMaxVirtqueuePairsAndAReadPastItsEndIsRefused() throws Exception {
        try (BackendHarness backEnd = new BackendHarness(dir, NetDevice.sink(3));
             VhostUserFrontEnd fe = VhostUserFrontEnd.open(FrontEndOptions.client(backEnd.path).queues(6).multiQueue(2)
                 .features(VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(NetFeatures.MQ))
                 .connectTimeout(Duration.ofSeconds(10)).build())) {
            assertEquals(3, fe.backEndQueueNum());
            byte[] config = fe.readConfig(0, NetDevice.CONFIG_SIZE);
            assertEquals(NetDevice.CONFIG_SIZE, config.length);
            byte[] expected = new byte[NetDevice.CONFIG_SIZE];
            expected[NetDevice.CONFIG_MAX_VIRTQUEUE_PAIRS] = 3;
            assertArrayEquals(expected, config, "mac, status and mtu zero (not offered), max_virtqueue_pairs 3");
            ProtocolException e = assertThrows(ProtocolException.class, () -> fe.readConfig(10, 4));
            assertTrue(e.getMessage().contains("back end refused GET_CONFIG for 4 bytes at offset 10"), e.getMessage());
        }
    }

    @Test
    @Timeout(60)
    void getConfigWithoutTheConfigProtocolFeatureClosesTheConnection() throws Exception {
        try (BackendHarness backEnd = new BackendHarness(dir, NetDevice.sink(2)); TestFrontEnd fe = backEnd.connect()) {
            fe.out.header(VhostUserProtocol.GET_CONFIG, 0, 14).putU32(0, NetDevice.CONFIG_MAX_VIRTQUEUE_PAIRS)
                .putU32(4, 2).putU32(8, 0);
            fe.channel.write(fe.out);
            assertTrue(fe.closedByBackEnd(Duration.ofSeconds(10)), "the back end closes the connection");
            backEnd.awaitLog("GET_CONFIG without the CONFIG protocol feature negotiated", Duration.ofSeconds(10));
        }
    }

    @Test
    @Timeout(60)
    void theBackEndRefusesPairOneWhenMultiqueueWasNotNegotiated() throws Exception {
        NetDevice device = NetDevice.reflect(2);
        try (BackendHarness backEnd = new BackendHarness(dir, device);
             VhostUserFrontEnd fe = VhostUserFrontEnd.open(FrontEndOptions.client(backEnd.path).queues(4)
                 .features(VirtioFeatures.bit(VirtioFeatures.VERSION_1)).connectTimeout(Duration.ofSeconds(10))
                 .build())) {
            assertFalse(VirtioFeatures.has(fe.features(), NetFeatures.MQ));
            assertThrows(ProtocolException.class, fe::startQueues, "vring 2 is refused and the connection closes");
            String line = backEnd.awaitLog("vring 2 (pair 1) cannot start", Duration.ofSeconds(10));
            assertTrue(line.contains("serves 1 of its 2 pairs with the negotiated features 0x140000000"), line);
        }
    }
}

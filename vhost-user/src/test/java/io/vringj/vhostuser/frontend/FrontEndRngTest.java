package io.vringj.vhostuser.frontend;

import io.vringj.device.rng.EntropySource;
import io.vringj.dma.DmaDriverQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.VhostUserProtocol;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Our front end drives our back end's virtio-rng over a real Unix socket, in one JVM. */
class FrontEndRngTest {
    static final long SEED = 0xF00D;
    static final long VERSION_1 = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
    static final long PACKED = VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
    static final long EVENT_IDX = VirtioFeatures.bit(VirtioFeatures.EVENT_IDX);
    static final long INDIRECT = VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC);
    /** virtio-net's MRG_RXBUF (bit 15): a device bit the rng back end does not offer. */
    static final long MRG_RXBUF = 1L << 15;

    @TempDir
    Path dir;

    String socket() {
        return dir.resolve("rng.sock").toString();
    }

    static void assertStream(long seed, long from, byte[] got, String what) {
        for (int i = 0; i < got.length; i++) {
            if (EntropySource.DeterministicEntropy.byteAt(seed, from + i) != got[i]) {
                throw new AssertionError(what + ": byte " + i + " (stream position " + (from + i) + ") is " + got[i]
                    + ", the back end's stream has " + EntropySource.DeterministicEntropy.byteAt(seed, from + i));
            }
        }
    }

    /** The vring base a packed ring reaches after {@code n} one-descriptor chains, avail and used alike. */
    static int packedBase(long n, int queueSize) {
        int position = (int) (n % queueSize);
        int wrap = (int) ((n / queueSize) & 1) ^ 1;
        int half = position | wrap << 15;
        return half | half << 16;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"split", "packed", "split+EVENT_IDX", "packed+EVENT_IDX"})
    void readsTheEntropyStreamStopsAtTheBaseItUsedAndResumesThere(String layout) throws Exception {
        long features = VERSION_1 | (layout.startsWith("packed") ? PACKED : 0)
            | (layout.endsWith("EVENT_IDX") ? EVENT_IDX : 0);
        int queueSize = layout.startsWith("packed") ? 12 : 16;
        try (InProcessBackEnd backEnd = InProcessBackEnd.listening(socket(), SEED);
             VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(FrontEndOptions.client(socket())
                 .queueSize(queueSize).features(features).build())) {
            assertEquals(features, frontEnd.features(), "everything wanted is offered by the rng back end");
            FrontEndQueue queue = frontEnd.startQueues()[0];
            assertTrue(queue.isRunning());
            RngReader reader = new RngReader(frontEnd, queue, 5, 333);
            long position = 0;
            for (int round = 0; round < 7; round++) {
                byte[] got = reader.round();
                assertEquals(5 * 333, got.length);
                assertStream(SEED, position, got, layout + " round " + round);
                position += got.length;
            }
            int base = frontEnd.stopQueue(0);
            long chains = reader.chainsUsed();
            assertEquals(35, chains);
            int expected = layout.startsWith("packed") ? packedBase(chains, queueSize) : (int) chains;
            assertEquals(expected, base, String.format("GET_VRING_BASE 0x%x after %d chains", base, chains));
            assertEquals(base, queue.vringBase());
            assertFalse(queue.isRunning());

            assertEquals(queue, frontEnd.startQueue(0), "a restart keeps the queue and its ring");
            for (int round = 0; round < 3; round++) {
                byte[] got = reader.round();
                assertStream(SEED, position, got, layout + " after restart, round " + round);
                position += got.length;
            }
            int after = frontEnd.stopQueue(0);
            int expectedAfter = layout.startsWith("packed") ? packedBase(50, queueSize) : 50;
            assertEquals(expectedAfter, after, "the back end resumed at the saved base and went on from there");
        }
    }

    @Test
    void negotiatesWhatBothSidesOfferAndTheCallerWants() throws Exception {
        long wanted = VERSION_1 | PACKED | INDIRECT | EVENT_IDX | MRG_RXBUF;
        try (InProcessBackEnd backEnd = InProcessBackEnd.listening(socket(), SEED);
             VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(FrontEndOptions.client(socket())
                 .features(wanted).build())) {
            assertTrue(VirtioFeatures.has(frontEnd.offeredFeatures(), VhostUserProtocol.F_PROTOCOL_FEATURES));
            assertEquals(VERSION_1 | PACKED | INDIRECT | EVENT_IDX, frontEnd.features(),
                "MRG_RXBUF is wanted but not offered; bit 30 is the transport's, not a device feature");
            assertEquals(1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK, frontEnd.protocolFeatures(),
                "our back end offers REPLY_ACK and BACKEND_REQ; the front end wants REPLY_ACK, STATUS (and MQ)");
            assertEquals(-1, frontEnd.backEndQueueNum(), "no GET_QUEUE_NUM without multiqueue");
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"split", "packed"})
    void inOrderIsNegotiatedOnlyWhenBothSidesOfferItAndThenDrivesTheQueues(String layout) throws Exception {
        long inOrder = VirtioFeatures.bit(VirtioFeatures.IN_ORDER);
        long wanted = VERSION_1 | inOrder | EVENT_IDX | (layout.equals("packed") ? PACKED : 0);
        try (InProcessBackEnd backEnd = InProcessBackEnd.listening(socket(), InProcessBackEnd.inOrderRng(SEED));
             VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(FrontEndOptions.client(socket())
                 .queueSize(16).features(wanted).build())) {
            assertEquals(wanted, frontEnd.features(), "both sides offer IN_ORDER");
            FrontEndQueue queue = frontEnd.startQueues()[0];
            assertTrue(queue.driverQueue().inOrder(), "the front end's ring takes the negotiated mode");
            RngReader reader = new RngReader(frontEnd, queue, 5, 333);
            long position = 0;
            for (int round = 0; round < 5; round++) {
                byte[] got = reader.round();
                assertStream(SEED, position, got, layout + " in order, round " + round);
                position += got.length;
            }
        }
        try (InProcessBackEnd backEnd = InProcessBackEnd.listening(socket(), SEED);
             VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(FrontEndOptions.client(socket())
                 .queueSize(16).features(wanted).build())) {
            assertFalse(VirtioFeatures.has(frontEnd.features(), VirtioFeatures.IN_ORDER),
                "the plain rng back end does not offer IN_ORDER");
            FrontEndQueue queue = frontEnd.startQueues()[0];
            assertFalse(queue.driverQueue().inOrder());
            assertStream(SEED, 0, new RngReader(frontEnd, queue, 5, 333).round(), layout + " not in order");
        }
    }

    @Test
    void refusesABackEndThatLacksARequiredFeature() throws Exception {
        List<String> fdsBefore;
        try (InProcessBackEnd backEnd = InProcessBackEnd.listening(socket(), SEED)) {
            fdsBefore = Resources.openFds();
            ProtocolException e = assertThrows(ProtocolException.class, () -> VhostUserFrontEnd.open(
                FrontEndOptions.client(socket()).features(VERSION_1 | MRG_RXBUF).requireFeatures(MRG_RXBUF).build()));
            assertTrue(e.getMessage().contains("missing 0x8000"), e.getMessage());
            List<String> fdsAfter = Resources.awaitFds(fdsBefore, 2000);
            assertEquals(fdsBefore.size(), fdsAfter.size(), "fds before " + fdsBefore + "\nafter " + fdsAfter);
        }
    }

    @Test
    void offersThroughDmaDriverQueueWithIndirectTables() throws Exception {
        long features = VERSION_1 | INDIRECT;
        try (InProcessBackEnd backEnd = InProcessBackEnd.listening(socket(), SEED);
             VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(FrontEndOptions.client(socket())
                 .queueSize(8).features(features).build())) {
            FrontEndQueue queue = frontEnd.startQueues()[0];
            int maxBuffers = 3;
            DmaDriverQueue dmaQueue = new DmaDriverQueue(queue.driverQueue(), frontEnd.dma(), maxBuffers,
                frontEnd.allocate(16L * maxBuffers * 8, 16));
            MemorySegment[] buffers = {frontEnd.allocate(10, 8), frontEnd.allocate(20, 8), frontEnd.allocate(30, 8)};
            String token = "request-1";
            int head = dmaQueue.addIndirect(buffers, 0, 3, token);
            assertTrue(head >= 0);
            assertEquals(7, queue.driverQueue().numFree(), "one ring descriptor for the whole indirect table");
            if (dmaQueue.publish()) {
                queue.kick();
            }
            int used;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while ((used = dmaQueue.pollUsed()) == DriverQueue.NONE) {
                assertTrue(System.nanoTime() < deadline, "no used chain in 10 s");
                if (!dmaQueue.enableInterrupts()) {
                    queue.awaitCall(100);
                }
            }
            assertEquals(head, used);
            assertEquals(60, dmaQueue.usedLength());
            assertEquals(token, dmaQueue.usedToken());
            long position = 0;
            for (MemorySegment b : buffers) {
                byte[] got = b.toArray(ValueLayout.JAVA_BYTE);
                assertStream(SEED, position, got, "buffer of " + got.length);
                position += got.length;
            }
        }
    }

    @Test
    void detectsABackEndThatGoesAwayAndReconnectsWithoutLeakingFdsOrMappings() throws Exception {
        String memoryName = "vringj-reconnect-test";
        FrontEndOptions options = FrontEndOptions.client(socket()).queueSize(8).features(VERSION_1)
            .memoryName(memoryName).connectTimeout(Duration.ofSeconds(5)).build();
        // warm up: the first run loads classes and opens the jars they come from
        try (InProcessBackEnd backEnd = InProcessBackEnd.listening(socket(), SEED);
             VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(options)) {
            new RngReader(frontEnd, frontEnd.startQueues()[0], 2, 16).round();
        }
        List<String> fdsBefore = Resources.awaitFds(Resources.openFds(), 0);
        assertEquals(0, Resources.memfdMappings(memoryName));

        InProcessBackEnd first = InProcessBackEnd.listening(socket(), SEED);
        VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(options);
        CountDownLatch lost = new CountDownLatch(1);
        AtomicReference<String> reason = new AtomicReference<>();
        frontEnd.addListener((fe, why) -> {
            reason.set(why);
            lost.countDown();
        });
        FrontEndQueue queue = frontEnd.startQueues()[0];
        assertStream(SEED, 0, new RngReader(frontEnd, queue, 2, 16).round(), "first connection");
        String firstMemory = frontEnd.memoryName();
        assertTrue(Resources.memfdMappings(firstMemory) >= 1, "mapped by the front end (and by the back end, which "
            + "shares this JVM) - " + firstMemory);

        first.close();
        assertTrue(lost.await(5, TimeUnit.SECONDS), "the listener hears of the lost back end");
        assertEquals(FrontEndState.DISCONNECTED, frontEnd.state());
        assertTrue(reason.get().contains("hung up"), reason.get());
        IllegalStateException dead = assertThrows(IllegalStateException.class, () -> frontEnd.startQueue(0));
        assertTrue(dead.getMessage().contains("DISCONNECTED"), dead.getMessage());

        try (InProcessBackEnd second = InProcessBackEnd.listening(socket(), SEED)) {
            frontEnd.reconnect();
            assertEquals(FrontEndState.CONNECTED, frontEnd.state());
            assertEquals(2, frontEnd.connections());
            assertEquals(0, Resources.memfdMappings(firstMemory), "the first connection's memory is unmapped");
            assertThrows(IllegalStateException.class, () -> queue.driverQueue().pollUsed(),
                "the old queue's ring memory is gone: access fails instead of touching unmapped memory");
            FrontEndQueue again = frontEnd.startQueues()[0];
            assertStream(SEED, 0, new RngReader(frontEnd, again, 2, 16).round(), "second connection (a new back end)");
            frontEnd.close();
            assertEquals(FrontEndState.CLOSED, frontEnd.state());
        }
        assertEquals(0, Resources.memfdMappings(memoryName));
        List<String> fdsAfter = Resources.awaitFds(fdsBefore, 2000);
        assertEquals(fdsBefore.size(), fdsAfter.size(), "fds before " + fdsBefore + "\nafter " + fdsAfter);
    }

    @Test
    void aFrontEndWithNoBackEndTimesOutNamingThePath() {
        long start = System.nanoTime();
        Exception e = assertThrows(Exception.class, () -> VhostUserFrontEnd.open(FrontEndOptions.client(socket())
            .connectTimeout(Duration.ofMillis(200)).build()));
        assertTrue(e.getMessage().contains(socket()) && e.getMessage().contains("ENOENT"), e.getMessage());
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "bounded by the connect time-out");
    }
}

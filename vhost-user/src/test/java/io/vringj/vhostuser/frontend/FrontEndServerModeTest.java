package io.vringj.vhostuser.frontend;

import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.VhostUserProtocol;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Server mode (QEMU's {@code server=on}, DPDK's {@code server=1}): the front end listens, the back end connects. */
class FrontEndServerModeTest {
    static final long SEED = 0xBEEF;

    @TempDir
    Path dir;

    String socket() {
        return dir.resolve("front.sock").toString();
    }

    /** Opens a listening front end on another thread; returns once the socket file exists. */
    CompletableFuture<VhostUserFrontEnd> openListening(FrontEndOptions options) throws InterruptedException {
        CompletableFuture<VhostUserFrontEnd> future = new CompletableFuture<>();
        Thread.ofPlatform().name("test-open-server-mode").start(() -> {
            try {
                future.complete(VhostUserFrontEnd.open(options));
            } catch (Exception e) {
                future.completeExceptionally(e);
            }
        });
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!Files.exists(Path.of(options.socketPath())) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertTrue(Files.exists(Path.of(options.socketPath())), "the front end listens on " + options.socketPath());
        return future;
    }

    @Test
    void ourRngBackEndConnectsAndServesTheFrontEndThenAnotherAfterReconnect() throws Exception {
        FrontEndOptions options = FrontEndOptions.server(socket()).queueSize(16)
            .features(VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_PACKED))
            .build();
        CompletableFuture<VhostUserFrontEnd> opening = openListening(options);
        InProcessBackEnd first = InProcessBackEnd.connecting(socket(), SEED);
        try (VhostUserFrontEnd frontEnd = opening.get(10, TimeUnit.SECONDS)) {
            CountDownLatch lost = new CountDownLatch(1);
            frontEnd.addListener((fe, reason) -> lost.countDown());
            RngReader reader = new RngReader(frontEnd, frontEnd.startQueues()[0], 4, 100);
            FrontEndRngTest.assertStream(SEED, 0, reader.round(), "server mode");
            FrontEndRngTest.assertStream(SEED, 400, reader.round(), "server mode, second round");
            assertEquals(FrontEndRngTest.packedBase(8, 16), frontEnd.stopQueue(0));

            first.close();
            assertTrue(lost.await(5, TimeUnit.SECONDS), "the back end's hang-up is reported");
            // the listening socket stays: a back end that comes back connects to the same path
            assertTrue(Files.exists(Path.of(socket())));
            CompletableFuture<Void> reconnecting = CompletableFuture.runAsync(() -> {
                try {
                    frontEnd.reconnect();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            try (InProcessBackEnd second = InProcessBackEnd.connecting(socket(), SEED + 1)) {
                reconnecting.get(10, TimeUnit.SECONDS);
                assertEquals(FrontEndState.CONNECTED, frontEnd.state());
                RngReader again = new RngReader(frontEnd, frontEnd.startQueues()[0], 2, 50);
                FrontEndRngTest.assertStream(SEED + 1, 0, again.round(), "the second back end's stream");
            }
        }
        assertFalse(Files.exists(Path.of(socket())), "close removes the socket file");
    }

    @Test
    void aScriptedBackEndThatConnectsIsNegotiatedWith() throws Exception {
        FrontEndOptions options = FrontEndOptions.server(socket()).queueSize(8).build();
        CompletableFuture<VhostUserFrontEnd> opening = openListening(options);
        try (ScriptedBackEnd backEnd = ScriptedBackEnd.connecting(socket()).start()) {
            try (VhostUserFrontEnd frontEnd = opening.get(10, TimeUnit.SECONDS)) {
                assertEquals(VirtioFeatures.bit(VirtioFeatures.VERSION_1), frontEnd.features());
                frontEnd.startQueues();
            }
            backEnd.close();
            assertEquals(List.of("SET_OWNER", "GET_FEATURES"),
                backEnd.received.subList(0, 2).stream().map(VhostUserProtocol::requestName).toList());
            assertTrue(backEnd.received.contains(VhostUserProtocol.SET_VRING_KICK));
            assertEquals(VhostUserProtocol.GET_VRING_BASE, backEnd.received.getLast(),
                "closing a front end with a running queue stops it first");
        }
    }

    @Test
    void noBackEndConnectingIsATimeOutThatLeavesNothingBehind() throws Exception {
        List<String> before = Resources.openFds();
        long start = System.nanoTime();
        NativeCallException e = assertThrows(NativeCallException.class, () -> VhostUserFrontEnd.open(
            FrontEndOptions.server(socket()).connectTimeout(Duration.ofMillis(200)).build()));
        assertEquals("accept failed: errno 110 (ETIMEDOUT), no back end connected to " + socket() + " within 200 ms",
            e.getMessage());
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5));
        assertFalse(Files.exists(Path.of(socket())), "the socket file is removed");
        List<String> after = Resources.awaitFds(before, 2000);
        assertEquals(before.size(), after.size(), "fds before " + before + "\nafter " + after);
    }
}

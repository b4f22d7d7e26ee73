package io.vringj.vhostuser.channel;

import io.vringj.vhostuser.frontend.net.Testpmd;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Interop ({@code ./mvnw -Pinterop verify}): the channel against DPDK's {@code dpdk-testpmd} in
 * {@code macswap} forwarding, split and packed: the connecting end against its vhost-user back end
 * ({@code net_vhost}), the serving end against its front end ({@code net_virtio_user}). N
 * messages sent, N received back, each with its bytes 0..5 and 6..11 swapped (the two MAC
 * addresses) and the rest intact, in order; VIRTIO_F_IN_ORDER negotiated both ways. Logs stay under
 * {@code target/interop/dpdk-channel/<config>/}.
 */
@Tag("interop")
class DpdkChannelInteropTest {
    private static final ValueLayout.OfLong SEQUENCE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static Path work;
    private static Path testpmd;

    @BeforeAll
    static void setUp() throws Exception {
        work = Path.of(property("vringj.interop.dir")).toAbsolutePath().resolve("dpdk-channel");
        testpmd = Testpmd.setUp(work.getParent(), Path.of(property("vringj.interop.scripts")).toAbsolutePath());
    }

    static String property(String name) {
        String value = System.getProperty(name);
        if (value == null) {
            throw new IllegalStateException("system property " + name + " is not set; run ./mvnw -Pinterop verify");
        }
        return value;
    }

    @ParameterizedTest(name = "{0} {1} B")
    @CsvSource({"split,64", "packed,64", "split,1500", "packed,1500"})
    @Timeout(180)
    void macswapSendsEveryMessageBack(String layout, int size) throws Exception {
        String config = "macswap-" + layout + "-" + size;
        Path dir = work.resolve(config);
        Path sockDir = Files.createTempDirectory("vringj-");
        Path socket = sockDir.resolve("vhost.sock");
        long count = 100_000;
        try (Testpmd dpdk = Testpmd.backEnd(testpmd, dir, socket.toString(), false, List.of("--forward-mode=macswap"))) {
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (!Files.exists(socket)) {
                assertTrue(dpdk.isAlive(), "testpmd exited; see " + dpdk.log());
                assertTrue(System.nanoTime() < deadline, "testpmd made no socket in 60 s; see " + dpdk.log());
                Thread.sleep(50);
            }
            dpdk.awaitForwarding(60_000);
            ChannelOptions options = ChannelOptions.builder(socket).packed(layout.equals("packed"))
                .connectTimeout(Duration.ofSeconds(30)).build();
            long received;
            try (MessageChannel channel = MessageChannel.connect(options)) {
                assertEquals(layout.equals("packed"), channel.packed());
                assertTrue(channel.inOrder(), "DPDK takes VIRTIO_F_IN_ORDER when offered and offers it");
                received = exchange(channel, count, size);
            }
            Testpmd.Counters counters = dpdk.stop();
            assertEquals(count, received, () -> config + ": testpmd counted " + counters);
            assertEquals(count, counters.rxPackets(), () -> config + ": " + counters);
        } finally {
            Files.deleteIfExists(socket);
            Files.deleteIfExists(sockDir);
        }
    }

    @ParameterizedTest(name = "{0} {1} B")
    @CsvSource({"split,64", "packed,64", "split,1500", "packed,1500"})
    @Timeout(180)
    void theServingEndGetsEveryMessageBackFromVirtioUser(String layout, int size) throws Exception {
        String config = "serve-macswap-" + layout + "-" + size;
        Path dir = work.resolve(config);
        Path sockDir = Files.createTempDirectory("vringj-");
        Path socket = sockDir.resolve("channel.sock");
        long count = 100_000;
        // DPDK without hugepages shares an unsealed memfd
        ChannelOptions options = ChannelOptions.builder(socket).packed(layout.equals("packed"))
            .connectTimeout(Duration.ofSeconds(60)).allowUnsealedMemory(true).build();
        java.util.concurrent.CompletableFuture<MessageChannel> served = java.util.concurrent.CompletableFuture
            .supplyAsync(() -> {
                try {
                    return MessageChannel.serve(options);
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        while (!Files.exists(socket)) {
            Thread.sleep(10);
        }
        try (Testpmd dpdk = Testpmd.frontEnd(testpmd, dir, socket.toString(),
                 layout.equals("packed") ? ",packed_vq=1" : "", List.of("--forward-mode=macswap"))) {
            long received;
            try (MessageChannel channel = served.get(60, java.util.concurrent.TimeUnit.SECONDS)) {
                // the rings start before testpmd's port does: its tx drops what it forwards until then
                dpdk.awaitForwarding(60_000);
                assertEquals(layout.equals("packed"), channel.packed());
                assertTrue(channel.inOrder(), "DPDK takes VIRTIO_F_IN_ORDER when offered and offers it");
                received = exchange(channel, count, size);
            }
            Testpmd.Counters counters = dpdk.stop();
            assertEquals(count, received, () -> config + ": testpmd counted " + counters);
            assertEquals(count, counters.rxPackets(), () -> config + ": " + counters);
        } finally {
            served.cancel(true);
            Files.deleteIfExists(socket);
            Files.deleteIfExists(sockDir);
        }
    }

    /** Sends {@code count} messages, never more in flight than the rx ring holds (so none is dropped), and checks each one back. */
    private static long exchange(MessageChannel channel, long count, int size) {
        long[] received = new long[1];
        MessageHandler check = (buffer, length) -> {
            long seq = received[0];
            assertEquals(size, length, "length of message " + seq);
            for (int j = 0; j < 12; j++) {
                // macswap exchanges destination and source MAC: bytes 0..5 and 6..11
                int from = j < 6 ? j + 6 : j - 6;
                assertEquals(Messages.content(seq, from), buffer.get(ValueLayout.JAVA_BYTE, j), "byte " + j + " of " + seq);
            }
            assertEquals(seq, buffer.get(SEQUENCE, 12), "in order");
            for (int j = 20; j < length; j++) {
                if (Messages.content(seq, j) != buffer.get(ValueLayout.JAVA_BYTE, j)) {
                    fail("byte " + j + " of message " + seq + " differs");
                }
            }
            received[0]++;
        };
        long sent = 0;
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (received[0] < count) {
            assertTrue(System.nanoTime() < deadline, "received " + received[0] + " of " + count + " in 120 s");
            while (sent < count && sent - received[0] < 128) {
                MemorySegment m = channel.tryClaim(size);
                if (m == null) {
                    break;
                }
                Messages.fill(m, sent, size);
                m.set(SEQUENCE, 12, sent);
                channel.commit();
                sent++;
            }
            channel.flush();
            if (channel.poll(check, 32) == 0) {
                Thread.onSpinWait();
            }
        }
        return received[0];
    }
}

package io.vringj.vhostuser.frontend.net;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Interop ({@code ./mvnw -Pinterop verify}): our front end ({@code net-peer} from the executable
 * jar) drives DPDK's vhost-user back end ({@code dpdk-testpmd} with {@code net_vhost}), split and
 * packed. testpmd in rxonly must count every frame we sent (also over two queue pairs, each pair's
 * share on its own queue); in txonly we must receive its frames.
 * Logs and counters stay under {@code target/interop/dpdk-front-end/<config>/}.
 */
@Tag("interop")
class DpdkFrontEndInteropTest {
    private static Path work;
    private static Path jar;
    private static Path testpmd;

    @BeforeAll
    static void setUp() throws Exception {
        work = Path.of(property("vringj.interop.dir")).toAbsolutePath().resolve("dpdk-front-end");
        jar = Path.of(property("vringj.interop.jar")).toAbsolutePath();
        assertTrue(Files.isRegularFile(jar), "the executable jar " + jar + " is built in the package phase");
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
    void dpdkRxonlyCountsEveryFrameWeSend(String layout, int size) throws Exception {
        String config = "rxonly-" + layout + "-" + size;
        Path dir = work.resolve(config);
        Path sockDir = Files.createTempDirectory("vringj-");
        String socket = sockDir.resolve("vhost.sock").toString();
        long count = 200_000;
        try (Testpmd dpdk = Testpmd.backEnd(testpmd, dir, socket, false, List.of("--forward-mode=rxonly"))) {
            awaitFile(Path.of(socket), dpdk);
            dpdk.awaitForwarding(60_000);
            List<String> args = new ArrayList<>(List.of("--socket", socket, "--mode", "send", "--count",
                Long.toString(count), "--size", Integer.toString(size), "--duration", "90"));
            if (layout.equals("packed")) {
                args.add("--packed");
            }
            String ours = netPeer(dir, config, 0, args.toArray(String[]::new));
            Testpmd.Counters counters = dpdk.stop();
            record(config, ours, counters);
            assertEquals(count, counter(ours, "sent"), ours);
            assertEquals(count, counters.rxPackets(), () -> config + ": testpmd counted " + counters + "; ours: " + ours);
        } finally {
            Files.deleteIfExists(Path.of(socket));
            Files.deleteIfExists(sockDir);
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"split", "packed"})
    @Timeout(180)
    void dpdkRxonlyCountsWhatWeSendOnTwoQueuePairs(String layout) throws Exception {
        String config = "rxonly-2-pairs-" + layout;
        Path dir = work.resolve(config);
        Path sockDir = Files.createTempDirectory("vringj-");
        String socket = sockDir.resolve("vhost.sock").toString();
        long count = 100_000;
        try (Testpmd dpdk = Testpmd.backEnd(testpmd, dir, socket, false, 2, List.of("--forward-mode=rxonly"))) {
            awaitFile(Path.of(socket), dpdk);
            dpdk.awaitForwarding(60_000);
            List<String> args = new ArrayList<>(List.of("--socket", socket, "--mode", "send", "--count",
                Long.toString(count), "--queue-pairs", "2", "--duration", "90"));
            if (layout.equals("packed")) {
                args.add("--packed");
            }
            String ours = netPeer(dir, config, 0, args.toArray(String[]::new));
            Testpmd.Counters[] counters = dpdk.stopAndRead();
            record(config, ours, counters[0]);
            assertEquals(2, counter(ours, "queuePairs"), "DPDK's back end offers MQ: both pairs driven\n" + ours);
            assertEquals(count, counter(ours, "sent"), ours);
            assertEquals(count, counters[0].rxPackets(), () -> config + ": testpmd counted " + counters[0] + "; ours: "
                + ours);
            assertEquals(3, counters.length, () -> "testpmd forwarded on two queues: " + Arrays.toString(counters));
            for (int q = 0; q < 2; q++) {
                int queue = q;
                // each pair sends half of the count on its own tx queue: testpmd receives it on that queue
                assertEquals(count / 2, counters[q + 1].rxPackets(), () -> "queue " + queue + ": "
                    + Arrays.toString(counters) + "; ours: " + ours);
            }
        } finally {
            Files.deleteIfExists(Path.of(socket));
            Files.deleteIfExists(sockDir);
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"split", "packed"})
    @Timeout(180)
    void weReceiveWhatDpdkTxonlySends(String layout) throws Exception {
        String config = "txonly-" + layout;
        Path dir = work.resolve(config);
        Path sockDir = Files.createTempDirectory("vringj-");
        String socket = sockDir.resolve("vhost.sock").toString();
        long count = 100_000;
        try (Testpmd dpdk = Testpmd.backEnd(testpmd, dir, socket, false, List.of("--forward-mode=txonly",
                 "--txpkts=64"))) {
            awaitFile(Path.of(socket), dpdk);
            dpdk.awaitForwarding(60_000);
            List<String> args = new ArrayList<>(List.of("--socket", socket, "--mode", "recv", "--count",
                Long.toString(count), "--duration", "90"));
            if (layout.equals("packed")) {
                args.add("--packed");
            }
            String ours = netPeer(dir, config, 0, args.toArray(String[]::new));
            Testpmd.Counters counters = dpdk.stop();
            record(config, ours, counters);
            long received = counter(ours, "received");
            assertTrue(received >= count, ours);
            assertEquals(64L * received, counter(ours, "receivedBytes"), "every frame is testpmd's 64 bytes: " + ours);
            assertEquals(0, counter(ours, "drops"), ours);
            assertTrue(counters.txPackets() >= received, () -> "testpmd sent " + counters + ", we received " + received);
        } finally {
            Files.deleteIfExists(Path.of(socket));
            Files.deleteIfExists(sockDir);
        }
    }

    /**
     * VIRTIO_F_IN_ORDER, which DPDK's vhost library offers: our rings take its batches back (its
     * packed dequeue returns a batch of our tx buffers with one used descriptor) and nothing is
     * lost or duplicated either way.
     */
    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"split,rxonly", "packed,rxonly", "split,txonly", "packed,txonly"})
    @Timeout(180)
    void inOrderIsNegotiatedWithDpdkAndEveryFrameArrives(String layout, String forward) throws Exception {
        String config = "in-order-" + forward + "-" + layout;
        Path dir = work.resolve(config);
        Path sockDir = Files.createTempDirectory("vringj-");
        String socket = sockDir.resolve("vhost.sock").toString();
        boolean send = forward.equals("rxonly");
        long count = 200_000;
        List<String> testpmdArgs = send ? List.of("--forward-mode=rxonly") : List.of("--forward-mode=txonly", "--txpkts=64");
        try (Testpmd dpdk = Testpmd.backEnd(testpmd, dir, socket, false, testpmdArgs)) {
            awaitFile(Path.of(socket), dpdk);
            dpdk.awaitForwarding(60_000);
            List<String> args = new ArrayList<>(List.of("--socket", socket, "--mode", send ? "send" : "recv", "--count",
                Long.toString(count), "--duration", "90", "--in-order"));
            if (layout.equals("packed")) {
                args.add("--packed");
            }
            String ours = netPeer(dir, config, 0, args.toArray(String[]::new));
            Testpmd.Counters counters = dpdk.stop();
            record(config, ours, counters);
            Matcher features = Pattern.compile("features 0x([0-9a-f]+)").matcher(ours);
            assertTrue(features.find(), ours);
            assertTrue((Long.parseUnsignedLong(features.group(1), 16) & (1L << 35)) != 0,
                "DPDK's back end offers IN_ORDER and we asked for it: " + features.group());
            if (send) {
                assertEquals(count, counter(ours, "sent"), ours);
                assertEquals(count, counters.rxPackets(), () -> config + ": testpmd counted " + counters + "; ours: "
                    + ours);
            } else {
                long received = counter(ours, "received");
                assertTrue(received >= count, ours);
                assertEquals(64L * received, counter(ours, "receivedBytes"), "every frame is testpmd's 64 bytes: " + ours);
                assertEquals(0, counter(ours, "drops"), ours);
            }
        } finally {
            Files.deleteIfExists(Path.of(socket));
            Files.deleteIfExists(sockDir);
        }
    }

    /** Server mode both ways: we listen, testpmd's back end connects ({@code client=1}). */
    @Test
    @Timeout(180)
    void dpdkBackEndConnectsToOurListeningFrontEnd() throws Exception {
        String config = "rxonly-server";
        Path dir = work.resolve(config);
        Files.createDirectories(dir);
        Path sockDir = Files.createTempDirectory("vringj-");
        Path socket = sockDir.resolve("vhost.sock");
        long count = 50_000;
        Process ours = startNetPeer(dir, "--socket", socket.toString(), "--server", "--mode", "send", "--count",
            Long.toString(count), "--connect-timeout", "60");
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.exists(socket)) {
                assertTrue(ours.isAlive(), () -> "net-peer exited before listening\n" + Testpmd.tail(dir.resolve("net-peer.log")));
                assertTrue(System.nanoTime() < deadline, "net-peer did not listen on " + socket);
                Thread.sleep(50);
            }
            try (Testpmd dpdk = Testpmd.backEnd(testpmd, dir, socket.toString(), true, List.of("--forward-mode=rxonly"))) {
                String out = awaitNetPeer(ours, dir, 0);
                Testpmd.Counters counters = dpdk.stop();
                record(config, out, counters);
                assertEquals(count, counters.rxPackets(), () -> "testpmd counted " + counters + "; ours: " + out);
            }
        } finally {
            ours.destroyForcibly();
            Files.deleteIfExists(socket);
            Files.deleteIfExists(sockDir);
        }
    }

    static Process startNetPeer(Path dir, String... args) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "-jar", jar.toString(), "net-peer"));
        cmd.addAll(List.of(args));
        Files.writeString(dir.resolve("net-peer-command.txt"), String.join(" ", cmd) + "\n");
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("net-peer.log").toFile())
            .start();
    }

    static String awaitNetPeer(Process p, Path dir, int expectedExit) throws Exception {
        Path log = dir.resolve("net-peer.log");
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("net-peer did not finish in 120 s; " + log + "\n" + Testpmd.tail(log));
        }
        String out = Files.readString(log, StandardCharsets.UTF_8);
        assertEquals(expectedExit, p.exitValue(), () -> "net-peer exit status; " + log + "\n" + out);
        return out;
    }

    /** Runs net-peer from the jar to its end and returns its output. */
    static String netPeer(Path dir, String config, int expectedExit, String... args) throws Exception {
        Files.createDirectories(dir);
        return awaitNetPeer(startNetPeer(dir, args), dir, expectedExit);
    }

    /** @return the value of the first {@code name=N} in net-peer's statistics line (the totals come before each pair's) */
    static long counter(String out, String name) {
        Matcher m = Pattern.compile("net-peer: .*?\\b" + name + "=(\\d+)").matcher(out);
        assertTrue(m.find(), () -> "no " + name + "= in net-peer's output:\n" + out);
        return Long.parseLong(m.group(1));
    }

    static void record(String config, String ours, Testpmd.Counters counters) throws Exception {
        Matcher m = Pattern.compile("net-peer: (sent=.*)").matcher(ours);
        String line = config + " ours: " + (m.find() ? m.group(1) : "(none)") + " testpmd: " + counters + "\n";
        Files.writeString(work.resolve("counters.txt"), line, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        System.out.print("interop " + line);
    }

    static void awaitFile(Path file, Testpmd dpdk) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.exists(file)) {
            assertTrue(dpdk.isAlive(), () -> "testpmd exited before creating " + file + "\n" + Testpmd.tail(dpdk.log()));
            assertTrue(System.nanoTime() < deadline, () -> "testpmd did not create " + file + "\n" + Testpmd.tail(dpdk.log()));
            Thread.sleep(50);
        }
    }
}

package io.vringj.vhostuser.backend;

import io.vringj.vhostuser.frontend.net.Testpmd;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Interop ({@code ./mvnw -Pinterop verify}): DPDK's vhost-user front end ({@code dpdk-testpmd}
 * with {@code net_virtio_user}) drives our back end ({@code net} from the executable jar), split
 * and packed: txonly into {@code sink} (our counters match testpmd's), and macswap / io with
 * {@code --tx-first} against {@code reflect} (frames go round), and with two queue pairs
 * ({@code queues=2}, {@code --rxq=2 --txq=2}: MQ negotiated, both pairs carry frames, each on
 * its own pair). Logs and counters stay under
 * {@code target/interop/dpdk-back-end/<config>/}.
 */
@Tag("interop")
class DpdkBackEndInteropTest {
    private static final Pattern TX = Pattern.compile("virtio-net \\w+: tx (\\d+) frames / (\\d+) bytes, rx (\\d+) frames");
    private static final Pattern PAIR = Pattern.compile(
        "virtio-net-\\w+-pair-(\\d+): tx (\\d+) frames / (\\d+) bytes, rx (\\d+) frames");
    private static Path work;
    private static Path jar;
    private static Path testpmd;

    @BeforeAll
    static void setUp() throws Exception {
        work = Path.of(property("vringj.interop.dir")).toAbsolutePath().resolve("dpdk-back-end");
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

    /** The counters our back end printed on exit: {tx frames, tx bytes, rx frames}. */
    record Ours(long txFrames, long txBytes, long rxFrames, String log) {
    }

    /** Runs our back end, then testpmd's front end for a few seconds; returns both sides' counters. */
    static Object[] run(String config, String mode, String vdevOptions, List<String> forward) throws Exception {
        return run(config, mode, 1, vdevOptions, forward);
    }

    /**
     * As {@link #run(String, String, String, List)} with {@code queuePairs} pairs on both sides;
     * returns {ours, testpmd's accumulated counters, testpmd's counters per queue (Counters[])}.
     */
    static Object[] run(String config, String mode, int queuePairs, String vdevOptions, List<String> forward)
        throws Exception {
        Path dir = work.resolve(config);
        Files.createDirectories(dir);
        Path sockDir = Files.createTempDirectory("vringj-");
        Path socket = sockDir.resolve("net.sock");
        Path log = dir.resolve("back-end.log");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process ours = new ProcessBuilder(java, "-jar", jar.toString(), "net", "--socket", socket.toString(), "--mode",
            mode, "--queue-pairs", Integer.toString(queuePairs), "--allow-unsealed-memory").redirectErrorStream(true)
            .redirectOutput(log.toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.exists(socket)) {
                assertTrue(ours.isAlive(), () -> "our back end exited before listening\n" + Testpmd.tail(log));
                assertTrue(System.nanoTime() < deadline, "our back end did not listen on " + socket);
                Thread.sleep(50);
            }
            Testpmd.Counters[] all;
            try (Testpmd dpdk = Testpmd.frontEnd(testpmd, dir, socket.toString(), queuePairs, vdevOptions, forward)) {
                dpdk.awaitForwarding(60_000);
                Thread.sleep(3000);
                all = dpdk.stopAndRead();
            }
            Testpmd.Counters counters = all[0];
            // SIGTERM: the shutdown hook prints the device's report
            ours.destroy();
            assertTrue(ours.waitFor(30, TimeUnit.SECONDS), "our back end stops on SIGTERM");
            String out = Files.readString(log, StandardCharsets.UTF_8);
            assertFalse(out.contains("closing connection"), () -> config + ": our back end closed a connection\n" + out);
            Matcher m = TX.matcher(out);
            Ours last = null;
            while (m.find()) {
                last = new Ours(Long.parseLong(m.group(1)), Long.parseLong(m.group(2)), Long.parseLong(m.group(3)), out);
            }
            if (last == null) {
                fail(config + ": no report from our back end\n" + out);
            }
            String line = config + " ours: tx=" + last.txFrames() + " txBytes=" + last.txBytes() + " rx=" + last.rxFrames()
                + " testpmd: " + counters + "\n";
            Files.writeString(work.resolve("counters.txt"), line, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            System.out.print("interop " + line);
            return new Object[] {last, counters, Arrays.copyOfRange(all, 1, all.length)};
        } finally {
            ours.destroyForcibly();
            Files.deleteIfExists(socket);
            Files.deleteIfExists(sockDir);
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"split", "packed"})
    @Timeout(180)
    void dpdkTxonlyIntoOurSink(String layout) throws Exception {
        Object[] r = run("txonly-sink-" + layout, "sink", layout.equals("packed") ? ",packed_vq=1" : "",
            List.of("--forward-mode=txonly", "--txpkts=64"));
        Ours ours = (Ours) r[0];
        Testpmd.Counters dpdk = (Testpmd.Counters) r[1];
        assertTrue(ours.txFrames() > 0, "our sink saw frames: " + ours.log());
        assertEquals(64 * ours.txFrames(), ours.txBytes(), "every frame is testpmd's 64 bytes");
        // testpmd counts what it put on the ring; at stop at most a ring's worth is still unread
        assertTrue(ours.txFrames() <= dpdk.txPackets() && dpdk.txPackets() - ours.txFrames() <= 256,
            () -> "ours " + ours.txFrames() + " vs testpmd " + dpdk);
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"split,macswap", "packed,macswap", "split,io", "packed,io"})
    @Timeout(180)
    void dpdkForwardsAgainstOurReflect(String layout, String forward) throws Exception {
        Object[] r = run(forward + "-reflect-" + layout, "reflect", layout.equals("packed") ? ",packed_vq=1" : "",
            List.of("--forward-mode=" + forward, "--tx-first"));
        Ours ours = (Ours) r[0];
        Testpmd.Counters dpdk = (Testpmd.Counters) r[1];
        // --tx-first sends one burst (32 frames); more than that received means frames went round
        assertTrue(dpdk.rxPackets() > 32, () -> "frames went round: testpmd " + dpdk + ", ours tx " + ours.txFrames());
        assertTrue(ours.rxFrames() >= dpdk.rxPackets(), () -> "we put on rx at least what testpmd received: ours rx "
            + ours.rxFrames() + ", testpmd " + dpdk);
        assertTrue(ours.txFrames() <= dpdk.txPackets(), () -> "ours tx " + ours.txFrames() + ", testpmd " + dpdk);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"split", "packed"})
    @Timeout(180)
    void dpdkForwardsOnTwoQueuePairsOfOurReflect(String layout) throws Exception {
        Object[] r = run("macswap-reflect-2-pairs-" + layout, "reflect", 2, layout.equals("packed") ? ",packed_vq=1" : "",
            List.of("--forward-mode=macswap", "--tx-first"));
        Ours ours = (Ours) r[0];
        Testpmd.Counters dpdk = (Testpmd.Counters) r[1];
        Testpmd.Counters[] perQueue = (Testpmd.Counters[]) r[2];
        String log = ours.log();
        assertTrue(dpdk.rxPackets() > 64, () -> "frames went round: testpmd " + dpdk + "\n" + log);
        long[][] pairs = new long[2][];
        Matcher m = PAIR.matcher(log);
        while (m.find()) {
            int p = Integer.parseInt(m.group(1));
            assertTrue(p < 2, () -> "our back end reports pair " + p + " of 2:\n" + log);
            pairs[p] = new long[] {Long.parseLong(m.group(2)), Long.parseLong(m.group(4))};
        }
        assertEquals(2, perQueue.length, () -> "testpmd forwarded on two queues: " + Arrays.toString(perQueue));
        for (int p = 0; p < 2; p++) {
            int pair = p;
            assertTrue(pairs[p] != null, () -> "our back end ran pair " + pair + ":\n" + log);
            // testpmd's stream q receives on queue q and sends back on queue q: each pair carries its own frames
            assertTrue(pairs[p][0] > 32 && pairs[p][1] > 32, () -> "pair " + pair + " carried frames both ways: tx "
                + pairs[pair][0] + " rx " + pairs[pair][1] + "\n" + log);
            assertTrue(pairs[p][1] >= perQueue[p].rxPackets(), () -> "pair " + pair + ": we put on rx "
                + pairs[pair][1] + ", testpmd received " + perQueue[pair] + " on queue " + pair);
            assertTrue(pairs[p][0] <= perQueue[p].txPackets(), () -> "pair " + pair + ": we took from tx "
                + pairs[pair][0] + ", testpmd sent " + perQueue[pair] + " on queue " + pair);
        }
    }
}

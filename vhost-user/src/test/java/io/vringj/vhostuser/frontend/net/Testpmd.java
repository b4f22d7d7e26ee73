package io.vringj.vhostuser.frontend.net;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * One DPDK {@code dpdk-testpmd} run for the interop suite, as either vhost-user side: its back
 * end ({@code net_vhost}) or its front end ({@code net_virtio_user}). No hugepages
 * ({@code --no-huge -m 512 --no-pci}, a unique {@code --file-prefix}); its output goes to a log
 * under target/, and {@link #stop()} sends SIGINT and reads the "Accumulated forward statistics".
 */
public final class Testpmd implements AutoCloseable {
    private static final AtomicInteger RUNS = new AtomicInteger();
    private static final Pattern RX = Pattern.compile("RX-packets:\\s+(\\d+)\\s+RX-dropped:\\s+(\\d+)");
    private static final Pattern TX = Pattern.compile("TX-packets:\\s+(\\d+)\\s+TX-dropped:\\s+(\\d+)");
    private static final Pattern STREAM = Pattern.compile("Forward Stats for RX Port=\\s*\\d+/Queue=\\s*(\\d+)");
    private static final Pattern RX_STREAM = Pattern.compile("RX-packets:\\s+(\\d+)");
    private static final Pattern TX_STREAM = Pattern.compile("TX-packets:\\s+(\\d+)\\s+TX-dropped:\\s+(\\d+)");

    /** The accumulated counters testpmd prints when it stops. */
    public record Counters(long rxPackets, long rxDropped, long txPackets, long txDropped) {
    }

    private final Process process;
    private final Path log;

    private Testpmd(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    /**
     * Runs {@code setup-dpdk.sh WORK} (installs DPDK if missing) and returns the testpmd it links.
     *
     * @param work the interop work directory
     * @param scripts the directory holding setup-dpdk.sh
     * @return {@code WORK/dpdk-testpmd}
     */
    public static Path setUp(Path work, Path scripts) throws Exception {
        Files.createDirectories(work);
        Path setupLog = work.resolve("setup-dpdk.log");
        Process setup = new ProcessBuilder("sh", scripts.resolve("setup-dpdk.sh").toString(), work.toString())
            .redirectErrorStream(true).redirectOutput(setupLog.toFile()).start();
        if (!setup.waitFor(15, TimeUnit.MINUTES)) {
            setup.destroyForcibly();
            fail("setup-dpdk.sh did not finish in 15 minutes; see " + setupLog);
        }
        assertEquals(0, setup.exitValue(), () -> "setup-dpdk.sh failed; see " + setupLog + ":\n" + tail(setupLog));
        return work.resolve("dpdk-testpmd");
    }

    /**
     * Starts testpmd as the vhost-user back end on {@code socket}.
     *
     * @param client connect to the socket ({@code client=1}) instead of listening on it
     * @param forward the arguments after {@code --}: forward mode and so on
     */
    public static Testpmd backEnd(Path testpmd, Path dir, String socket, boolean client, List<String> forward)
        throws IOException {
        return backEnd(testpmd, dir, socket, client, 1, forward);
    }

    /**
     * Starts testpmd as the vhost-user back end on {@code socket} with several queue pairs
     * ({@code queues=N} on {@code net_vhost}, {@code --rxq=N --txq=N}).
     *
     * @param client connect to the socket ({@code client=1}) instead of listening on it
     * @param queuePairs how many rx/tx pairs
     * @param forward the arguments after {@code --}: forward mode and so on
     */
    public static Testpmd backEnd(Path testpmd, Path dir, String socket, boolean client, int queuePairs,
                                  List<String> forward) throws IOException {
        List<String> args = new ArrayList<>(forward);
        if (queuePairs > 1) {
            args.addAll(List.of("--rxq=" + queuePairs, "--txq=" + queuePairs));
        }
        return start(testpmd, dir, "net_vhost0,iface=" + socket + ",queues=" + queuePairs + (client ? ",client=1" : ""),
            args);
    }

    /**
     * Starts testpmd as the vhost-user front end on {@code socket}.
     *
     * @param options extra {@code net_virtio_user} options, e.g. {@code ",packed_vq=1"}
     * @param forward the arguments after {@code --}
     */
    public static Testpmd frontEnd(Path testpmd, Path dir, String socket, String options, List<String> forward)
        throws IOException {
        return frontEnd(testpmd, dir, socket, 1, options, forward);
    }

    /**
     * Starts testpmd as the vhost-user front end on {@code socket} with several queue pairs
     * ({@code queues=N} on {@code net_virtio_user}, {@code --rxq=N --txq=N}).
     *
     * @param queuePairs how many rx/tx pairs
     * @param options extra {@code net_virtio_user} options, e.g. {@code ",packed_vq=1"}
     * @param forward the arguments after {@code --}
     */
    public static Testpmd frontEnd(Path testpmd, Path dir, String socket, int queuePairs, String options,
                                   List<String> forward) throws IOException {
        List<String> args = new ArrayList<>(forward);
        args.addAll(List.of("--rxd=256", "--txd=256"));
        if (queuePairs > 1) {
            args.addAll(List.of("--rxq=" + queuePairs, "--txq=" + queuePairs));
        }
        return start(testpmd, dir, "net_virtio_user0,path=" + socket + ",queues=" + queuePairs + ",queue_size=256"
            + options, args);
    }

    private static Testpmd start(Path testpmd, Path dir, String vdev, List<String> forward) throws IOException {
        Files.createDirectories(dir);
        int run = RUNS.incrementAndGet();
        String prefix = "vringj-" + ProcessHandle.current().pid() + "-" + run;
        // both lcores may use either CPU: on a shared 2-CPU machine pinning to one starves it
        List<String> cmd = new ArrayList<>(List.of(testpmd.toString(), "--lcores=0@(0-1),1@(0-1)", "--no-pci",
            "--no-huge", "-m", "512", "--file-prefix=" + prefix, "--vdev", vdev, "--", "--auto-start",
            "--stats-period", "1", "--nb-cores=1", "--total-num-mbufs=16384"));
        cmd.addAll(forward);
        Path log = dir.resolve("testpmd-" + run + ".log");
        Files.writeString(dir.resolve("testpmd-" + run + "-command.txt"), String.join(" ", cmd) + "\n");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        return new Testpmd(p, log);
    }

    /** @return the log file */
    public Path log() {
        return log;
    }

    /** @return whether testpmd still runs */
    public boolean isAlive() {
        return process.isAlive();
    }

    /** Waits until the log says the port started forwarding (its probe is done). */
    public void awaitForwarding(long millis) throws Exception {
        long deadline = System.nanoTime() + millis * 1_000_000;
        while (!read().contains("packet forwarding - ports=")) {
            assertTrue(process.isAlive(), () -> "testpmd exited before forwarding; " + log + "\n" + tail(log));
            if (System.nanoTime() > deadline) {
                fail("testpmd did not start forwarding in " + millis + " ms; " + log + "\n" + tail(log));
            }
            Thread.sleep(50);
        }
    }

    /** Sends SIGINT, waits for testpmd to exit and returns its accumulated counters. */
    public Counters stop() throws Exception {
        return stopAndRead()[0];
    }

    /**
     * Sends SIGINT, waits for testpmd to exit and returns its counters: the accumulated ones, and
     * each forwarding stream's ("Forward Stats for RX Port= 0/Queue= q"), by queue.
     *
     * @return the accumulated counters first, then one per queue (rx and tx of that stream)
     */
    public Counters[] stopAndRead() throws Exception {
        Counters total = stopAccumulated();
        String out = read();
        int end = out.lastIndexOf("Accumulated forward statistics");
        List<Counters> perQueue = new ArrayList<>(List.of(total));
        Matcher stream = STREAM.matcher(out.substring(0, end));
        while (stream.find()) {
            int q = Integer.parseInt(stream.group(1));
            Matcher rx = RX_STREAM.matcher(out.substring(stream.end(), end));
            Matcher tx = TX_STREAM.matcher(out.substring(stream.end(), end));
            if (rx.find() && tx.find()) {
                while (perQueue.size() <= q + 1) {
                    perQueue.add(new Counters(0, 0, 0, 0));
                }
                perQueue.set(q + 1, new Counters(Long.parseLong(rx.group(1)), 0, Long.parseLong(tx.group(1)),
                    Long.parseLong(tx.group(2))));
            }
        }
        return perQueue.toArray(Counters[]::new);
    }

    private Counters stopAccumulated() throws Exception {
        new ProcessBuilder("kill", "-INT", Long.toString(process.pid())).start().waitFor(10, TimeUnit.SECONDS);
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            fail("testpmd did not exit within 30 s of SIGINT; " + log + "\n" + tail(log));
        }
        String out = read();
        int at = out.lastIndexOf("Accumulated forward statistics");
        assertTrue(at >= 0, () -> "testpmd printed no accumulated statistics; " + log + "\n" + tail(log));
        String tail = out.substring(at);
        Matcher rx = RX.matcher(tail);
        Matcher tx = TX.matcher(tail);
        assertTrue(rx.find() && tx.find(), () -> "cannot parse testpmd's statistics:\n" + tail);
        return new Counters(Long.parseLong(rx.group(1)), Long.parseLong(rx.group(2)), Long.parseLong(tx.group(1)),
            Long.parseLong(tx.group(2)));
    }

    private String read() throws IOException {
        return Files.readString(log, StandardCharsets.ISO_8859_1);
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroyForcibly();
        }
    }

    /** @return the last 40 lines of a file */
    public static String tail(Path file) {
        try {
            List<String> lines = Files.readAllLines(file, StandardCharsets.ISO_8859_1);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(cannot read " + file + ": " + e.getMessage() + ")";
        }
    }
}

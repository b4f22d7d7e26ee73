package io.vringj.vhostuser.backend;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * What the QEMU interop tests share: the guest that {@code interop/setup.sh} builds (the Debian
 * kernel and a busybox initramfs whose {@code /init} runs the test the kernel command line names and
 * prints {@code VRINGJ-RESULT: PASS|FAIL ...}), a back end started from the executable jar on a
 * fresh socket, and one QEMU under TCG driving it. Each run leaves {@code qemu-command.txt},
 * {@code console.log} and {@code backend.log} under {@code target/interop/<config>/} and appends its
 * wall time and counters to {@code target/interop/timings.txt}.
 */
final class QemuGuests {
    /** The guest's verdict line when its check passed. */
    static final String PASS = "VRINGJ-RESULT: PASS";
    private static final Duration BACKEND_START = Duration.ofSeconds(30);
    private static final Duration GUEST_RUN = Duration.ofSeconds(240);

    private final Path work;
    private final Path jar;

    private QemuGuests(Path work, Path jar) {
        this.work = work;
        this.jar = jar;
    }

    /**
     * Runs {@code setup.sh} (idempotent: it installs and downloads only what is missing, and rebuilds
     * the initramfs) and checks that the executable jar was packaged.
     *
     * @return the harness over {@code vringj.interop.dir}
     * @throws Exception if set-up fails or does not finish in 15 minutes
     */
    static QemuGuests prepare() throws Exception {
        Path work = Path.of(property("vringj.interop.dir")).toAbsolutePath();
        Path jar = Path.of(property("vringj.interop.jar")).toAbsolutePath();
        Path scripts = Path.of(property("vringj.interop.scripts")).toAbsolutePath();
        Files.createDirectories(work);
        assertTrue(Files.isRegularFile(jar), "the executable jar " + jar + " is built in the package phase");
        Path log = work.resolve("setup.log");
        Process setup = new ProcessBuilder("sh", scripts.resolve("setup.sh").toString(), work.toString())
            .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (!setup.waitFor(15, TimeUnit.MINUTES)) {
            setup.destroyForcibly();
            fail("setup.sh did not finish in 15 minutes; see " + log);
        }
        assertEquals(0, setup.exitValue(), () -> "setup.sh failed; see " + log + ":\n" + tail(log));
        return new QemuGuests(work, jar);
    }

    private static String property(String name) {
        String value = System.getProperty(name);
        if (value == null) {
            throw new IllegalStateException("system property " + name + " is not set; run ./mvnw -Pinterop verify");
        }
        return value;
    }

    /** @return the interop work directory ({@code target/interop}) */
    Path work() {
        return work;
    }

    /** @return the back end's executable jar */
    Path jar() {
        return jar;
    }

    /** @return the path of the JVM running the tests, which also runs the back end */
    static String java() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /**
     * The QEMU command line common to every guest: q35 under TCG, one vCPU, 512 MiB of memfd memory
     * shared with the back end, the kernel and initramfs from set-up, and chardev {@code c0} on
     * {@code socket}.
     *
     * @param socket the back end's socket
     * @param append kernel parameters after the console ones
     * @return a mutable list; add the devices after it
     */
    List<String> qemuCommand(Path socket, String append) {
        return new ArrayList<>(List.of("qemu-system-x86_64",
            "-machine", "q35,accel=tcg", "-cpu", "max", "-m", "512", "-smp", "1",
            "-nographic", "-no-reboot", "-nic", "none",
            "-kernel", work.resolve("vmlinuz").toString(), "-initrd", work.resolve("initrd.gz").toString(),
            "-append", ("console=ttyS0 panic=-1 quiet " + append).trim(),
            "-object", "memory-backend-memfd,id=mem,size=512M,share=on", "-numa", "node,memdev=mem",
            "-chardev", "socket,id=c0,path=" + socket));
    }

    /**
     * What one run left: the back end's log (its output up to and including the report it prints on
     * SIGTERM) and the guest's console.
     *
     * @param backendLog the back end's log
     * @param console the guest's serial console
     */
    record Run(String backendLog, String console) {
    }

    /**
     * Boots one guest against a fresh back end and checks what every configuration must show: the
     * guest's {@link #PASS}, a back end that stops on SIGTERM and removes its socket, and no
     * connection closed by the back end.
     *
     * @param config the configuration's name, also its directory under {@code target/interop}
     * @param backendArgs the back end's subcommand and options, without {@code --socket}
     * @param qemuArgs QEMU arguments after the common ones ({@link #qemuCommand}): netdevs, devices
     * @param append kernel parameters
     * @param figures what to record from the back end's log in {@code timings.txt}
     * @return the run's logs
     * @throws Exception if the run cannot be started or a check fails
     */
    Run run(String config, List<String> backendArgs, List<String> qemuArgs, String append,
            Function<String, String> figures) throws Exception {
        Path dir = work.resolve(config);
        Files.createDirectories(dir);
        Path console = dir.resolve("console.log");
        Path backendLog = dir.resolve("backend.log");
        // a short socket path: sun_path holds 107 bytes, the build directory may be deep
        Path sockDir = Files.createTempDirectory("vringj-");
        Path socket = sockDir.resolve("vhost.sock");
        long start = System.nanoTime();
        List<String> backendCmd = new ArrayList<>(List.of(java(), "-jar", jar.toString()));
        backendCmd.addAll(backendArgs);
        backendCmd.addAll(List.of("--socket", socket.toString()));
        Process backend = new ProcessBuilder(backendCmd).redirectErrorStream(true).redirectOutput(backendLog.toFile())
            .start();
        Process qemu = null;
        try {
            awaitSocket(socket, backend, backendLog);
            List<String> cmd = qemuCommand(socket, append);
            cmd.addAll(qemuArgs);
            Files.writeString(dir.resolve("qemu-command.txt"), String.join(" ", cmd) + "\n");
            qemu = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(console.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
            if (!qemu.waitFor(GUEST_RUN.toSeconds(), TimeUnit.SECONDS)) {
                qemu.destroyForcibly();
                fail(config + ": the guest did not power off within " + GUEST_RUN + "; console " + console
                    + ", back end " + backendLog + "\n" + tail(console));
            }
            String out = Files.readString(console, StandardCharsets.ISO_8859_1);
            assertTrue(out.contains(PASS), () -> config + ": no '" + PASS + "' from the guest; console " + console
                + ", back end " + backendLog + "\n" + tail(console) + "\n--- back end ---\n" + tail(backendLog));
            // SIGTERM: the shutdown hook closes the socket and removes its file
            backend.destroy();
            assertTrue(backend.waitFor(30, TimeUnit.SECONDS), config + ": back end did not stop on SIGTERM");
            assertFalse(Files.exists(socket), config + ": back end left its socket file behind");
            String log = Files.readString(backendLog, StandardCharsets.UTF_8);
            assertFalse(log.contains("closing connection"), () -> config + ": back end closed a connection\n" + log);
            record(config, start, figures.apply(log));
            return new Run(log, out);
        } finally {
            if (qemu != null && qemu.isAlive()) {
                qemu.destroyForcibly();
            }
            if (backend.isAlive()) {
                backend.destroyForcibly();
            }
            Files.deleteIfExists(socket);
            Files.deleteIfExists(sockDir);
        }
    }

    /**
     * Appends a configuration's wall time (since {@code startNanos}) and figures to
     * {@code timings.txt} and prints them.
     *
     * @param config the configuration
     * @param startNanos {@link System#nanoTime()} when it started
     * @param figures its counters
     * @throws IOException if the file cannot be written
     */
    void record(String config, long startNanos, String figures) throws IOException {
        long millis = Duration.ofNanos(System.nanoTime() - startNanos).toMillis();
        String line = String.format(Locale.ROOT, "%s wall=%.1fs %s%n", config, millis / 1000.0, figures);
        Files.writeString(work.resolve("timings.txt"), line, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        System.out.print("interop " + line);
    }

    /**
     * @param log a back end's log
     * @return its final counters line, e.g. {@code chains=1026 ... iotlbMisses=3}, or empty
     */
    static String counters(String log) {
        Matcher m = Pattern.compile("stopped, socket .* removed; (.*)").matcher(log);
        String last = "";
        while (m.find()) {
            last = m.group(1);
        }
        return last;
    }

    /**
     * Waits until the back end has created its socket.
     *
     * @param socket the socket path
     * @param backend the back end's process
     * @param log its log, quoted when it exits or is late
     * @throws Exception if it exits first or takes longer than 30 s
     */
    static void awaitSocket(Path socket, Process backend, Path log) throws Exception {
        long deadline = System.nanoTime() + BACKEND_START.toNanos();
        while (!Files.exists(socket)) {
            if (!backend.isAlive()) {
                fail("back end exited with " + backend.exitValue() + " before listening; see " + log + "\n" + tail(log));
            }
            if (System.nanoTime() > deadline) {
                fail("back end did not create " + socket + " within " + BACKEND_START + "; see " + log);
            }
            Thread.sleep(50);
        }
    }

    /**
     * @param file a log
     * @return its last 40 lines, for a failure message
     */
    static String tail(Path file) {
        try {
            List<String> lines = Files.readAllLines(file, StandardCharsets.ISO_8859_1);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(cannot read " + file + ": " + e.getMessage() + ")";
        }
    }
}

package io.vringj.perf.channel;

import io.vringj.perf.ring.JvmFlags;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The peer JVM of a two-process benchmark, started from the benchmark process with the same
 * {@code java} binary and class path, and the line protocol on its standard streams:
 *
 * <pre>
 *   peer → benchmark   ready                           its end of the transport is set up
 *   benchmark → peer   stop COUNT                      no more messages after COUNT; finish once all arrived
 *   peer → benchmark   done COUNT CHECKSUM BAD         what it received (see {@link MessageTally})
 *   benchmark closes the peer's standard input         the peer closes its end and exits
 * </pre>
 *
 * The peer exits by itself when its standard input closes, also when the benchmark process died. Its
 * standard error goes to a log file whose tail is quoted when something fails. A peer that did
 * not receive exactly what was sent makes {@link #finish} throw, so a broken peer cannot produce
 * a fast figure.
 */
public final class PeerProcess implements AutoCloseable {
    /** The peer's first line. */
    public static final String READY = "ready";
    /** The benchmark's last line to the peer. */
    public static final String STOP = "stop";
    /** The peer's last line. */
    public static final String DONE = "done";
    /**
     * The peer JVM's flags: those the benchmark forks get for Agrona, Aeron and the channel
     * (jdk.internal.misc for Agrona's buffers, sun.misc.Unsafe without the notice, native access
     * for vhost-user's libc calls) and a fixed heap.
     */
    public static final List<String> JVM_FLAGS = List.of(JvmFlags.AGRONA, JvmFlags.JCTOOLS, JvmFlags.NATIVE_ACCESS,
        JvmFlags.HEAP, JvmFlags.HEADLESS);

    private static final String EOF = "\u0000eof";
    private static final int EXIT_SECONDS = 10;
    private static final int LOG_TAIL = 2000;

    private final Process process;
    private final Writer stdin;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final Path log;

    private PeerProcess(Process process, Path log) {
        this.process = process;
        this.log = log;
        this.stdin = new java.io.OutputStreamWriter(process.getOutputStream(), StandardCharsets.US_ASCII);
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(),
                StandardCharsets.US_ASCII))) {
                for (String line; (line = r.readLine()) != null; ) {
                    lines.add(line);
                }
            } catch (IOException e) {
                // the peer is gone: the EOF marker below says so
            }
            lines.add(EOF);
        }, "peer-stdout-" + process.pid());
        reader.setDaemon(true);
        reader.start();
    }

    /**
     * Starts a peer running {@link ChannelPeer}.
     *
     * @param args the peer's arguments ({@link ChannelPeer#main})
     * @return the running peer; wait for it with {@link #awaitReady}
     * @throws IOException if it cannot be started
     */
    public static PeerProcess start(List<String> args) throws IOException {
        return start(ChannelPeer.class.getName(), args);
    }

    /**
     * @param mainClass the class to run, on this JVM's class path
     * @param args its arguments
     * @return the running process
     * @throws IOException if it cannot be started
     */
    static PeerProcess start(String mainClass, List<String> args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(javaCommand());
        command.addAll(JVM_FLAGS);
        command.add("-cp");
        command.add(classPath());
        command.add(mainClass);
        command.addAll(args);
        Path log = Files.createTempFile("vringj-peer-", ".log");
        try {
            Process p = new ProcessBuilder(command).redirectError(log.toFile()).start();
            return new PeerProcess(p, log);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(log);
            throw e;
        }
    }

    /** @return the {@code java} binary running this JVM */
    static String javaCommand() {
        return ProcessHandle.current().info().command()
            .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }

    /**
     * @return this JVM's class path, with its module path first when it has one (tests run on the
     *     module path; the peer runs everything on the class path, as the shaded jar does)
     */
    static String classPath() {
        List<String> parts = new ArrayList<>();
        for (String property : List.of("jdk.module.path", "java.class.path")) {
            String value = System.getProperty(property);
            if (value != null && !value.isEmpty()) {
                parts.add(value);
            }
        }
        return String.join(File.pathSeparator, parts);
    }

    /** @return the peer's process id */
    public long pid() {
        return process.pid();
    }

    /** @return whether the peer is still running */
    public boolean isAlive() {
        return process.isAlive();
    }

    /**
     * Waits for the peer's {@value #READY} line.
     *
     * @param timeout how long at most
     * @throws IllegalStateException if the peer exits, says something else or is not ready in time
     */
    public void awaitReady(Duration timeout) {
        String line = nextLine(timeout, "to get ready");
        if (!READY.equals(line)) {
            throw failure("peer said \"" + line + "\" instead of \"" + READY + "\"");
        }
    }

    /**
     * Tells the peer how many messages were sent and waits for its tally.
     *
     * @param sent messages the benchmark sent
     * @param checksum their checksum ({@link MessageTally#checksum})
     * @param timeout how long the peer may take to receive the rest and answer
     * @return the peer's tally: count, checksum, messages out of sequence or damaged
     * @throws IllegalStateException if the peer's tally differs from what was sent, or it failed
     */
    public long[] finish(long sent, long checksum, Duration timeout) {
        try {
            stdin.write(STOP + " " + sent + "\n");
            stdin.flush();
        } catch (IOException e) {
            throw failure("cannot tell the peer to stop (" + e.getMessage() + ")");
        }
        String line = nextLine(timeout, "to report what it received");
        String[] words = line.split(" ");
        if (words.length != 4 || !DONE.equals(words[0])) {
            throw failure("peer said \"" + line + "\" instead of \"" + DONE + " COUNT CHECKSUM BAD\"");
        }
        long[] tally = {Long.parseLong(words[1]), Long.parseLong(words[2]), Long.parseLong(words[3])};
        if (tally[0] != sent || tally[1] != checksum || tally[2] != 0) {
            throw failure(String.format(java.util.Locale.ROOT, "peer received %d messages (checksum %016x, %d out of"
                + " sequence or damaged); the benchmark sent %d (checksum %016x): the figure is not valid",
                tally[0], tally[1], tally[2], sent, checksum));
        }
        return tally;
    }

    private String nextLine(Duration timeout, String what) {
        String line;
        try {
            line = lines.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw failure("interrupted while waiting for the peer " + what);
        }
        if (line == null) {
            throw failure("peer did not answer within " + timeout + " " + what);
        }
        if (EOF.equals(line)) {
            String exit = "";
            try {
                if (process.waitFor(2, TimeUnit.SECONDS)) {
                    exit = " (exit status " + process.exitValue() + ")";
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            throw failure("peer ended before it answered " + what + exit);
        }
        return line;
    }

    private IllegalStateException failure(String message) {
        return new IllegalStateException(message + "; peer pid " + process.pid() + ", its log: " + logTail());
    }

    private String logTail() {
        try {
            String text = Files.readString(log, StandardCharsets.UTF_8).strip();
            if (text.isEmpty()) {
                return "(empty)";
            }
            return text.length() <= LOG_TAIL ? text : "..." + text.substring(text.length() - LOG_TAIL);
        } catch (IOException | UncheckedIOException e) {
            return "(unreadable: " + e.getMessage() + ")";
        }
    }

    /**
     * Closes the peer's standard input, which makes it close its end and exit; kills it if it
     * has not exited within {@value #EXIT_SECONDS} s; deletes its log.
     */
    @Override
    public void close() {
        try {
            stdin.close();
        } catch (IOException e) {
            // the peer is gone already
        }
        try {
            if (!process.waitFor(EXIT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(EXIT_SECONDS, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
        try {
            Files.deleteIfExists(log);
        } catch (IOException e) {
            // a leftover log in the temp directory harms nothing
        }
    }
}

package io.vringj.perf.channel;

import io.aeron.driver.MediaDriver;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.agrona.CloseHelper;

/**
 * The benchmark process's side of one two-process session: a fresh directory, the transport's
 * resources on this side (Aeron's embedded media driver, Agrona's ring file), the peer JVM, and
 * this process's {@link Link}. Opened in a benchmark's trial set-up, finished and closed in its
 * tear-down; {@link #finish} checks that the peer received exactly what was sent.
 *
 * <p>The directory lies in {@code /dev/shm} where it exists (Linux; Aeron keeps its files there by
 * default), else in {@code java.io.tmpdir}: shared memory in a disk-backed temporary directory
 * would make Aeron and the mapped ring pay for page-cache write-back that vringj's memfd-backed
 * memory never sees.
 *
 * <p>Both processes set vhost-user's loggers to WARNING: a connection made and closed per trial
 * is not news in a benchmark's output.
 */
public final class PeerSession implements AutoCloseable {
    /** How long the peer may take to start, and each end to connect. */
    public static final Duration START_TIMEOUT = Duration.ofSeconds(60);
    /** How long the peer may take to receive what is still in flight and report. */
    public static final Duration FINISH_TIMEOUT = Duration.ofSeconds(60);

    /**
     * How long a benchmark's set-up runs traffic before JMH measures: both JVMs compile their
     * paths in that time (the peer's as much as the sender's), which the short warm-up iterations
     * of the quick profile alone do not give them on a busy 2-core machine.
     */
    public static final Duration WARM_UP = Duration.ofMillis(500);
    /** The shortest message a session carries: a stamp at each end. */
    public static final int MIN_LENGTH = 2 * Long.BYTES;
    /** Held so the level set on it stays (the logging framework keeps loggers weakly). */
    private static final Logger VHOST_USER_LOG = quiet();

    private final Path dir;
    private final PeerRole role;
    private final MediaDriver driver;
    private final PeerProcess peer;
    private final Link link;

    private PeerSession(Path dir, PeerRole role, MediaDriver driver, PeerProcess peer, Link link) {
        this.dir = dir;
        this.role = role;
        this.driver = driver;
        this.peer = peer;
        this.link = link;
    }

    /**
     * Sets vhost-user's loggers to WARNING.
     *
     * @return the parent logger of vhost-user's
     */
    static Logger quiet() {
        Logger logger = Logger.getLogger("io.vringj.vhostuser");
        logger.setLevel(Level.WARNING);
        return logger;
    }

    /** @return where session directories go: {@code /dev/shm} if it is a directory, else {@code java.io.tmpdir} */
    static Path baseDir() {
        Path shm = Path.of("/dev/shm");
        return Files.isDirectory(shm) && Files.isWritable(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
    }

    /** @param dir a session directory @return the vringj channel's socket in it */
    static Path socket(Path dir) {
        return dir.resolve("channel.sock");
    }

    /** @param dir a session directory @return the embedded Aeron media driver's directory in it */
    static Path aeronDir(Path dir) {
        return dir.resolve("aeron");
    }

    /** @param dir a session directory @return Agrona's ring file in it */
    static Path ringFile(Path dir) {
        return dir.resolve("ring");
    }

    /**
     * Sets up this side, starts the peer and waits until both ends are connected.
     *
     * @param transport what to measure
     * @param role what the peer does
     * @param maxLength the largest message in bytes
     * @return the session
     * @throws IOException if a file, the socket or the peer cannot be set up
     * @throws IllegalStateException if the peer fails to start or connect
     * @throws IllegalArgumentException if {@code maxLength} is below {@link #MIN_LENGTH}
     */
    public static PeerSession open(Transport transport, PeerRole role, int maxLength) throws IOException {
        if (maxLength < MIN_LENGTH) {
            throw new IllegalArgumentException("message length " + maxLength + " must be at least " + MIN_LENGTH
                + ": every message carries an 8-byte stamp at each end");
        }
        Path dir = Files.createTempDirectory(baseDir(), "vringj-chanbench-");
        MediaDriver driver = null;
        PeerProcess peer = null;
        Link link = null;
        try {
            List<String> args = List.of(transport.id(), role.name().toLowerCase(java.util.Locale.ROOT),
                dir.toString(), Integer.toString(maxLength));
            switch (transport) {
                case AERON -> {
                    driver = AeronLink.launchDriver(aeronDir(dir));
                    peer = PeerProcess.start(args);
                    AeronLink aeron = AeronLink.benchmarkEnd(aeronDir(dir), role == PeerRole.ECHO);
                    link = aeron;
                    aeron.awaitConnected(START_TIMEOUT);
                }
                case AGRONA_MMAP -> {
                    link = AgronaMmapLink.create(ringFile(dir), maxLength);
                    peer = PeerProcess.start(args);
                }
                case VRINGJ -> {
                    peer = PeerProcess.start(args);
                    awaitSocket(socket(dir), peer);
                    link = VringjLink.connect(socket(dir), maxLength);
                }
                case VRINGJ_DEVICE_END -> {
                    peer = PeerProcess.start(args);
                    // the peer connects (retrying until the socket is there) while this end waits for it
                    link = VringjLink.serve(socket(dir), maxLength);
                }
            }
            peer.awaitReady(START_TIMEOUT);
            return new PeerSession(dir, role, driver, peer, link);
        } catch (IOException | RuntimeException e) {
            closeAll(peer, link, driver, dir);
            throw e;
        }
    }

    private static void awaitSocket(Path socket, PeerProcess peer) {
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (!Files.exists(socket)) {
            if (!peer.isAlive()) {
                // awaitReady reports the exit and the peer's log
                return;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException("peer did not listen on " + socket + " within " + START_TIMEOUT);
            }
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for " + socket, e);
            }
        }
    }

    /**
     * Runs the session's traffic for a while (not measured): batches to a sink, one message at a
     * time to an echo, each waited for. Counted like any other traffic, so {@link #finish} checks it too.
     *
     * @param time how long
     * @param length each message's length
     * @param batch messages per send (sink only)
     * @throws IllegalStateException if an echo does not come back within {@link #FINISH_TIMEOUT}
     */
    public void warmUp(Duration time, int length, int batch) {
        long end = System.nanoTime() + time.toNanos();
        while (System.nanoTime() - end < 0) {
            if (role == PeerRole.SINK) {
                link.send(batch, length);
                continue;
            }
            if (link.send(1, length) == 0) {
                continue;
            }
            long deadline = System.nanoTime() + FINISH_TIMEOUT.toNanos();
            while (link.received().count() < link.sent().count()) {
                if (link.receive(1) == 0 && System.nanoTime() - deadline > 0) {
                    throw new IllegalStateException("no echo of message " + (link.sent().count() - 1) + " within "
                        + FINISH_TIMEOUT + " while warming up");
                }
            }
        }
    }

    /** @return this process's end */
    public Link link() {
        return link;
    }

    /** @return the peer process */
    public PeerProcess peer() {
        return peer;
    }

    /**
     * Ends the session's traffic and checks it: for an echo, first takes back what is still in
     * flight; then the peer must report exactly the count and checksum sent, and the echoes
     * received here must be complete, in order and intact.
     *
     * @throws IllegalStateException naming what differs
     */
    public void finish() {
        MessageTally sent = link.sent();
        if (role == PeerRole.ECHO) {
            long deadline = System.nanoTime() + FINISH_TIMEOUT.toNanos();
            while (link.received().count() < sent.count() && System.nanoTime() - deadline < 0) {
                if (link.receive(ChannelPeer.POLL_LIMIT) == 0) {
                    Thread.onSpinWait();
                }
            }
        }
        peer.finish(sent.count(), sent.checksum(), FINISH_TIMEOUT);
        MessageTally back = link.received();
        if (role == PeerRole.ECHO && (back.count() != sent.count() || back.checksum() != sent.checksum()
            || back.bad() != 0)) {
            throw new IllegalStateException("the echo brought back " + back.count() + " messages (" + back.bad()
                + " out of sequence or damaged) of " + sent.count() + " sent: the figure is not valid");
        }
    }

    /**
     * Closes this side's end first (the peer sees an orderly close, not a crash), then stops the
     * peer (it exits when its standard input closes; killed if it does not), then the media
     * driver the peer's Aeron client used, and deletes the directory.
     */
    @Override
    public void close() {
        closeAll(peer, link, driver, dir);
    }

    private static void closeAll(PeerProcess peer, Link link, MediaDriver driver, Path dir) {
        CloseHelper.quietCloseAll(link, peer, driver);
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException | UncheckedIOException e) {
            // a leftover in the temporary directory harms nothing; the next session uses a new one
        }
    }
}

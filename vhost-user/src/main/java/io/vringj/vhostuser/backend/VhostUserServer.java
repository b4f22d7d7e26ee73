package io.vringj.vhostuser.backend;

import io.vringj.device.VirtioDevice;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.VhostUserChannel;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A vhost-user back end listening on a Unix socket: accepts one front end at a time and serves
 * it with a {@link VhostUserConnection}. A connection that breaks the protocol is closed with a
 * logged reason and the next one is accepted; the server stays up until {@link #close()}.
 *
 * <pre>
 *   try (VhostUserServer server = VhostUserServer.bind(path, device)) {
 *       server.run();          // returns after close() from another thread
 *   }
 * </pre>
 */
public final class VhostUserServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserServer.class.getName());

    /** How long {@link #close()} waits for {@link #run()} to end its connections. */
    static final long CLOSE_TIMEOUT_MILLIS = 10_000;

    private final String path;
    private final VirtioDevice device;
    private final BackendOptions options;
    private final int listenFd;
    private final EventFd stop;
    private final VhostUserStatistics statistics = new VhostUserStatistics();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private volatile boolean running;
    private boolean closed;

    private VhostUserServer(String path, VirtioDevice device, BackendOptions options, int listenFd, EventFd stop) {
        this.path = path;
        this.device = device;
        this.options = options;
        this.listenFd = listenFd;
        this.stop = stop;
    }

    /**
     * Creates the socket file and listens on it.
     *
     * @param path the socket path (must not exist)
     * @param device the device to serve
     * @return the server, not yet accepting
     * @throws NativeCallException if the socket cannot be created, bound or listened on
     */
    public static VhostUserServer bind(String path, VirtioDevice device) throws NativeCallException {
        return bind(path, device, VhostUserChannel.DEFAULT_STALL_MILLIS);
    }

    /**
     * As {@link #bind(String, VirtioDevice)}, with the time a front end may stall inside a message.
     *
     * @param path the socket path (must not exist)
     * @param device the device to serve
     * @param stallMillis how long the rest of a message may take once it began
     * @return the server, not yet accepting
     * @throws NativeCallException if the socket cannot be created, bound or listened on
     */
    public static VhostUserServer bind(String path, VirtioDevice device, int stallMillis) throws NativeCallException {
        return bind(path, device, BackendOptions.defaults().withStallMillis(stallMillis));
    }

    /**
     * As {@link #bind(String, VirtioDevice)}, with every setting of {@link BackendOptions}.
     *
     * @param path the socket path (must not exist)
     * @param device the device to serve
     * @param options stall time-out, unsealed memory, connection limit
     * @return the server, not yet accepting
     * @throws NativeCallException if the socket cannot be created, bound or listened on
     */
    public static VhostUserServer bind(String path, VirtioDevice device, BackendOptions options)
        throws NativeCallException {
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(options, "options");
        int fd = Libc.socket();
        try {
            Libc.bind(fd, path);
            Libc.listen(fd, 1);
            return new VhostUserServer(path, device, options, fd, EventFd.create());
        } catch (NativeCallException | RuntimeException e) {
            Libc.closeQuietly(fd);
            throw e;
        }
    }

    /** @return the socket path */
    public String path() {
        return path;
    }

    /** @return the counters of this server */
    public VhostUserStatistics statistics() {
        return statistics;
    }

    /**
     * Accepts and serves connections, one at a time, until {@link #close()} is called.
     *
     * @throws NativeCallException if waiting on or accepting from the listening socket fails
     */
    public void run() throws NativeCallException {
        running = true;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pollfds = arena.allocate(Libc.POLLFD_SIZE * 2, 8);
            pollfds.set(ValueLayout.JAVA_INT, 0, listenFd);
            pollfds.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            pollfds.set(ValueLayout.JAVA_INT, 8, stop.fd());
            pollfds.set(ValueLayout.JAVA_SHORT, 12, Libc.POLLIN);
            LOG.log(System.Logger.Level.INFO, device.name() + " back end listening on " + path);
            while (true) {
                pollfds.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
                pollfds.set(ValueLayout.JAVA_SHORT, 14, (short) 0);
                Libc.poll(pollfds, 2, -1);
                if (pollfds.get(ValueLayout.JAVA_SHORT, 14) != 0) {
                    return;
                }
                if (pollfds.get(ValueLayout.JAVA_SHORT, 6) == 0) {
                    continue;
                }
                int conn = Libc.accept(listenFd);
                statistics.connections.increment();
                LOG.log(System.Logger.Level.INFO, "front end connected (connection " + statistics.connections.sum()
                    + ")");
                String reason;
                try (VhostUserConnection connection =
                         new VhostUserConnection(device, new VhostUserChannel(conn, options.stallMillis()), statistics,
                             options)) {
                    reason = connection.serve(stop);
                }
                System.Logger.Level level = reason.startsWith("closing") ? System.Logger.Level.WARNING
                    : System.Logger.Level.INFO;
                LOG.log(level, reason + "; " + statistics);
            }
        } finally {
            running = false;
            stopped.countDown();
        }
    }

    /**
     * Ends {@link #run()} (closing the current connection), then closes the listening socket and
     * removes the socket file. Safe from any thread, e.g. a shutdown hook; idempotent.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        stop.wakeQuietly();
        if (running) {
            try {
                if (!stopped.await(CLOSE_TIMEOUT_MILLIS, TimeUnit.MILLISECONDS)) {
                    LOG.log(System.Logger.Level.WARNING, "the server did not stop within " + CLOSE_TIMEOUT_MILLIS
                        + " ms; closing its socket anyway");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        Libc.closeQuietly(listenFd);
        try {
            Libc.unlink(path);
        } catch (NativeCallException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot remove socket file: " + e.getMessage());
        }
        stop.close();
        LOG.log(System.Logger.Level.INFO, "back end stopped; " + statistics);
    }
}

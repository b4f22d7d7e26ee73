package io.vringj.vhostuser.backend;

import io.vringj.device.VirtioDevice;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.VhostUserChannel;
import io.vringj.vhostuser.VhostUserProtocol;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A vhost-user back end listening on a Unix socket: serves several front ends at once, each with
 * a {@link VhostUserConnection} on a thread of its own (its own memory table, rings and
 * workers), up to {@link BackendOptions#maxConnections()}. A connection that breaks the protocol
 * or faults is closed with a logged reason and the others carry on; the server stays up until
 * {@link #close()}.
 *
 * <pre>
 *   try (VhostUserServer server = VhostUserServer.bind(path, device)) {
 *       server.run();          // returns after close() from another thread
 *   }
 * </pre>
 */
public final class VhostUserServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserServer.class.getName());

    /** Front ends the kernel queues while the accept loop is busy. */
    private static final int LISTEN_BACKLOG = 16;
    /** How long {@link #close()} waits for {@link #run()} to end its connections. */
    static final long CLOSE_TIMEOUT_MILLIS = 10_000;

    private final String path;
    private final VirtioDevice device;
    private final BackendOptions options;
    private final int listenFd;
    private final EventFd stop;
    private final VhostUserStatistics statistics = new VhostUserStatistics();
    private final CountDownLatch stopped = new CountDownLatch(1);
    /** The threads of the connections being served; guarded by itself. */
    private final Set<Thread> connections = new HashSet<>();
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
     * @throws IllegalArgumentException if the device has more queues than vhost-user can name
     *     ({@link VhostUserProtocol#MAX_VRINGS})
     * @throws NativeCallException if the socket cannot be created, bound or listened on
     */
    public static VhostUserServer bind(String path, VirtioDevice device, BackendOptions options)
        throws NativeCallException {
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(options, "options");
        if (device.queueCount() > VhostUserProtocol.MAX_VRINGS) {
            throw new IllegalArgumentException(device.name() + " has " + device.queueCount() + " queues; vhost-user "
                + "names at most " + VhostUserProtocol.MAX_VRINGS
                + " (an 8-bit index in SET_VRING_KICK and SET_VRING_CALL)");
        }
        int fd = Libc.socket();
        try {
            Libc.bind(fd, path);
            Libc.listen(fd, LISTEN_BACKLOG);
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
     * Accepts connections until {@link #close()} is called, serving each on a thread of its own
     * (with its own memory, rings and workers), at most {@link BackendOptions#maxConnections()} at
     * once; a front end past the limit is refused with a logged reason. Returns once every
     * connection has ended (each is told to stop by {@link #close()}), or after
     * {@value #CLOSE_TIMEOUT_MILLIS} ms.
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
            LOG.log(System.Logger.Level.INFO, device.name() + " back end listening on " + path + " (up to "
                + options.maxConnections() + " front ends at once)");
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
                accept(Libc.accept(listenFd));
            }
        } finally {
            awaitConnections();
            running = false;
            stopped.countDown();
        }
    }

    /** Serves an accepted connection on a thread of its own, or refuses it past the limit. */
    private void accept(int conn) {
        statistics.connections.increment();
        long number = statistics.connections.sum();
        synchronized (connections) {
            if (connections.size() >= options.maxConnections()) {
                statistics.connectionsRefused.increment();
                LOG.log(System.Logger.Level.WARNING, "refusing front end (connection " + number + "): "
                    + connections.size() + " are served already, the limit is " + options.maxConnections()
                    + " (--max-connections)");
                Libc.closeQuietly(conn);
                return;
            }
            Thread thread = Thread.ofPlatform().name("vhost-user-connection-" + number).daemon().unstarted(
                () -> serve(conn, number));
            connections.add(thread);
            LOG.log(System.Logger.Level.INFO, "front end connected (connection " + number + ", "
                + connections.size() + " served)");
            thread.start();
        }
    }

    /** The body of a connection thread: serves until the connection ends, then releases everything. */
    private void serve(int conn, long number) {
        String reason;
        try (VhostUserConnection connection = new VhostUserConnection(device,
            new VhostUserChannel(conn, options.stallMillis()), statistics, options)) {
            reason = connection.serve(stop);
        } catch (Throwable e) {
            // the connection could not even be set up (or not closed): that connection only ends
            Libc.closeQuietly(conn);
            reason = "closing connection: " + e;
        } finally {
            synchronized (connections) {
                connections.remove(Thread.currentThread());
            }
        }
        System.Logger.Level level = reason.startsWith("closing") ? System.Logger.Level.WARNING
            : System.Logger.Level.INFO;
        LOG.log(level, reason + " (connection " + number + "); " + statistics);
    }

    /** Waits for every connection thread (they were told to stop), at most {@value #CLOSE_TIMEOUT_MILLIS} ms. */
    private void awaitConnections() {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(CLOSE_TIMEOUT_MILLIS);
        boolean interrupted = false;
        while (true) {
            Thread next;
            synchronized (connections) {
                if (connections.isEmpty()) {
                    break;
                }
                next = connections.iterator().next();
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                LOG.log(System.Logger.Level.WARNING, "connections still open after " + CLOSE_TIMEOUT_MILLIS
                    + " ms: " + connections);
                break;
            }
            try {
                next.join(Duration.ofNanos(left));
            } catch (InterruptedException e) {
                interrupted = true;
            }
            if (!next.isAlive()) {
                synchronized (connections) {
                    connections.remove(next);
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** @return how many front ends are being served now */
    public int activeConnections() {
        synchronized (connections) {
            return connections.size();
        }
    }

    /**
     * Ends {@link #run()} (closing every connection), then closes the listening socket and
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

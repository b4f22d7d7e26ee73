package io.vringj.vhostuser.frontend;

import io.vringj.dma.DmaOps;
import io.vringj.memory.GuestMemory;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A vhost-user front end: the driver side of a virtio device whose back end runs in another
 * process (DPDK {@code net_vhost}, {@code qemu-storage-daemon}, vringj's own back end). It
 * connects to the back end's socket, or listens for it ({@link FrontEndOptions#server}),
 * negotiates features and protocol features, shares a sealed memfd as guest memory, lays the
 * rings out in it and hands each vring to the caller as a {@link FrontEndQueue} with its
 * ring-core {@link io.vringj.ring.DriverQueue} and kick / call eventfds.
 *
 * <pre>
 *   open(options) ──► CONNECTED ──(hang-up, EOF, protocol error)──► DISCONNECTED
 *                        ▲                                              │
 *                        └──────────────── reconnect() ◄────────────────┘     close() ──► CLOSED
 * </pre>
 *
 * <p>Every reply is checked (request code, flags exactly {@code 0x5}, size, no fds, the vring
 * index GET_VRING_BASE echoes) and waited for at most the reply time-out; a back end that breaks
 * a rule gets a {@link ProtocolException} naming the value and the rule, its connection is shut
 * down, and the front end becomes {@link FrontEndState#DISCONNECTED}. A monitor thread watches the
 * socket for a hang-up while the connection is idle and tells the {@link FrontEndListener}s.
 * {@link #reconnect()} releases every fd and mapping of the old connection before making a new
 * one; queues and memory then are new objects.
 *
 * <p>Control methods ({@link #startQueues()}, {@link #startQueue}, {@link #stopQueue},
 * {@link #reconnect()}, {@link #close()}) are synchronized and may be called from any thread; each
 * queue's data path belongs to one driver thread.
 */
public final class VhostUserFrontEnd implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserFrontEnd.class.getName());
    /** {@code POLLRDHUP} (x86_64 Linux): the peer shut down its writing side or closed. */
    private static final short POLLRDHUP = 0x2000;
    /** errno values for which a client keeps retrying until the connect time-out. */
    private static final int ENOENT = 2;
    private static final int ECONNREFUSED = 111;
    private static final int ETIMEDOUT = 110;
    private static final long RETRY_MILLIS = 20;

    private final FrontEndOptions options;
    private final int listenFd;
    private final List<FrontEndListener> listeners = new CopyOnWriteArrayList<>();
    private final AtomicReference<FrontEndState> state = new AtomicReference<>(FrontEndState.DISCONNECTED);
    /** Written by whoever moved the state away from CONNECTED; volatile: reads on other threads pair with that write. */
    private volatile String disconnectReason = "not connected yet";
    /** Guarded by this. */
    private FrontEndSession session;
    /** Written under this; volatile: a monitor's read in lostBy pairs with the write that replaced it. */
    private volatile Monitor monitor;
    /** Guarded by this. */
    private int connections;

    private VhostUserFrontEnd(FrontEndOptions options, int listenFd) {
        this.options = options;
        this.listenFd = listenFd;
    }

    /**
     * Connects (or, in server mode, listens and waits for the back end), negotiates and shares
     * the guest memory. Queues are started by {@link #startQueues()}.
     *
     * @param options how to connect and what to ask for
     * @return a connected front end
     * @throws ProtocolException if the back end broke the protocol, refused a request, lacks a
     *     required feature, closed the connection mid-setup or did not reply in time
     * @throws NativeCallException if a socket or memory call failed, or no back end could be
     *     reached within the connect time-out ({@code ETIMEDOUT}, {@code ECONNREFUSED}, {@code ENOENT})
     */
    public static VhostUserFrontEnd open(FrontEndOptions options) throws ProtocolException, NativeCallException {
        Objects.requireNonNull(options, "options");
        int listenFd = -1;
        if (options.mode() == FrontEndOptions.Mode.SERVER) {
            listenFd = Libc.socket();
            try {
                Libc.bind(listenFd, options.socketPath());
                Libc.listen(listenFd, 1);
            } catch (NativeCallException | RuntimeException e) {
                Libc.closeQuietly(listenFd);
                throw e;
            }
        }
        VhostUserFrontEnd frontEnd = new VhostUserFrontEnd(options, listenFd);
        try {
            frontEnd.connectLocked();
            return frontEnd;
        } catch (ProtocolException | NativeCallException | RuntimeException | Error e) {
            frontEnd.close();
            throw e;
        }
    }

    /** @return the options this front end was opened with */
    public FrontEndOptions options() {
        return options;
    }

    /** @return where the connection stands */
    public FrontEndState state() {
        return state.get();
    }

    /** @return why the last connection ended (or "not connected yet") */
    public String disconnectReason() {
        return disconnectReason;
    }

    /** @param listener told of every lost connection from now on */
    public void addListener(FrontEndListener listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
    }

    /** @param listener no longer told */
    public void removeListener(FrontEndListener listener) {
        listeners.remove(listener);
    }

    /** @return how many connections were made so far (1 after open, +1 per successful reconnect) */
    public synchronized int connections() {
        return connections;
    }

    // ---------------------------------------------------------------- negotiated state

    /** @return the features the back end offered in GET_FEATURES */
    public synchronized long offeredFeatures() {
        return session().offeredFeatures();
    }

    /** @return the negotiated virtio features (wanted and offered; without the vhost-user bit 30) */
    public synchronized long features() {
        return session().features();
    }

    /** @return the negotiated protocol features (REPLY_ACK, STATUS, MQ as offered and wanted) */
    public synchronized long protocolFeatures() {
        return session().protocolFeatures();
    }

    /** @return the back end's answer to GET_QUEUE_NUM, or -1 if multiqueue was not asked for */
    public synchronized long backEndQueueNum() {
        return session().queueNum();
    }

    /**
     * @return how many vrings, from 0, this connection may use: every configured one, or with
     *     {@link FrontEndOptions.Builder#multiQueueIfOffered(int)} as many as the back end serves
     */
    public synchronized int usableQueueCount() {
        return session().usableQueueCount();
    }

    /** @return whether the back end's configuration space can be read ({@code PROTOCOL_F_CONFIG} negotiated) */
    public synchronized boolean hasConfig() {
        return session().hasConfig();
    }

    /**
     * Reads the device's configuration space with {@code GET_CONFIG} (e.g. virtio-net's
     * {@code max_virtqueue_pairs} [virtio 5.1.4]).
     *
     * @param offset where to start, in bytes
     * @param size how many bytes
     * @return the bytes, little-endian fields as the device keeps them
     * @throws IllegalStateException if {@link #hasConfig()} is false or the front end is not connected
     * @throws IllegalArgumentException if the range is negative or larger than a message
     * @throws ProtocolException if the back end refused or broke the protocol (the connection is then shut down)
     * @throws NativeCallException if a socket call failed (likewise)
     */
    public synchronized byte[] readConfig(int offset, int size) throws ProtocolException, NativeCallException {
        FrontEndSession s = session();
        try {
            return s.readConfig(offset, size);
        } catch (ProtocolException | NativeCallException e) {
            failed(e);
            throw e;
        }
    }

    /** @return the guest memory shared with the back end (rings and buffers) */
    public synchronized GuestMemory memory() {
        return session().memory().memory();
    }

    /** @return DMA ops for this memory: bus address = guest-physical, coherent allocations from guest memory */
    public synchronized DmaOps dma() {
        return session().dma();
    }

    /**
     * Takes zeroed buffer memory from the guest memory (after the rings); it is freed with the
     * connection.
     *
     * @param bytes how many
     * @param alignment a power of two up to 4096
     * @return native memory inside the guest memory; its guest-physical address is
     *     {@code memory().guestPhysicalAddressOf(segment)}
     * @throws IllegalStateException if the guest memory is full (the message names the sizes)
     */
    public synchronized MemorySegment allocate(long bytes, long alignment) {
        return session().memory().allocate(bytes, alignment);
    }

    /** @return the memfd's name, as {@code /proc/PID/maps} shows it ({@code /memfd:NAME}) */
    public synchronized String memoryName() {
        return session().memory().name();
    }

    // ---------------------------------------------------------------- queues

    /**
     * Starts every usable queue ({@link #usableQueueCount()}) that is not running and then (with
     * STATUS) sets DRIVER_OK.
     *
     * @return the queues, by vring index
     * @throws ProtocolException if the back end broke the protocol or refused a request (the
     *     connection is then shut down)
     * @throws NativeCallException if a socket call failed (likewise)
     */
    public synchronized FrontEndQueue[] startQueues() throws ProtocolException, NativeCallException {
        return startQueues(session().usableQueueCount());
    }

    /**
     * Starts vrings 0..count-1 where not running and then (with STATUS) sets DRIVER_OK; the others
     * stay unset-up (a virtio-net driver that uses fewer queue pairs than the device has).
     *
     * @param count how many vrings, 1..{@link #usableQueueCount()}
     * @return the queues, by vring index
     * @throws IllegalArgumentException if the count is out of range
     * @throws ProtocolException if the back end broke the protocol or refused a request (the
     *     connection is then shut down)
     * @throws NativeCallException if a socket call failed (likewise)
     */
    public synchronized FrontEndQueue[] startQueues(int count) throws ProtocolException, NativeCallException {
        FrontEndSession s = session();
        if (count < 1 || count > s.usableQueueCount()) {
            throw new IllegalArgumentException("start " + count + " vrings: outside 1.." + s.usableQueueCount()
                + " (the vrings this connection may use)");
        }
        FrontEndQueue[] all = new FrontEndQueue[count];
        try {
            for (int i = 0; i < all.length; i++) {
                FrontEndQueue q = s.queue(i);
                all[i] = q != null && q.isRunning() ? q : s.startQueue(i);
            }
            s.driverOk();
        } catch (ProtocolException | NativeCallException e) {
            failed(e);
            throw e;
        }
        return all;
    }

    /**
     * Starts (or restarts after {@link #stopQueue}) one queue: the back end resumes at the vring base
     * it returned when stopped.
     *
     * @param index the vring
     * @return the queue
     * @throws IllegalStateException if it is already running or the front end is not connected
     * @throws ProtocolException if the back end broke the protocol (the connection is then shut down)
     * @throws NativeCallException if a socket call failed (likewise)
     */
    public synchronized FrontEndQueue startQueue(int index) throws ProtocolException, NativeCallException {
        FrontEndSession s = session();
        try {
            return s.startQueue(index);
        } catch (ProtocolException | NativeCallException e) {
            failed(e);
            throw e;
        }
    }

    /**
     * Stops one queue: SET_VRING_ENABLE 0 (when protocol features were negotiated) and
     * GET_VRING_BASE, whose answer is checked (it echoes the index; it is a ring state this queue
     * can be in) and kept for the restart.
     *
     * @param index the vring
     * @return the back end's vring base
     * @throws IllegalStateException if it is not running or the front end is not connected
     * @throws ProtocolException if the back end broke the protocol (the connection is then shut down)
     * @throws NativeCallException if a socket call failed (likewise)
     */
    public synchronized int stopQueue(int index) throws ProtocolException, NativeCallException {
        FrontEndSession s = session();
        try {
            return s.stopQueue(index);
        } catch (ProtocolException | NativeCallException e) {
            failed(e);
            throw e;
        }
    }

    /**
     * @param index the vring
     * @return the queue, or {@code null} if it was never started on this connection
     */
    public synchronized FrontEndQueue queue(int index) {
        return session().queue(index);
    }

    // ---------------------------------------------------------------- connection

    /**
     * Drops the current connection (stopping its running queues first if it is still up) with
     * every fd and mapping it held, then connects and negotiates again. Queue and memory objects
     * of the old connection are dead afterwards; start the queues again.
     *
     * @throws IllegalStateException if the front end was closed
     * @throws ProtocolException if the new back end broke the protocol (the front end stays
     *     {@link FrontEndState#DISCONNECTED})
     * @throws NativeCallException if no back end could be reached (likewise)
     */
    public synchronized void reconnect() throws ProtocolException, NativeCallException {
        if (state.get() == FrontEndState.CLOSED) {
            throw new IllegalStateException("front end on " + options.socketPath() + " is closed");
        }
        if (state.compareAndSet(FrontEndState.CONNECTED, FrontEndState.DISCONNECTED)) {
            disconnectReason = "reconnect requested";
            dropSession(true);
        } else {
            dropSession(false);
        }
        connectLocked();
    }

    /** Stops the running queues, releases the connection, and in server mode removes the socket file. Idempotent. */
    @Override
    public synchronized void close() {
        FrontEndState previous = state.getAndSet(FrontEndState.CLOSED);
        if (previous == FrontEndState.CLOSED) {
            return;
        }
        disconnectReason = "front end closed";
        dropSession(previous == FrontEndState.CONNECTED);
        if (listenFd >= 0) {
            Libc.closeQuietly(listenFd);
            try {
                Libc.unlink(options.socketPath());
            } catch (NativeCallException e) {
                LOG.log(System.Logger.Level.WARNING, "cannot remove socket file: " + e.getMessage());
            }
        }
    }

    /** Connects or accepts, negotiates, and starts the monitor; on failure holds nothing. */
    private void connectLocked() throws ProtocolException, NativeCallException {
        int fd;
        try {
            fd = options.mode() == FrontEndOptions.Mode.SERVER ? acceptBackEnd() : connectToBackEnd();
        } catch (NativeCallException e) {
            disconnectReason = e.getMessage();
            throw e;
        }
        FrontEndSession s;
        try {
            s = FrontEndSession.establish(fd, options, connections + 1);
        } catch (ProtocolException | NativeCallException e) {
            disconnectReason = e.getMessage();
            throw e;
        }
        Monitor m;
        try {
            m = new Monitor(s.socketFd());
        } catch (NativeCallException e) {
            s.close(false);
            throw e;
        }
        session = s;
        monitor = m;
        connections++;
        state.set(FrontEndState.CONNECTED);
        m.start();
        LOG.log(System.Logger.Level.INFO, "connected to back end on " + options.socketPath() + " (connection "
            + connections + ")");
    }

    private int connectToBackEnd() throws NativeCallException {
        long deadline = System.nanoTime() + options.connectTimeout().toNanos();
        while (true) {
            int fd = Libc.socket();
            try {
                Libc.connect(fd, options.socketPath());
                return fd;
            } catch (NativeCallException e) {
                Libc.closeQuietly(fd);
                boolean retry = e.errno() == ENOENT || e.errno() == ECONNREFUSED || e.errno() == Libc.EAGAIN;
                if (!retry || System.nanoTime() - deadline >= 0) {
                    throw e;
                }
            }
            try {
                Thread.sleep(RETRY_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new NativeCallException("connect", Libc.EINTR, options.socketPath() + ": interrupted");
            }
        }
    }

    private int acceptBackEnd() throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pollfd = arena.allocate(Libc.POLLFD_SIZE, 8);
            pollfd.set(ValueLayout.JAVA_INT, 0, listenFd);
            pollfd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            long millis = options.connectTimeout().toMillis();
            if (Libc.poll(pollfd, 1, (int) millis) == 0) {
                throw new NativeCallException("accept", ETIMEDOUT, "no back end connected to " + options.socketPath()
                    + " within " + millis + " ms");
            }
            return Libc.accept(listenFd);
        }
    }

    private FrontEndSession session() {
        FrontEndSession s = session;
        if (s == null) {
            throw new IllegalStateException("front end on " + options.socketPath() + " has no connection ("
                + state.get() + ": " + disconnectReason + ")");
        }
        if (state.get() != FrontEndState.CONNECTED) {
            throw new IllegalStateException("front end on " + options.socketPath() + " is " + state.get() + ": "
                + disconnectReason + "; reconnect() or close()");
        }
        return s;
    }

    /** A request failed: the connection is not to be trusted any more. Shut it down and report it. */
    private void failed(Exception e) {
        lost(e.getMessage());
        try {
            Libc.shutdown(session.socketFd());
        } catch (NativeCallException ignored) {
            // the back end already closed it: nothing left to shut
        }
    }

    /**
     * Stops the monitor and releases the session; the caller has already moved the state away
     * from CONNECTED, so the monitor reports nothing.
     *
     * @param polite whether the connection was still up (its running queues are then stopped first)
     */
    private void dropSession(boolean polite) {
        if (monitor != null) {
            monitor.stop();
            monitor = null;
        }
        if (session != null) {
            session.close(polite);
            session = null;
        }
    }

    /** A monitor saw the connection go: report it if that monitor still watches the current connection. */
    private void lostBy(Monitor reporter, String reason) {
        if (monitor == reporter) {
            lost(reason);
        }
    }

    /** The connection was lost: report it once. */
    private void lost(String reason) {
        if (!state.compareAndSet(FrontEndState.CONNECTED, FrontEndState.DISCONNECTED)) {
            return;
        }
        disconnectReason = reason;
        LOG.log(System.Logger.Level.WARNING, "lost back end on " + options.socketPath() + ": " + reason);
        for (FrontEndListener listener : listeners) {
            try {
                listener.disconnected(this, reason);
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "front-end listener failed: " + e);
            }
        }
    }

    /**
     * Watches the socket of one connection for a hang-up ({@code POLLHUP}, {@code POLLRDHUP},
     * {@code POLLERR}); it asks for no {@code POLLIN}, so replies read by control calls are not
     * disturbed. Ends when the hang-up is reported or when stopped; it closes its own wake-up fd on
     * the way out. A monitor that is no longer the current one reports nothing.
     */
    private final class Monitor implements Runnable {
        /** How long {@link #stop()} waits for the thread; longer only if a listener is still running on it. */
        private static final long JOIN_MILLIS = 2000;

        private final int socketFd;
        private final EventFd wake;
        private final Thread thread;
        private final Object lock = new Object();
        /** Guarded by lock: the wake-up fd is closed. */
        private boolean exited;

        Monitor(int socketFd) throws NativeCallException {
            this.socketFd = socketFd;
            this.wake = EventFd.create();
            this.thread = Thread.ofPlatform().daemon().name("vhost-user-front-end-monitor").unstarted(this);
        }

        void start() {
            thread.start();
        }

        @Override
        public void run() {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment pollfds = arena.allocate(Libc.POLLFD_SIZE * 2, 8);
                pollfds.set(ValueLayout.JAVA_INT, 0, socketFd);
                pollfds.set(ValueLayout.JAVA_SHORT, 4, POLLRDHUP);
                pollfds.set(ValueLayout.JAVA_INT, Libc.POLLFD_SIZE, wake.fd());
                pollfds.set(ValueLayout.JAVA_SHORT, Libc.POLLFD_SIZE + 4, Libc.POLLIN);
                while (true) {
                    pollfds.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
                    pollfds.set(ValueLayout.JAVA_SHORT, Libc.POLLFD_SIZE + 6, (short) 0);
                    Libc.poll(pollfds, 2, -1);
                    if (pollfds.get(ValueLayout.JAVA_SHORT, Libc.POLLFD_SIZE + 6) != 0) {
                        return;
                    }
                    short revents = pollfds.get(ValueLayout.JAVA_SHORT, 6);
                    if (revents != 0) {
                        lostBy(this, "back end hung up (poll events 0x" + Integer.toHexString(revents & 0xFFFF) + ")");
                        return;
                    }
                }
            } catch (NativeCallException e) {
                lostBy(this, "watching the back end's socket failed: " + e.getMessage());
            } finally {
                synchronized (lock) {
                    exited = true;
                    wake.close();
                }
            }
        }

        /** Ends the thread; waits for it unless called from it (a listener that reconnects). */
        void stop() {
            synchronized (lock) {
                if (!exited) {
                    wake.wakeQuietly();
                }
            }
            if (Thread.currentThread() != thread) {
                try {
                    thread.join(JOIN_MILLIS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }
}

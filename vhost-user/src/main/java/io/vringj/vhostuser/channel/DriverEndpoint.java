package io.vringj.vhostuser.channel;

import io.vringj.device.net.Frame;
import io.vringj.device.net.NetDriver;
import io.vringj.device.net.NetFeatures;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.frontend.FrontEndOptions;
import io.vringj.vhostuser.frontend.FrontEndQueue;
import io.vringj.vhostuser.frontend.FrontEndState;
import io.vringj.vhostuser.frontend.VhostUserFrontEnd;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The connecting end: a vhost-user front end that shares a sealed memfd with the back end and
 * drives one virtio-net queue pair through a {@link NetDriver} (sends on tx, queue 1; receives
 * on rx, queue 0).
 *
 * <pre>
 *   buffer area (in the shared memfd):
 *     ┌ rx 0 ┬ ... ┬ rx Q-1 ┬ tx 0 ┬ ... ┬ tx Q-1 ┐
 *     rx buffer (rxBufferSize):  ┌ hdr 12 ┬ message, or its first part (MRG_RXBUF) ┐
 *     tx buffer (12 + max, to 64): ┌ hdr 12 ┬ message (tryClaim returns this part) ┐
 *   rxMessages[slot]: a slice of rx buffer slot from its message byte, made once
 *   reassembly: one buffer of maxMessageLength for a message over several rx buffers
 * </pre>
 *
 * <p>The application's thread owns the driver (rings, buffers, reassembly). The front end's
 * monitor thread reports a hang-up of the back end through a listener, which closes the channel
 * ("peer closed") and wakes a sleeper; {@link #close()} may come from any thread. An operation
 * racing with a close from another thread may meet unmapped memory: that
 * {@link IllegalStateException} becomes a {@link ChannelClosedException}.
 */
final class DriverEndpoint extends Endpoint implements NetDriver.Receiver {
    private static final System.Logger LOG = System.getLogger(DriverEndpoint.class.getName());

    private final ChannelOptions options;
    private final VhostUserFrontEnd frontEnd;
    private final FrontEndQueue rxQueue;
    private final FrontEndQueue txQueue;
    private final NetDriver driver;
    private final MemorySegment[] rxMessages;
    private final int rxBufferSize;
    private final Arena reassemblyArena = Arena.ofShared();
    private final MemorySegment reassembly;
    private final EventWait wait;
    private final int maxMessageLength;
    private final boolean packed;
    private final boolean inOrder;

    /** The handler of the poll in progress (no lambda or allocation per poll). */
    private MessageHandler handler;
    /** The thread that last used the channel: close() lingers for the peer only on it. */
    private volatile Thread appThread;
    /** Whether the application's handler runs (an exception from it is the application's). */
    private boolean inHandler;
    /** Set in onFrame when the peer sent a message longer than this end takes. */
    private String receiveFailure;
    private int claimedLength = -1;

    private DriverEndpoint(ChannelOptions options, VhostUserFrontEnd frontEnd, FrontEndQueue rxQueue,
                           FrontEndQueue txQueue, MemorySegment area, EventWait wait) throws VirtqueueException {
        this.options = options;
        this.frontEnd = frontEnd;
        this.rxQueue = rxQueue;
        this.txQueue = txQueue;
        this.wait = wait;
        this.maxMessageLength = options.maxMessageLength();
        this.rxBufferSize = options.rxBufferSize();
        long features = frontEnd.features();
        this.packed = VirtioFeatures.has(features, VirtioFeatures.RING_PACKED);
        this.inOrder = VirtioFeatures.has(features, VirtioFeatures.IN_ORDER);
        int q = options.queueSize();
        this.driver = new NetDriver(rxQueue.driverQueue(), txQueue.driverQueue(), area,
            frontEnd.memory().guestPhysicalAddressOf(area), rxBufferSize, txBufferSize(options),
            () -> kick(rxQueue), () -> kick(txQueue), 0);
        this.rxMessages = new MemorySegment[q];
        for (int s = 0; s < q; s++) {
            // NetDriver's layout: rx buffer s at s * rxBufferSize, its frame after the 12-byte header
            rxMessages[s] = area.asSlice((long) s * rxBufferSize + ChannelOptions.HEADER_LENGTH,
                rxBufferSize - ChannelOptions.HEADER_LENGTH);
        }
        this.reassembly = reassemblyArena.allocate(Math.max(1, maxMessageLength), 64);
        // polling mode until a caller sleeps in awaitMessages
        driver.disableRxInterrupts();
    }

    private static int txBufferSize(ChannelOptions options) {
        return (ChannelOptions.HEADER_LENGTH + options.maxMessageLength() + 63) & ~63;
    }

    /** Connects, negotiates, shares memory, starts both queues and posts every rx buffer. */
    static DriverEndpoint connect(ChannelOptions options) throws IOException {
        int q = options.queueSize();
        long area = NetDriver.bufferAreaSize(q, options.rxBufferSize(), q, txBufferSize(options));
        // per vring at most a split ring's 16 Q + (6 + 2 Q) + (6 + 8 Q) bytes, each area page-aligned at worst
        long rings = 2L * (26L * q + 3 * 4096);
        // two MiB of slack, rounded to two MiB
        long memory = (area + 64 + rings + (4L << 20)) & ~((2L << 20) - 1);
        FrontEndOptions frontEndOptions = FrontEndOptions.client(options.socket().toString()).queues(2).queueSize(q)
            .features(ChannelFeatures.wanted(options)).requireFeatures(ChannelFeatures.required(options))
            .memorySize(memory).connectTimeout(options.connectTimeout()).memoryName("vringj-channel").build();
        VhostUserFrontEnd frontEnd;
        try {
            frontEnd = VhostUserFrontEnd.open(frontEndOptions);
        } catch (ProtocolException e) {
            throw new IOException("channel to " + options.socket() + ": " + e.getMessage(), e);
        }
        EventWait wait = null;
        try {
            if (!NetFeatures.mergeableRxBuffers(frontEnd.features()) && options.rxBufferSize()
                < ChannelOptions.HEADER_LENGTH + options.maxMessageLength()) {
                throw new ProtocolException("the back end did not take MRG_RXBUF (features 0x"
                    + Long.toHexString(frontEnd.features()) + "), so one rx buffer must hold a whole message, but "
                    + "rxBufferSize " + options.rxBufferSize() + " is below the header and maxMessageLength "
                    + options.maxMessageLength());
            }
            wait = new EventWait();
            FrontEndQueue[] queues = frontEnd.startQueues(2);
            MemorySegment buffers = frontEnd.allocate(area, 64);
            DriverEndpoint endpoint = new DriverEndpoint(options, frontEnd, queues[NetFeatures.rxQueue(0)],
                queues[NetFeatures.txQueue(0)], buffers, wait);
            frontEnd.addListener((fe, reason) -> endpoint.peerGone(reason));
            if (frontEnd.state() != FrontEndState.CONNECTED) {
                endpoint.peerGone(frontEnd.disconnectReason());
            }
            return endpoint;
        } catch (ProtocolException | NativeCallException | VirtqueueException | RuntimeException e) {
            if (wait != null) {
                wait.close();
            }
            frontEnd.close();
            throw e instanceof IOException io ? io : new IOException("channel to " + options.socket()
                + " could not start: " + e.getMessage(), e);
        }
    }

    private static void kick(FrontEndQueue queue) {
        try {
            queue.kick();
        } catch (NativeCallException e) {
            throw new UncheckedIOException("kick of vring " + queue.index() + " failed", e);
        }
    }

    /** The front end's monitor saw the back end go (any thread). */
    private void peerGone(String reason) {
        markClosed("peer closed: " + reason);
        wait.wake();
    }

    @Override
    int maxMessageLength() {
        return maxMessageLength;
    }

    @Override
    MemorySegment tryClaim(int length) {
        enter();
        if (length < 0 || length > maxMessageLength) {
            throw new IllegalArgumentException("message length " + length + " is outside 0.." + maxMessageLength
                + " (maxMessageLength of this channel)");
        }
        if (claimedLength >= 0) {
            throw new IllegalStateException("a message of " + claimedLength + " bytes is already claimed; commit or "
                + "abort it first");
        }
        try {
            MemorySegment buffer = driver.claim();
            if (buffer != null) {
                claimedLength = length;
            }
            return buffer;
        } catch (VirtqueueException | RuntimeException e) {
            throw failed(e);
        }
    }

    @Override
    void commit() {
        enter();
        if (claimedLength < 0) {
            throw new IllegalStateException("no message is claimed");
        }
        try {
            driver.commit(claimedLength);
            claimedLength = -1;
        } catch (VirtqueueException | RuntimeException e) {
            throw failed(e);
        }
    }

    @Override
    void abort() {
        if (claimedLength >= 0) {
            claimedLength = -1;
            driver.abort();
        }
    }

    @Override
    int flush() {
        enter();
        try {
            return driver.flush();
        } catch (RuntimeException e) {
            throw failed(e);
        }
    }

    @Override
    int poll(MessageHandler h, int limit) {
        registerThread();
        String closed = closeReason();
        if (closed != null && (released || !closed.startsWith("peer"))) {
            throw new ChannelClosedException(closed);
        }
        // after the peer closed, what it published before is still delivered (the rings are this end's memory)
        handler = h;
        int n;
        try {
            n = driver.receive(this, limit);
        } catch (VirtqueueException | RuntimeException e) {
            if (inHandler) {
                // the application's handler threw: its message counts as received, the channel stays open
                inHandler = false;
                throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
            }
            throw failed(e);
        } finally {
            handler = null;
        }
        if (receiveFailure != null) {
            String reason = receiveFailure;
            close(reason);
            throw new ChannelClosedException(reason);
        }
        if (n == 0 && closed != null) {
            throw new ChannelClosedException(closed);
        }
        return n;
    }

    /** Every operation begins here: records the application's thread, fails once the channel closed. */
    private void enter() {
        registerThread();
        checkOpen();
    }

    private void registerThread() {
        Thread t = Thread.currentThread();
        // volatile read; written only when another thread takes the channel over
        if (appThread != t) {
            appThread = t;
        }
    }

    /** One frame from NetDriver: in place when it is one rx buffer, else copied once into the reassembly buffer. */
    @Override
    public void onFrame(Frame frame) {
        long length = frame.length();
        if (receiveFailure != null) {
            return;
        }
        if (length > maxMessageLength) {
            receiveFailure = "protocol error: the peer sent a message of " + length + " bytes; this end's "
                + "maxMessageLength is " + maxMessageLength + " (both ends must use the same)";
            return;
        }
        MemorySegment message;
        if (length == 0) {
            message = reassembly;
        } else if (frame.pieceCount() == 1) {
            // NetDriver hands a one-piece frame at its rx buffer's offset 12 in the area
            message = rxMessages[(int) ((frame.pieceOffset(0) - ChannelOptions.HEADER_LENGTH) / rxBufferSize)];
        } else {
            frame.copyTo(0, reassembly, 0, length);
            message = reassembly;
        }
        inHandler = true;
        handler.onMessage(message, (int) length);
        inHandler = false;
    }

    @Override
    boolean awaitMessages(long timeoutNanos) {
        enter();
        try {
            // a sleeper's own batch must not wait for its wake-up
            driver.flush();
            // enable, then look again: a frame used before the enable is seen here, after it a call comes
            wait.drain(rxQueue.callFd());
            if (driver.enableRxInterrupts()) {
                driver.disableRxInterrupts();
                return true;
            }
            boolean fired = wait.await(rxQueue.callFd(), timeoutNanos);
            checkOpen();
            driver.disableRxInterrupts();
            return fired;
        } catch (NativeCallException | RuntimeException e) {
            throw failed(e);
        }
    }

    @Override
    boolean awaitSpace(long timeoutNanos) {
        enter();
        try {
            if (driver.freeTxBuffers() > 0 || driver.reclaim() > 0) {
                return true;
            }
            // committed frames the device has not seen cannot come back: publish them before sleeping
            driver.flush();
            wait.drain(txQueue.callFd());
            if (driver.enableTxInterrupts()) {
                driver.disableTxInterrupts();
                return true;
            }
            boolean fired = wait.await(txQueue.callFd(), timeoutNanos);
            checkOpen();
            driver.disableTxInterrupts();
            return fired;
        } catch (NativeCallException | VirtqueueException | RuntimeException e) {
            throw failed(e);
        }
    }

    /**
     * Turns a failure inside an operation into the channel's closure, with the reason: a ring rule
     * the back end broke, a failed kick or poll; an access to memory that a concurrent close
     * unmapped reports that close.
     */
    private ChannelClosedException failed(Exception e) {
        String reason = closeReason();
        if (reason == null) {
            close(e instanceof VirtqueueException ? "protocol error: the back end broke a ring rule: " + e.getMessage()
                : "failed: " + e);
        }
        return new ChannelClosedException(closeReason(), e);
    }

    @Override
    boolean packed() {
        return packed;
    }

    @Override
    boolean inOrder() {
        return inOrder;
    }

    /**
     * Closes in order: on the application's thread, publishes what was committed and waits (up to
     * the connect time-out) until the serving end took every message sent, so nothing sent is
     * lost; then stops the queues, disconnects, unmaps and closes the fds.
     */
    @Override
    void close() {
        if (closeReason() == null && Thread.currentThread() == appThread) {
            linger(options.connectTimeout().toNanos());
        }
        close("closed by this side");
    }

    /** Waits until the back end used every tx buffer (it has taken every message), or the time-out. */
    private void linger(long timeoutNanos) {
        long deadline = System.nanoTime() + timeoutNanos;
        try {
            abort();
            driver.flush();
            int q = options.queueSize();
            while (closeReason() == null && driver.freeTxBuffers() + driver.reclaim() < q) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    LOG.log(System.Logger.Level.WARNING, "channel to " + options.socket() + ": closing with "
                        + (q - driver.freeTxBuffers()) + " messages the peer has not taken within "
                        + options.connectTimeout().toMillis() + " ms");
                    return;
                }
                wait.drain(txQueue.callFd());
                if (!driver.enableTxInterrupts()) {
                    wait.await(txQueue.callFd(), Math.min(left, 100_000_000L));
                }
                driver.disableTxInterrupts();
            }
        } catch (NativeCallException | VirtqueueException | RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, "channel to " + options.socket() + ": linger ended: " + e);
        }
    }

    /** Records the reason, stops the queues (GET_VRING_BASE), disconnects, unmaps the memory, closes the fds. */
    private void close(String reason) {
        boolean first = markClosed(reason);
        wait.wake();
        synchronized (this) {
            if (released) {
                return;
            }
            released = true;
        }
        if (!first) {
            LOG.log(System.Logger.Level.DEBUG, "closing channel to " + options.socket() + " (" + closeReason() + ")");
        }
        frontEnd.close();
        try {
            wait.close();
        } catch (IllegalStateException e) {
            // another thread still sleeps in await (a close from a second thread): the close goes on
            // without freeing the wait's poll array and wake-up fd, which that sleep still uses
            LOG.log(System.Logger.Level.WARNING, "channel to " + options.socket() + ": closed while a thread waits on it: "
                + e.getMessage());
        }
        reassemblyArena.close();
    }

    /** Written under this: the front end, the memory and the fds were released; volatile: poll reads it. */
    private volatile boolean released;

    @Override
    public String toString() {
        return "connect " + options.socket() + ", queue size " + options.queueSize() + (packed ? ", packed" : ", split");
    }
}

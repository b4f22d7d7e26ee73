package io.vringj.vhostuser.channel;

import io.vringj.device.net.NetFeatures;
import io.vringj.device.net.VirtioNetHeader;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceLoop;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.VhostUserChannel;
import io.vringj.vhostuser.backend.BackendOptions;
import io.vringj.vhostuser.backend.PairOwner;
import io.vringj.vhostuser.backend.VhostUserConnection;
import io.vringj.vhostuser.backend.VhostUserStatistics;
import io.vringj.vhostuser.linux.Libc;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The serving end: a vhost-user back end for exactly one front end, whose queue pair is worked by
 * the application's thread. The back end's connection runs on a thread of the channel (the
 * control plane: requests, memory table, fds); it hands the pair over as a {@link PairOwner} and
 * no pair worker is started.
 *
 * <pre>
 *   connection thread: serve(requests) → attach(pair) ... detach(pair) → close (unmap, fds)
 *   application thread: poll / tryClaim / commit / flush / await*   (the rings, the kick fds)
 *
 *   state:  WAITING ──attach──→ ATTACHED ──detach/close──→ DETACHING ──no operation inside──→ DETACHED
 *                                   └──── close or failure on the application's thread ─────┘
 * </pre>
 *
 * <p>Handing the rings back: the application's thread marks itself {@link #inside} an operation
 * with a volatile write, then reads {@link #state}; it clears the mark with a release store after
 * its last ring access (a claim keeps it until commit or abort; a sleeper clears it before
 * sleeping). To take the pair back, the connection thread writes DETACHING, then waits until it
 * reads the mark clear (acquire), and writes DETACHED: Dekker's order over the two volatiles
 * means either the operation saw DETACHING and touched nothing, or the detacher waits for it to
 * end, after which every ring access happened-before the vring bases are read. One fence per
 * operation (per message on the send side, as Aeron's concurrent publication's {@code
 * getAndAdd}); per batch on the receive side. An operation that does not end within
 * {@value #DETACH_TIMEOUT_MILLIS} ms (a handler that blocks, a claim never committed) fails the
 * front end's request and the connection closes; the memory is unmapped anyway, and a late
 * access throws {@link IllegalStateException}, which the operations report as
 * {@link ChannelClosedException}.
 *
 * <pre>
 *   receive (tx queue):  chain ┌ hdr 12 ┬ message ┐ (one or more readable descriptors)
 *       the message in one descriptor → handed in place (a cached slice of that buffer)
 *       spread over descriptors        → copied once into the reassembly buffer
 *   send (rx queue):     chains popped until they hold 12 + length (several only with MRG_RXBUF)
 *       the first descriptor holds it → tryClaim returns it in place
 *       else                           → tryClaim returns the staging buffer; commit scatters it
 * </pre>
 *
 * <p>A front end that breaks the rules (a device-writable tx descriptor, a short or offloaded
 * header, a message longer than maxMessageLength, a readable rx buffer or one shorter than the
 * header, a ring rule) closes the channel with the reason; the connection thread then closes the
 * socket, unmaps the memory and closes the fds.
 */
final class DeviceEndpoint extends Endpoint implements PairOwner {
    private static final System.Logger LOG = System.getLogger(DeviceEndpoint.class.getName());

    static final int WAITING = 0;
    static final int ATTACHED = 1;
    static final int DETACHING = 2;
    static final int DETACHED = 3;
    /** How long the connection thread waits for the application's thread to let go of the rings. */
    static final long DETACH_TIMEOUT_MILLIS = 5000;
    /** How long {@link #close()} waits for the connection thread. */
    private static final long CLOSE_TIMEOUT_MILLIS = 10_000;
    /** The most rx chains one message may span (as Linux vhost-net's UIO_MAXIOV). */
    private static final int MAX_MERGED_BUFFERS = io.vringj.device.net.RxPort.MAX_MERGED_BUFFERS;
    private static final int HEADER = ChannelOptions.HEADER_LENGTH;
    private static final VarHandle STATE;
    private static final VarHandle INSIDE;

    static {
        try {
            STATE = MethodHandles.lookup().findVarHandle(DeviceEndpoint.class, "state", int.class);
            INSIDE = MethodHandles.lookup().findVarHandle(DeviceEndpoint.class, "inside", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final ChannelOptions options;
    private final int maxMessageLength;
    private final EventWait wait;
    /** Tells the connection thread to end (its serve loop polls it). */
    private final EventFd stop;
    private final CountDownLatch settled = new CountDownLatch(1);
    private final Arena buffers = Arena.ofShared();
    private final MemorySegment reassembly;
    private final MemorySegment staging;
    private final MemorySegment headerScratch = MemorySegment.ofArray(new byte[HEADER]);
    private Thread connectionThread;

    /** WAITING, ATTACHED, DETACHING, DETACHED; see the class comment for who writes what. */
    private volatile int state;
    /** 1 while the application's thread is in an operation on the rings (or holds a claim); see the class comment. */
    private volatile int inside;
    /**
     * How deep the application's thread is in operations (a handler may claim and commit a reply
     * inside poll; a claim held until commit counts as one): {@link #inside} is cleared only when
     * the outermost one ends. The application's thread only.
     */
    private int depth;
    /** The thread that last used the channel (a close on it lets go of the rings at once). */
    private volatile Thread appThread;

    // Set by attach on the connection thread before the volatile write of state = ATTACHED; read by
    // the application's thread after its volatile read of state: that pair orders them.
    private DeviceQueue rx;
    private DeviceQueue tx;
    private EventFd rxKick;
    private EventFd txKick;
    private DeviceLoop.Notifier rxCall;
    private DeviceLoop.Notifier txCall;
    private boolean mergeable;
    private boolean packed;
    private boolean inOrder;
    private int batch;
    private int maxChains;
    private SliceCache slices;

    // receive (the application's thread)
    private final DescriptorChain txChain = new DescriptorChain();

    // send: rx chains popped and held until a message fills them, in pop order (the application's thread)
    private final DescriptorChain rxChain = new DescriptorChain();
    private int[] heads = new int[0];
    private long[] writable = new long[0];
    private int[] pieceEnd = new int[0];
    private MemorySegment[] pieceSegment = new MemorySegment[16];
    private long[] pieceOffset = new long[16];
    private long[] pieceLength = new long[16];
    private int held;
    private long heldBytes;
    private int heldPieces;
    private int claimedLength = -1;
    private int claimChains;
    private boolean claimCopies;
    private int pending;

    /** Guarded by this: the connection thread was stopped and the fds and buffers released. */
    private boolean released;

    private DeviceEndpoint(ChannelOptions options, EventWait wait, EventFd stop) {
        this.options = options;
        this.maxMessageLength = options.maxMessageLength();
        this.wait = wait;
        this.stop = stop;
        this.reassembly = buffers.allocate(Math.max(1, maxMessageLength), 64);
        this.staging = buffers.allocate(Math.max(1, maxMessageLength), 64);
    }

    /** Listens, accepts one front end, serves it on a connection thread, and waits until it handed its pair over. */
    static DeviceEndpoint serve(ChannelOptions options) throws IOException {
        long deadline = System.nanoTime() + options.connectTimeout().toNanos();
        String path = options.socket().toString();
        int conn = acceptOne(path, options.connectTimeout());
        EventWait wait = null;
        EventFd stop = null;
        DeviceEndpoint endpoint;
        try {
            wait = new EventWait();
            stop = EventFd.create();
            endpoint = new DeviceEndpoint(options, wait, stop);
        } catch (NativeCallException | RuntimeException e) {
            Libc.closeQuietly(conn);
            if (wait != null) {
                wait.close();
            }
            if (stop != null) {
                stop.close();
            }
            throw e instanceof IOException io ? io : new IOException("channel on " + path + ": " + e.getMessage(), e);
        }
        endpoint.startConnection(conn);
        long left = deadline - System.nanoTime();
        try {
            endpoint.settled.await(Math.max(0, left), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (endpoint.state == ATTACHED) {
            return endpoint;
        }
        String reason = endpoint.closeReason();
        endpoint.close();
        throw new IOException("channel on " + path + ": " + (reason != null ? reason
            : "the peer connected but did not start its queues within " + options.connectTimeout().toMillis() + " ms"));
    }

    /** Binds, waits for one front end, accepts it, and removes the socket file in any case. */
    private static int acceptOne(String path, Duration timeout) throws IOException {
        int listenFd = Libc.socket();
        try {
            Libc.bind(listenFd, path);
        } catch (NativeCallException e) {
            Libc.closeQuietly(listenFd);
            throw e;
        }
        try (Arena arena = Arena.ofConfined()) {
            Libc.listen(listenFd, 1);
            MemorySegment pollfd = arena.allocate(Libc.POLLFD_SIZE, 8);
            pollfd.set(ValueLayout.JAVA_INT, 0, listenFd);
            pollfd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            int millis = (int) Math.min(Integer.MAX_VALUE, timeout.toMillis());
            if (Libc.poll(pollfd, 1, millis) == 0) {
                throw new IOException("channel on " + path + ": no peer connected within " + millis + " ms");
            }
            return Libc.accept(listenFd);
        } finally {
            Libc.closeQuietly(listenFd);
            try {
                Libc.unlink(path);
            } catch (NativeCallException e) {
                LOG.log(System.Logger.Level.WARNING, "cannot remove socket file " + path + ": " + e.getMessage());
            }
        }
    }

    private void startConnection(int conn) {
        connectionThread = Thread.ofPlatform().daemon().name("vringj-channel-" + options.socket().getFileName())
            .start(() -> runConnection(conn));
    }

    /**
     * The connection thread: makes the connection (its arena is confined to this thread), serves
     * requests until it ends, then releases it.
     */
    private void runConnection(int conn) {
        VhostUserConnection connection;
        try {
            // one front end at a time: the socket file is gone, nobody else can connect
            connection = new VhostUserConnection(new ChannelDevice(ChannelFeatures.wanted(options)),
                new VhostUserChannel(conn), new VhostUserStatistics(),
                BackendOptions.defaults().withMaxConnections(1).withAllowUnsealedMemory(options.allowUnsealedMemory()),
                this);
        } catch (NativeCallException | RuntimeException e) {
            Libc.closeQuietly(conn);
            markClosed("failed: " + e.getMessage());
            beginDetach();
            settled.countDown();
            return;
        }
        String reason;
        try {
            reason = connection.serve(stop);
        } catch (Throwable e) {
            reason = "closing connection: " + e;
        }
        String why;
        if (reason.startsWith("closing connection: ")) {
            why = "protocol error: " + reason.substring("closing connection: ".length());
        } else if (reason.equals("back end shutting down")) {
            why = "closed by this side";
        } else {
            why = "peer gone: " + reason;
        }
        markClosed(why);
        beginDetach();
        settled.countDown();
        // stops the pair (detach waits for the application's thread), unmaps the memory, closes the fds
        connection.close();
        LOG.log(System.Logger.Level.INFO, "channel on " + options.socket() + " ended: " + closeReason());
    }

    // ---------------------------------------------------------------- PairOwner (connection thread)

    @Override
    public void attach(OwnedPair pair) {
        long features = pair.rx().features();
        if (!VirtioFeatures.has(features, VirtioFeatures.VERSION_1)) {
            throw new IllegalArgumentException("features 0x" + Long.toHexString(features) + " lack VERSION_1 (bit 32); "
                + "the channel's messages travel behind the 12-byte virtio_net_hdr_v1 [virtio 5.1.6]");
        }
        if (state != WAITING) {
            // the channel closed (or the front end started the pair again after stopping it): serve nothing
            return;
        }
        rx = pair.rx();
        tx = pair.tx();
        rxKick = pair.rxKick();
        txKick = pair.txKick();
        rxCall = pair.rxCall();
        txCall = pair.txCall();
        mergeable = NetFeatures.mergeableRxBuffers(features);
        packed = VirtioFeatures.has(features, VirtioFeatures.RING_PACKED);
        inOrder = VirtioFeatures.has(features, VirtioFeatures.IN_ORDER);
        batch = Math.max(1, Math.min(32, rx.queueSize() / 4));
        maxChains = mergeable ? Math.min(rx.queueSize(), MAX_MERGED_BUFFERS) : 1;
        heads = new int[maxChains];
        writable = new long[maxChains];
        pieceEnd = new int[maxChains];
        slices = new SliceCache(rx.queueSize() + tx.queueSize());
        // polling mode: no kicks until the application sleeps in await*
        rx.disableNotifications();
        tx.disableNotifications();
        // volatile write: publishes the fields above to the application's thread (its read in enter())
        state = ATTACHED;
        settled.countDown();
    }

    @Override
    public boolean detach(int pair, String why) {
        markClosed("peer closed: " + why);
        beginDetach();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(DETACH_TIMEOUT_MILLIS);
        // acquire: pairs with the release in exit(), after the operation's last ring access
        while (state != DETACHED && (int) INSIDE.getAcquire(this) != 0) {
            if (System.nanoTime() - deadline > 0) {
                LOG.log(System.Logger.Level.WARNING, "channel on " + options.socket() + ": the application's thread "
                    + "did not let go of the rings within " + DETACH_TIMEOUT_MILLIS + " ms");
                return false;
            }
            LockSupport.parkNanos(50_000);
        }
        // volatile write: an operation that begins now reads it (or DETACHING) and touches nothing
        state = DETACHED;
        return true;
    }

    /** Tells the application's thread to touch the rings no more (its operation in progress ends first); any thread. */
    private void beginDetach() {
        // volatile write, then detach() reads inside: Dekker with enter(), which writes inside, then reads state
        if (!STATE.compareAndSet(this, ATTACHED, DETACHING)) {
            STATE.compareAndSet(this, WAITING, DETACHING);
        }
        wait.wake();
    }

    // ---------------------------------------------------------------- the application's thread

    /** Every operation begins here: marks the thread inside, then fails if the rings were taken back. */
    private void enter() {
        Thread t = Thread.currentThread();
        // volatile read; written only when another thread takes over the channel
        if (appThread != t) {
            appThread = t;
        }
        if (depth++ == 0) {
            // volatile write, then the volatile read of state: Dekker with beginDetach (see the class comment)
            inside = 1;
        }
        if (state != ATTACHED) {
            exit();
            String reason = closeReason();
            throw new ChannelClosedException(reason != null ? reason : "closed");
        }
    }

    /** Every operation ends here, after its last ring access; the outermost one lets go of the rings. */
    private void exit() {
        if (depth > 0 && --depth == 0) {
            // release: pairs with the acquire in detach(); every ring access above happens-before its base reads
            INSIDE.setRelease(this, 0);
        }
    }

    /** The application's thread stops touching the rings for good, however deep it is (close, failure). */
    private void letGo() {
        // volatile write: the connection thread's detach reads it; nothing after this touches a ring
        state = DETACHED;
        depth = 0;
        // release: pairs with the acquire in detach()
        INSIDE.setRelease(this, 0);
    }

    /** Closes the channel from the application's thread (which then touches no ring), with the reason. */
    private ChannelClosedException closeHere(String reason, Throwable cause) {
        markClosed(reason);
        letGo();
        stop.wakeQuietly();
        return new ChannelClosedException(closeReason(), cause);
    }

    /** A failure inside an operation: a closed mapping reports the close, anything else closes the channel. */
    private ChannelClosedException failed(Exception e) {
        if (e instanceof ChannelClosedException c) {
            return c;
        }
        String reason = closeReason();
        if (reason != null) {
            // memory unmapped under a late access, or the peer closed meanwhile: this thread stops here
            letGo();
            return new ChannelClosedException(reason, e);
        }
        if (e instanceof PeerError) {
            return closeHere("protocol error: " + e.getMessage(), e);
        }
        return closeHere(e instanceof VirtqueueException ? "protocol error: the peer broke a ring rule: "
            + e.getMessage() : "failed: " + e, e);
    }

    @Override
    int maxMessageLength() {
        return maxMessageLength;
    }

    @Override
    int poll(MessageHandler handler, int limit) {
        enter();
        int n = 0;
        boolean inHandler = false;
        try {
            while (n < limit) {
                if (tx.tryPop(txChain) != DeviceQueue.POPPED) {
                    // EMPTY (MISSED cannot happen: the rings are the front end's memory, no IOTLB)
                    break;
                }
                int head = txChain.head();
                inHandler = true;
                try {
                    deliver(txChain, handler);
                } finally {
                    // the buffer goes back also when the handler threw; not once the channel let go of the rings
                    if (state != DETACHED) {
                        tx.addUsed(head, 0);
                    }
                }
                inHandler = false;
                n++;
                if (state != ATTACHED) {
                    // the handler closed the channel, or the connection asked for the rings back
                    break;
                }
            }
            if (n > 0 && state != DETACHED && tx.publishUsed()) {
                txCall.notifyDriver();
            }
            return n;
        } catch (VirtqueueException e) {
            throw failed(e);
        } catch (RuntimeException e) {
            if (inHandler && !(e instanceof PeerError) && closeReason() == null) {
                // the application's handler threw: its message counts as received, the channel stays open
                // (once the channel closed, a failure here is the closed mapping's: reported as the close)
                if (state != DETACHED && tx.publishUsed()) {
                    txCall.notifyDriver();
                }
                throw e;
            }
            throw failed(e);
        } finally {
            exit();
        }
    }

    /** Checks one tx chain and hands its message to the handler, in place when it is one descriptor. */
    private void deliver(DescriptorChain c, MessageHandler handler) {
        if (c.writablePieceCount() > 0) {
            throw new PeerError("tx chain " + c.head() + " has " + c.writablePieceCount() + " device-writable "
                + "descriptors; a message is device-readable only [virtio 5.1.6.2]");
        }
        long readable = c.readableLength();
        if (readable < HEADER) {
            throw new PeerError("tx chain " + c.head() + " holds " + readable + " bytes, less than the " + HEADER
                + "-byte virtio_net_hdr");
        }
        boolean plain;
        if (c.pieceLength(0) >= HEADER) {
            plain = VirtioNetHeader.isPlainTx(c.pieceSegment(0), c.pieceOffset(0));
        } else {
            c.copyFromReadable(0, headerScratch, 0, HEADER);
            plain = VirtioNetHeader.isPlainTx(headerScratch, 0);
        }
        if (!plain) {
            throw new PeerError("tx chain " + c.head() + " asks for checksum or segmentation offload, which the "
                + "channel never offers [virtio 5.1.6.2.1]");
        }
        long length = readable - HEADER;
        if (length > maxMessageLength) {
            throw new PeerError("the peer sent a message of " + length + " bytes; this end's maxMessageLength is "
                + maxMessageLength + " (both ends must use the same)");
        }
        MemorySegment message = reassembly;
        if (length > 0) {
            int p = 0;
            long skip = HEADER;
            while (c.pieceLength(p) <= skip) {
                skip -= c.pieceLength(p);
                p++;
            }
            long rest = c.pieceLength(p) - skip;
            if (rest >= length) {
                message = slices.slice(c.pieceSegment(p), c.pieceOffset(p) + skip, length, maxMessageLength);
            } else {
                c.copyFromReadable(HEADER, reassembly, 0, length);
            }
        }
        handler.onMessage(message, (int) length);
    }

    @Override
    MemorySegment tryClaim(int length) {
        if (length < 0 || length > maxMessageLength) {
            throw new IllegalArgumentException("message length " + length + " is outside 0.." + maxMessageLength
                + " (maxMessageLength of this channel)");
        }
        if (claimedLength < 0) {
            enter();
        }
        if (claimedLength >= 0) {
            // still inside for the open claim
            throw new IllegalStateException("a message of " + claimedLength + " bytes is already claimed; commit or "
                + "abort it first");
        }
        // length <= 65524: no overflow
        long need = HEADER + length;
        try {
            while (heldBytes < need) {
                if (held == maxChains) {
                    throw new PeerError(mergeable
                        ? "the peer's rx buffers (" + held + " held, " + heldBytes + " bytes) cannot hold a message of "
                            + length + " bytes and its header"
                        : "the peer's rx buffer of " + heldBytes + " bytes cannot hold a message of " + length
                            + " bytes and its header, and MRG_RXBUF was not negotiated [virtio 5.1.6.3.1]");
                }
                if (rx.tryPop(rxChain) != DeviceQueue.POPPED) {
                    // back-pressure: the chains held so far stay held for the next claim
                    exit();
                    return null;
                }
                hold(rxChain);
            }
            int k = 0;
            long sum = 0;
            while (sum < need) {
                sum += writable[k++];
            }
            claimChains = k;
            MemorySegment claim;
            if (pieceLength[0] >= need) {
                claimCopies = false;
                claim = slices.slice(pieceSegment[0], pieceOffset[0] + HEADER, length, pieceLength[0] - HEADER);
            } else {
                claimCopies = true;
                claim = staging;
            }
            claimedLength = length;
            // the claim keeps this thread inside until commit or abort: the message is written in the peer's memory
            return claim;
        } catch (VirtqueueException | RuntimeException e) {
            exit();
            throw failed(e);
        }
    }

    /** Keeps a popped rx chain until a message fills it. */
    private void hold(DescriptorChain c) {
        if (c.readablePieceCount() > 0) {
            throw new PeerError("rx chain " + c.head() + " has " + c.readablePieceCount() + " device-readable "
                + "descriptors; an rx buffer is device-writable only [virtio 5.1.6.3]");
        }
        if (c.pieceLength(0) < HEADER) {
            throw new PeerError("rx chain " + c.head() + " begins with a " + c.pieceLength(0) + "-byte descriptor; "
                + "the channel needs the " + HEADER + "-byte virtio_net_hdr in the first");
        }
        int pieces = c.pieceCount();
        if (heldPieces + pieces > pieceSegment.length) {
            // grows to the most pieces the peer's chains have needed, then stays
            int n = Math.max(pieceSegment.length * 2, heldPieces + pieces);
            pieceSegment = Arrays.copyOf(pieceSegment, n);
            pieceOffset = Arrays.copyOf(pieceOffset, n);
            pieceLength = Arrays.copyOf(pieceLength, n);
        }
        for (int p = 0; p < pieces; p++) {
            pieceSegment[heldPieces] = c.pieceSegment(p);
            pieceOffset[heldPieces] = c.pieceOffset(p);
            pieceLength[heldPieces] = c.pieceLength(p);
            heldPieces++;
        }
        heads[held] = c.head();
        writable[held] = c.writableLength();
        pieceEnd[held] = heldPieces;
        // each chain is below 2^32 bytes and at most 1024 are held: no overflow
        heldBytes += c.writableLength();
        held++;
    }

    @Override
    void commit() {
        if (claimedLength < 0) {
            enter();
            exit();
            throw new IllegalStateException("no message is claimed");
        }
        // inside since tryClaim; a close meanwhile was noticed by nobody: look now
        if (state != ATTACHED) {
            claimedLength = -1;
            exit();
            throw new ChannelClosedException(closeReason());
        }
        try {
            if (claimCopies) {
                scatter(claimedLength);
            }
            VirtioNetHeader.write(pieceSegment[0], pieceOffset[0], HEADER, mergeable ? claimChains : 1);
            long left = HEADER + claimedLength;
            for (int i = 0; i < claimChains; i++) {
                long n = Math.min(writable[i], left);
                rx.addUsed(heads[i], n);
                left -= n;
            }
            release(claimChains);
            claimedLength = -1;
            if (++pending >= batch) {
                publishRx();
            }
        } catch (RuntimeException e) {
            throw failed(e);
        } finally {
            exit();
        }
    }

    /** Copies the staged message into the held chains' pieces, after the header. */
    private void scatter(int length) {
        long skip = HEADER;
        long done = 0;
        int end = pieceEnd[claimChains - 1];
        for (int p = 0; p < end && done < length; p++) {
            long len = pieceLength[p];
            if (skip >= len) {
                skip -= len;
                continue;
            }
            long n = Math.min(len - skip, length - done);
            MemorySegment.copy(staging, done, pieceSegment[p], pieceOffset[p] + skip, n);
            done += n;
            skip = 0;
        }
    }

    /** Forgets the first {@code n} held chains (returned as used). */
    private void release(int n) {
        if (n == held) {
            held = 0;
            heldBytes = 0;
            heldPieces = 0;
            return;
        }
        // rare: a merged message left chains held for the next one; keep the rest, in order
        int firstPiece = pieceEnd[n - 1];
        for (int i = 0; i < n; i++) {
            heldBytes -= writable[i];
        }
        int rest = held - n;
        System.arraycopy(heads, n, heads, 0, rest);
        System.arraycopy(writable, n, writable, 0, rest);
        System.arraycopy(pieceEnd, n, pieceEnd, 0, rest);
        for (int i = 0; i < rest; i++) {
            pieceEnd[i] -= firstPiece;
        }
        int restPieces = heldPieces - firstPiece;
        System.arraycopy(pieceSegment, firstPiece, pieceSegment, 0, restPieces);
        System.arraycopy(pieceOffset, firstPiece, pieceOffset, 0, restPieces);
        System.arraycopy(pieceLength, firstPiece, pieceLength, 0, restPieces);
        heldPieces = restPieces;
        held = rest;
    }

    @Override
    void abort() {
        // the chains stay held for the next claim: a popped chain cannot be given back
        if (claimedLength >= 0) {
            claimedLength = -1;
            exit();
        }
    }

    @Override
    int flush() {
        enter();
        try {
            return publishRx();
        } catch (RuntimeException e) {
            throw failed(e);
        } finally {
            exit();
        }
    }

    /** Publishes the committed messages with one index store; interrupts the driver if it asked. */
    private int publishRx() {
        int n = pending;
        if (n == 0) {
            return 0;
        }
        pending = 0;
        if (rx.publishUsed()) {
            rxCall.notifyDriver();
        }
        return n;
    }

    @Override
    boolean awaitMessages(long timeoutNanos) {
        return awaitKick(tx, txKick, timeoutNanos);
    }

    @Override
    boolean awaitSpace(long timeoutNanos) {
        // the driver reposts rx buffers only after it received what they carried: publish first
        return awaitKick(rx, rxKick, timeoutNanos);
    }

    /**
     * Publishes what was committed, then sleeps until the driver kicks {@code queue} or the time
     * is up, unless the queue already has chains: enable notifications, then look again (a chain
     * made available before the enable is seen here; after it, a kick comes).
     */
    private boolean awaitKick(DeviceQueue queue, EventFd kick, long timeoutNanos) {
        enter();
        try {
            publishRx();
            wait.drain(kick.fd());
            if (queue.enableNotifications()) {
                queue.disableNotifications();
                return true;
            }
            // inside while asleep: the kick fd stays ours; a detach wakes this sleep (beginDetach) and
            // waits for it to end here
            boolean fired = wait.await(kick.fd(), timeoutNanos);
            if (state != ATTACHED) {
                String reason = closeReason();
                throw new ChannelClosedException(reason != null ? reason : "closed");
            }
            queue.disableNotifications();
            return fired;
        } catch (VirtqueueException | NativeCallException | RuntimeException e) {
            throw failed(e);
        } finally {
            exit();
        }
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
     * Closes in order: the application's thread lets go of the rings (at once when this is it,
     * else at its next operation), the connection thread ends (the front end sees the socket
     * close), the memory is unmapped and every fd closed.
     */
    @Override
    void close() {
        markClosed("closed by this side");
        Thread t = Thread.currentThread();
        if (appThread == t) {
            // on the application's thread, outside any operation or in a handler (whose poll then stops)
            letGo();
        } else {
            beginDetach();
        }
        wait.wake();
        synchronized (this) {
            if (released) {
                return;
            }
            released = true;
        }
        stop.wakeQuietly();
        Thread connection = connectionThread;
        if (connection != null && connection != t) {
            boolean interrupted = false;
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(CLOSE_TIMEOUT_MILLIS);
            long left;
            while (connection.isAlive() && (left = deadline - System.nanoTime()) > 0) {
                try {
                    connection.join(Duration.ofNanos(left));
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
            if (connection.isAlive()) {
                LOG.log(System.Logger.Level.WARNING, "channel on " + options.socket() + ": the connection thread did "
                    + "not end within " + CLOSE_TIMEOUT_MILLIS + " ms");
                return;
            }
        }
        stop.close();
        try {
            wait.close();
            buffers.close();
        } catch (IllegalStateException e) {
            // a thread is still inside a call that uses them (it let go of the rings, not of the call yet)
            LOG.log(System.Logger.Level.WARNING, "channel on " + options.socket() + ": buffers still in use at close: "
                + e.getMessage());
        }
    }

    @Override
    public String toString() {
        return "serve " + options.socket() + ", queue size " + options.queueSize() + (packed ? ", packed" : ", split");
    }

    /** Something the front end put in a ring that the channel does not accept: closes the channel. */
    private static final class PeerError extends RuntimeException {
        private static final long serialVersionUID = 1L;

        PeerError(String message) {
            super(message, null, false, false);
        }
    }
}

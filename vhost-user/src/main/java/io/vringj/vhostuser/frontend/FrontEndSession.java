package io.vringj.vhostuser.frontend;

import io.vringj.dma.DirectDmaOps;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingSizes;
import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.VhostUserProtocol;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Locale;

/**
 * One connection of a front end to a back end, from negotiation to close: the request channel,
 * the negotiated features, the shared guest memory with each queue's ring laid out in it, and the
 * queues' eventfds. A reconnect makes a new session; closing a session releases every fd and
 * mapping it made.
 *
 * <p>Set-up order: DPDK virtio_user's, except that each vring's call fd goes with that vring's
 * set-up (as QEMU does) and before its kick fd, so no notification of a started vring goes unheard:
 * <pre>
 *   SET_OWNER, GET_FEATURES, [GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, [GET_QUEUE_NUM]],
 *   SET_FEATURES, [SET_STATUS ACKNOWLEDGE|DRIVER|FEATURES_OK], SET_MEM_TABLE
 *   per queue:  SET_VRING_CALL, SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ADDR, SET_VRING_KICK,
 *               [SET_VRING_ENABLE 1]                      then once: [SET_STATUS ... | DRIVER_OK]
 *   stop:       [SET_VRING_ENABLE 0], GET_VRING_BASE      (brackets: only when negotiated)
 * </pre>
 *
 * <p>Not thread-safe: the owning {@link VhostUserFrontEnd} serialises control calls.
 */
final class FrontEndSession implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(FrontEndSession.class.getName());

    /** Vhost-user feature bit 30: the back end speaks protocol features. */
    static final long F_PROTOCOL_FEATURES = VirtioFeatures.bit(VhostUserProtocol.F_PROTOCOL_FEATURES);
    /** A packed ring's state before anything moved: positions 0, both wrap counters 1 (QEMU's encoding). */
    static final int PACKED_INITIAL_VRING_BASE = 0x8000_8000;

    private final FrontEndOptions options;
    private final RequestChannel channel;
    private final Arena arena = Arena.ofShared();
    private final FrontEndQueue[] queues;
    private final RingAddresses[] rings;
    private long offeredFeatures;
    private long features;
    private long protocolFeatures;
    private long queueNum = -1;
    private int usableQueues;
    private SharedMemory memory;
    private DirectDmaOps dma;
    private int status;
    private boolean closed;

    private FrontEndSession(int fd, FrontEndOptions options) {
        this.options = options;
        this.channel = new RequestChannel(fd, (int) options.replyTimeout().toMillis());
        this.queues = new FrontEndQueue[options.queueCount()];
        this.rings = new RingAddresses[options.queueCount()];
    }

    /**
     * Negotiates over a connected socket and shares the guest memory.
     *
     * @param fd the connected socket; the session owns it (closed on failure too)
     * @param options what to ask for
     * @param connection a number for the memfd's name
     * @return the session, ready to start queues
     * @throws ProtocolException if the back end broke the protocol, refused a request or lacks a required feature
     * @throws NativeCallException if a socket or memory call failed
     */
    static FrontEndSession establish(int fd, FrontEndOptions options, int connection)
        throws ProtocolException, NativeCallException {
        FrontEndSession session = new FrontEndSession(fd, options);
        try {
            session.negotiate(connection);
            return session;
        } catch (ProtocolException | NativeCallException | RuntimeException | Error e) {
            session.close(false);
            throw e;
        }
    }

    private void negotiate(int connection) throws ProtocolException, NativeCallException {
        channel.request(VhostUserProtocol.SET_OWNER, 0);
        channel.sendWithoutReply();
        offeredFeatures = channel.getU64(VhostUserProtocol.GET_FEATURES);
        boolean protocol = (offeredFeatures & F_PROTOCOL_FEATURES) != 0;
        boolean multiQueue = options.vringsPerQueueNum() > 0;
        if (protocol) {
            long offeredProtocol = channel.getU64(VhostUserProtocol.GET_PROTOCOL_FEATURES);
            long wantedProtocol = (1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK)
                | (1L << VhostUserProtocol.PROTOCOL_F_STATUS)
                | (1L << VhostUserProtocol.PROTOCOL_F_CONFIG)
                | (multiQueue ? 1L << VhostUserProtocol.PROTOCOL_F_MQ : 0);
            protocolFeatures = offeredProtocol & wantedProtocol;
            channel.request(VhostUserProtocol.SET_PROTOCOL_FEATURES, 8).putU64(0, protocolFeatures);
            // no NEED_REPLY here: REPLY_ACK takes effect only once this request is through
            channel.sendWithoutReply();
            if (hasProtocolFeature(VhostUserProtocol.PROTOCOL_F_REPLY_ACK)) {
                channel.enableReplyAck();
            }
        }
        usableQueues = options.queueCount();
        if (multiQueue) {
            checkQueueNum(protocol);
        }
        features = offeredFeatures & options.wantedFeatures();
        long missing = options.requiredFeatures() & ~features;
        if (missing != 0) {
            throw new ProtocolException(String.format(Locale.ROOT,
                "back end offers features 0x%x; the front end requires 0x%x (missing 0x%x)", offeredFeatures,
                options.requiredFeatures(), missing));
        }
        channel.request(VhostUserProtocol.SET_FEATURES, 8).putU64(0, features | (protocol ? F_PROTOCOL_FEATURES : 0));
        channel.send();
        setStatus(VhostUserProtocol.STATUS_ACKNOWLEDGE | VhostUserProtocol.STATUS_DRIVER
            | VhostUserProtocol.STATUS_FEATURES_OK);
        memory = SharedMemory.create(options.memoryName() + "-" + ProcessHandle.current().pid() + "-" + connection,
            options.guestPhysicalBase(), options.memorySize());
        dma = new DirectDmaOps(memory.memory(), size -> memory.tryAllocate(size, SharedMemory.PAGE));
        layOutRings();
        channel.request(VhostUserProtocol.SET_MEM_TABLE, 8 + 32).putU32(0, 1).putU32(4, 0)
            .putU64(8, memory.guestPhysicalBase()).putU64(16, memory.size()).putU64(24, memory.userAddress())
            .putU64(32, 0);
        channel.send(memory.fd());
        LOG.log(System.Logger.Level.DEBUG, () -> String.format(Locale.ROOT,
            "negotiated features 0x%x (offered 0x%x), protocol features 0x%x; shared %s", features, offeredFeatures,
            protocolFeatures, memory));
    }

    /**
     * MQ was asked for: the back end must offer it and serve as many vrings as configured, or, when
     * multiqueue is optional, the front end uses what the back end serves (at least one unit).
     */
    private void checkQueueNum(boolean protocol) throws ProtocolException, NativeCallException {
        int perUnit = options.vringsPerQueueNum();
        if (!protocol || !hasProtocolFeature(VhostUserProtocol.PROTOCOL_F_MQ)) {
            if (options.multiQueueOptional()) {
                usableQueues = Math.min(options.queueCount(), perUnit);
                LOG.log(System.Logger.Level.INFO, "the back end does not offer multiqueue; using " + usableQueues
                    + " of " + options.queueCount() + " vrings");
                return;
            }
            throw new ProtocolException("multiqueue was asked for (" + options.queueCount() + " vrings) but the back end "
                + (protocol ? "does not offer protocol feature MQ (bit 0)" : "does not speak protocol features (bit 30)"));
        }
        queueNum = channel.getU64(VhostUserProtocol.GET_QUEUE_NUM);
        long units = (options.queueCount() + perUnit - 1) / perUnit;
        if (Long.compareUnsigned(queueNum, units) >= 0) {
            return;
        }
        if (!options.multiQueueOptional() || queueNum == 0) {
            throw new ProtocolException("back end answers GET_QUEUE_NUM with " + Long.toUnsignedString(queueNum)
                + "; the front end needs " + (options.multiQueueOptional() ? "at least 1" : units) + " ("
                + options.queueCount() + " vrings, " + perUnit + " per unit)");
        }
        // queueNum < units <= 256 here: the product fits an int
        usableQueues = (int) queueNum * perUnit;
        LOG.log(System.Logger.Level.INFO, "the back end serves " + queueNum + " queue units; using " + usableQueues
            + " of " + options.queueCount() + " vrings");
    }

    /** {@code GET_CONFIG}, with the CONFIG protocol feature negotiated. */
    byte[] readConfig(int offset, int size) throws ProtocolException, NativeCallException {
        if (!hasProtocolFeature(VhostUserProtocol.PROTOCOL_F_CONFIG)) {
            throw new IllegalStateException("the back end did not offer the CONFIG protocol feature (bit 9); "
                + "its configuration space cannot be read");
        }
        if (offset < 0 || size < 1 || size > VhostUserProtocol.MAX_PAYLOAD - 12 || offset > Integer.MAX_VALUE - size) {
            throw new IllegalArgumentException("configuration read of " + size + " bytes at offset " + offset
                + ": the size is 1.." + (VhostUserProtocol.MAX_PAYLOAD - 12) + " and the offset is not negative");
        }
        return channel.getConfig(offset, size);
    }

    /** @return whether the CONFIG protocol feature was negotiated */
    boolean hasConfig() {
        return hasProtocolFeature(VhostUserProtocol.PROTOCOL_F_CONFIG);
    }

    /** @return how many vrings (from 0) the back end serves of those configured */
    int usableQueueCount() {
        return usableQueues;
    }

    private boolean hasProtocolFeature(int bit) {
        return (protocolFeatures & (1L << bit)) != 0;
    }

    private void setStatus(int value) throws ProtocolException, NativeCallException {
        if (hasProtocolFeature(VhostUserProtocol.PROTOCOL_F_STATUS)) {
            channel.request(VhostUserProtocol.SET_STATUS, 8).putU64(0, value);
            channel.send();
        }
        status = value;
    }

    /** Each queue's three areas, from the start of guest memory, each queue on its own pages. */
    private void layOutRings() {
        RingSizes sizes = RingSizes.of(features, options.queueSize());
        for (int i = 0; i < rings.length; i++) {
            MemorySegment desc = memory.allocate(sizes.descriptorArea(), SharedMemory.PAGE);
            MemorySegment driver = memory.allocate(sizes.driverArea(), 4);
            MemorySegment device = memory.allocate(sizes.deviceArea(), 4);
            rings[i] = new RingAddresses(memory.memory().guestPhysicalAddressOf(desc),
                memory.memory().guestPhysicalAddressOf(driver), memory.memory().guestPhysicalAddressOf(device));
        }
    }

    // ---------------------------------------------------------------- queues

    FrontEndQueue startQueue(int index) throws ProtocolException, NativeCallException {
        checkIndex(index);
        FrontEndQueue q = queues[index];
        if (q == null) {
            q = createQueue(index);
        } else if (q.isRunning()) {
            throw new IllegalStateException("vring " + index + " is already running; stop it first");
        }
        RingAddresses r = rings[index];
        channel.request(VhostUserProtocol.SET_VRING_CALL, 8).putU64(0, index);
        channel.send(q.callFd());
        channel.request(VhostUserProtocol.SET_VRING_NUM, 8).putU32(0, index).putU32(4, options.queueSize());
        channel.send();
        channel.request(VhostUserProtocol.SET_VRING_BASE, 8).putU32(0, index).putU32(4, q.vringBase());
        channel.send();
        // ring addresses are user addresses of the front end [vhost-user: SET_VRING_ADDR]; used before avail
        channel.request(VhostUserProtocol.SET_VRING_ADDR, 40).putU32(0, index).putU32(4, 0)
            .putU64(8, memory.userAddressOf(r.descriptorArea())).putU64(16, memory.userAddressOf(r.deviceArea()))
            .putU64(24, memory.userAddressOf(r.driverArea())).putU64(32, 0);
        channel.send();
        channel.request(VhostUserProtocol.SET_VRING_KICK, 8).putU64(0, index);
        channel.send(q.kickFd());
        if (protocolFeaturesNegotiated()) {
            channel.request(VhostUserProtocol.SET_VRING_ENABLE, 8).putU32(0, index).putU32(4, 1);
            channel.send();
        }
        q.started();
        return q;
    }

    private FrontEndQueue createQueue(int index) throws NativeCallException {
        EventFd kick = EventFd.create();
        EventFd call;
        try {
            call = EventFd.create();
        } catch (NativeCallException e) {
            kick.close();
            throw e;
        }
        boolean packed = VirtioFeatures.has(features, VirtioFeatures.RING_PACKED);
        DriverQueue ring = DriverQueue.create(features, options.queueSize(), memory.memory(), rings[index]);
        FrontEndQueue q = new FrontEndQueue(index, ring, rings[index], kick, call, arena,
            packed ? PACKED_INITIAL_VRING_BASE : 0);
        queues[index] = q;
        return q;
    }

    /** Sends DRIVER_OK (with STATUS negotiated) once every queue was started. */
    void driverOk() throws ProtocolException, NativeCallException {
        if ((status & VhostUserProtocol.STATUS_DRIVER_OK) == 0) {
            setStatus(status | VhostUserProtocol.STATUS_DRIVER_OK);
        }
    }

    int stopQueue(int index) throws ProtocolException, NativeCallException {
        checkIndex(index);
        FrontEndQueue q = queues[index];
        if (q == null || !q.isRunning()) {
            throw new IllegalStateException("vring " + index + " is not running");
        }
        if (protocolFeaturesNegotiated()) {
            channel.request(VhostUserProtocol.SET_VRING_ENABLE, 8).putU32(0, index).putU32(4, 0);
            channel.send();
        }
        int base = channel.getVringBase(index);
        checkVringBase(index, base);
        q.stopped(base);
        return base;
    }

    /** The back end's vring base must be a state this ring can be in. */
    private void checkVringBase(int index, int base) throws ProtocolException {
        int q = options.queueSize();
        if (VirtioFeatures.has(features, VirtioFeatures.RING_PACKED)) {
            if ((base & 0x7FFF) >= q || ((base >>> 16) & 0x7FFF) >= q) {
                throw new ProtocolException(String.format(Locale.ROOT,
                    "GET_VRING_BASE for vring %d answers 0x%x; a packed ring's positions (bits 0-14 and 16-30) "
                        + "must be below the queue size %d", index, base, q));
            }
        } else if ((base & 0xFFFF_0000) != 0) {
            throw new ProtocolException(String.format(Locale.ROOT,
                "GET_VRING_BASE for vring %d answers 0x%x; a split ring's vring base is a 16-bit avail index", index,
                base));
        }
    }

    private boolean protocolFeaturesNegotiated() {
        return (offeredFeatures & F_PROTOCOL_FEATURES) != 0;
    }

    private void checkIndex(int index) {
        if (index < 0 || index >= queues.length) {
            throw new IllegalArgumentException("vring " + index + " is outside 0.." + (queues.length - 1));
        }
    }

    // ---------------------------------------------------------------- accessors

    FrontEndQueue queue(int index) {
        checkIndex(index);
        return queues[index];
    }

    long offeredFeatures() {
        return offeredFeatures;
    }

    long features() {
        return features;
    }

    long protocolFeatures() {
        return protocolFeatures;
    }

    long queueNum() {
        return queueNum;
    }

    SharedMemory memory() {
        return memory;
    }

    DirectDmaOps dma() {
        return dma;
    }

    int socketFd() {
        return channel.fd();
    }

    /**
     * Releases everything: stops running queues first if {@code polite} (the back end then saves
     * their state; a failure there ends the attempt), then closes the socket, the eventfds, and
     * unmaps and closes the guest memory.
     */
    void close(boolean polite) {
        if (closed) {
            return;
        }
        closed = true;
        if (polite) {
            for (FrontEndQueue q : queues) {
                if (q != null && q.isRunning()) {
                    try {
                        stopQueue(q.index());
                    } catch (ProtocolException | NativeCallException | RuntimeException e) {
                        LOG.log(System.Logger.Level.DEBUG, "stopping vring " + q.index() + " on close: "
                            + e.getMessage());
                        break;
                    }
                }
            }
        }
        channel.close();
        for (FrontEndQueue q : queues) {
            if (q != null) {
                q.close();
            }
        }
        if (memory != null) {
            memory.close();
        }
        arena.close();
    }

    @Override
    public void close() {
        close(true);
    }
}

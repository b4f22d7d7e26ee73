package io.vringj.vhostuser.backend;

import io.vringj.device.VirtioDevice;
import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.IotlbAddressSpace;
import io.vringj.dma.IotlbMessage;
import io.vringj.dma.IotlbMessageCodec;
import io.vringj.dma.IotlbMessageProcessor;
import io.vringj.dma.IotlbProtocolException;
import io.vringj.memory.AddressSpace;
import io.vringj.ring.ChainHandler;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingSizes;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.VhostUserChannel;
import io.vringj.vhostuser.VhostUserMessage;
import io.vringj.vhostuser.VhostUserProtocol;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;
import static io.vringj.vhostuser.VhostUserProtocol.FLAG_REPLY;

/**
 * One front-end connection: reads requests, keeps the device state they build (features, memory
 * table, vrings) and starts a {@link QueueWorker} per vring once it has a kick fd.
 *
 * <p>Runs on one thread ({@link #serve(EventFd)}), which never waits on the back-end channel. A
 * request the protocol does not allow is a {@link ProtocolException}: {@code serve} logs it and
 * returns, and {@link #close()} releases everything (workers stopped first, then memory unmapped,
 * then fds closed).
 *
 * <p>State per vring (front-end requests in brackets):
 * <pre>
 *   num [SET_VRING_NUM]  addr [SET_VRING_ADDR]  base [SET_VRING_BASE]  enabled [SET_VRING_ENABLE]
 *   kick [SET_VRING_KICK] starts the worker     call [SET_VRING_CALL] may change while it runs
 *   [GET_VRING_BASE] stops the worker and replies with its last avail index
 * </pre>
 */
public final class VhostUserConnection implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserConnection.class.getName());

    /** Protocol features this back end speaks. */
    static final long PROTOCOL_FEATURES = (1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK)
        | (1L << VhostUserProtocol.PROTOCOL_F_BACKEND_REQ);

    private final VirtioDevice device;
    private final VhostUserChannel channel;
    private final VhostUserStatistics statistics;
    private final BackendOptions options;
    private final Arena arena = Arena.ofConfined();
    private final VhostUserMessage msg = new VhostUserMessage(arena);
    private final VhostUserMessage reply = new VhostUserMessage(arena);
    private final Vring[] vrings;
    private final long offeredFeatures;
    private final EventFd failureWake;
    private final AtomicReference<String> failure = new AtomicReference<>();

    private boolean featuresSet;
    private long features;
    private long protocolFeatures;
    private boolean owned;
    private MemoryTable memoryTable;
    /** Read by queue workers through the IOTLB's message sink; written by the connection thread. */
    private volatile BackendChannel backendChannel;
    /** With ACCESS_PLATFORM: the device IOTLB, its downstream (user addresses) and its message processor. */
    private final FrontEndMemory frontEndMemory = new FrontEndMemory();
    private DeviceIotlb iotlb;
    private IotlbMessageProcessor iotlbProcessor;

    /** Per-vring state, owned by the connection thread. */
    private static final class Vring {
        final int index;
        int num;
        boolean addrSet;
        long descUser;
        long usedUser;
        long availUser;
        int base;
        boolean enabled;
        EventFd kick;
        final CallNotifier call;
        EventFd err;
        QueueWorker worker;
        /** Made when the vring first starts and kept across restarts, so a device's state carries on. */
        ChainHandler handler;

        Vring(int index, VhostUserStatistics statistics) {
            this.index = index;
            this.call = new CallNotifier(statistics.callsDropped);
        }
    }

    /**
     * @param device the device served
     * @param channel the accepted connection; this object closes it
     * @param statistics counters shared across connections
     * @throws NativeCallException if the failure eventfd cannot be created
     */
    public VhostUserConnection(VirtioDevice device, VhostUserChannel channel, VhostUserStatistics statistics)
        throws NativeCallException {
        this(device, channel, statistics, BackendOptions.defaults());
    }

    /**
     * @param device the device served
     * @param channel the accepted connection; this object closes it
     * @param statistics counters shared across connections
     * @param options what the back end accepts from a front end (e.g. unsealed memory)
     * @throws NativeCallException if the failure eventfd cannot be created
     */
    public VhostUserConnection(VirtioDevice device, VhostUserChannel channel, VhostUserStatistics statistics,
                               BackendOptions options) throws NativeCallException {
        this.options = Objects.requireNonNull(options, "options");
        this.device = Objects.requireNonNull(device, "device");
        this.channel = Objects.requireNonNull(channel, "channel");
        this.statistics = Objects.requireNonNull(statistics, "statistics");
        this.offeredFeatures = device.offeredFeatures() | VirtioFeatures.bit(VhostUserProtocol.F_PROTOCOL_FEATURES);
        this.vrings = new Vring[device.queueCount()];
        for (int i = 0; i < vrings.length; i++) {
            vrings[i] = new Vring(i, statistics);
        }
        this.failureWake = EventFd.create();
    }

    /**
     * Serves requests until the front end disconnects, sends something the protocol does not
     * allow, a queue fails, or {@code stop} is signalled.
     *
     * @param stop an eventfd the server signals to end every connection
     * @return why the connection ended, for the log
     */
    public String serve(EventFd stop) {
        try (Arena pollArena = Arena.ofConfined()) {
            MemorySegment pollfds = pollArena.allocate(Libc.POLLFD_SIZE * 3, 8);
            int[] fds = {channel.fd(), failureWake.fd(), stop.fd()};
            for (int i = 0; i < fds.length; i++) {
                pollfds.set(ValueLayout.JAVA_INT, i * Libc.POLLFD_SIZE, fds[i]);
                pollfds.set(ValueLayout.JAVA_SHORT, i * Libc.POLLFD_SIZE + 4, Libc.POLLIN);
            }
            while (true) {
                for (int i = 0; i < fds.length; i++) {
                    pollfds.set(ValueLayout.JAVA_SHORT, i * Libc.POLLFD_SIZE + 6, (short) 0);
                }
                Libc.poll(pollfds, fds.length, -1);
                if (pollfds.get(ValueLayout.JAVA_SHORT, 2 * Libc.POLLFD_SIZE + 6) != 0) {
                    return "back end shutting down";
                }
                String failed = failure.get();
                if (failed != null) {
                    return "closing connection: " + failed;
                }
                if (pollfds.get(ValueLayout.JAVA_SHORT, 6) != 0) {
                    if (!channel.read(msg)) {
                        return "front end disconnected";
                    }
                    statistics.messages.increment();
                    handle(msg);
                    msg.closeFds();
                }
            }
        } catch (ProtocolException e) {
            statistics.protocolErrors.increment();
            return "closing connection: " + e.getMessage();
        } catch (NativeCallException e) {
            return "closing connection: " + e.getMessage();
        } catch (Throwable e) {
            // anything else a front end provoked (a fault in its memory surfaces as an InternalError)
            // ends this connection only, never the process
            return "closing connection: unexpected " + e;
        } finally {
            msg.closeFds();
        }
    }

    /** Called by a worker thread when its queue fails; the connection thread closes. */
    private void queueFailed(String reason) {
        if (failure.compareAndSet(null, reason)) {
            statistics.queueErrors.increment();
            failureWake.wakeQuietly();
        }
    }

    // ---------------------------------------------------------------- requests

    private void handle(VhostUserMessage m) throws ProtocolException, NativeCallException {
        int request = m.request();
        if ((m.flags() & FLAG_REPLY) != 0) {
            throw new ProtocolException(VhostUserProtocol.requestName(request) + " has the REPLY flag; the front end "
                + "sends requests, not replies");
        }
        if (LOG.isLoggable(System.Logger.Level.DEBUG)) {
            LOG.log(System.Logger.Level.DEBUG, "request " + m);
        }
        switch (request) {
            case VhostUserProtocol.GET_FEATURES -> {
                expect(m, 0, 0);
                replyU64(m, offeredFeatures);
                return;
            }
            case VhostUserProtocol.SET_FEATURES -> setFeatures(m);
            case VhostUserProtocol.SET_OWNER -> {
                expect(m, 0, 0);
                owned = true;
            }
            case VhostUserProtocol.RESET_OWNER -> {
                expect(m, 0, 0);
                resetDevice();
            }
            case VhostUserProtocol.SET_MEM_TABLE -> setMemTable(m);
            case VhostUserProtocol.SET_VRING_NUM -> setVringNum(m);
            case VhostUserProtocol.SET_VRING_ADDR -> setVringAddr(m);
            case VhostUserProtocol.SET_VRING_BASE -> setVringBase(m);
            case VhostUserProtocol.GET_VRING_BASE -> {
                getVringBase(m);
                return;
            }
            case VhostUserProtocol.SET_VRING_KICK -> setVringKick(m);
            case VhostUserProtocol.SET_VRING_CALL -> setVringCall(m);
            case VhostUserProtocol.SET_VRING_ERR -> setVringErr(m);
            case VhostUserProtocol.GET_PROTOCOL_FEATURES -> {
                expect(m, 0, 0);
                replyU64(m, PROTOCOL_FEATURES);
                return;
            }
            case VhostUserProtocol.SET_PROTOCOL_FEATURES -> setProtocolFeatures(m);
            case VhostUserProtocol.GET_QUEUE_NUM -> {
                expect(m, 0, 0);
                replyU64(m, vrings.length);
                return;
            }
            case VhostUserProtocol.SET_VRING_ENABLE -> setVringEnable(m);
            case VhostUserProtocol.SET_BACKEND_REQ_FD -> setBackendReqFd(m);
            case VhostUserProtocol.IOTLB_MSG -> iotlbMessage(m);
            default -> throw new ProtocolException(VhostUserProtocol.requestName(request)
                + " is not a request this back end (" + device.name() + ") accepts");
        }
        if (m.needsReply() && hasProtocolFeature(VhostUserProtocol.PROTOCOL_F_REPLY_ACK)) {
            replyU64(m, 0);
        }
    }

    private boolean hasProtocolFeature(int bit) {
        return (protocolFeatures & (1L << bit)) != 0;
    }

    private static void expect(VhostUserMessage m, int size, int fds) throws ProtocolException {
        if (m.size() != size) {
            throw new ProtocolException(VhostUserProtocol.requestName(m.request()) + " has a " + m.size()
                + "-byte payload; it must be " + size + " bytes");
        }
        if (m.receivedFdCount() != fds) {
            throw new ProtocolException(VhostUserProtocol.requestName(m.request()) + " came with "
                + m.receivedFdCount() + " fds; it takes " + fds);
        }
    }

    private void replyU64(VhostUserMessage request, long value) throws NativeCallException {
        reply.header(request.request(), FLAG_REPLY, 8).putU64(0, value);
        channel.write(reply);
    }

    private Vring vring(VhostUserMessage m, long index) throws ProtocolException {
        if (index < 0 || index >= vrings.length) {
            throw new ProtocolException(VhostUserProtocol.requestName(m.request()) + " names vring " + index + "; "
                + device.name() + " has " + vrings.length + " (0.." + (vrings.length - 1) + ")");
        }
        return vrings[(int) index];
    }

    private void setFeatures(VhostUserMessage m) throws ProtocolException, NativeCallException {
        expect(m, 8, 0);
        long requested = m.u64(0);
        if (VirtioFeatures.has(requested, VirtioFeatures.RING_PACKED) && !VirtioFeatures.has(offeredFeatures,
            VirtioFeatures.RING_PACKED)) {
            throw new ProtocolException("SET_FEATURES 0x" + Long.toHexString(requested)
                + " sets RING_PACKED, which was not offered (this device serves the split ring only)");
        }
        long unknown = requested & ~offeredFeatures;
        if (unknown != 0) {
            // QEMU passes on what the guest acked; bits we never offered have no effect on this device
            LOG.log(System.Logger.Level.INFO, String.format(Locale.ROOT,
                "SET_FEATURES 0x%x: ignoring bits 0x%x that were not offered", requested, unknown));
        }
        for (Vring v : vrings) {
            if (v.worker != null) {
                throw new ProtocolException("SET_FEATURES while vring " + v.index + " is running; features are set "
                    + "before the rings start");
            }
        }
        features = requested & offeredFeatures;
        featuresSet = true;
        LOG.log(System.Logger.Level.INFO, String.format(Locale.ROOT,
            "negotiated features 0x%x (EVENT_IDX %b, INDIRECT_DESC %b, ACCESS_PLATFORM %b, RING_PACKED %b)", features,
            VirtioFeatures.has(features, VirtioFeatures.EVENT_IDX),
            VirtioFeatures.has(features, VirtioFeatures.INDIRECT_DESC),
            VirtioFeatures.has(features, VirtioFeatures.ACCESS_PLATFORM),
            VirtioFeatures.has(features, VirtioFeatures.RING_PACKED)));
    }

    private void setProtocolFeatures(VhostUserMessage m) throws ProtocolException {
        expect(m, 8, 0);
        long requested = m.u64(0);
        if ((requested & ~PROTOCOL_FEATURES) != 0) {
            throw new ProtocolException(String.format(Locale.ROOT,
                "SET_PROTOCOL_FEATURES 0x%x sets bits 0x%x that were not offered (offered 0x%x)", requested,
                requested & ~PROTOCOL_FEATURES, PROTOCOL_FEATURES));
        }
        protocolFeatures = requested;
    }

    private void setMemTable(VhostUserMessage m) throws ProtocolException, NativeCallException {
        MemoryTable table = MemoryTable.map(m, options.allowUnsealedMemory());
        // stop the workers before the old mappings go away; they restart over the new table
        int[] restart = stopWorkers();
        MemoryTable old = memoryTable;
        memoryTable = table;
        frontEndMemory.setTable(table);
        if (old != null) {
            old.close();
        }
        LOG.log(System.Logger.Level.INFO, "memory table " + table);
        for (int i = 0; i < restart.length; i++) {
            if (restart[i] != 0) {
                startWorker(vrings[i]);
            }
        }
    }

    /** Stops every running worker, keeping its position; returns 1 for each vring that was running. */
    private int[] stopWorkers() throws ProtocolException {
        int[] running = new int[vrings.length];
        ProtocolException stuck = null;
        for (Vring v : vrings) {
            if (v.worker != null) {
                running[v.index] = 1;
                try {
                    stopWorker(v);
                } catch (ProtocolException e) {
                    stuck = e;
                }
            }
        }
        if (stuck != null) {
            throw stuck;
        }
        return running;
    }

    /** Stops the vring's worker if it runs, keeping its position. */
    private void stopWorker(Vring v) throws ProtocolException {
        if (v.worker == null) {
            return;
        }
        long base = v.worker.stop();
        collect(v.worker);
        v.worker = null;
        if (base == QueueWorker.NOT_STOPPED) {
            throw new ProtocolException("vring " + v.index + " worker did not stop within "
                + QueueWorker.STOP_TIMEOUT_MILLIS + " ms");
        }
        v.base = (int) base;
    }

    private void collect(QueueWorker worker) {
        statistics.chains.add(worker.chainsCompleted());
        statistics.bytes.add(worker.bytesWritten());
    }

    private void setVringNum(VhostUserMessage m) throws ProtocolException {
        expect(m, 8, 0);
        Vring v = vring(m, Integer.toUnsignedLong(m.u32(0)));
        int num = m.u32(4);
        boolean packed = VirtioFeatures.has(features, VirtioFeatures.RING_PACKED);
        if (num < 1 || num > device.maxQueueSize() || (!packed && Integer.bitCount(num) != 1)) {
            throw new ProtocolException("SET_VRING_NUM " + Integer.toUnsignedString(num) + " for vring " + v.index
                + (packed ? ": a packed ring's size is 1.." + device.maxQueueSize()
                    : ": a split ring's size is a power of two in 1.." + device.maxQueueSize()));
        }
        requireStopped(m, v);
        v.num = num;
    }

    private void requireStopped(VhostUserMessage m, Vring v) throws ProtocolException {
        if (v.worker != null) {
            throw new ProtocolException(VhostUserProtocol.requestName(m.request()) + " for vring " + v.index
                + " while it runs; stop it with GET_VRING_BASE first");
        }
    }

    private void setVringAddr(VhostUserMessage m) throws ProtocolException {
        expect(m, 40, 0);
        Vring v = vring(m, Integer.toUnsignedLong(m.u32(0)));
        int flags = m.u32(4);
        if ((flags & VhostUserProtocol.VRING_F_LOG) != 0) {
            throw new ProtocolException("SET_VRING_ADDR for vring " + v.index + " asks for used-ring logging, "
                + "but LOG_ALL was not offered");
        }
        requireStopped(m, v);
        v.descUser = m.u64(8);
        v.usedUser = m.u64(16);
        v.availUser = m.u64(24);
        v.addrSet = true;
    }

    private void setVringBase(VhostUserMessage m) throws ProtocolException {
        expect(m, 8, 0);
        Vring v = vring(m, Integer.toUnsignedLong(m.u32(0)));
        int base = m.u32(4);
        // a packed ring's base is 32 bits: avail position and wrap counter, then used (checked at start)
        if (!VirtioFeatures.has(features, VirtioFeatures.RING_PACKED) && (base < 0 || base > 0xFFFF)) {
            throw new ProtocolException("SET_VRING_BASE " + Integer.toUnsignedString(base) + " for vring " + v.index
                + ": a split ring's avail index is 0..65535");
        }
        requireStopped(m, v);
        v.base = base;
    }

    private void getVringBase(VhostUserMessage m) throws ProtocolException, NativeCallException {
        expect(m, 8, 0);
        Vring v = vring(m, Integer.toUnsignedLong(m.u32(0)));
        stopWorker(v);
        if (v.kick != null) {
            v.kick.close();
            v.kick = null;
        }
        reply.header(m.request(), FLAG_REPLY, 8).putU32(0, v.index).putU32(4, v.base);
        channel.write(reply);
        LOG.log(System.Logger.Level.INFO, "vring " + v.index + " stopped at vring base 0x" + Integer.toHexString(v.base));
    }

    /** Reads the u64 of KICK/CALL/ERR: the vring and, unless the no-fd bit is set, takes the fd. */
    private EventFd takeVringFd(VhostUserMessage m, Vring[] which) throws ProtocolException, NativeCallException {
        if (m.size() != 8) {
            throw new ProtocolException(VhostUserProtocol.requestName(m.request()) + " has a " + m.size()
                + "-byte payload; it must be 8 bytes");
        }
        long value = m.u64(0);
        if ((value & ~(VhostUserProtocol.VRING_IDX_MASK | VhostUserProtocol.VRING_NOFD_MASK)) != 0) {
            throw new ProtocolException(String.format(Locale.ROOT,
                "%s payload 0x%x sets bits other than the vring index (0-7) and no-fd (8)",
                VhostUserProtocol.requestName(m.request()), value));
        }
        which[0] = vring(m, value & VhostUserProtocol.VRING_IDX_MASK);
        boolean noFd = (value & VhostUserProtocol.VRING_NOFD_MASK) != 0;
        int expectedFds = noFd ? 0 : 1;
        if (m.receivedFdCount() != expectedFds) {
            throw new ProtocolException(VhostUserProtocol.requestName(m.request()) + " for vring " + which[0].index
                + " came with " + m.receivedFdCount() + " fds; it takes " + expectedFds
                + (noFd ? " (the no-fd bit is set)" : " (the no-fd bit is clear)"));
        }
        // non-blocking: a call fd at its maximum count drops a signal instead of blocking a worker
        return noFd ? null : EventFd.adoptNonBlocking(m.takeFd(0));
    }

    private void setVringKick(VhostUserMessage m) throws ProtocolException, NativeCallException {
        Vring[] which = new Vring[1];
        EventFd fd = takeVringFd(m, which);
        Vring v = which[0];
        stopWorker(v);
        if (v.kick != null) {
            v.kick.close();
        }
        v.kick = fd;
        startWorker(v);
    }

    private void setVringCall(VhostUserMessage m) throws ProtocolException, NativeCallException {
        Vring[] which = new Vring[1];
        EventFd fd = takeVringFd(m, which);
        which[0].call.replace(fd);
    }

    private void setVringErr(VhostUserMessage m) throws ProtocolException, NativeCallException {
        Vring[] which = new Vring[1];
        EventFd fd = takeVringFd(m, which);
        Vring v = which[0];
        if (v.err != null) {
            v.err.close();
        }
        v.err = fd;
    }

    private void setVringEnable(VhostUserMessage m) throws ProtocolException {
        expect(m, 8, 0);
        Vring v = vring(m, Integer.toUnsignedLong(m.u32(0)));
        int on = m.u32(4);
        if (on != 0 && on != 1) {
            throw new ProtocolException("SET_VRING_ENABLE " + Integer.toUnsignedString(on) + " for vring " + v.index
                + ": the value is 0 (disable) or 1 (enable)");
        }
        if (!VirtioFeatures.has(features, VhostUserProtocol.F_PROTOCOL_FEATURES) && featuresSet) {
            throw new ProtocolException("SET_VRING_ENABLE without VHOST_USER_F_PROTOCOL_FEATURES negotiated");
        }
        v.enabled = on == 1;
        if (v.worker != null) {
            v.worker.setEnabled(v.enabled);
        }
    }

    private void setBackendReqFd(VhostUserMessage m) throws ProtocolException, NativeCallException {
        expect(m, 0, 1);
        if (!hasProtocolFeature(VhostUserProtocol.PROTOCOL_F_BACKEND_REQ)) {
            throw new ProtocolException("SET_BACKEND_REQ_FD without the BACKEND_REQ protocol feature negotiated");
        }
        if (backendChannel != null) {
            backendChannel.close();
        }
        backendChannel = new BackendChannel(new VhostUserChannel(m.takeFd(0)), statistics);
    }

    /** Whether the rings go through a device IOTLB: ACCESS_PLATFORM negotiated. */
    private boolean behindIommu() {
        return VirtioFeatures.has(features, VirtioFeatures.ACCESS_PLATFORM);
    }

    private void iotlbMessage(VhostUserMessage m) throws ProtocolException {
        expect(m, IotlbMessageCodec.STRUCT_SIZE, 0);
        boolean mayNegotiate = !featuresSet && VirtioFeatures.has(offeredFeatures, VirtioFeatures.ACCESS_PLATFORM);
        if (!behindIommu() && !mayNegotiate) {
            throw new ProtocolException("IOTLB_MSG but ACCESS_PLATFORM was not negotiated (features 0x"
                + Long.toHexString(features) + "); the front end has no IOMMU to speak of");
        }
        statistics.iotlbMessages.increment();
        // QEMU 7.2 leaves perm and uaddr of an INVALIDATE uninitialised; the codec ignores them there
        IotlbMessage message;
        try {
            message = IotlbMessageCodec.decode(m.payload(), 0, m.size());
            iotlb().process(message);
        } catch (IotlbProtocolException e) {
            throw new ProtocolException("IOTLB_MSG refused: " + e.getMessage(), e);
        }
        if (LOG.isLoggable(System.Logger.Level.DEBUG)) {
            LOG.log(System.Logger.Level.DEBUG, "IOTLB " + message);
        }
        switch (message.type()) {
            case UPDATE, BATCH_END -> {
                if (message.type() == IotlbMessage.Type.UPDATE) {
                    statistics.iotlbUpdates.increment();
                }
                // workers parked on a miss try again; one that still misses sleeps again
                for (Vring v : vrings) {
                    if (v.worker != null) {
                        v.worker.wakeUp();
                    }
                }
            }
            case INVALIDATE -> statistics.iotlbInvalidations.increment();
            default -> {
                // BATCH_BEGIN: nothing applied yet
            }
        }
    }

    /** The IOTLB message processor, made on first use; misses go out over the back-end channel. */
    private IotlbMessageProcessor iotlb() {
        if (iotlbProcessor == null) {
            iotlb = new DeviceIotlb(frontEndMemory);
            iotlb.setMessageSink(this::sendToFrontEnd);
            iotlbProcessor = new IotlbMessageProcessor(iotlb);
        }
        return iotlbProcessor;
    }

    /** The IOTLB's message sink, called on queue workers: queue the message, never wait. */
    private void sendToFrontEnd(IotlbMessage message) {
        BackendChannel channel = backendChannel;
        if (channel == null) {
            queueFailed("IOTLB " + message + " but the front end gave no back-end channel (SET_BACKEND_REQ_FD)");
        } else if (!channel.send(message)) {
            LOG.log(System.Logger.Level.WARNING, "back-end channel full; dropped " + message);
        }
    }

    /** Builds the device queue over the memory table (or the IOTLB) and starts its worker. */
    private void startWorker(Vring v) throws ProtocolException, NativeCallException {
        if (memoryTable == null) {
            throw new ProtocolException("SET_VRING_KICK for vring " + v.index + " before SET_MEM_TABLE");
        }
        if (v.num == 0 || !v.addrSet) {
            throw new ProtocolException("SET_VRING_KICK for vring " + v.index + " before its "
                + (v.num == 0 ? "SET_VRING_NUM" : "SET_VRING_ADDR"));
        }
        String shrunk = memoryTable.shrunkRegion();
        if (shrunk != null) {
            throw new ProtocolException("vring " + v.index + " cannot start: " + shrunk);
        }
        long queueFeatures = features;
        int queueSize = v.num;
        RingSizes sizes = ringSizes(v, queueFeatures);
        int base = v.base;
        AddressSpace space;
        RingAddresses addresses;
        DeviceIotlb queueIotlb = null;
        if (behindIommu()) {
            if (!hasProtocolFeature(VhostUserProtocol.PROTOCOL_F_BACKEND_REQ) || backendChannel == null) {
                throw new ProtocolException("vring " + v.index + ": ACCESS_PLATFORM needs the back-end channel "
                    + "(BACKEND_REQ and SET_BACKEND_REQ_FD) for IOTLB misses");
            }
            // ring addresses are IOVAs, resolved through the IOTLB like descriptor addresses
            iotlb();
            queueIotlb = iotlb;
            space = new IotlbAddressSpace(iotlb);
            addresses = new RingAddresses(v.descUser, v.availUser, v.usedUser);
        } else {
            // ring addresses are the front end's user addresses; ring-core works in guest-physical
            space = AddressSpace.identity(memoryTable.memory());
            addresses = new RingAddresses(
                guestPhysical(v, "descriptor area", v.descUser, sizes.descriptorArea()),
                guestPhysical(v, "driver area", v.availUser, sizes.driverArea()),
                guestPhysical(v, "device area", v.usedUser, sizes.deviceArea()));
            try {
                // activate here so a bad ring closes the connection at once, with its reason
                DeviceQueue.create(queueFeatures, queueSize, addresses, space, base);
            } catch (VirtqueueException | IllegalArgumentException e) {
                throw new ProtocolException("vring " + v.index + " cannot start: " + e.getMessage(), e);
            }
        }
        boolean enabled = v.enabled || !VirtioFeatures.has(features, VhostUserProtocol.F_PROTOCOL_FEATURES);
        if (v.handler == null) {
            v.handler = device.handler(v.index, features);
        }
        AddressSpace queueSpace = space;
        QueueWorker worker = new QueueWorker(v.index,
            () -> DeviceQueue.create(queueFeatures, queueSize, addresses, queueSpace, base), base, queueIotlb,
            v.kick, v.call, v.handler, enabled, this::queueFailed, memoryTable,
            statistics.workerWakeups);
        v.worker = worker;
        worker.start();
        LOG.log(System.Logger.Level.INFO, "vring " + v.index + " started: size " + v.num + ", " + addresses
            + (queueIotlb != null ? " (IOVAs, through the device IOTLB)" : "") + ", vring base 0x"
            + Integer.toHexString(v.base)
            + (enabled ? "" : " (disabled until SET_VRING_ENABLE)"));
    }

    /** The ring's area sizes for the negotiated layout; a size the layout does not allow is the front end's error. */
    private static RingSizes ringSizes(Vring v, long features) throws ProtocolException {
        try {
            return RingSizes.of(features, v.num);
        } catch (IllegalArgumentException e) {
            throw new ProtocolException("vring " + v.index + " cannot start: " + e.getMessage(), e);
        }
    }

    private long guestPhysical(Vring v, String what, long userAddress, long size) throws ProtocolException {
        long gpa = memoryTable.userToGuestPhysical(userAddress, size);
        if (gpa == -1) {
            throw new ProtocolException(String.format(Locale.ROOT,
                "vring %d %s at user address 0x%x (%d bytes) is outside the memory table %s", v.index, what,
                userAddress, size, memoryTable));
        }
        return gpa;
    }

    private void resetDevice() throws ProtocolException {
        stopWorkers();
        for (Vring v : vrings) {
            v.num = 0;
            v.addrSet = false;
            v.base = 0;
            v.enabled = false;
            v.handler = null;
            if (v.kick != null) {
                v.kick.close();
                v.kick = null;
            }
        }
        featuresSet = false;
        features = 0;
    }

    /** Stops the workers, unmaps the memory table and closes every fd of the connection. */
    @Override
    public void close() {
        try {
            stopWorkers();
        } catch (ProtocolException e) {
            // logged by the worker; the memory is unmapped anyway, so a late access fails with an exception
        }
        for (Vring v : vrings) {
            if (v.kick != null) {
                v.kick.close();
            }
            if (v.err != null) {
                v.err.close();
            }
            v.call.close();
        }
        if (memoryTable != null) {
            memoryTable.close();
            memoryTable = null;
        }
        if (backendChannel != null) {
            backendChannel.close();
        }
        failureWake.close();
        channel.close();
        arena.close();
        if (!owned) {
            LOG.log(System.Logger.Level.DEBUG, "connection closed before SET_OWNER");
        }
    }
}

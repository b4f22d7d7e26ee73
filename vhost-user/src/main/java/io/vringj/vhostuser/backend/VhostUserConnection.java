package io.vringj.vhostuser.backend;

import io.vringj.device.QueuePairDevice;
import io.vringj.device.VirtioDevice;
import io.vringj.dma.IotlbMessage;
import io.vringj.dma.IotlbMessageCodec;
import io.vringj.ring.VirtioFeatures;
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
import static io.vringj.vhostuser.backend.Requests.expect;

/**
 * One front-end connection: reads requests and dispatches each to its handler. The device-wide
 * state (features, protocol features, the memory table) lives here; the vrings and their
 * workers are {@link Vrings}', the device IOTLB and the back-end channel {@link IotlbSide}'s.
 *
 * <pre>
 *   serve(): poll(socket, failure, stop) -> read -> handle(request) -> reply
 *       features, owner, memory table ........ here
 *       SET_VRING_* / GET_VRING_BASE .......... Vrings (state, workers)
 *       IOTLB_MSG / SET_BACKEND_REQ_FD ........ IotlbSide
 * </pre>
 *
 * <p>Runs on one thread ({@link #serve(EventFd)}), which never waits on the back-end channel. A
 * request the protocol does not allow is a {@link ProtocolException}: {@code serve} logs it and
 * returns, and {@link #close()} releases everything (workers stopped first, then memory unmapped,
 * then fds closed).
 */
public final class VhostUserConnection implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserConnection.class.getName());

    /**
     * Protocol features offered for every device; MQ is added for several queues (pairs), CONFIG
     * for a device with a configuration space.
     */
    static final long PROTOCOL_FEATURES = (1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK)
        | (1L << VhostUserProtocol.PROTOCOL_F_BACKEND_REQ);

    /** GET_CONFIG's header before the bytes: offset, size, flags. */
    private static final int CONFIG_HEADER = 12;

    private final VirtioDevice device;
    private final VhostUserChannel channel;
    private final VhostUserStatistics statistics;
    private final BackendOptions options;
    private final Arena arena = Arena.ofConfined();
    private final VhostUserMessage msg = new VhostUserMessage(arena);
    private final VhostUserMessage reply = new VhostUserMessage(arena);
    private final long offeredFeatures;
    private final long offeredProtocolFeatures;
    private final long queueNum;
    private final byte[] config;
    private final EventFd failureWake;
    private final AtomicReference<String> failure = new AtomicReference<>();
    private final Vrings vrings;
    private final IotlbSide iotlbSide;

    private boolean featuresSet;
    private long features;
    private long protocolFeatures;
    private boolean owned;
    private MemoryTable memoryTable;

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
        this(device, channel, statistics, options, null);
    }

    /**
     * A connection whose queue pairs are worked by the owner's thread instead of pair workers
     * (see {@link PairOwner} for who owns what, on which thread).
     *
     * @param device the device served, a queue-pair device when {@code owner} is given
     * @param channel the accepted connection; this object closes it
     * @param statistics counters shared across connections
     * @param options what the back end accepts from a front end (e.g. unsealed memory)
     * @param owner takes each ready pair's queues, or {@code null} for pair workers
     * @throws IllegalArgumentException if {@code owner} is given for a device that is not a queue-pair device
     * @throws NativeCallException if the failure eventfd cannot be created
     */
    public VhostUserConnection(VirtioDevice device, VhostUserChannel channel, VhostUserStatistics statistics,
                               BackendOptions options, PairOwner owner) throws NativeCallException {
        this.options = Objects.requireNonNull(options, "options");
        this.device = Objects.requireNonNull(device, "device");
        this.channel = Objects.requireNonNull(channel, "channel");
        this.statistics = Objects.requireNonNull(statistics, "statistics");
        this.offeredFeatures = device.offeredFeatures() | VirtioFeatures.bit(VhostUserProtocol.F_PROTOCOL_FEATURES);
        this.queueNum = queueNum(device);
        this.config = device.config();
        this.offeredProtocolFeatures = PROTOCOL_FEATURES | (queueNum > 1 ? 1L << VhostUserProtocol.PROTOCOL_F_MQ : 0)
            | (config.length > 0 ? 1L << VhostUserProtocol.PROTOCOL_F_CONFIG : 0);
        this.vrings = new Vrings(device, statistics, this::queueFailed, owner, options.busyPollMicros());
        this.iotlbSide = new IotlbSide(statistics, this::queueFailed);
        this.failureWake = EventFd.create();
    }

    /**
     * What {@code GET_QUEUE_NUM} answers: for a device of queue pairs (net) the number of pairs,
     * as QEMU's vhost-user net and DPDK's back end count them; otherwise the number of queues.
     *
     * @param device the device served
     * @return the back end's queue count in that unit
     */
    static int queueNum(VirtioDevice device) {
        return device instanceof QueuePairDevice ? device.queueCount() / 2 : device.queueCount();
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

    // ---------------------------------------------------------------- dispatch

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
                vrings.reset();
                featuresSet = false;
                features = 0;
            }
            case VhostUserProtocol.SET_MEM_TABLE -> setMemTable(m);
            case VhostUserProtocol.SET_VRING_NUM -> vrings.setNum(m, features);
            case VhostUserProtocol.SET_VRING_ADDR -> vrings.setAddr(m);
            case VhostUserProtocol.SET_VRING_BASE -> vrings.setBase(m, features);
            case VhostUserProtocol.GET_VRING_BASE -> {
                int[] state = vrings.getBase(m);
                reply.header(m.request(), FLAG_REPLY, 8).putU32(0, state[0]).putU32(4, state[1]);
                channel.write(reply);
                return;
            }
            case VhostUserProtocol.SET_VRING_KICK -> vrings.setKick(m, ringSetup());
            case VhostUserProtocol.SET_VRING_CALL -> vrings.setCall(m);
            case VhostUserProtocol.SET_VRING_ERR -> vrings.setErr(m);
            case VhostUserProtocol.GET_PROTOCOL_FEATURES -> {
                expect(m, 0, 0);
                replyU64(m, offeredProtocolFeatures);
                return;
            }
            case VhostUserProtocol.SET_PROTOCOL_FEATURES -> setProtocolFeatures(m);
            case VhostUserProtocol.GET_QUEUE_NUM -> {
                expect(m, 0, 0);
                replyU64(m, queueNum);
                return;
            }
            case VhostUserProtocol.SET_VRING_ENABLE -> {
                if (!VirtioFeatures.has(features, VhostUserProtocol.F_PROTOCOL_FEATURES) && featuresSet) {
                    throw new ProtocolException("SET_VRING_ENABLE without VHOST_USER_F_PROTOCOL_FEATURES negotiated");
                }
                vrings.setEnable(m);
            }
            case VhostUserProtocol.GET_CONFIG -> {
                getConfig(m);
                return;
            }
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

    private void replyU64(VhostUserMessage request, long value) throws NativeCallException {
        reply.header(request.request(), FLAG_REPLY, 8).putU64(0, value);
        channel.write(reply);
    }

    // ---------------------------------------------------------------- device-wide state

    private void setFeatures(VhostUserMessage m) throws ProtocolException {
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
        int running = vrings.running();
        if (running >= 0) {
            throw new ProtocolException("SET_FEATURES while vring " + running + " is running; features are set "
                + "before the rings start");
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

    /**
     * {@code GET_CONFIG}: {@code {u32 offset, u32 size, u32 flags, u8 payload[size]}}; the reply
     * repeats the header with the device's bytes. A range past the device's configuration space
     * gets a reply without payload, the protocol's way to report an error.
     */
    private void getConfig(VhostUserMessage m) throws ProtocolException, NativeCallException {
        if (config.length == 0) {
            throw new ProtocolException("GET_CONFIG is not a request this back end (" + device.name() + ") accepts: "
                + "the device has no configuration space and CONFIG was not offered");
        }
        if (!hasProtocolFeature(VhostUserProtocol.PROTOCOL_F_CONFIG)) {
            throw new ProtocolException("GET_CONFIG without the CONFIG protocol feature negotiated");
        }
        if (m.size() < CONFIG_HEADER || m.receivedFdCount() != 0) {
            throw new ProtocolException("GET_CONFIG has a " + m.size() + "-byte payload and " + m.receivedFdCount()
                + " fds; it takes a " + CONFIG_HEADER + "-byte header, the bytes to fill, and no fd");
        }
        long offset = Integer.toUnsignedLong(m.u32(0));
        long size = Integer.toUnsignedLong(m.u32(4));
        if (m.size() != CONFIG_HEADER + size) {
            throw new ProtocolException("GET_CONFIG asks for " + size + " bytes in a " + m.size()
                + "-byte payload; the payload is the " + CONFIG_HEADER + "-byte header and those bytes");
        }
        // both are below 2^32: the sum cannot overflow a long
        if (offset + size > config.length) {
            LOG.log(System.Logger.Level.INFO, "GET_CONFIG for bytes " + offset + ".." + (offset + size) + " of a "
                + config.length + "-byte configuration space: replying with an empty payload (an error)");
            reply.header(m.request(), FLAG_REPLY, 0);
            channel.write(reply);
            return;
        }
        reply.header(m.request(), FLAG_REPLY, m.size()).putU32(0, (int) offset).putU32(4, (int) size)
            .putU32(8, m.u32(8));
        MemorySegment.copy(config, (int) offset, reply.payload(), ValueLayout.JAVA_BYTE, CONFIG_HEADER, (int) size);
        channel.write(reply);
    }

    private void setProtocolFeatures(VhostUserMessage m) throws ProtocolException {
        expect(m, 8, 0);
        long requested = m.u64(0);
        if ((requested & ~offeredProtocolFeatures) != 0) {
            throw new ProtocolException(String.format(Locale.ROOT,
                "SET_PROTOCOL_FEATURES 0x%x sets bits 0x%x that were not offered (offered 0x%x)", requested,
                requested & ~offeredProtocolFeatures, offeredProtocolFeatures));
        }
        protocolFeatures = requested;
    }

    private void setMemTable(VhostUserMessage m) throws ProtocolException, NativeCallException {
        MemoryTable table = MemoryTable.map(m, options.allowUnsealedMemory());
        // stop the workers before the old mappings go away; they restart over the new table
        int[] restart;
        try {
            restart = vrings.stopAll();
        } catch (ProtocolException e) {
            table.close();
            throw e;
        }
        MemoryTable old = memoryTable;
        memoryTable = table;
        iotlbSide.setTable(table);
        if (old != null) {
            old.close();
        }
        LOG.log(System.Logger.Level.INFO, "memory table " + table);
        for (int running : restart) {
            if (running != 0) {
                vrings.restart(restart, ringSetup());
                break;
            }
        }
    }

    /** Whether the rings go through a device IOTLB: ACCESS_PLATFORM negotiated. */
    private boolean behindIommu() {
        return VirtioFeatures.has(features, VirtioFeatures.ACCESS_PLATFORM);
    }

    /** What a vring needs to start now: the memory table, the features and, behind an IOMMU, the IOTLB. */
    private Vrings.Setup ringSetup() throws ProtocolException {
        boolean enabledByDefault = !VirtioFeatures.has(features, VhostUserProtocol.F_PROTOCOL_FEATURES);
        if (!behindIommu()) {
            return new Vrings.Setup(memoryTable, features, null, enabledByDefault);
        }
        if (!hasProtocolFeature(VhostUserProtocol.PROTOCOL_F_BACKEND_REQ) || !iotlbSide.hasBackendChannel()) {
            throw new ProtocolException("ACCESS_PLATFORM needs the back-end channel (BACKEND_REQ and "
                + "SET_BACKEND_REQ_FD) for IOTLB misses before a vring starts");
        }
        return new Vrings.Setup(memoryTable, features, iotlbSide.iotlb(), enabledByDefault);
    }

    // ---------------------------------------------------------------- IOTLB

    private void setBackendReqFd(VhostUserMessage m) throws ProtocolException {
        expect(m, 0, 1);
        if (!hasProtocolFeature(VhostUserProtocol.PROTOCOL_F_BACKEND_REQ)) {
            throw new ProtocolException("SET_BACKEND_REQ_FD without the BACKEND_REQ protocol feature negotiated");
        }
        iotlbSide.setBackendChannel(new VhostUserChannel(m.takeFd(0)));
    }

    private void iotlbMessage(VhostUserMessage m) throws ProtocolException {
        expect(m, IotlbMessageCodec.STRUCT_SIZE, 0);
        boolean mayNegotiate = !featuresSet && VirtioFeatures.has(offeredFeatures, VirtioFeatures.ACCESS_PLATFORM);
        if (!behindIommu() && !mayNegotiate) {
            throw new ProtocolException("IOTLB_MSG but ACCESS_PLATFORM was not negotiated (features 0x"
                + Long.toHexString(features) + "); the front end has no IOMMU to speak of");
        }
        IotlbMessage.Type type = iotlbSide.process(m);
        if (type == IotlbMessage.Type.UPDATE || type == IotlbMessage.Type.BATCH_END) {
            // workers parked on a miss try again; one that still misses sleeps again
            vrings.wakeAll(iotlbSide.lastAnsweredAt());
        }
    }

    /** Stops the workers, unmaps the memory table and closes every fd of the connection. */
    @Override
    public void close() {
        vrings.close();
        if (memoryTable != null) {
            memoryTable.close();
            memoryTable = null;
        }
        iotlbSide.close();
        failureWake.close();
        channel.close();
        arena.close();
        if (!owned) {
            LOG.log(System.Logger.Level.DEBUG, "connection closed before SET_OWNER");
        }
    }
}

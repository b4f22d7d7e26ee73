package io.vringj.vhostuser.backend;

import io.vringj.device.ChainDevice;
import io.vringj.device.QueuePairDevice;
import io.vringj.device.VirtioDevice;
import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.IotlbAddressSpace;
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
import io.vringj.vhostuser.VhostUserMessage;
import io.vringj.vhostuser.VhostUserProtocol;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Consumer;
import static io.vringj.vhostuser.backend.Requests.expect;

/**
 * The vrings of one connection: the state the front end's vring requests build, and the
 * {@link QueueWorker} that runs each vring once it has a kick fd. Owned by the connection thread.
 *
 * <pre>
 *   num [SET_VRING_NUM]  addr [SET_VRING_ADDR]  base [SET_VRING_BASE]  enabled [SET_VRING_ENABLE]
 *   kick [SET_VRING_KICK] starts the worker     call [SET_VRING_CALL] may change while it runs
 *   [GET_VRING_BASE] stops the worker and replies with its last avail index
 * </pre>
 *
 * <p>A {@link ChainDevice}'s vrings run one {@link QueueWorker} each. A {@link QueuePairDevice}'s
 * vrings run in pairs: once both vrings of a pair have their addresses and kick, one
 * {@link PairWorker} runs both (one thread per pair); stopping either vring stops the pair and
 * records both bases. A pair past {@link QueuePairDevice#usablePairs(long)} (net without MQ
 * negotiated: every pair but 0) is refused when its vring is kicked.
 *
 * <p>With a {@link PairOwner} no pair worker runs: once both vrings of a pair are ready and
 * enabled, the device queues are created here and {@linkplain PairOwner#attach handed} to the
 * owner's thread; whatever would stop a pair worker {@linkplain PairOwner#detach takes them back}
 * instead, and the bases are read from the queues after the owner let go. Disabling either vring
 * detaches the pair; enabling both again attaches it anew.
 *
 * <p>Every fd received here is made non-blocking: a call eventfd at its maximum count drops an
 * interrupt instead of blocking a worker.
 */
final class Vrings implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(Vrings.class.getName());

    /** What a vring needs from the rest of the connection to start. */
    record Setup(MemoryTable memory, long features, DeviceIotlb iotlb, boolean enabledByDefault) {
    }

    /** A checked ring layout, kept until the vring's pair can start. */
    private record Plan(long features, int queueSize, RingAddresses addresses, AddressSpace space,
                        boolean enabledByDefault, DeviceIotlb iotlb) {
    }

    /** Per-vring state. */
    private static final class Vring {
        final int index;
        final CallNotifier call;
        int num;
        boolean addrSet;
        long descUser;
        long usedUser;
        long availUser;
        int base;
        boolean enabled;
        EventFd kick;
        EventFd err;
        QueueWorker worker;
        /** Made when the vring first starts and kept across restarts, so a device's state carries on. */
        ChainHandler handler;
        /** A queue-pair device's vring: how to build its queue, checked at its SET_VRING_KICK. */
        Plan plan;
        /** A queue-pair device's vring: the worker of its pair (the same object in both vrings). */
        PairWorker pairWorker;
        /** With a pair owner: the pair handed over (the same object in both vrings), or null. */
        PairOwner.OwnedPair owned;

        Vring(int index, VhostUserStatistics statistics) {
            this.index = index;
            this.call = new CallNotifier(statistics.callsDropped);
        }
    }

    private final VirtioDevice device;
    private final VhostUserStatistics statistics;
    private final Consumer<String> onFatal;
    private final Vring[] vrings;
    /** Works the pairs instead of pair workers, or null. */
    private final PairOwner owner;
    /** How long a queue worker busy polls before sleeping, in microseconds ({@link BackendOptions#busyPollMicros()}). */
    private final int busyPollMicros;

    /**
     * @param device the device served (its queue count and handlers)
     * @param statistics counters shared across connections
     * @param onFatal told why, when a worker fails (called on the worker)
     * @param owner takes the pairs of a queue-pair device instead of pair workers, or {@code null}
     * @param busyPollMicros how long a queue worker busy polls before sleeping, in microseconds (0: never)
     */
    Vrings(VirtioDevice device, VhostUserStatistics statistics, Consumer<String> onFatal, PairOwner owner,
           int busyPollMicros) {
        if (owner != null && !(device instanceof QueuePairDevice)) {
            throw new IllegalArgumentException(device.name() + " is not a queue-pair device; a pair owner takes "
                + "rx/tx pairs only");
        }
        this.owner = owner;
        this.busyPollMicros = busyPollMicros;
        this.device = Objects.requireNonNull(device, "device");
        this.statistics = Objects.requireNonNull(statistics, "statistics");
        this.onFatal = Objects.requireNonNull(onFatal, "onFatal");
        this.vrings = new Vring[device.queueCount()];
        for (int i = 0; i < vrings.length; i++) {
            vrings[i] = new Vring(i, statistics);
        }
    }

    private Vring vring(VhostUserMessage m, long index) throws ProtocolException {
        if (index < 0 || index >= vrings.length) {
            throw new ProtocolException(VhostUserProtocol.requestName(m.request()) + " names vring " + index + "; "
                + device.name() + " has " + vrings.length + " (0.." + (vrings.length - 1) + ")");
        }
        return vrings[(int) index];
    }

    /** @return the index of a running vring, or -1 */
    int running() {
        for (Vring v : vrings) {
            if (runs(v)) {
                return v.index;
            }
        }
        return -1;
    }

    /** {@code SET_VRING_NUM}. */
    void setNum(VhostUserMessage m, long features) throws ProtocolException {
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

    /** Whether a worker or the pair owner works {@code v}. */
    private static boolean runs(Vring v) {
        return v.worker != null || v.pairWorker != null || v.owned != null;
    }

    private static void requireStopped(VhostUserMessage m, Vring v) throws ProtocolException {
        if (runs(v)) {
            throw new ProtocolException(VhostUserProtocol.requestName(m.request()) + " for vring " + v.index
                + " while it runs; stop it with GET_VRING_BASE first");
        }
    }

    /** {@code SET_VRING_ADDR}. */
    void setAddr(VhostUserMessage m) throws ProtocolException {
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

    /** {@code SET_VRING_BASE}. */
    void setBase(VhostUserMessage m, long features) throws ProtocolException {
        expect(m, 8, 0);
        Vring v = vring(m, Integer.toUnsignedLong(m.u32(0)));
        int base = m.u32(4);
        // a packed ring's base is 32 bits: avail position and wrap counter, then used (checked at start)
        if (!VirtioFeatures.has(features, VirtioFeatures.RING_PACKED) && (base < 0 || base > 0xFFFF)) {
            throw new ProtocolException("SET_VRING_BASE " + Integer.toUnsignedString(base) + " for vring " + v.index
                + ": a split ring's avail index is 0..65535");
        }
        requireStopped(m, v);
        if (VirtioFeatures.has(features, VirtioFeatures.RING_PACKED) && (base >>> 16) == 0) {
            // DPDK's virtio_user sends only the avail half (position, wrap counter); after a stop the used
            // half equals it, which is what DPDK's own back end assumes (QEMU sends both halves)
            base |= (base & 0xFFFF) << 16;
        }
        v.base = base;
    }

    /**
     * {@code GET_VRING_BASE}: stops the vring and closes its kick fd.
     *
     * @return {index, base} for the reply
     */
    int[] getBase(VhostUserMessage m) throws ProtocolException {
        expect(m, 8, 0);
        Vring v = vring(m, Integer.toUnsignedLong(m.u32(0)));
        stopWorker(v);
        if (v.kick != null) {
            v.kick.close();
            v.kick = null;
        }
        LOG.log(System.Logger.Level.INFO, "vring " + v.index + " stopped at vring base 0x" + Integer.toHexString(v.base));
        return new int[] {v.index, v.base};
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

    /** {@code SET_VRING_KICK}: (re)starts the vring with the new kick fd. */
    void setKick(VhostUserMessage m, Setup setup) throws ProtocolException, NativeCallException {
        Vring[] which = new Vring[1];
        EventFd fd = takeVringFd(m, which);
        Vring v = which[0];
        try {
            stopWorker(v);
        } finally {
            if (v.kick != null) {
                v.kick.close();
            }
            v.kick = fd;
        }
        start(v, setup);
    }

    /** {@code SET_VRING_CALL}: may replace the call fd while the vring runs. */
    void setCall(VhostUserMessage m) throws ProtocolException, NativeCallException {
        Vring[] which = new Vring[1];
        EventFd fd = takeVringFd(m, which);
        which[0].call.replace(fd);
    }

    /** {@code SET_VRING_ERR}. */
    void setErr(VhostUserMessage m) throws ProtocolException, NativeCallException {
        Vring[] which = new Vring[1];
        EventFd fd = takeVringFd(m, which);
        Vring v = which[0];
        if (v.err != null) {
            v.err.close();
        }
        v.err = fd;
    }

    /** {@code SET_VRING_ENABLE}. */
    void setEnable(VhostUserMessage m) throws ProtocolException, NativeCallException {
        expect(m, 8, 0);
        Vring v = vring(m, Integer.toUnsignedLong(m.u32(0)));
        int on = m.u32(4);
        if (on != 0 && on != 1) {
            throw new ProtocolException("SET_VRING_ENABLE " + Integer.toUnsignedString(on) + " for vring " + v.index
                + ": the value is 0 (disable) or 1 (enable)");
        }
        v.enabled = on == 1;
        if (v.worker != null) {
            v.worker.setEnabled(v.enabled);
        }
        if (v.pairWorker != null) {
            v.pairWorker.setEnabled(isOn(vrings[v.index & ~1]) && isOn(vrings[v.index | 1]));
        }
        if (owner != null) {
            if (v.owned != null && !v.enabled) {
                stopPair(v);
            } else if (v.owned == null && v.enabled && v.plan != null) {
                startPairIfReady((QueuePairDevice) device, v);
            }
        }
    }

    /** Wakes every running worker (an IOTLB update arrived: parked ones try again). */
    void wakeAll() {
        wakeAll(0);
    }

    /**
     * Wakes every running worker after an IOTLB update.
     *
     * @param answeredAt when the update that answered a timed miss was applied ({@link MissClock}),
     *     0 if it answered none; if not 0 the workers record how long they took to run again
     */
    void wakeAll(long answeredAt) {
        for (Vring v : vrings) {
            DeviceThread t = v.worker != null ? v.worker : v.pairWorker;
            if (t == null || (v.pairWorker != null && (v.index & 1) == 1)) {
                // a pair's worker is woken once, through its rx vring
                continue;
            }
            // a worker that busy polls sees the update's epoch by itself and is not signalled
            t.wakeUpAfterUpdate(answeredAt, statistics.updateToWorker);
        }
    }

    private static boolean isOn(Vring v) {
        return v.enabled || (v.plan != null && v.plan.enabledByDefault());
    }

    /**
     * Stops every running worker, keeping its position.
     *
     * @return 1 for each vring that was running
     * @throws ProtocolException if a worker did not stop in time (the others are stopped)
     */
    int[] stopAll() throws ProtocolException {
        int[] running = new int[vrings.length];
        ProtocolException stuck = null;
        for (Vring v : vrings) {
            if (runs(v)) {
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

    /** Restarts the vrings {@link #stopAll()} found running, e.g. over a new memory table. */
    void restart(int[] running, Setup setup) throws ProtocolException, NativeCallException {
        for (int i = 0; i < running.length; i++) {
            if (running[i] != 0) {
                // a pair starts again only once both vrings have a plan over the new memory
                vrings[i].plan = null;
            }
        }
        for (int i = 0; i < running.length; i++) {
            if (running[i] != 0) {
                start(vrings[i], setup);
            }
        }
    }

    private void stopWorker(Vring v) throws ProtocolException {
        if (v.pairWorker != null || v.owned != null) {
            stopPair(v);
            return;
        }
        if (v.worker == null) {
            return;
        }
        long base = v.worker.stop();
        statistics.chains.add(v.worker.chainsCompleted());
        statistics.bytes.add(v.worker.bytesWritten());
        v.worker = null;
        if (base == QueueWorker.NOT_STOPPED) {
            throw new ProtocolException("vring " + v.index + " worker did not stop within "
                + DeviceThread.STOP_TIMEOUT_MILLIS + " ms");
        }
        v.base = (int) base;
    }

    /** Stops the pair worker running {@code v} and its partner (or takes them back from the owner), recording both vring bases. */
    private void stopPair(Vring v) throws ProtocolException {
        Vring rx = vrings[v.index & ~1];
        Vring tx = vrings[v.index | 1];
        if (v.owned != null) {
            PairOwner.OwnedPair pair = v.owned;
            rx.owned = null;
            tx.owned = null;
            if (!owner.detach(pair.pair(), "vring " + v.index + " stopped")) {
                throw new ProtocolException("pair " + pair.pair() + " was not let go by its owner within "
                    + DeviceThread.STOP_TIMEOUT_MILLIS + " ms");
            }
            // the owner acknowledged (a volatile write it made after its last ring access): the reads pair with it
            rx.base = pair.rx().vringBase();
            tx.base = pair.tx().vringBase();
            return;
        }
        long[] bases = v.pairWorker.stop();
        rx.pairWorker = null;
        tx.pairWorker = null;
        if (bases == null) {
            throw new ProtocolException("pair " + rx.index / 2 + " worker did not stop within "
                + DeviceThread.STOP_TIMEOUT_MILLIS + " ms");
        }
        rx.base = (int) bases[0];
        tx.base = (int) bases[1];
    }

    /** Starts the pair of {@code v} if both its vrings have a plan and a kick fd. */
    private void startPairIfReady(QueuePairDevice pairs, Vring v) throws ProtocolException, NativeCallException {
        Vring rx = vrings[v.index & ~1];
        Vring tx = vrings[v.index | 1];
        if (rx.pairWorker != null || rx.owned != null || rx.plan == null || tx.plan == null || rx.kick == null
            || tx.kick == null) {
            LOG.log(System.Logger.Level.INFO, "vring " + v.index + " ready; pair " + rx.index / 2
                + " starts once vrings " + rx.index + " and " + tx.index + " both are");
            return;
        }
        Plan rp = rx.plan;
        Plan tp = tx.plan;
        int rb = rx.base;
        int tb = tx.base;
        if (owner != null) {
            attach(rx, tx, rp, tp);
            return;
        }
        PairWorker worker = new PairWorker(rx.index / 2,
            () -> DeviceQueue.create(rp.features(), rp.queueSize(), rp.addresses(), rp.space(), rb),
            () -> DeviceQueue.create(tp.features(), tp.queueSize(), tp.addresses(), tp.space(), tb),
            rb, tb, rx.kick, tx.kick, rx.call, tx.call, pairs, rp.iotlb(), isOn(rx) && isOn(tx), onFatal,
            statistics.workerWakeups);
        rx.pairWorker = worker;
        tx.pairWorker = worker;
        worker.start();
        LOG.log(System.Logger.Level.INFO, "pair " + rx.index / 2 + " started: vrings " + rx.index + " and " + tx.index
            + ", sizes " + rp.queueSize() + "/" + tp.queueSize()
            + (rp.iotlb() != null ? " (IOVAs, through the device IOTLB)" : "") + ", vring bases 0x"
            + Integer.toHexString(rb) + "/0x" + Integer.toHexString(tb));
    }

    /** Creates both queues of a ready pair and hands them to the owner once both vrings are enabled. */
    private void attach(Vring rx, Vring tx, Plan rp, Plan tp) throws ProtocolException {
        if (!isOn(rx) || !isOn(tx)) {
            LOG.log(System.Logger.Level.INFO, "pair " + rx.index / 2 + " ready; handed over once both vrings are enabled");
            return;
        }
        DeviceQueue rxQueue;
        DeviceQueue txQueue;
        try {
            rxQueue = DeviceQueue.create(rp.features(), rp.queueSize(), rp.addresses(), rp.space(), rx.base);
            txQueue = DeviceQueue.create(tp.features(), tp.queueSize(), tp.addresses(), tp.space(), tx.base);
        } catch (VirtqueueException e) {
            // checked at SET_VRING_KICK already, but the other vring's base may have changed since
            throw new ProtocolException("pair " + rx.index / 2 + " cannot start: " + e.getMessage(), e);
        }
        PairOwner.OwnedPair pair = new PairOwner.OwnedPair(rx.index / 2, rxQueue, txQueue, rx.kick, tx.kick, rx.call,
            tx.call);
        try {
            owner.attach(pair);
        } catch (IllegalArgumentException e) {
            throw new ProtocolException("pair " + pair.pair() + " cannot start: " + e.getMessage(), e);
        }
        rx.owned = pair;
        tx.owned = pair;
        LOG.log(System.Logger.Level.INFO, "pair " + pair.pair() + " handed to its owner: vrings " + rx.index + " and "
            + tx.index + ", sizes " + rp.queueSize() + "/" + tp.queueSize() + ", vring bases 0x"
            + Integer.toHexString(rx.base) + "/0x" + Integer.toHexString(tx.base));
    }

    /** Builds the device queue over the memory table (or the IOTLB) and starts its worker. */
    private void start(Vring v, Setup setup) throws ProtocolException, NativeCallException {
        MemoryTable memoryTable = setup.memory();
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
        long features = setup.features();
        int queueSize = v.num;
        RingSizes sizes = ringSizes(v, features);
        int base = v.base;
        AddressSpace space;
        RingAddresses addresses;
        DeviceIotlb iotlb = setup.iotlb();
        if (iotlb != null) {
            // ring addresses are IOVAs, resolved through the IOTLB like descriptor addresses
            space = new IotlbAddressSpace(iotlb);
            addresses = new RingAddresses(v.descUser, v.availUser, v.usedUser);
        } else {
            // ring addresses are the front end's user addresses; ring-core works in guest-physical
            space = AddressSpace.identity(memoryTable.memory());
            addresses = new RingAddresses(
                guestPhysical(memoryTable, v, "descriptor area", v.descUser, sizes.descriptorArea()),
                guestPhysical(memoryTable, v, "driver area", v.availUser, sizes.driverArea()),
                guestPhysical(memoryTable, v, "device area", v.usedUser, sizes.deviceArea()));
            try {
                // activate here so a bad ring closes the connection at once, with its reason
                DeviceQueue.create(features, queueSize, addresses, space, base);
            } catch (VirtqueueException | IllegalArgumentException e) {
                throw new ProtocolException("vring " + v.index + " cannot start: " + e.getMessage(), e);
            }
        }
        if (owner != null && iotlb != null) {
            throw new ProtocolException("vring " + v.index + " cannot start: its rings are IOVAs behind a device "
                + "IOTLB (ACCESS_PLATFORM), which a pair owner does not serve");
        }
        if (device instanceof QueuePairDevice pairs) {
            int usable = pairs.usablePairs(features);
            if (v.index / 2 >= usable) {
                throw new ProtocolException(String.format(Locale.ROOT, "vring %d (pair %d) cannot start: %s serves "
                    + "%d of its %d pairs with the negotiated features 0x%x; the others need its multiqueue feature "
                    + "[virtio 5.1.2]", v.index, v.index / 2, device.name(), usable, device.queueCount() / 2, features));
            }
            // behind an IOTLB the pair's worker creates both queues (their ring areas may miss)
            v.plan = new Plan(features, queueSize, addresses, space, setup.enabledByDefault(), iotlb);
            startPairIfReady(pairs, v);
            return;
        }
        ChainDevice chains = (ChainDevice) device;
        boolean enabled = v.enabled || setup.enabledByDefault();
        if (v.handler == null) {
            v.handler = chains.handler(v.index, features);
        }
        AddressSpace queueSpace = space;
        QueueWorker worker = new QueueWorker(v.index,
            () -> DeviceQueue.create(features, queueSize, addresses, queueSpace, base), base, iotlb,
            v.kick, v.call, v.handler, enabled, onFatal, memoryTable, statistics.workerWakeups,
            busyPollMicros);
        v.worker = worker;
        worker.start();
        LOG.log(System.Logger.Level.INFO, "vring " + v.index + " started: size " + v.num + ", " + addresses
            + (iotlb != null ? " (IOVAs, through the device IOTLB)" : "") + ", vring base 0x"
            + Integer.toHexString(v.base) + (enabled ? "" : " (disabled until SET_VRING_ENABLE)"));
    }

    /** The ring's area sizes for the negotiated layout; a size the layout does not allow is the front end's error. */
    private static RingSizes ringSizes(Vring v, long features) throws ProtocolException {
        try {
            return RingSizes.of(features, v.num);
        } catch (IllegalArgumentException e) {
            throw new ProtocolException("vring " + v.index + " cannot start: " + e.getMessage(), e);
        }
    }

    private static long guestPhysical(MemoryTable table, Vring v, String what, long userAddress, long size)
        throws ProtocolException {
        long gpa = table.userToGuestPhysical(userAddress, size);
        if (gpa == -1) {
            throw new ProtocolException(String.format(Locale.ROOT,
                "vring %d %s at user address 0x%x (%d bytes) is outside the memory table %s", v.index, what,
                userAddress, size, table));
        }
        return gpa;
    }

    /** {@code RESET_OWNER}: stops every vring and forgets its state. */
    void reset() throws ProtocolException {
        stopAll();
        for (Vring v : vrings) {
            v.num = 0;
            v.addrSet = false;
            v.base = 0;
            v.enabled = false;
            v.handler = null;
            v.plan = null;
            if (v.kick != null) {
                v.kick.close();
                v.kick = null;
            }
        }
    }

    /** Stops the workers (a stuck one is left behind, logged) and closes every vring fd. */
    @Override
    public void close() {
        try {
            stopAll();
        } catch (ProtocolException e) {
            // logged by the worker; the memory is unmapped next, so a late access fails with an exception
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
    }
}

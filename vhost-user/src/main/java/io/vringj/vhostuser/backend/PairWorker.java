package io.vringj.vhostuser.backend;

import io.vringj.device.QueuePairDevice;
import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.IotlbTranslations;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.MissParking;
import io.vringj.ring.VirtqueueException;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;
import org.agrona.concurrent.Agent;

/**
 * The device thread of one rx/tx queue pair of a {@link QueuePairDevice} (net): creates both
 * device queues, gets the pair's worker from the device and calls its {@link Agent#doWork()}
 * until it reports no work, then sleeps in {@code poll} on the tx kick, the rx kick (drained
 * only: the device never waits for rx buffers) and a wake-up eventfd of its own.
 *
 * <pre>
 *   loop:  enabled?  doWork() > 0 -> again;  0 -> poll(tx kick, rx kick, wake)
 *          stop: onClose() (held rx buffers go back used), then both vring bases are read
 * </pre>
 *
 * <p>The worker owns both queues; the connection thread writes only {@link #enabled} and
 * {@link #stopping}. A ring rule the driver breaks, or anything else thrown on the worker, ends
 * it and is reported to the connection, which closes.
 *
 * <p>Behind a device IOTLB ({@code ACCESS_PLATFORM}) it works as {@link QueueWorker} does: the
 * queues are created on the worker, because translating their ring areas may miss (the IOTLB
 * has sent a MISS; {@link MissParking} keeps the worker from trying again until the
 * translations changed, and the connection wakes it after an UPDATE); every {@code doWork} (and
 * the final {@code onClose}) is one IOTLB critical section, so an INVALIDATE returns only once no
 * translation from the removed range is in use, and the worker never sleeps inside one. A pair
 * parked on a miss returns 0 from {@code doWork}, so the worker sleeps in {@code poll} until the
 * update's wake-up (or a kick) instead of spinning.
 *
 * <pre>
 *   loop:  enabled?  enter;  queues and pair made? (else create them: a miss parks)  doWork;  exit
 *          > 0 -> again;  0 (idle, or parked on a miss) -> poll(tx kick, rx kick, wake)
 * </pre>
 */
final class PairWorker extends DeviceThread {
    private static final System.Logger LOG = System.getLogger(PairWorker.class.getName());
    private static final short KICK_GONE = Libc.POLLHUP | Libc.POLLERR | Libc.POLLNVAL;

    private final int pair;
    private final QueueWorker.QueueFactory rxFactory;
    private final QueueWorker.QueueFactory txFactory;
    private final int rxInitialBase;
    private final int txInitialBase;
    private final EventFd rxKick;
    private final EventFd txKick;
    private final CallNotifier rxCall;
    private final CallNotifier txCall;
    private final QueuePairDevice device;
    private final Consumer<String> onFatal;
    private final DeviceIotlb iotlb;
    /** Counts returns from poll (shared across workers). */
    private final LongAdder wakeups;

    /** Created on the worker; read by {@link #stop()} after join. */
    private DeviceQueue rx;
    private DeviceQueue tx;
    /** The pair's worker, made on the worker thread once both queues exist. */
    private Agent agent;
    /** The queues could not be created (the connection was told); the worker only waits to be stopped. */
    private boolean pairFailed;

    /**
     * @param pair the pair index
     * @param rxFactory creates the rx queue on the worker thread
     * @param txFactory creates the tx queue on the worker thread
     * @param rxInitialBase the rx vring base to report if its queue is never created
     * @param txInitialBase the tx vring base to report if its queue is never created
     * @param rxKick the rx kick eventfd (drained only)
     * @param txKick the tx kick eventfd
     * @param rxCall where rx interrupts go
     * @param txCall where tx interrupts go
     * @param device the device that makes the pair's worker
     * @param iotlb the device IOTLB both queues translate through, or {@code null}
     * @param enabled whether the pair starts enabled
     * @param onFatal told why, when the pair fails
     * @param wakeups counts the worker's returns from poll
     */
    PairWorker(int pair, QueueWorker.QueueFactory rxFactory, QueueWorker.QueueFactory txFactory, int rxInitialBase,
               int txInitialBase, EventFd rxKick, EventFd txKick, CallNotifier rxCall, CallNotifier txCall,
               QueuePairDevice device, DeviceIotlb iotlb, boolean enabled, Consumer<String> onFatal,
               LongAdder wakeups) throws NativeCallException {
        super("vhost-user-pair-" + pair, "pair " + pair, enabled);
        this.pair = pair;
        this.rxFactory = Objects.requireNonNull(rxFactory, "rxFactory");
        this.txFactory = Objects.requireNonNull(txFactory, "txFactory");
        this.rxInitialBase = rxInitialBase;
        this.txInitialBase = txInitialBase;
        this.rxKick = Objects.requireNonNull(rxKick, "rxKick");
        this.txKick = Objects.requireNonNull(txKick, "txKick");
        this.rxCall = Objects.requireNonNull(rxCall, "rxCall");
        this.txCall = Objects.requireNonNull(txCall, "txCall");
        this.device = Objects.requireNonNull(device, "device");
        this.onFatal = Objects.requireNonNull(onFatal, "onFatal");
        this.iotlb = iotlb;
        this.wakeups = Objects.requireNonNull(wakeups, "wakeups");
    }

    /**
     * Stops the worker and waits for it, at most {@link DeviceThread#STOP_TIMEOUT_MILLIS}.
     *
     * @return {rx base, tx base} as unsigned 32-bit values, or {@code null} if it did not end in time
     */
    long[] stop() {
        if (!stopAndJoin()) {
            return null;
        }
        // join: everything the worker wrote to the queues happens-before these reads
        return new long[] {Integer.toUnsignedLong(rx == null ? rxInitialBase : rx.vringBase()),
            Integer.toUnsignedLong(tx == null ? txInitialBase : tx.vringBase())};
    }

    @Override
    public void run() {
        DeviceIotlb.Worker section = iotlb == null ? null : iotlb.registerWorker();
        MissParking.Translations translations = iotlb == null ? null : new IotlbTranslations(iotlb);
        MissParking creation = translations == null ? null : new MissParking(translations);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pollfds = arena.allocate(Libc.POLLFD_SIZE * 3, 8);
            pollfds.set(ValueLayout.JAVA_INT, 0, txKick.fd());
            pollfds.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            pollfds.set(ValueLayout.JAVA_INT, 8, rxKick.fd());
            pollfds.set(ValueLayout.JAVA_SHORT, 12, Libc.POLLIN);
            pollfds.set(ValueLayout.JAVA_INT, 16, wake.fd());
            pollfds.set(ValueLayout.JAVA_SHORT, 20, Libc.POLLIN);
            // volatile reads: pair with the writes in setEnabled() and stop()
            while (!stopping) {
                if (enabled) {
                    int work;
                    if (section != null) {
                        section.enter();
                    }
                    try {
                        work = agent != null || createPair(creation, translations) ? agent.doWork() : 0;
                    } finally {
                        if (section != null) {
                            section.exit();
                        }
                    }
                    if (pairFailed) {
                        return;
                    }
                    if (work > 0) {
                        continue;
                    }
                }
                if (stopping) {
                    break;
                }
                pollfds.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
                pollfds.set(ValueLayout.JAVA_SHORT, 14, (short) 0);
                pollfds.set(ValueLayout.JAVA_SHORT, 22, (short) 0);
                Libc.poll(pollfds, 3, -1);
                wakeups.increment();
                short txEvents = pollfds.get(ValueLayout.JAVA_SHORT, 6);
                short rxEvents = pollfds.get(ValueLayout.JAVA_SHORT, 14);
                if (((txEvents | rxEvents) & KICK_GONE) != 0) {
                    // a hung-up or failed kick fd stays readable for ever: polling it again would spin
                    LOG.log(System.Logger.Level.WARNING, "pair " + pair + ": a kick fd reports poll events 0x"
                        + Integer.toHexString((txEvents | rxEvents) & 0xFFFF) + "; the pair stops until the front end "
                        + "sends a new SET_VRING_KICK");
                    return;
                }
                if ((txEvents & Libc.POLLIN) != 0) {
                    txKick.drain();
                }
                if ((rxEvents & Libc.POLLIN) != 0) {
                    rxKick.drain();
                }
                if ((pollfds.get(ValueLayout.JAVA_SHORT, 22) & Libc.POLLIN) != 0) {
                    wake.drain();
                    noteWokenByUpdate();
                }
            }
        } catch (Throwable e) {
            // a ring rule the driver broke, or a fault in its memory, closes this connection only
            if (!stopping) {
                onFatal.accept("pair " + pair + " worker failed: " + e);
            }
        } finally {
            closeAgent(section);
            if (section != null) {
                section.close();
            }
        }
    }

    /**
     * Creates whichever queue does not exist yet, then the pair's worker; called inside the IOTLB
     * critical section.
     *
     * @return true if the pair exists now; false if a ring area missed in the IOTLB (parked until
     *     an update: the worker sleeps) or the queues cannot be created ({@link #pairFailed}, the
     *     connection is told)
     */
    private boolean createPair(MissParking creation, MissParking.Translations translations) {
        if (pairFailed || creation != null && creation.stillParked()) {
            return false;
        }
        // read before the attempt: an update landing during it moves the stamp past this value
        long stamp = creation == null ? 0 : creation.beforeAttempt();
        try {
            if (rx == null) {
                rx = rxFactory.create();
            }
            if (tx == null) {
                tx = txFactory.create();
            }
        } catch (VirtqueueException e) {
            if (creation != null && creation.parkOnMiss(e, stamp)) {
                // the IOTLB has sent a MISS for the ring area; an UPDATE wakes us to try again
                return false;
            }
            pairFailed = true;
            onFatal.accept("pair " + pair + " cannot start: " + e.getMessage());
            return false;
        }
        agent = device.pair(pair, rx, tx, rxCall, txCall, translations);
        return true;
    }

    /** Lets the pair return its held rx buffers (inside a critical section: it writes the used ring). */
    private void closeAgent(DeviceIotlb.Worker section) {
        if (agent == null) {
            return;
        }
        if (section != null) {
            section.enter();
        }
        try {
            agent.onClose();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "pair " + pair + " close failed: " + e);
        } finally {
            if (section != null) {
                section.exit();
            }
        }
    }
}

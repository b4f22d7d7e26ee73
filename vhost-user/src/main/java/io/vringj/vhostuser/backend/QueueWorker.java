package io.vringj.vhostuser.backend;

import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.IotlbTranslations;
import io.vringj.ring.ChainHandler;
import io.vringj.ring.DeviceLoop;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.RingError;
import io.vringj.ring.VirtqueueException;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;

/**
 * The device thread of one vring: runs ring-core's {@link DeviceLoop} over the vring's queue and
 * sleeps in {@code poll} on the kick eventfd (and a wake-up eventfd of its own) whenever the
 * loop reports the ring idle or parked.
 *
 * <pre>
 *   loop:  memory whole?  loop.run(BATCH):  BUSY -> again;  IDLE / PARKED -> [busy poll] -> poll(kick, wake)
 *          kick POLLHUP/POLLERR/POLLNVAL -> the ring ends (logged)
 *   busy poll (busyPollNanos > 0), with spinning set:
 *          loop.poll(BATCH) until the deadline (notifications stay disabled; a chain moves the deadline),
 *          or, parked on a miss, until the IOTLB epoch moves (the UPDATE is applied)
 *          clear spinning, loop.run(BATCH) once: enables notifications and rechecks [virtio 2.7.10]
 * </pre>
 *
 * <p>Busy polling is Linux vhost's {@code busyloop_timeout} ({@code vhost_net_busy_poll}): a core
 * spins for up to {@link BackendOptions#busyPollMicros()} after the ring runs dry or a translation
 * misses, so the next chain or the UPDATE is seen without a kick and a wake-up from {@code poll}.
 *
 * <p>The worker owns its {@link DeviceQueue} and reads nothing else the connection thread writes
 * except {@link #enabled}, {@link #stopping} and the call notifier (which has its own lock). A
 * fatal ring error, or anything else thrown on the worker, ends the worker and is reported to
 * the connection, which closes.
 *
 * <p>Behind a device IOTLB ({@code ACCESS_PLATFORM}) the queue is created on the worker, because
 * translating the ring areas may miss: the IOTLB has then sent a MISS over the back-end channel
 * and the worker sleeps until the connection wakes it after an UPDATE, and tries again. Misses
 * while popping are the loop's ({@link io.vringj.ring.MissParking}). Every call of the loop is
 * one IOTLB critical section, so an INVALIDATE returns only once no translation from the
 * removed range is in use; the worker never sleeps inside one.
 */
final class QueueWorker extends DeviceThread {
    private static final System.Logger LOG = System.getLogger(QueueWorker.class.getName());

    /** Chains handled per loop call, between checks of {@link #stopping} and of the memory. */
    static final int BATCH = 256;
    /** {@link #stop()} result: the worker did not end in time. */
    static final long NOT_STOPPED = -1;
    /** Poll events on the kick fd that end the ring: the peer hung up, the fd failed or is not open. */
    private static final short KICK_GONE = Libc.POLLHUP | Libc.POLLERR | Libc.POLLNVAL;
    /** A pass's result when the worker must end (the queue broke or the memory shrank; the connection was told). */
    private static final int ENDED = -1;
    /** Poll time-out without a kick fd (the front end polls the ring itself). */
    private static final int NO_KICK_POLL_MILLIS = 100;

    private final int index;
    private final QueueFactory factory;
    private final int initialAvailIdx;
    private final DeviceIotlb iotlb;
    private final EventFd kick;
    private final CallNotifier call;
    private final ChainHandler handler;
    private final Consumer<String> onFatal;
    /** The memory table if a region's file may shrink (checked before each pass), else {@code null}. */
    private final MemoryTable watched;
    /** Counts returns from poll (shared across workers). */
    private final LongAdder wakeups;
    /** How long to busy poll before sleeping, in nanoseconds; 0: never. */
    private final long busyPollNanos;

    /** Created on the worker; read by {@link #stop()} after join. */
    private DeviceLoop loop;
    /** Chains completed; written by the worker only, read for statistics. */
    private volatile long chainsCompleted;
    private volatile long bytesWritten;
    /** The queue could not be created (the connection was told); the worker only waits to be stopped. */
    private boolean queueFailed;
    /** The IOTLB epoch read before the last attempt to create the queue (a miss waits for it to move). */
    private long createStamp;
    /** The IOTLB critical section of this worker, or {@code null}; set on the worker. */
    private DeviceIotlb.Worker section;

    /**
     * @param index the vring index
     * @param factory creates the device queue on the worker thread
     * @param initialAvailIdx the avail index to report if the queue is never created
     * @param iotlb the device IOTLB the queue translates through, or {@code null}
     * @param kick the kick eventfd, or {@code null} (the worker then polls every 100 ms)
     * @param call where interrupts go
     * @param handler the device's chain handler
     * @param enabled whether the ring starts enabled
     * @param onFatal told why, when the queue breaks
     * @param memory the memory table the ring lives in (its unsealed regions are checked before each pass)
     * @param wakeups counts the worker's returns from poll
     * @param busyPollMicros how long to busy poll before sleeping, in microseconds (0: never;
     *     {@link BackendOptions} checked the range)
     */
    QueueWorker(int index, QueueFactory factory, int initialAvailIdx, DeviceIotlb iotlb, EventFd kick,
                CallNotifier call, ChainHandler handler, boolean enabled, Consumer<String> onFatal,
                MemoryTable memory, LongAdder wakeups, int busyPollMicros) throws NativeCallException {
        super("vhost-user-vring-" + index, "vring " + index, enabled);
        this.index = index;
        this.factory = Objects.requireNonNull(factory, "factory");
        this.initialAvailIdx = initialAvailIdx;
        this.iotlb = iotlb;
        this.kick = kick;
        this.call = Objects.requireNonNull(call, "call");
        this.handler = Objects.requireNonNull(handler, "handler");
        this.onFatal = Objects.requireNonNull(onFatal, "onFatal");
        this.watched = memory != null && memory.hasUnsealedRegion() ? memory : null;
        this.wakeups = Objects.requireNonNull(wakeups, "wakeups");
        this.busyPollNanos = busyPollMicros * 1_000L;
    }

    /**
     * Stops the worker and waits for it, at most {@link #STOP_TIMEOUT_MILLIS}; afterwards the
     * queue may be read by the caller.
     *
     * @return the queue's ring state for {@code GET_VRING_BASE} (as an unsigned 32-bit value): the
     *     split ring's last avail index, or the packed ring's avail and used positions with their
     *     wrap counters; {@link #NOT_STOPPED} if the worker did not end in time
     */
    long stop() {
        if (!stopAndJoin()) {
            return NOT_STOPPED;
        }
        // join: everything the worker wrote to the queue happens-before this read
        return Integer.toUnsignedLong(loop == null ? initialAvailIdx : loop.queue().vringBase());
    }

    long chainsCompleted() {
        return chainsCompleted;
    }

    long bytesWritten() {
        return bytesWritten;
    }

    @Override
    public void run() {
        section = iotlb == null ? null : iotlb.registerWorker();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pollfds = arena.allocate(Libc.POLLFD_SIZE * 2, 8);
            pollfds.set(ValueLayout.JAVA_INT, 0, kick == null ? -1 : kick.fd());
            pollfds.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            pollfds.set(ValueLayout.JAVA_INT, 8, wake.fd());
            pollfds.set(ValueLayout.JAVA_SHORT, 12, Libc.POLLIN);
            while (!stopping) {
                if (enabled) {
                    long passStartedAt = 0;
                    if (busyPollNanos > 0) {
                        // volatile write: the pass may park on a miss whose UPDATE comes before busyPoll
                        // starts; busyPoll sees it and clears the flag before its recheck (pairs with
                        // the fence-then-read in DeviceThread.wakeUpAfterUpdate)
                        spinning = true;
                        passStartedAt = System.nanoTime();
                    }
                    int state = step(false);
                    if (state == ENDED) {
                        return;
                    }
                    if (state != DeviceLoop.BUSY && busyPollNanos > 0) {
                        state = busyPoll(state, passStartedAt);
                        if (state == ENDED) {
                            return;
                        }
                    }
                    if (state == DeviceLoop.BUSY) {
                        continue;
                    }
                    noteSpinResume();
                }
                if (stopping) {
                    return;
                }
                pollfds.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
                pollfds.set(ValueLayout.JAVA_SHORT, 14, (short) 0);
                // kick fd -1 (none): poll ignores the entry and the front end is expected to poll-mode; wait on wake only
                Libc.poll(pollfds, 2, kick == null ? NO_KICK_POLL_MILLIS : -1);
                wakeups.increment();
                short kickEvents = pollfds.get(ValueLayout.JAVA_SHORT, 6);
                if ((kickEvents & KICK_GONE) != 0) {
                    // a hung-up, failed or closed kick fd stays readable for ever: polling it again would spin
                    LOG.log(System.Logger.Level.WARNING, String.format(Locale.ROOT,
                        "vring %d: kick fd %d reports poll events 0x%x (%s); the ring stops until the front end "
                            + "sends a new SET_VRING_KICK", index, kick.fd(), kickEvents, pollEventNames(kickEvents)));
                    return;
                }
                if ((kickEvents & Libc.POLLIN) != 0) {
                    kick.drain();
                }
                if ((pollfds.get(ValueLayout.JAVA_SHORT, 14) & Libc.POLLIN) != 0) {
                    wake.drain();
                    noteWokenByUpdate();
                }
            }
        } catch (Throwable e) {
            // any failure, including an InternalError from a fault in the front end's memory
            // (a file it shrank), closes this connection and never ends the process
            if (!stopping) {
                onFatal.accept("vring " + index + " worker failed: " + e);
            }
        } finally {
            if (section != null) {
                section.close();
            }
        }
    }

    /**
     * One pass: checks the memory, creates the queue if need be and runs the loop for one batch,
     * inside the IOTLB critical section.
     *
     * @param quiet whether an empty ring leaves notifications disabled ({@link DeviceLoop#poll})
     * @return the loop's state, or {@link #ENDED} if the worker must end (the connection was told)
     */
    private int step(boolean quiet) {
        String shrunk = watched == null ? null : watched.shrunkRegion();
        if (shrunk != null) {
            onFatal.accept("vring " + index + ": " + shrunk);
            return ENDED;
        }
        if (section != null) {
            section.enter();
        }
        try {
            return loop != null || createLoop() ? runLoop(quiet) : queueFailed ? ENDED : DeviceLoop.PARKED;
        } finally {
            if (section != null) {
                section.exit();
            }
        }
    }

    /**
     * Busy polls after the loop reported {@code state} (IDLE or PARKED), for up to
     * {@link #busyPollNanos} since the last chain, then lets the loop enable notifications and
     * recheck once. Allocation-free; ends early when the worker is stopped or disabled.
     *
     * @param state the state the last pass reported
     * @param passStartedAt {@link System#nanoTime()} before that pass
     * @return the state after the recheck ({@link DeviceLoop#BUSY} if chains are waiting), or
     *     {@link #ENDED} if the worker must end
     */
    private int busyPoll(int state, long passStartedAt) {
        if (state == DeviceLoop.PARKED) {
            noteSpinResume();
            forgetSpinResume(passStartedAt);
        }
        long deadline = System.nanoTime() + busyPollNanos;
        // volatile write: pairs with the fence-then-read in DeviceThread.wakeUpAfterUpdate
        spinning = true;
        try {
            // volatile reads: pair with the writes in setEnabled / stopAndJoin
            while (!stopping && enabled) {
                // parked before the queue exists: only a move of the IOTLB epoch can change the outcome
                if (loop != null || iotlb == null || iotlb.epoch() != createStamp) {
                    boolean wasParked = state == DeviceLoop.PARKED;
                    long before = chainsCompleted;
                    long stepStartedAt = System.nanoTime();
                    state = step(true);
                    if (state == ENDED) {
                        return state;
                    }
                    if (wasParked && state != DeviceLoop.PARKED) {
                        noteUnparkedWhileSpinning();
                    } else if (!wasParked && state == DeviceLoop.PARKED) {
                        // a new miss: a resume no timed UPDATE claimed is not this one's
                        noteSpinResume();
                        forgetSpinResume(stepStartedAt);
                    }
                    if (state == DeviceLoop.EMPTY) {
                        noteSpinResume();
                    }
                    if (chainsCompleted != before) {
                        deadline = System.nanoTime() + busyPollNanos;
                    }
                    if (state == DeviceLoop.BUSY) {
                        continue;
                    }
                }
                if (System.nanoTime() - deadline >= 0) {
                    break;
                }
                // gives way to a thread that wants this core (the vCPU that makes the next chain, the
                // front end's thread that answers the miss), as vhost_can_busy_poll stops on need_resched()
                Thread.yield();
            }
        } finally {
            // volatile write before the recheck below reads the IOTLB epoch: pairs with
            // DeviceThread.wakeUpAfterUpdate, which signals once it reads false
            spinning = false;
        }
        if (stopping || !enabled) {
            return DeviceLoop.IDLE;
        }
        // enable notifications and recheck before sleeping, so neither a chain nor an update is lost
        int after = step(false);
        if (state == DeviceLoop.PARKED && after != DeviceLoop.PARKED && after != ENDED) {
            // the recheck found the update: the connection may have skipped the signal
            noteUnparkedWhileSpinning();
        }
        return after;
    }

    /** Runs the loop for one batch; returns its state, or {@link #ENDED} if the queue broke (the connection is told). */
    private int runLoop(boolean quiet) {
        try {
            return quiet ? loop.poll(BATCH) : loop.run(BATCH);
        } catch (VirtqueueException e) {
            onFatal.accept("vring " + index + ": " + e.getMessage());
            return ENDED;
        } finally {
            chainsCompleted = loop.chains();
            bytesWritten = loop.bytesWritten();
        }
    }

    /**
     * Creates the device queue and its loop.
     *
     * @return true if they exist now; false if a ring area missed in the IOTLB (wait for an
     *     update) or the queue cannot be created ({@link #queueFailed}, the connection is told)
     */
    private boolean createLoop() {
        if (iotlb != null) {
            // read before the attempt: an update during it moves the epoch past this value
            createStamp = iotlb.epoch();
        }
        try {
            DeviceQueue queue = factory.create();
            loop = new DeviceLoop(queue, handler, call, iotlb == null ? null : IotlbTranslations.parking(iotlb));
            return true;
        } catch (VirtqueueException e) {
            if (e.error() == RingError.TRANSLATION_MISS && iotlb != null) {
                // the IOTLB has sent a MISS for the ring area; an UPDATE wakes us to try again
                return false;
            }
            queueFailed = true;
            onFatal.accept("vring " + index + " cannot start: " + e.getMessage());
            return false;
        }
    }

    private static String pollEventNames(short events) {
        StringBuilder names = new StringBuilder();
        if ((events & Libc.POLLHUP) != 0) {
            names.append("POLLHUP ");
        }
        if ((events & Libc.POLLERR) != 0) {
            names.append("POLLERR ");
        }
        if ((events & Libc.POLLNVAL) != 0) {
            names.append("POLLNVAL ");
        }
        return names.toString().trim();
    }

    /** Creates the device queue of a vring, on its worker thread. */
    @FunctionalInterface
    interface QueueFactory {
        /**
         * @return the activated device queue
         * @throws VirtqueueException if a ring area is misaligned, unreachable, or (behind an IOTLB) missed
         */
        DeviceQueue create() throws VirtqueueException;
    }
}

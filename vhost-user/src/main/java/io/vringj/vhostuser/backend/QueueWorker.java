package io.vringj.vhostuser.backend;

import io.vringj.device.VirtioDevice;
import io.vringj.dma.DeviceIotlb;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.RingError;
import io.vringj.ring.VirtqueueException;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * The device thread of one vring: waits on the kick eventfd, pops and handles chains, publishes
 * them used and signals the call eventfd when the driver wants it.
 *
 * <pre>
 *   loop:  disableNotifications; pop/handle/addUsed until empty; publishUsed -> call
 *          enableNotifications: true -> chains arrived meanwhile, loop again
 *          false -> poll(kick, wake) until kicked
 * </pre>
 *
 * <p>The worker owns its {@link DeviceQueue} and reads nothing else the connection thread writes
 * except {@link #enabled}, {@link #stopping} and the call notifier (which has its own lock). A
 * fatal ring error ends the worker and is reported to the connection, which closes.
 *
 * <p>Behind a device IOTLB ({@code ACCESS_PLATFORM}) the queue is created on the worker, because
 * translating the ring areas may miss: the IOTLB has then sent a MISS over the back-end channel
 * and the worker sleeps until the connection wakes it after an UPDATE, and tries again. Every
 * pass over the ring (pop, handle, add used, publish) is one IOTLB critical section, so an
 * INVALIDATE returns only once no translation from the removed range is in use; the worker
 * never sleeps inside one.
 */
final class QueueWorker implements Runnable {
    private static final System.Logger LOG = System.getLogger(QueueWorker.class.getName());

    private final int index;
    private final QueueFactory factory;
    private final int initialAvailIdx;
    private final DeviceIotlb iotlb;
    /** Created on the worker (or handed over by the constructor); read by {@link #stop()} after join. */
    private DeviceQueue queue;
    private final EventFd kick;
    private final EventFd wake;
    private final CallNotifier call;
    private final VirtioDevice.ChainHandler handler;
    private final Consumer<String> onFatal;
    /** Counts returns from poll (shared across workers). */
    private final java.util.concurrent.atomic.LongAdder wakeups;
    /** The memory table if a region's file may shrink (checked before each pass), else {@code null}. */
    private final MemoryTable watched;
    private final DescriptorChain chain = new DescriptorChain();
    private final Thread thread;

    /** Set by the connection thread; read by the worker each time round. */
    private volatile boolean enabled;
    private volatile boolean stopping;
    /** Chains completed; written by the worker only, read for statistics. */
    private volatile long chainsCompleted;
    private volatile long bytesWritten;
    /** The queue could not be created (the connection was told); the worker only waits to be stopped. */
    private boolean queueFailed;

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
     */
    QueueWorker(int index, QueueFactory factory, int initialAvailIdx, DeviceIotlb iotlb, EventFd kick,
                CallNotifier call, VirtioDevice.ChainHandler handler, boolean enabled, Consumer<String> onFatal,
                MemoryTable memory, java.util.concurrent.atomic.LongAdder wakeups)
        throws NativeCallException {
        this.wakeups = Objects.requireNonNull(wakeups, "wakeups");
        this.watched = memory != null && memory.hasUnsealedRegion() ? memory : null;
        this.index = index;
        this.factory = Objects.requireNonNull(factory, "factory");
        this.initialAvailIdx = initialAvailIdx;
        this.iotlb = iotlb;
        this.kick = kick;
        this.call = Objects.requireNonNull(call, "call");
        this.handler = Objects.requireNonNull(handler, "handler");
        this.onFatal = Objects.requireNonNull(onFatal, "onFatal");
        this.enabled = enabled;
        this.wake = EventFd.create();
        this.thread = Thread.ofPlatform().name("vhost-user-vring-" + index).daemon().unstarted(this);
    }

    void start() {
        thread.start();
    }

    /** Enables or disables the ring ({@code SET_VRING_ENABLE}) and wakes the worker. */
    void setEnabled(boolean on) {
        enabled = on;
        wakeUp();
    }

    /** Wakes the worker (an IOTLB update arrived, or it must stop). */
    void wakeUp() {
        try {
            wake.signal();
        } catch (NativeCallException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot wake vring " + index + " worker: " + e.getMessage());
        }
    }

    /** Poll events on the kick fd that end the ring: the peer hung up, the fd failed or is not open. */
    private static final short KICK_GONE = Libc.POLLHUP | Libc.POLLERR | Libc.POLLNVAL;

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

    /** How long {@link #stop()} waits for the worker thread. */
    static final long STOP_TIMEOUT_MILLIS = 5000;
    /** {@link #stop()} result: the worker did not end in time. */
    static final long NOT_STOPPED = -1;

    /**
     * Stops the worker and waits for it, at most {@link #STOP_TIMEOUT_MILLIS}; afterwards the
     * queue may be read by the caller.
     *
     * @return the queue's ring state for {@code GET_VRING_BASE} (as an unsigned 32-bit value): the
     *     split ring's last avail index, or the packed ring's avail and used positions with their
     *     wrap counters; {@link #NOT_STOPPED} if the worker did not end in time
     */
    long stop() {
        stopping = true;
        wakeUp();
        boolean interrupted = false;
        long deadline = System.nanoTime() + STOP_TIMEOUT_MILLIS * 1_000_000;
        long left;
        while (thread.isAlive() && (left = deadline - System.nanoTime()) > 0) {
            try {
                thread.join(java.time.Duration.ofNanos(left));
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        if (thread.isAlive()) {
            LOG.log(System.Logger.Level.WARNING, "vring " + index + " worker did not stop within "
                + STOP_TIMEOUT_MILLIS + " ms; its connection closes without it");
            return NOT_STOPPED;
        }
        wake.close();
        // join: everything the worker wrote to the queue happens-before this read
        return Integer.toUnsignedLong(queue == null ? initialAvailIdx : queue.vringBase());
    }

    long chainsCompleted() {
        return chainsCompleted;
    }

    long bytesWritten() {
        return bytesWritten;
    }

    @Override
    public void run() {
        DeviceIotlb.Worker section = iotlb == null ? null : iotlb.registerWorker();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pollfds = arena.allocate(Libc.POLLFD_SIZE * 2, 8);
            pollfds.set(ValueLayout.JAVA_INT, 0, kick == null ? -1 : kick.fd());
            pollfds.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            pollfds.set(ValueLayout.JAVA_INT, 8, wake.fd());
            pollfds.set(ValueLayout.JAVA_SHORT, 12, Libc.POLLIN);
            while (!stopping) {
                if (enabled) {
                    String shrunk = watched == null ? null : watched.shrunkRegion();
                    if (shrunk != null) {
                        onFatal.accept("vring " + index + ": " + shrunk);
                        return;
                    }
                    boolean carryOn;
                    if (section != null) {
                        section.enter();
                    }
                    try {
                        carryOn = queue != null || createQueue() ? serviceQueue() : !queueFailed;
                    } finally {
                        if (section != null) {
                            section.exit();
                        }
                    }
                    if (!carryOn) {
                        return;
                    }
                }
                if (stopping) {
                    return;
                }
                pollfds.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
                pollfds.set(ValueLayout.JAVA_SHORT, 14, (short) 0);
                // kick fd -1 (none): poll ignores the entry and the front end is expected to poll-mode; wait on wake only
                Libc.poll(pollfds, 2, kick == null ? 100 : -1);
                wakeups.increment();
                short kickEvents = pollfds.get(ValueLayout.JAVA_SHORT, 6);
                if ((kickEvents & KICK_GONE) != 0) {
                    // a hung-up, failed or closed kick fd stays readable for ever: polling it again would spin
                    LOG.log(System.Logger.Level.WARNING, String.format(java.util.Locale.ROOT,
                        "vring %d: kick fd %d reports poll events 0x%x (%s); the ring stops until the front end "
                            + "sends a new SET_VRING_KICK", index, kick.fd(), kickEvents, pollEventNames(kickEvents)));
                    return;
                }
                if ((kickEvents & Libc.POLLIN) != 0) {
                    kick.drain();
                }
                if ((pollfds.get(ValueLayout.JAVA_SHORT, 14) & Libc.POLLIN) != 0) {
                    wake.drain();
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
     * Creates the device queue.
     *
     * @return true if it exists now; false if a ring area missed in the IOTLB (wait for an
     *     update) or the queue cannot be created ({@link #queueFailed}, the connection is told)
     */
    private boolean createQueue() {
        try {
            queue = factory.create();
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

    /**
     * Handles every available chain, then re-enables notifications.
     *
     * @return false if the queue broke (the connection is told) or a miss needs an update first
     */
    private boolean serviceQueue() throws NativeCallException {
        try {
            while (true) {
                queue.disableNotifications();
                long done = 0;
                long bytes = 0;
                while (!stopping && queue.pop(chain)) {
                    long written = handler.handle(chain);
                    queue.addUsed(chain.head(), written);
                    done++;
                    bytes += written;
                }
                if (done > 0) {
                    chainsCompleted += done;
                    bytesWritten += bytes;
                }
                if (queue.publishUsed()) {
                    call.signal();
                }
                if (stopping || !queue.enableNotifications()) {
                    return true;
                }
            }
        } catch (VirtqueueException e) {
            // publish what was completed before the failure, so the driver does not lose it
            if (queue.publishUsed()) {
                call.signal();
            }
            if (e.error() == RingError.TRANSLATION_MISS && iotlb != null) {
                // nothing was consumed and the IOTLB has sent a MISS: sleep until the UPDATE wakes
                // us (outside the critical section), then pop the same head again
                return true;
            }
            onFatal.accept("vring " + index + ": " + e.getMessage());
            return false;
        }
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

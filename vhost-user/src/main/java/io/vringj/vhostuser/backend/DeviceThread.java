package io.vringj.vhostuser.backend;

import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import java.lang.invoke.VarHandle;
import java.time.Duration;

/**
 * What every device thread of the back end shares, whatever it serves (one vring,
 * {@link QueueWorker}; an rx/tx pair, {@link PairWorker}): its platform thread, the wake-up eventfd
 * it polls beside its kick fds, the enabled and stopping flags the connection thread sets, and a
 * stop that waits a bounded time.
 *
 * <pre>
 *   connection thread:  setEnabled / wakeUp / stopAndJoin   (flags written, then the wake fd signalled)
 *                       wakeUpAfterUpdate                   (skips the signal while the thread spins)
 *   device thread:      run(): reads the flags each time round, sleeps in poll(kicks, wake)
 *                       or busy polls first, with {@link #spinning} set
 * </pre>
 *
 * <p>A thread that busy polls sees an IOTLB update by itself (the IOTLB's epoch, which the UPDATE
 * moves before the connection calls {@link #wakeUpAfterUpdate}), so the connection need not
 * signal it. The rule that loses no update is Dekker's: the connection moves the epoch, fences,
 * then reads {@link #spinning}; the thread clears {@link #spinning}, then reads the epoch once
 * more before it sleeps. One of the two sees the other.
 */
abstract class DeviceThread implements Runnable {
    private static final System.Logger LOG = System.getLogger(DeviceThread.class.getName());

    /** How long {@link #stopAndJoin()} waits for the thread. */
    static final long STOP_TIMEOUT_MILLIS = 5000;

    /** What the thread serves, for logs ("vring 3", "pair 0"). */
    final String what;
    /** Signalled to wake the thread from poll; the thread drains it. */
    final EventFd wake;
    private final Thread thread;
    /** Set by the connection thread; read by the device thread each time round. */
    volatile boolean enabled;
    /** Set by the connection thread; read by the device thread each time round. */
    volatile boolean stopping;
    /** When the UPDATE that woke the thread was applied (0: none pending); written before the wake-up. */
    private volatile long updateAppliedAt;
    /** Where the wake-up latency after that UPDATE goes; written before {@link #updateAppliedAt}. */
    private LatencyCounter updateToWorker;
    /**
     * Set by the device thread while it busy polls (it rechecks the IOTLB epoch after clearing it);
     * read by the connection thread after an update, which then skips the wake-up signal.
     */
    volatile boolean spinning;
    /** When a busy-polling thread found itself unparked (0: not since its last record); device thread only. */
    private long spinResumedAt;

    private static final VarHandle UPDATE_APPLIED_AT;

    static {
        try {
            UPDATE_APPLIED_AT = java.lang.invoke.MethodHandles.lookup().findVarHandle(DeviceThread.class,
                "updateAppliedAt", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * @param threadName the platform thread's name
     * @param what what the thread serves, for logs
     * @param enabled whether it starts enabled
     * @throws NativeCallException if the wake-up eventfd cannot be made
     */
    DeviceThread(String threadName, String what, boolean enabled) throws NativeCallException {
        this.what = what;
        this.enabled = enabled;
        this.wake = EventFd.create();
        this.thread = Thread.ofPlatform().name(threadName).daemon().unstarted(this);
    }

    final void start() {
        thread.start();
    }

    /** Enables or disables what the thread serves ({@code SET_VRING_ENABLE}) and wakes it. */
    final void setEnabled(boolean on) {
        // volatile write: pairs with the read in run()
        enabled = on;
        wakeUp();
    }

    /** Wakes the thread (an IOTLB update arrived, the state changed, or it must stop). */
    final void wakeUp() {
        try {
            wake.signal();
        } catch (NativeCallException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot wake " + what + " worker: " + e.getMessage());
        }
    }

    /**
     * Wakes the thread after an IOTLB UPDATE that answered a miss, so that the thread can tell how
     * long it took to run again ({@link #noteWokenByUpdate()}).
     *
     * @param appliedAt {@link System#nanoTime()} when the UPDATE was applied
     * @param latency where the time until the thread runs again goes
     */
    final void wakeUpAfterUpdate(long appliedAt, LatencyCounter latency) {
        if (appliedAt != 0) {
            updateToWorker = latency;
            // volatile write after the plain one: pairs with the reads in noteWokenByUpdate() and noteSpinResume()
            updateAppliedAt = appliedAt;
        }
        // the update moved the IOTLB epoch before this call; the fence orders that store before the
        // read of spinning (Dekker, with the clear-then-recheck on the device thread: see the class comment)
        VarHandle.fullFence();
        // volatile read: pairs with the write after the spin in the device thread
        if (!spinning) {
            wakeUp();
        }
    }

    /** On the device thread, when busy polling found it unparked: remembers when, for {@link #noteSpinResume()}. */
    final void noteUnparkedWhileSpinning() {
        if (spinResumedAt == 0) {
            spinResumedAt = System.nanoTime();
        }
    }

    /**
     * On the device thread, before it polls or sleeps: records the latency of the UPDATE that
     * unparked it while it busy polled, once the connection has said when it applied it (the
     * connection may say so after the thread already ran on: the latency is then 0).
     */
    final void noteSpinResume() {
        if (spinResumedAt == 0) {
            return;
        }
        // volatile read: pairs with the write in wakeUpAfterUpdate()
        long at = updateAppliedAt;
        if (at != 0) {
            updateAppliedAt = 0;
            updateToWorker.add(Math.max(0, spinResumedAt - at));
            spinResumedAt = 0;
        }
    }

    /**
     * On the device thread, when it parks again: forgets a resume no timed UPDATE claimed, and an
     * UPDATE time no resume claimed if that UPDATE was applied before the pass that parked began
     * (it cannot answer the miss that pass sent). An UPDATE applied since may be the answer: the
     * front end can answer before the device thread gets here, so its time is kept.
     *
     * @param passStartedAt {@link System#nanoTime()} before the pass that parked
     */
    final void forgetSpinResume(long passStartedAt) {
        spinResumedAt = 0;
        // volatile read: pairs with the write in wakeUpAfterUpdate()
        long at = updateAppliedAt;
        if (at != 0 && at - passStartedAt < 0) {
            // clears only that stale time: a newer one the connection writes meanwhile stays
            UPDATE_APPLIED_AT.compareAndSet(this, at, 0L);
        }
    }

    /** On the device thread, after its wake-up fd fired: records the wake-up latency of an UPDATE, if one woke it. */
    final void noteWokenByUpdate() {
        // volatile read: pairs with the write in wakeUpAfterUpdate()
        long at = updateAppliedAt;
        if (at != 0) {
            updateAppliedAt = 0;
            spinResumedAt = 0;
            updateToWorker.add(System.nanoTime() - at);
        }
    }

    /**
     * Stops the thread and waits for it, at most {@link #STOP_TIMEOUT_MILLIS}; once it returns
     * true, everything the thread wrote happens-before the caller's reads (join).
     *
     * @return whether the thread ended in time (false: logged; its connection closes without it)
     */
    final boolean stopAndJoin() {
        // volatile write: pairs with the read in run()
        stopping = true;
        wakeUp();
        boolean interrupted = false;
        long deadline = System.nanoTime() + STOP_TIMEOUT_MILLIS * 1_000_000;
        long left;
        while (thread.isAlive() && (left = deadline - System.nanoTime()) > 0) {
            try {
                thread.join(Duration.ofNanos(left));
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        if (thread.isAlive()) {
            LOG.log(System.Logger.Level.WARNING, what + " worker did not stop within " + STOP_TIMEOUT_MILLIS
                + " ms; its connection closes without it");
            return false;
        }
        wake.close();
        return true;
    }
}

package io.vringj.vhostuser.backend;

import io.vringj.ring.DeviceLoop;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import java.util.concurrent.atomic.LongAdder;

/**
 * The call eventfd of one vring, which the front end may replace at any time
 * ({@code SET_VRING_CALL}): the worker signals through it, the connection thread swaps it.
 * Both take this object's lock, so an fd is never closed while a signal is being written to it.
 */
final class CallNotifier implements DeviceLoop.Notifier, AutoCloseable {
    private final LongAdder droppedTotal;
    private EventFd call;
    private long signals;
    private long dropped;

    /** @param droppedTotal counts dropped interrupts across vrings and connections */
    CallNotifier(LongAdder droppedTotal) {
        this.droppedTotal = droppedTotal;
    }

    /** Replaces the call fd ({@code null}: the front end polls, no interrupts), closing the old one. */
    synchronized void replace(EventFd fd) {
        EventFd old = call;
        call = fd;
        if (old != null) {
            old.close();
        }
    }

    /**
     * Interrupts the driver, if there is a call fd. The fd is non-blocking: a counter the front
     * end let reach its maximum drops the signal instead of blocking the worker.
     */
    synchronized void signal() throws NativeCallException {
        if (call != null) {
            if (call.trySignal()) {
                signals++;
            } else {
                dropped++;
                droppedTotal.increment();
            }
        }
    }

    /**
     * The device loop's notification: as {@link #signal()}; a failed write (not a full counter,
     * which only drops the signal) ends the worker, which closes the connection.
     */
    @Override
    public void notifyDriver() {
        try {
            signal();
        } catch (NativeCallException e) {
            throw new IllegalStateException("cannot signal the call eventfd: " + e.getMessage(), e);
        }
    }

    /** @return how many interrupts were dropped because the call eventfd was full */
    synchronized long dropped() {
        return dropped;
    }

    /** @return how many times the driver was interrupted */
    synchronized long signals() {
        return signals;
    }

    @Override
    public synchronized void close() {
        replace(null);
    }
}

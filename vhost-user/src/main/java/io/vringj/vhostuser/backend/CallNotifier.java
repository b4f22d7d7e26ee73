package io.vringj.vhostuser.backend;

import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;

/**
 * The call eventfd of one vring, which the front end may replace at any time
 * ({@code SET_VRING_CALL}): the worker signals through it, the connection thread swaps it.
 * Both take this object's lock, so an fd is never closed while a signal is being written to it.
 */
final class CallNotifier implements AutoCloseable {
    private EventFd call;
    private long signals;

    /** Replaces the call fd ({@code null}: the front end polls, no interrupts), closing the old one. */
    synchronized void replace(EventFd fd) {
        EventFd old = call;
        call = fd;
        if (old != null) {
            old.close();
        }
    }

    /** Interrupts the driver, if there is a call fd. */
    synchronized void signal() throws NativeCallException {
        if (call != null) {
            call.signal();
            signals++;
        }
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

package io.vringj.vhostuser.channel;

import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Sleeps in {@code poll} on one notification eventfd (a call fd or a kick fd) and a wake-up
 * eventfd of the channel's own, which whoever closes the channel signals so that a sleeper
 * notices at once.
 *
 * <pre>
 *   pollfds: ┌ fd (POLLIN) ┬ wake (POLLIN) ┐   8 bytes each: int fd, short events, short revents
 * </pre>
 *
 * <p>{@link #await} belongs to the application's thread; {@link #wake()} may be called from any
 * thread. Allocation-free.
 */
final class EventWait implements AutoCloseable {
    private static final long REVENTS = 6;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment pollfds = arena.allocate(Libc.POLLFD_SIZE * 2, 8);
    private final MemorySegment sink = arena.allocate(8, 8);
    private final EventFd wake;
    /** Guarded by this. */
    private boolean closed;

    EventWait() throws NativeCallException {
        this.wake = EventFd.create();
        pollfds.set(ValueLayout.JAVA_INT, Libc.POLLFD_SIZE, wake.fd());
        pollfds.set(ValueLayout.JAVA_SHORT, Libc.POLLFD_SIZE + 4, Libc.POLLIN);
        pollfds.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
    }

    /**
     * Sleeps until {@code fd} is readable, {@link #wake()} was called, or the time-out passed;
     * drains whichever eventfd fired.
     *
     * @param fd the eventfd to wait on, non-blocking (the front end's call fds and the back end's
     *     kick fds are)
     * @param timeoutNanos the longest sleep (rounded up to milliseconds)
     * @return whether {@code fd} fired (also when it reports an error: the caller looks again)
     * @throws NativeCallException if poll or read failed
     */
    boolean await(int fd, long timeoutNanos) throws NativeCallException {
        pollfds.set(ValueLayout.JAVA_INT, 0, fd);
        pollfds.set(ValueLayout.JAVA_SHORT, REVENTS, (short) 0);
        pollfds.set(ValueLayout.JAVA_SHORT, Libc.POLLFD_SIZE + REVENTS, (short) 0);
        // at most 365 days of nanoseconds: the millisecond count fits an int
        int millis = (int) Math.min(Integer.MAX_VALUE, (timeoutNanos + 999_999) / 1_000_000);
        Libc.poll(pollfds, 2, millis);
        short events = pollfds.get(ValueLayout.JAVA_SHORT, REVENTS);
        if (pollfds.get(ValueLayout.JAVA_SHORT, Libc.POLLFD_SIZE + REVENTS) != 0) {
            wake.drain();
        }
        if ((events & Libc.POLLIN) != 0) {
            // non-blocking: reads and resets the counter, or fails with EAGAIN if another reader was first
            Libc.read(fd, sink, 8);
        }
        return events != 0;
    }

    /**
     * Resets {@code fd}'s counter without waiting: a notification left from before (while
     * notifications were off, or from a wake-up already handled) must not end the next sleep.
     * Call before turning notifications on; one sent after that is not lost.
     *
     * @param fd a non-blocking eventfd
     * @throws NativeCallException if read failed other than for an empty counter
     */
    void drain(int fd) throws NativeCallException {
        Libc.read(fd, sink, 8);
    }

    /** Wakes a sleeper in {@link #await} (or makes its next await return at once); any thread; nothing once closed. */
    synchronized void wake() {
        if (!closed) {
            wake.wakeQuietly();
        }
    }

    /**
     * Closes the wake-up fd and frees the poll array; idempotent.
     *
     * @throws IllegalStateException if a thread still sleeps in {@link #await} (its poll holds the array)
     */
    @Override
    public synchronized void close() {
        if (!closed) {
            arena.close();
            closed = true;
            wake.close();
        }
    }
}

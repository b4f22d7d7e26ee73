package io.vringj.vhostuser;

import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * An eventfd: a kernel counter another process (QEMU, KVM) or thread signals and we wait on.
 * {@link #signal()} and {@link #drain()} do not allocate. Thread-safe: the counter is the
 * kernel's; the 8-byte buffers are per call site thread (one writer, one reader by design:
 * a worker signals its call fd, a worker drains its kick fd).
 */
public final class EventFd implements AutoCloseable {
    private final int fd;
    private final MemorySegment one;
    private final MemorySegment sink;
    private final Arena arena = Arena.ofShared();
    private boolean closed;

    private EventFd(int fd) {
        this.fd = fd;
        this.one = arena.allocate(ValueLayout.JAVA_LONG);
        this.one.set(ValueLayout.JAVA_LONG, 0, 1L);
        this.sink = arena.allocate(ValueLayout.JAVA_LONG);
    }

    /**
     * @return a new non-blocking eventfd
     * @throws NativeCallException if {@code eventfd} failed
     */
    public static EventFd create() throws NativeCallException {
        return new EventFd(Libc.eventfd(Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK));
    }

    /**
     * Wraps an eventfd received from the front end; this object now owns it.
     *
     * @param fd the fd
     * @return the wrapper
     */
    public static EventFd adopt(int fd) {
        return new EventFd(fd);
    }

    /**
     * Wraps an eventfd received from a peer and puts it in non-blocking mode, so a peer that lets
     * its counter reach the maximum costs a dropped signal ({@link #trySignal()} returns false),
     * never a blocked thread. This object now owns the fd, also when this method throws.
     *
     * @param fd the fd
     * @return the wrapper
     * @throws NativeCallException if the fd's flags cannot be read or set (e.g. it is not open)
     */
    public static EventFd adoptNonBlocking(int fd) throws NativeCallException {
        try {
            Libc.setNonBlocking(fd);
        } catch (NativeCallException e) {
            Libc.closeQuietly(fd);
            throw e;
        }
        return new EventFd(fd);
    }

    /** @return the fd */
    public int fd() {
        return fd;
    }

    /**
     * Adds 1 to the counter, waking whoever polls it.
     *
     * @throws NativeCallException if {@code write} failed
     */
    public void signal() throws NativeCallException {
        // -1: the counter is at its maximum, so the reader is already woken
        Libc.write(fd, one, 8);
    }

    /**
     * Adds 1 to the counter unless that would block: on a non-blocking fd whose counter is at
     * its maximum the signal is dropped (the reader has not drained and is already woken).
     *
     * @return false if the signal was dropped
     * @throws NativeCallException if {@code write} failed otherwise
     */
    public boolean trySignal() throws NativeCallException {
        return Libc.write(fd, one, 8) == 8;
    }

    /** As {@link #signal()}, logging instead of throwing (wake-ups on error paths). */
    public void wakeQuietly() {
        try {
            signal();
        } catch (NativeCallException e) {
            System.getLogger(EventFd.class.getName()).log(System.Logger.Level.WARNING,
                "cannot signal eventfd " + fd + ": " + e.getMessage());
        }
    }

    /**
     * Reads and resets the counter if it is non-zero.
     *
     * @return the counter value; 0 if it was zero (non-blocking fds) or the fd is blocking and was reset
     * @throws NativeCallException if {@code read} failed
     */
    public long drain() throws NativeCallException {
        long n = Libc.read(fd, sink, 8);
        return n == 8 ? sink.get(ValueLayout.JAVA_LONG, 0) : 0;
    }

    /** Closes the fd. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            Libc.closeQuietly(fd);
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "EventFd[" + fd + "]";
    }
}

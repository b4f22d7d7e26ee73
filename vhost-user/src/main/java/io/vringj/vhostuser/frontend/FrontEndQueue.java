package io.vringj.vhostuser.frontend;

import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One vring of a {@link VhostUserFrontEnd}, as its driver sees it: the ring-core
 * {@link DriverQueue} over ring memory in the shared guest memory, and the two eventfds the back
 * end was given (kick: we signal it after publishing; call: the back end signals it after using
 * buffers).
 *
 * <pre>
 *   ring.add(chain) ... → publish()   (kicks when the back end wants a kick)
 *   ring.pollUsed() == NONE → ring.enableInterrupts() ? poll again : awaitCall(timeout)
 * </pre>
 *
 * <p>To map buffers through DMA ops, wrap the ring:
 * {@code new DmaDriverQueue(queue.driverQueue(), frontEnd.dma(), maxBuffers)}, and kick with
 * {@code if (dmaQueue.publish()) queue.kick();}.
 *
 * <p>The data path ({@link #publish()}, {@link #kick()}, {@link #awaitCall(int)}) belongs to the
 * driver thread and allocates nothing. The object lives as long as its connection: after the
 * front end is closed or reconnected, its ring memory is unmapped and every access throws
 * {@link IllegalStateException}.
 */
public final class FrontEndQueue {
    private final int index;
    private final DriverQueue queue;
    private final RingAddresses addresses;
    private final EventFd kick;
    private final EventFd call;
    private final MemorySegment callPoll;
    private final int initialVringBase;
    /** Written by the control thread at stop; volatile: the driver thread's read pairs with that write. */
    private volatile int vringBase;
    /** Written by the control thread at start/stop; volatile: the driver thread's read pairs with those writes. */
    private volatile boolean running;

    FrontEndQueue(int index, DriverQueue queue, RingAddresses addresses, EventFd kick, EventFd call, Arena arena,
                  int initialVringBase) {
        this.index = index;
        this.queue = queue;
        this.addresses = addresses;
        this.kick = kick;
        this.call = call;
        this.initialVringBase = initialVringBase;
        this.vringBase = initialVringBase;
        this.callPoll = arena.allocate(Libc.POLLFD_SIZE, 8);
        callPoll.set(ValueLayout.JAVA_INT, 0, call.fd());
        callPoll.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
    }

    /** @return the vring index */
    public int index() {
        return index;
    }

    /** @return the driver side of the ring (owned by the caller's driver thread) */
    public DriverQueue driverQueue() {
        return queue;
    }

    /** @return the guest-physical addresses of the ring's three areas */
    public RingAddresses ringAddresses() {
        return addresses;
    }

    /**
     * Publishes what was added ({@link DriverQueue#publish()}) and kicks the back end if it asked for
     * a kick.
     *
     * @return whether a kick was sent
     * @throws NativeCallException if the kick could not be written
     */
    public boolean publish() throws NativeCallException {
        if (queue.publish()) {
            kick.signal();
            return true;
        }
        return false;
    }

    /**
     * Signals the kick eventfd (after a publish whose notification decision said so).
     *
     * @throws NativeCallException if the write failed
     */
    public void kick() throws NativeCallException {
        kick.signal();
    }

    /**
     * Waits until the back end signals the call eventfd, then resets it.
     *
     * @param timeoutMillis how long to wait; 0 only checks, -1 waits without bound
     * @return whether the back end had signalled
     * @throws NativeCallException if poll or read failed
     */
    public boolean awaitCall(int timeoutMillis) throws NativeCallException {
        callPoll.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
        if (Libc.poll(callPoll, 1, timeoutMillis) == 0) {
            return false;
        }
        return call.drain() != 0;
    }

    /** @return the kick eventfd (to poll or hand on); owned by this queue */
    public int kickFd() {
        return kick.fd();
    }

    /** @return the call eventfd (to poll together with others); owned by this queue */
    public int callFd() {
        return call.fd();
    }

    /**
     * @return the vring base: what {@code SET_VRING_BASE} sent at the last start, or what
     *     {@code GET_VRING_BASE} returned at the last stop (split: the back end's last avail
     *     index; packed: avail position and wrap counter in bits 0-15, used ones in bits 16-31)
     */
    public int vringBase() {
        return vringBase;
    }

    /** @return the vring base of a queue that never ran (split: 0; packed: 0x80008000, both wrap counters 1) */
    public int initialVringBase() {
        return initialVringBase;
    }

    /** @return whether the back end is running this vring (started and not stopped) */
    public boolean isRunning() {
        return running;
    }

    void started() {
        running = true;
    }

    void stopped(int base) {
        vringBase = base;
        running = false;
    }

    void close() {
        running = false;
        kick.close();
        call.close();
    }

    @Override
    public String toString() {
        return "FrontEndQueue[" + index + ", size " + queue.queueSize() + ", " + addresses + ", kick " + kick.fd()
            + ", call " + call.fd() + (running ? ", running" : "") + "]";
    }
}

package io.vringj.dma;

import java.lang.foreign.MemorySegment;

/**
 * One buffer of a {@link DmaBufferPool}: guest memory that stays mapped for the device from the
 * pool's creation to its close, so a request that offers it costs no {@link DmaOps} call.
 *
 * <pre>
 *   IN_POOL ──pool.take()──► HELD ──queue.addPremapped()──► IN_FLIGHT
 *      ▲                      │  ▲                              │
 *      └────pool.give()───────┘  └──queue.pollUsed() / detachUnused()
 * </pre>
 *
 * <p>While HELD the caller owns the bytes of {@link #segment()} and says with
 * {@link #setLength(long)} how many of them (from the start) the next request offers. While
 * IN_FLIGHT the device owns them: the buffer cannot be offered again, given back, or resized.
 *
 * <p>Not thread-safe: used by the thread that owns its pool.
 */
public final class DmaBuffer {
    static final byte IN_POOL = 0;
    static final byte HELD = 1;
    static final byte IN_FLIGHT = 2;

    final DmaBufferPool pool;
    private final int index;
    private final MemorySegment segment;
    final long busAddress;
    /** Whether handing the bytes over needs a sync ({@link DmaOps#needsSync}); fixed at map time. */
    final boolean needsSync;
    /**
     * The pool's ops if its direction lets the device read the buffer (TO_DEVICE or
     * BIDIRECTIONAL), else null: the queue's per-request check that a buffer offered readable was
     * mapped through its own ops and may be read is one load and one compare, fixed at map time.
     */
    final DmaOps readableThrough;
    /** The same for a buffer offered writable (FROM_DEVICE or BIDIRECTIONAL), else null. */
    final DmaOps writableThrough;
    /** IN_POOL, HELD or IN_FLIGHT; written by the pool and the queue on the owning thread. */
    byte state;
    /** Bytes offered from the start; set by {@link #setLength} and reset by the pool's take. */
    long length;

    DmaBuffer(DmaBufferPool pool, int index, MemorySegment segment, long busAddress, boolean needsSync) {
        this.pool = pool;
        this.index = index;
        this.segment = segment;
        this.busAddress = busAddress;
        this.needsSync = needsSync;
        DmaDirection direction = pool.direction();
        this.readableThrough = direction != DmaDirection.FROM_DEVICE ? pool.dma() : null;
        this.writableThrough = direction != DmaDirection.TO_DEVICE ? pool.dma() : null;
        this.length = segment.byteSize();
    }

    /**
     * @param toDevice the role it is offered in: device-readable (true) or device-writable
     * @return the ops it was mapped through if its pool's direction allows that role, else null
     */
    DmaOps offerableThrough(boolean toDevice) {
        return toDevice ? readableThrough : writableThrough;
    }

    /** @return the pool this buffer belongs to */
    public DmaBufferPool pool() {
        return pool;
    }

    /** @return its index in the pool, 0..size-1 */
    public int index() {
        return index;
    }

    /** @return the CPU's view of the whole buffer ({@link #capacity()} bytes) */
    public MemorySegment segment() {
        return segment;
    }

    /** @return where the device finds the buffer's first byte */
    public long busAddress() {
        return busAddress;
    }

    /** @return the buffer's size in bytes */
    public long capacity() {
        return segment.byteSize();
    }

    /** @return the bytes, from the start, the next request offers (the capacity unless set) */
    public long length() {
        return length;
    }

    /**
     * Sets how many bytes, from the start, the next request offers the device.
     *
     * @param length 1..{@link #capacity()}
     * @return this buffer
     * @throws IllegalArgumentException if {@code length} is out of range
     * @throws IllegalStateException if the buffer is in flight (the device owns it)
     */
    public DmaBuffer setLength(long length) {
        if (state == IN_FLIGHT || length < 1 || length > segment.byteSize()) {
            throw refuseLength(length);
        }
        this.length = length;
        return this;
    }

    /** The error {@link #setLength} throws, built off its hot path so that the setter stays small enough to inline. */
    private RuntimeException refuseLength(long length) {
        if (state == IN_FLIGHT) {
            return new IllegalStateException("buffer " + index + " of " + pool + " is in flight; its length is fixed "
                + "until the device returns it");
        }
        return new IllegalArgumentException("length " + length + " of buffer " + index + " is outside 1.."
            + segment.byteSize() + " (its capacity)");
    }

    /** @return whether the device owns the buffer now (offered and not yet returned) */
    public boolean inFlight() {
        return state == IN_FLIGHT;
    }

    /** @return whether the buffer is in its pool (not taken) */
    public boolean inPool() {
        return state == IN_POOL;
    }

    /** For messages: what state the buffer is in, in words. */
    String describeState() {
        return switch (state) {
            case IN_POOL -> "in its pool (take() it first)";
            case IN_FLIGHT -> "in flight (the device owns it until it is used)";
            default -> "held by the caller";
        };
    }

    @Override
    public String toString() {
        return String.format("DmaBuffer[%d, bus=0x%x, %d of %d bytes, %s]", index, busAddress, length,
            segment.byteSize(), state == IN_POOL ? "in pool" : state == IN_FLIGHT ? "in flight" : "held");
    }
}

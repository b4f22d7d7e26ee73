package io.vringj.dma;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * DMA buffers mapped once and reused for every request, after Linux's {@code page_pool} with
 * {@code PP_FLAG_DMA_MAP} and a virtqueue in premapped mode ({@code virtqueue_set_dma_premapped},
 * virtio-net since 6.5): the map cost (IOVA allocation, page-table writes, IOTLB misses and
 * invalidations, bounce-slot search) is paid when the pool is built, not per request.
 *
 * <pre>
 *   DmaBufferPool.map(dma, memory, bufferSize, dir)   carves the caller's guest memory into
 *                                                     buffers and maps each once: dma.map(buffer, dir)
 *   DmaBufferPool.allocate(dma, bufferSize, count)    carves memory from dma.allocCoherent (the
 *                                                     shared region of a protected guest: never
 *                                                     bounced, never synced), BIDIRECTIONAL
 *
 *   take() → buffer, or null when every buffer is out (never blocks)
 *      write buffer.segment(), buffer.setLength(n)
 *   DmaDriverQueue.addPremapped(buffers, readable, writable, token)
 *      no map; syncForDevice only where dma.needsSync (a bounced mapping)
 *   DmaDriverQueue.pollUsed()
 *      no unmap; syncForCpu only where dma.needsSync, up to the used length
 *   give(buffer)     back into the pool (or offer it again straight away)
 *   close()          every mapping unmapped, every coherent chunk freed
 * </pre>
 *
 * <p>Buffers are {@value #ALIGNMENT}-byte aligned strides of at least the buffer size, so no two
 * buffers share a cache line. Coherent memory is taken in chunks of at most
 * {@value #COHERENT_CHUNK} bytes (the largest coherent allocation a swiotlb restricted pool
 * gives), each holding whole buffers.
 *
 * <p>Misuse is refused with a message naming the buffer and the rule: a buffer given back twice,
 * to another pool, or while in flight; a buffer offered while in its pool or already in flight.
 * An exhausted pool is a {@code null} from {@link #take()} and a count in {@link #exhausted()},
 * never a wait.
 *
 * <p>Not thread-safe: owned by the driver thread, like the {@link DmaDriverQueue}s it feeds.
 * {@link #take()} and {@link #give(DmaBuffer)} allocate nothing.
 */
public final class DmaBufferPool implements AutoCloseable {
    /** Alignment of every buffer, a cache line. */
    public static final long ALIGNMENT = 64;
    /** Largest coherent allocation the pool asks for at once: 256 KiB. */
    public static final long COHERENT_CHUNK = 256L << 10;

    private final DmaOps dma;
    private final DmaDirection direction;
    private final long bufferSize;
    private final boolean coherent;
    private final DmaBuffer[] buffers;
    private final CoherentBuffer[] chunks;
    /** Indices of the buffers in the pool; the top is taken first (the most recently given, cache-warm). */
    private final int[] free;
    private int freeCount;
    private long exhausted;
    private boolean closed;

    private DmaBufferPool(DmaOps dma, DmaDirection direction, long bufferSize, boolean coherent, int count,
                          int chunkCount) {
        this.dma = dma;
        this.direction = direction;
        this.bufferSize = bufferSize;
        this.coherent = coherent;
        this.buffers = new DmaBuffer[count];
        this.chunks = new CoherentBuffer[chunkCount];
        this.free = new int[count];
    }

    /**
     * Carves {@code memory} into buffers of {@code bufferSize} bytes and maps each one once
     * through {@code dma}: over an IOMMU each gets its IOVA now, over swiotlb each is bounced
     * into slots it keeps (and is synced per request, as {@link DmaOps#needsSync} says).
     *
     * @param dma what maps the buffers, the same ops the queues they go to map through
     * @param memory guest memory that {@code dma} can map, used for nothing else while the pool lives
     * @param bufferSize bytes per buffer, 1..2^32-1
     * @param direction how every buffer is mapped: {@code TO_DEVICE} buffers may only be offered
     *     readable, {@code FROM_DEVICE} only writable, {@code BIDIRECTIONAL} either way
     * @return the pool, every buffer in it
     * @throws DmaMappingException if a buffer cannot be mapped; nothing stays mapped
     * @throws IllegalArgumentException if the buffer size is out of range or {@code memory}
     *     holds no whole buffer
     */
    public static DmaBufferPool map(DmaOps dma, MemorySegment memory, long bufferSize, DmaDirection direction)
        throws DmaMappingException {
        Objects.requireNonNull(dma, "dma");
        Objects.requireNonNull(memory, "memory");
        Objects.requireNonNull(direction, "direction");
        long stride = stride(bufferSize);
        // the last buffer needs only bufferSize bytes, not a whole stride
        long count = memory.byteSize() < bufferSize ? 0 : (memory.byteSize() - bufferSize) / stride + 1;
        if (count < 1 || count > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("memory of " + memory.byteSize() + " bytes holds " + count
                + " buffers of " + bufferSize + " bytes; a pool needs 1.." + (Integer.MAX_VALUE - 8));
        }
        DmaBufferPool pool = new DmaBufferPool(dma, direction, bufferSize, false, (int) count, 0);
        int mapped = 0;
        try {
            for (; mapped < count; mapped++) {
                MemorySegment slice = memory.asSlice(mapped * stride, bufferSize);
                long bus = dma.map(slice, direction);
                pool.add(new DmaBuffer(pool, mapped, slice, bus, dma.needsSync(bus)));
            }
        } catch (DmaMappingException | RuntimeException e) {
            for (int i = mapped - 1; i >= 0; i--) {
                dma.unmap(pool.buffers[i].busAddress(), bufferSize, direction);
            }
            throw e;
        }
        return pool;
    }

    /**
     * Takes {@code count} buffers of {@code bufferSize} bytes from coherent memory
     * ({@link DmaOps#allocCoherent}): memory the device reaches with no map, no bounce and no sync.
     * In a protected guest that is its shared region, so the buffers cost no copy at all.
     *
     * @param dma whose coherent allocator the memory comes from, the same ops the queues map through
     * @param bufferSize bytes per buffer, 1..{@value #COHERENT_CHUNK}
     * @param count how many buffers, at least 1
     * @return the pool, every buffer in it; its direction is {@code BIDIRECTIONAL}
     * @throws DmaMappingException if coherent memory runs out; what was allocated is freed
     * @throws IllegalArgumentException if a size or the count is out of range
     */
    public static DmaBufferPool allocate(DmaOps dma, long bufferSize, int count) throws DmaMappingException {
        Objects.requireNonNull(dma, "dma");
        long stride = stride(bufferSize);
        if (bufferSize > COHERENT_CHUNK) {
            throw new IllegalArgumentException("coherent buffer size " + bufferSize + " is above the "
                + COHERENT_CHUNK + "-byte chunk a coherent allocation may be");
        }
        if (count < 1 || count > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("buffer count " + count + " is outside 1.." + (Integer.MAX_VALUE - 8));
        }
        // the last buffer of a chunk needs only bufferSize bytes: (COHERENT_CHUNK - bufferSize) / stride + 1 fit
        int perChunk = (int) ((COHERENT_CHUNK - bufferSize) / stride + 1);
        int chunkCount = (count + perChunk - 1) / perChunk;
        DmaBufferPool pool = new DmaBufferPool(dma, DmaDirection.BIDIRECTIONAL, bufferSize, true, count, chunkCount);
        int allocated = 0;
        try {
            for (; allocated < chunkCount; allocated++) {
                int inChunk = Math.min(perChunk, count - allocated * perChunk);
                CoherentBuffer chunk = dma.allocCoherent((inChunk - 1) * stride + bufferSize);
                pool.chunks[allocated] = chunk;
                for (int i = 0; i < inChunk; i++) {
                    int index = allocated * perChunk + i;
                    pool.add(new DmaBuffer(pool, index, chunk.memory().asSlice(i * stride, bufferSize),
                        chunk.busAddress() + i * stride, false));
                }
            }
        } catch (DmaMappingException | RuntimeException e) {
            for (int c = 0; c < chunkCount; c++) {
                if (pool.chunks[c] != null) {
                    dma.freeCoherent(pool.chunks[c]);
                }
            }
            throw e;
        }
        return pool;
    }

    private static long stride(long bufferSize) {
        if (bufferSize < 1 || bufferSize > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException("buffer size " + bufferSize + " is outside 1..2^32-1 (one descriptor)");
        }
        return (bufferSize + ALIGNMENT - 1) & -ALIGNMENT;
    }

    private void add(DmaBuffer b) {
        buffers[b.index()] = b;
        // filled so that buffer 0 is on top: take() hands them out in index order at first
        free[buffers.length - 1 - b.index()] = b.index();
        freeCount++;
    }

    /**
     * Takes a buffer out of the pool; the caller holds it until it gives it back (or offers it).
     *
     * @return a buffer, its length reset to its capacity; or {@code null} if every buffer is out
     *     (counted in {@link #exhausted()})
     * @throws IllegalStateException if the pool is closed
     */
    public DmaBuffer take() {
        if (closed) {
            throw closedError();
        }
        if (freeCount == 0) {
            exhausted++;
            return null;
        }
        DmaBuffer b = buffers[free[--freeCount]];
        b.state = DmaBuffer.HELD;
        // what setLength(bufferSize) would do: a buffer in the pool is not in flight, and
        // bufferSize is its capacity, so neither of setLength's checks can fail here
        b.length = bufferSize;
        return b;
    }

    /** Built off {@link #take()}'s hot path, which stays small enough to inline. */
    private IllegalStateException closedError() {
        return new IllegalStateException(this + " is closed");
    }

    /**
     * Puts a held buffer back into the pool. Its mapping stays: the next {@link #take()} may hand
     * it out again at once.
     *
     * @param buffer a buffer this pool handed out and the device has returned
     * @throws IllegalArgumentException if it belongs to another pool, or is already in the pool
     *     (given back twice)
     * @throws IllegalStateException if it is in flight (the device still owns it)
     */
    public void give(DmaBuffer buffer) {
        // one test on the hot path; refuseGive says which rule was broken
        if (buffer.pool != this || buffer.state != DmaBuffer.HELD) {
            throw refuseGive(buffer);
        }
        buffer.state = DmaBuffer.IN_POOL;
        free[freeCount++] = buffer.index();
    }

    /** The error {@link #give} throws for a buffer that is not held or not this pool's. */
    private RuntimeException refuseGive(DmaBuffer buffer) {
        if (buffer.pool() != this) {
            return new IllegalArgumentException(buffer + " belongs to " + buffer.pool() + ", not to " + this);
        }
        if (buffer.state == DmaBuffer.IN_POOL) {
            return new IllegalArgumentException(buffer + " is already in its pool (given back twice)");
        }
        return new IllegalStateException(buffer + " is in flight; give it back after the device returns it");
    }

    /** @return the ops the buffers are mapped through (queues they go to must map through the same) */
    public DmaOps dma() {
        return dma;
    }

    /** @return how every buffer is mapped */
    public DmaDirection direction() {
        return direction;
    }

    /** @return bytes per buffer */
    public long bufferSize() {
        return bufferSize;
    }

    /** @return whether the buffers are coherent memory (never synced) rather than streaming mappings */
    public boolean isCoherent() {
        return coherent;
    }

    /** @return how many buffers the pool has */
    public int size() {
        return buffers.length;
    }

    /** @return how many buffers are in the pool now */
    public int available() {
        return freeCount;
    }

    /** @return how many {@link #take()} calls found the pool empty */
    public long exhausted() {
        return exhausted;
    }

    /**
     * @param index 0..{@link #size()}-1
     * @return that buffer, whatever its state (for callers that keep their own free lists)
     */
    public DmaBuffer buffer(int index) {
        return buffers[Objects.checkIndex(index, buffers.length)];
    }

    /**
     * Unmaps every buffer (or frees the coherent memory). Every buffer must be back in the pool.
     *
     * @throws IllegalStateException if buffers are still out; nothing is unmapped then
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        if (freeCount != buffers.length) {
            int inFlight = 0;
            for (DmaBuffer b : buffers) {
                inFlight += b.state == DmaBuffer.IN_FLIGHT ? 1 : 0;
            }
            throw new IllegalStateException(this + " cannot close: " + (buffers.length - freeCount)
                + " buffers are out (" + inFlight + " in flight); give them back first");
        }
        closed = true;
        if (coherent) {
            for (CoherentBuffer c : chunks) {
                dma.freeCoherent(c);
            }
        } else {
            for (DmaBuffer b : buffers) {
                dma.unmap(b.busAddress(), bufferSize, direction);
            }
        }
    }

    @Override
    public String toString() {
        return "DmaBufferPool[" + buffers.length + " x " + bufferSize + " B " + (coherent ? "coherent" : direction)
            + ", " + freeCount + " in pool" + (closed ? ", closed" : "") + "]";
    }
}

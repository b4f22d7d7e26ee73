package io.vringj.dma;

import io.vringj.ring.BufferChain;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.SplitRing;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * The glue between a caller's buffers and a {@link DriverQueue}: a virtqueue run through
 * {@link DmaOps}, as Linux's {@code virtqueue_add_sgs} / {@code virtqueue_get_buf} do when
 * {@code vring_use_dma_api()} is true.
 *
 * <pre>
 *   add(buffers, readable, writable, token)
 *     each readable buffer  → dma.map(buffer, TO_DEVICE)     ┐ remembered by head
 *     each writable buffer  → dma.map(buffer, FROM_DEVICE)   ┘ (preallocated arrays)
 *     [indirect: writeIndirectTable → dma.map(table, TO_DEVICE) → addIndirect]
 *     queue.add(premapped bus addresses) → head
 *   publish()                → kick the device if true
 *   pollUsed() → head        each mapping of that head → dma.unmap (the CPU now sees what
 *                            the device wrote), then usedLength() / usedToken()
 * </pre>
 *
 * <p>Nothing is half done: if a map fails part-way, every mapping made for that add is
 * unmapped again (newest first) and the ring is untouched; if the ring has no room, the add
 * maps nothing (or unmaps what it mapped) and returns {@link DriverQueue#NO_ROOM}.
 *
 * <p>{@link DmaOps#unmap} ends a mapping with the CPU seeing what the device wrote (for a
 * bouncing {@code DmaOps} that is where the copy back happens), so no separate
 * {@code syncForCpu} is issued before it; that would copy twice.
 *
 * <p>Indirect tables, when enabled, live in caller-supplied table memory in guest memory: one
 * table of {@code 16 * maxBuffers} bytes per possible in-flight chain (Q of them), taken from a
 * free stack so no allocation happens per request. A table is mapped whole, whatever the
 * request's length; its ring descriptor gives the device the length actually used.
 *
 * <p>Not thread-safe: owned by the driver thread, like the {@link DriverQueue} it wraps.
 * Adding, publishing and polling allocate nothing.
 */
public final class DmaDriverQueue {
    /** Bytes of one descriptor in an indirect table [virtio 2.7.5]. */
    private static final long DESCRIPTOR_SIZE = SplitRing.DESC_SIZE;

    private final DriverQueue queue;
    private final DmaOps dma;
    private final int maxBuffers;
    private final BufferChain chain;

    // mappings of each in-flight head: slot [head * maxBuffers + i]
    private final long[] busAddresses;
    private final long[] lengths;
    private final DmaDirection[] directions;
    private final int[] mappedCount;
    private final Object[] tokens;
    /** Indirect table index held by each head, or -1. */
    private final int[] tableOfHead;

    // indirect tables: per table its CPU view and, while in flight, its bus address
    private final MemorySegment[] tables;
    private final int[] freeTables;
    private int freeTableCount;
    private final long[] tableBus;

    // scratch for the add in progress: bus addresses before the head is known
    private final long[] scratchBus;

    private Object lastToken;
    private long lastUsedLength;

    /**
     * A mapped driver queue without indirect tables.
     *
     * @param queue the ring's driver side (owned by this object from now on)
     * @param dma how buffers are mapped for the device
     * @param maxBuffers the most buffers one request may have, 1..Q
     */
    public DmaDriverQueue(DriverQueue queue, DmaOps dma, int maxBuffers) {
        this(queue, dma, maxBuffers, null);
    }

    /**
     * A mapped driver queue that can also offer requests through indirect tables.
     *
     * @param queue the ring's driver side (owned by this object from now on)
     * @param dma how buffers and tables are mapped for the device
     * @param maxBuffers the most buffers one request may have, 1..Q
     * @param tableMemory guest memory for Q indirect tables of {@code 16 * maxBuffers} bytes
     *     each, 16-byte aligned, or {@code null} for no indirect tables; it must stay
     *     reachable through {@code dma} (the tables are mapped {@code TO_DEVICE})
     * @throws IllegalArgumentException if {@code maxBuffers} is out of range, or
     *     {@code tableMemory} is too small or misaligned
     * @throws IllegalStateException if table memory is given but {@code VIRTIO_F_INDIRECT_DESC}
     *     was not negotiated
     */
    public DmaDriverQueue(DriverQueue queue, DmaOps dma, int maxBuffers, MemorySegment tableMemory) {
        this.queue = Objects.requireNonNull(queue, "queue");
        this.dma = Objects.requireNonNull(dma, "dma");
        int q = queue.queueSize();
        if (maxBuffers < 1 || maxBuffers > q) {
            throw new IllegalArgumentException("maxBuffers " + maxBuffers + " is outside 1.." + q + " (the queue size)");
        }
        this.maxBuffers = maxBuffers;
        this.chain = new BufferChain(maxBuffers);
        // q * maxBuffers <= 32768 * 32768 = 2^30: fits an int
        this.busAddresses = new long[q * maxBuffers];
        this.lengths = new long[q * maxBuffers];
        this.directions = new DmaDirection[q * maxBuffers];
        this.mappedCount = new int[q];
        this.tokens = new Object[q];
        this.tableOfHead = new int[q];
        Arrays.fill(tableOfHead, -1);
        this.scratchBus = new long[maxBuffers];
        if (tableMemory == null) {
            tables = new MemorySegment[0];
            freeTables = new int[0];
            tableBus = new long[0];
        } else {
            if (!VirtioFeatures.has(queue.features(), VirtioFeatures.INDIRECT_DESC)) {
                throw new IllegalStateException("indirect tables need VIRTIO_F_INDIRECT_DESC (bit 28), which was not "
                    + "negotiated (features 0x" + Long.toHexString(queue.features()) + ")");
            }
            long tableSize = DESCRIPTOR_SIZE * maxBuffers;
            if (tableMemory.byteSize() < tableSize * q) {
                throw new IllegalArgumentException("indirect table memory of " + tableMemory.byteSize()
                    + " bytes is too small: " + q + " tables of " + tableSize + " bytes need " + tableSize * q);
            }
            if (tableMemory.address() % DESCRIPTOR_SIZE != 0) {
                throw new IllegalArgumentException("indirect table memory at native address 0x"
                    + Long.toHexString(tableMemory.address()) + " is not 16-byte aligned");
            }
            tables = new MemorySegment[q];
            freeTables = new int[q];
            tableBus = new long[q];
            for (int t = 0; t < q; t++) {
                tables[t] = tableMemory.asSlice(t * tableSize, tableSize);
                freeTables[t] = q - 1 - t;
            }
            freeTableCount = q;
        }
    }

    /** @return the driver queue this object drives */
    public DriverQueue queue() {
        return queue;
    }

    /** @return the DMA ops buffers are mapped through */
    public DmaOps dma() {
        return dma;
    }

    /** @return the most buffers one request may have */
    public int maxBuffers() {
        return maxBuffers;
    }

    /** @return whether this queue was given memory for indirect tables */
    public boolean supportsIndirect() {
        return tables.length > 0;
    }

    /**
     * Maps a request's buffers and offers them as one chain of direct descriptors.
     *
     * @param buffers the buffers: {@code readable} device-readable ones first, then
     *     {@code writable} device-writable ones; each inside the memory {@code dma} serves
     * @param readable how many of {@code buffers} (from index 0) the device reads
     * @param writable how many after them the device writes
     * @param token what {@link #usedToken()} gives back when this request returns; may be null
     * @return the head, or {@link DriverQueue#NO_ROOM} (nothing stays mapped)
     * @throws DmaMappingException if a buffer cannot be mapped; nothing stays mapped and the
     *     ring is unchanged
     * @throws IllegalArgumentException if the counts are out of range or a buffer is longer than
     *     a descriptor can describe
     * @throws VirtqueueException if the queue is broken
     */
    public int add(MemorySegment[] buffers, int readable, int writable, Object token)
        throws DmaMappingException, VirtqueueException {
        int n = checkCounts(buffers, readable, writable);
        if (queue.numFree() < n) {
            return DriverQueue.NO_ROOM;
        }
        mapAll(buffers, readable, n);
        int head;
        try {
            head = queue.add(chain);
        } catch (VirtqueueException | RuntimeException e) {
            unmapScratch(buffers, readable, n);
            throw e;
        }
        if (head == DriverQueue.NO_ROOM) {
            unmapScratch(buffers, readable, n);
            return head;
        }
        remember(head, buffers, readable, n, token);
        return head;
    }

    /**
     * Maps a request's buffers, writes them as an indirect table, maps the table
     * {@code TO_DEVICE} and offers it with a single ring descriptor.
     *
     * @param buffers as for {@link #add}
     * @param readable as for {@link #add}
     * @param writable as for {@link #add}
     * @param token as for {@link #add}
     * @return the head, or {@link DriverQueue#NO_ROOM} (nothing stays mapped)
     * @throws DmaMappingException if a buffer or the table cannot be mapped; nothing stays
     *     mapped and the ring is unchanged
     * @throws IllegalStateException if this queue has no indirect table memory
     * @throws IllegalArgumentException if the counts are out of range
     * @throws VirtqueueException if the queue is broken
     */
    public int addIndirect(MemorySegment[] buffers, int readable, int writable, Object token)
        throws DmaMappingException, VirtqueueException {
        if (tables.length == 0) {
            throw new IllegalStateException("this DmaDriverQueue was built without indirect table memory");
        }
        int n = checkCounts(buffers, readable, writable);
        if (queue.numFree() < 1 || freeTableCount == 0) {
            return DriverQueue.NO_ROOM;
        }
        mapAll(buffers, readable, n);
        int table = freeTables[--freeTableCount];
        // the whole table is mapped (16 * maxBuffers bytes), so no slice is allocated per request;
        // the descriptor that points to it says how many of its entries are used
        MemorySegment tableView = tables[table];
        long tableAddress;
        try {
            queue.writeIndirectTable(chain, tableView);
            // written first, mapped after: a bouncing DmaOps copies the finished table at map time
            tableAddress = dma.map(tableView, DmaDirection.TO_DEVICE);
        } catch (DmaMappingException | RuntimeException e) {
            freeTables[freeTableCount++] = table;
            unmapScratch(buffers, readable, n);
            throw e;
        }
        int head;
        try {
            head = queue.addIndirect(chain, tableAddress);
        } catch (VirtqueueException | RuntimeException e) {
            dma.unmap(tableAddress, tableView.byteSize(), DmaDirection.TO_DEVICE);
            freeTables[freeTableCount++] = table;
            unmapScratch(buffers, readable, n);
            throw e;
        }
        if (head == DriverQueue.NO_ROOM) {
            dma.unmap(tableAddress, tableView.byteSize(), DmaDirection.TO_DEVICE);
            freeTables[freeTableCount++] = table;
            unmapScratch(buffers, readable, n);
            return head;
        }
        remember(head, buffers, readable, n, token);
        tableOfHead[head] = table;
        tableBus[table] = tableAddress;
        return head;
    }

    private int checkCounts(MemorySegment[] buffers, int readable, int writable) {
        if (readable < 0 || writable < 0) {
            throw new IllegalArgumentException("readable " + readable + " and writable " + writable
                + " must not be negative");
        }
        int n = readable + writable;
        if (n < 1 || n > maxBuffers) {
            throw new IllegalArgumentException("request of " + n + " buffers; it must have 1.." + maxBuffers
                + " (maxBuffers)");
        }
        if (buffers.length < n) {
            throw new IllegalArgumentException("buffers array holds " + buffers.length + " entries; " + n
                + " were announced");
        }
        return n;
    }

    /** Maps buffers[0..n) into {@link #chain} and {@link #scratchBus}; on failure unmaps them all. */
    private void mapAll(MemorySegment[] buffers, int readable, int n) throws DmaMappingException {
        chain.clear();
        int mapped = 0;
        try {
            for (; mapped < n; mapped++) {
                MemorySegment b = buffers[mapped];
                if (b.byteSize() > BufferChain.MAX_BUFFER_LENGTH) {
                    throw new IllegalArgumentException("buffer " + mapped + " has " + b.byteSize()
                        + " bytes; a descriptor holds at most 2^32-1");
                }
                boolean toDevice = mapped < readable;
                long bus = dma.map(b, toDevice ? DmaDirection.TO_DEVICE : DmaDirection.FROM_DEVICE);
                scratchBus[mapped] = bus;
                try {
                    if (toDevice) {
                        chain.addReadable(bus, b.byteSize());
                    } else {
                        chain.addWritable(bus, b.byteSize());
                    }
                } catch (RuntimeException e) {
                    // e.g. the chain's total reaches 2^32: this mapping is counted as made
                    mapped++;
                    throw e;
                }
            }
        } catch (DmaMappingException | RuntimeException e) {
            unmapScratch(buffers, readable, mapped);
            throw e;
        }
    }

    /** Unmaps the first {@code count} scratch mappings, newest first. */
    private void unmapScratch(MemorySegment[] buffers, int readable, int count) {
        for (int i = count - 1; i >= 0; i--) {
            dma.unmap(scratchBus[i], buffers[i].byteSize(), i < readable ? DmaDirection.TO_DEVICE : DmaDirection.FROM_DEVICE);
        }
    }

    private void remember(int head, MemorySegment[] buffers, int readable, int n, Object token) {
        int base = head * maxBuffers;
        for (int i = 0; i < n; i++) {
            busAddresses[base + i] = scratchBus[i];
            lengths[base + i] = buffers[i].byteSize();
            directions[base + i] = i < readable ? DmaDirection.TO_DEVICE : DmaDirection.FROM_DEVICE;
        }
        mappedCount[head] = n;
        tokens[head] = token;
    }

    /**
     * Makes the requests added since the last publish visible to the device.
     *
     * @return whether to notify the device
     */
    public boolean publish() {
        return queue.publish();
    }

    /**
     * Takes back the next request the device has used and unmaps its buffers (and its
     * indirect table): the caller's writable buffers then hold what the device wrote.
     *
     * @return its head, or {@link DriverQueue#NONE}; then see {@link #usedLength()} and
     *     {@link #usedToken()}
     * @throws VirtqueueException if the device broke a rule (the queue is then broken)
     */
    public int pollUsed() throws VirtqueueException {
        int head = queue.pollUsed();
        if (head == DriverQueue.NONE) {
            return head;
        }
        int base = head * maxBuffers;
        int n = mappedCount[head];
        for (int i = 0; i < n; i++) {
            dma.unmap(busAddresses[base + i], lengths[base + i], directions[base + i]);
            directions[base + i] = null;
        }
        mappedCount[head] = 0;
        int table = tableOfHead[head];
        if (table >= 0) {
            dma.unmap(tableBus[table], tables[table].byteSize(), DmaDirection.TO_DEVICE);
            tableOfHead[head] = -1;
            freeTables[freeTableCount++] = table;
        }
        lastToken = tokens[head];
        tokens[head] = null;
        lastUsedLength = queue.usedLength();
        return head;
    }

    /** @return the bytes the device wrote into the request last returned by {@link #pollUsed()} */
    public long usedLength() {
        return lastUsedLength;
    }

    /** @return the token given with the request last returned by {@link #pollUsed()} */
    public Object usedToken() {
        return lastToken;
    }

    /** @return how many requests are in flight */
    public int inFlight() {
        return queue.inFlight();
    }

    /**
     * Asks the device for interrupts again; poll again instead of sleeping if it returns true.
     *
     * @return whether used requests are already waiting
     */
    public boolean enableInterrupts() {
        return queue.enableInterrupts();
    }

    /** Tells the device that interrupts are not wanted (a hint). */
    public void disableInterrupts() {
        queue.disableInterrupts();
    }

    @Override
    public String toString() {
        return "DmaDriverQueue[" + queue + ", dma=" + dma + ", maxBuffers=" + maxBuffers
            + (tables.length > 0 ? ", indirect" : "") + "]";
    }
}

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
 * <p><b>Premapped buffers.</b> {@link #addPremapped} offers {@link DmaBuffer}s of a
 * {@link DmaBufferPool} that were mapped once when the pool was built (Linux's
 * {@code virtqueue_set_dma_premapped}): no map and no unmap per request, only a sync where
 * {@link DmaOps#needsSync} says the mapping is bounced. When such a request is used the buffers
 * are the caller's again (held, not back in their pool).
 *
 * <p><b>Taking buffers back.</b> Once the device no longer touches the ring (it broke the queue,
 * or it was reset or shut down), {@link #detachUnused()} hands back every request still in
 * flight, one per call, as Linux's {@code virtqueue_detach_unused_buf}: its buffers unmapped as
 * {@link #pollUsed()} would (a bounced {@code FROM_DEVICE} buffer gets the bounce slot's bytes,
 * as Linux's unmap copies them), premapped buffers held by the caller again, and its token given
 * back. After the first detach this object only detaches: a new one is built over a reset ring.
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

    // mappings of each in-flight mapped head: slot [head * maxBuffers + i] (a premapped head's
    // buffers keep their own bus address and length)
    private final long[] busAddresses;
    private final long[] lengths;
    /**
     * Readable buffers of each in-flight head: slots [0, readable) were mapped (or offered)
     * TO_DEVICE, the rest FROM_DEVICE. An int per head rather than a direction per buffer keeps
     * reference stores (and their GC write barriers) off the per-request path.
     */
    private final int[] readableOfHead;
    /**
     * Buffers of each in-flight premapped head, same slots (meaningful while the head's
     * {@link #mappedCount} is negative). A slot keeps its last buffer after the request returns and
     * is written only when a different buffer takes it: the same buffers come back to the same
     * heads request after request, and a reference store per request costs a GC write barrier.
     * The buffers belong to pools the caller keeps anyway; {@link #detachUnused()} clears them all.
     */
    private final DmaBuffer[] premapped;
    /**
     * Buffers of each in-flight head: n (at least 1) for a mapped head, -n for a premapped one, 0
     * when the head is not in flight here. The sign says which kind to release, so no flag per
     * head is written and cleared per request.
     */
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
    private int requestsInFlight;
    /** Set by the first {@link #detachUnused()}: the ring is no longer driven. */
    private boolean detached;
    private int detachCursor;

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
        this.readableOfHead = new int[q];
        this.premapped = new DmaBuffer[q * maxBuffers];
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
        checkAttached();
        int n = checkCounts(buffers.length, readable, writable);
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
     * @throws IllegalStateException if this queue has no indirect table memory, or was detached
     * @throws IllegalArgumentException if the counts are out of range
     * @throws VirtqueueException if the queue is broken
     */
    public int addIndirect(MemorySegment[] buffers, int readable, int writable, Object token)
        throws DmaMappingException, VirtqueueException {
        checkAttached();
        if (tables.length == 0) {
            throw new IllegalStateException("this DmaDriverQueue was built without indirect table memory");
        }
        int n = checkCounts(buffers.length, readable, writable);
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

    /**
     * Offers buffers of a {@link DmaBufferPool}, mapped when the pool was built, as one chain of
     * direct descriptors: each buffer's first {@link DmaBuffer#length()} bytes. Nothing is
     * mapped; a readable buffer whose mapping is bounced is synced for the device first.
     *
     * @param buffers held buffers: {@code readable} device-readable ones first, then
     *     {@code writable} device-writable ones; from pools mapped through this queue's
     *     {@link #dma()}; each in at most one request at a time
     * @param readable how many of {@code buffers} (from index 0) the device reads; their pool's
     *     direction must be {@code TO_DEVICE} or {@code BIDIRECTIONAL}
     * @param writable how many after them the device writes; their pool's direction must be
     *     {@code FROM_DEVICE} or {@code BIDIRECTIONAL}
     * @param token what {@link #usedToken()} gives back when this request returns; may be null
     * @return the head (the buffers are then in flight), or {@link DriverQueue#NO_ROOM} (they
     *     stay held)
     * @throws IllegalArgumentException if the counts are out of range, a buffer is null, was
     *     mapped through other DMA ops, or its pool's direction does not allow its role
     * @throws IllegalStateException if a buffer is in its pool or already in flight (also when
     *     the same buffer appears twice), or this queue was detached
     * @throws VirtqueueException if the queue is broken; the buffers stay held
     */
    public int addPremapped(DmaBuffer[] buffers, int readable, int writable, Object token) throws VirtqueueException {
        checkAttached();
        int n = checkCounts(buffers.length, readable, writable);
        if (queue.numFree() < n) {
            return DriverQueue.NO_ROOM;
        }
        markPremapped(buffers, readable, n);
        int head;
        try {
            head = queue.add(chain);
        } catch (VirtqueueException | RuntimeException e) {
            unmark(buffers, n);
            throw e;
        }
        if (head == DriverQueue.NO_ROOM) {
            unmark(buffers, n);
            return head;
        }
        rememberPremapped(head, buffers, readable, n, token);
        return head;
    }

    private void rememberPremapped(int head, DmaBuffer[] buffers, int readable, int n, Object token) {
        int base = head * maxBuffers;
        for (int i = 0; i < n; i++) {
            DmaBuffer b = buffers[i];
            if (premapped[base + i] != b) {
                premapped[base + i] = b;
            }
            // no bus address or length is copied: both stay readable on the buffer, whose length
            // is fixed while it is in flight (setLength refuses then)
        }
        mappedCount[head] = -n;
        readableOfHead[head] = readable;
        tokens[head] = token;
        requestsInFlight++;
    }

    /**
     * Checks buffers[0..n), puts them in {@link #chain} and marks them in flight, then syncs the
     * bounced readable ones for the device; if anything fails, every buffer is held again.
     */
    private void markPremapped(DmaBuffer[] buffers, int readable, int n) {
        chain.clear();
        int marked = 0;
        try {
            boolean sync = false;
            for (; marked < n; marked++) {
                DmaBuffer b = buffers[marked];
                boolean toDevice = marked < readable;
                // every rule in one test on the hot path; refusePremapped says which was broken.
                // offerableThrough is the pool's ops when its direction allows the role, else null:
                // ops and direction in one compare (this queue's dma is never null)
                if (b == null || b.state != DmaBuffer.HELD || b.offerableThrough(toDevice) != dma) {
                    throw refusePremapped(b, marked, toDevice);
                }
                if (toDevice) {
                    chain.addReadable(b.busAddress, b.length);
                    sync |= b.needsSync;
                } else {
                    chain.addWritable(b.busAddress, b.length);
                }
                // marked before the next buffer is checked, so the same buffer twice is refused
                b.state = DmaBuffer.IN_FLIGHT;
            }
            if (sync) {
                syncForDevice(buffers, readable);
            }
        } catch (RuntimeException e) {
            unmark(buffers, marked);
            throw e;
        }
    }

    /** Syncs the bounced ones of the first {@code readable} buffers for the device. */
    private void syncForDevice(DmaBuffer[] buffers, int readable) {
        for (int i = 0; i < readable; i++) {
            DmaBuffer b = buffers[i];
            if (b.needsSync) {
                dma.syncForDevice(b.busAddress, b.length, b.pool.direction());
            }
        }
    }

    /**
     * The error {@link #addPremapped} throws for a buffer it cannot offer, naming the first rule
     * the buffer breaks; built off the hot path, which stays small enough to inline.
     */
    private RuntimeException refusePremapped(DmaBuffer b, int i, boolean toDevice) {
        if (b == null) {
            return new IllegalArgumentException("buffer " + i + " is null");
        }
        if (b.state != DmaBuffer.HELD) {
            return new IllegalStateException("buffer " + i + " (" + b + ") is " + b.describeState()
                + "; only a held buffer may be offered");
        }
        DmaBufferPool pool = b.pool();
        if (pool.dma() != dma) {
            return new IllegalArgumentException("buffer " + i + " (" + b + ") was mapped through " + pool.dma()
                + "; this queue maps through " + dma);
        }
        return new IllegalArgumentException("buffer " + i + " (" + b + ") is mapped " + pool.direction()
            + " but offered " + (toDevice ? "device-readable" : "device-writable"));
    }

    /** Puts the first {@code count} buffers of a failed premapped add back to held. */
    private static void unmark(DmaBuffer[] buffers, int count) {
        for (int i = 0; i < count; i++) {
            buffers[i].state = DmaBuffer.HELD;
        }
    }

    private void checkAttached() {
        if (detached) {
            throw detachedError();
        }
    }

    private static IllegalStateException detachedError() {
        return new IllegalStateException("this DmaDriverQueue was detached (detachUnused); build a new one over the "
            + "reset ring");
    }

    /** @return readable + writable, checked; one test on the hot path, the messages in {@link #countsError} */
    private int checkCounts(int buffers, int readable, int writable) {
        int n = readable + writable;
        if (readable < 0 || writable < 0 || n < 1 || n > maxBuffers || buffers < n) {
            throw countsError(buffers, readable, writable);
        }
        return n;
    }

    private IllegalArgumentException countsError(int buffers, int readable, int writable) {
        if (readable < 0 || writable < 0) {
            return new IllegalArgumentException("readable " + readable + " and writable " + writable
                + " must not be negative");
        }
        int n = readable + writable;
        if (n < 1 || n > maxBuffers) {
            return new IllegalArgumentException("request of " + n + " buffers; it must have 1.." + maxBuffers
                + " (maxBuffers)");
        }
        return new IllegalArgumentException("buffers array holds " + buffers + " entries; " + n
            + " were announced");
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
        }
        mappedCount[head] = n;
        readableOfHead[head] = readable;
        tokens[head] = token;
        requestsInFlight++;
    }

    /**
     * Makes the requests added since the last publish visible to the device.
     *
     * @return whether to notify the device
     * @throws IllegalStateException if this queue was detached
     */
    public boolean publish() {
        checkAttached();
        return queue.publish();
    }

    /**
     * Publishes like {@link #publish()} with no notification decision (no full fence); see
     * {@link DriverQueue#publishQuiet()}: only for a device that polls and never sleeps.
     *
     * @throws IllegalStateException if this queue was detached
     */
    public void publishQuiet() {
        checkAttached();
        queue.publishQuiet();
    }

    /**
     * Takes back the next request the device has used and unmaps its buffers (and its
     * indirect table): the caller's writable buffers then hold what the device wrote. Premapped
     * buffers are not unmapped; they are held by the caller again (synced for the CPU up to the
     * used length where their mapping is bounced).
     *
     * @return its head, or {@link DriverQueue#NONE}; then see {@link #usedLength()} and
     *     {@link #usedToken()}
     * @throws VirtqueueException if the device broke a rule (the queue is then broken; see
     *     {@link #detachUnused()})
     * @throws IllegalStateException if this queue was detached
     */
    public int pollUsed() throws VirtqueueException {
        checkAttached();
        int head = queue.pollUsed();
        if (head == DriverQueue.NONE) {
            return head;
        }
        long used = queue.usedLength();
        release(head, used, true);
        lastUsedLength = used;
        return head;
    }

    /**
     * Hands back one request still in flight without the device having used it, as Linux's
     * {@code virtqueue_detach_unused_buf}: its buffers are unmapped as {@link #pollUsed()} would
     * (a bounced writable buffer gets what the bounce slots hold, as Linux's unmap copies it),
     * its premapped buffers are held by the caller again (not synced: the device did not finish
     * them), its indirect table is freed; {@link #usedToken()} is its token and
     * {@link #usedLength()} is 0. Call it until it returns {@link DriverQueue#NONE}; then no
     * mapping of this queue is left.
     *
     * <p>Only once the device no longer touches the ring: it broke the queue, or it was reset or
     * shut down. From the first call on, this object does nothing else ({@link #add},
     * {@link #publish()}, {@link #pollUsed()} and the other adds throw
     * {@link IllegalStateException}); drive the reset ring with a new one.
     *
     * @return the head of the request handed back, or {@link DriverQueue#NONE} when none is left
     */
    public int detachUnused() {
        detached = true;
        int q = mappedCount.length;
        while (detachCursor < q) {
            int head = detachCursor++;
            if (mappedCount[head] != 0) {
                release(head, 0, false);
                lastUsedLength = 0;
                return head;
            }
        }
        // nothing is in flight any more: let go of the buffers the slots still name
        Arrays.fill(premapped, null);
        return DriverQueue.NONE;
    }

    /** @return whether {@link #detachUnused()} was called: the queue only detaches from then on */
    public boolean isDetached() {
        return detached;
    }

    /**
     * Ends a head's mappings (or hands its premapped buffers back), frees its table, and makes
     * its token the last one.
     *
     * @param used bytes the device wrote, for syncing bounced premapped buffers
     * @param completed whether the device used the request (false: detached)
     */
    private void release(int head, long used, boolean completed) {
        int count = mappedCount[head];
        if (count < 0) {
            releasePremapped(head, -count, used, completed);
        } else {
            unmapHead(head, count);
        }
        mappedCount[head] = 0;
        requestsInFlight--;
        int table = tableOfHead[head];
        if (table >= 0) {
            freeTable(head, table);
        }
        lastToken = tokens[head];
        tokens[head] = null;
    }

    /** Hands a premapped head's buffers back to the caller (held), syncing bounced writable ones. */
    private void releasePremapped(int head, int n, long used, boolean completed) {
        int base = head * maxBuffers;
        boolean sync = false;
        for (int i = 0; i < n; i++) {
            DmaBuffer b = premapped[base + i];
            sync |= b.needsSync;
            b.state = DmaBuffer.HELD;
        }
        if (sync && completed && used > 0) {
            syncUsedForCpu(base, readableOfHead[head], n, used);
        }
    }

    /**
     * Syncs the bounced writable buffers of a used premapped head for the CPU: the device wrote
     * the writable part in order, so buffer i holds min(left, length) of the {@code used} bytes.
     */
    private void syncUsedForCpu(int base, int readable, int n, long used) {
        long left = used;
        for (int i = readable; i < n && left > 0; i++) {
            DmaBuffer b = premapped[base + i];
            long len = Math.min(left, b.length);
            if (b.needsSync) {
                dma.syncForCpu(b.busAddress, len, b.pool.direction());
            }
            left -= len;
        }
    }

    /** Ends a mapped head's {@code n} mappings. */
    private void unmapHead(int head, int n) {
        int base = head * maxBuffers;
        int readable = readableOfHead[head];
        for (int i = 0; i < n; i++) {
            dma.unmap(busAddresses[base + i], lengths[base + i], i < readable ? DmaDirection.TO_DEVICE
                : DmaDirection.FROM_DEVICE);
        }
    }

    private void freeTable(int head, int table) {
        dma.unmap(tableBus[table], tables[table].byteSize(), DmaDirection.TO_DEVICE);
        tableOfHead[head] = -1;
        freeTables[freeTableCount++] = table;
    }

    /**
     * @return the bytes the device wrote into the request last returned by {@link #pollUsed()}
     *     (0 after {@link #detachUnused()})
     */
    public long usedLength() {
        return lastUsedLength;
    }

    /** @return the token given with the request last returned by {@link #pollUsed()} or {@link #detachUnused()} */
    public Object usedToken() {
        return lastToken;
    }

    /** @return how many requests are in flight (added, and not yet used or detached) */
    public int inFlight() {
        return requestsInFlight;
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

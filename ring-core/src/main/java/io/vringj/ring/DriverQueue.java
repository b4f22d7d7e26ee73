package io.vringj.ring;

import io.vringj.memory.GuestMemory;
import java.lang.foreign.MemorySegment;

/**
 * The driver's side of one virtqueue: it offers chains of premapped buffers to the device and
 * takes them back when the device has used them. Owned by one thread.
 *
 * <p>The driver writes the rings through native segments (its CPU view of ring memory) and
 * never maps or copies buffers: the dma-ops glue does that around it.
 *
 * <pre>
 *   add(chain) ... add(chain)  →  publish() → kick the device if it returns true
 *   pollUsed() → head, usedLength()  (NONE when nothing is used)
 * </pre>
 *
 * <p>Errors from the device (a used id the driver does not have in flight, a used length
 * larger than the writable part) latch the queue broken: the failing and every later
 * {@link #pollUsed()} and {@link #add} throw the same {@link VirtqueueException}.
 *
 * <p>With {@link VirtioFeatures#IN_ORDER} in the features (the queue is then {@link #inOrder()}),
 * the device uses buffers in the order they were made available and may return a batch with one
 * used entry that names the batch's last buffer [virtio 2.7.9, 2.8.8]. {@link #pollUsed()} still
 * returns one buffer per call, oldest first: every buffer of the batch, each exactly once. The
 * split driver then also uses descriptor table entries in ring order, as the spec asks of it.
 */
public sealed interface DriverQueue permits DriverQueueBase {
    /** What {@link #add} returns when there are not enough free descriptors. */
    int NO_ROOM = -1;
    /** What {@link #pollUsed()} returns when the device has used nothing new. */
    int NONE = -1;

    /**
     * A driver queue over ring memory in guest memory, at the guest-physical addresses given.
     * The layout is chosen from {@link VirtioFeatures#RING_PACKED}.
     *
     * @param features the negotiated features
     * @param queueSize Q
     * @param memory the guest memory holding the rings
     * @param addresses guest-physical addresses of the three areas
     * @return a driver queue with the avail and used indices at 0 (packed: position 0, wrap counters 1)
     */
    static DriverQueue create(long features, int queueSize, GuestMemory memory, RingAddresses addresses) {
        return create(features, queueSize, memory, addresses, initialIndex(features));
    }

    /**
     * As {@link #create(long, int, GuestMemory, RingAddresses)}, restoring where the ring stands
     * with nothing in flight (the device must start at the same place). For a split ring, the
     * initial avail and used index, 0..65535; for a packed ring, the position (bits 0-14, below Q)
     * and wrap counter (bit 15) of both the next available and the next used descriptor, in the
     * encoding of {@link DeviceQueue#lastAvailIdx()} ({@link PackedRing#INITIAL_STATE} for a fresh
     * ring): the device then starts with {@code vringBase = startIndex | startIndex << 16}.
     *
     * @param features the negotiated features
     * @param queueSize Q
     * @param memory the guest memory holding the rings
     * @param addresses guest-physical addresses of the three areas
     * @param startIndex the initial index (split) or state (packed), as above
     * @return a driver queue
     * @throws IllegalArgumentException if Q or {@code startIndex} is not valid for the layout
     */
    static DriverQueue create(long features, int queueSize, GuestMemory memory, RingAddresses addresses, int startIndex) {
        if (VirtioFeatures.has(features, VirtioFeatures.RING_PACKED)) {
            PackedRing.checkQueueSize(queueSize);
            return new PackedDriverQueue(features, queueSize,
                memory.slice(addresses.descriptorArea(), PackedRing.descriptorRingSize(queueSize)),
                memory.slice(addresses.driverArea(), PackedRing.EVENT_SIZE),
                memory.slice(addresses.deviceArea(), PackedRing.EVENT_SIZE), startIndex);
        }
        SplitRing.checkQueueSize(queueSize);
        return new SplitDriverQueue(features, queueSize,
            memory.slice(addresses.descriptorArea(), SplitRing.descriptorTableSize(queueSize)),
            memory.slice(addresses.driverArea(), SplitRing.availRingSize(queueSize)),
            memory.slice(addresses.deviceArea(), SplitRing.usedRingSize(queueSize)),
            startIndex);
    }

    /**
     * A driver queue over ring memory given directly as the CPU's view of each area (for rings
     * from a coherent allocation whose bus addresses differ from their guest-physical ones).
     *
     * @param features the negotiated features
     * @param queueSize Q
     * @param descriptorArea the descriptor table
     * @param driverArea the available ring (packed: the driver event suppression structure)
     * @param deviceArea the used ring (packed: the device event suppression structure)
     * @return a driver queue with the indices at 0 (packed: position 0, wrap counters 1)
     */
    static DriverQueue create(long features, int queueSize, MemorySegment descriptorArea, MemorySegment driverArea,
                              MemorySegment deviceArea) {
        return create(features, queueSize, descriptorArea, driverArea, deviceArea, initialIndex(features));
    }

    /**
     * As {@link #create(long, int, MemorySegment, MemorySegment, MemorySegment)}, starting at
     * {@code startIndex} as {@link #create(long, int, GuestMemory, RingAddresses, int)} describes.
     *
     * @param features the negotiated features
     * @param queueSize Q
     * @param descriptorArea the descriptor table
     * @param driverArea the available ring (packed: the driver event suppression structure)
     * @param deviceArea the used ring (packed: the device event suppression structure)
     * @param startIndex the initial index (split) or state (packed)
     * @return a driver queue
     * @throws IllegalArgumentException if Q, an area or {@code startIndex} is not valid
     */
    static DriverQueue create(long features, int queueSize, MemorySegment descriptorArea, MemorySegment driverArea,
                              MemorySegment deviceArea, int startIndex) {
        if (VirtioFeatures.has(features, VirtioFeatures.RING_PACKED)) {
            return new PackedDriverQueue(features, queueSize, descriptorArea, driverArea, deviceArea, startIndex);
        }
        return new SplitDriverQueue(features, queueSize, descriptorArea, driverArea, deviceArea, startIndex);
    }

    private static int initialIndex(long features) {
        return VirtioFeatures.has(features, VirtioFeatures.RING_PACKED) ? PackedRing.INITIAL_STATE : 0;
    }

    /** @return Q */
    int queueSize();

    /** @return the negotiated features */
    long features();

    /** @return how many descriptors are free for {@link #add} (Q when nothing is in flight) */
    int numFree();

    /**
     * Offers a chain to the device: writes its descriptors and the avail ring entry, but does
     * not publish it; call {@link #publish()} after one or more adds. Leaves the ring unchanged
     * if there is no room.
     *
     * @param chain the buffers, readable first; not kept
     * @return the chain's head (packed: its buffer id), or {@link #NO_ROOM} if fewer than {@code chain.size()}
     *     descriptors are free
     * @throws IllegalArgumentException if the chain is empty
     * @throws VirtqueueException if the queue is broken
     */
    int add(BufferChain chain) throws VirtqueueException;

    /**
     * Writes {@code chain} as an indirect descriptor table in this ring's format into
     * {@code table}, which must hold {@code 16 * chain.size()} bytes. The table then has to be
     * made visible to the device at some bus address (mapped, and bounced if need be) before
     * {@link #addIndirect(BufferChain, long)}.
     *
     * @param chain the buffers, readable first
     * @param table the CPU's view of the table memory
     * @throws IllegalArgumentException if the chain is empty or the table too small
     */
    void writeIndirectTable(BufferChain chain, MemorySegment table);

    /**
     * Offers a chain through an indirect table already written with
     * {@link #writeIndirectTable} and mapped at {@code tableBusAddress}: one descriptor of the
     * ring is used.
     *
     * @param chain the same buffers the table was written from (for lengths and counts)
     * @param tableBusAddress where the device finds the table
     * @return the head, or {@link #NO_ROOM}
     * @throws IllegalStateException if {@link VirtioFeatures#INDIRECT_DESC} was not negotiated
     * @throws IllegalArgumentException if the chain is empty or longer than Q
     * @throws VirtqueueException if the queue is broken
     */
    int addIndirect(BufferChain chain, long tableBusAddress) throws VirtqueueException;

    /**
     * Makes every chain added since the last publish visible to the device (a release store of
     * the avail index), then decides whether the device wants a kick.
     *
     * @return whether to notify the device; false if nothing was added or the queue is broken
     */
    boolean publish();

    /**
     * Publishes like {@link #publish()} but makes no notification decision, and so needs no full
     * fence: one release store. For a device that polls and never sleeps (its notifications are
     * off for good), as Linux callers that never call {@code virtqueue_kick_prepare}. With a
     * device that may sleep, use {@link #publish()}, or a kick can be lost.
     */
    void publishQuiet();

    /**
     * Takes back the next chain the device has used.
     *
     * <p>When {@link #inOrder()}, a used entry covers every buffer made available before the one it
     * names and not yet taken back, then that one; the calls that follow return them one by one in
     * the order they were added, without reading the ring again until the batch is done. The
     * device breaks the rules (and the queue) if it names an id that is not in flight
     * ({@link RingError#USED_ID_NOT_IN_FLIGHT}: a buffer already taken back, or never made
     * available) or, on a split ring, a buffer further on than its used idx moved
     * ({@link RingError#USED_NOT_IN_ORDER}: it used a later buffer before an earlier one).
     *
     * @return its head, or {@link #NONE}; the bytes written are then in {@link #usedLength()}
     * @throws VirtqueueException if the device broke a rule (the queue is then broken)
     */
    int pollUsed() throws VirtqueueException;

    /**
     * The used length of the chain last returned by {@link #pollUsed()}. When {@link #inOrder()}
     * and the device returned a batch with one entry, only the batch's last buffer has a length
     * from the device; every other buffer of the batch gets its chain's writable length, since the
     * spec assumes the skipped buffers were used (read or written) completely [virtio 2.7.9, 2.8.8]: 0 for
     * a chain the device only reads, as a net device's transmit buffers. (Linux reports the chain's
     * total length, readable bytes included; the used length never counts those here.)
     *
     * @return the length the device reported for the chain last returned by {@link #pollUsed()}
     */
    long usedLength();

    /**
     * @return whether {@link VirtioFeatures#IN_ORDER} was negotiated: used entries may then cover a
     *     batch of buffers, taken back in the order they were made available
     */
    boolean inOrder();

    /**
     * Asks the device for interrupts again and checks for used chains that arrived meanwhile;
     * call this before sleeping, and poll again instead if it returns true (otherwise an
     * interrupt may be lost).
     *
     * <p>The used index read here is checked by the same rule as in {@link #pollUsed()}: a device
     * that broke it latches the queue broken, and this method returns true so that the caller's
     * next {@link #pollUsed()} reports the error rather than sleeping.
     *
     * @return whether used chains are already waiting (or the queue is broken)
     */
    boolean enableInterrupts();

    /** Tells the device that interrupts are not wanted (a hint; spurious ones may still come). */
    void disableInterrupts();

    /** @return whether a fatal error latched the queue broken */
    boolean isBroken();

    /** @return how many chains are in flight (added and not yet taken back) */
    int inFlight();
}

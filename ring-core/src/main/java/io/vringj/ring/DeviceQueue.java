package io.vringj.ring;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;

/**
 * The device's side of one virtqueue: it pops validated chains the driver made available and
 * returns them as used. Owned by one thread.
 *
 * <pre>
 *   while (queue.pop(chain)) { ... consume/produce in place ...; queue.addUsed(chain.head(), written); }
 *   if (queue.publishUsed()) interrupt the driver;
 *   if (!queue.enableNotifications()) sleep until kicked;   // true: more arrived, pop again
 * </pre>
 *
 * <p>Every address the driver wrote — ring areas, buffers, indirect tables — goes through the
 * queue's {@link AddressSpace}. A ring written by a buggy or malicious driver is input: each
 * broken rule is a {@link VirtqueueException} naming a {@link RingError}. A fatal one latches
 * the queue broken; every later call throws it again without touching the ring.
 *
 * <p>The queue size is frozen when the queue is created (activated), and every access is
 * bounded by what was validated then.
 *
 * <p>Behind an address space whose translations change (an IOTLB), every operation translates the
 * ring areas again before touching them if the {@link AddressSpace#epoch()} moved since they were
 * last translated and the address space cannot vouch ({@link AddressSpace#unchangedSince}) that
 * nothing under them changed, so once an invalidation has returned no access goes through a
 * translation of the removed range. A miss there is never fatal: {@link #tryPop} returns {@link #MISSED},
 * {@link #addUsed} keeps the entry until a publish can write it, and the notification calls skip
 * their write.
 */
public sealed interface DeviceQueue permits DeviceQueueBase {

    /**
     * The most memory pieces one chain may map to, readable and writable together; a piece is a
     * contiguous run of memory, one per descriptor unless a buffer spans several regions or IOTLB
     * entries. A chain that needs more breaks the queue with {@link RingError#CHAIN_TOO_MANY_PIECES}.
     * The value and the rule are QEMU's: {@code VIRTQUEUE_MAX_SIZE} (1024) iovecs per element in
     * {@code virtqueue_map_desc} (hw/virtio/virtio.c); Linux vhost likewise stops at its
     * {@code UIO_MAXIOV} (1024) iovecs ({@code translate_desc}: {@code -ENOBUFS}). It bounds the
     * memory a {@link DescriptorChain} can grow to, whatever the queue size.
     */
    int MAX_CHAIN_PIECES = 1024;

    /**
     * The most entries an indirect table may have ({@code len / 16}); a longer one breaks the queue
     * with {@link RingError#INDIRECT_TOO_LARGE}. Linux vhost's limit ({@code get_indirect}:
     * "buffers are chained via a 16 bit next field, so we can have at most 2^16 of these");
     * rust-vmm stops at 65535, QEMU sets none (only {@link #MAX_CHAIN_PIECES}). The spec bounds a
     * chain by the queue size [virtio 2.7.5.3.1], but Linux drivers write tables longer than Q and
     * vhost takes them, so this side accepts them; the entries a chain actually uses still count
     * against {@link #MAX_CHAIN_PIECES}.
     */
    int MAX_INDIRECT_ENTRIES = 65536;

    /**
     * Activates a device queue: checks Q and the ring addresses and translates the ring areas.
     * The layout is chosen from {@link VirtioFeatures#RING_PACKED}. A split ring's last avail
     * index starts at 0 and its used index is read from the ring; a packed ring starts at
     * position 0 with both wrap counters 1.
     *
     * @param features the negotiated features
     * @param queueSize Q
     * @param addresses bus addresses of the three areas
     * @param addressSpace how the device reaches memory
     * @return the device queue
     * @throws IllegalArgumentException if Q is not valid for the layout
     * @throws VirtqueueException if a ring area is misaligned or cannot be reached
     */
    static DeviceQueue create(long features, int queueSize, RingAddresses addresses, AddressSpace addressSpace)
        throws VirtqueueException {
        boolean packed = VirtioFeatures.has(features, VirtioFeatures.RING_PACKED);
        return create(features, queueSize, addresses, addressSpace, packed ? PACKED_INITIAL_VRING_BASE : 0);
    }

    /**
     * A packed ring's state when nothing has moved yet: both positions 0, both wrap counters 1, in
     * the encoding of {@link #vringBase()}.
     */
    int PACKED_INITIAL_VRING_BASE = PackedRing.INITIAL_STATE | PackedRing.INITIAL_STATE << 16;

    /**
     * As {@link #create(long, int, RingAddresses, AddressSpace)}, restoring the device's ring
     * state as vhost-user's {@code SET_VRING_BASE} carries it: for a split ring the 16-bit last
     * avail idx (the used idx is read from the ring); for a packed ring, as an unsigned 32-bit
     * value, the avail position in bits 0-14 with its wrap counter in bit 15 and the used
     * position in bits 16-30 with its wrap counter in bit 31 (QEMU's encoding;
     * {@link #PACKED_INITIAL_VRING_BASE} for a fresh queue).
     *
     * @param features the negotiated features
     * @param queueSize Q
     * @param addresses bus addresses of the three areas
     * @param addressSpace how the device reaches memory
     * @param lastAvailIdx the split ring's last avail idx, or the packed ring's state as above
     * @return the device queue
     * @throws IllegalArgumentException if Q or the index is not valid
     * @throws VirtqueueException if a ring area is misaligned or cannot be reached
     */
    static DeviceQueue create(long features, int queueSize, RingAddresses addresses, AddressSpace addressSpace,
                              int lastAvailIdx) throws VirtqueueException {
        if (VirtioFeatures.has(features, VirtioFeatures.RING_PACKED)) {
            return new PackedDeviceQueue(features, queueSize, addresses, addressSpace, lastAvailIdx);
        }
        return new SplitDeviceQueue(features, queueSize, addresses, addressSpace, lastAvailIdx);
    }

    /** @return Q */
    int queueSize();

    /** @return the negotiated features */
    long features();

    /**
     * Pops the next available chain into {@code chain}, walking and validating it.
     *
     * @param chain where the chain goes (reused; nothing is allocated)
     * @return false if no chain is available
     * @throws VirtqueueException if the driver broke a rule; fatal ones break the queue. A
     *     {@link RingError#TRANSLATION_MISS} consumes nothing: pop again after the IOTLB update.
     *     (Building that exception allocates; a device behind an IOTLB uses {@link #tryPop}.)
     */
    boolean pop(DescriptorChain chain) throws VirtqueueException;

    /** {@link #tryPop} result: a chain was popped. */
    int POPPED = 1;
    /** {@link #tryPop} result: no chain is available. */
    int EMPTY = 0;
    /**
     * {@link #tryPop} result: a translation missed (an IOTLB has no entry yet, and has asked for
     * one); nothing was consumed. {@link #missAddress()} and {@link #missAccess()} say where.
     */
    int MISSED = -1;

    /**
     * {@link #pop} with a translation miss as a return value: allocates and throws nothing on a
     * miss, so a device behind an IOTLB can miss, wait for the UPDATE and pop again on its hot path.
     *
     * @param chain where the chain goes (reused)
     * @return {@link #POPPED}, {@link #EMPTY} or {@link #MISSED}
     * @throws VirtqueueException if the driver broke a rule (never for a miss)
     */
    int tryPop(DescriptorChain chain) throws VirtqueueException;

    /** @return the bus address the last translation miss was on (meaningful after {@link #MISSED}) */
    long missAddress();

    /** @return the access the last translation miss wanted */
    Access missAccess();

    /**
     * Records a chain as used; call {@link #publishUsed()} to let the driver see it. Behind an
     * IOTLB whose entry for the used ring was invalidated meanwhile, the entry is kept on the
     * device and written by the first publish that can reach the ring again.
     *
     * <p>When {@link #inOrder()}, chains must be added in the order they were popped, and a chain
     * with no writable part gets no used entry of its own: a run of them is returned with one entry,
     * written by the next add of a chain with a writable part (which that entry then names, with
     * its length) or by the next publish [virtio 2.7.9, 2.8.8]. The driver takes the whole run
     * back; nothing changes for the caller, and without IN_ORDER every add writes its own entry.
     *
     * @param head the head of a chain this queue popped and has not yet returned
     * @param writtenLength the bytes written into the chain's writable part [virtio 2.7.8]
     * @throws IllegalStateException if {@code head} is not in flight, the queue is broken, or (in
     *     order) an earlier popped chain has not been added yet
     * @throws IllegalArgumentException if {@code writtenLength} is negative or larger than the
     *     chain's writable length
     */
    void addUsed(int head, long writtenLength);

    /**
     * Publishes every used entry added since the last publish (a release store of the used
     * index), then decides whether the driver wants an interrupt.
     *
     * @return whether to interrupt the driver; false when nothing was added, the queue is broken,
     *     or the ring areas missed in an IOTLB (nothing is published then; publish again later)
     */
    boolean publishUsed();

    /**
     * Publishes like {@link #publishUsed()} but makes no interrupt decision, and so needs no full
     * fence: one release store. For a driver that polls and never sleeps (interrupts off for good).
     * With a driver that may sleep, use {@link #publishUsed()}, or an interrupt can be lost.
     */
    void publishUsedQuiet();

    /**
     * Asks the driver for kicks again and checks for chains that arrived meanwhile; call this
     * before sleeping, and pop again instead if it returns true (otherwise a kick may be lost).
     *
     * @return whether chains are already available; also true when the ring areas missed in an
     *     IOTLB (nothing was written): pop, which reports the miss
     * @throws VirtqueueException if the queue is broken, or the avail index is now invalid
     */
    boolean enableNotifications() throws VirtqueueException;

    /**
     * Tells the driver that kicks are not wanted (a hint; skipped when the ring areas miss in an
     * IOTLB).
     */
    void disableNotifications();

    /** @return whether a fatal error latched the queue broken */
    boolean isBroken();

    /** @return the fatal error that broke the queue, or {@code null} */
    VirtqueueException brokenReason();

    /**
     * @return the next avail index the device will read (vhost-user's {@code GET_VRING_BASE}): split,
     *     the 16-bit avail idx; packed, the position in bits 0-14 and the wrap counter in bit 15
     */
    int lastAvailIdx();

    /**
     * @return the ring state in the encoding {@code SET_VRING_BASE} takes and {@code GET_VRING_BASE}
     *     returns: split, the last avail idx; packed, avail and used positions and wrap counters
     */
    int vringBase();

    /** @return how many popped chains have not yet been added as used */
    int inFlight();

    /**
     * @return whether {@link VirtioFeatures#IN_ORDER} was negotiated: chains are then used in the
     *     order they were popped, and runs of read-only chains are returned with one used entry
     */
    boolean inOrder();
}

package io.vringj.dma;

import io.vringj.memory.Access;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.VirtqueueException;
import java.util.Objects;

/**
 * The miss → park → retry protocol of a device queue behind a {@link DeviceIotlb} in message
 * mode. When {@link DeviceQueue#tryPop} reports {@link DeviceQueue#MISSED} it has consumed
 * nothing and the IOTLB has sent a MISS; this queue then parks: further pops return
 * {@link #PARKED} without touching the ring until an UPDATE covers the address that missed,
 * and then pop the same head again. Requests are neither lost nor reordered, because the head
 * stays first in the avail ring the whole time.
 *
 * <pre>
 *   pop → POPPED | EMPTY
 *       → miss: remember {address, access, epoch}, return PARKED
 *   pop while parked: epoch unchanged, or the address still not covered → PARKED (cheap)
 *                     otherwise pop again (it may park again on another address)
 * </pre>
 *
 * <p>Owned by the device thread, like the queue. Allocation-free.
 */
public final class ParkingDeviceQueue {
    /** {@link #pop} result: a chain was popped. */
    public static final int POPPED = 1;
    /** {@link #pop} result: no chain is available. */
    public static final int EMPTY = 0;
    /** {@link #pop} result: the next chain waits for an IOTLB update. */
    public static final int PARKED = -1;

    private final DeviceQueue queue;
    private final DeviceIotlb iotlb;
    private boolean parked;
    private long parkedAddress;
    private Access parkedAccess;
    private long parkedEpoch;
    private long parks;

    /**
     * @param queue the device queue, over an {@link IotlbAddressSpace} of {@code iotlb}
     * @param iotlb the IOTLB its misses go to
     */
    public ParkingDeviceQueue(DeviceQueue queue, DeviceIotlb iotlb) {
        this.queue = Objects.requireNonNull(queue, "queue");
        this.iotlb = Objects.requireNonNull(iotlb, "iotlb");
    }

    /** @return the device queue */
    public DeviceQueue queue() {
        return queue;
    }

    /**
     * Pops the next chain unless the queue is parked on a miss.
     *
     * @param chain where the chain goes
     * @return {@link #POPPED}, {@link #EMPTY} or {@link #PARKED}
     * @throws VirtqueueException for every error but a translation miss (a miss is {@link #PARKED})
     */
    public int pop(DescriptorChain chain) throws VirtqueueException {
        if (parked) {
            long epoch = iotlb.epoch();
            if (epoch == parkedEpoch || !iotlb.covers(parkedAddress, 1, parkedAccess)) {
                parkedEpoch = epoch;
                return PARKED;
            }
            parked = false;
        }
        // read before the pop: an update that lands during it moves the epoch past this value
        long epoch = iotlb.epoch();
        int r = queue.tryPop(chain);
        if (r != DeviceQueue.MISSED) {
            return r == DeviceQueue.POPPED ? POPPED : EMPTY;
        }
        // a miss is a return value: nothing allocated, nothing thrown, nothing consumed
        parked = true;
        parks++;
        parkedEpoch = epoch;
        parkedAddress = queue.missAddress();
        parkedAccess = queue.missAccess();
        return PARKED;
    }

    /** @return whether the queue waits for an IOTLB update */
    public boolean isParked() {
        return parked;
    }

    /** @return the IOVA the parked chain missed on (meaningful while {@link #isParked()}) */
    public long parkedAddress() {
        return parkedAddress;
    }

    /** @return how many times the queue parked */
    public long parks() {
        return parks;
    }
}

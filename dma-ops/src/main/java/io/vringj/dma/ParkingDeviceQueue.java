package io.vringj.dma;

import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.MissParking;
import io.vringj.ring.VirtqueueException;
import java.util.Objects;

/**
 * A device queue behind a {@link DeviceIotlb} in message mode, popped one chain at a time with
 * the miss → park → retry rule of {@link MissParking} (the rule {@link io.vringj.ring.DeviceLoop}
 * applies too). When {@link DeviceQueue#tryPop} reports {@link DeviceQueue#MISSED} it has
 * consumed nothing and the IOTLB has sent a MISS; further pops return {@link #PARKED} without
 * touching the ring until an UPDATE covers the address that missed, and then pop the same head
 * again. Requests are neither lost nor reordered, because the head stays first in the avail ring
 * the whole time.
 *
 * <p>Owned by the device thread, like the queue. Allocation-free: a miss is a return value.
 */
public final class ParkingDeviceQueue {
    /** {@link #pop} result: a chain was popped. */
    public static final int POPPED = 1;
    /** {@link #pop} result: no chain is available. */
    public static final int EMPTY = 0;
    /** {@link #pop} result: the next chain waits for an IOTLB update. */
    public static final int PARKED = -1;

    private final DeviceQueue queue;
    private final MissParking parking;

    /**
     * @param queue the device queue, over an {@link IotlbAddressSpace} of {@code iotlb}
     * @param iotlb the IOTLB its misses go to
     */
    public ParkingDeviceQueue(DeviceQueue queue, DeviceIotlb iotlb) {
        this.queue = Objects.requireNonNull(queue, "queue");
        this.parking = IotlbTranslations.parking(Objects.requireNonNull(iotlb, "iotlb"));
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
        if (parking.stillParked()) {
            return PARKED;
        }
        long stamp = parking.beforeAttempt();
        int popped = queue.tryPop(chain);
        if (popped == DeviceQueue.MISSED) {
            parking.park(stamp, queue.missAddress(), queue.missAccess());
            return PARKED;
        }
        return popped == DeviceQueue.POPPED ? POPPED : EMPTY;
    }

    /** @return whether the queue waits for an IOTLB update */
    public boolean isParked() {
        return parking.isParked();
    }

    /** @return the IOVA the parked chain missed on (meaningful while {@link #isParked()}) */
    public long parkedAddress() {
        return parking.parkedAddress();
    }

    /** @return how many times the queue parked */
    public long parks() {
        return parking.parks();
    }
}

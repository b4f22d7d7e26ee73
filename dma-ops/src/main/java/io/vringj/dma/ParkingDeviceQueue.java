package io.vringj.dma;

import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.MissParking;
import io.vringj.ring.RingError;
import io.vringj.ring.VirtqueueException;
import java.util.Objects;

/**
 * A device queue behind a {@link DeviceIotlb} in message mode, popped one chain at a time with
 * the miss → park → retry rule of {@link MissParking} (the rule {@link io.vringj.ring.DeviceLoop}
 * applies too). When {@link DeviceQueue#pop} reports {@link RingError#TRANSLATION_MISS} it has
 * consumed nothing and the IOTLB has sent a MISS; further pops return {@link #PARKED} without
 * touching the ring until an UPDATE covers the address that missed, and then pop the same head
 * again.
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
     * @throws VirtqueueException for every error but a translation miss
     */
    public int pop(DescriptorChain chain) throws VirtqueueException {
        if (parking.stillParked()) {
            return PARKED;
        }
        long stamp = parking.beforeAttempt();
        try {
            return queue.pop(chain) ? POPPED : EMPTY;
        } catch (VirtqueueException e) {
            if (parking.parkOnMiss(e, stamp)) {
                return PARKED;
            }
            throw e;
        }
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

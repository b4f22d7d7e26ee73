package io.vringj.device;

import io.vringj.ring.DeviceLoop;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.MissParking;
import org.agrona.concurrent.Agent;

/**
 * A device whose queues come in rx/tx pairs worked together by one thread (net): queue
 * {@code 2p} is pair p's rx, {@code 2p + 1} its tx [virtio 5.1.2]. Once both queues of a pair
 * are ready the back end creates both device queues, asks for the pair's worker, and calls its
 * {@link Agent#doWork()} in a loop; when that returns 0 it may sleep until the tx queue's kick.
 * On stop it calls {@link Agent#onClose()} and then reads each queue's vring base.
 *
 * <p>Behind a device IOTLB ({@code ACCESS_PLATFORM}) the back end creates the queues on the
 * pair's worker (creating them may miss), passes the IOTLB's {@link MissParking.Translations},
 * and runs each {@code doWork} (and the {@code onClose}) inside one IOTLB critical section; when
 * {@code doWork} returns 0 while parked on a miss, it sleeps until an IOTLB update wakes it.
 */
public non-sealed interface QueuePairDevice extends VirtioDevice {

    /**
     * Creates the worker of one queue pair.
     *
     * @param pair the pair, 0..queueCount()/2-1
     * @param rx its receive queue
     * @param tx its transmit queue, with the same features
     * @param rxInterrupt interrupts the driver on rx
     * @param txInterrupt interrupts the driver on tx
     * @return the worker, owned by the calling transport's worker thread from now on; its
     *     {@code doWork} throws {@link io.vringj.ring.VirtqueueException} when the driver broke a
     *     ring rule (close that connection)
     */
    default Agent pair(int pair, DeviceQueue rx, DeviceQueue tx, DeviceLoop.Notifier rxInterrupt,
                       DeviceLoop.Notifier txInterrupt) {
        return pair(pair, rx, tx, rxInterrupt, txInterrupt, null);
    }

    /**
     * Creates the worker of one queue pair whose queues may translate through an IOTLB.
     *
     * @param pair the pair, 0..queueCount()/2-1
     * @param rx its receive queue
     * @param tx its transmit queue, with the same features
     * @param rxInterrupt interrupts the driver on rx
     * @param txInterrupt interrupts the driver on tx
     * @param translations the IOTLB both queues translate through, as {@link MissParking} sees it,
     *     or {@code null} when they cannot miss (identity or protected address spaces)
     * @return the worker, owned by the calling transport's worker thread from now on
     */
    Agent pair(int pair, DeviceQueue rx, DeviceQueue tx, DeviceLoop.Notifier rxInterrupt,
               DeviceLoop.Notifier txInterrupt, MissParking.Translations translations);

    /** @return a report of the device's counters (for exit and signals) */
    String report();
}

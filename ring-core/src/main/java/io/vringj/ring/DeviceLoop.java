package io.vringj.ring;

import java.util.Objects;

/**
 * The device side's work loop over one virtqueue, written once: every device thread (the
 * vhost-user back end's queue workers, the Agrona {@link DeviceAgent}) is a thin user of it.
 *
 * <pre>
 *   run(max):  parked on a miss and nothing changed?          -> PARKED (no ring access)
 *              disable notifications (once, while busy)
 *              pop -> handler.handle -> addUsed, up to max chains
 *              publishUsed -> notify the driver if the ring says so
 *              max reached                                    -> BUSY (call again)
 *              enable notifications and recheck [virtio 2.7.10]:
 *                  chains arrived meanwhile -> loop again
 *                  none                     -> IDLE (wait for a kick)
 *              translation miss behind an IOTLB: publish what was done, park -> PARKED
 *   poll(max): as run, but a dry ring leaves notifications disabled -> EMPTY (busy polling)
 * </pre>
 *
 * <p>Enabling and then rechecking is the order that cannot lose a kick: a chain made available
 * after the recheck finds notifications enabled, so the driver kicks. A fatal ring error is
 * thrown (the queue has latched broken, so the caller never spins on it). Behind an IOTLB the
 * miss rule is {@link MissParking}'s; without one a miss is thrown like any other error.
 *
 * <p>Owned by one device thread. Allocation-free.
 */
public final class DeviceLoop {
    /** {@link #run} result: the ring is empty and notifications are enabled; wait for a kick. */
    public static final int IDLE = 0;
    /** {@link #run} result: the chain limit was reached with chains left; call again. */
    public static final int BUSY = 1;
    /** {@link #run} result: a translation missed; call again once the IOTLB was updated. */
    public static final int PARKED = 2;
    /**
     * {@link #poll} result: the ring is empty and notifications stay disabled; poll again, and
     * call {@link #run} once before sleeping (it enables notifications and rechecks).
     */
    public static final int EMPTY = 3;

    /** How the device interrupts the driver (an eventfd write, an unpark). */
    @FunctionalInterface
    public interface Notifier {
        /** Notifies the driver that used buffers are there. */
        void notifyDriver();
    }

    private final DeviceQueue queue;
    private final ChainHandler handler;
    private final Notifier notifier;
    private final MissParking parking;
    private final DescriptorChain chain = new DescriptorChain();
    private boolean notificationsEnabled = true;
    private long chains;
    private long bytes;

    /**
     * A loop over a queue that cannot miss (identity or protected address spaces).
     *
     * @param queue the device queue this loop alone uses
     * @param handler what to do with each chain
     * @param notifier how to interrupt the driver
     */
    public DeviceLoop(DeviceQueue queue, ChainHandler handler, Notifier notifier) {
        this(queue, handler, notifier, null);
    }

    /**
     * @param queue the device queue this loop alone uses
     * @param handler what to do with each chain
     * @param notifier how to interrupt the driver
     * @param parking the miss rule when the queue translates through an IOTLB, or {@code null}
     */
    public DeviceLoop(DeviceQueue queue, ChainHandler handler, Notifier notifier, MissParking parking) {
        this.queue = Objects.requireNonNull(queue, "queue");
        this.handler = Objects.requireNonNull(handler, "handler");
        this.notifier = Objects.requireNonNull(notifier, "notifier");
        this.parking = parking;
    }

    /**
     * Handles available chains, at most {@code maxChains}.
     *
     * @param maxChains the most chains handled before returning, at least 1
     * @return {@link #IDLE}, {@link #BUSY} or {@link #PARKED}
     * @throws VirtqueueException a ring error (the queue is latched broken if it is fatal), or a
     *     translation miss when this loop has no {@link MissParking}
     */
    public int run(int maxChains) throws VirtqueueException {
        return run(maxChains, false);
    }

    /**
     * Handles available chains like {@link #run}, for a device thread that busy polls the ring for
     * a while before it sleeps (Linux vhost's {@code busyloop_timeout}): when the ring runs dry,
     * notifications stay disabled and the result is {@link #EMPTY}, so the driver need not kick
     * while the thread polls. Before sleeping the thread must call {@link #run}, which enables
     * notifications and rechecks, or a chain made available meanwhile would wait for a kick that
     * never comes [virtio 2.7.10].
     *
     * @param maxChains the most chains handled before returning, at least 1
     * @return {@link #EMPTY}, {@link #BUSY} or {@link #PARKED}
     * @throws VirtqueueException as {@link #run}
     */
    public int poll(int maxChains) throws VirtqueueException {
        return run(maxChains, true);
    }

    private int run(int maxChains, boolean stayQuiet) throws VirtqueueException {
        if (parking != null && parking.stillParked()) {
            return PARKED;
        }
        // read before the attempt: a change during it moves the stamp past this value
        long stamp = parking == null ? 0 : parking.beforeAttempt();
        int done = 0;
        try {
            while (true) {
                if (notificationsEnabled) {
                    queue.disableNotifications();
                    notificationsEnabled = false;
                }
                while (done < maxChains) {
                    // behind an IOTLB a miss is a return value; without one it is thrown like any error
                    int popped = parking == null
                        ? (queue.pop(chain) ? DeviceQueue.POPPED : DeviceQueue.EMPTY) : queue.tryPop(chain);
                    if (popped == DeviceQueue.MISSED) {
                        publish();
                        parking.park(stamp, queue.missAddress(), queue.missAccess());
                        return PARKED;
                    }
                    if (popped == DeviceQueue.EMPTY) {
                        break;
                    }
                    long written = handler.handle(chain);
                    queue.addUsed(chain.head(), written);
                    done++;
                    chains++;
                    bytes += written;
                }
                publish();
                if (done >= maxChains) {
                    return BUSY;
                }
                if (stayQuiet) {
                    return EMPTY;
                }
                notificationsEnabled = true;
                if (!queue.enableNotifications()) {
                    return IDLE;
                }
            }
        } catch (VirtqueueException e) {
            // publish what was completed before the failure, so the driver does not lose it
            publish();
            if (parking != null && parking.parkOnMiss(e, stamp)) {
                return PARKED;
            }
            throw e;
        }
    }

    private void publish() throws VirtqueueException {
        if (queue.publishUsed()) {
            notifier.notifyDriver();
        }
    }

    /** @return the queue */
    public DeviceQueue queue() {
        return queue;
    }

    /** @return chains handled so far (read on the loop's thread, or after it stopped) */
    public long chains() {
        return chains;
    }

    /** @return bytes written into chains so far (read on the loop's thread, or after it stopped) */
    public long bytesWritten() {
        return bytes;
    }

    /** @return whether the loop waits for a translation (see {@link MissParking}) */
    public boolean isParked() {
        return parking != null && parking.isParked();
    }
}

package io.vringj.ring;

import java.util.Objects;
import org.agrona.concurrent.Agent;

/**
 * A device worker for one virtqueue, as an Agrona {@link Agent}: run it with an
 * {@link org.agrona.concurrent.AgentRunner} and the {@link org.agrona.concurrent.IdleStrategy}
 * you want. It pops chains in batches, hands each to a {@link ChainHandler}, returns it as
 * used, publishes once per batch and interrupts the driver when the ring says to.
 *
 * <p>While it finds work it keeps kicks disabled. When the ring runs dry it enables them and
 * rechecks (the order that cannot lose a kick) before reporting no work, so an idle strategy
 * may then sleep until a kick wakes the thread — see {@link ParkingIdleStrategy}.
 *
 * <p>A fatal ring error stops the agent: {@link #onClose()} runs and {@link #failure()} says
 * why; the queue is latched broken and is never spun on.
 */
public final class DeviceAgent implements Agent {

    /** What the device does with one chain. */
    @FunctionalInterface
    public interface ChainHandler {
        /**
         * Consumes and produces in place.
         *
         * @param chain the validated chain, valid until this method returns
         * @return the number of bytes written into the chain's writable part
         */
        long process(DescriptorChain chain);
    }

    /** How the device interrupts the driver (an eventfd write, an unpark). */
    @FunctionalInterface
    public interface Notifier {
        /** Notifies the peer. */
        void notifyPeer();
    }

    private final String name;
    private final DeviceQueue queue;
    private final ChainHandler handler;
    private final Notifier interrupt;
    private final int batch;
    private final DescriptorChain chain = new DescriptorChain();
    private boolean kicksEnabled = true;
    private long chains;
    private volatile VirtqueueException failure;

    /**
     * @param name the agent's role name
     * @param queue the device queue this agent alone uses
     * @param handler what to do with each chain
     * @param interrupt how to interrupt the driver
     * @param batch the most chains handled before publishing, at least 1
     */
    public DeviceAgent(String name, DeviceQueue queue, ChainHandler handler, Notifier interrupt, int batch) {
        this.name = Objects.requireNonNull(name, "name");
        this.queue = Objects.requireNonNull(queue, "queue");
        this.handler = Objects.requireNonNull(handler, "handler");
        this.interrupt = Objects.requireNonNull(interrupt, "interrupt");
        if (batch < 1) {
            throw new IllegalArgumentException("batch " + batch + " must be at least 1");
        }
        this.batch = batch;
    }

    @Override
    public int doWork() throws VirtqueueException {
        int work = 0;
        try {
            while (work < batch) {
                if (!queue.pop(chain)) {
                    if (work > 0 || !enableKicksFoundMore()) {
                        break;
                    }
                    continue;
                }
                if (kicksEnabled) {
                    queue.disableNotifications();
                    kicksEnabled = false;
                }
                queue.addUsed(chain.head(), handler.process(chain));
                work++;
            }
        } catch (VirtqueueException e) {
            if (e.fatal()) {
                failure = e;
                throw e;
            }
            // a translation miss: nothing was consumed; publish what was done and retry later
        }
        if (work > 0) {
            chains += work;
            if (queue.publishUsed()) {
                interrupt.notifyPeer();
            }
        }
        return work;
    }

    /** Enables kicks before going idle; returns whether chains arrived meanwhile. */
    private boolean enableKicksFoundMore() throws VirtqueueException {
        if (kicksEnabled) {
            return false;
        }
        kicksEnabled = true;
        return queue.enableNotifications();
    }

    @Override
    public String roleName() {
        return name;
    }

    /** @return chains handled so far (read from the agent's own thread, or after it stopped) */
    public long chainsHandled() {
        return chains;
    }

    /** @return the fatal error that stopped the agent, or {@code null} */
    public VirtqueueException failure() {
        return failure;
    }
}

package io.vringj.ring;

import java.util.Objects;
import org.agrona.concurrent.Agent;

/**
 * A {@link DeviceLoop} as an Agrona {@link Agent}: run it with an
 * {@link org.agrona.concurrent.AgentRunner} and the {@link org.agrona.concurrent.IdleStrategy}
 * you want. Each duty cycle runs the loop for up to one batch of chains.
 *
 * <p>When the ring runs dry the loop has enabled notifications and rechecked before the agent
 * reports no work, so an idle strategy may then sleep until a kick wakes the thread — see
 * {@link ParkingIdleStrategy}. A translation miss also reports no work (the loop is parked
 * until the IOTLB changes).
 *
 * <p>A fatal ring error stops the agent: {@link #onClose()} runs and {@link #failure()} says
 * why; the queue is latched broken and is never spun on.
 *
 * <p>Agrona is an optional dependency of ring-core: this class and {@link ParkingIdleStrategy}
 * need it on the module path; the rest of the module does not.
 */
public final class DeviceAgent implements Agent {
    private final String name;
    private final DeviceLoop loop;
    private final int batch;
    private volatile VirtqueueException failure;

    /**
     * @param name the agent's role name
     * @param queue the device queue this agent alone uses
     * @param handler what to do with each chain
     * @param interrupt how to interrupt the driver
     * @param batch the most chains handled per duty cycle, at least 1
     */
    public DeviceAgent(String name, DeviceQueue queue, ChainHandler handler, DeviceLoop.Notifier interrupt,
                       int batch) {
        this(name, new DeviceLoop(queue, handler, interrupt), batch);
    }

    /**
     * @param name the agent's role name
     * @param loop the loop to run (e.g. with a {@link MissParking} behind an IOTLB)
     * @param batch the most chains handled per duty cycle, at least 1
     */
    public DeviceAgent(String name, DeviceLoop loop, int batch) {
        this.name = Objects.requireNonNull(name, "name");
        this.loop = Objects.requireNonNull(loop, "loop");
        if (batch < 1) {
            throw new IllegalArgumentException("batch " + batch + " must be at least 1");
        }
        this.batch = batch;
    }

    @Override
    public int doWork() throws VirtqueueException {
        long before = loop.chains();
        try {
            loop.run(batch);
        } catch (VirtqueueException e) {
            failure = e;
            throw e;
        }
        // at most batch chains: the difference fits an int
        return (int) (loop.chains() - before);
    }

    @Override
    public String roleName() {
        return name;
    }

    /** @return chains handled so far (read from the agent's own thread, or after it stopped) */
    public long chainsHandled() {
        return loop.chains();
    }

    /** @return the fatal error that stopped the agent, or {@code null} */
    public VirtqueueException failure() {
        return failure;
    }
}

package io.vringj.ring;

import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.IdleStrategy;

/**
 * An idle strategy that sleeps until woken: a kick from the driver is
 * {@link LockSupport#unpark(Thread)} of the worker thread. It spins a little first, because a
 * kick often follows within microseconds, then parks with no timeout. Use it with
 * {@link DeviceAgent}, which enables kicks and rechecks the ring before it reports no work, so
 * a kick cannot be lost between the check and the park.
 *
 * <p>{@link org.agrona.concurrent.AgentRunner#close()} interrupts a parked thread, which ends the park.
 */
public final class ParkingIdleStrategy implements IdleStrategy {
    private final int spins;
    private int spun;

    /**
     * @param spins how many idle rounds to spin before parking, at least 0
     */
    public ParkingIdleStrategy(int spins) {
        if (spins < 0) {
            throw new IllegalArgumentException("spins " + spins + " must be at least 0");
        }
        this.spins = spins;
    }

    @Override
    public void idle(int workCount) {
        if (workCount > 0) {
            spun = 0;
        } else {
            idle();
        }
    }

    @Override
    public void idle() {
        if (spun < spins) {
            spun++;
            Thread.onSpinWait();
        } else {
            LockSupport.park(this);
        }
    }

    @Override
    public void reset() {
        spun = 0;
    }

    @Override
    public String alias() {
        return "parking";
    }
}

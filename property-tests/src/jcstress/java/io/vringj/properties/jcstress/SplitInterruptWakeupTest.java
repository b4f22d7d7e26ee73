package io.vringj.properties.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.ZZ_Result;

/**
 * No lost interrupt: a driver about to sleep calls {@code enableInterrupts()} and polls again if
 * it returns true; a device calls {@code publishUsed()} and interrupts if it returns true. Both
 * false would leave a used chain with the driver asleep and no interrupt coming.
 *
 * <p>Before the race the driver has turned interrupts off and (with EVENT_IDX) its used_event
 * is stale, so a device that read the old value would decide not to interrupt.
 *
 * <p>r1: the device interrupts; r2: the driver sees the used chain on its recheck.
 */
public final class SplitInterruptWakeupTest {
    private SplitInterruptWakeupTest() {
    }

    private static int popOne(Rings rings) {
        int head = rings.popOne();
        rings.driver.disableInterrupts();
        return head;
    }

    /** Notification by the NO_INTERRUPT flag. */
    @JCStressTest
    @Description("enable interrupts then recheck never loses an interrupt (flags)")
    @Outcome(id = "false, false", expect = FORBIDDEN, desc = "lost wake-up: driver sleeps, device does not interrupt")
    @Outcome(expect = ACCEPTABLE, desc = "the driver is woken or sees the used chain itself")
    @State
    public static class Flags {
        private final Rings rings = Rings.split(false, 100);
        private final int head = popOne(rings);

        /** The device returns the chain and publishes. */
        @Actor
        public void device(ZZ_Result r) {
            r.r1 = rings.addUsedAndPublish(head);
        }

        /** The driver enables interrupts and rechecks. */
        @Actor
        public void driver(ZZ_Result r) {
            r.r2 = rings.driver.enableInterrupts();
        }
    }

    /** Notification by used_event (VIRTIO_F_EVENT_IDX). */
    @JCStressTest
    @Description("enable interrupts then recheck never loses an interrupt (event index)")
    @Outcome(id = "false, false", expect = FORBIDDEN, desc = "lost wake-up: driver sleeps, device does not interrupt")
    @Outcome(expect = ACCEPTABLE, desc = "the driver is woken or sees the used chain itself")
    @State
    public static class EventIndex {
        private final Rings rings = Rings.split(true, 100);
        private final int head = popOne(rings);

        {
            // as if the driver last asked to hear about index 90: need_event(90, 101, 100) is false
            rings.staleUsedEvent(90);
        }

        /** The device returns the chain and publishes. */
        @Actor
        public void device(ZZ_Result r) {
            r.r1 = rings.addUsedAndPublish(head);
        }

        /** The driver enables interrupts and rechecks. */
        @Actor
        public void driver(ZZ_Result r) {
            r.r2 = rings.driver.enableInterrupts();
        }
    }
}

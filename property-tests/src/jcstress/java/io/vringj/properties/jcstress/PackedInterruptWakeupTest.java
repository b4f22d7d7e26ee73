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
 * No lost interrupt on the packed ring [virtio 2.8.10]: a driver about to sleep calls
 * {@code enableInterrupts()} (writing its event suppression structure) and polls again if it
 * returns true; a device calls {@code publishUsed()} (writing the used flags, then reading the
 * driver's structure) and interrupts if it returns true. Both false would leave a used chain with
 * the driver asleep and no interrupt coming.
 *
 * <p>The ring starts at position 3 of lap 1 and the chain takes two descriptors, so the device's
 * used wrap counter flips. Before the race the driver has turned interrupts off; with EVENT_IDX
 * its structure then names descriptor 2 of lap 1, an event the device has already passed, so a
 * device that read the old value would decide not to interrupt.
 *
 * <p>r1: the device interrupts; r2: the driver sees the used chain on its recheck.
 */
public final class PackedInterruptWakeupTest {
    private PackedInterruptWakeupTest() {
    }

    private static int popOne(Rings rings) {
        int head = rings.popOne();
        rings.driver.disableInterrupts();
        return head;
    }

    /** Notification by the DISABLE/ENABLE flags. */
    @JCStressTest
    @Description("packed: enable interrupts then recheck never loses an interrupt (flags)")
    @Outcome(id = "false, false", expect = FORBIDDEN, desc = "lost wake-up: driver sleeps, device does not interrupt")
    @Outcome(expect = ACCEPTABLE, desc = "the driver is woken or sees the used chain itself")
    @State
    public static class Flags {
        private final Rings rings = Rings.packed(false, Rings.PACKED_NEAR_WRAP);
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

    /** Notification by descriptor event (VIRTIO_F_EVENT_IDX). */
    @JCStressTest
    @Description("packed: enable interrupts then recheck never loses an interrupt (descriptor event)")
    @Outcome(id = "false, false", expect = FORBIDDEN, desc = "lost wake-up: driver sleeps, device does not interrupt")
    @Outcome(expect = ACCEPTABLE, desc = "the driver is woken or sees the used chain itself")
    @State
    public static class EventIndex {
        private final Rings rings = Rings.packed(true, Rings.PACKED_NEAR_WRAP);
        private final int head = popOne(rings);

        {
            // descriptor 2 of lap 1: behind the used chain at 3 (lap 1), so need_event is false
            rings.staleDriverEvent(Rings.PACKED_NEAR_WRAP - 1);
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

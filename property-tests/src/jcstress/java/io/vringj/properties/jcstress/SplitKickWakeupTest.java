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
 * No lost kick: a device about to sleep calls {@code enableNotifications()} and pops again if it
 * returns true; a driver calls {@code publish()} and kicks if it returns true. Both false would
 * leave a published chain with the device asleep and no kick coming. The full fences in both
 * (store our side, fence, load the other side: a Dekker pattern) forbid it.
 *
 * <p>Before the race the device has turned notifications off and its avail_event (with
 * EVENT_IDX) is stale, so a driver that read the old value would decide not to kick.
 *
 * <p>r1: the driver kicks; r2: the device sees the chain on its recheck.
 */
public final class SplitKickWakeupTest {
    private SplitKickWakeupTest() {
    }

    /** Notification by the NO_NOTIFY flag. */
    @JCStressTest
    @Description("enable notifications then recheck never loses a kick (flags)")
    @Outcome(id = "false, false", expect = FORBIDDEN, desc = "lost wake-up: device sleeps, driver does not kick")
    @Outcome(expect = ACCEPTABLE, desc = "the device is woken or sees the chain itself")
    @State
    public static class Flags {
        private final Rings rings = Rings.split(false, 100);

        {
            rings.device.disableNotifications();
        }

        /** The driver adds and publishes. */
        @Actor
        public void driver(ZZ_Result r) {
            r.r1 = rings.addAndPublish();
        }

        /** The device enables notifications and rechecks. */
        @Actor
        public void device(ZZ_Result r) {
            r.r2 = rings.enableNotifications();
        }
    }

    /** Notification by avail_event (VIRTIO_F_EVENT_IDX). */
    @JCStressTest
    @Description("enable notifications then recheck never loses a kick (event index)")
    @Outcome(id = "false, false", expect = FORBIDDEN, desc = "lost wake-up: device sleeps, driver does not kick")
    @Outcome(expect = ACCEPTABLE, desc = "the device is woken or sees the chain itself")
    @State
    public static class EventIndex {
        private final Rings rings = Rings.split(true, 100);

        {
            rings.device.disableNotifications();
            // as if the device last asked to hear about index 90: need_event(90, 101, 100) is false
            rings.staleAvailEvent(90);
        }

        /** The driver adds and publishes. */
        @Actor
        public void driver(ZZ_Result r) {
            r.r1 = rings.addAndPublish();
        }

        /** The device enables notifications and rechecks. */
        @Actor
        public void device(ZZ_Result r) {
            r.r2 = rings.enableNotifications();
        }
    }
}

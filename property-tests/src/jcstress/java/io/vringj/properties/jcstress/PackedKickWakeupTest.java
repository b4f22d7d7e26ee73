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
 * No lost kick on the packed ring [virtio 2.8.10]: a device about to sleep calls
 * {@code enableNotifications()} (writing its event suppression structure) and pops again if it
 * returns true; a driver calls {@code publish()} (making the head available, then reading the
 * device's structure) and kicks if it returns true. Both false would leave a published chain with
 * the device asleep and no kick coming; the full fences on both sides forbid it.
 *
 * <p>The ring starts at position 3 of lap 1, so the chain crosses the end of the ring and the
 * driver's wrap counter flips. Before the race the device has turned notifications off; with
 * EVENT_IDX its structure then names descriptor 2 of lap 1, an event the driver has already
 * passed, so a driver that read the old value would decide not to kick.
 *
 * <p>r1: the driver kicks; r2: the device sees the chain on its recheck.
 */
public final class PackedKickWakeupTest {
    private PackedKickWakeupTest() {
    }

    /** Notification by the DISABLE/ENABLE flags. */
    @JCStressTest
    @Description("packed: enable notifications then recheck never loses a kick (flags)")
    @Outcome(id = "false, false", expect = FORBIDDEN, desc = "lost wake-up: device sleeps, driver does not kick")
    @Outcome(expect = ACCEPTABLE, desc = "the device is woken or sees the chain itself")
    @State
    public static class Flags {
        private final Rings rings = Rings.packed(false, Rings.PACKED_NEAR_WRAP);

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

    /** Notification by descriptor event (VIRTIO_F_EVENT_IDX). */
    @JCStressTest
    @Description("packed: enable notifications then recheck never loses a kick (descriptor event)")
    @Outcome(id = "false, false", expect = FORBIDDEN, desc = "lost wake-up: device sleeps, driver does not kick")
    @Outcome(expect = ACCEPTABLE, desc = "the device is woken or sees the chain itself")
    @State
    public static class EventIndex {
        private final Rings rings = Rings.packed(true, Rings.PACKED_NEAR_WRAP);

        {
            rings.device.disableNotifications();
            // descriptor 2 of lap 1: behind the chain at 3 (lap 1) and 0 (lap 0), so need_event is false
            rings.staleDeviceEvent(Rings.PACKED_NEAR_WRAP - 1);
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

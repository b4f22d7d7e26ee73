package io.vringj.properties;

import java.util.Arrays;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Tuple;

/**
 * The steps a {@link RingSystem} runs, split or packed, as plain data jqwik generates and shrinks:
 * driver adds (1..6 buffers, readable and writable mixes, direct or indirect), kicks, device pops,
 * used adds in any completion order, publishes, polls and notification toggles on both sides. An
 * action that needs state it does not find (completing a chain when none is in flight) does
 * nothing, so any sublist of a sequence is still a valid sequence.
 */
final class RingActions {
    private RingActions() {
    }

    /** One step of the driver or the device. */
    sealed interface Action permits DriverAdd, Simple, DeviceAddUsed {
    }

    /** The driver adds a chain with these buffer lengths, through an indirect table if asked and negotiated. */
    record DriverAdd(int[] readable, int[] writable, boolean indirect) implements Action {
        @Override
        public String toString() {
            return "driver add R" + Arrays.toString(readable) + " W" + Arrays.toString(writable)
                + (indirect ? " indirect" : "");
        }
    }

    /** The device completes the {@code index}-th of its in-flight chains (any order), writing {@code percent}%. */
    record DeviceAddUsed(int index, int percent) implements Action {
        @Override
        public String toString() {
            return "device add used #" + index + " writing " + percent + "%";
        }
    }

    /** The steps that take no parameters. */
    enum Simple implements Action {
        DRIVER_PUBLISH, DEVICE_POP, DEVICE_PUBLISH_USED, DRIVER_POLL, DRIVER_ENABLE_INTERRUPTS,
        DRIVER_DISABLE_INTERRUPTS, DEVICE_ENABLE_NOTIFICATIONS, DEVICE_DISABLE_NOTIFICATIONS
    }

    /** Runs {@code action} on the real queues and the model (not yet checked: see {@link RingSystem#step}). */
    static void run(RingSystem system, Action action) {
        switch (action) {
            case DriverAdd a -> system.driverAdd(a.readable(), a.writable(), a.indirect());
            case DeviceAddUsed u -> {
                if (!system.deviceInFlight.isEmpty()) {
                    system.deviceAddUsed(u.index() % system.deviceInFlight.size(), u.percent());
                }
            }
            case Simple s -> {
                switch (s) {
                    case DRIVER_PUBLISH -> system.driverPublish();
                    case DEVICE_POP -> system.devicePop();
                    case DEVICE_PUBLISH_USED -> system.devicePublishUsed();
                    case DRIVER_POLL -> system.driverPoll();
                    case DRIVER_ENABLE_INTERRUPTS -> system.driverEnableInterrupts();
                    case DRIVER_DISABLE_INTERRUPTS -> system.driverDisableInterrupts();
                    case DEVICE_ENABLE_NOTIFICATIONS -> system.deviceEnableNotifications();
                    case DEVICE_DISABLE_NOTIFICATIONS -> system.deviceDisableNotifications();
                }
            }
        }
    }

    /** @return one action, adds and completions most often */
    static Arbitrary<Action> action() {
        Arbitrary<int[]> lengths = Arbitraries.integers().between(1, RingSystem.MAX_BUFFER_LENGTH).array(int[].class)
            .ofMaxSize(RingSystem.MAX_BUFFERS_PER_SIDE);
        Arbitrary<Action> add = Combinators.combine(lengths, lengths, Arbitraries.of(false, true))
            .filter((r, w, i) -> r.length + w.length > 0)
            .as((r, w, i) -> (Action) new DriverAdd(r, w, i));
        Arbitrary<Action> used = Combinators.combine(Arbitraries.integers().between(0, 15), Arbitraries.of(0, 1, 50, 99, 100))
            .as((index, percent) -> (Action) new DeviceAddUsed(index, percent));
        return Arbitraries.frequencyOf(
            Tuple.of(6, add),
            Tuple.of(3, Arbitraries.just(Simple.DRIVER_PUBLISH)),
            Tuple.of(4, Arbitraries.just(Simple.DEVICE_POP)),
            Tuple.of(5, used),
            Tuple.of(3, Arbitraries.just(Simple.DEVICE_PUBLISH_USED)),
            Tuple.of(4, Arbitraries.just(Simple.DRIVER_POLL)),
            Tuple.of(1, Arbitraries.just(Simple.DRIVER_ENABLE_INTERRUPTS)),
            Tuple.of(1, Arbitraries.just(Simple.DRIVER_DISABLE_INTERRUPTS)),
            Tuple.of(1, Arbitraries.just(Simple.DEVICE_ENABLE_NOTIFICATIONS)),
            Tuple.of(1, Arbitraries.just(Simple.DEVICE_DISABLE_NOTIFICATIONS)));
    }
}

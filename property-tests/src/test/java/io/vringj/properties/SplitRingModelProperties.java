package io.vringj.properties;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

/**
 * Model-based tests of the split ring: random action sequences of driver adds (1..6 buffers,
 * readable and writable mixes, direct or indirect), kicks, device pops, used adds in any
 * completion order, publishes, polls and notification toggles on both sides, run on the real
 * {@code DriverQueue}/{@code DeviceQueue} and on {@link RingSystem}'s model step by step. Start
 * indices sit near 65535 so the 16-bit indices wrap inside most sequences.
 *
 * <p>The sequence is a plain list of actions (jqwik shrinks it by dropping and simplifying
 * actions, 10 to 80 of them); an action that needs state it does not find — completing a chain when none is in
 * flight — does nothing, so any sublist is still a valid sequence. A failure reports the
 * shrunk sequence, the steps as run with their results, and the ring in virtio terms.
 */
class SplitRingModelProperties {
    /** One guest memory for every sequence: a fresh queue clears its ring areas itself. */
    private static final GuestMemory MEMORY = GuestMemory.builder()
        .allocate(RingSystem.BASE, RingSystem.MEMORY_SIZE, RegionKind.SHARED).build(Arena.ofAuto());

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

    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 5000)
    void everyChainCompletesExactlyOnceAndEveryDecisionMatchesTheModel(
        @ForAll("queueSizes") int queueSize, @ForAll("featureSets") long features,
        @ForAll("startIndices") int startIndex, @ForAll("actions") List<Action> actions) {
        RingSystem system = RingSystem.split(MEMORY, queueSize, features, startIndex);
        for (Action action : actions) {
            system.step(() -> run(system, action));
        }
        Statistics.label("features").collect(system.eventIdx ? "EVENT_IDX" : "flags",
            system.indirectNegotiated ? "INDIRECT_DESC" : "direct only");
        Statistics.label("indices wrapped").collect(system.splitModel().wrapped());
        system.step(system::drain);
    }

    private static void run(RingSystem system, Action action) {
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

    @Provide
    Arbitrary<Integer> queueSizes() {
        return Arbitraries.of(1, 2, 4, 8, 16);
    }

    @Provide
    Arbitrary<Long> featureSets() {
        return Arbitraries.of(0L, VirtioFeatures.bit(VirtioFeatures.EVENT_IDX),
                VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC),
                VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC))
            .map(f -> f | VirtioFeatures.bit(VirtioFeatures.VERSION_1));
    }

    @Provide
    Arbitrary<Integer> startIndices() {
        return Arbitraries.frequencyOf(
            Tuple.of(6, Arbitraries.integers().between(65535 - 8, 65535)),
            Tuple.of(1, Arbitraries.just(0)),
            Tuple.of(1, Arbitraries.integers().between(0, 65535)));
    }

    @Provide
    Arbitrary<List<Action>> actions() {
        Arbitrary<int[]> lengths = Arbitraries.integers().between(1, RingSystem.MAX_BUFFER_LENGTH).array(int[].class)
            .ofMaxSize(RingSystem.MAX_BUFFERS_PER_SIDE);
        Arbitrary<Action> add = Combinators.combine(lengths, lengths, Arbitraries.of(false, true))
            .filter((r, w, i) -> r.length + w.length > 0)
            .as((r, w, i) -> (Action) new DriverAdd(r, w, i));
        Arbitrary<Action> used = Combinators.combine(Arbitraries.integers().between(0, 15), Arbitraries.of(0, 1, 50, 99, 100))
            .as((index, percent) -> (Action) new DeviceAddUsed(index, percent));
        return Arbitraries.<Action>frequencyOf(
                Tuple.of(6, add),
                Tuple.of(3, Arbitraries.just(Simple.DRIVER_PUBLISH)),
                Tuple.of(4, Arbitraries.just(Simple.DEVICE_POP)),
                Tuple.of(5, used),
                Tuple.of(3, Arbitraries.just(Simple.DEVICE_PUBLISH_USED)),
                Tuple.of(4, Arbitraries.just(Simple.DRIVER_POLL)),
                Tuple.of(1, Arbitraries.just(Simple.DRIVER_ENABLE_INTERRUPTS)),
                Tuple.of(1, Arbitraries.just(Simple.DRIVER_DISABLE_INTERRUPTS)),
                Tuple.of(1, Arbitraries.just(Simple.DEVICE_ENABLE_NOTIFICATIONS)),
                Tuple.of(1, Arbitraries.just(Simple.DEVICE_DISABLE_NOTIFICATIONS)))
            .list().ofMinSize(10).ofMaxSize(80);
    }
}

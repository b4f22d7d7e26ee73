package io.vringj.properties;

import io.vringj.memory.GuestMemory;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.Arena;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.state.Action;
import net.jqwik.api.state.ActionChain;
import net.jqwik.api.state.Transformer;
import net.jqwik.api.statistics.Statistics;

/**
 * Model-based tests of the split ring: random sequences of driver adds (1..6 buffers, readable
 * and writable mixes, direct or indirect), kicks, device pops, used adds in any completion
 * order, publishes, polls and notification toggles on both sides, run on the real
 * {@code DriverQueue}/{@code DeviceQueue} and on {@link RingSystem}'s model step by step. Start
 * indices sit near 65535 so the 16-bit indices wrap inside most sequences.
 */
class SplitRingModelProperties {
    /** One guest memory for every sequence: a fresh queue clears its ring areas itself. */
    private static final GuestMemory MEMORY = GuestMemory.builder()
        .allocate(RingSystem.BASE, RingSystem.MEMORY_SIZE, io.vringj.memory.RegionKind.SHARED).build(Arena.ofAuto());

    /** The ring parameters of the current try; read when the action chain creates its ring. */
    private int queueSize;
    private long features;
    private int startIndex;

    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 5000)
    void everyChainCompletesExactlyOnceAndEveryDecisionMatchesTheModel(
        @ForAll("queueSizes") int queueSize, @ForAll("featureSets") long features,
        @ForAll("startIndices") int startIndex, @ForAll("ringSequences") ActionChain<RingSystem> chain) {
        // the chain creates its ring lazily in run(), from these: so the parameters and the
        // steps shrink independently
        this.queueSize = queueSize;
        this.features = features;
        this.startIndex = startIndex;
        RingSystem system = chain.withInvariant("ring matches the model", RingSystem::checkInvariants).run();
        Statistics.label("features").collect(system.eventIdx ? "EVENT_IDX" : "flags",
            system.indirectNegotiated ? "INDIRECT_DESC" : "direct only");
        Statistics.label("indices wrapped").collect(system.wrapped());
        system.step(system::drain);
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
    Arbitrary<ActionChain<RingSystem>> ringSequences() {
        return ActionChain.startWith(() -> new RingSystem(MEMORY, queueSize, features, startIndex))
            .withAction(6, new DriverAdd())
            .withAction(3, step("driver publish", RingSystem::driverPublish))
            .withAction(4, step("device pop", RingSystem::devicePop))
            .withAction(5, new DeviceAddUsed())
            .withAction(3, step("device publish used", RingSystem::devicePublishUsed))
            .withAction(4, step("driver poll", RingSystem::driverPoll))
            .withAction(1, step("driver enable interrupts", RingSystem::driverEnableInterrupts))
            .withAction(1, step("driver disable interrupts", RingSystem::driverDisableInterrupts))
            .withAction(1, step("device enable notifications", RingSystem::deviceEnableNotifications))
            .withAction(1, step("device disable notifications", RingSystem::deviceDisableNotifications))
            .withMaxTransformations(80);
    }

    private static Action.Independent<RingSystem> step(String name, java.util.function.Consumer<RingSystem> step) {
        return Action.just(Transformer.mutate(name, s -> s.step(() -> step.accept(s))));
    }

    /** The driver adds a chain of random shape. */
    static final class DriverAdd implements Action.Independent<RingSystem> {
        @Override
        public Arbitrary<Transformer<RingSystem>> transformer() {
            Arbitrary<int[]> readable = Arbitraries.integers().between(1, RingSystem.MAX_BUFFER_LENGTH).array(int[].class)
                .ofMaxSize(RingSystem.MAX_BUFFERS_PER_SIDE);
            Arbitrary<int[]> writable = Arbitraries.integers().between(1, RingSystem.MAX_BUFFER_LENGTH).array(int[].class)
                .ofMaxSize(RingSystem.MAX_BUFFERS_PER_SIDE);
            return Combinators.combine(readable, writable, Arbitraries.of(false, true))
                .filter((r, w, i) -> r.length + w.length > 0)
                .as((r, w, indirect) -> Transformer.mutate(
                    "driver add R" + java.util.Arrays.toString(r) + " W" + java.util.Arrays.toString(w)
                        + (indirect ? " indirect" : ""),
                    s -> s.step(() -> s.driverAdd(r, w, indirect))));
        }
    }

    /** The device completes any one of its in-flight chains (any completion order). */
    static final class DeviceAddUsed implements Action.Dependent<RingSystem> {
        @Override
        public boolean precondition(RingSystem state) {
            return !state.deviceInFlight.isEmpty();
        }

        @Override
        public Arbitrary<Transformer<RingSystem>> transformer(RingSystem state) {
            return Combinators.combine(Arbitraries.integers().between(0, state.deviceInFlight.size() - 1),
                    Arbitraries.of(0, 1, 50, 99, 100))
                .as((index, percent) -> Transformer.mutate("device add used #" + index + " writing " + percent + "%",
                    s -> s.step(() -> s.deviceAddUsed(index, percent))));
        }
    }
}

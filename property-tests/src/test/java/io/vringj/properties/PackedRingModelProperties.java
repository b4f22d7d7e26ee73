package io.vringj.properties;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.function.Consumer;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.state.Action;
import net.jqwik.api.state.ActionChain;
import net.jqwik.api.state.Transformer;
import net.jqwik.api.statistics.Statistics;

/**
 * Model-based tests of the packed ring: random sequences of driver adds (1..6 buffers, readable
 * and writable mixes, direct or indirect), kicks, device pops, used adds in any completion
 * order, publishes, polls and notification toggles on both sides, run on the real packed
 * {@code DriverQueue}/{@code DeviceQueue} and on {@link PackedRingSystem}'s model step by step.
 * Queue sizes include 1 and odd sizes, so wrap counters flip every few chains and chains
 * straddle the end of the ring (a wrap in the middle of a chain).
 */
class PackedRingModelProperties {
    /** One guest memory for every sequence: a fresh queue clears its ring areas itself. */
    private static final GuestMemory MEMORY = GuestMemory.builder()
        .allocate(RingSystem.BASE, RingSystem.MEMORY_SIZE, RegionKind.SHARED).build(Arena.ofAuto());

    /** The ring parameters of the current try; read when the action chain creates its ring. */
    private int queueSize;
    private long features;

    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 1000)
    void everyPackedChainCompletesExactlyOnceAndEveryDecisionMatchesTheModel(
        @ForAll("queueSizes") int queueSize, @ForAll("featureSets") long features,
        @ForAll("ringSequences") ActionChain<PackedRingSystem> chain) {
        // the chain creates its ring lazily in run(), from these: so the parameters and the
        // steps shrink independently
        this.queueSize = queueSize;
        this.features = features;
        PackedRingSystem system = chain.withInvariant("packed ring matches the model", PackedRingSystem::checkInvariants)
            .run();
        Statistics.label("features").collect(system.eventIdx ? "EVENT_IDX" : "flags",
            system.indirectNegotiated ? "INDIRECT_DESC" : "direct only");
        Statistics.label("wrap counter flips").collect(system.laps == 0 ? "0" : system.laps < 4 ? "1-3" : "4+");
        Statistics.label("a chain wrapped mid-chain").collect(system.chainsAcrossTheEnd > 0);
        Statistics.label("DESC decisions: notified / suppressed / event in the other lap").collect(
            system.descNotified > 0, system.descSuppressed > 0, system.descOtherLap > 0);
        system.step(system::drain);
    }

    /**
     * Fewer, longer sequences (up to 400 steps) on the odd and larger queue sizes: many laps of
     * both wrap counters in one ring, with the free list of buffer ids recycled many times.
     */
    @Property
    @TriesFrom(value = "vringj.fuzz.modelLongRunTries", defaultTries = 100)
    void packedRingMatchesTheModelOverLongRuns(
        @ForAll("longRunQueueSizes") int queueSize, @ForAll("featureSets") long features,
        @ForAll("longRingSequences") ActionChain<PackedRingSystem> chain) {
        this.queueSize = queueSize;
        this.features = features;
        PackedRingSystem system = chain.withInvariant("packed ring matches the model", PackedRingSystem::checkInvariants)
            .run();
        Statistics.label("wrap counter flips").collect(system.laps < 10 ? "<10" : system.laps < 40 ? "10-39" : "40+");
        system.step(system::drain);
    }

    @Provide
    Arbitrary<Integer> longRunQueueSizes() {
        return Arbitraries.of(3, 5, 13, 16);
    }

    @Provide
    Arbitrary<ActionChain<PackedRingSystem>> longRingSequences() {
        return sequences(400);
    }

    @Provide
    Arbitrary<Integer> queueSizes() {
        return Arbitraries.of(1, 2, 3, 5, 8, 13, 16);
    }

    @Provide
    Arbitrary<Long> featureSets() {
        return Arbitraries.of(0L, VirtioFeatures.bit(VirtioFeatures.EVENT_IDX),
                VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC),
                VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC))
            .map(f -> f | VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_PACKED));
    }

    @Provide
    Arbitrary<ActionChain<PackedRingSystem>> ringSequences() {
        return sequences(80);
    }

    private Arbitrary<ActionChain<PackedRingSystem>> sequences(int maxSteps) {
        return ActionChain.startWith(() -> new PackedRingSystem(MEMORY, queueSize, features))
            .withAction(6, new DriverAdd())
            .withAction(3, step("driver publish", PackedRingSystem::driverPublish))
            .withAction(4, step("device pop", PackedRingSystem::devicePop))
            .withAction(5, new DeviceAddUsed())
            .withAction(3, step("device publish used", PackedRingSystem::devicePublishUsed))
            .withAction(4, step("driver poll", PackedRingSystem::driverPoll))
            .withAction(1, step("driver enable interrupts", PackedRingSystem::driverEnableInterrupts))
            .withAction(1, step("driver disable interrupts", PackedRingSystem::driverDisableInterrupts))
            .withAction(1, step("device enable notifications", PackedRingSystem::deviceEnableNotifications))
            .withAction(1, step("device disable notifications", PackedRingSystem::deviceDisableNotifications))
            .withMaxTransformations(maxSteps);
    }

    private static Action.Independent<PackedRingSystem> step(String name, Consumer<PackedRingSystem> step) {
        return Action.just(Transformer.mutate(name, s -> s.step(() -> step.accept(s))));
    }

    /** The driver adds a chain of random shape. */
    static final class DriverAdd implements Action.Independent<PackedRingSystem> {
        @Override
        public Arbitrary<Transformer<PackedRingSystem>> transformer() {
            Arbitrary<int[]> readable = Arbitraries.integers().between(1, RingSystem.MAX_BUFFER_LENGTH).array(int[].class)
                .ofMaxSize(RingSystem.MAX_BUFFERS_PER_SIDE);
            Arbitrary<int[]> writable = Arbitraries.integers().between(1, RingSystem.MAX_BUFFER_LENGTH).array(int[].class)
                .ofMaxSize(RingSystem.MAX_BUFFERS_PER_SIDE);
            return Combinators.combine(readable, writable, Arbitraries.of(false, true))
                .filter((r, w, i) -> r.length + w.length > 0)
                .as((r, w, indirect) -> Transformer.mutate(
                    "driver add R" + Arrays.toString(r) + " W" + Arrays.toString(w) + (indirect ? " indirect" : ""),
                    s -> s.step(() -> s.driverAdd(r, w, indirect))));
        }
    }

    /** The device completes any one of its in-flight chains (any completion order). */
    static final class DeviceAddUsed implements Action.Dependent<PackedRingSystem> {
        @Override
        public boolean precondition(PackedRingSystem state) {
            return !state.deviceInFlight.isEmpty();
        }

        @Override
        public Arbitrary<Transformer<PackedRingSystem>> transformer(PackedRingSystem state) {
            return Combinators.combine(Arbitraries.integers().between(0, state.deviceInFlight.size() - 1),
                    Arbitraries.of(0, 1, 50, 99, 100))
                .as((index, percent) -> Transformer.mutate("device add used #" + index + " writing " + percent + "%",
                    s -> s.step(() -> s.deviceAddUsed(index, percent))));
        }
    }
}

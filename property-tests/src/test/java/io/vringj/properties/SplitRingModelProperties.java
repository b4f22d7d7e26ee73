package io.vringj.properties;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.properties.RingActions.Action;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.Arena;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
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

    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 5000)
    void everyChainCompletesExactlyOnceAndEveryDecisionMatchesTheModel(
        @ForAll("queueSizes") int queueSize, @ForAll("featureSets") long features,
        @ForAll("startIndices") int startIndex, @ForAll("actions") List<Action> actions) {
        RingSystem system = RingSystem.split(MEMORY, queueSize, features, startIndex);
        for (Action action : actions) {
            system.step(() -> RingActions.run(system, action));
        }
        Statistics.label("features").collect(system.eventIdx ? "EVENT_IDX" : "flags",
            system.indirectNegotiated ? "INDIRECT_DESC" : "direct only");
        Statistics.label("indices wrapped").collect(system.splitModel().wrapped());
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
    Arbitrary<List<Action>> actions() {
        return RingActions.action().list().ofMinSize(10).ofMaxSize(80);
    }
}

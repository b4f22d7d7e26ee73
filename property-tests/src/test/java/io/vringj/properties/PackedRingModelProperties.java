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
import net.jqwik.api.RandomDistribution;
import net.jqwik.api.statistics.Statistics;

/**
 * Model-based tests of the packed ring: random action sequences of driver adds (1..6 buffers,
 * readable and writable mixes, direct or indirect), kicks, device pops, used adds in any
 * completion order, publishes, polls and notification toggles on both sides, run on the real
 * packed {@code DriverQueue}/{@code DeviceQueue} and on {@link RingSystem}'s model step by
 * step. Queue sizes include 1 and odd sizes, so wrap counters flip every few chains and chains
 * straddle the end of the ring (a wrap in the middle of a chain).
 *
 * <p>As in {@link SplitRingModelProperties}, the sequence is a plain list of actions, which
 * jqwik shrinks by dropping and simplifying actions; an action that needs state it does not find
 * (completing a chain when none is in flight) does nothing, so any sublist is still a valid
 * sequence. A failure reports the shrunk sequence, the steps as run with their results, the
 * model's view and the ring in virtio terms.
 */
class PackedRingModelProperties {
    /** One guest memory for every sequence: a fresh queue clears its ring areas itself. */
    private static final GuestMemory MEMORY = GuestMemory.builder()
        .allocate(RingSystem.BASE, RingSystem.MEMORY_SIZE, RegionKind.SHARED).build(Arena.ofAuto());

    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 5000)
    void everyPackedChainCompletesExactlyOnceAndEveryDecisionMatchesTheModel(
        @ForAll("queueSizes") int queueSize, @ForAll("featureSets") long features,
        @ForAll("actions") List<Action> actions) {
        RingSystem system = runAll(queueSize, features, actions);
        RingSystem.Packed model = system.packedModel();
        Statistics.label("features").collect(system.eventIdx ? "EVENT_IDX" : "flags",
            system.indirectNegotiated ? "INDIRECT_DESC" : "direct only");
        // after the drain all four wrap counters (driver avail/used, device avail/used) agree: 4 flips a lap
        int laps = model.laps / 4;
        Statistics.label("laps of the ring").collect(laps == 0 ? "0" : laps < 4 ? "1-3" : "4+");
        Statistics.label("a chain wrapped mid-chain").collect(model.chainsAcrossTheEnd > 0);
        Statistics.label("DESC decisions: notified / suppressed / event in the other lap").collect(
            model.descNotified > 0, model.descSuppressed > 0, model.descOtherLap > 0);
    }

    /**
     * Fewer, longer sequences (up to 400 actions, 200 on average) on the odd and larger queue
     * sizes: several laps of both wrap counters in one ring, with the free list of buffer ids
     * recycled many times.
     */
    @Property
    @TriesFrom(value = "vringj.fuzz.modelLongRunTries", defaultTries = 100)
    void packedRingMatchesTheModelOverLongRuns(
        @ForAll("longRunQueueSizes") int queueSize, @ForAll("featureSets") long features,
        @ForAll("longActions") List<Action> actions) {
        RingSystem system = runAll(queueSize, features, actions);
        int laps = system.packedModel().laps / 4;
        Statistics.label("laps of the ring").collect(laps < 3 ? "<3" : laps < 10 ? "3-9" : "10+");
    }

    private static RingSystem runAll(int queueSize, long features, List<Action> actions) {
        RingSystem system = RingSystem.packed(MEMORY, queueSize, features);
        for (Action action : actions) {
            system.step(() -> RingActions.run(system, action));
        }
        system.step(system::drain);
        return system;
    }

    @Provide
    Arbitrary<Integer> queueSizes() {
        return Arbitraries.of(1, 2, 3, 5, 8, 13, 16);
    }

    @Provide
    Arbitrary<Integer> longRunQueueSizes() {
        return Arbitraries.of(3, 5, 13, 16);
    }

    @Provide
    Arbitrary<Long> featureSets() {
        return Arbitraries.of(0L, VirtioFeatures.bit(VirtioFeatures.EVENT_IDX),
                VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC),
                VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC))
            .map(f -> f | VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_PACKED));
    }

    @Provide
    Arbitrary<List<Action>> actions() {
        return RingActions.action().list().ofMinSize(10).ofMaxSize(80).withSizeDistribution(RandomDistribution.uniform());
    }

    @Provide
    Arbitrary<List<Action>> longActions() {
        return RingActions.action().list().ofMinSize(10).ofMaxSize(400).withSizeDistribution(RandomDistribution.uniform());
    }
}

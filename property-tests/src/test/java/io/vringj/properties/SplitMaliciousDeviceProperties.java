package io.vringj.properties;

import static io.vringj.properties.SplitMaliciousRing.LE_INT;
import static io.vringj.properties.SplitMaliciousRing.LE_SHORT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingError;
import io.vringj.ring.SplitRing;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.testing.SplitRingDump;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

/**
 * A malicious device: the driver side of a split ring facing a used ring written by hand —
 * bogus used ids (out of range, never offered, already returned, repeated within one batch),
 * used lengths larger than the chain's writable part, used idx jumps forwards and backwards,
 * and scribbles over the descriptor table and the avail ring the driver owns.
 *
 * <p>For every run: {@link DriverQueue#pollUsed()} returns exactly the heads a plain oracle
 * expects, with their lengths; a broken rule is reported as the matching {@link RingError} and
 * latches the queue broken (the same exception from then on, no publish, no add); a head is
 * never handed back twice for one add; free descriptors never exceed Q and return to Q when
 * everything has come back.
 */
class SplitMaliciousDeviceProperties {
    private static final long BASE = 0x3000_0000L;
    private static final RingAddresses RINGS = new RingAddresses(BASE, BASE + 0x1000, BASE + 0x2000);
    private static final long BUFFERS = BASE + 0x4000;
    private static final GuestMemory MEMORY = GuestMemory.builder().allocate(BASE, 0x1_0000, RegionKind.SHARED)
        .build(Arena.ofAuto());

    /** What the test does, as the device or as the driver. */
    sealed interface Act permits Add, WriteUsed, PublishUsedIdx, Scribble, Poll {
    }

    /** The driver adds (and publishes) a chain with {@code readable} and {@code writable} 32-byte buffers. */
    record Add(int readable, int writable) implements Act {
    }

    /** The device writes a used element; {@code id} and {@code len} are chosen against the driver's state. */
    record WriteUsed(IdChoice id, int pick, LenChoice len) implements Act {
    }

    /** The device stores used idx = its count of written elements + {@code jump}. */
    record PublishUsedIdx(int jump) implements Act {
    }

    /** The device writes over driver-owned memory (descriptor table or avail ring). */
    record Scribble(SplitMaliciousRing.Area area, int offset, long value) implements Act {
    }

    record Poll() implements Act {
        @Override
        public String toString() {
            return "driver poll";
        }
    }

    enum IdChoice { IN_FLIGHT, ALREADY_USED, NOT_OFFERED, OUT_OF_RANGE, HUGE }

    enum LenChoice { ZERO, HALF, EXACT, ONE_MORE, HUGE }

    record Case(int queueSize, long features, int startIndex, List<Act> acts) {
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.maliciousDeviceTries", defaultTries = 10_000)
    void driverReportsABrokenUsedRingAndNeverHandsABufferOutTwice(@ForAll("cases") Case c) {
        Run run = new Run(c);
        try {
            run.execute();
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\nsteps:\n" + run.log
                + SplitRingDump.dump(MEMORY, RINGS, c.queueSize()), e);
        }
        Statistics.label("outcome").collect(run.error == null ? "no error" : run.error.name());
    }

    private static final class Run {
        final Case c;
        final int q;
        final DriverQueue driver;
        final MemorySegment used;
        final StringBuilder log = new StringBuilder();
        /** head → {descriptors, writable bytes} for every chain the driver has in flight. */
        final Map<Integer, long[]> inFlight = new HashMap<>();
        /** Heads the device has written into used elements (published or not), in order. */
        final List<Integer> usedHeads = new ArrayList<>();
        int usedShadow;
        int lastUsed;
        int cachedUsed;
        int numFree;
        RingError error;

        Run(Case c) {
            this.c = c;
            this.q = c.queueSize();
            MEMORY.region(0).segment().fill((byte) 0);
            driver = DriverQueue.create(c.features(), q, MEMORY, RINGS, c.startIndex());
            used = MEMORY.slice(RINGS.deviceArea(), SplitRing.usedRingSize(q));
            usedShadow = lastUsed = cachedUsed = c.startIndex();
            numFree = q;
        }

        void execute() {
            for (Act act : c.acts()) {
                log.append("  ").append(act).append('\n');
                switch (act) {
                    case Add a -> add(a);
                    case WriteUsed w -> writeUsed(w);
                    case PublishUsedIdx p -> {
                        int idx = (usedShadow + p.jump()) & 0xFFFF;
                        used.set(LE_SHORT, 2, (short) idx);
                        log.append("    used idx = ").append(idx).append('\n');
                    }
                    case Scribble s -> new SplitMaliciousRing.FieldWrite(s.area(), s.offset(), 2, s.value())
                        .apply(MEMORY.region(0).segment());
                    case Poll p -> {
                        if (!poll()) {
                            return;
                        }
                    }
                }
                assertTrue(driver.numFree() >= 0 && driver.numFree() <= q, "numFree " + driver.numFree());
            }
            // drain: what is published comes back, then the queue is checked for leftovers
            while (error == null && poll()) {
                if (lastUsed == cachedUsed && (Short.toUnsignedInt(used.get(LE_SHORT, 2)) == lastUsed)) {
                    break;
                }
            }
            if (error == null && inFlight.isEmpty()) {
                assertEquals(q, driver.numFree(), "numFree when everything came back");
            }
        }

        private void add(Add a) {
            if (error != null) {
                assertThrows(VirtqueueException.class, () -> driver.add(chain(a)), "add on a broken queue");
                assertFalse(driver.publish(), "publish on a broken queue");
                return;
            }
            BufferChain chain = chain(a);
            int head;
            try {
                head = driver.add(chain);
            } catch (VirtqueueException e) {
                throw new AssertionError("add on a healthy queue threw " + e.getMessage(), e);
            }
            if (chain.size() > numFree) {
                assertEquals(DriverQueue.NO_ROOM, head, "no room for " + chain.size() + " with " + numFree + " free");
                return;
            }
            assertTrue(head >= 0 && head < q, "head " + head);
            assertFalse(inFlight.containsKey(head), "head " + head + " handed out while in flight");
            inFlight.put(head, new long[] {chain.size(), chain.writableLength()});
            numFree -= chain.size();
            driver.publish();
            log.append("    head ").append(head).append(", writable ").append(chain.writableLength()).append('\n');
        }

        private BufferChain chain(Add a) {
            BufferChain chain = new BufferChain(a.readable() + a.writable());
            for (int i = 0; i < a.readable(); i++) {
                chain.addReadable(BUFFERS + 0x20L * i, 0x20);
            }
            for (int i = 0; i < a.writable(); i++) {
                chain.addWritable(BUFFERS + 0x1000 + 0x20L * i, 0x20);
            }
            return chain;
        }

        private void writeUsed(WriteUsed w) {
            List<Integer> heads = new ArrayList<>(inFlight.keySet());
            heads.sort(null);
            long id = switch (w.id()) {
                case IN_FLIGHT -> heads.isEmpty() ? 0 : heads.get(w.pick() % heads.size());
                case ALREADY_USED -> usedHeads.isEmpty() ? 0 : usedHeads.get(w.pick() % usedHeads.size());
                case NOT_OFFERED -> {
                    for (int h = 0; h < q; h++) {
                        if (!inFlight.containsKey((h + w.pick()) % q)) {
                            yield (h + w.pick()) % q;
                        }
                    }
                    yield q;
                }
                case OUT_OF_RANGE -> q + (long) w.pick();
                case HUGE -> 0xFFFF_FFFFL;
            };
            long writable = inFlight.containsKey((int) Math.min(id, Integer.MAX_VALUE))
                ? inFlight.get((int) id)[1] : 0x20;
            long len = switch (w.len()) {
                case ZERO -> 0;
                case HALF -> writable / 2;
                case EXACT -> writable;
                case ONE_MORE -> writable + 1;
                case HUGE -> 0xFFFF_FFFFL;
            };
            long elem = 4 + 8L * (usedShadow & (q - 1));
            used.set(LE_INT, elem, (int) id);
            used.set(LE_INT, elem + 4, (int) len);
            usedShadow = (usedShadow + 1) & 0xFFFF;
            usedHeads.add((int) Math.min(id, Integer.MAX_VALUE));
            log.append("    used element {id=").append(id).append(" len=").append(len).append("}\n");
        }

        /** Polls once, checking against the oracle; returns false when the queue broke. */
        private boolean poll() {
            if (error != null) {
                return false;
            }
            RingError expectedError = null;
            long expectedId = -1;
            long expectedLen = -1;
            if (lastUsed == cachedUsed) {
                int idx = Short.toUnsignedInt(used.get(LE_SHORT, 2));
                if (((idx - lastUsed) & 0xFFFF) > inFlight.size()) {
                    expectedError = RingError.USED_IDX_TOO_FAR;
                } else {
                    cachedUsed = idx;
                }
            }
            if (expectedError == null && lastUsed != cachedUsed) {
                long elem = 4 + 8L * (lastUsed & (q - 1));
                expectedId = Integer.toUnsignedLong(used.get(LE_INT, elem));
                expectedLen = Integer.toUnsignedLong(used.get(LE_INT, elem + 4));
                if (expectedId >= q || !inFlight.containsKey((int) expectedId)) {
                    expectedError = RingError.USED_ID_NOT_IN_FLIGHT;
                } else if (expectedLen > inFlight.get((int) expectedId)[1]) {
                    expectedError = RingError.USED_LENGTH_TOO_LARGE;
                }
            }
            int head;
            try {
                head = driver.pollUsed();
            } catch (VirtqueueException e) {
                log.append("    -> ").append(e.getMessage()).append('\n');
                assertEquals(expectedError, e.error(), "error reported for " + e.getMessage());
                assertTrue(driver.isBroken(), "a device error breaks the driver queue");
                error = e.error();
                for (int i = 0; i < 2; i++) {
                    assertSame(e, assertThrows(VirtqueueException.class, driver::pollUsed), "poll after breaking");
                    assertSame(e, assertThrows(VirtqueueException.class,
                        () -> driver.add(new BufferChain(1).addReadable(BUFFERS, 1))), "add after breaking");
                    assertFalse(driver.publish(), "publish after breaking");
                }
                return false;
            }
            log.append("    -> head ").append(head).append(head >= 0 ? " len " + driver.usedLength() : "").append('\n');
            if (expectedError != null) {
                fail("driver accepted a used element that breaks " + expectedError + " and returned " + head);
            }
            if (lastUsed == cachedUsed) {
                assertEquals(DriverQueue.NONE, head, "nothing new was published");
                return true;
            }
            assertEquals(expectedId, head, "head returned");
            assertEquals(expectedLen, driver.usedLength(), "used length");
            long[] chain = inFlight.remove(head);
            numFree += (int) chain[0];
            lastUsed = (lastUsed + 1) & 0xFFFF;
            assertEquals(numFree, driver.numFree(), "numFree after taking head " + head + " back");
            return true;
        }
    }

    @Provide
    Arbitrary<Case> cases() {
        Arbitrary<Act> acts = Arbitraries.frequencyOf(
            Tuple.of(4, Combinators.combine(Arbitraries.integers().between(0, 2), Arbitraries.integers().between(0, 2))
                .filter((r, w) -> r + w > 0).as(Add::new)),
            Tuple.of(5, Combinators.combine(Arbitraries.frequencyOf(
                        Tuple.of(12, Arbitraries.just(IdChoice.IN_FLIGHT)), Tuple.of(1, Arbitraries.just(IdChoice.ALREADY_USED)),
                        Tuple.of(1, Arbitraries.just(IdChoice.NOT_OFFERED)), Tuple.of(1, Arbitraries.just(IdChoice.OUT_OF_RANGE)),
                        Tuple.of(1, Arbitraries.just(IdChoice.HUGE))),
                    Arbitraries.integers().between(0, 40),
                    Arbitraries.frequencyOf(Tuple.of(4, Arbitraries.of(LenChoice.ZERO, LenChoice.HALF, LenChoice.EXACT)),
                        Tuple.of(1, Arbitraries.of(LenChoice.ONE_MORE, LenChoice.HUGE))))
                .as(WriteUsed::new)),
            Tuple.of(3, Arbitraries.frequencyOf(Tuple.of(10, Arbitraries.just(0)),
                Tuple.of(1, Arbitraries.of(-1, 1, 2, 16, 17, 32768, 65535))).map(PublishUsedIdx::new)),
            Tuple.of(1, Combinators.combine(Arbitraries.of(SplitMaliciousRing.Area.DESCRIPTORS, SplitMaliciousRing.Area.AVAIL_RING),
                Arbitraries.integers().between(0, 255), Arbitraries.longs().between(0, 65535)).as(Scribble::new)),
            Tuple.of(5, Arbitraries.just(new Poll())));
        return Combinators.combine(Arbitraries.of(1, 2, 4, 8, 16),
                Arbitraries.of(0L, VirtioFeatures.bit(VirtioFeatures.EVENT_IDX))
                    .map(f -> f | VirtioFeatures.bit(VirtioFeatures.VERSION_1)),
                Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.integers().between(65535 - 8, 65535)),
                    Tuple.of(1, Arbitraries.integers().between(0, 65535))),
                acts.list().ofMinSize(1).ofMaxSize(30))
            .as(Case::new);
    }
}

package io.vringj.properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.PackedRing;
import io.vringj.ring.RingError;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.testing.PackedRingDump;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
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
import net.jqwik.api.RandomDistribution;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

/**
 * A malicious device against the packed driver queue: a real driver adds and publishes chains
 * while the "device" writes used descriptors by hand — bogus buffer ids, ids already returned,
 * lengths larger than the chain's writable part, flags for the wrong lap or no used flags at
 * all, at the driver's used position or anywhere. A reference of the driver's used position and
 * wrap counter and of its in-flight ids says, for each poll, what the driver must do: return
 * the id (a descriptor used for its lap, an id in flight, a length within the writable part),
 * ignore the descriptor (not used for its lap), or report {@code USED_ID_NOT_IN_FLIGHT} /
 * {@code USED_LENGTH_TOO_LARGE} and stay broken. The driver never hands out an id that is
 * still in flight, never returns one twice, and its free count stays Q minus what is in flight.
 */
class PackedMaliciousDeviceProperties {
    private static final GuestMemory MEMORY = GuestMemory.builder()
        .allocate(RingSystem.BASE, RingSystem.MEMORY_SIZE, RegionKind.SHARED).build(Arena.ofAuto());
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int MAX_QUEUE = 16;

    enum Kind { ADD, PUBLISH, COMPLETE, USED, POLL, ENABLE_INTERRUPTS, DISABLE_INTERRUPTS }

    /** Which id a bogus used descriptor carries. */
    enum IdChoice { IN_FLIGHT, RETURNED, SMALL, ANY }

    /** Which length it claims. */
    enum LengthChoice { WITHIN, ONE_TOO_MANY, FAR_TOO_MANY, MAX }

    /** Which AVAIL/USED bits it has. */
    enum LapChoice { USED_THIS_LAP, USED_OTHER_LAP, AVAILABLE, ANY }

    /**
     * One step. ADD: {@code readable}/{@code writable} lengths and {@code indirect}. USED: the
     * device writes a used descriptor at the driver's used position ({@code atCursor}) or at
     * position {@code pick} mod Q, with the id, length and lap bits chosen; {@code pick} also
     * picks which in-flight or returned id. COMPLETE: an honest used descriptor for in-flight
     * chain {@code pick} (mod the number in flight) at the driver's position, as a real device
     * writes it; nothing when no chain is in flight.
     */
    record Op(Kind kind, List<Integer> readable, List<Integer> writable, boolean indirect, boolean atCursor, int pick,
              IdChoice id, LengthChoice length, LapChoice lap, int any) {
        @Override
        public String toString() {
            return switch (kind) {
                case ADD -> "add R" + readable + " W" + writable + (indirect ? " indirect" : "");
                case COMPLETE -> "complete in-flight #" + pick;
                case USED -> "used " + (atCursor ? "at the driver's position" : "at #" + pick) + " id " + id + "#" + pick
                    + " len " + length + " lap " + lap + (lap == LapChoice.ANY || id == IdChoice.ANY ? " (0x"
                    + Integer.toHexString(any) + ")" : "");
                default -> kind.toString();
            };
        }
    }

    record Scenario(int queueSize, long features, List<Op> ops) {
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.maliciousDeviceTries", defaultTries = 10_000)
    void packedDriverReportsOrIgnoresBogusUsedDescriptorsAndNeverHandsAnIdOutTwice(
        @ForAll("scenarios") Scenario scenario) {
        new Run(scenario).run();
    }

    /** One scenario against a fresh driver queue, with the reference view. */
    private static final class Run {
        final Scenario s;
        final int q;
        final DriverQueue driver;
        final MemorySegment ring;
        final StringBuilder log = new StringBuilder();
        /** In-flight ids: ring positions they took and their writable bytes. */
        final Map<Integer, int[]> inFlight = new HashMap<>();
        final Map<Integer, Long> writable = new HashMap<>();
        final List<Integer> returned = new ArrayList<>();
        int usedPosition;
        boolean usedWrap = true;
        int numFree;
        int token;
        RingError broken;
        int completions;
        int ignored;

        Run(Scenario s) {
            this.s = s;
            this.q = s.queueSize();
            this.driver = DriverQueue.create(s.features(), q, MEMORY, RingSystem.RINGS);
            this.ring = MEMORY.slice(RingSystem.RINGS.descriptorArea(), PackedRing.descriptorRingSize(q));
            this.numFree = q;
        }

        void run() {
            try {
                for (Op op : s.ops()) {
                    log.append("  ").append(op);
                    step(op);
                    log.append('\n');
                    check();
                }
            } catch (AssertionError | RuntimeException e) {
                throw new AssertionError(e.getMessage() + "\nsteps:\n" + log + "\nreference: used position "
                    + usedPosition + "/" + (usedWrap ? 1 : 0) + ", in flight " + inFlight.keySet() + ", broken " + broken
                    + "\n" + PackedRingDump.dump(MEMORY, RingSystem.RINGS, q, driver, null), e);
            }
            Statistics.label("driver").collect(broken == null ? "healthy" : broken.name());
            Statistics.label("bogus descriptors ignored").collect(ignored > 0);
            Statistics.label("chains completed").collect(completions == 0 ? "0" : completions < q ? "<Q" : ">=Q");
        }

        void step(Op op) {
            switch (op.kind()) {
                case ADD -> add(op);
                case PUBLISH -> {
                    boolean kick = driver.publish();
                    log.append(" -> kick=").append(kick);
                    if (broken != null) {
                        assertFalse(kick, "a broken driver publishes nothing");
                    }
                }
                case USED -> used(op);
                case COMPLETE -> {
                    if (inFlight.isEmpty()) {
                        log.append(" (nothing in flight)");
                    } else {
                        used(op);
                    }
                }
                case POLL -> poll();
                case ENABLE_INTERRUPTS -> {
                    boolean pending = driver.enableInterrupts();
                    log.append(" -> ").append(pending);
                    if (broken == null) {
                        assertEquals(isUsed(flagsAt(usedPosition), usedWrap), pending,
                            "enableInterrupts: a used descriptor for this lap waits at the driver's position");
                    }
                }
                case DISABLE_INTERRUPTS -> driver.disableInterrupts();
            }
        }

        void add(Op op) {
            int n = op.readable().size() + op.writable().size();
            boolean indirect = op.indirect() && VirtioFeatures.has(s.features(), VirtioFeatures.INDIRECT_DESC) && n <= q;
            int needed = indirect ? 1 : n;
            long area = RingSystem.AREAS + (token++ % 64) * RingSystem.AREA_SIZE;
            BufferChain chain = new BufferChain(n);
            long at = area;
            for (int len : op.readable()) {
                chain.addReadable(at, len);
                at += len;
            }
            at = area + RingSystem.WRITABLE_OFFSET;
            for (int len : op.writable()) {
                chain.addWritable(at, len);
                at += len;
            }
            int id;
            try {
                if (indirect) {
                    driver.writeIndirectTable(chain, MEMORY.slice(area + RingSystem.TABLE_OFFSET, 16L * n));
                    id = driver.addIndirect(chain, area + RingSystem.TABLE_OFFSET);
                } else {
                    id = driver.add(chain);
                }
            } catch (VirtqueueException e) {
                log.append(" -> ").append(e.getMessage());
                assertTrue(broken != null, "add failed on a healthy driver: " + e.getMessage());
                assertEquals(broken, e.error(), "a broken driver reports its latched error");
                return;
            }
            log.append(" -> id ").append(id);
            assertTrue(broken == null, "a broken driver accepted a chain");
            if (needed > numFree) {
                assertEquals(DriverQueue.NO_ROOM, id, needed + " descriptors wanted, " + numFree + " free");
                return;
            }
            assertTrue(id >= 0 && id < q, "id " + id + " outside 0.." + (q - 1));
            assertFalse(inFlight.containsKey(id), "id " + id + " handed out while still in flight");
            inFlight.put(id, new int[] {needed});
            writable.put(id, chain.writableLength());
            numFree -= needed;
        }

        void used(Op op) {
            int position = op.atCursor() ? usedPosition : Math.floorMod(op.pick(), q);
            int id = switch (op.id()) {
                case IN_FLIGHT -> inFlight.isEmpty() ? op.pick() % q
                    : new ArrayList<>(inFlight.keySet()).get(Math.floorMod(op.pick(), inFlight.size()));
                case RETURNED -> returned.isEmpty() ? op.pick() % q : returned.get(Math.floorMod(op.pick(), returned.size()));
                case SMALL -> Math.floorMod(op.pick(), q + 2);
                case ANY -> op.any() & 0xFFFF;
            };
            long chainWritable = writable.getOrDefault(id, 0L);
            long len = switch (op.length()) {
                case WITHIN -> chainWritable == 0 ? 0 : Math.floorMod(op.pick(), chainWritable + 1);
                case ONE_TOO_MANY -> chainWritable + 1;
                case FAR_TOO_MANY -> chainWritable + 1 + Math.floorMod(op.any(), 4096);
                case MAX -> 0xFFFF_FFFFL;
            };
            boolean wrap = position >= usedPosition ? usedWrap : !usedWrap;
            int flags = switch (op.lap()) {
                case USED_THIS_LAP -> wrap ? PackedRing.DESC_F_AVAIL | PackedRing.DESC_F_USED : 0;
                case USED_OTHER_LAP -> wrap ? 0 : PackedRing.DESC_F_AVAIL | PackedRing.DESC_F_USED;
                case AVAILABLE -> wrap ? PackedRing.DESC_F_AVAIL : PackedRing.DESC_F_USED;
                case ANY -> op.any() >>> 16;
            };
            long off = 16L * position;
            ring.set(LE_SHORT, off + 12, (short) id);
            ring.set(LE_INT, off + 8, (int) len);
            ring.set(LE_SHORT, off + 14, (short) flags);
            log.append(" -> [").append(position).append("] id=").append(id).append(" len=").append(len)
                .append(" flags=").append(PackedRingDump.descriptorFlags(flags));
        }

        void poll() {
            int flags = flagsAt(usedPosition);
            int id = Short.toUnsignedInt(ring.get(LE_SHORT, 16L * usedPosition + 12));
            long len = Integer.toUnsignedLong(ring.get(LE_INT, 16L * usedPosition + 8));
            RingError want = null;
            boolean nothing = !isUsed(flags, usedWrap);
            if (!nothing && (flags & PackedRing.DESC_F_WRITE) == 0 && inFlight.containsKey(id) && writable.get(id) == 0) {
                // a used descriptor without WRITE for a chain with nothing writable: its length is
                // reserved and the driver ignores it [virtio 2.8.4]
                len = 0;
            }
            if (broken != null) {
                want = broken;
            } else if (!nothing && !inFlight.containsKey(id)) {
                want = RingError.USED_ID_NOT_IN_FLIGHT;
            } else if (!nothing && len > writable.get(id)) {
                want = RingError.USED_LENGTH_TOO_LARGE;
            }
            int got;
            try {
                got = driver.pollUsed();
            } catch (VirtqueueException e) {
                log.append(" -> ").append(e.getMessage());
                assertEquals(want, e.error(), "pollUsed failed: " + e.getMessage());
                assertTrue(driver.isBroken(), "the error is latched");
                broken = e.error();
                return;
            }
            log.append(" -> ").append(got).append(got >= 0 ? " len " + driver.usedLength() : "");
            assertEquals(null, want, "pollUsed returned " + got + " instead of failing");
            if (nothing) {
                assertEquals(DriverQueue.NONE, got, "the descriptor at the driver's position " + usedPosition + " is not "
                    + "used for lap " + (usedWrap ? 1 : 0) + ", yet pollUsed took it");
                if (flags != 0) {
                    ignored++;
                }
                return;
            }
            assertEquals(id, got, "pollUsed returned another id than the used descriptor's");
            assertTrue(inFlight.containsKey(got), "id " + got + " returned while not in flight");
            assertEquals(len, driver.usedLength(), "used length");
            int descriptors = inFlight.remove(got)[0];
            writable.remove(got);
            returned.add(got);
            completions++;
            numFree += descriptors;
            usedPosition += descriptors;
            if (usedPosition >= q) {
                usedPosition -= q;
                usedWrap = !usedWrap;
            }
        }

        void check() {
            assertEquals(broken != null, driver.isBroken(), "driver broken");
            if (broken == null) {
                assertEquals(inFlight.size(), driver.inFlight(), "driver in flight");
                assertEquals(numFree, driver.numFree(), "numFree");
                int held = inFlight.values().stream().mapToInt(d -> d[0]).sum();
                assertEquals(q - held, driver.numFree(), "numFree is Q minus the descriptors in flight");
            } else {
                try {
                    driver.pollUsed();
                    fail("a broken driver polled");
                } catch (VirtqueueException e) {
                    assertEquals(broken, e.error(), "a broken driver reports its latched error");
                }
            }
        }

        int flagsAt(int position) {
            return Short.toUnsignedInt(ring.get(LE_SHORT, 16L * position + 14));
        }

        static boolean isUsed(int flags, boolean wrap) {
            return ((flags & PackedRing.DESC_F_AVAIL) != 0) == wrap && ((flags & PackedRing.DESC_F_USED) != 0) == wrap;
        }
    }

    // ---------------------------------------------------------------- generators

    @Provide
    Arbitrary<Scenario> scenarios() {
        Arbitrary<Long> features = Arbitraries.of(0L, VirtioFeatures.bit(VirtioFeatures.EVENT_IDX),
                VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC),
                VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC))
            .map(f -> f | VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_PACKED));
        return Combinators.combine(Arbitraries.of(1, 2, 3, 5, 8, 13, MAX_QUEUE), features, op().list().ofMinSize(1).ofMaxSize(80).withSizeDistribution(RandomDistribution.uniform()))
            .as(Scenario::new);
    }

    private static Arbitrary<Op> op() {
        // short chains, so that even Q = 1..3 takes most of them
        Arbitrary<List<Integer>> lengths = Arbitraries.integers().between(1, 64).list().ofMaxSize(2);
        Arbitrary<Op> add = Combinators.combine(lengths, lengths, Arbitraries.of(false, true))
            .filter((r, w, i) -> !r.isEmpty() || !w.isEmpty())
            .as((r, w, i) -> new Op(Kind.ADD, r, w, i, false, 0, null, null, null, 0));
        Arbitrary<Op> used = Combinators.combine(
                Arbitraries.frequency(Tuple.of(4, true), Tuple.of(1, false)),
                Arbitraries.integers().between(0, 255),
                Arbitraries.frequency(Tuple.of(6, IdChoice.IN_FLIGHT), Tuple.of(2, IdChoice.RETURNED),
                    Tuple.of(2, IdChoice.SMALL), Tuple.of(1, IdChoice.ANY)),
                Arbitraries.frequency(Tuple.of(6, LengthChoice.WITHIN), Tuple.of(1, LengthChoice.ONE_TOO_MANY),
                    Tuple.of(1, LengthChoice.FAR_TOO_MANY), Tuple.of(1, LengthChoice.MAX)),
                Arbitraries.frequency(Tuple.of(6, LapChoice.USED_THIS_LAP), Tuple.of(2, LapChoice.USED_OTHER_LAP),
                    Tuple.of(1, LapChoice.AVAILABLE), Tuple.of(1, LapChoice.ANY)),
                Arbitraries.integers())
            .as((atCursor, pick, id, len, lap, any) -> new Op(Kind.USED, List.of(), List.of(), false, atCursor, pick, id,
                len, lap, any));
        // an honest completion (as a real device would write it) keeps sequences going long enough
        // for ids to be recycled and wrap counters to flip before something bogus arrives
        Arbitrary<Op> honest = Arbitraries.integers().between(0, 255).map(pick -> new Op(Kind.COMPLETE, List.of(), List.of(),
            false, true, pick, IdChoice.IN_FLIGHT, LengthChoice.WITHIN, LapChoice.USED_THIS_LAP, 0));
        return Arbitraries.frequencyOf(
            Tuple.of(6, add),
            Tuple.of(3, Arbitraries.just(simple(Kind.PUBLISH))),
            Tuple.of(5, honest),
            Tuple.of(1, used),
            Tuple.of(5, Arbitraries.just(simple(Kind.POLL))),
            Tuple.of(1, Arbitraries.just(simple(Kind.ENABLE_INTERRUPTS))),
            Tuple.of(1, Arbitraries.just(simple(Kind.DISABLE_INTERRUPTS))));
    }

    private static Op simple(Kind kind) {
        return new Op(kind, List.of(), List.of(), false, false, 0, null, null, null, 0);
    }
}

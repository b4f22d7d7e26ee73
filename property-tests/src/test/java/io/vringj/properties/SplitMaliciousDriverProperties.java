package io.vringj.properties;

import static io.vringj.properties.SplitMaliciousRing.LE_SHORT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vringj.memory.AddressSpace;
import io.vringj.properties.SplitMaliciousRing.Area;
import io.vringj.properties.SplitMaliciousRing.Desc;
import io.vringj.properties.SplitMaliciousRing.FieldWrite;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.SplitRing;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.testing.RecordingAddressSpace;
import io.vringj.testing.SplitRingDump;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Builders;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

/**
 * A malicious driver: rings written with arbitrary descriptor tables, avail rings, indices and
 * indirect tables — random, and as mutations of valid rings — then driven from the device side
 * with pops, used adds, publishes, notification toggles and further driver writes between them.
 *
 * <p>For every ring: the device reports only {@link VirtqueueException} (nothing else escapes);
 * it pops exactly what {@link SplitReferenceDevice} says is valid and breaks exactly when a rule is
 * broken; it never touches memory outside the shared region (a {@link RecordingAddressSpace}
 * checks every piece, guard bytes around the region and the secure region must not change);
 * each pop ends within Q translations in the ring plus one per entry of the indirect table it
 * enters (at most {@link DeviceQueue#MAX_CHAIN_PIECES} + 1 of those) and at most Q chains are
 * ever in flight; once broken
 * it stays broken and touches nothing.
 */
class SplitMaliciousDriverProperties {
    private static final SplitMaliciousRing.Memory MEMORY = new SplitMaliciousRing.Memory();

    /** A device-side step, or the driver writing memory between steps. */
    sealed interface Step permits Pop, PopAll, AddUsed, PublishUsed, EnableNotifications, DisableNotifications,
        DriverWrite {
    }

    record Pop() implements Step {
        @Override
        public String toString() {
            return "pop";
        }
    }

    record PopAll() implements Step {
        @Override
        public String toString() {
            return "pop until empty";
        }
    }

    record AddUsed(int index, int percent) implements Step {
    }

    record PublishUsed() implements Step {
        @Override
        public String toString() {
            return "publish used";
        }
    }

    record EnableNotifications() implements Step {
        @Override
        public String toString() {
            return "enable notifications";
        }
    }

    record DisableNotifications() implements Step {
        @Override
        public String toString() {
            return "disable notifications";
        }
    }

    record DriverWrite(FieldWrite write) implements Step {
    }

    /** How the ring was first written. */
    sealed interface Ring permits RandomRing, MutatedRing {
    }

    /** Everything the driver writes at random; tables and the avail ring are cut to Q. */
    record RandomRing(List<Desc> table, List<List<Desc>> indirectTables, List<Integer> availRing, int availIdxAhead,
                      int availFlags, int usedEvent, int usedIdx) implements Ring {
    }

    /** A valid ring built with {@link DriverQueue}, then mutated. */
    record MutatedRing(List<ChainShape> chains, List<FieldWrite> mutations) implements Ring {
    }

    record ChainShape(int readable, int writable, boolean indirect) {
    }

    record Case(int queueSize, long features, int lastAvailIdx, RingAddresses rings, Ring ring, List<Step> steps) {
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.maliciousDriverTries", defaultTries = 100_000)
    void deviceReportsOnlyTypedErrorsAndStaysInsideAllowedMemory(@ForAll("cases") Case c) {
        MEMORY.clearShared();
        writeRing(c);
        String before = SplitRingDump.dump(MEMORY.guest, c.rings(), c.queueSize());
        Run run = new Run(c);
        try {
            run.execute();
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\nring as first written:\n" + before + "ring now:\n"
                + SplitRingDump.dump(MEMORY.guest, c.rings(), c.queueSize()) + "steps run:\n" + run.log, e);
        }
        Statistics.label("ring").collect(c.ring() instanceof RandomRing ? "random" : "mutated valid");
        Statistics.label("outcome").collect(run.firstError == null ? "no error" : run.firstError);
        Statistics.label("chains popped").collect(run.popped == 0 ? "0" : run.popped < 4 ? "1-3" : "4+");
    }

    /** Runs one case against the device and the reference, checking every step. */
    private static final class Run {
        final Case c;
        final RecordingAddressSpace space;
        final StringBuilder log = new StringBuilder();
        final List<DescriptorChain> inFlight = new ArrayList<>();
        DeviceQueue device;
        SplitReferenceDevice reference;
        String firstError;
        int popped;

        Run(Case c) {
            this.c = c;
            this.space = new RecordingAddressSpace(AddressSpace.sharedOnly(MEMORY.guest), MEMORY.allowed());
        }

        void execute() {
            try {
                device = DeviceQueue.create(c.features(), c.queueSize(), c.rings(), space, c.lastAvailIdx());
            } catch (VirtqueueException e) {
                firstError = "activation: " + e.error();
                log.append("activation failed: ").append(e.getMessage()).append('\n');
                checkMemory();
                return;
            }
            reference = new SplitReferenceDevice(MEMORY.shared, c.queueSize(),
                VirtioFeatures.has(c.features(), VirtioFeatures.INDIRECT_DESC), c.rings(), c.lastAvailIdx());
            // every case ends by popping what is left, so every ring is walked at least once
            List<Step> steps = new ArrayList<>(c.steps());
            steps.add(new PopAll());
            for (Step step : steps) {
                log.append("  ").append(step).append('\n');
                try {
                    run(step);
                } catch (VirtqueueException e) {
                    log.append("    -> ").append(e.getMessage()).append('\n');
                    firstError = e.error().name();
                    assertTrue(e.fatal(), "only TRANSLATION_MISS is not fatal, and sharedOnly never misses: " + e);
                    assertTrue(device.isBroken(), "a fatal error must latch the queue broken");
                    assertSame(e, device.brokenReason(), "brokenReason is the error reported");
                    staysBroken(e);
                    break;
                } catch (AssertionError e) {
                    throw e;
                } catch (Throwable t) {
                    throw new AssertionError("device let " + t + " escape; only VirtqueueException is allowed", t);
                }
                assertTrue(device.inFlight() <= c.queueSize(), "more than Q chains in flight: " + device.inFlight());
                assertEquals(reference.inFlight.cardinality(), device.inFlight(), "chains in flight");
                checkMemory();
            }
            checkMemory();
        }

        private void run(Step step) throws VirtqueueException {
            switch (step) {
                case Pop p -> pop();
                case PopAll p -> {
                    int pops = 0;
                    while (pop()) {
                        assertTrue(++pops <= c.queueSize(), "pop returned a chain " + pops + " times in a row, Q="
                            + c.queueSize());
                    }
                }
                case AddUsed a -> {
                    if (inFlight.isEmpty()) {
                        return;
                    }
                    DescriptorChain chain = inFlight.remove(Math.floorMod(a.index(), inFlight.size()));
                    long written = chain.writableLength() * a.percent() / 100;
                    // the device writes its reply in place: this lands wherever the driver pointed
                    // its writable buffers, ring areas included
                    MemorySegment reply = MemorySegment.ofArray(new byte[(int) Math.min(written, 1 << 16)]);
                    reply.fill((byte) 0x77);
                    long done = 0;
                    while (done < written) {
                        long n = Math.min(written - done, reply.byteSize());
                        chain.copyToWritable(done, reply, 0, n);
                        done += n;
                    }
                    device.addUsed(chain.head(), written);
                    reference.inFlight.clear(chain.head());
                    log.append("    -> used head ").append(chain.head()).append(" len ").append(written).append('\n');
                }
                case PublishUsed p -> device.publishUsed();
                case EnableNotifications e -> {
                    SplitReferenceDevice.Outcome expected = reference.rereadAvailIdx();
                    try {
                        boolean more = device.enableNotifications();
                        assertEquals(expected == SplitReferenceDevice.Outcome.CHAIN, more, "enableNotifications: "
                            + "chains available");
                    } catch (VirtqueueException x) {
                        assertEquals(SplitReferenceDevice.Outcome.BROKEN, expected, "enableNotifications broke the queue "
                            + "but the reference sees no broken rule");
                        throw x;
                    }
                }
                case DisableNotifications d -> device.disableNotifications();
                case DriverWrite w -> w.write().apply(MEMORY.shared);
            }
        }

        private boolean pop() throws VirtqueueException {
            DescriptorChain chain = new DescriptorChain();
            long translationsBefore = space.translations();
            long piecesBefore = space.pieces();
            SplitReferenceDevice.Outcome expected = reference.pop();
            boolean got;
            try {
                got = device.pop(chain);
            } catch (VirtqueueException e) {
                assertEquals(SplitReferenceDevice.Outcome.BROKEN, expected, "device rejected a ring the reference accepts: "
                    + e.getMessage());
                assertBounded(translationsBefore);
                throw e;
            }
            assertBounded(translationsBefore);
            if (expected == SplitReferenceDevice.Outcome.BROKEN) {
                fail("device accepted " + (got ? chain : "nothing") + " but the reference sees: " + reference.rule);
            }
            assertEquals(expected == SplitReferenceDevice.Outcome.CHAIN, got, "pop found a chain");
            if (got) {
                popped++;
                log.append("    -> ").append(chain).append('\n');
                assertEquals(reference.head, chain.head(), "head");
                assertEquals(reference.readable, chain.readableLength(), "readable bytes");
                assertEquals(reference.writable, chain.writableLength(), "writable bytes");
                assertEquals(reference.walked, space.translations() - translationsBefore,
                    "one translation per descriptor walked");
                assertEquals(space.pieces() - piecesBefore, chain.pieceCount() + indirectTablesIn(chain),
                    "pieces handed out vs pieces in the chain");
                inFlight.add(chain);
            }
            return got;
        }

        private int indirectTablesIn(DescriptorChain chain) {
            // the walk counts an indirect descriptor without adding a piece for its table
            return chain.descriptorCount() - chain.pieceCount();
        }

        private void assertBounded(long translationsBefore) {
            long used = space.translations() - translationsBefore;
            // the ring part of a walk visits at most Q descriptors (one of them may be the table's); a table's
            // buffers stop at its length or one past the piece limit, whichever comes first
            long bound = c.queueSize() + Math.min(reference.tableEntries, DeviceQueue.MAX_CHAIN_PIECES + 1L);
            assertTrue(used <= bound, "one pop made " + used + " translations, more than Q + table entries = " + bound);
        }

        private void checkMemory() {
            assertEquals(List.of(), space.violations(), "pieces outside the shared region");
            assertNull(MEMORY.damageOutsideShared(), "memory outside the shared region changed");
        }

        /** A broken queue throws the same error from then on and touches no memory. */
        private void staysBroken(VirtqueueException e) {
            MemorySegment snapshot = MemorySegment.ofArray(MEMORY.shared.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
            long translations = space.translations();
            for (int i = 0; i < 2; i++) {
                VirtqueueException again = assertThrows(VirtqueueException.class, () -> device.pop(new DescriptorChain()));
                assertSame(e, again, "pop after the queue broke");
                again = assertThrows(VirtqueueException.class, device::enableNotifications);
                assertSame(e, again, "enableNotifications after the queue broke");
                assertFalse(device.publishUsed(), "publishUsed after the queue broke");
                device.disableNotifications();
                if (!inFlight.isEmpty()) {
                    int head = inFlight.getFirst().head();
                    assertThrows(IllegalStateException.class, () -> device.addUsed(head, 0), "addUsed when broken");
                }
            }
            assertTrue(device.isBroken(), "still broken");
            assertEquals(-1, MEMORY.shared.mismatch(snapshot), "a broken queue wrote guest memory");
            assertEquals(translations, space.translations(), "a broken queue translated addresses");
            checkMemory();
        }
    }

    // ------------------------------------------------------------------ writing the ring

    private static void writeRing(Case c) {
        MemorySegment shared = MEMORY.shared;
        int q = c.queueSize();
        switch (c.ring()) {
            case RandomRing r -> {
                for (int i = 0; i < q; i++) {
                    r.table().get(i).writeTo(shared.asSlice(SplitMaliciousRing.DESC - SplitMaliciousRing.SHARED_BASE), i);
                }
                for (int t = 0; t < r.indirectTables().size(); t++) {
                    MemorySegment table = shared.asSlice(SplitMaliciousRing.INDIRECT - SplitMaliciousRing.SHARED_BASE
                        + t * SplitMaliciousRing.INDIRECT_STRIDE, SplitMaliciousRing.INDIRECT_STRIDE);
                    List<Desc> entries = r.indirectTables().get(t);
                    for (int k = 0; k < entries.size(); k++) {
                        entries.get(k).writeTo(table, k);
                    }
                }
                long avail = SplitMaliciousRing.AVAIL - SplitMaliciousRing.SHARED_BASE;
                shared.set(LE_SHORT, avail, (short) r.availFlags());
                shared.set(LE_SHORT, avail + 2, (short) (c.lastAvailIdx() + r.availIdxAhead()));
                for (int i = 0; i < q; i++) {
                    shared.set(LE_SHORT, avail + 4 + 2L * i, r.availRing().get(i).shortValue());
                }
                shared.set(LE_SHORT, avail + 4 + 2L * q, (short) r.usedEvent());
                shared.set(LE_SHORT, SplitMaliciousRing.USED - SplitMaliciousRing.SHARED_BASE + 2, (short) r.usedIdx());
            }
            case MutatedRing m -> {
                DriverQueue driver = DriverQueue.create(c.features(), q, MEMORY.guest, SplitMaliciousRing.RINGS,
                    c.lastAvailIdx());
                boolean indirect = VirtioFeatures.has(c.features(), VirtioFeatures.INDIRECT_DESC);
                int tables = 0;
                long buffer = SplitMaliciousRing.BUFFERS;
                try {
                    for (ChainShape s : m.chains()) {
                        int room = driver.numFree();
                        if (room == 0) {
                            break;
                        }
                        boolean viaTable = s.indirect() && indirect && tables < SplitMaliciousRing.INDIRECT_TABLES
                            && s.readable() + s.writable() <= q;
                        // a direct chain longer than the free descriptors is cut to fit, so small
                        // queues still get a valid ring to mutate
                        int readable = viaTable ? s.readable() : Math.min(s.readable(), room);
                        int writable = viaTable ? s.writable() : Math.min(s.writable(), room - readable);
                        BufferChain chain = new BufferChain(readable + writable);
                        for (int i = 0; i < readable; i++, buffer += 0x40) {
                            chain.addReadable(buffer, 0x40);
                        }
                        for (int i = 0; i < writable; i++, buffer += 0x40) {
                            chain.addWritable(buffer, 0x40);
                        }
                        if (viaTable) {
                            long table = SplitMaliciousRing.INDIRECT + tables++ * SplitMaliciousRing.INDIRECT_STRIDE;
                            driver.writeIndirectTable(chain, MEMORY.guest.slice(table, chain.size() * SplitRing.DESC_SIZE));
                            driver.addIndirect(chain, table);
                        } else {
                            driver.add(chain);
                        }
                    }
                } catch (VirtqueueException e) {
                    throw new AssertionError("a fresh driver queue cannot be broken", e);
                }
                driver.publish();
                for (FieldWrite w : m.mutations()) {
                    w.apply(shared);
                }
            }
        }
    }

    // ------------------------------------------------------------------ generators

    @Provide
    Arbitrary<Case> cases() {
        Arbitrary<Integer> queueSizes = Arbitraries.of(1, 2, 4, 8, 16);
        Arbitrary<Long> features = Arbitraries.of(0L, VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC),
                VirtioFeatures.bit(VirtioFeatures.EVENT_IDX),
                VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX))
            .map(f -> f | VirtioFeatures.bit(VirtioFeatures.VERSION_1));
        Arbitrary<Integer> lastAvail = Arbitraries.frequencyOf(
            Tuple.of(3, Arbitraries.integers().between(65535 - 16, 65535)),
            Tuple.of(1, Arbitraries.just(0)),
            Tuple.of(1, Arbitraries.integers().between(0, 65535)));
        Arbitrary<Ring> rings = Arbitraries.frequencyOf(
            Tuple.of(2, randomRings()),
            Tuple.of(3, mutatedRings()));
        Arbitrary<List<Step>> steps = step().list().ofMinSize(1).ofMaxSize(12);
        return Combinators.combine(queueSizes, features, lastAvail, ringAddresses(), rings, steps).as(Case::new);
    }

    private static Arbitrary<RingAddresses> ringAddresses() {
        Arbitrary<Long> odd = Arbitraries.of(1L, 2L, 4L, 8L, -16L, 0L - SplitMaliciousRing.SHARED_BASE,
            SplitMaliciousRing.SHARED_SIZE - 16, SplitMaliciousRing.SECURE_BASE - SplitMaliciousRing.SHARED_BASE,
            SplitMaliciousRing.SHARED_SIZE);
        Arbitrary<RingAddresses> skewed = Combinators.combine(Arbitraries.integers().between(0, 2), odd)
            .as((area, delta) -> switch (area) {
                case 0 -> new RingAddresses(SplitMaliciousRing.DESC + delta, SplitMaliciousRing.AVAIL, SplitMaliciousRing.USED);
                case 1 -> new RingAddresses(SplitMaliciousRing.DESC, SplitMaliciousRing.AVAIL + delta, SplitMaliciousRing.USED);
                default -> new RingAddresses(SplitMaliciousRing.DESC, SplitMaliciousRing.AVAIL, SplitMaliciousRing.USED + delta);
            });
        // no edge cases: they would make every skewed address as common as the real one
        return Arbitraries.frequencyOf(Tuple.of(30, Arbitraries.just(SplitMaliciousRing.RINGS)), Tuple.of(1, skewed))
            .withoutEdgeCases();
    }

    private static Arbitrary<Ring> randomRings() {
        Arbitrary<List<Desc>> table = descriptor().list().ofSize(SplitMaliciousRing.MAX_Q);
        Arbitrary<List<List<Desc>>> indirect = descriptor().list().ofMaxSize(SplitMaliciousRing.MAX_Q)
            .list().ofMaxSize(SplitMaliciousRing.INDIRECT_TABLES);
        Arbitrary<Integer> availEntry = Arbitraries.frequencyOf(
            Tuple.of(8, Arbitraries.integers().between(0, 3)),
            Tuple.of(4, Arbitraries.integers().between(0, SplitMaliciousRing.MAX_Q - 1)),
            Tuple.of(1, Arbitraries.integers().between(0, 65535)));
        Arbitrary<List<Integer>> availRing = availEntry.list().ofSize(SplitMaliciousRing.MAX_Q);
        Arbitrary<Integer> ahead = Arbitraries.frequencyOf(
            Tuple.of(8, Arbitraries.integers().between(0, 4)),
            Tuple.of(3, Arbitraries.integers().between(0, SplitMaliciousRing.MAX_Q + 1)),
            Tuple.of(1, Arbitraries.integers().between(0, 65535)));
        Arbitrary<Integer> u16 = Arbitraries.integers().between(0, 65535);
        return Builders.withBuilder(() -> new Object[7])
            .use(table).in((b, v) -> set(b, 0, v))
            .use(indirect).in((b, v) -> set(b, 1, v))
            .use(availRing).in((b, v) -> set(b, 2, v))
            .use(ahead).in((b, v) -> set(b, 3, v))
            .use(Arbitraries.of(0, 1)).in((b, v) -> set(b, 4, v))
            .use(u16).in((b, v) -> set(b, 5, v))
            .use(u16).in((b, v) -> set(b, 6, v))
            .build(SplitMaliciousDriverProperties::randomRing);
    }

    private static Object[] set(Object[] b, int i, Object v) {
        b[i] = v;
        return b;
    }

    @SuppressWarnings("unchecked")
    private static Ring randomRing(Object[] b) {
        return new RandomRing((List<Desc>) b[0], (List<List<Desc>>) b[1], (List<Integer>) b[2], (Integer) b[3],
            (Integer) b[4], (Integer) b[5], (Integer) b[6]);
    }

    private static Arbitrary<Ring> mutatedRings() {
        Arbitrary<ChainShape> shapes = Combinators.combine(Arbitraries.integers().between(0, 3),
                Arbitraries.integers().between(0, 3), Arbitraries.of(false, true))
            .filter((r, w, i) -> r + w > 0).as(ChainShape::new);
        return Combinators.combine(shapes.list().ofMinSize(1).ofMaxSize(6), fieldWrite().list().ofMinSize(1).ofMaxSize(4))
            .as(MutatedRing::new);
    }

    private static Arbitrary<Step> step() {
        return Arbitraries.frequencyOf(
            Tuple.of(5, Arbitraries.just(new Pop())),
            Tuple.of(2, Arbitraries.just(new PopAll())),
            Tuple.of(3, Combinators.combine(Arbitraries.integers().between(0, 15), Arbitraries.of(0, 1, 50, 100))
                .as(AddUsed::new)),
            Tuple.of(1, Arbitraries.just(new PublishUsed())),
            Tuple.of(1, Arbitraries.just(new EnableNotifications())),
            Tuple.of(1, Arbitraries.just(new DisableNotifications())),
            Tuple.of(2, fieldWrite().map(DriverWrite::new)));
    }

    private static Arbitrary<FieldWrite> fieldWrite() {
        return Combinators.combine(Arbitraries.of(Area.class), Arbitraries.integers().between(0, 1023),
            Arbitraries.of(1, 2, 4, 8), interestingValue()).as(FieldWrite::new);
    }

    private static Arbitrary<Long> interestingValue() {
        return Arbitraries.frequencyOf(
            Tuple.of(4, Arbitraries.longs().between(0, 20)),
            Tuple.of(2, Arbitraries.of(0xFFFFL, 0x8000L, 0xFFFF_FFFFL, 0x8000_0000L, -1L, Long.MIN_VALUE, 16L, 0x10L)),
            Tuple.of(2, address()),
            Tuple.of(1, Arbitraries.longs()));
    }

    private static Arbitrary<Desc> descriptor() {
        Arbitrary<Integer> flags = Arbitraries.frequencyOf(
            Tuple.of(8, Arbitraries.of(0, (int) SplitRing.DESC_F_NEXT, (int) SplitRing.DESC_F_WRITE,
                SplitRing.DESC_F_NEXT | SplitRing.DESC_F_WRITE)),
            Tuple.of(3, Arbitraries.of((int) SplitRing.DESC_F_INDIRECT, SplitRing.DESC_F_INDIRECT | SplitRing.DESC_F_WRITE,
                SplitRing.DESC_F_INDIRECT | SplitRing.DESC_F_NEXT)),
            Tuple.of(1, Arbitraries.integers().between(0, 65535)));
        Arbitrary<Integer> next = Arbitraries.frequencyOf(
            Tuple.of(8, Arbitraries.integers().between(0, 3)),
            Tuple.of(4, Arbitraries.integers().between(0, SplitMaliciousRing.MAX_Q - 1)),
            Tuple.of(1, Arbitraries.integers().between(0, 65535)));
        return Combinators.combine(address(), length(), flags, next).as(Desc::new);
    }

    private static Arbitrary<Long> address() {
        return Arbitraries.frequencyOf(
            Tuple.of(10, Arbitraries.longs().between(SplitMaliciousRing.BUFFERS, SplitMaliciousRing.SHARED_END - 0x100)),
            Tuple.of(4, Arbitraries.integers().between(0, SplitMaliciousRing.INDIRECT_TABLES - 1)
                .map(t -> SplitMaliciousRing.INDIRECT + t * SplitMaliciousRing.INDIRECT_STRIDE)),
            Tuple.of(2, Arbitraries.of(SplitMaliciousRing.DESC, SplitMaliciousRing.AVAIL, SplitMaliciousRing.USED)),
            Tuple.of(2, Arbitraries.of(SplitMaliciousRing.SHARED_BASE - 1, SplitMaliciousRing.SHARED_BASE - 16,
                SplitMaliciousRing.SHARED_END - 1, SplitMaliciousRing.SHARED_END - 16, SplitMaliciousRing.SHARED_END,
                SplitMaliciousRing.SECURE_BASE, SplitMaliciousRing.SECURE_BASE + 0x100, 0L, -16L, -1L, Long.MIN_VALUE,
                Long.MAX_VALUE)),
            Tuple.of(1, Arbitraries.longs()));
    }

    private static Arbitrary<Long> length() {
        return Arbitraries.frequencyOf(
            Tuple.of(10, Arbitraries.longs().between(1, 64)),
            Tuple.of(4, Arbitraries.integers().between(1, 20).map(k -> 16L * k)),
            Tuple.of(1, Arbitraries.just(0L)),
            Tuple.of(2, Arbitraries.of(SplitMaliciousRing.SHARED_SIZE, SplitMaliciousRing.SHARED_SIZE - 0x4000, 0x1000L,
                0xFFFF_FFFFL, 0x8000_0000L, 0xFFFF_FFF0L)),
            Tuple.of(1, Arbitraries.longs().between(0, 0xFFFF_FFFFL)));
    }
}

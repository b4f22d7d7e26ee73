package io.vringj.properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.IotlbMessage;
import io.vringj.dma.IotlbMessageProcessor;
import io.vringj.dma.IotlbProtocolException;
import io.vringj.dma.Permission;
import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.memory.TranslationException;
import java.lang.foreign.Arena;
import java.util.ArrayList;
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
 * The device IOTLB against a reference map (an UPDATE trims what it overlaps, an INVALIDATE drops
 * whole entries): random UPDATE / INVALIDATE messages, alone or in
 * BATCH_BEGIN … BATCH_END groups, zero-size messages the protocol refuses, and probes — each probe
 * a translation whose outcome (the pieces in IOVA order, or MISS / FAULT at the first bad
 * address) must equal what the reference computes from its list of entries. Inside a batch the
 * IOTLB must still translate as before the batch; the epoch moves once per message outside a
 * batch and once per batch. A small capacity makes UPDATE evict the oldest entry.
 */
class DeviceIotlbProperties {
    private static final long UBASE = 0x1000_0000L;
    private static final long USIZE = 1 << 20;
    private static final long IOVA = 0x10_0000L;
    private static final long PAGE = 4096;
    private static final GuestMemory MEMORY = GuestMemory.builder().allocate(UBASE, USIZE, RegionKind.SHARED)
        .build(Arena.ofAuto());

    /** What the test sends or asks. */
    sealed interface Op permits Update, Invalidate, Begin, End, Probe, Batch {
    }

    record Update(long iova, long size, long uaddr, Permission permission) implements Op {
        @Override
        public String toString() {
            return String.format("UPDATE [0x%x, +0x%x) -> 0x%x %s", iova, size, uaddr, permission);
        }
    }

    record Invalidate(long iova, long size) implements Op {
        @Override
        public String toString() {
            return String.format("INVALIDATE [0x%x, +0x%x)", iova, size);
        }
    }

    record Begin() implements Op {
        @Override
        public String toString() {
            return "BATCH_BEGIN";
        }
    }

    record End() implements Op {
        @Override
        public String toString() {
            return "BATCH_END";
        }
    }

    /** BATCH_BEGIN, the inner operations (probes see the state before the batch), BATCH_END. */
    record Batch(List<Op> inner) implements Op {
    }

    record Probe(long iova, long length, Access access) implements Op {
        @Override
        public String toString() {
            return String.format("translate [0x%x, +0x%x) %s", iova, length, access);
        }
    }

    /** One entry of the reference map. */
    record Entry(long start, long last, long uaddr, int perm, long age) {
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 5000)
    void translationsMatchAReferenceMapAfterUpdatesInvalidationsAndBatches(
        @ForAll("capacities") int capacity, @ForAll("operations") List<Op> ops) throws Exception {
        DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(MEMORY), capacity);
        IotlbMessageProcessor processor = new IotlbMessageProcessor(iotlb);
        List<Entry> model = new ArrayList<>();
        List<Op> batch = null;
        long epoch = iotlb.epoch();
        long age = 0;
        StringBuilder log = new StringBuilder();
        List<Op> flat = new ArrayList<>();
        for (Op op : ops) {
            if (op instanceof Batch b) {
                flat.add(new Begin());
                flat.addAll(b.inner());
                flat.add(new End());
            } else {
                flat.add(op);
            }
        }
        try {
            for (Op op : flat) {
                log.append("  ").append(op).append('\n');
                switch (op) {
                    case Update u -> {
                        IotlbMessage m = IotlbMessage.update(u.iova(), u.size(), u.uaddr(), u.permission());
                        if (u.size() == 0) {
                            assertThrows(IotlbProtocolException.class, () -> processor.process(m), "zero-size UPDATE");
                        } else if (batch != null) {
                            processor.process(m);
                            batch.add(u);
                        } else {
                            processor.process(m);
                            age = apply(model, u, capacity, age);
                            epoch++;
                        }
                    }
                    case Invalidate v -> {
                        IotlbMessage m = IotlbMessage.invalidate(v.iova(), v.size());
                        if (v.size() == 0) {
                            assertThrows(IotlbProtocolException.class, () -> processor.process(m), "zero-size INVALIDATE");
                        } else if (batch != null) {
                            processor.process(m);
                            batch.add(v);
                        } else {
                            processor.process(m);
                            age = apply(model, v, capacity, age);
                            epoch++;
                        }
                    }
                    case Begin b -> {
                        if (batch != null) {
                            assertThrows(IotlbProtocolException.class, () -> processor.process(IotlbMessage.batchBegin()),
                                "BATCH_BEGIN inside a batch");
                        } else {
                            processor.process(IotlbMessage.batchBegin());
                            batch = new ArrayList<>();
                        }
                    }
                    case End e -> {
                        if (batch == null) {
                            assertThrows(IotlbProtocolException.class, () -> processor.process(IotlbMessage.batchEnd()),
                                "BATCH_END without BATCH_BEGIN");
                        } else {
                            processor.process(IotlbMessage.batchEnd());
                            for (Op queued : batch) {
                                age = apply(model, queued, capacity, age);
                            }
                            batch = null;
                            epoch++;
                        }
                    }
                    case Batch b -> throw new IllegalStateException("batches are expanded above");
                    case Probe p -> Statistics.label("probes").collect(probe(iotlb, model, p));
                }
                assertEquals(epoch, iotlb.epoch(), "epoch");
                assertEquals(model.size(), iotlb.size(), "entries");
            }
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\ncapacity " + capacity + ", operations:\n" + log
                + "reference entries: " + model + "\n" + iotlb, e);
        }
        Statistics.label("entries at the end").collect(model.size() == 0 ? "0" : model.size() < 4 ? "1-3" : "4+");
    }

    private static long apply(List<Entry> model, Op op, int capacity, long age) {
        long first;
        long last;
        if (op instanceof Update u) {
            first = u.iova();
            last = u.iova() + u.size() - 1;
        } else {
            Invalidate v = (Invalidate) op;
            first = v.iova();
            last = v.iova() + v.size() - 1;
        }
        if (op instanceof Update) {
            // an UPDATE keeps what older entries have outside it (vhost's interval tree): an entry it
            // overlaps is trimmed to the parts sticking out, one around it splits in two (same age)
            List<Entry> kept = new ArrayList<>();
            for (Entry e : model) {
                if (Long.compareUnsigned(e.start(), last) > 0 || Long.compareUnsigned(first, e.last()) > 0) {
                    kept.add(e);
                    continue;
                }
                if (Long.compareUnsigned(e.start(), first) < 0) {
                    kept.add(new Entry(e.start(), first - 1, e.uaddr(), e.perm(), e.age()));
                }
                if (Long.compareUnsigned(e.last(), last) > 0) {
                    kept.add(new Entry(last + 1, e.last(), e.uaddr() + (last + 1 - e.start()), e.perm(), e.age()));
                }
            }
            model.clear();
            model.addAll(kept);
            model.sort((a, b) -> Long.compareUnsigned(a.start(), b.start()));
        } else {
            // an INVALIDATE drops every whole entry it overlaps (vhost_iotlb_del_range)
            model.removeIf(e -> Long.compareUnsigned(e.start(), last) <= 0 && Long.compareUnsigned(first, e.last()) <= 0);
        }
        if (op instanceof Update u) {
            while (model.size() >= capacity) {
                Entry oldest = model.getFirst();
                for (Entry e : model) {
                    if (e.age() < oldest.age()) {
                        oldest = e;
                    }
                }
                model.remove(oldest);
            }
            model.add(new Entry(first, last, u.uaddr(), u.permission().bits(), age));
            model.sort((a, b) -> Long.compareUnsigned(a.start(), b.start()));
            return age + 1;
        }
        return age;
    }

    /** Translates on the IOTLB and on the reference, and compares pieces or failure. */
    private static String probe(DeviceIotlb iotlb, List<Entry> model, Probe p) {
        List<long[]> pieces = new ArrayList<>();
        TranslationException failure = null;
        try {
            iotlb.translate(p.iova(), p.length(), p.access(), (segment, offset, length) -> {
                assertEquals(MEMORY.region(0).segment().address(), segment.address(), "piece backing segment");
                pieces.add(new long[] {offset, length});
            });
        } catch (TranslationException e) {
            failure = e;
        }
        // the reference: walk the range in IOVA order; the first uncovered address is a MISS, the
        // first entry without the permission a FAULT there, a uaddr outside guest memory a FAULT
        int need = p.access() == Access.READ ? Permission.RO.bits() : Permission.WO.bits();
        long addr = p.iova();
        long left = p.length();
        List<long[]> expected = new ArrayList<>();
        while (left > 0) {
            Entry hit = null;
            for (Entry e : model) {
                if (Long.compareUnsigned(e.start(), addr) <= 0 && Long.compareUnsigned(addr, e.last()) <= 0) {
                    hit = e;
                }
            }
            if (hit == null) {
                expectFailure(failure, TranslationException.Kind.MISS, addr, p);
                return "miss";
            }
            if ((hit.perm() & need) == 0) {
                expectFailure(failure, TranslationException.Kind.FAULT, addr, p);
                return "permission fault";
            }
            long n = Math.min(left, hit.last() - addr + 1);
            long u = hit.uaddr() + (addr - hit.start());
            if (!MEMORY.region(0).contains(u, n)) {
                // the downstream refuses the uaddr: a fault named by the uaddr
                expectFailure(failure, TranslationException.Kind.FAULT, u, p);
                return "downstream fault";
            }
            expected.add(new long[] {u - UBASE, n});
            addr += n;
            left -= n;
        }
        if (failure != null) {
            fail(p + " failed with " + failure.getMessage() + " but the reference translates it");
        }
        assertEquals(describe(expected), describe(pieces), p + ": pieces (offset+length in the downstream region)");
        return pieces.size() == 1 ? "one piece" : "several pieces";
    }

    private static void expectFailure(TranslationException failure, TranslationException.Kind kind, long at, Probe p) {
        if (failure == null) {
            fail(p + " succeeded but the reference expects a " + kind + " at 0x" + Long.toHexString(at));
        }
        assertEquals(kind, failure.kind(), p + ": " + failure.getMessage());
        assertEquals(at, failure.busAddress(), p + ": address of the " + kind + " (" + failure.getMessage() + ")");
    }

    private static String describe(List<long[]> pieces) {
        StringBuilder sb = new StringBuilder();
        for (long[] piece : pieces) {
            sb.append(String.format("[0x%x+0x%x]", piece[0], piece[1]));
        }
        return sb.toString();
    }

    @Provide
    Arbitrary<Integer> capacities() {
        return Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.just(DeviceIotlb.DEFAULT_CAPACITY)),
            Tuple.of(1, Arbitraries.integers().between(1, 4)));
    }

    @Provide
    Arbitrary<List<Op>> operations() {
        // IOVAs in a 12-page window, sizes in pages or odd byte counts, so entries touch, overlap and leave holes
        Arbitrary<Long> iova = Arbitraries.frequencyOf(
            Tuple.of(3, Arbitraries.integers().between(0, 11).map(k -> IOVA + k * PAGE)),
            Tuple.of(1, Arbitraries.longs().between(IOVA - 16, IOVA + 12 * PAGE + 16)));
        Arbitrary<Long> size = Arbitraries.frequencyOf(
            Tuple.of(4, Arbitraries.integers().between(1, 6).map(k -> k * PAGE)),
            Tuple.of(2, Arbitraries.longs().between(1, 3 * PAGE)),
            Tuple.of(1, Arbitraries.just(0L)));
        Arbitrary<Long> uaddr = Arbitraries.frequencyOf(
            Tuple.of(6, Arbitraries.integers().between(0, 200).map(k -> UBASE + k * PAGE)),
            Tuple.of(1, Arbitraries.of(UBASE + USIZE - PAGE, UBASE + USIZE - 1, UBASE - PAGE, 0L)));
        Arbitrary<Op> update = Combinators.combine(iova, size, uaddr, Arbitraries.of(Permission.RO, Permission.WO, Permission.RW))
            .as(Update::new);
        Arbitrary<Op> invalidate = Combinators.combine(iova, size).as(Invalidate::new);
        Arbitrary<Long> probeIova = Arbitraries.frequencyOf(
            Tuple.of(3, Combinators.combine(Arbitraries.integers().between(0, 11), Arbitraries.longs().between(0, 64))
                .as((k, off) -> IOVA + k * PAGE + off)),
            Tuple.of(1, iova));
        Arbitrary<Long> probeLength = Arbitraries.frequencyOf(
            Tuple.of(3, Arbitraries.longs().between(1, 64)),
            Tuple.of(1, Arbitraries.longs().between(1, PAGE)),
            Tuple.of(1, Arbitraries.longs().between(PAGE, 4 * PAGE)));
        // probes that straddle a page boundary, where one entry may end and the next begin
        Arbitrary<Op> straddling = Combinators.combine(Arbitraries.integers().between(1, 11),
                Arbitraries.longs().between(1, 32), Arbitraries.longs().between(1, 32), Arbitraries.of(Access.class))
            .as((k, before, after, access) -> (Op) new Probe(IOVA + k * PAGE - before, before + after, access));
        Arbitrary<Op> probe = Arbitraries.frequencyOf(
            Tuple.of(3, Combinators.combine(probeIova, probeLength, Arbitraries.of(Access.class))
                .as((iova1, length1, access) -> (Op) new Probe(iova1, length1, access))),
            Tuple.of(1, straddling));
        Arbitrary<Op> batch = Arbitraries.frequencyOf(Tuple.of(3, update), Tuple.of(1, invalidate), Tuple.of(2, probe))
            .list().ofMaxSize(8).map(Batch::new);
        return Arbitraries.frequencyOf(
                Tuple.of(8, update),
                Tuple.of(2, invalidate),
                Tuple.of(2, batch),
                // a stray BATCH_END is a protocol error that must change nothing
                Tuple.of(1, Arbitraries.just(new End())),
                Tuple.of(10, probe))
            .list().ofMinSize(1).ofMaxSize(40);
    }
}

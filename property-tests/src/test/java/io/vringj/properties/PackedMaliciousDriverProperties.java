package io.vringj.properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.PackedRing;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingError;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.testing.PackedRingDump;
import io.vringj.testing.RawPackedRing;
import io.vringj.testing.RecordingAddressSpace;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
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
 * A malicious driver against the packed device queue: descriptor rings and indirect tables
 * written by hand into guest memory — random ones, and valid rings with a few fields mutated —
 * and rewritten between the device's steps. The device runs a random script of pops, used adds
 * (writing into the chains it got), publications and notification toggles. For every step:
 * <ul>
 *   <li>the device answers exactly what {@link PackedReferenceDevice} says: nothing, the same
 *       chain (buffer id, readable and writable bytes, descriptors walked), or a
 *       {@code VirtqueueException} of the same {@code RingError}; no other exception ever;</li>
 *   <li>it only reaches memory through its {@code AddressSpace} and only what that allows
 *       ({@link RecordingAddressSpace}), asks for at most Q translations per pop plus one per
 *       entry of the indirect table it enters (bounded work), and writes nothing but used descriptors, its own event suppression structure and
 *       the writable buffers of the chains it popped — guard bytes around each region and the
 *       secure region (under a shared-only address space) stay as they were;</li>
 *   <li>once broken it stays broken: the same exception for every later pop and
 *       enableNotifications, no publication, and no further write to memory;</li>
 *   <li>an IOTLB miss ({@link MissingPagesAddressSpace}) is reported as {@code TRANSLATION_MISS},
 *       consumes nothing and breaks nothing: after the IOTLB update the same chain pops.</li>
 * </ul>
 */
class PackedMaliciousDriverProperties {
    static final long SHARED_BASE = 0x1000_0000L;
    static final long SHARED_SIZE = 0x4000;
    static final long SECURE_BASE = 0x2000_0000L;
    static final long SECURE_SIZE = 0x1000;
    static final RingAddresses RINGS = new RingAddresses(SHARED_BASE, SHARED_BASE + 0x1000, SHARED_BASE + 0x1800);
    static final long BUFFERS = SHARED_BASE + 0x2000;
    static final long BUFFERS_SIZE = 0x1000;
    static final long TABLES = SHARED_BASE + 0x3000;
    static final int TABLE_COUNT = 4;
    static final long TABLE_STRIDE = 0x100;
    static final int MAX_QUEUE = 16;

    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Guard bytes before, between and after the two regions, in one native allocation. */
    private static final long GUARD = 0x100;
    private static final MemorySegment BACKING = Arena.ofAuto().allocate(GUARD + SHARED_SIZE + GUARD + SECURE_SIZE + GUARD, 64);
    private static final MemorySegment SHARED = BACKING.asSlice(GUARD, SHARED_SIZE);
    private static final MemorySegment SECURE = BACKING.asSlice(GUARD + SHARED_SIZE + GUARD, SECURE_SIZE);
    private static final GuestMemory MEMORY = GuestMemory.builder()
        .region(SHARED_BASE, SHARED, RegionKind.SHARED)
        .region(SECURE_BASE, SECURE, RegionKind.SECURE)
        .build();

    /** One packed descriptor as the driver writes it. */
    record Desc(long addr, long len, int id, int flags) {
        @Override
        public String toString() {
            return "{addr=0x" + Long.toHexString(addr) + " len=" + len + " id=" + id + " flags="
                + PackedRingDump.descriptorFlags(flags) + "}";
        }
    }

    /** What the script does next. */
    enum Kind { POP, ADD_USED, PUBLISH_USED, ENABLE, DISABLE, REWRITE, REWRITE_EVENT, IOTLB_UPDATE }

    /**
     * One step: {@code a} picks the in-flight chain (ADD_USED) or the ring position (REWRITE);
     * {@code b} is the percentage of the writable bytes written (ADD_USED) or the new driver
     * event suppression structure (REWRITE_EVENT); {@code desc} the new descriptor (REWRITE).
     */
    record Op(Kind kind, int a, int b, Desc desc) {
        @Override
        public String toString() {
            return switch (kind) {
                case ADD_USED -> "addUsed(#" + a + ", " + b + "%)";
                case REWRITE -> "rewrite[" + a + "]=" + desc;
                case REWRITE_EVENT -> "driverEvent=0x" + Integer.toHexString(b);
                default -> kind.toString();
            };
        }
    }

    /**
     * A ring written by the malicious driver and the device's script over it. {@code missing}:
     * pages of {@value MissingPagesAddressSpace#PAGE} bytes from {@link #BUFFERS} without an
     * IOTLB translation until an {@code IOTLB_UPDATE} step.
     */
    record Scenario(int queueSize, long features, boolean sharedOnly, long missing, int start, List<Desc> ring,
                    List<List<Desc>> tables, int driverEvent, List<Op> ops) {
        @Override
        public String toString() {
            return "Scenario[Q=" + queueSize + ", features=0x" + Long.toHexString(features) + ", "
                + (sharedOnly ? "shared-only" : "identity") + ", missing pages=0x" + Long.toHexString(missing)
                + ", start=0x" + Integer.toHexString(start) + ",\n  ring=" + ring + ",\n  tables=" + tables
                + ",\n  driverEvent=0x" + Integer.toHexString(driverEvent) + ",\n  ops=" + ops + "]";
        }
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.maliciousDriverTries", defaultTries = 100_000)
    void packedDeviceAnswersArbitraryRingsLikeTheReferenceAndStaysInsideItsMemory(
        @ForAll("arbitraryRings") Scenario scenario) {
        run(scenario);
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.maliciousDriverTries", defaultTries = 100_000)
    void packedDeviceAnswersMutatedValidRingsLikeTheReferenceAndStaysInsideItsMemory(
        @ForAll("mutatedValidRings") Scenario scenario) {
        run(scenario);
    }

    // ---------------------------------------------------------------- running a scenario

    private static void run(Scenario s) {
        BACKING.fill((byte) 0x5A);
        SHARED.fill((byte) 0);
        SECURE.fill((byte) 0x77);
        MemorySegment ring = MEMORY.slice(RINGS.descriptorArea(), PackedRing.descriptorRingSize(s.queueSize()));
        for (int i = 0; i < s.queueSize(); i++) {
            write(ring, i, s.ring().get(i));
        }
        for (int t = 0; t < s.tables().size(); t++) {
            List<Desc> table = s.tables().get(t);
            MemorySegment area = MEMORY.slice(TABLES + t * TABLE_STRIDE, TABLE_STRIDE);
            for (int i = 0; i < table.size(); i++) {
                write(area, i, table.get(i));
            }
        }
        MemorySegment driverEvent = MEMORY.slice(RINGS.driverArea(), PackedRing.EVENT_SIZE);
        driverEvent.set(LE_INT, 0, s.driverEvent());
        // the device may write nothing but these; everything else must stay as in this image
        byte[] expected = BACKING.toArray(ValueLayout.JAVA_BYTE);

        AddressSpace inner = s.sharedOnly() ? AddressSpace.sharedOnly(MEMORY) : AddressSpace.identity(MEMORY);
        MissingPagesAddressSpace iotlb = new MissingPagesAddressSpace(inner, BUFFERS, s.missing());
        RecordingAddressSpace space = new RecordingAddressSpace(iotlb,
            s.sharedOnly() ? List.of(SHARED) : List.of(SHARED, SECURE));
        StringBuilder log = new StringBuilder();
        DeviceQueue device = null;
        PackedReferenceDevice reference = new PackedReferenceDevice(MEMORY, s.sharedOnly(), iotlb, s.queueSize(),
            s.features(), RINGS.descriptorArea(), RINGS.driverArea(), s.start());
        List<DescriptorChain> popped = new ArrayList<>();
        List<DescriptorChain> inFlight = new ArrayList<>();
        try {
            try {
                // the vring base carries the used state in its high half: the same position and lap as avail
                device = DeviceQueue.create(s.features(), s.queueSize(), RINGS, space, s.start() | s.start() << 16);
            } catch (VirtqueueException e) {
                throw new AssertionError("a packed ring in reachable, aligned memory must activate: " + e, e);
            }
            byte[] atBreak = null;
            boolean ringsStale = false;
            for (Op op : s.ops()) {
                space.reset();
                step(s, op, device, reference, iotlb, popped, inFlight, expected, log);
                assertEquals(List.of(), space.violations(), "pieces outside the allowed memory after " + op);
                if (op.kind() == Kind.POP) {
                    // a walk of at most Q ring descriptors (one may be the table's), the buffers of the
                    // table it enters (stopping one past the piece limit), and the four ring areas again
                    // after an IOTLB update
                    long bound = s.queueSize() + Math.min(reference.tableEntries, DeviceQueue.MAX_CHAIN_PIECES + 1L)
                        + (ringsStale ? 4 : 0);
                    assertTrue(space.translations() <= bound, "a pop asked for " + space.translations()
                        + " translations; at most " + bound + " are needed");
                }
                if (op.kind() == Kind.IOTLB_UPDATE) {
                    ringsStale = true;
                } else if ((op.kind() == Kind.POP || op.kind() == Kind.ENABLE) && !device.isBroken()) {
                    ringsStale = false;
                }
                assertEquals(reference.broken != null, device.isBroken(), "device broken after " + op);
                if (device.isBroken()) {
                    boolean driverWrote = op.kind() == Kind.REWRITE || op.kind() == Kind.REWRITE_EVENT;
                    if (atBreak != null && !driverWrote) {
                        assertEquals(-1, MemorySegment.mismatch(MemorySegment.ofArray(atBreak), 0, atBreak.length,
                            BACKING, 0, BACKING.byteSize()), "a broken device wrote to memory in " + op);
                    }
                    atBreak = BACKING.toArray(ValueLayout.JAVA_BYTE);
                }
            }
            checkOnlyAllowedWrites(s, expected, popped);
            Statistics.label("outcome").collect(device.isBroken() ? device.brokenReason().error().name() : "healthy");
            Statistics.label("an IOTLB miss, not fatal").collect(log.indexOf(RingError.TRANSLATION_MISS.name()) >= 0);
        } catch (AssertionError | RuntimeException e) {
            // a RuntimeException is a failure too: the device may only throw VirtqueueException
            String what = e instanceof AssertionError ? e.getMessage() : "the device threw " + e;
            throw new AssertionError(what + "\nscript so far:\n" + log + "\nreference: " + reference + "\n"
                + PackedRingDump.dump(MEMORY, RINGS, s.queueSize(), null, device), e);
        }
    }

    private static void step(Scenario s, Op op, DeviceQueue device, PackedReferenceDevice reference,
                             MissingPagesAddressSpace iotlb, List<DescriptorChain> popped, List<DescriptorChain> inFlight, byte[] expected,
                             StringBuilder log) {
        log.append("  ").append(op);
        switch (op.kind()) {
            case POP -> {
                PackedReferenceDevice.Outcome want = reference.pop();
                DescriptorChain chain = new DescriptorChain();
                VirtqueueException brokenBefore = device.brokenReason();
                try {
                    boolean got = device.pop(chain);
                    log.append(" -> ").append(got ? chain : "none");
                    if (!got) {
                        assertEquals(new PackedReferenceDevice.Nothing(), want, "device found nothing");
                    } else {
                        assertEquals(want, new PackedReferenceDevice.Chain(chain.head(), chain.readableLength(),
                            chain.writableLength(), chain.descriptorCount()), "device popped a chain");
                        popped.add(chain);
                        inFlight.add(chain);
                    }
                } catch (VirtqueueException e) {
                    log.append(" -> ").append(e.getMessage());
                    if (e.error() == RingError.TRANSLATION_MISS) {
                        assertEquals(want, new PackedReferenceDevice.Miss(), "device missed: " + e.getMessage());
                        assertFalse(device.isBroken(), "a miss does not break the queue");
                        return;
                    }
                    assertEquals(want, new PackedReferenceDevice.Broken(e.error()), "device failed: " + e.getMessage());
                    assertTrue(e.error().fatal(), "every error but a miss is fatal: " + e.error());
                    assertSame(e, device.brokenReason(), "the error is latched");
                    if (brokenBefore != null) {
                        assertSame(brokenBefore, e, "a broken queue throws its latched error again");
                    }
                }
            }
            case ADD_USED -> {
                if (inFlight.isEmpty()) {
                    log.append(" (nothing in flight)");
                    break;
                }
                DescriptorChain chain = inFlight.remove(Math.floorMod(op.a(), inFlight.size()));
                long written = chain.writableLength() * op.b() / 100;
                log.append(" id ").append(chain.head()).append(" written ").append(written);
                if (device.isBroken()) {
                    try {
                        device.addUsed(chain.head(), written);
                        fail("addUsed on a broken queue must be refused");
                    } catch (IllegalStateException expectedRefusal) {
                        log.append(" -> refused (broken)");
                    }
                    break;
                }
                MemorySegment reply = MemorySegment.ofArray(new byte[(int) written]);
                reply.fill((byte) 0xC3);
                chain.copyToWritable(0, reply, 0, written);
                device.addUsed(chain.head(), written);
                reference.addUsed(chain.head());
            }
            case PUBLISH_USED -> {
                boolean want = reference.publishUsed();
                boolean interrupt = device.publishUsed();
                log.append(" -> interrupt=").append(interrupt);
                assertEquals(want, interrupt, "interrupt decision (driver event suppression as written by the driver)");
            }
            case ENABLE -> {
                VirtqueueException brokenBefore = device.brokenReason();
                try {
                    boolean pending = device.enableNotifications();
                    log.append(" -> ").append(pending);
                    assertFalse(device.isBroken(), "enableNotifications returned on a broken queue");
                    assertEquals(reference.nextAvailable(), pending, "enableNotifications: a chain is available");
                } catch (VirtqueueException e) {
                    log.append(" -> ").append(e.getMessage());
                    assertSame(brokenBefore, e, "enableNotifications throws only the latched error");
                }
            }
            case DISABLE -> device.disableNotifications();
            case REWRITE -> {
                int position = Math.floorMod(op.a(), s.queueSize());
                MemorySegment ring = MEMORY.slice(RINGS.descriptorArea(), PackedRing.descriptorRingSize(s.queueSize()));
                write(ring, position, op.desc());
                // the driver's own write is part of the expected image
                long at = RINGS.descriptorArea() - SHARED_BASE + GUARD + 16L * position;
                MemorySegment.copy(BACKING, ValueLayout.JAVA_BYTE, at, expected, (int) at, 16);
            }
            case IOTLB_UPDATE -> iotlb.update();
            case REWRITE_EVENT -> {
                MemorySegment event = MEMORY.slice(RINGS.driverArea(), PackedRing.EVENT_SIZE);
                event.set(LE_INT, 0, op.b());
                long at = RINGS.driverArea() - SHARED_BASE + GUARD;
                MemorySegment.copy(BACKING, ValueLayout.JAVA_BYTE, at, expected, (int) at, 4);
            }
        }
        log.append('\n');
        assertEquals(reference.lastAvailIdx(), device.lastAvailIdx(), "device position | wrap << 15 after " + op);
    }

    /** Everything but the descriptor ring, the device's event structure and popped writable buffers is unchanged. */
    private static void checkOnlyAllowedWrites(Scenario s, byte[] expected, List<DescriptorChain> popped) {
        allow(expected, SHARED.address() + (RINGS.descriptorArea() - SHARED_BASE),
            PackedRing.descriptorRingSize(s.queueSize()));
        allow(expected, SHARED.address() + (RINGS.deviceArea() - SHARED_BASE), PackedRing.EVENT_SIZE);
        for (DescriptorChain chain : popped) {
            for (int i = 0; i < chain.writablePieceCount(); i++) {
                MemorySegment piece = chain.writable(i);
                allow(expected, piece.address(), piece.byteSize());
            }
        }
        long at = MemorySegment.mismatch(MemorySegment.ofArray(expected), 0, expected.length, BACKING, 0,
            BACKING.byteSize());
        if (at >= 0) {
            fail(String.format("the device changed byte %d of the backing allocation (%s) to 0x%02x, expected 0x%02x",
                at, where(at), BACKING.get(ValueLayout.JAVA_BYTE, at), expected[(int) at]));
        }
    }

    private static String where(long offset) {
        if (offset < GUARD || offset >= GUARD + SHARED_SIZE + GUARD + SECURE_SIZE) {
            return "a guard around the guest memory";
        }
        if (offset < GUARD + SHARED_SIZE) {
            return String.format("shared guest-physical 0x%x", SHARED_BASE + offset - GUARD);
        }
        if (offset < GUARD + SHARED_SIZE + GUARD) {
            return "the guard between the regions";
        }
        return String.format("secure guest-physical 0x%x", SECURE_BASE + offset - 2 * GUARD - SHARED_SIZE);
    }

    /** Copies the live bytes of a native range the device may write into the expected image. */
    private static void allow(byte[] expected, long nativeAddress, long length) {
        long offset = nativeAddress - BACKING.address();
        assertTrue(offset >= 0 && offset + length <= BACKING.byteSize(), "writable range outside the backing memory");
        MemorySegment.copy(BACKING, ValueLayout.JAVA_BYTE, offset, expected, (int) offset, (int) length);
    }

    private static void write(MemorySegment table, int i, Desc d) {
        RawPackedRing.writeDescriptor(table, i, d.addr(), d.len(), d.id(), d.flags());
    }

    // ---------------------------------------------------------------- generators

    /*
     * The generators do not depend on Q (no flatMap, which makes generation and edge cases
     * expensive): they draw for the largest queue and the scenario cuts down to Q — positions
     * and starts are taken modulo Q, ids and lengths stay as drawn (so some are out of range on
     * purpose).
     */

    @Provide
    Arbitrary<Scenario> arbitraryRings() {
        return Combinators.combine(queueSizes(), features(), spaces(), starts(),
                descriptor(false).list().ofSize(MAX_QUEUE),
                descriptor(true).list().ofMaxSize(8).list().ofMaxSize(TABLE_COUNT), driverEvents(), ops())
            .as((q, f, space, start, ring, tables, event, ops) -> new Scenario(q, f, space.get1(), space.get2(),
                start(q, start), List.copyOf(ring.subList(0, q)), tables, event, ops));
    }

    @Provide
    Arbitrary<Scenario> mutatedValidRings() {
        return Combinators.combine(queueSizes(), features(), spaces(), starts(),
                shapes().list().ofMinSize(1).ofMaxSize(MAX_QUEUE), mutations().list().ofMaxSize(3), driverEvents(), ops())
            .as((q, f, space, start, shapes, mutations, event, ops) ->
                validThenMutated(q, f, space.get1(), space.get2(), start(q, start), shapes, mutations, event, ops));
    }

    /**
     * Identity or shared-only, and mostly no missing IOTLB pages; sometimes a few of the 20 pages
     * that hold the buffers and indirect tables.
     */
    private static Arbitrary<Tuple.Tuple2<Boolean, Long>> spaces() {
        Arbitrary<Long> missing = Arbitraries.frequencyOf(
            Tuple.of(3, Arbitraries.just(0L)),
            Tuple.of(1, Arbitraries.integers().between(0, 19).list().ofMinSize(1).ofMaxSize(3)
                .map(pages -> pages.stream().mapToLong(p -> 1L << p).reduce(0, (a, b) -> a | b))));
        return Combinators.combine(Arbitraries.of(false, true), missing).as(Tuple::of);
    }

    private static Arbitrary<Integer> queueSizes() {
        return Arbitraries.of(1, 2, 3, 4, 5, 8, 13, 16);
    }

    private static int start(int q, int drawn) {
        return (drawn & 0x7FFF) % q | drawn & 0x8000;
    }

    private static Arbitrary<Long> features() {
        long base = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
        return Arbitraries.of(0L, VirtioFeatures.bit(VirtioFeatures.EVENT_IDX),
                VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC),
                VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC))
            .map(f -> f | base);
    }

    /** Mostly a fresh device (position 0, wrap 1); sometimes one restored at any position and lap. */
    private static Arbitrary<Integer> starts() {
        return Arbitraries.frequencyOf(
            Tuple.of(3, Arbitraries.just(0x8000)),
            Tuple.of(1, Combinators.combine(Arbitraries.integers().between(0, MAX_QUEUE - 1), Arbitraries.of(0, 0x8000))
                .as((p, w) -> p | w)));
    }

    private static Arbitrary<Integer> driverEvents() {
        Arbitrary<Integer> flags = Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.of(0, 1, 2)),
            Tuple.of(1, Arbitraries.integers().between(0, 0xFFFF)));
        Arbitrary<Integer> offWrap = Arbitraries.frequencyOf(
            Tuple.of(3, Combinators.combine(Arbitraries.integers().between(0, MAX_QUEUE), Arbitraries.of(0, 0x8000))
                .as((p, w) -> p | w)),
            Tuple.of(1, Arbitraries.integers().between(0, 0xFFFF)));
        return Combinators.combine(offWrap, flags).as((o, f) -> o | f << 16);
    }

    private static Arbitrary<Long> addresses() {
        return Arbitraries.frequencyOf(
            Tuple.of(8, Arbitraries.longs().between(BUFFERS, BUFFERS + BUFFERS_SIZE - 1)),
            Tuple.of(4, Arbitraries.integers().between(0, TABLE_COUNT - 1).map(t -> TABLES + t * TABLE_STRIDE)),
            Tuple.of(1, Arbitraries.integers().between(0, TABLE_COUNT * (int) TABLE_STRIDE).map(o -> TABLES + o)),
            Tuple.of(1, Arbitraries.longs().between(SHARED_BASE, SHARED_BASE + 16L * MAX_QUEUE)),
            Tuple.of(1, Arbitraries.longs().between(SHARED_BASE + SHARED_SIZE - 64, SHARED_BASE + SHARED_SIZE + 16)),
            Tuple.of(1, Arbitraries.longs().between(SHARED_BASE - 32, SHARED_BASE - 1)),
            Tuple.of(2, Arbitraries.longs().between(SECURE_BASE, SECURE_BASE + SECURE_SIZE - 1)),
            Tuple.of(1, Arbitraries.of(0L, -1L, -16L, Long.MAX_VALUE, Long.MIN_VALUE, 0xFFFF_FFFFL)),
            Tuple.of(1, Arbitraries.longs()));
    }

    private static Arbitrary<Long> lengths() {
        return Arbitraries.frequencyOf(
            Tuple.of(8, Arbitraries.longs().between(1, 64)),
            Tuple.of(4, Arbitraries.integers().between(1, MAX_QUEUE + 1).map(n -> 16L * n)),
            Tuple.of(1, Arbitraries.of(0L, 15L, 17L, 0x1000L, SHARED_SIZE, 0x8000_0000L, 0xFFFF_FFF0L, 0xFFFF_FFFFL)),
            Tuple.of(1, Arbitraries.longs().between(0, 0xFFFF_FFFFL)));
    }

    /** Ids: mostly small (below most queue sizes), some at or past 16, some anything. */
    private static Arbitrary<Integer> ids() {
        return Arbitraries.frequencyOf(
            Tuple.of(8, Arbitraries.integers().between(0, 4)),
            Tuple.of(2, Arbitraries.integers().between(0, MAX_QUEUE + 2)),
            Tuple.of(1, Arbitraries.integers().between(0, 0xFFFF)));
    }

    /** Ring flags: NEXT/WRITE/INDIRECT mixes, mostly available for lap 1, and sometimes any 16 bits. */
    private static Arbitrary<Integer> ringFlags() {
        Arbitrary<Integer> low = Arbitraries.frequencyOf(
            Tuple.of(4, Arbitraries.of(0, PackedRing.DESC_F_NEXT, PackedRing.DESC_F_WRITE,
                PackedRing.DESC_F_NEXT | PackedRing.DESC_F_WRITE)),
            Tuple.of(1, Arbitraries.of(PackedRing.DESC_F_INDIRECT, PackedRing.DESC_F_INDIRECT | PackedRing.DESC_F_NEXT,
                PackedRing.DESC_F_INDIRECT | PackedRing.DESC_F_WRITE)));
        Arbitrary<Integer> lap = Arbitraries.frequencyOf(
            Tuple.of(6, Arbitraries.just(PackedRing.DESC_F_AVAIL)),
            Tuple.of(1, Arbitraries.just(PackedRing.DESC_F_USED)),
            Tuple.of(1, Arbitraries.just(PackedRing.DESC_F_AVAIL | PackedRing.DESC_F_USED)),
            Tuple.of(1, Arbitraries.just(0)));
        return Arbitraries.frequencyOf(
            Tuple.of(12, Combinators.combine(low, lap).as((l, w) -> l | w)),
            Tuple.of(1, Arbitraries.integers().between(0, 0xFFFF)));
    }

    /** Flags inside an indirect table: mostly 0 or WRITE (the only valid ones), sometimes anything. */
    private static Arbitrary<Integer> tableFlags() {
        return Arbitraries.frequencyOf(
            Tuple.of(10, Arbitraries.of(0, PackedRing.DESC_F_WRITE)),
            Tuple.of(1, Arbitraries.of(PackedRing.DESC_F_NEXT, PackedRing.DESC_F_INDIRECT, PackedRing.DESC_F_AVAIL,
                PackedRing.DESC_F_USED)),
            Tuple.of(1, Arbitraries.integers().between(0, 0xFFFF)));
    }

    private static Arbitrary<Desc> descriptor(boolean inTable) {
        return Combinators.combine(addresses(), lengths(), ids(), inTable ? tableFlags() : ringFlags())
            .as(Desc::new);
    }

    private static Arbitrary<List<Op>> ops() {
        Arbitrary<Op> op = Arbitraries.frequencyOf(
            Tuple.of(8, Arbitraries.just(new Op(Kind.POP, 0, 0, null))),
            Tuple.of(4, Combinators.combine(Arbitraries.integers().between(0, MAX_QUEUE), Arbitraries.of(0, 1, 50, 100))
                .as((a, b) -> new Op(Kind.ADD_USED, a, b, null))),
            Tuple.of(3, Arbitraries.just(new Op(Kind.PUBLISH_USED, 0, 0, null))),
            Tuple.of(1, Arbitraries.just(new Op(Kind.ENABLE, 0, 0, null))),
            Tuple.of(1, Arbitraries.just(new Op(Kind.DISABLE, 0, 0, null))),
            Tuple.of(3, Combinators.combine(Arbitraries.integers().between(0, MAX_QUEUE - 1), descriptor(false))
                .as((a, d) -> new Op(Kind.REWRITE, a, 0, d))),
            Tuple.of(1, driverEvents().map(e -> new Op(Kind.REWRITE_EVENT, 0, e, null))),
            Tuple.of(1, Arbitraries.just(new Op(Kind.IOTLB_UPDATE, 0, 0, null))));
        return op.list().ofMinSize(1).ofMaxSize(2 * MAX_QUEUE).withSizeDistribution(RandomDistribution.uniform());
    }

    // ---------------------------------------------------------------- valid rings, then mutated

    /** A chain the valid ring holds: readable and writable lengths, and whether it wants to be indirect. */
    record Shape(List<Integer> readable, List<Integer> writable, boolean indirect) {
    }

    /** Sets one field of ring descriptor / table entry {@code index} to {@code value}. */
    record Mutation(boolean inTable, int index, int field, long value) {
    }

    private static Arbitrary<Shape> shapes() {
        Arbitrary<List<Integer>> lengths = Arbitraries.integers().between(1, 64).list().ofMaxSize(3);
        return Combinators.combine(lengths, lengths, Arbitraries.of(false, true))
            .filter((r, w, i) -> !r.isEmpty() || !w.isEmpty())
            .as(Shape::new);
    }

    private static Arbitrary<Mutation> mutations() {
        Arbitrary<Integer> index = Arbitraries.integers().between(0, MAX_QUEUE - 1);
        return Arbitraries.oneOf(
            Combinators.combine(Arbitraries.of(false, true), index, addresses())
                .as((t, i, v) -> new Mutation(t, i, 0, v)),
            Combinators.combine(Arbitraries.of(false, true), index, lengths())
                .as((t, i, v) -> new Mutation(t, i, 1, v)),
            Combinators.combine(Arbitraries.of(false, true), index, ids().map(Integer::longValue))
                .as((t, i, v) -> new Mutation(t, i, 2, v)),
            Combinators.combine(Arbitraries.of(false, true), index, Arbitraries.integers().between(0, 15))
                .as((t, i, bit) -> new Mutation(t, i, 3, 1L << bit)));
    }

    /**
     * Lays out {@code shapes} as a valid packed ring from the start position (lap bits per
     * position, buffer ids distinct, indirect tables in the table area), then applies the
     * mutations (field 3 flips a flag bit).
     */
    private static Scenario validThenMutated(int q, long features, boolean shared, long missing, int start,
                                             List<Shape> shapes,
                                             List<Mutation> mutations, int event, List<Op> ops) {
        boolean indirectOk = VirtioFeatures.has(features, VirtioFeatures.INDIRECT_DESC);
        Desc[] ring = new Desc[q];
        int position = start & 0x7FFF;
        boolean wrap = (start & 0x8000) != 0;
        int used = 0;
        int id = 0;
        int table = 0;
        List<List<Desc>> tables = new ArrayList<>();
        long buffer = BUFFERS;
        for (Shape shape : shapes) {
            List<Desc> buffers = new ArrayList<>();
            for (int len : shape.readable()) {
                buffers.add(new Desc(buffer, len, 0, 0));
                buffer += len;
            }
            for (int len : shape.writable()) {
                buffers.add(new Desc(buffer, len, 0, PackedRing.DESC_F_WRITE));
                buffer += len;
            }
            boolean indirect = shape.indirect() && indirectOk && table < TABLE_COUNT && buffers.size() <= q;
            List<Desc> chain = indirect
                ? List.of(new Desc(TABLES + table * TABLE_STRIDE, 16L * buffers.size(), 0, PackedRing.DESC_F_INDIRECT))
                : buffers;
            if (used + chain.size() > q) {
                continue;
            }
            if (indirect) {
                tables.add(buffers);
                table++;
            }
            for (int k = 0; k < chain.size(); k++) {
                Desc d = chain.get(k);
                int flags = d.flags() | (k < chain.size() - 1 ? PackedRing.DESC_F_NEXT : 0)
                    | (wrap ? PackedRing.DESC_F_AVAIL : PackedRing.DESC_F_USED);
                ring[position] = new Desc(d.addr(), d.len(), id, flags);
                if (++position == q) {
                    position = 0;
                    wrap = !wrap;
                }
            }
            used += chain.size();
            id++;
        }
        for (int i = 0; i < q; i++) {
            if (ring[i] == null) {
                // not part of this lap: looks used in the previous one
                ring[i] = new Desc(0, 0, 0, 0);
            }
        }
        for (Mutation m : mutations) {
            if (m.inTable()) {
                if (tables.isEmpty()) {
                    continue;
                }
                List<Desc> t = new ArrayList<>(tables.get(m.index() % tables.size()));
                int i = m.index() % t.size();
                t.set(i, mutate(t.get(i), m));
                tables.set(m.index() % tables.size(), t);
            } else {
                int i = m.index() % q;
                ring[i] = mutate(ring[i], m);
            }
        }
        return new Scenario(q, features, shared, missing, start, List.of(ring), tables, event, ops);
    }

    private static Desc mutate(Desc d, Mutation m) {
        return switch (m.field()) {
            case 0 -> new Desc(m.value(), d.len(), d.id(), d.flags());
            case 1 -> new Desc(d.addr(), m.value(), d.id(), d.flags());
            case 2 -> new Desc(d.addr(), d.len(), (int) m.value(), d.flags());
            default -> new Desc(d.addr(), d.len(), d.id(), d.flags() ^ (int) m.value());
        };
    }
}

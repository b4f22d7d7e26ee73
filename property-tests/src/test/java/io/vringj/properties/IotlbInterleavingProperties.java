package io.vringj.properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.IotlbAddressSpace;
import io.vringj.dma.Permission;
import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

/**
 * IOTLB UPDATEs and INVALIDATEs interleaved with every device-side operation — pop, addUsed,
 * publishUsed (both forms), enable and disable notifications — on both layouts, and every
 * ring-area access checked against a reference map of the IOTLB (issue 11, item 1).
 *
 * <pre>
 *   IOVA page 0..2 (the three ring areas) → bank A page i, or bank B page i, or nothing
 *   IOVA page 3..4 (buffers)              → the buffer pages, or nothing
 *   the driver's own ring pages D0..D2 are what the rings really hold
 * </pre>
 *
 * <p>Before each device operation the harness copies D into the page each ring area is mapped to
 * now, and afterwards copies what the device changed there back into D (a device that sees the
 * rings only through the IOMMU). A page no mapping points to is filled with poison. So:
 * <ul>
 *   <li>a write through a stale translation changes a poisoned page — caught after the step;</li>
 *   <li>a read through a stale translation reads poison — the queue breaks or pops the wrong
 *       chain, both caught (the driver is honest and every mapping consistent);</li>
 *   <li>every translation the queue asks for is checked piece by piece against the reference map,
 *       and a miss must be on a page the map does not hold.</li>
 * </ul>
 * At the end every page is mapped again and every request must complete, in order.
 */
class IotlbInterleavingProperties {
    private static final long GPA = 0x2000_0000L;
    private static final long PAGE = 4096;
    private static final int RING_PAGES = 3;
    private static final int PAGES = RING_PAGES + 2;
    private static final long DRIVER = GPA;
    private static final long BANK_A = GPA + 0x10000;
    private static final long BANK_B = GPA + 0x20000;
    private static final long BUFFERS = GPA + 0x30000;
    private static final long IOVA = 0x5000_0000L;
    private static final byte POISON = (byte) 0xA5;
    private static final long UNMAPPED = -1;
    private static final int WRITTEN = 4;
    private static final GuestMemory MEMORY = GuestMemory.ofShared(GPA, 0x40000);
    private static final MemorySegment POISON_PAGE = MemorySegment.ofArray(new byte[(int) PAGE]).fill(POISON);

    sealed interface Op permits Add, Pop, AddUsed, Publish, Enable, Disable, Poll, Invalidate, Update {
    }

    record Add(int chains) implements Op {
    }

    record Pop() implements Op {
    }

    record AddUsed() implements Op {
    }

    record Publish(boolean quiet) implements Op {
    }

    record Enable() implements Op {
    }

    record Disable() implements Op {
    }

    record Poll() implements Op {
    }

    record Invalidate(int page) implements Op {
    }

    /** Maps a page again: a ring page to bank B or A, a buffer page to its buffer. */
    record Update(int page, boolean bankB) implements Op {
    }

    /** The reference map: IOVA page → guest-physical page, or {@link #UNMAPPED}. */
    private final long[] map = new long[PAGES];
    private final MemorySegment[] snapshot = new MemorySegment[RING_PAGES];
    private final List<String> violations = new ArrayList<>();

    private static long host(long gpa) {
        return MEMORY.slice(gpa, 1).address();
    }

    private static MemorySegment page(long gpa) {
        return MEMORY.slice(gpa, PAGE);
    }

    /** Checks every piece of every translation against the reference map. */
    private final class CheckedSpace implements AddressSpace {
        private final AddressSpace delegate;

        CheckedSpace(AddressSpace delegate) {
            this.delegate = delegate;
        }

        @Override
        public void translate(long busAddress, long length, Access access, TranslationSink sink) throws TranslationException {
            long left = tryTranslate(busAddress, length, access, sink);
            if (left != 0) {
                throw new TranslationException(TranslationException.Kind.MISS, busAddress + length - left, left, access,
                    "miss");
            }
        }

        @Override
        public long tryTranslate(long busAddress, long length, Access access, TranslationSink sink)
            throws TranslationException {
            long[] cursor = {busAddress};
            long left = delegate.tryTranslate(busAddress, length, access, (backing, offset, n) -> {
                long at = cursor[0];
                int p = (int) ((at - IOVA) / PAGE);
                if (at < IOVA || p >= PAGES || map[p] == UNMAPPED) {
                    violations.add(String.format("piece for bus 0x%x, which the reference map does not hold", at));
                } else if (backing.address() + offset != host(map[p]) + (at - IOVA) % PAGE
                    || (at - IOVA) % PAGE + n > PAGE) {
                    violations.add(String.format("piece for bus 0x%x (+%d) is not where page %d is mapped now (gpa 0x%x)",
                        at, n, p, map[p]));
                }
                cursor[0] += n;
                sink.accept(backing, offset, n);
            });
            if (left != 0) {
                long missed = busAddress + length - left;
                int p = (int) ((missed - IOVA) / PAGE);
                if (missed < IOVA || p >= PAGES || map[p] != UNMAPPED) {
                    violations.add(String.format("miss at bus 0x%x, which the reference map holds", missed));
                }
            }
            return left;
        }

        @Override
        public long epoch() {
            return delegate.epoch();
        }

        @Override
        public boolean unchangedSince(long epoch, long busAddress, long length) {
            return delegate.unchangedSince(epoch, busAddress, length);
        }
    }

    /** Copies the driver's ring pages to where they are mapped now, and remembers them. */
    private void syncIn() {
        for (int i = 0; i < RING_PAGES; i++) {
            if (map[i] != UNMAPPED) {
                page(map[i]).copyFrom(page(DRIVER + i * PAGE));
                snapshot[i].copyFrom(page(map[i]));
            }
        }
    }

    /** Carries what the device wrote back to the driver's pages; checks that stale pages stayed poison. */
    private void syncOut(String step) {
        for (int i = 0; i < RING_PAGES; i++) {
            if (map[i] != UNMAPPED) {
                MemorySegment now = page(map[i]);
                MemorySegment d = page(DRIVER + i * PAGE);
                long first = now.mismatch(snapshot[i]);
                for (long b = Math.max(first, 0); first >= 0 && b < PAGE; b++) {
                    byte v = now.get(ValueLayout.JAVA_BYTE, b);
                    if (v != snapshot[i].get(ValueLayout.JAVA_BYTE, b)) {
                        d.set(ValueLayout.JAVA_BYTE, b, v);
                    }
                }
            }
            for (long bank : new long[] {BANK_A, BANK_B}) {
                long gpa = bank + i * PAGE;
                if (gpa != map[i]) {
                    long at = firstNotPoison(page(gpa));
                    if (at >= 0) {
                        violations.add(String.format("%s wrote 0x%x+0x%x, a page ring area %d is no longer mapped to",
                            step, gpa, at, i));
                        page(gpa).fill(POISON);
                    }
                }
            }
        }
    }

    private static long firstNotPoison(MemorySegment s) {
        return s.mismatch(POISON_PAGE);
    }

    private void mapPage(DeviceIotlb iotlb, int p, boolean bankB) {
        long target = p < RING_PAGES ? (bankB ? BANK_B : BANK_A) + p * PAGE : BUFFERS + (p - RING_PAGES) * PAGE;
        if (p < RING_PAGES && map[p] != UNMAPPED && map[p] != target) {
            page(map[p]).fill(POISON);
        }
        iotlb.update(IOVA + p * PAGE, PAGE, target, Permission.RW);
        map[p] = target;
    }

    private void unmapPage(DeviceIotlb iotlb, int p) {
        iotlb.invalidate(IOVA + p * PAGE, PAGE);
        if (p < RING_PAGES && map[p] != UNMAPPED) {
            page(map[p]).fill(POISON);
        }
        map[p] = UNMAPPED;
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 2000)
    void everyRingAccessGoesThroughATranslationCurrentForItsOperation(
        @ForAll boolean packed, @ForAll("queueSizes") int q, @ForAll boolean eventIdx,
        @ForAll("operations") List<Op> ops) throws Exception {
        MEMORY.slice(GPA, 0x40000).fill((byte) 0);
        MEMORY.slice(BANK_A, 2 * 0x10000).fill(POISON);
        violations.clear();
        for (int i = 0; i < RING_PAGES; i++) {
            snapshot[i] = MemorySegment.ofArray(new byte[(int) PAGE]);
        }
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | (eventIdx ? VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) : 0)
            | (packed ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0);
        DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(MEMORY));
        java.util.Arrays.fill(map, UNMAPPED);
        for (int p = 0; p < PAGES; p++) {
            mapPage(iotlb, p, false);
        }
        DriverQueue driver = DriverQueue.create(features, q, MEMORY,
            new RingAddresses(DRIVER, DRIVER + PAGE, DRIVER + 2 * PAGE));
        syncIn();
        DeviceQueue device = DeviceQueue.create(features, q, new RingAddresses(IOVA, IOVA + PAGE, IOVA + 2 * PAGE),
            new CheckedSpace(new IotlbAddressSpace(iotlb)));
        syncOut("activation");

        List<Integer> added = new ArrayList<>();
        ArrayDeque<Integer> available = new ArrayDeque<>();
        ArrayDeque<Integer> inDevice = new ArrayDeque<>();
        List<Integer> used = new ArrayList<>();
        List<Integer> polled = new ArrayList<>();
        DescriptorChain chain = new DescriptorChain();
        StringBuilder log = new StringBuilder();
        int misses = 0;
        try {
            for (Op op : ops) {
                log.append("  ").append(op).append('\n');
                switch (op) {
                    case Add a -> {
                        for (int k = 0; k < a.chains() && driver.numFree() >= 2; k++) {
                            int n = added.size() % 32;
                            int head = driver.add(new BufferChain(2).addReadable(IOVA + 3 * PAGE + n * 64, 16)
                                .addWritable(IOVA + 4 * PAGE + n * 64, 16));
                            added.add(head);
                            available.add(head);
                        }
                        driver.publish();
                    }
                    case Poll p -> poll(driver, used, polled);
                    case Invalidate v -> unmapPage(iotlb, v.page());
                    case Update u -> mapPage(iotlb, u.page(), u.bankB());
                    default -> {
                        syncIn();
                        int lastAvail = device.lastAvailIdx();
                        int inFlight = device.inFlight();
                        switch (op) {
                            case Pop p -> {
                                int r = device.tryPop(chain);
                                if (r == DeviceQueue.POPPED) {
                                    assertEquals(available.poll(), chain.head(), "popped head");
                                    assertEquals(16, chain.readableLength());
                                    assertEquals(16, chain.writableLength());
                                    inDevice.add(chain.head());
                                } else if (r == DeviceQueue.EMPTY) {
                                    assertTrue(available.isEmpty(), "EMPTY with chains available");
                                } else {
                                    misses++;
                                    assertEquals(lastAvail, device.lastAvailIdx(), "a miss consumed an avail entry");
                                    assertEquals(inFlight, device.inFlight(), "a miss left a chain in flight");
                                    int page = (int) ((device.missAddress() - IOVA) / PAGE);
                                    assertTrue(page >= 0 && page < PAGES && map[page] == UNMAPPED,
                                        "MISSED on page " + page + " which is mapped");
                                }
                            }
                            case AddUsed u -> {
                                if (!inDevice.isEmpty()) {
                                    int head = inDevice.poll();
                                    device.addUsed(head, WRITTEN);
                                    used.add(head);
                                }
                            }
                            case Publish p -> {
                                if (p.quiet()) {
                                    device.publishUsedQuiet();
                                } else {
                                    device.publishUsed();
                                }
                            }
                            case Enable e -> device.enableNotifications();
                            case Disable d -> device.disableNotifications();
                            default -> throw new AssertionError(op);
                        }
                        syncOut(op.toString());
                    }
                }
                assertFalse(device.isBroken(), () -> "broken: " + device.brokenReason().getMessage());
                assertEquals(List.of(), violations);
            }
            // every page back, then everything completes in order
            for (int p = 0; p < PAGES; p++) {
                if (map[p] == UNMAPPED) {
                    mapPage(iotlb, p, false);
                }
            }
            for (int round = 0; round < 4 && polled.size() < added.size(); round++) {
                syncIn();
                while (device.tryPop(chain) == DeviceQueue.POPPED) {
                    assertEquals(available.poll(), chain.head(), "popped head");
                    inDevice.add(chain.head());
                }
                while (!inDevice.isEmpty()) {
                    int head = inDevice.poll();
                    device.addUsed(head, WRITTEN);
                    used.add(head);
                }
                device.publishUsed();
                syncOut("drain");
                poll(driver, used, polled);
            }
            assertFalse(device.isBroken(), () -> "broken: " + device.brokenReason().getMessage());
            assertEquals(List.of(), violations);
            assertEquals(added, polled, "every request completes, in order");
        } catch (AssertionError | VirtqueueException e) {
            throw new AssertionError(e.getMessage() + "\n" + (packed ? "packed" : "split") + " Q=" + q + " eventIdx="
                + eventIdx + "\nsteps:\n" + log, e);
        }
        Statistics.label("misses").collect(misses == 0 ? "none" : "some");
    }

    private static void poll(DriverQueue driver, List<Integer> used, List<Integer> polled) throws VirtqueueException {
        int head;
        while ((head = driver.pollUsed()) != DriverQueue.NONE) {
            assertTrue(polled.size() < used.size(), "the driver got more completions than were added used");
            assertEquals(used.get(polled.size()), head, "completion order");
            assertEquals(WRITTEN, driver.usedLength());
            polled.add(head);
        }
    }

    @Provide
    Arbitrary<Integer> queueSizes() {
        return Arbitraries.of(2, 4, 8);
    }

    @Provide
    Arbitrary<List<Op>> operations() {
        return Arbitraries.<Op>frequencyOf(
                Tuple.of(3, Arbitraries.integers().between(1, 3).map(Add::new)),
                Tuple.of(4, Arbitraries.just(new Pop())),
                Tuple.of(3, Arbitraries.just(new AddUsed())),
                Tuple.of(2, Arbitraries.of(true, false).map(Publish::new)),
                Tuple.of(1, Arbitraries.just(new Enable())),
                Tuple.of(1, Arbitraries.just(new Disable())),
                Tuple.of(2, Arbitraries.just(new Poll())),
                Tuple.of(2, Arbitraries.integers().between(0, PAGES - 1).map(Invalidate::new)),
                Tuple.of(3, net.jqwik.api.Combinators.combine(Arbitraries.integers().between(0, PAGES - 1),
                    Arbitraries.of(true, false)).as(Update::new)))
            .list().ofMinSize(1).ofMaxSize(40);
    }
}

package io.vringj.properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingError;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.testing.RawPackedRing;
import io.vringj.testing.RawSplitRing;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.statistics.Statistics;

/**
 * VIRTIO_F_IN_ORDER [virtio 2.7.9, 2.8.8] on both layouts.
 *
 * <ul>
 *   <li>The real driver and device queues, with random adds, publishes, pops, used adds (in pop
 *       order, as the feature requires; read-only chains are returned in runs with one entry) and
 *       polls interleaved: the driver takes back every buffer exactly once, in the order it added
 *       them, with the length the device gave it.</li>
 *   <li>A hand-written device that returns random batches with one entry each (chains of every
 *       kind) and fills the skipped used slots with garbage: while it keeps the order, the driver
 *       takes back each batch whole and in order and never reads a skipped slot; when it names an
 *       id out of range or not outstanding, a batch longer than its used idx moved, or a length too
 *       large, the driver reports exactly that {@link RingError}, latches broken, and never throws
 *       anything else.</li>
 * </ul>
 */
class InOrderProperties {
    private static final long BUF = RawSplitRing.BUFFERS;
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Chain kinds: read-only (1 or 3 descriptors), writable, readable then writable. */
    private static final int[][] KINDS = {{1, 0}, {3, 0}, {0, 1}, {1, 1}};

    // ------------------------------------------------------------------ real queues

    /** One step of the interleaving. */
    record Step(int op, int n, int seed) {
        @Override
        public String toString() {
            return switch (op) {
                case 0 -> "add kind " + n;
                case 1 -> "publish";
                case 2 -> "pop " + n;
                case 3 -> "use " + n + " (seed " + seed + ")";
                case 4 -> "publishUsed";
                default -> "poll " + n;
            };
        }
    }

    record Script(boolean packed, int queueSize, boolean eventIdx, List<Step> steps) {
    }

    @Provide
    Arbitrary<Script> scripts() {
        Arbitrary<Step> step = Combinators.combine(Arbitraries.integers().between(0, 5),
            Arbitraries.integers().between(0, 5), Arbitraries.integers().between(0, 1 << 20)).as(Step::new);
        return Combinators.combine(Arbitraries.of(true, false), Arbitraries.of(2, 4, 8, 5, 7), Arbitraries.of(true, false),
            step.list().ofMinSize(1).ofMaxSize(120)).as((packed, q, ev, steps) ->
                new Script(packed, packed ? q : Integer.highestOneBit(q), ev, steps));
    }

    /** A buffer the driver added: its head, writable bytes, and the length the device gave it (-1: none yet). */
    private static final class Buffer {
        final int head;
        final long writable;
        long usedLength = -1;
        boolean published;

        Buffer(int head, long writable) {
            this.head = head;
            this.writable = writable;
        }
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 5000)
    void realQueuesHandBackEveryBufferOnceAndInOrder(@ForAll("scripts") Script s) throws Exception {
        long features = RawSplitRing.features(VirtioFeatures.IN_ORDER)
            | (s.eventIdx() ? VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) : 0)
            | (s.packed() ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0);
        try (RawSplitRing ring = new RawSplitRing(s.queueSize(), features)) {
            DriverQueue driver = ring.driver();
            DeviceQueue device = ring.device();
            ArrayDeque<Buffer> added = new ArrayDeque<>();      // oldest first, until the driver takes it back
            ArrayDeque<Buffer> unpublished = new ArrayDeque<>(); // added, not yet published
            ArrayDeque<Buffer> available = new ArrayDeque<>();   // published, not yet popped
            ArrayDeque<Buffer> popped = new ArrayDeque<>();      // popped, not yet used
            List<Buffer> usedNotPublished = new ArrayList<>();
            DescriptorChain chain = new DescriptorChain();
            StringBuilder log = new StringBuilder();
            int taken = 0;
            try {
                for (Step step : s.steps()) {
                    log.append("  ").append(step).append('\n');
                    switch (step.op()) {
                        case 0 -> {
                            int[] kind = KINDS[step.n() % KINDS.length];
                            BufferChain c = chain(kind);
                            int head = driver.add(c);
                            if (head == DriverQueue.NO_ROOM) {
                                assertTrue(c.size() > driver.numFree(), "NO_ROOM with " + driver.numFree() + " free");
                            } else {
                                Buffer b = new Buffer(head, c.writableLength());
                                added.add(b);
                                unpublished.add(b);
                            }
                        }
                        case 1 -> {
                            driver.publish();
                            available.addAll(unpublished);
                            unpublished.clear();
                        }
                        case 2 -> {
                            for (int k = 0; k < step.n(); k++) {
                                boolean got = device.pop(chain);
                                assertEquals(!available.isEmpty(), got, "pop with " + available.size() + " available");
                                if (!got) {
                                    break;
                                }
                                Buffer b = available.poll();
                                assertEquals(b.head, chain.head(), "the device pops in the order the driver added");
                                popped.add(b);
                            }
                        }
                        case 3 -> {
                            for (int k = 0; k < step.n() && !popped.isEmpty(); k++) {
                                Buffer b = popped.poll();
                                b.usedLength = b.writable == 0 ? 0 : Math.floorMod(step.seed() + k, b.writable + 1);
                                device.addUsed(b.head, b.usedLength);
                                usedNotPublished.add(b);
                            }
                        }
                        case 4 -> {
                            device.publishUsed();
                            for (Buffer b : usedNotPublished) {
                                b.published = true;
                            }
                            usedNotPublished.clear();
                        }
                        default -> {
                            for (int k = 0; k < step.n(); k++) {
                                if (!takeBack(driver, added)) {
                                    break;
                                }
                                taken++;
                            }
                        }
                    }
                    assertEquals(added.size(), driver.inFlight(), "driver's in-flight count");
                }
                // drain: everything still out comes back, in order
                driver.publish();
                available.addAll(unpublished);
                while (device.pop(chain)) {
                    Buffer b = available.poll();
                    assertEquals(b.head, chain.head());
                    popped.add(b);
                }
                for (Buffer b : popped) {
                    b.usedLength = b.writable == 0 ? 0 : b.writable / 2;
                    device.addUsed(b.head, b.usedLength);
                }
                device.publishUsed();
                for (Buffer b : added) {
                    b.published = true;
                }
                while (takeBack(driver, added)) {
                    taken++;
                }
                assertTrue(added.isEmpty(), added.size() + " buffers never came back");
                assertEquals(s.queueSize(), driver.numFree());
                assertFalse(driver.isBroken());
            } catch (AssertionError | VirtqueueException | RuntimeException e) {
                throw new AssertionError(e.getMessage() + "\n" + s + "\nsteps:\n" + log, e);
            }
            Statistics.label("buffers taken back").collect(taken == 0 ? "0" : taken < 10 ? "1-9" : "10+");
        }
    }

    /** Polls once: the driver returns the oldest buffer iff the device published it, with its length. */
    private static boolean takeBack(DriverQueue driver, ArrayDeque<Buffer> added) throws VirtqueueException {
        int head = driver.pollUsed();
        Buffer oldest = added.peek();
        if (head == DriverQueue.NONE) {
            assertTrue(oldest == null || !oldest.published, "the driver missed published buffer " + (oldest == null
                ? -1 : oldest.head));
            return false;
        }
        assertTrue(oldest != null && oldest.published, "the driver returned " + head + " that was not published");
        assertEquals(oldest.head, head, "buffers come back in the order they were added");
        assertEquals(oldest.usedLength, driver.usedLength(), "used length of head " + head);
        added.poll();
        return true;
    }

    private static BufferChain chain(int[] kind) {
        BufferChain c = new BufferChain(kind[0] + kind[1]);
        for (int i = 0; i < kind[0]; i++) {
            c.addReadable(BUF + 0x40L * i, 0x40);
        }
        for (int i = 0; i < kind[1]; i++) {
            c.addWritable(BUF + 0x1000 + 0x40L * i, 0x40);
        }
        return c;
    }

    // ------------------------------------------------------------------ hand-written device

    /**
     * One act of the hand-written device: add {@code adds} chains, then return a batch ending at
     * the buffer {@code pick} places after the oldest outstanding one (or at a bogus id), moving the
     * split used idx by {@code moveDelta} more or fewer than the batch's size, with a length
     * {@code lenDelta} away from the named chain's writable length.
     */
    record Act(int adds, int kindSeed, int pick, int idMode, int moveDelta, int lenDelta) {
    }

    record DeviceCase(boolean packed, int queueSize, List<Act> acts) {
    }

    @Provide
    Arbitrary<DeviceCase> deviceCases() {
        // idMode: 0-5 an outstanding buffer (the common case), 6 one already taken back, 7 out of range
        Arbitrary<Act> act = Combinators.combine(Arbitraries.integers().between(0, 4), Arbitraries.integers().between(0, 99),
            Arbitraries.integers().between(0, 8), Arbitraries.integers().between(0, 7),
            // mostly a well-behaved device: the idx moves by the batch, the length fits
            Arbitraries.of(0, 0, 0, 0, 0, -1, 1), Arbitraries.of(0, 0, -8, -64, 1)).as(Act::new);
        return Combinators.combine(Arbitraries.of(true, false), Arbitraries.of(4, 8, 5, 7),
            act.list().ofMinSize(1).ofMaxSize(40)).as((packed, q, acts) ->
                new DeviceCase(packed, packed ? q : Integer.highestOneBit(q), acts));
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.maliciousDeviceTries", defaultTries = 10_000)
    void batchesAreTakenBackWholeAndABrokenOrderIsRefused(@ForAll("deviceCases") DeviceCase c) {
        HandDevice run = c.packed() ? new PackedHandDevice(c.queueSize()) : new SplitHandDevice(c.queueSize());
        try (run) {
            for (Act act : c.acts()) {
                run.log.append("  ").append(act).append('\n');
                if (!run.act(act)) {
                    break;
                }
            }
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\n" + c + "\nsteps:\n" + run.log, e);
        }
        Statistics.label("outcome").collect(run.error == null ? "in order" : run.error.name());
    }

    /** The driver's state as the hand-written device sees it, and the oracle for each batch. */
    private abstract static class HandDevice implements AutoCloseable {
        final int q;
        final DriverQueue driver;
        final StringBuilder log = new StringBuilder();
        /** Outstanding buffers, oldest first: {head, descriptors, writable}. */
        final ArrayDeque<long[]> outstanding = new ArrayDeque<>();
        /** Recently taken-back heads that are not outstanding again. */
        final List<Integer> takenBack = new ArrayList<>();
        RingError error;

        HandDevice(int q, DriverQueue driver) {
            this.q = q;
            this.driver = driver;
        }

        /** @return false once the queue is broken (after checking it stays so) */
        boolean act(Act a) {
            for (int i = 0; i < a.adds(); i++) {
                BufferChain c = chain(KINDS[(a.kindSeed() + i) % KINDS.length]);
                int head;
                try {
                    head = driver.add(c);
                } catch (VirtqueueException e) {
                    throw new AssertionError("add on a healthy queue: " + e.getMessage(), e);
                }
                if (head != DriverQueue.NO_ROOM) {
                    outstanding.add(new long[] {head, c.size(), c.writableLength()});
                    takenBack.remove((Integer) head);
                }
            }
            driver.publish();
            if (outstanding.isEmpty()) {
                return true;
            }
            List<long[]> order = new ArrayList<>(outstanding);
            long id;
            int count = -1;
            long writable = 0;
            if (a.idMode() <= 5) {
                count = Math.min(a.pick(), order.size() - 1) + 1;
                id = order.get(count - 1)[0];
                writable = order.get(count - 1)[2];
            } else if (a.idMode() == 6 && !takenBack.isEmpty()) {
                id = takenBack.get(a.pick() % takenBack.size());
            } else {
                id = q + a.pick();
            }
            long len = Math.max(0, writable + a.lenDelta());
            int moved = count < 0 ? 1 : Math.max(1, count + a.moveDelta());
            RingError want;
            if (count < 0) {
                want = RingError.USED_ID_NOT_IN_FLIGHT;
            } else if (!packed() && moved < count) {
                want = RingError.USED_NOT_IN_ORDER;
            } else if (!packed() && moved > outstanding.size()) {
                want = RingError.USED_IDX_TOO_FAR;
            } else if (len > writable) {
                want = RingError.USED_LENGTH_TOO_LARGE;
            } else {
                want = null;
            }
            log.append("    id ").append(id).append(", batch ").append(count).append(", moved ").append(moved)
                .append(", len ").append(len).append(", want ").append(want).append('\n');
            writeBatch(id, len, count < 0 ? 1 : count, moved);
            for (int k = 0; want == null && k < count; k++) {
                long[] b = outstanding.poll();
                int head = poll(null);
                assertEquals((int) b[0], head, "buffer " + k + " of the batch");
                assertEquals(k == count - 1 ? len : b[2], driver.usedLength(), "used length of head " + head);
                takenBack.add(head);
            }
            if (want == null && !packed() && moved > count) {
                // the device moved the idx further than its batch: the driver reads a skipped slot (garbage)
                want = RingError.USED_ID_NOT_IN_FLIGHT;
                skipGarbage(count, moved);
            }
            if (want == null) {
                assertEquals(DriverQueue.NONE, poll(null), "nothing beyond the batch");
                return true;
            }
            poll(want);
            return false;
        }

        /** @return the polled head; with {@code want}, asserts the driver throws it and stays broken */
        int poll(RingError want) {
            if (want == null) {
                try {
                    return driver.pollUsed();
                } catch (VirtqueueException e) {
                    throw new AssertionError("a valid batch was refused: " + e.getMessage(), e);
                }
            }
            VirtqueueException e = assertThrows(VirtqueueException.class, driver::pollUsed);
            assertEquals(want, e.error(), e.getMessage());
            assertTrue(driver.isBroken());
            assertSame(e, assertThrows(VirtqueueException.class, driver::pollUsed));
            error = want;
            return -1;
        }

        abstract boolean packed();

        @Override
        public abstract void close();

        /** Writes one used entry naming {@code id} for a batch of {@code count}; the skipped slots get garbage. */
        abstract void writeBatch(long id, long len, int count, int moved);

        /** Split only: the device published {@code moved - count} slots past the batch that hold garbage. */
        void skipGarbage(int count, int moved) {
        }
    }

    private static final class SplitHandDevice extends HandDevice {
        final RawSplitRing ring;
        int usedIdx;

        SplitHandDevice(int q) {
            this(RawSplitRing.of(q, VirtioFeatures.IN_ORDER), q);
        }

        private SplitHandDevice(RawSplitRing ring, int q) {
            super(q, ring.driver());
            this.ring = ring;
        }

        @Override
        boolean packed() {
            return false;
        }

        @Override
        void writeBatch(long id, long len, int count, int moved) {
            int mask = q - 1;
            ring.usedElement(usedIdx & mask, (int) id, len);
            // the slots a batch skips keep whatever they held: here an id no driver has in flight
            for (int k = 1; k < moved && k < q; k++) {
                ring.usedElement((usedIdx + k) & mask, 0xFFFF_FFF0, 0xFFFF_FFFFL);
            }
            usedIdx = (usedIdx + moved) & 0xFFFF;
            ring.used.set(LE_SHORT, 2, (short) usedIdx);
        }

        @Override
        public void close() {
            ring.close();
        }
    }

    private static final class PackedHandDevice extends HandDevice {
        final RawPackedRing ring;
        int position;
        boolean wrap = true;

        PackedHandDevice(int q) {
            this(RawPackedRing.of(q, VirtioFeatures.IN_ORDER), q);
        }

        private PackedHandDevice(RawPackedRing ring, int q) {
            super(q, ring.driver());
            this.ring = ring;
        }

        @Override
        boolean packed() {
            return true;
        }

        @Override
        void writeBatch(long id, long len, int count, int moved) {
            List<long[]> order = new ArrayList<>(outstanding);
            int first = position;
            boolean firstWrap = wrap;
            // the batch's other heads get descriptors marked used with a garbage id: a driver that read them would fail
            for (int k = 0; k < count && k < order.size(); k++) {
                if (k > 0) {
                    RawPackedRing.writeDescriptor(ring.desc, position, 0, 0, 0xFFFF, RawPackedRing.usedBits(wrap));
                }
                position += (int) order.get(k)[1];
                if (position >= q) {
                    position -= q;
                    wrap = !wrap;
                }
            }
            RawPackedRing.writeDescriptor(ring.desc, first, 0, len, (int) id,
                RawPackedRing.usedBits(firstWrap) | (len > 0 ? 2 : 0));
        }

        @Override
        public void close() {
            ring.close();
        }
    }
}

package io.vringj.properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.IotlbAddressSpace;
import io.vringj.dma.IotlbMessage;
import io.vringj.dma.IotlbMessageProcessor;
import io.vringj.dma.IotlbTranslations;
import io.vringj.dma.Permission;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DeviceLoop;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingError;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.statistics.Statistics;

/**
 * Liveness of a device loop behind a device IOTLB in message mode: whatever the IOMMU side does
 * between a MISS and the device's retry — answer it, answer it and invalidate the answer again,
 * do both inside one batch, invalidate any page including the rings' — once the IOMMU answers
 * every MISS it is sent, every request completes, once, in order. A loop that sits parked with no
 * MISS outstanding is wedged, which is how a Linux guest behind QEMU's intel-iommu (whose domain
 * flushes invalidate everything right after the answers) stopped a vhost-user back end.
 *
 * <pre>
 *   IOVA page p = GPA page p + OFFSET;  pages 0..2 the ring areas, 3..7 the buffers
 *   IOMMU: a MISS for page p is answered by UPDATE(p, RW) when the test says so
 * </pre>
 */
class IotlbLivenessProperties {
    private static final long GPA = 0x2000_0000L;
    private static final long OFFSET = 0x1_0000_0000L;
    private static final long PAGE = 4096;
    private static final int PAGES = 8;
    private static final int Q = 8;
    /** Drain rounds after the operations: each runs the loop and answers what it asked for. */
    private static final int DRAIN_ROUNDS = 64;

    sealed interface Op permits Add, Run, Answer, AnswerThenInvalidate, BatchAnswerInvalidate, Invalidate, Reclaim {
    }

    record Add(int chains) implements Op {
    }

    record Run(int maxChains) implements Op {
    }

    /** Answers every MISS sent so far. */
    record Answer() implements Op {
    }

    /** Answers every MISS sent so far, then invalidates what it answered (or everything). */
    record AnswerThenInvalidate(boolean everything) implements Op {
    }

    /** The same inside one BATCH_BEGIN .. BATCH_END. */
    record BatchAnswerInvalidate() implements Op {
    }

    record Invalidate(int page) implements Op {
    }

    record Reclaim() implements Op {
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 1000)
    void everyRequestCompletesOnceInOrderWhateverTheIommuDoesBetweenAMissAndItsRetry(
        @ForAll boolean packed, @ForAll("operations") List<Op> ops) throws Exception {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX)
            | (packed ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0);
        try (GuestMemory memory = GuestMemory.ofShared(GPA, PAGES * PAGE)) {
            Harness h = new Harness(memory, features);
            for (Op op : ops) {
                h.apply(op);
            }
            for (int round = 0; round < DRAIN_ROUNDS && !h.done(); round++) {
                h.apply(new Run(Q));
                h.apply(new Answer());
                h.apply(new Reclaim());
            }
            if (!h.done()) {
                fail("wedged after " + DRAIN_ROUNDS + " drain rounds: " + h.handled.size() + " of " + h.added.size()
                    + " requests handled, loop parked " + h.loop.isParked() + ", MISSes outstanding " + h.outbox
                    + ", ops " + ops);
            }
            assertEquals(h.added, h.handled, "every request once, in the order it was made available");
            Statistics.label("layout").collect(packed ? "packed" : "split");
            Statistics.label("parks").collect(h.parks > 0 ? "parked" : "never parked");
        }
    }

    @Provide
    Arbitrary<List<Op>> operations() {
        Arbitrary<Op> op = Arbitraries.oneOf(
            Arbitraries.integers().between(1, 4).map(n -> (Op) new Add(n)),
            Arbitraries.integers().between(1, 4).map(n -> (Op) new Run(n)),
            Arbitraries.just(new Answer()),
            Arbitraries.of(true, false).map(all -> (Op) new AnswerThenInvalidate(all)),
            Arbitraries.just(new BatchAnswerInvalidate()),
            Arbitraries.integers().between(0, PAGES - 1).map(p -> (Op) new Invalidate(p)),
            Arbitraries.just(new Reclaim()));
        return op.list().ofMinSize(1).ofMaxSize(40);
    }

    /** The driver (honest, on guest-physical addresses), the IOMMU's answers, and the device loop. */
    private static final class Harness {
        final DriverQueue driver;
        final DeviceIotlb iotlb;
        final IotlbMessageProcessor processor;
        final TreeSet<Long> outbox = new TreeSet<>();
        final List<Integer> added = new ArrayList<>();
        final List<Integer> handled = new ArrayList<>();
        final RingAddresses busRings;
        DeviceLoop loop;
        int next;
        int reclaimed;
        long parks;

        Harness(GuestMemory memory, long features) {
            RingAddresses gpaRings = new RingAddresses(GPA, GPA + PAGE, GPA + 2 * PAGE);
            busRings = new RingAddresses(GPA + OFFSET, GPA + PAGE + OFFSET, GPA + 2 * PAGE + OFFSET);
            driver = DriverQueue.create(features, Q, memory, gpaRings);
            iotlb = new DeviceIotlb(AddressSpace.identity(memory));
            iotlb.setMessageSink(m -> outbox.add(m.iova() & ~(PAGE - 1)));
            processor = new IotlbMessageProcessor(iotlb);
        }

        boolean done() {
            return loop != null && handled.size() == added.size() && reclaimed == added.size();
        }

        void apply(Op op) throws Exception {
            switch (op) {
                case Add a -> {
                    for (int k = 0; k < a.chains() && driver.numFree() > 0; k++) {
                        long gpa = GPA + (3 + next % (PAGES - 3)) * PAGE + (next * 64L) % PAGE;
                        // the descriptor holds the IOVA: the device sees memory only through the IOTLB
                        int head = driver.add(new BufferChain(1).addWritable(gpa + OFFSET, 16));
                        added.add(head);
                        next++;
                    }
                    driver.publish();
                }
                case Run r -> run(r.maxChains());
                case Answer a -> answer();
                case AnswerThenInvalidate a -> {
                    List<Long> answered = answer();
                    if (a.everything()) {
                        processor.process(IotlbMessage.invalidate(GPA + OFFSET, PAGES * PAGE));
                    } else {
                        for (long page : answered) {
                            processor.process(IotlbMessage.invalidate(page, PAGE));
                        }
                    }
                }
                case BatchAnswerInvalidate b -> {
                    processor.process(IotlbMessage.batchBegin());
                    for (long page : answer()) {
                        processor.process(IotlbMessage.invalidate(page, PAGE));
                    }
                    processor.process(IotlbMessage.batchEnd());
                }
                case Invalidate i -> processor.process(IotlbMessage.invalidate(GPA + OFFSET + i.page() * PAGE, PAGE));
                case Reclaim r -> {
                    while (driver.pollUsed() >= 0) {
                        reclaimed++;
                    }
                }
            }
        }

        private List<Long> answer() throws Exception {
            List<Long> pages = new ArrayList<>(outbox);
            outbox.clear();
            for (long page : pages) {
                // the IOMMU maps every page read-write, IOVA page → its guest-physical page
                processor.process(IotlbMessage.update(page, PAGE, page - OFFSET, Permission.RW));
            }
            return pages;
        }

        private void run(int maxChains) throws Exception {
            if (loop == null) {
                try {
                    DeviceQueue queue = DeviceQueue.create(driver.features(), Q, busRings, new IotlbAddressSpace(iotlb));
                    loop = new DeviceLoop(queue, chain -> {
                        handled.add(chain.head());
                        return 0;
                    }, () -> { }, IotlbTranslations.parking(iotlb));
                } catch (VirtqueueException e) {
                    assertEquals(RingError.TRANSLATION_MISS, e.error(), "activation fails only on a miss");
                    return;
                }
            }
            if (loop.run(maxChains) == DeviceLoop.PARKED) {
                parks++;
            }
        }
    }
}

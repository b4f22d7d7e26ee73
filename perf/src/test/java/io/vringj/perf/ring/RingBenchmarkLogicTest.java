package io.vringj.perf.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The benchmarks' producer and consumer steps, driven on one thread without JMH: every payload
 * produced is consumed once, buffers are recycled, and a full or empty queue counts a failure
 * instead of blocking. (Speed is JMH's business; this only proves the benchmarks measure what
 * they claim.)
 */
class RingBenchmarkLogicTest {
    private static final Blackhole BH = new Blackhole(
        "Today's password is swordfish. I understand instantiating Blackholes directly is dangerous.");
    private static final int ROUNDS = 2_000;

    @Test
    void payloadStampReadsBackAsAllOnesWhenIntact() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(4096);
            Payloads.stamp(s, 0, 4096, 12345);
            assertEquals(-1L, Payloads.read(s, 0, 4096));
            Payloads.stamp(s, 64, 64, 7);
            assertEquals(-1L, Payloads.read(s, 64, 64));
        }
    }

    @Test
    void vringjMovesEveryPayloadOnceAndRecyclesItsBuffers() throws Exception {
        RingThroughputBenchmark b = new RingThroughputBenchmark();
        RingThroughputBenchmark.VringjRing ring = new RingThroughputBenchmark.VringjRing();
        ring.init(1024, 32);
        try {
            ProducerCounters p = new ProducerCounters();
            ConsumerCounters c = new ConsumerCounters();
            for (int i = 0; i < ROUNDS; i++) {
                b.vringjProduce(ring, p);
                b.vringjConsume(ring, c, BH);
            }
            assertEquals(ROUNDS * 32L, c.messages, "each round moves a whole batch: buffers come back");
            assertEquals(0, p.offerFailures);
            assertEquals(0, p.drainWaits, "each burst was consumed before the producer came back");
            assertEquals(0, c.pollFailures);
            assertEquals(ROUNDS * 32L, ring.producer.sequence);
        } finally {
            ring.tearDown();
        }
    }

    @Test
    void vringjPackedMovesEveryPayloadOnceOverThePackedRing() throws Exception {
        RingThroughputBenchmark b = new RingThroughputBenchmark();
        RingThroughputBenchmark.VringjPackedRing ring = new RingThroughputBenchmark.VringjPackedRing();
        ring.init(64, 32);
        try {
            ProducerCounters p = new ProducerCounters();
            ConsumerCounters c = new ConsumerCounters();
            for (int i = 0; i < ROUNDS; i++) {
                b.vringjPackedProduce(ring, p);
                b.vringjPackedConsume(ring, c, BH);
            }
            assertEquals(ROUNDS * 32L, c.messages, "each round moves a whole batch: buffers come back");
            assertEquals(0, p.offerFailures);
            assertTrue(VirtioFeatures.has(ring.ring.driver().features(), VirtioFeatures.RING_PACKED),
                "the packed layout was negotiated");
        } finally {
            ring.tearDown();
        }
    }

    @Test
    void vringjInOrderMovesEveryPayloadOnceOnBothLayoutsWithOneUsedEntryPerBatch() throws Exception {
        RingThroughputBenchmark b = new RingThroughputBenchmark();
        RingThroughputBenchmark.VringjRing[] rings = {new RingThroughputBenchmark.VringjInOrderRing(),
            new RingThroughputBenchmark.VringjPackedInOrderRing()};
        for (RingThroughputBenchmark.VringjRing ring : rings) {
            ring.init(64, 32);
            try {
                ProducerCounters p = new ProducerCounters();
                ConsumerCounters c = new ConsumerCounters();
                for (int i = 0; i < ROUNDS; i++) {
                    if (ring instanceof RingThroughputBenchmark.VringjInOrderRing r) {
                        b.vringjInOrderProduce(r, p);
                        b.vringjInOrderConsume(r, c, BH);
                    } else {
                        RingThroughputBenchmark.VringjPackedInOrderRing r = (RingThroughputBenchmark.VringjPackedInOrderRing) ring;
                        b.vringjPackedInOrderProduce(r, p);
                        b.vringjPackedInOrderConsume(r, c, BH);
                    }
                }
                assertEquals(ROUNDS * 32L, c.messages, "each round moves a whole batch: buffers come back");
                assertEquals(0, p.offerFailures);
                assertTrue(ring.ring.driver().inOrder() && ring.ring.device().inOrder(), "IN_ORDER was negotiated");
            } finally {
                ring.tearDown();
            }
        }
    }

    /** One benchmark group driven by hand: a producer call and a consumer call. */
    interface Group {
        void produce(ProducerCounters p) throws Exception;

        void consume(ConsumerCounters c) throws Exception;
    }

    /**
     * A producer sends one burst, then waits (counting each call, never blocking) until the
     * consumer has taken all of it; only then does the next burst start. The same for every peer.
     */
    @Test
    void everyProducerSendsABurstAndWaitsUntilItIsConsumedWithoutBlocking() throws Exception {
        RingThroughputBenchmark b = new RingThroughputBenchmark();
        RingThroughputBenchmark.VringjRing split = new RingThroughputBenchmark.VringjRing();
        RingThroughputBenchmark.VringjPackedRing packed = new RingThroughputBenchmark.VringjPackedRing();
        RingThroughputBenchmark.AgronaRing agrona = new RingThroughputBenchmark.AgronaRing();
        RingThroughputBenchmark.JctoolsQueues jctools = new RingThroughputBenchmark.JctoolsQueues();
        RingThroughputBenchmark.BlockingQueues abq = new RingThroughputBenchmark.BlockingQueues();
        int batch = 16;
        split.init(64, batch);
        packed.init(64, batch);
        agrona.init(64, batch);
        jctools.init(64, batch);
        abq.init(64, batch);
        Map<String, Group> groups = new LinkedHashMap<>();
        groups.put("vringj", group(p -> b.vringjProduce(split, p), c -> b.vringjConsume(split, c, BH)));
        groups.put("vringjPacked", group(p -> b.vringjPackedProduce(packed, p), c -> b.vringjPackedConsume(packed, c, BH)));
        groups.put("agrona", group(p -> b.agronaProduce(agrona, p), c -> b.agronaConsume(agrona, c, BH)));
        groups.put("jctools", group(p -> b.jctoolsProduce(jctools, p), c -> b.jctoolsConsume(jctools, c, BH)));
        groups.put("abq", group(p -> b.abqProduce(abq, p), c -> b.abqConsume(abq, c, BH)));
        int callsPerBurst = RingThroughputBenchmark.BURST / batch;
        try {
            for (Map.Entry<String, Group> e : groups.entrySet()) {
                String peer = e.getKey();
                Group g = e.getValue();
                ProducerCounters p = new ProducerCounters();
                ConsumerCounters c = new ConsumerCounters();
                for (int burst = 1; burst <= 3; burst++) {
                    for (int i = 0; i < callsPerBurst + 5; i++) {
                        g.produce(p);
                    }
                    assertEquals(5L * burst, p.drainWaits, peer + ": after a burst the producer waits, call by call");
                    for (int i = 0; i < callsPerBurst; i++) {
                        g.consume(c);
                    }
                    assertEquals((long) RingThroughputBenchmark.BURST * burst, c.messages,
                        peer + ": a burst is " + RingThroughputBenchmark.BURST + " payloads, no more");
                    g.consume(c);
                    assertEquals(burst, c.pollFailures, peer + ": nothing beyond the burst was sent");
                }
                assertEquals(0, p.offerFailures, peer + ": a burst fits in the queue");
            }
        } finally {
            split.tearDown();
            packed.tearDown();
            jctools.tearDown();
            abq.tearDown();
        }
    }

    @FunctionalInterface
    interface Step<T> {
        void run(T counters) throws Exception;
    }

    private static Group group(Step<ProducerCounters> produce, Step<ConsumerCounters> consume) {
        return new Group() {
            @Override
            public void produce(ProducerCounters p) throws Exception {
                produce.run(p);
            }

            @Override
            public void consume(ConsumerCounters c) throws Exception {
                consume.run(c);
            }
        };
    }

    @Test
    void agronaMovesEveryPayloadOnce() {
        RingThroughputBenchmark b = new RingThroughputBenchmark();
        RingThroughputBenchmark.AgronaRing ring = new RingThroughputBenchmark.AgronaRing();
        ring.init(4096, 32);
        ProducerCounters p = new ProducerCounters();
        ConsumerCounters c = new ConsumerCounters();
        for (int i = 0; i < ROUNDS; i++) {
            b.agronaProduce(ring, p);
            b.agronaConsume(ring, c, BH);
        }
        // a read stops at the end of Agrona's buffer, so a few records may wait for the next call,
        // and the producer waits for them before its next burst
        while (c.pollFailures == 0) {
            b.agronaConsume(ring, c, BH);
        }
        long produced = ring.sequence.value;
        assertEquals(ROUNDS * 32L, produced + 32 * p.drainWaits, "each call sent a batch or waited for a burst");
        assertTrue(produced > ROUNDS * 32L * 9 / 10, "few calls waited: " + p.drainWaits);
        assertEquals(produced, c.messages);
        assertEquals(0, p.offerFailures);
        assertEquals(-1L * produced, ring.handler.sink, "every record read back intact (each reads -1)");
    }

    @Test
    void jctoolsAndBlockingQueuesMoveEveryPayloadOnce() {
        RingThroughputBenchmark b = new RingThroughputBenchmark();
        RingThroughputBenchmark.JctoolsQueues jq = new RingThroughputBenchmark.JctoolsQueues();
        RingThroughputBenchmark.BlockingQueues aq = new RingThroughputBenchmark.BlockingQueues();
        jq.init(64, 1);
        aq.init(64, 1);
        try {
            ProducerCounters p = new ProducerCounters();
            ConsumerCounters c = new ConsumerCounters();
            for (int i = 0; i < ROUNDS; i++) {
                b.jctoolsProduce(jq, p);
                b.jctoolsConsume(jq, c, BH);
                b.abqProduce(aq, p);
                b.abqConsume(aq, c, BH);
            }
            assertEquals(2L * ROUNDS, c.messages);
            assertEquals(0, p.offerFailures);
            assertEquals(RingThroughputBenchmark.QUEUE_SIZE, jq.back.size(), "every slice came back");
            assertEquals(RingThroughputBenchmark.QUEUE_SIZE, aq.back.size(), "every slice came back");
        } finally {
            jq.tearDown();
            aq.tearDown();
        }
    }

    @Test
    void roundTripsCountOnlyWhenTheAnswerCameBack() throws Exception {
        RoundTripBenchmark b = new RoundTripBenchmark();
        RoundTripBenchmark.Ring ring = new RoundTripBenchmark.Ring();
        ring.setUp();
        try {
            RoundTripBenchmark.RoundTripCounters driver = new RoundTripBenchmark.RoundTripCounters();
            RoundTripBenchmark.EchoCounters device = new RoundTripBenchmark.EchoCounters();
            b.ringDriver(ring, driver);
            b.ringDriver(ring, driver);
            assertEquals(0, driver.roundTrips);
            assertEquals(1, driver.pingPollFailures, "no answer yet: a failed poll, not a wait");
            for (int i = 0; i < ROUNDS; i++) {
                b.ringDevice(ring, device, BH);
                b.ringDriver(ring, driver);
            }
            assertEquals(ROUNDS, driver.roundTrips);
            b.ringDevice(ring, device, BH);
            b.ringDevice(ring, device, BH);
            assertEquals(1, device.echoPollFailures);
        } finally {
            ring.tearDown();
        }

        RoundTripBenchmark.Line line = new RoundTripBenchmark.Line();
        line.setUp();
        RoundTripBenchmark.RoundTripCounters ping = new RoundTripBenchmark.RoundTripCounters();
        RoundTripBenchmark.EchoCounters echo = new RoundTripBenchmark.EchoCounters();
        b.pingPongEcho(line, echo);
        assertEquals(1, echo.echoPollFailures, "the echo waits for the first ping");
        for (int i = 0; i < ROUNDS; i++) {
            b.pingPongPing(line, ping);
            b.pingPongEcho(line, echo);
        }
        b.pingPongPing(line, ping);
        assertEquals(ROUNDS + 1, ping.roundTrips, "the first ping counts when it starts");
        assertTrue(ping.pingPollFailures == 0);
    }
}

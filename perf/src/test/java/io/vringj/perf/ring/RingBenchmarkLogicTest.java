package io.vringj.perf.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
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

    @Test
    void vringjProducerCountsAFullRingInsteadOfBlocking() throws Exception {
        RingThroughputBenchmark b = new RingThroughputBenchmark();
        RingThroughputBenchmark.VringjRing ring = new RingThroughputBenchmark.VringjRing();
        ring.init(64, 32);
        try {
            ProducerCounters p = new ProducerCounters();
            ConsumerCounters c = new ConsumerCounters();
            b.vringjConsume(ring, c, BH);
            assertEquals(1, c.pollFailures, "an empty ring is a failed poll");
            for (int i = 0; i < RingThroughputBenchmark.QUEUE_SIZE / 32 + 3; i++) {
                b.vringjProduce(ring, p);
            }
            assertEquals(3, p.offerFailures, "with Q buffers in flight every further call fails at once");
            assertEquals(RingThroughputBenchmark.QUEUE_SIZE, ring.ring.driver().inFlight());
            for (int i = 0; i < RingThroughputBenchmark.QUEUE_SIZE / 32; i++) {
                b.vringjConsume(ring, c, BH);
            }
            assertEquals(RingThroughputBenchmark.QUEUE_SIZE, c.messages);
            b.vringjProduce(ring, p);
            assertEquals(3, p.offerFailures, "used buffers are recycled on the next produce");
        } finally {
            ring.tearDown();
        }
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
        // a read stops at the end of Agrona's buffer, so a few records may wait for the next call
        while (c.pollFailures == 0) {
            b.agronaConsume(ring, c, BH);
        }
        assertEquals(ROUNDS * 32L, c.messages);
        assertEquals(0, p.offerFailures);
        assertEquals(-1L * (ROUNDS * 32L), ring.handler.sink, "every record read back intact (each reads -1)");
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

package io.vringj.perf.ring;

import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Question 2: how close is the ring's cross-thread round trip to the floor, a two-thread
 * ping-pong of one cache line? Target: the ring's round trip within 1.5× of the ping-pong's
 * (round trips per second at least 2/3 of the ping-pong's).
 *
 * <ul>
 *   <li>{@code pingPong}: the pinging thread sees its turn (an even value) in one padded cache
 *       line, counts a round trip and hands the turn over (odd); the echoing thread hands it
 *       back. One line moves each way per round trip.</li>
 *   <li>{@code ring}: the driver thread stamps a 64-byte payload, adds it as one premapped
 *       descriptor and publishes; the device thread pops it, reads the payload in place, returns
 *       it used and publishes; the driver's poll of the used ring completes the round trip.</li>
 * </ul>
 * Each benchmark call does one non-blocking step: a call that finds it is not its turn returns
 * at once and counts in {@link RoundTripCounters#pingPollFailures} or
 * {@link EchoCounters#echoPollFailures} (after a long streak of them the thread yields its core
 * once, for both peers alike). The figure compared is
 * {@link RoundTripCounters#roundTrips} per second.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {JvmFlags.HEAP, JvmFlags.HEADLESS})
public class RoundTripBenchmark {
    private static final long PAYLOAD = 64;

    /** Counters of the thread that starts and completes round trips. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class RoundTripCounters {
        /** Round trips completed. */
        public long roundTrips;
        /** Steps that found the answer had not come back yet. */
        public long pingPollFailures;

        private final Backoff backoff = new Backoff();

        void pollFailed() {
            pingPollFailures++;
            backoff.failed();
        }

        void roundTrip() {
            roundTrips++;
            backoff.progressed();
        }

        /** Zeroes the counters before each iteration. */
        @Setup(Level.Iteration)
        public void reset() {
            roundTrips = 0;
            pingPollFailures = 0;
        }
    }

    /** Counters of the thread that answers. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class EchoCounters {
        /** Steps that found nothing to answer. */
        public long echoPollFailures;

        private final Backoff backoff = new Backoff();

        void pollFailed() {
            echoPollFailures++;
            backoff.failed();
        }

        void answered() {
            backoff.progressed();
        }

        /** Zeroes the counters before each iteration. */
        @Setup(Level.Iteration)
        public void reset() {
            echoPollFailures = 0;
        }
    }

    /**
     * One cache line, padded on both sides, holding the turn: even means the pinging thread's
     * turn, odd the echoing thread's.
     */
    @State(Scope.Group)
    public static class Line {
        private static final VarHandle TURN;

        static {
            try {
                TURN = MethodHandles.lookup().findVarHandle(PaddedTurn.class, "turn", long.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        final PaddedTurn line = new PaddedTurn();
        final Side ping = new Side();
        final Side echo = new Side();

        /** Each thread's next expected value, on its own line. */
        static final class Side extends PaddedSide {
            long expect;
        }

        /** Starts the ping thread on 0 and the echo thread on 1. */
        @Setup(Level.Trial)
        public void setUp() {
            ping.expect = 0;
            echo.expect = 1;
        }
    }

    /** The turn with a cache line of padding after it (the base class pads before). */
    static final class PaddedTurn extends PaddedSide {
        long turn;
        // padding after the turn, never read
        long q0;
        long q1;
        long q2;
        long q3;
        long q4;
        long q5;
        long q6;
        long q7;
    }

    /**
     * Ping side: completes a round trip when the turn comes back.
     *
     * @param line the shared line
     * @param counters this thread's counters
     */
    @Benchmark
    @Group("pingPong")
    @GroupThreads(1)
    public void pingPongPing(Line line, RoundTripCounters counters) {
        Line.Side me = line.ping;
        // acquire: pairs with the release in pingPongEcho
        if ((long) Line.TURN.getAcquire(line.line) != me.expect) {
            counters.pollFailed();
            return;
        }
        counters.roundTrip();
        // release: pairs with the acquire in pingPongEcho
        Line.TURN.setRelease(line.line, me.expect + 1);
        me.expect += 2;
    }

    /**
     * Echo side: hands the turn straight back.
     *
     * @param line the shared line
     * @param counters this thread's counters
     */
    @Benchmark
    @Group("pingPong")
    @GroupThreads(1)
    public void pingPongEcho(Line line, EchoCounters counters) {
        Line.Side me = line.echo;
        // acquire: pairs with the release in pingPongPing
        if ((long) Line.TURN.getAcquire(line.line) != me.expect) {
            counters.pollFailed();
            return;
        }
        counters.answered();
        // release: pairs with the acquire in pingPongPing
        Line.TURN.setRelease(line.line, me.expect + 1);
        me.expect += 2;
    }

    /** A split ring with one 64-byte buffer going round. */
    @State(Scope.Group)
    public static class Ring {
        RingFixture ring;
        Driver driver;
        Device device;

        /**
         * @throws Exception if the ring cannot be built
         */
        @Setup(Level.Trial)
        public void setUp() throws Exception {
            ring = new RingFixture(RingThroughputBenchmark.QUEUE_SIZE, PAYLOAD);
            driver = new Driver(ring);
            device = new Device(ring);
        }

        /** Frees the guest memory. */
        @TearDown(Level.Trial)
        public void tearDown() {
            ring.close();
        }

        /** The driver thread's state. */
        static final class Driver extends PaddedSide {
            final DriverQueue queue;
            final MemorySegment region;
            final long offset;
            final BufferChain chain;
            boolean awaiting;
            long sequence;

            Driver(RingFixture ring) {
                queue = ring.driver();
                region = ring.regionSegment();
                offset = ring.slotOffset(0);
                chain = new BufferChain(1).addReadable(ring.slotAddress(0), PAYLOAD);
            }
        }

        /** The device thread's state. */
        static final class Device extends PaddedSide {
            final DeviceQueue queue;
            final DescriptorChain chain = new DescriptorChain();

            Device(RingFixture ring) {
                queue = ring.device();
            }
        }
    }

    /**
     * Driver side: if the buffer is out, polls for it (a completed round trip); then sends it again.
     *
     * @param ring the group's ring
     * @param counters this thread's counters
     * @throws Exception if the ring breaks (it must not)
     */
    @Benchmark
    @Group("ring")
    @GroupThreads(1)
    public void ringDriver(Ring ring, RoundTripCounters counters) throws Exception {
        Ring.Driver d = ring.driver;
        if (d.awaiting) {
            if (d.queue.pollUsed() == DriverQueue.NONE) {
                counters.pollFailed();
                return;
            }
            counters.roundTrip();
        }
        Payloads.stamp(d.region, d.offset, PAYLOAD, d.sequence++);
        d.queue.add(d.chain);
        d.queue.publishQuiet();
        d.awaiting = true;
    }

    /**
     * Device side: pops the buffer, reads it in place, returns it.
     *
     * @param ring the group's ring
     * @param counters this thread's counters
     * @param bh sinks the payload read
     * @throws Exception if the ring breaks (it must not)
     */
    @Benchmark
    @Group("ring")
    @GroupThreads(1)
    public void ringDevice(Ring ring, EchoCounters counters, Blackhole bh) throws Exception {
        Ring.Device d = ring.device;
        if (!d.queue.pop(d.chain)) {
            counters.pollFailed();
            return;
        }
        counters.answered();
        bh.consume(Payloads.read(d.chain.pieceSegment(0), d.chain.pieceOffset(0), d.chain.pieceLength(0)));
        d.queue.addUsed(d.chain.head(), 0);
        d.queue.publishUsedQuiet();
    }
}

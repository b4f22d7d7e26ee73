package io.vringj.perf.channel;

import io.vringj.perf.ring.Backoff;
import io.vringj.perf.ring.JvmFlags;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Question 10: how long does one message take to go to another process and back through vringj's
 * message channel, compared with Aeron IPC and Agrona's ring buffer in a mapped file? Target: the
 * channel's round trip within 1.5× of Aeron's (round trips per second at least 2/3 of Aeron's).
 *
 * <p>The benchmark thread sends one {@value #LENGTH}-byte message and polls for its echo from a
 * peer JVM ({@link PeerSession}, {@link PeerRole#ECHO}) that sends every message straight back;
 * one message is in flight at a time. Each call does one non-blocking step: when the echo is not
 * back yet it returns at once and counts in {@link RoundTripCounters#pollFailures} (after a long
 * streak the thread yields its core once, for every transport alike). The figure compared is
 * {@link RoundTripCounters#roundTrips} per second; the tear-down checks that every message came
 * back intact and that the peer saw them all.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {JvmFlags.AGRONA, JvmFlags.JCTOOLS, JvmFlags.NATIVE_ACCESS, JvmFlags.HEAP,
    JvmFlags.HEADLESS})
public class ChannelRoundTripBenchmark {
    /** The message's length in bytes. */
    public static final int LENGTH = 64;

    /** The pinging thread's counters. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class RoundTripCounters {
        /** Round trips completed. */
        public long roundTrips;
        /** Steps that found the echo not back yet. */
        public long pollFailures;

        private final Backoff backoff = new Backoff();

        void roundTrip() {
            roundTrips++;
            backoff.progressed();
        }

        void pollFailed() {
            pollFailures++;
            backoff.failed();
        }

        /** Zeroes the counters before each iteration. */
        @Setup(Level.Iteration)
        public void reset() {
            roundTrips = 0;
            pollFailures = 0;
        }
    }

    /** One session with an echo peer; the subclasses name the transport. */
    public abstract static class Pinger {
        PeerSession session;
        Link link;
        boolean awaiting;

        abstract Transport transport();

        /**
         * Starts the peer, connects and warms both up ({@link PeerSession#warmUp}).
         *
         * @throws IOException if the session cannot be set up
         */
        @Setup(Level.Trial)
        public void setUp() throws IOException {
            session = PeerSession.open(transport(), PeerRole.ECHO, LENGTH);
            link = session.link();
            session.warmUp(PeerSession.WARM_UP, LENGTH, 1);
        }

        /** Takes back the last echo, checks every message went both ways, stops the peer. */
        @TearDown(Level.Trial)
        public void tearDown() {
            try {
                session.finish();
            } finally {
                session.close();
            }
        }

        void step(RoundTripCounters counters) {
            if (awaiting) {
                if (link.receive(1) == 0) {
                    counters.pollFailed();
                    return;
                }
                counters.roundTrip();
                awaiting = false;
            }
            // one message in flight: the way out has room
            awaiting = link.send(1, LENGTH) == 1;
        }
    }

    /** vringj's message channel. */
    @State(Scope.Thread)
    public static class VringjPinger extends Pinger {
        @Override
        Transport transport() {
            return Transport.VRINGJ;
        }
    }

    /** Aeron IPC. */
    @State(Scope.Thread)
    public static class AeronPinger extends Pinger {
        @Override
        Transport transport() {
            return Transport.AERON;
        }
    }

    /** Agrona's ring buffers in a shared mapped file. */
    @State(Scope.Thread)
    public static class AgronaMmapPinger extends Pinger {
        @Override
        Transport transport() {
            return Transport.AGRONA_MMAP;
        }
    }

    /**
     * @param pinger the session
     * @param counters the pinging thread's counters
     */
    @Benchmark
    public void vringj(VringjPinger pinger, RoundTripCounters counters) {
        pinger.step(counters);
    }

    /**
     * @param pinger the session
     * @param counters the pinging thread's counters
     */
    @Benchmark
    public void aeron(AeronPinger pinger, RoundTripCounters counters) {
        pinger.step(counters);
    }

    /**
     * @param pinger the session
     * @param counters the pinging thread's counters
     */
    @Benchmark
    public void agronaMmap(AgronaMmapPinger pinger, RoundTripCounters counters) {
        pinger.step(counters);
    }
}

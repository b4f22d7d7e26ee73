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
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.BenchmarkParams;

/**
 * Question 9: how many messages per second go from one process to another through vringj's
 * message channel, compared with Aeron IPC and with Agrona's {@code OneToOneRingBuffer} in a file
 * both processes map? Targets: at least Aeron at 64 B, at least 2× Aeron at 4 KiB (zero copy
 * against one copy).
 *
 * <p>The benchmark thread is the sender; a peer JVM that this benchmark's trial set-up starts
 * ({@link PeerSession}) receives, checks and counts every message, polling without pause. Each
 * benchmark call claims {@code batch} messages in place, stamps each
 * ({@link io.vringj.perf.ring.Payloads}: first and last eight bytes), commits them and publishes
 * once; a full transport returns at once and counts in {@link SendCounters#sendFailures}
 * (back-pressure: in the steady state the sender runs at the receiver's rate). The figure
 * compared is {@link SendCounters#messages} per second. The tear-down has the peer report its
 * count and checksum, and fails the benchmark unless they match what was sent.
 *
 * <ul>
 *   <li>{@code vringj}: the benchmark process is the driver end ({@code MessageChannel.connect}),
 *       the peer serves; {@code tryClaim}/{@code commit} per message, one {@code flush} per batch.</li>
 *   <li>{@code vringjDeviceEnd}: the other direction, the benchmark process serves and sends as
 *       the device end into the driver's receive buffers (the full profile only).</li>
 *   <li>{@code aeron}: an exclusive {@code aeron:ipc} publication, {@code tryClaim}/{@code commit}
 *       per message; the media driver runs embedded in the benchmark process ({@link AeronLink}).</li>
 *   <li>{@code agronaMmap}: {@code tryClaim}/{@code commit} per record ({@link AgronaMmapLink}).</li>
 * </ul>
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {JvmFlags.AGRONA, JvmFlags.JCTOOLS, JvmFlags.NATIVE_ACCESS, JvmFlags.HEAP,
    JvmFlags.HEADLESS})
@State(Scope.Benchmark)
public class ChannelThroughputBenchmark {
    /** Message size in bytes. */
    @Param({"64", "1024", "4096"})
    public int payloadBytes;

    /** Messages claimed per call and published together. */
    @Param({"1", "32"})
    public int batch;

    /** The sender's counters. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class SendCounters {
        /** Messages sent. */
        public long messages;
        /** Calls that found the transport full. */
        public long sendFailures;

        private final Backoff backoff = new Backoff();

        void sent(int n) {
            messages += n;
            backoff.progressed();
        }

        void sendFailed() {
            sendFailures++;
            backoff.failed();
        }

        /** Zeroes the counters before each iteration. */
        @Setup(Level.Iteration)
        public void reset() {
            messages = 0;
            sendFailures = 0;
        }
    }

    /** One session with a sink peer; the subclasses name the transport. */
    public abstract static class Sender {
        PeerSession session;
        Link link;
        int length;
        int batch;

        abstract Transport transport();

        /**
         * Starts the peer, connects and warms both up ({@link PeerSession#warmUp}).
         *
         * @param params supplies payloadBytes and batch
         * @throws IOException if the session cannot be set up
         */
        @Setup(Level.Trial)
        public void setUp(BenchmarkParams params) throws IOException {
            init(Integer.parseInt(params.getParam("payloadBytes")), Integer.parseInt(params.getParam("batch")));
        }

        void init(int payloadBytes, int batchSize) throws IOException {
            length = payloadBytes;
            batch = batchSize;
            session = PeerSession.open(transport(), PeerRole.SINK, payloadBytes);
            link = session.link();
            session.warmUp(PeerSession.WARM_UP, length, batch);
        }

        /** Checks the peer received everything, then stops it. */
        @TearDown(Level.Trial)
        public void tearDown() {
            try {
                session.finish();
            } finally {
                session.close();
            }
        }

        void send(SendCounters counters) {
            int n = link.send(batch, length);
            if (n == 0) {
                counters.sendFailed();
            } else {
                counters.sent(n);
            }
        }
    }

    /** vringj's message channel. */
    @State(Scope.Thread)
    public static class VringjSender extends Sender {
        @Override
        Transport transport() {
            return Transport.VRINGJ;
        }
    }

    /** vringj's message channel, sending from the device end. */
    @State(Scope.Thread)
    public static class VringjDeviceEndSender extends Sender {
        @Override
        Transport transport() {
            return Transport.VRINGJ_DEVICE_END;
        }
    }

    /** Aeron IPC. */
    @State(Scope.Thread)
    public static class AeronSender extends Sender {
        @Override
        Transport transport() {
            return Transport.AERON;
        }
    }

    /** Agrona's ring buffer in a shared mapped file. */
    @State(Scope.Thread)
    public static class AgronaMmapSender extends Sender {
        @Override
        Transport transport() {
            return Transport.AGRONA_MMAP;
        }
    }

    /**
     * @param sender the session
     * @param counters the sender's counters
     */
    @Benchmark
    public void vringj(VringjSender sender, SendCounters counters) {
        sender.send(counters);
    }

    /**
     * @param sender the session
     * @param counters the sender's counters
     */
    @Benchmark
    public void vringjDeviceEnd(VringjDeviceEndSender sender, SendCounters counters) {
        sender.send(counters);
    }

    /**
     * @param sender the session
     * @param counters the sender's counters
     */
    @Benchmark
    public void aeron(AeronSender sender, SendCounters counters) {
        sender.send(counters);
    }

    /**
     * @param sender the session
     * @param counters the sender's counters
     */
    @Benchmark
    public void agronaMmap(AgronaMmapSender sender, SendCounters counters) {
        sender.send(counters);
    }
}

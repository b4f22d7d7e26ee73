package io.vringj.vhostuser.frontend.net;

import io.vringj.device.net.Ethernet;
import io.vringj.device.net.Frame;
import io.vringj.device.net.NetDriver;
import io.vringj.device.net.NetFeatures;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.frontend.FrontEndOptions;
import io.vringj.vhostuser.frontend.FrontEndQueue;
import io.vringj.vhostuser.frontend.FrontEndState;
import io.vringj.vhostuser.frontend.VhostUserFrontEnd;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.Locale;
import java.util.Objects;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;

/**
 * A virtio-net driver over a vhost-user front end: one queue pair of a back end (DPDK
 * {@code net_vhost}, vringj's {@code net}) driven by a {@link NetDriver} on one thread, sending
 * generated UDP frames at a rate and/or counting received frames, each read in place. The
 * {@code net-peer} command runs it; tests and benchmarks use it from the API.
 *
 * <pre>
 *   tx frame (size bytes): ┌ Ethernet 14 ┬ IPv4 20 ┬ UDP 8 ┬ sequence (8, if size ≥ 50) ┬ payload ┐
 *                           02:..:01 → 02:..:02, 10.0.0.1:9 → 10.0.0.2:9
 * </pre>
 *
 * <p>Tx interrupts are never asked for and rx is polled (rx interrupts off), as DPDK's virtio
 * PMD does: the back end then writes no call eventfd on the hot path. Not thread-safe except
 * {@link #stop()}, which any thread may call.
 */
public final class NetPeer implements AutoCloseable {
    /** What the peer does with the queue pair. */
    public enum Mode {
        /** Sends {@code count} frames (0: until stopped) and waits until the back end used them all. */
        SEND,
        /** Receives until {@code count} frames arrived (0: until stopped). */
        RECV,
        /**
         * Sends {@code count} frames and receives until as many arrived, or until nothing more
         * arrived for {@link #LINGER_NANOS} after the last was sent (a device may drop frames that
         * find no rx buffer).
         */
        BOTH
    }

    /**
     * What to run.
     *
     * @param socket the back end's socket (client), or the socket to listen on (server)
     * @param server listen for the back end instead of connecting (DPDK {@code client=1})
     * @param rate frames per second to send, 0 for as fast as the ring takes them
     * @param count frames to send (SEND, BOTH) or receive (RECV), 0 for no limit
     * @param size bytes per sent frame, from the Ethernet header to the end of the payload (no FCS)
     * @param packed use packed rings instead of split
     * @param mode send, receive or both
     * @param queueSize entries per ring
     * @param duration the longest run, or {@code null} for no bound
     * @param connectTimeout how long to wait for the back end
     */
    public record Options(String socket, boolean server, long rate, long count, int size, boolean packed, Mode mode,
                          int queueSize, Duration duration, Duration connectTimeout) {
        /** The smallest frame: Ethernet + IPv4 + UDP headers padded to the Ethernet minimum (without FCS). */
        public static final int MIN_SIZE = 60;
        /** The largest frame: a 9000-byte jumbo payload and the Ethernet header. */
        public static final int MAX_SIZE = 9014;

        /**
         * Checks every option.
         *
         * @throws IllegalArgumentException naming the option, its value and the rule
         */
        public Options {
            Objects.requireNonNull(socket, "socket");
            Objects.requireNonNull(mode, "mode");
            Objects.requireNonNull(connectTimeout, "connectTimeout");
            if (rate < 0) {
                throw new IllegalArgumentException("rate " + rate + " frames/s is negative (0 means unlimited)");
            }
            if (count < 0) {
                throw new IllegalArgumentException("count " + count + " is negative (0 means no limit)");
            }
            if (size < MIN_SIZE || size > MAX_SIZE) {
                throw new IllegalArgumentException("frame size " + size + " is outside " + MIN_SIZE + ".." + MAX_SIZE
                    + " bytes (Ethernet minimum without FCS .. jumbo)");
            }
            if (duration != null && (duration.isNegative() || duration.isZero())) {
                throw new IllegalArgumentException("duration " + duration + " must be positive");
            }
        }
    }

    /**
     * What a run did.
     *
     * @param sent frames sent (committed and published)
     * @param sentBytes their bytes
     * @param received frames received
     * @param receivedBytes their bytes
     * @param receivedChecksum the sum of every received frame's one's complement sum (mod 2^64)
     * @param drops received buffers dropped because the back end lied about them
     * @param nanos the run's wall time, from the first frame offered to the last one used or received
     * @param complete whether the count was reached (always true without a count)
     * @param failure why the run ended early (back end gone, ring rule broken), or {@code null}
     */
    public record Result(long sent, long sentBytes, long received, long receivedBytes, long receivedChecksum,
                         long drops, long nanos, boolean complete, String failure) {
        /** @return one line: counts, seconds, Mpps and Gbit/s each way */
        public String summary() {
            double seconds = Math.max(nanos, 1) / 1e9;
            return String.format(Locale.ROOT, "sent=%d sentBytes=%d received=%d receivedBytes=%d checksum=0x%x drops=%d "
                    + "seconds=%.3f txMpps=%.3f txGbps=%.3f rxMpps=%.3f rxGbps=%.3f complete=%b%s",
                sent, sentBytes, received, receivedBytes, receivedChecksum, drops, seconds,
                sent / seconds / 1e6, sentBytes * 8 / seconds / 1e9, received / seconds / 1e6,
                receivedBytes * 8 / seconds / 1e9, complete, failure == null ? "" : " failure=" + failure);
        }
    }

    /** How long BOTH waits for more frames once everything was sent and nothing arrives. */
    public static final long LINGER_NANOS = 1_000_000_000L;
    private static final int RX_BUFFER = 2048;
    private static final int BURST = 32;
    private static final int HEADERS = Ethernet.PAYLOAD + Ethernet.IP_HEADER_LENGTH + 8;
    private static final int SEQUENCE = HEADERS;
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);

    private final Options options;
    private final VhostUserFrontEnd frontEnd;
    private final NetDriver driver;
    private final MemorySegment template;
    private final Counter counter = new Counter();
    /** Set by {@link #stop()} from any thread; volatile: the run loop's read pairs with that write. */
    private volatile boolean stopped;

    private NetPeer(Options options, VhostUserFrontEnd frontEnd, NetDriver driver, MemorySegment template) {
        this.options = options;
        this.frontEnd = frontEnd;
        this.driver = driver;
        this.template = template;
    }

    /**
     * Connects (or waits for the back end), negotiates VERSION_1, MRG_RXBUF, EVENT_IDX (and
     * RING_PACKED if asked), starts both queues and posts every rx buffer.
     *
     * @param options what to run
     * @return the peer, ready to {@link #run()}
     * @throws ProtocolException if the back end broke the protocol or lacks VERSION_1 (or RING_PACKED)
     * @throws NativeCallException if a socket call failed or the back end was not reached in time
     * @throws VirtqueueException if the rx ring could not be filled
     */
    public static NetPeer open(Options options) throws ProtocolException, NativeCallException, VirtqueueException {
        long required = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | (options.packed() ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0);
        long wanted = required | VirtioFeatures.bit(NetFeatures.MRG_RXBUF) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX);
        int q = options.queueSize();
        int txBuffer = (12 + options.size() + 63) & ~63;
        long area = NetDriver.bufferAreaSize(q, RX_BUFFER, q, txBuffer);
        // rings: at most 2 × 32 KiB entries × 22 bytes; two MiB of slack covers them at every size
        long memory = (area + (4L << 20)) & ~((2L << 20) - 1);
        FrontEndOptions.Builder builder = options.server() ? FrontEndOptions.server(options.socket())
            : FrontEndOptions.client(options.socket());
        FrontEndOptions feo = builder.queues(2).queueSize(q).features(wanted).requireFeatures(required)
            .memorySize(memory).connectTimeout(options.connectTimeout()).memoryName("vringj-net-peer").build();
        VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(feo);
        try {
            FrontEndQueue[] queues = frontEnd.startQueues();
            FrontEndQueue rxQueue = queues[NetFeatures.rxQueue(0)];
            FrontEndQueue txQueue = queues[NetFeatures.txQueue(0)];
            MemorySegment buffers = frontEnd.allocate(area, 64);
            NetDriver driver = new NetDriver(rxQueue.driverQueue(), txQueue.driverQueue(), buffers,
                frontEnd.memory().guestPhysicalAddressOf(buffers), RX_BUFFER, txBuffer,
                () -> kick(rxQueue), () -> kick(txQueue));
            driver.disableRxInterrupts();
            return new NetPeer(options, frontEnd, driver, template(options.size()));
        } catch (ProtocolException | NativeCallException | VirtqueueException | RuntimeException e) {
            frontEnd.close();
            throw e;
        }
    }

    private static void kick(FrontEndQueue queue) {
        try {
            queue.kick();
        } catch (NativeCallException e) {
            throw new UncheckedIOException("kick of vring " + queue.index() + " failed", e);
        }
    }

    /** The headers every sent frame starts with: UDP from 10.0.0.1:9 to 10.0.0.2:9 [RFC 791, RFC 768]. */
    private static MemorySegment template(int size) {
        MemorySegment t = Arena.ofAuto().allocate(HEADERS);
        ValueLayout.OfShort be16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
        ValueLayout.OfInt be32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
        t.set(be16, Ethernet.DESTINATION, (short) 0x0200);
        t.set(be32, Ethernet.DESTINATION + 2, 0x0000_0002);
        t.set(be16, Ethernet.SOURCE, (short) 0x0200);
        t.set(be32, Ethernet.SOURCE + 2, 0x0000_0001);
        t.set(be16, Ethernet.TYPE, (short) Ethernet.TYPE_IPV4);
        t.set(ValueLayout.JAVA_BYTE, Ethernet.IP_VERSION_IHL, (byte) 0x45);
        t.set(be16, Ethernet.IP_TOTAL_LENGTH, (short) (size - Ethernet.PAYLOAD));
        t.set(ValueLayout.JAVA_BYTE, Ethernet.IP_TTL, (byte) 64);
        t.set(ValueLayout.JAVA_BYTE, Ethernet.IP_PROTOCOL, (byte) 17);
        t.set(be32, Ethernet.IP_SOURCE, 0x0A00_0001);
        t.set(be32, Ethernet.IP_DESTINATION, 0x0A00_0002);
        int sum = 0;
        for (int i = 0; i < Ethernet.IP_HEADER_LENGTH; i += 2) {
            sum += Short.toUnsignedInt(t.get(be16, Ethernet.PAYLOAD + i));
        }
        sum = (sum & 0xFFFF) + (sum >>> 16);
        sum = (sum & 0xFFFF) + (sum >>> 16);
        t.set(be16, Ethernet.IP_CHECKSUM, (short) ~sum);
        int udp = Ethernet.PAYLOAD + Ethernet.IP_HEADER_LENGTH;
        t.set(be16, udp, (short) 9);
        t.set(be16, udp + 2, (short) 9);
        t.set(be16, udp + 4, (short) (size - udp));
        return t;
    }

    /** @return the front end (features, state) */
    public VhostUserFrontEnd frontEnd() {
        return frontEnd;
    }

    /** Ends {@link #run()} at its next turn; any thread. */
    public void stop() {
        // volatile write: pairs with the read in run()
        stopped = true;
    }

    /**
     * Runs until the count is reached, the duration is over, {@link #stop()} is called or the back
     * end goes away.
     *
     * @return what was done
     */
    public Result run() {
        boolean send = options.mode() != Mode.RECV;
        boolean recv = options.mode() != Mode.SEND;
        long count = options.count();
        int size = options.size();
        long rate = options.rate();
        IdleStrategy idle = new BackoffIdleStrategy(100, 10, 1_000, 100_000);
        long start = System.nanoTime();
        long deadline = options.duration() == null ? Long.MAX_VALUE : start + options.duration().toNanos();
        long sent = 0;
        String failure = null;
        boolean complete = false;
        int turns = 0;
        long lastWork = start;
        try {
            while (true) {
                int work = 0;
                if (send && (count == 0 || sent < count)) {
                    long allowed = BURST;
                    if (rate > 0) {
                        // double: (elapsed ns × rate) overflows a long after a few minutes at 100 Mpps
                        allowed = Math.min(BURST, (long) ((System.nanoTime() - start) * 1e-9 * rate) - sent);
                    }
                    if (count > 0) {
                        allowed = Math.min(allowed, count - sent);
                    }
                    for (long i = 0; i < allowed; i++) {
                        MemorySegment buffer = driver.claim();
                        if (buffer == null) {
                            break;
                        }
                        MemorySegment.copy(template, 0, buffer, 0, HEADERS);
                        if (size >= SEQUENCE + 8) {
                            buffer.set(BE64, SEQUENCE, sent);
                        }
                        driver.commit(size);
                        sent++;
                        work++;
                    }
                    driver.flush();
                } else if (send) {
                    work += driver.reclaim();
                }
                if (recv) {
                    work += driver.receive(counter, BURST);
                }
                boolean sendDone = !send || (count > 0 && sent == count
                    && driver.freeTxBuffers() == options.queueSize());
                boolean recvDone = !recv || (count > 0 && counter.frames >= count);
                if (count > 0 && sendDone && recvDone) {
                    complete = true;
                    break;
                }
                if (work > 0) {
                    lastWork = System.nanoTime();
                } else if (count > 0 && sendDone && send && System.nanoTime() - lastWork > LINGER_NANOS) {
                    // BOTH: everything was sent and used; what has not come back by now was dropped
                    complete = true;
                    break;
                }
                if (work == 0) {
                    if (++turns >= 1024) {
                        turns = 0;
                        // volatile read: pairs with the write in stop()
                        if (stopped || System.nanoTime() - deadline > 0) {
                            complete = count == 0;
                            break;
                        }
                        if (frontEnd.state() != FrontEndState.CONNECTED) {
                            failure = "back end gone: " + frontEnd.disconnectReason();
                            break;
                        }
                    }
                    idle.idle();
                } else {
                    idle.reset();
                    if ((++turns & 1023) == 0 && (stopped || System.nanoTime() - deadline > 0)) {
                        complete = count == 0;
                        break;
                    }
                }
            }
        } catch (VirtqueueException | UncheckedIOException e) {
            failure = e.getMessage();
        }
        long nanos = System.nanoTime() - start;
        return new Result(sent, driver.statistics().txBytes(), counter.frames, counter.bytes, counter.checksum,
            driver.statistics().totalDrops(), nanos, complete && failure == null, failure);
    }

    @Override
    public void close() {
        frontEnd.close();
    }

    /** Counts received frames and reads each in place (its one's complement sum). */
    private static final class Counter implements NetDriver.Receiver {
        long frames;
        long bytes;
        long checksum;

        @Override
        public void onFrame(Frame frame) {
            long length = frame.length();
            frames++;
            bytes += length;
            checksum += frame.onesComplementSum(0, length);
        }
    }
}

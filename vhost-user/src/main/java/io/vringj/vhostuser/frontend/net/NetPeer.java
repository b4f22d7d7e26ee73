package io.vringj.vhostuser.frontend.net;

import io.vringj.device.net.Ethernet;
import io.vringj.device.net.Frame;
import io.vringj.device.net.NetDevice;
import io.vringj.device.net.NetDriver;
import io.vringj.device.net.NetFeatures;
import io.vringj.device.net.VirtioNetHeader;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;

/**
 * A virtio-net driver over a vhost-user front end: one or several queue pairs of a back end (DPDK
 * {@code net_vhost}, vringj's {@code net}), each driven by its own {@link NetDriver}, all on one
 * thread in turn, sending generated UDP frames at a rate and/or counting received frames, each
 * read in place. The {@code net-peer} command runs it; tests and benchmarks use it from the API.
 *
 * <pre>
 *   tx frame (size bytes): ┌ Ethernet 14 ┬ IPv4 20 ┬ UDP 8 ┬ sequence 8 ┬ tag 4 ┬ payload ┐
 *                           02:..:01 → 02:..:02, 10.0.0.1:9 → 10.0.0.2:9
 *   tag: 0x566A in the high 16 bits, the sending pair in the low 16 (big-endian)
 * </pre>
 *
 * <p>Several pairs need {@code VIRTIO_NET_F_MQ} and the vhost-user MQ protocol feature from the
 * back end; without them (or with fewer pairs in {@code GET_QUEUE_NUM}) the peer falls back to
 * what the back end serves, at least pair 0 [virtio 5.1.2], and says so in {@link #queuePairs()}.
 * Counts and rates are totals, shared evenly between the pairs. A received frame carrying the tag
 * of another pair counts as misrouted on the pair it arrived on.
 *
 * <p>Tx interrupts are never asked for and rx is polled (rx interrupts off), as DPDK's virtio
 * PMD does: the back end then writes no call eventfd on the hot path. Not thread-safe except
 * {@link #stop()}, which any thread may call.
 */
public final class NetPeer implements AutoCloseable {
    /** What the peer does with the queue pairs. */
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
     * @param rate frames per second to send in total, 0 for as fast as the rings take them
     * @param count frames to send (SEND, BOTH) or receive (RECV) in total, 0 for no limit
     * @param size bytes per sent frame, from the Ethernet header to the end of the payload (no FCS)
     * @param packed use packed rings instead of split
     * @param mode send, receive or both
     * @param queueSize entries per ring
     * @param duration the longest run, or {@code null} for no bound
     * @param connectTimeout how long to wait for the back end
     * @param queuePairs how many rx/tx pairs to drive, 1..{@link #MAX_QUEUE_PAIRS} (fewer if the
     *     back end serves fewer)
     * @param lossless in BOTH mode, never have more frames of a pair in flight (sent, not yet
     *     received back) than its posted rx buffers hold, so a back end that sends every frame
     *     back on the same pair ({@code reflect}) never finds the rx ring empty
     * @param inOrder also want VIRTIO_F_IN_ORDER (used when the back end offers it: its rings may then
     *     return a batch of buffers with one used entry)
     */
    public record Options(String socket, boolean server, long rate, long count, int size, boolean packed, Mode mode,
                          int queueSize, Duration duration, Duration connectTimeout, int queuePairs, boolean lossless,
                          boolean inOrder) {
        /** The smallest frame: Ethernet + IPv4 + UDP headers padded to the Ethernet minimum (without FCS). */
        public static final int MIN_SIZE = 60;
        /** The largest frame: a 9000-byte jumbo payload and the Ethernet header. */
        public static final int MAX_SIZE = 9014;
        /** The most queue pairs: vhost-user names 256 vrings, two per pair. */
        public static final int MAX_QUEUE_PAIRS = FrontEndOptions.MAX_QUEUES / 2;

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
            if (queuePairs < 1 || queuePairs > MAX_QUEUE_PAIRS) {
                throw new IllegalArgumentException("queue pairs " + queuePairs + " is outside 1.." + MAX_QUEUE_PAIRS
                    + " (vhost-user names " + FrontEndOptions.MAX_QUEUES + " vrings, two per pair)");
            }
        }

        /**
         * Without VIRTIO_F_IN_ORDER (the options before it).
         *
         * @param socket the back end's socket (client), or the socket to listen on (server)
         * @param server listen for the back end instead of connecting
         * @param rate frames per second to send in total, 0 for as fast as the rings take them
         * @param count frames to send or receive in total, 0 for no limit
         * @param size bytes per sent frame
         * @param packed use packed rings instead of split
         * @param mode send, receive or both
         * @param queueSize entries per ring
         * @param duration the longest run, or {@code null} for no bound
         * @param connectTimeout how long to wait for the back end
         * @param queuePairs how many rx/tx pairs to drive
         * @param lossless in BOTH mode, never have more frames of a pair in flight than its rx buffers hold
         */
        public Options(String socket, boolean server, long rate, long count, int size, boolean packed, Mode mode,
                       int queueSize, Duration duration, Duration connectTimeout, int queuePairs, boolean lossless) {
            this(socket, server, rate, count, size, packed, mode, queueSize, duration, connectTimeout, queuePairs,
                lossless, false);
        }

        /**
         * One queue pair, frames may be lost (the options before multiqueue).
         *
         * @param socket the back end's socket (client), or the socket to listen on (server)
         * @param server listen for the back end instead of connecting
         * @param rate frames per second to send, 0 for as fast as the ring takes them
         * @param count frames to send or receive, 0 for no limit
         * @param size bytes per sent frame
         * @param packed use packed rings instead of split
         * @param mode send, receive or both
         * @param queueSize entries per ring
         * @param duration the longest run, or {@code null} for no bound
         * @param connectTimeout how long to wait for the back end
         */
        public Options(String socket, boolean server, long rate, long count, int size, boolean packed, Mode mode,
                       int queueSize, Duration duration, Duration connectTimeout) {
            this(socket, server, rate, count, size, packed, mode, queueSize, duration, connectTimeout, 1, false, false);
        }
    }

    /**
     * What one queue pair did.
     *
     * @param pair the pair
     * @param sent frames sent on its tx queue
     * @param sentBytes their bytes
     * @param received frames received on its rx queue
     * @param receivedBytes their bytes
     * @param misrouted received frames carrying another pair's tag
     * @param drops received buffers dropped because the back end lied about them
     */
    public record PairResult(int pair, long sent, long sentBytes, long received, long receivedBytes, long misrouted,
                             long drops) {
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
     * @param pairs each pair's share, by pair
     */
    public record Result(long sent, long sentBytes, long received, long receivedBytes, long receivedChecksum,
                         long drops, long nanos, boolean complete, String failure, List<PairResult> pairs) {
        /** Copies the pair list. */
        public Result {
            pairs = List.copyOf(pairs);
        }

        /** @return received frames that carried another pair's tag, over every pair */
        public long misrouted() {
            long n = 0;
            for (PairResult p : pairs) {
                n += p.misrouted();
            }
            return n;
        }

        /** @return one line: counts, seconds, Mpps and Gbit/s each way, and with several pairs each pair's counts */
        public String summary() {
            double seconds = Math.max(nanos, 1) / 1e9;
            StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "sent=%d sentBytes=%d received=%d "
                    + "receivedBytes=%d checksum=0x%x drops=%d seconds=%.3f txMpps=%.3f txGbps=%.3f rxMpps=%.3f "
                    + "rxGbps=%.3f complete=%b queuePairs=%d",
                sent, sentBytes, received, receivedBytes, receivedChecksum, drops, seconds,
                sent / seconds / 1e6, sentBytes * 8 / seconds / 1e9, received / seconds / 1e6,
                receivedBytes * 8 / seconds / 1e9, complete, pairs.size()));
            if (pairs.size() > 1) {
                for (PairResult p : pairs) {
                    sb.append(String.format(Locale.ROOT, " pair%d:sent=%d,received=%d,misrouted=%d,drops=%d",
                        p.pair(), p.sent(), p.received(), p.misrouted(), p.drops()));
                }
            }
            if (failure != null) {
                sb.append(" failure=").append(failure);
            }
            return sb.toString();
        }
    }

    /** How long BOTH waits for more frames once everything was sent and nothing arrives. */
    public static final long LINGER_NANOS = 1_000_000_000L;
    /** The high 16 bits of a frame's tag: marks a frame this peer generated. */
    static final int TAG_MAGIC = 0x566A;
    private static final System.Logger LOG = System.getLogger(NetPeer.class.getName());
    private static final int RX_BUFFER = 2048;
    private static final int BURST = 32;
    private static final int HEADERS = Ethernet.PAYLOAD + Ethernet.IP_HEADER_LENGTH + 8;
    private static final int SEQUENCE = HEADERS;
    /** Where the tag sits: after the sequence, inside the 60-byte minimum frame. */
    static final int TAG = SEQUENCE + 8;
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);

    private final Options options;
    private final VhostUserFrontEnd frontEnd;
    private final Pair[] pairs;
    /** Set by {@link #stop()} from any thread; volatile: the run loop's read pairs with that write. */
    private volatile boolean stopped;

    private NetPeer(Options options, VhostUserFrontEnd frontEnd, Pair[] pairs) {
        this.options = options;
        this.frontEnd = frontEnd;
        this.pairs = pairs;
    }

    /**
     * Connects (or waits for the back end), negotiates VERSION_1, MRG_RXBUF, EVENT_IDX (and
     * RING_PACKED if asked; IN_ORDER if asked and offered; MQ and the MQ protocol feature for several
     * pairs), starts the queues
     * of every pair the back end serves and posts every rx buffer.
     *
     * @param options what to run
     * @return the peer, ready to {@link #run()}
     * @throws ProtocolException if the back end broke the protocol or lacks VERSION_1 (or RING_PACKED)
     * @throws NativeCallException if a socket call failed or the back end was not reached in time
     * @throws VirtqueueException if an rx ring could not be filled
     */
    public static NetPeer open(Options options) throws ProtocolException, NativeCallException, VirtqueueException {
        int wantedPairs = options.queuePairs();
        long required = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | (options.packed() ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0);
        long wanted = required | VirtioFeatures.bit(NetFeatures.MRG_RXBUF) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX)
            | (wantedPairs > 1 ? VirtioFeatures.bit(NetFeatures.MQ) : 0)
            | (options.inOrder() ? VirtioFeatures.bit(VirtioFeatures.IN_ORDER) : 0);
        int q = options.queueSize();
        int txBuffer = (12 + options.size() + 63) & ~63;
        long area = NetDriver.bufferAreaSize(q, RX_BUFFER, q, txBuffer);
        // per vring at most a split ring's 16 Q + (6 + 2 Q) + (6 + 8 Q) bytes, each area page-aligned at worst
        long rings = 2L * wantedPairs * (26L * q + 3 * 4096);
        // two MiB of slack, rounded to two MiB
        long memory = (wantedPairs * (area + 64) + rings + (4L << 20)) & ~((2L << 20) - 1);
        FrontEndOptions.Builder builder = options.server() ? FrontEndOptions.server(options.socket())
            : FrontEndOptions.client(options.socket());
        builder.queues(2 * wantedPairs).queueSize(q).features(wanted).requireFeatures(required).memorySize(memory)
            .connectTimeout(options.connectTimeout()).memoryName("vringj-net-peer");
        if (wantedPairs > 1) {
            // a net back end counts queue pairs in GET_QUEUE_NUM; fall back to what it serves
            builder.multiQueueIfOffered(2);
        }
        VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(builder.build());
        try {
            int served = VirtioFeatures.has(frontEnd.features(), NetFeatures.MQ) ? frontEnd.usableQueueCount() / 2 : 1;
            if (served > 1 && frontEnd.hasConfig()) {
                // the device's own count, max_virtqueue_pairs [virtio 5.1.4], bounds what the driver may use
                byte[] config = frontEnd.readConfig(NetDevice.CONFIG_MAX_VIRTQUEUE_PAIRS, 2);
                served = Math.min(served, Math.max(1, (config[0] & 0xFF) | (config[1] & 0xFF) << 8));
            }
            int n = Math.min(wantedPairs, served);
            if (n < wantedPairs) {
                LOG.log(System.Logger.Level.INFO, "the back end serves " + n + " queue pair(s) of the " + wantedPairs
                    + " asked for (features 0x" + Long.toHexString(frontEnd.features()) + ", GET_QUEUE_NUM "
                    + frontEnd.backEndQueueNum() + ")");
            }
            FrontEndQueue[] queues = frontEnd.startQueues(2 * n);
            Pair[] pairs = new Pair[n];
            long count = options.count();
            for (int p = 0; p < n; p++) {
                FrontEndQueue rxQueue = queues[NetFeatures.rxQueue(p)];
                FrontEndQueue txQueue = queues[NetFeatures.txQueue(p)];
                MemorySegment buffers = frontEnd.allocate(area, 64);
                NetDriver driver = new NetDriver(rxQueue.driverQueue(), txQueue.driverQueue(), buffers,
                    frontEnd.memory().guestPhysicalAddressOf(buffers), RX_BUFFER, txBuffer,
                    () -> kick(rxQueue), () -> kick(txQueue));
                driver.disableRxInterrupts();
                // counts are shared evenly: the first count % n pairs take one more; no count, no limit
                long share = count == 0 ? Long.MAX_VALUE : count / n + (p < count % n ? 1 : 0);
                pairs[p] = new Pair(p, driver, template(options.size(), p), options.size(), share, options.rate() / (double) n,
                    options.queueSize(), buffersPerFrame(options.size(), frontEnd.features()));
            }
            return new NetPeer(options, frontEnd, pairs);
        } catch (ProtocolException | NativeCallException | VirtqueueException | RuntimeException e) {
            frontEnd.close();
            throw e;
        }
    }

    /** Rx buffers one sent frame fills when it comes back: several with MRG_RXBUF if it is long. */
    private static int buffersPerFrame(int size, long features) {
        int bytes = VirtioNetHeader.SIZE + size;
        return NetFeatures.mergeableRxBuffers(features) ? (bytes + RX_BUFFER - 1) / RX_BUFFER : 1;
    }

    private static void kick(FrontEndQueue queue) {
        try {
            queue.kick();
        } catch (NativeCallException e) {
            throw new UncheckedIOException("kick of vring " + queue.index() + " failed", e);
        }
    }

    /**
     * The headers every sent frame of a pair starts with: UDP from 10.0.0.1:9 to 10.0.0.2:9
     * [RFC 791, RFC 768], and the pair's tag after the sequence.
     */
    private static MemorySegment template(int size, int pair) {
        MemorySegment t = Arena.ofAuto().allocate(TAG + 4);
        ValueLayout.OfShort be16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
        t.set(be16, Ethernet.DESTINATION, (short) 0x0200);
        t.set(BE32, Ethernet.DESTINATION + 2, 0x0000_0002);
        t.set(be16, Ethernet.SOURCE, (short) 0x0200);
        t.set(BE32, Ethernet.SOURCE + 2, 0x0000_0001);
        t.set(be16, Ethernet.TYPE, (short) Ethernet.TYPE_IPV4);
        t.set(ValueLayout.JAVA_BYTE, Ethernet.IP_VERSION_IHL, (byte) 0x45);
        t.set(be16, Ethernet.IP_TOTAL_LENGTH, (short) (size - Ethernet.PAYLOAD));
        t.set(ValueLayout.JAVA_BYTE, Ethernet.IP_TTL, (byte) 64);
        t.set(ValueLayout.JAVA_BYTE, Ethernet.IP_PROTOCOL, (byte) 17);
        t.set(BE32, Ethernet.IP_SOURCE, 0x0A00_0001);
        t.set(BE32, Ethernet.IP_DESTINATION, 0x0A00_0002);
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
        t.set(BE32, TAG, TAG_MAGIC << 16 | pair);
        return t;
    }

    /** @return the front end (features, state) */
    public VhostUserFrontEnd frontEnd() {
        return frontEnd;
    }

    /** @return how many queue pairs are driven: those asked for, or fewer if the back end serves fewer */
    public int queuePairs() {
        return pairs.length;
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
        boolean window = options.lossless() && options.mode() == Mode.BOTH;
        long count = options.count();
        IdleStrategy idle = new BackoffIdleStrategy(100, 10, 1_000, 100_000);
        long start = System.nanoTime();
        long deadline = options.duration() == null ? Long.MAX_VALUE : start + options.duration().toNanos();
        String failure = null;
        boolean complete = false;
        int turns = 0;
        long lastWork = start;
        try {
            while (true) {
                int work = 0;
                boolean sendDone = true;
                boolean recvDone = true;
                long now = System.nanoTime();
                for (Pair p : pairs) {
                    if (send) {
                        work += p.send(now - start, window);
                        sendDone &= p.sendDone();
                    }
                    if (recv) {
                        work += p.receive();
                        recvDone &= p.recvDone();
                    }
                }
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
        List<PairResult> results = new ArrayList<>(pairs.length);
        long sent = 0;
        long sentBytes = 0;
        long received = 0;
        long receivedBytes = 0;
        long checksum = 0;
        long drops = 0;
        for (Pair p : pairs) {
            PairResult r = p.result();
            results.add(r);
            sent += r.sent();
            sentBytes += r.sentBytes();
            received += r.received();
            receivedBytes += r.receivedBytes();
            checksum += p.checksum;
            drops += r.drops();
        }
        return new Result(sent, sentBytes, received, receivedBytes, checksum, drops, nanos,
            complete && failure == null, failure, results);
    }

    @Override
    public void close() {
        frontEnd.close();
    }

    /**
     * One queue pair's driver, its share of the count and rate, and what it received; each
     * received frame is read in place (its one's complement sum) and its tag checked.
     */
    private static final class Pair implements NetDriver.Receiver {
        final int index;
        final NetDriver driver;
        final MemorySegment template;
        final int size;
        /** Frames this pair sends (SEND, BOTH) or receives (RECV); {@code Long.MAX_VALUE} for no limit. */
        final long quota;
        final double rate;
        final int queueSize;
        final int buffersPerFrame;
        long sent;
        long frames;
        long bytes;
        long checksum;
        long misrouted;

        Pair(int index, NetDriver driver, MemorySegment template, int size, long quota, double rate, int queueSize,
             int buffersPerFrame) {
            this.index = index;
            this.driver = driver;
            this.template = template;
            this.size = size;
            this.quota = quota;
            this.rate = rate;
            this.queueSize = queueSize;
            this.buffersPerFrame = buffersPerFrame;
        }

        /** Sends up to a burst (within the rate, the quota and, if asked, the rx window); returns frames sent or reclaimed. */
        int send(long elapsedNanos, boolean window) throws VirtqueueException {
            if (sent >= quota) {
                return driver.reclaim();
            }
            long allowed = BURST;
            if (rate > 0) {
                // double: (elapsed ns × rate) overflows a long after a few minutes at 100 Mpps
                allowed = Math.min(allowed, (long) (elapsedNanos * 1e-9 * rate) - sent);
            }
            allowed = Math.min(allowed, quota - sent);
            if (window) {
                // frames in flight each hold buffersPerFrame rx buffers once sent back; buffers awaiting
                // refill are not posted, so the device can always find room for what is in flight
                long room = (queueSize - driver.rxBuffersAwaitingRefill()) / buffersPerFrame - (sent - frames);
                allowed = Math.min(allowed, room);
            }
            int work = 0;
            for (long i = 0; i < allowed; i++) {
                MemorySegment buffer = driver.claim();
                if (buffer == null) {
                    break;
                }
                MemorySegment.copy(template, 0, buffer, 0, TAG + 4);
                buffer.set(BE64, SEQUENCE, sent);
                driver.commit(size);
                sent++;
                work++;
            }
            driver.flush();
            return work;
        }

        int receive() throws VirtqueueException {
            return driver.receive(this, BURST);
        }

        boolean sendDone() {
            return sent >= quota && driver.freeTxBuffers() == queueSize;
        }

        boolean recvDone() {
            return frames >= quota;
        }

        @Override
        public void onFrame(Frame frame) {
            long length = frame.length();
            frames++;
            bytes += length;
            checksum += frame.onesComplementSum(0, length);
            if (length >= TAG + 4) {
                int tag = frame.getInt(TAG);
                if (tag >>> 16 == TAG_MAGIC && (tag & 0xFFFF) != index) {
                    misrouted++;
                }
            }
        }

        PairResult result() {
            return new PairResult(index, sent, driver.statistics().txBytes(), frames, bytes, misrouted,
                driver.statistics().totalDrops());
        }
    }
}

package io.vringj.perf.channel;

import io.vringj.vhostuser.channel.ChannelOptions;
import io.vringj.vhostuser.channel.MessageChannel;
import io.vringj.vhostuser.channel.MessageHandler;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * The cross-language load of {@code perf/channel-bench.sh}: vringj's message channel, as the
 * driver end, against a peer that is not vringj, DPDK testpmd's {@code net_vhost} back end in
 * {@code macswap} forwarding (which sends every frame back with bytes 0..11, the Ethernet
 * addresses, swapped).
 *
 * <pre>
 *   java --enable-native-access=ALL-UNNAMED -cp vringj-perf.jar io.vringj.perf.channel.ChannelDpdkLoad \
 *       --socket PATH --mode send|pingpong [--size BYTES] [--batch N] [--seconds N] [--packed]
 * </pre>
 *
 * {@code send} claims, stamps and commits {@code --batch} messages and flushes them once, as fast
 * as the ring takes them, and receives nothing (as testpmd's {@code txonly} does); {@code pingpong}
 * sends one message and waits for it to come back before sending the next. Each second it prints
 * {@code second=N sentPerSecond=X receivedPerSecond=Y} and at the end a {@code summary} line with
 * the mean round-trip time. The stamp is the message's last eight bytes (macswap rewrites the
 * first twelve); a reply whose stamp is not the one in flight counts as {@code wrong}.
 *
 * <p>Exit status: 0 after the run, 2 bad arguments, 1 the channel failed.
 */
public final class ChannelDpdkLoad {
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED;
    /** How long a ping may stay out before it counts as lost and the next one goes. */
    private static final long LOST_NANOS = TimeUnit.SECONDS.toNanos(1);

    private ChannelDpdkLoad() {
    }

    /** Counts replies and checks each one's stamp against the ping in flight. */
    private static final class Replies implements MessageHandler {
        long expected;
        long received;
        long wrong;

        @Override
        public void onMessage(MemorySegment buffer, int length) {
            received++;
            if (length < Long.BYTES || buffer.get(LONG, length - Long.BYTES) != ~expected) {
                wrong++;
            }
        }
    }

    /**
     * @param args see the class comment
     */
    public static void main(String[] args) {
        Path socket = null;
        String mode = null;
        int size = 64;
        int batch = 32;
        int seconds = 10;
        boolean packed = false;
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--packed" -> packed = true;
                    case "--socket", "--mode", "--size", "--batch", "--seconds" -> {
                        if (i + 1 == args.length) {
                            throw new IllegalArgumentException(a + " needs a value");
                        }
                        String v = args[++i];
                        switch (a) {
                            case "--socket" -> socket = Path.of(v);
                            case "--mode" -> mode = v;
                            case "--size" -> size = Integer.parseInt(v);
                            case "--batch" -> batch = Integer.parseInt(v);
                            default -> seconds = Integer.parseInt(v);
                        }
                    }
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            if (socket == null || mode == null || !(mode.equals("send") || mode.equals("pingpong"))) {
                throw new IllegalArgumentException("--socket and --mode send|pingpong are required");
            }
            if (size < 16) {
                throw new IllegalArgumentException("--size " + size + " must be at least 16 (an Ethernet header and"
                    + " a stamp)");
            }
            if (batch < 1 || seconds < 1) {
                throw new IllegalArgumentException("--batch " + batch + " and --seconds " + seconds
                    + " must be at least 1");
            }
        } catch (IllegalArgumentException e) {
            System.err.println("ChannelDpdkLoad: " + e.getMessage());
            System.err.println("usage: ChannelDpdkLoad --socket PATH --mode send|pingpong [--size BYTES] [--batch N]"
                + " [--seconds N] [--packed]");
            System.exit(2);
            return;
        }
        PeerSession.quiet();
        ChannelOptions options = ChannelOptions.builder(socket).maxMessageLength(size).packed(packed).build();
        try (MessageChannel channel = MessageChannel.connect(options)) {
            System.out.printf(Locale.ROOT, "connected: %s, in order %s, packed %s%n", socket, channel.inOrder(),
                channel.packed());
            run(channel, mode.equals("pingpong"), size, batch, seconds);
        } catch (IOException | RuntimeException e) {
            e.printStackTrace();
            System.exit(1);
        }
        System.exit(0);
    }

    private static void run(MessageChannel channel, boolean pingPong, int size, int batch, int seconds) {
        Replies replies = new Replies();
        long start = System.nanoTime();
        long end = start + TimeUnit.SECONDS.toNanos(seconds);
        long nextReport = start + TimeUnit.SECONDS.toNanos(1);
        long sent = 0;
        long sentAtReport = 0;
        long receivedAtReport = 0;
        long lost = 0;
        long pingSentAt = 0;
        long roundTripNanos = 0;
        long roundTrips = 0;
        boolean inFlight = false;
        int second = 0;
        while (true) {
            long now = System.nanoTime();
            if (now - nextReport >= 0) {
                second++;
                System.out.printf(Locale.ROOT, "second=%d sentPerSecond=%d receivedPerSecond=%d%n", second,
                    sent - sentAtReport, replies.received - receivedAtReport);
                sentAtReport = sent;
                receivedAtReport = replies.received;
                nextReport += TimeUnit.SECONDS.toNanos(1);
                if (now - end >= 0) {
                    break;
                }
            }
            if (!pingPong) {
                int n = 0;
                for (; n < batch; n++) {
                    MemorySegment m = channel.tryClaim(size);
                    if (m == null) {
                        break;
                    }
                    m.set(LONG, size - Long.BYTES, ~sent);
                    channel.commit();
                    sent++;
                }
                if (n > 0) {
                    channel.flush();
                }
                continue;
            }
            if (inFlight) {
                long before = replies.received;
                channel.poll(replies, 1);
                if (replies.received != before) {
                    roundTripNanos += System.nanoTime() - pingSentAt;
                    roundTrips++;
                    inFlight = false;
                } else if (now - pingSentAt > LOST_NANOS) {
                    lost++;
                    inFlight = false;
                }
                continue;
            }
            MemorySegment m = channel.tryClaim(size);
            if (m != null) {
                replies.expected = sent;
                m.set(LONG, size - Long.BYTES, ~sent);
                channel.commit();
                channel.flush();
                pingSentAt = System.nanoTime();
                sent++;
                inFlight = true;
            }
        }
        double seconds1 = (System.nanoTime() - start) / 1e9;
        System.out.printf(Locale.ROOT, "summary seconds=%.1f sent=%d received=%d wrong=%d lost=%d"
            + " meanRoundTripNanos=%s%n", seconds1, sent, replies.received, replies.wrong, lost,
            roundTrips == 0 ? "n/a" : Long.toString(roundTripNanos / roundTrips));
    }
}

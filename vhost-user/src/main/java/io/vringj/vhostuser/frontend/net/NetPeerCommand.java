package io.vringj.vhostuser.frontend.net;

import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code net-peer}: drives a vhost-user virtio-net back end (DPDK {@code net_vhost}, vringj's
 * {@code net}) from the front end, sending and/or receiving frames, and prints one line of
 * statistics on exit (also on SIGINT/SIGTERM). Exit status: 0 when done, 1 when the back end went
 * away or broke a rule, 2 when the duration ended before the count was reached.
 */
@Command(name = "net-peer", mixinStandardHelpOptions = true,
    description = "Drive a vhost-user virtio-net back end as its front end: send and/or receive frames.")
public final class NetPeerCommand implements Callable<Integer> {
    @Option(names = "--socket", required = true, paramLabel = "PATH",
        description = "The back end's socket (or, with --server, the socket to listen on).")
    String socket;

    @Option(names = "--server", description = "Listen for the back end (DPDK net_vhost client=1) instead of connecting.")
    boolean server;

    @Option(names = "--rate", paramLabel = "PPS", defaultValue = "0",
        description = "Frames per second to send; 0 (default) sends as fast as the ring takes them.")
    long rate;

    @Option(names = "--count", paramLabel = "N", defaultValue = "0",
        description = "Frames to send (send, both) or receive (recv); 0 (default) runs until --duration or a signal.")
    long count;

    @Option(names = "--size", paramLabel = "BYTES", defaultValue = "64",
        description = "Bytes per sent frame without FCS, 60..9014 (default 64).")
    int size;

    @Option(names = "--packed", description = "Use packed virtqueues (RING_PACKED) instead of split ones.")
    boolean packed;

    @Option(names = "--in-order", description = "Also want VIRTIO_F_IN_ORDER; used when the back end offers it.")
    boolean inOrder;

    @Option(names = "--mode", paramLabel = "send|recv|both", defaultValue = "send",
        description = "send (default), recv or both.")
    String mode;

    @Option(names = "--queue-size", paramLabel = "Q", defaultValue = "256", description = "Entries per ring (default 256).")
    int queueSize;

    @Option(names = "--queue-pairs", paramLabel = "N", defaultValue = "1",
        description = "Rx/tx queue pairs to drive, 1..128 (default ${DEFAULT-VALUE}); several need MQ from the back "
            + "end, else it falls back to the pairs the back end serves. --count and --rate are shared between them.")
    int queuePairs;

    @Option(names = "--lossless",
        description = "With --mode both, keep no more frames in flight per pair than its posted rx buffers hold, so "
            + "a back end that sends every frame back (reflect) never drops one for want of a buffer.")
    boolean lossless;

    @Option(names = "--duration", paramLabel = "SECONDS",
        description = "Stop after this many seconds (default: no bound).")
    Double duration;

    @Option(names = "--connect-timeout", paramLabel = "SECONDS", defaultValue = "30",
        description = "How long to wait for the back end (default 30).")
    double connectTimeout;

    /** Creates the command (picocli instantiates it). */
    public NetPeerCommand() {
    }

    static NetPeer.Mode mode(String text) {
        return switch (text.toLowerCase(Locale.ROOT)) {
            case "send" -> NetPeer.Mode.SEND;
            case "recv" -> NetPeer.Mode.RECV;
            case "both" -> NetPeer.Mode.BOTH;
            default -> throw new IllegalArgumentException("--mode '" + text + "' is not one of send, recv, both");
        };
    }

    static Duration seconds(String option, double value) {
        if (!(value > 0) || value > 1e9) {
            throw new IllegalArgumentException(option + " " + value + " is outside (0, 1e9] seconds");
        }
        return Duration.ofNanos((long) (value * 1e9));
    }

    @Override
    public Integer call() throws Exception {
        NetPeer.Options options = new NetPeer.Options(socket, server, rate, count, size, packed, mode(mode), queueSize,
            duration == null ? null : seconds("--duration", duration), seconds("--connect-timeout", connectTimeout),
            queuePairs, lossless, inOrder);
        try (NetPeer peer = NetPeer.open(options)) {
            System.err.println("net-peer: connected, features 0x" + Long.toHexString(peer.frontEnd().features())
                + (packed ? " (packed)" : " (split)") + ", " + peer.queuePairs() + " queue pair(s)"
                + (peer.queuePairs() < queuePairs ? " of " + queuePairs + " asked for" : ""));
            CountDownLatch reported = new CountDownLatch(1);
            Thread hook = new Thread(() -> {
                peer.stop();
                try {
                    // let the run loop print its statistics before the JVM goes
                    reported.await(5, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "net-peer-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            NetPeer.Result result = peer.run();
            System.out.println("net-peer: " + result.summary());
            System.out.flush();
            reported.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // a signal ended the run: the hook is already running and returns now
            }
            if (result.failure() != null) {
                return 1;
            }
            return result.complete() ? 0 : 2;
        }
    }
}

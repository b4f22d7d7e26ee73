package io.vringj.perf.channel;

import io.vringj.perf.ring.Backoff;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The peer process of the two-process benchmarks: receives on one transport and counts (a sink)
 * or sends every message back (an echo), polling without pause, until the benchmark says how
 * many messages it sent. Speaks the line protocol of {@link PeerProcess}.
 *
 * <pre>
 *   java ... io.vringj.perf.channel.ChannelPeer TRANSPORT ROLE DIRECTORY MAX_LENGTH
 *     TRANSPORT   vringj | vringjDeviceEnd | aeron | agronaMmap
 *     ROLE        sink | echo
 *     DIRECTORY   the benchmark's session directory ({@link PeerSession}): the socket, the Aeron
 *                 directory or the ring file lies in it
 *     MAX_LENGTH  the largest message in bytes
 * </pre>
 *
 * Exit status: 0 after reporting; 2 bad arguments; 3 the benchmark went away (standard input
 * closed) before saying stop; 1 anything else (the error is on standard error).
 */
public final class ChannelPeer {
    /** Messages taken per poll. */
    static final int POLL_LIMIT = 64;
    /**
     * After the benchmark said stop, how long the peer waits without receiving anything before it
     * reports what it has (everything sent is in shared memory by then: only a lost message makes
     * the peer wait this long, and its tally then says so).
     */
    static final long QUIET_NANOS = TimeUnit.SECONDS.toNanos(3);

    private ChannelPeer() {
    }

    /** What the benchmark said on standard input, read by a thread of its own. */
    private static final class Control implements Runnable {
        /** The count to reach, -1 until "stop" arrives. */
        volatile long stopAt = -1;
        /** Standard input closed without "stop". */
        volatile boolean gone;

        @Override
        public void run() {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII))) {
                for (String line; (line = r.readLine()) != null; ) {
                    String[] words = line.trim().split(" ");
                    if (words.length == 2 && PeerProcess.STOP.equals(words[0])) {
                        // volatile write: pairs with the polling loop's read in ChannelPeer.run
                        stopAt = Long.parseLong(words[1]);
                    }
                }
            } catch (IOException | NumberFormatException e) {
                // treated as the benchmark gone
            }
            // volatile write: pairs with the reads in ChannelPeer.run and awaitGone
            gone = true;
        }

        /**
         * Waits until standard input closes (the benchmark closed its end first), still polling
         * the link now and then: an end that closes may need the other end's thread to hand its
         * rings back, which vringj's channel does in poll. Polling stops once the link says the
         * other end closed.
         */
        void awaitGone(Link link, boolean echo) throws InterruptedException {
            long deadline = System.nanoTime() + QUIET_NANOS;
            boolean open = true;
            // volatile read of gone: pairs with this object's own write in run() at the end of standard input
            while (!gone && System.nanoTime() - deadline < 0) {
                if (open) {
                    try {
                        if (echo) {
                            link.echo(POLL_LIMIT);
                        } else {
                            link.receive(POLL_LIMIT);
                        }
                    } catch (IllegalStateException e) {
                        // the benchmark's end is closed: nothing more to take or hand back
                        open = false;
                    }
                }
                Thread.sleep(1);
            }
        }
    }

    /**
     * @param args transport, role, directory, largest message length
     */
    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: ChannelPeer TRANSPORT ROLE DIRECTORY MAX_LENGTH (got " + args.length
                + " arguments)");
            System.exit(2);
        }
        Transport transport;
        PeerRole role;
        Path dir;
        int maxLength;
        try {
            transport = Transport.of(args[0]);
            role = PeerRole.of(args[1]);
            dir = Path.of(args[2]);
            maxLength = Integer.parseInt(args[3]);
        } catch (IllegalArgumentException e) {
            System.err.println("ChannelPeer: " + e.getMessage());
            System.exit(2);
            return;
        }
        Control control = new Control();
        Thread controlThread = new Thread(control, "peer-control");
        controlThread.setDaemon(true);
        controlThread.start();
        PeerSession.quiet();
        try (Link link = open(transport, role, dir, maxLength)) {
            System.out.println(PeerProcess.READY);
            System.out.flush();
            if (!run(link, role, control)) {
                System.err.println("ChannelPeer: the benchmark went away before it said stop");
                System.exit(3);
            }
            MessageTally t = link.received();
            System.out.println(PeerProcess.DONE + " " + t.count() + " " + t.checksum() + " " + t.bad());
            System.out.flush();
            // the benchmark closes its end, then our standard input: then close ours
            control.awaitGone(link, role == PeerRole.ECHO);
        } catch (Throwable e) {
            e.printStackTrace();
            System.exit(1);
        }
        System.exit(0);
    }

    private static Link open(Transport transport, PeerRole role, Path dir, int maxLength) throws IOException {
        return switch (transport) {
            case VRINGJ -> VringjLink.serve(PeerSession.socket(dir), maxLength);
            case VRINGJ_DEVICE_END -> VringjLink.connect(PeerSession.socket(dir), maxLength);
            case AERON -> AeronLink.peerEnd(PeerSession.aeronDir(dir), role == PeerRole.ECHO);
            case AGRONA_MMAP -> AgronaMmapLink.open(PeerSession.ringFile(dir), maxLength);
        };
    }

    /**
     * Polls until the benchmark said stop and every message it sent has arrived (or nothing came
     * for {@link #QUIET_NANOS}: the tally then tells the benchmark what is missing).
     *
     * @return false if the benchmark went away first
     */
    private static boolean run(Link link, PeerRole role, Control control) {
        boolean echo = role == PeerRole.ECHO;
        Backoff backoff = new Backoff();
        long quietSince = 0;
        while (true) {
            int n = echo ? link.echo(POLL_LIMIT) : link.receive(POLL_LIMIT);
            if (n > 0) {
                backoff.progressed();
                quietSince = 0;
                continue;
            }
            // volatile read: pairs with the control thread's write when "stop" arrives
            long stopAt = control.stopAt;
            if (stopAt >= 0) {
                if (link.received().count() >= stopAt) {
                    return true;
                }
                long now = System.nanoTime();
                if (quietSince == 0) {
                    quietSince = now;
                } else if (now - quietSince > QUIET_NANOS) {
                    return true;
                }
            } else if (control.gone) {
                // volatile read: pairs with the control thread's write at the end of standard input
                return false;
            }
            backoff.failed();
        }
    }
}

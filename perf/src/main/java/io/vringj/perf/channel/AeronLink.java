package io.vringj.perf.channel;

import io.aeron.Aeron;
import io.aeron.ExclusivePublication;
import io.aeron.Publication;
import io.aeron.Subscription;
import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import io.aeron.logbuffer.BufferClaim;
import io.aeron.logbuffer.FragmentHandler;
import io.aeron.logbuffer.Header;
import java.nio.file.Path;
import java.time.Duration;
import org.agrona.CloseHelper;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * Aeron IPC between two processes: a media driver embedded in the benchmark process, an
 * {@code aeron:ipc} publication (exclusive: one writer thread, as Aeron recommends for it) from
 * the benchmark to the peer and, for the round trip, another back. Sending claims space in the log
 * buffer ({@code tryClaim}), stamps the message in place and commits it, which publishes it;
 * receiving polls the subscription with a {@link FragmentHandler} that reads each message in place.
 *
 * <p>Driver set-up, and why:
 * <ul>
 *   <li>{@link ThreadingMode#SHARED}: one driver thread for the conductor, sender and receiver.
 *       Aeron's DEDICATED mode gives each its own (busy-spinning) thread, which pays off with a
 *       core per thread; here the sending and the receiving thread already spin on the machine's
 *       2 cores, IPC never uses the sender or receiver agent (publisher and subscriber share the
 *       log buffer directly), and the conductor's only steady-state IPC work is moving the
 *       publisher limit. Extra spinning threads would take the cores from the two that move data.</li>
 *   <li>IPC MTU {@value #MTU}: a claim cannot span frames, so the largest message (4 KiB) must fit
 *       one frame (the default MTU is 1408 bytes).</li>
 *   <li>IPC term length {@value #TERM_LENGTH} bytes: the publisher may run half a term ahead of the
 *       subscriber, about {@value AgronaMmapLink#RECORDS} messages of 4 KiB, as much as the other
 *       transports queue; Aeron's 64 MiB default would stream the sender through 192 MiB of log
 *       buffer that no cache holds, which measures memory bandwidth rather than the transport.</li>
 *   <li>The driver directory is a fresh directory the benchmark deletes after; the driver
 *       deletes its own files on start and shut-down.</li>
 * </ul>
 */
public final class AeronLink implements Link {
    /** The channel of both directions. */
    public static final String CHANNEL = "aeron:ipc";
    /** Stream of the messages the benchmark sends. */
    public static final int STREAM_TO_PEER = 1001;
    /** Stream of the echo. */
    public static final int STREAM_FROM_PEER = 1002;
    /** IPC MTU: a 4 KiB message plus its frame header fits one frame. */
    public static final int MTU = 8192;
    /** IPC term buffer length. */
    public static final int TERM_LENGTH = 2 * 1024 * 1024;

    private final Aeron aeron;
    private final ExclusivePublication out;
    private final Subscription in;
    private final BufferClaim claim = new BufferClaim();
    private final MessageTally sent = new MessageTally();
    private final MessageTally received = new MessageTally();
    private final Sink sink = new Sink(received);
    private final Echo echo;

    private AeronLink(Path aeronDir, boolean benchmarkEnd, boolean duplex) {
        aeron = Aeron.connect(new Aeron.Context().aeronDirectoryName(aeronDir.toString()));
        ExclusivePublication pub = null;
        Subscription sub = null;
        try {
            if (benchmarkEnd) {
                pub = aeron.addExclusivePublication(CHANNEL, STREAM_TO_PEER);
                sub = duplex ? aeron.addSubscription(CHANNEL, STREAM_FROM_PEER) : null;
            } else {
                sub = aeron.addSubscription(CHANNEL, STREAM_TO_PEER);
                pub = duplex ? aeron.addExclusivePublication(CHANNEL, STREAM_FROM_PEER) : null;
            }
        } catch (RuntimeException e) {
            CloseHelper.quietCloseAll(pub, sub, aeron);
            throw e;
        }
        out = pub;
        in = sub;
        echo = new Echo(received, out);
    }

    /**
     * Starts the embedded media driver.
     *
     * @param aeronDir the driver's directory (created; deleted on shut-down)
     * @return the driver; close it after the links
     */
    public static MediaDriver launchDriver(Path aeronDir) {
        return MediaDriver.launch(new MediaDriver.Context()
            .aeronDirectoryName(aeronDir.toString())
            .dirDeleteOnStart(true)
            .dirDeleteOnShutdown(true)
            .threadingMode(ThreadingMode.SHARED)
            .ipcMtuLength(MTU)
            .ipcTermBufferLength(TERM_LENGTH));
    }

    /**
     * @param aeronDir the running driver's directory
     * @param duplex whether the echo comes back (round trip)
     * @return the benchmark's end: publishes to the peer (and subscribes to the echo)
     */
    public static AeronLink benchmarkEnd(Path aeronDir, boolean duplex) {
        return new AeronLink(aeronDir, true, duplex);
    }

    /**
     * @param aeronDir the running driver's directory
     * @param duplex whether to echo (round trip)
     * @return the peer's end: subscribes to the benchmark (and publishes the echo)
     */
    public static AeronLink peerEnd(Path aeronDir, boolean duplex) {
        return new AeronLink(aeronDir, false, duplex);
    }

    /**
     * Waits until both directions in use have their other end.
     *
     * @param timeout how long at most
     * @throws IllegalStateException naming what did not connect in time
     */
    public void awaitConnected(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while ((out != null && !out.isConnected()) || (in != null && !in.isConnected())) {
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException("Aeron IPC did not connect within " + timeout + ": publication "
                    + (out == null ? "unused" : out.isConnected() ? "connected" : "not connected") + ", subscription "
                    + (in == null ? "unused" : in.isConnected() ? "connected" : "not connected"));
            }
            Thread.onSpinWait();
            Thread.yield();
        }
    }

    @Override
    public int send(int count, int length) {
        int n = 0;
        for (; n < count; n++) {
            long position = out.tryClaim(length, claim);
            if (position < 0) {
                if (position == Publication.CLOSED || position == Publication.MAX_POSITION_EXCEEDED) {
                    throw new IllegalStateException("Aeron publication failed: " + Publication.errorString(position));
                }
                // back-pressured, not (yet) connected or an admin action: try again later
                break;
            }
            MutableDirectBuffer buffer = claim.buffer();
            int offset = claim.offset();
            long sequence = sent.next();
            buffer.putLong(offset, sequence);
            buffer.putLong(offset + length - Long.BYTES, ~sequence);
            // release: commit publishes the frame's length; pairs with the subscriber's acquire in poll
            claim.commit();
        }
        return n;
    }

    @Override
    public int receive(int limit) {
        return in.poll(sink, limit);
    }

    @Override
    public int echo(int limit) {
        return in.poll(echo, limit);
    }

    @Override
    public MessageTally sent() {
        return sent;
    }

    @Override
    public MessageTally received() {
        return received;
    }

    @Override
    public void close() {
        CloseHelper.quietCloseAll(out, in, aeron);
    }

    /** Checks each message in place. */
    private static final class Sink implements FragmentHandler {
        private final MessageTally tally;

        Sink(MessageTally tally) {
            this.tally = tally;
        }

        @Override
        public void onFragment(DirectBuffer buffer, int offset, int length, Header header) {
            tally.received(buffer.getLong(offset), buffer.getLong(offset + length - Long.BYTES));
        }
    }

    /** Checks each message and offers (copies) it back on the other stream. */
    private static final class Echo implements FragmentHandler {
        private final MessageTally tally;
        private final Publication back;

        Echo(MessageTally tally, Publication back) {
            this.tally = tally;
            this.back = back;
        }

        @Override
        public void onFragment(DirectBuffer buffer, int offset, int length, Header header) {
            tally.received(buffer.getLong(offset), buffer.getLong(offset + length - Long.BYTES));
            long position;
            while ((position = back.offer(buffer, offset, length)) < 0) {
                if (position == Publication.CLOSED || position == Publication.MAX_POSITION_EXCEEDED) {
                    throw new IllegalStateException("Aeron echo failed: " + Publication.errorString(position));
                }
                Thread.onSpinWait();
            }
        }
    }
}

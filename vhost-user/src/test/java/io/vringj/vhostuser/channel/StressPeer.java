package io.vringj.vhostuser.channel;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;

/**
 * One end of the channel stress run, in this process or (through {@link #main}) in another: it
 * serves or connects, then sends {@code count} {@link StressMessages} or receives and checks
 * them. The receiver answers the last message with an acknowledgement (the count), the sender
 * closes only after it, and the receiver must then see the channel closed by its peer.
 *
 * <pre>
 *   sender:    claim → write in place → commit, flush every 32 (or when the ring is full) … ack? → close
 *   receiver:  poll(checker, 64) … count reached → send ack → poll until ChannelClosedException
 *   waiting:   "poll": Agrona BackoffIdleStrategy;  "eventfd": awaitMessages / awaitSpace
 * </pre>
 *
 * <p>{@code main} prints one line {@code RESULT ok <count>} or {@code RESULT fail <why>} and exits
 * 0 or 1; with count {@code Long.MAX_VALUE} an end sends or receives until it is killed.
 */
final class StressPeer {
    /** No progress for this long fails the run. */
    static final Duration STALL = Duration.ofSeconds(60);
    static final int BATCH = 32;

    record Setup(boolean serve, Path socket, boolean send, long count, boolean eventfd, boolean packed,
                 boolean inOrder, int maxLength) {
        String[] args() {
            return new String[] {serve ? "serve" : "connect", socket.toString(), send ? "send" : "recv",
                Long.toString(count), eventfd ? "eventfd" : "poll", Boolean.toString(packed),
                Boolean.toString(inOrder), Integer.toString(maxLength)};
        }

        static Setup parse(String[] a) {
            if (a.length != 8) {
                throw new IllegalArgumentException("usage: serve|connect SOCKET send|recv COUNT poll|eventfd"
                    + " PACKED IN_ORDER MAX_LENGTH (got " + a.length + " arguments)");
            }
            return new Setup(a[0].equals("serve"), Path.of(a[1]), a[2].equals("send"), Long.parseLong(a[3]),
                a[4].equals("eventfd"), Boolean.parseBoolean(a[5]), Boolean.parseBoolean(a[6]), Integer.parseInt(a[7]));
        }

        /** The same run seen from the other end. */
        Setup other() {
            return new Setup(!serve, socket, !send, count, eventfd, packed, inOrder, maxLength);
        }

        ChannelOptions options() {
            return ChannelOptions.builder(socket).packed(packed).inOrder(inOrder).maxMessageLength(maxLength)
                .connectTimeout(Duration.ofSeconds(60)).build();
        }

        MessageChannel open() throws IOException {
            return serve ? MessageChannel.serve(options()) : MessageChannel.connect(options());
        }
    }

    private final Setup setup;
    private final MessageChannel channel;
    private final IdleStrategy idle = new BackoffIdleStrategy();
    /** Messages sent or checked so far (read by a watcher thread only for messages). */
    volatile long progress;

    StressPeer(Setup setup, MessageChannel channel) {
        this.setup = setup;
        this.channel = channel;
    }

    public static void main(String[] args) {
        Setup setup = Setup.parse(args);
        try (MessageChannel channel = setup.open()) {
            StressPeer peer = new StressPeer(setup, channel);
            long done = setup.send ? peer.send() : peer.receive();
            System.out.println("RESULT ok " + done);
            System.out.flush();
            System.exit(0);
        } catch (Throwable t) {
            System.out.println("RESULT fail " + t);
            t.printStackTrace(System.out);
            System.out.flush();
            System.exit(1);
        }
    }

    /** Sends the messages, waits for the receiver's acknowledgement; returns the count sent. */
    long send() {
        long count = setup.count;
        long sequence = 0;
        int batch = 0;
        long lastProgress = System.nanoTime();
        while (sequence < count) {
            int length = StressMessages.length(sequence, setup.maxLength);
            MemorySegment m = channel.tryClaim(length);
            if (m == null) {
                channel.flush();
                batch = 0;
                waitForSpace();
                if (System.nanoTime() - lastProgress > STALL.toNanos()) {
                    throw new AssertionError("no send space for " + STALL + " after " + sequence + " messages");
                }
                continue;
            }
            StressMessages.write(m, sequence, length);
            channel.commit();
            sequence++;
            if (++batch == BATCH) {
                channel.flush();
                idle.reset();
                batch = 0;
                progress = sequence;
                lastProgress = System.nanoTime();
            }
        }
        channel.flush();
        progress = sequence;
        long[] ack = {-1};
        MessageHandler onAck = (buffer, length) -> ack[0] = length == 8 ? buffer.get(ValueLayout.JAVA_LONG_UNALIGNED, 0) : -2;
        long deadline = System.nanoTime() + STALL.toNanos();
        while (ack[0] == -1) {
            if (channel.poll(onAck, 1) == 0) {
                waitForMessages();
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no acknowledgement from the receiver within " + STALL);
            }
        }
        if (ack[0] != count) {
            throw new AssertionError("the receiver acknowledged " + ack[0] + " messages, sent " + count);
        }
        return sequence;
    }

    /** Receives and checks every message, acknowledges, then waits to see the sender close. */
    long receive() {
        StressMessages.Checker checker = new StressMessages.Checker(setup.maxLength);
        long lastSeen = 0;
        long lastProgress = System.nanoTime();
        while (checker.expected < setup.count) {
            int n = channel.poll(checker, 64);
            if (checker.failure != null) {
                throw new AssertionError(checker.failure);
            }
            if (n > 0) {
                idle.reset();
                progress = checker.expected;
                continue;
            }
            if (checker.expected != lastSeen) {
                lastSeen = checker.expected;
                lastProgress = System.nanoTime();
            } else if (System.nanoTime() - lastProgress > STALL.toNanos()) {
                throw new AssertionError("nothing received for " + STALL + " after " + checker.expected + " messages");
            }
            waitForMessages();
        }
        MemorySegment ack;
        long deadline = System.nanoTime() + STALL.toNanos();
        while ((ack = channel.tryClaim(8)) == null) {
            waitForSpace();
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no space for the acknowledgement within " + STALL);
            }
        }
        ack.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, checker.expected);
        channel.commit();
        channel.flush();
        MessageHandler extra = (buffer, length) -> {
            throw new AssertionError("a message after the last one (" + length + " bytes)");
        };
        try {
            while (System.nanoTime() < deadline) {
                if (channel.poll(extra, 1) == 0) {
                    waitForMessages();
                }
            }
        } catch (ChannelClosedException expected) {
            if (channel.closeReason() == null) {
                throw new AssertionError("closed without a reason", expected);
            }
            return checker.expected;
        }
        throw new AssertionError("the sender did not close within " + STALL + " of the acknowledgement");
    }

    private void waitForSpace() {
        if (setup.eventfd) {
            channel.awaitSpace(Duration.ofMillis(200));
        } else {
            idle.idle();
        }
    }

    private void waitForMessages() {
        if (setup.eventfd) {
            channel.awaitMessages(Duration.ofMillis(200));
        } else {
            idle.idle();
        }
    }
}

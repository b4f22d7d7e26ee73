package io.vringj.perf.channel;

import io.vringj.perf.ring.Payloads;
import io.vringj.vhostuser.channel.ChannelOptions;
import io.vringj.vhostuser.channel.MessageChannel;
import io.vringj.vhostuser.channel.MessageHandler;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * vringj's {@link MessageChannel} between two processes. In {@link Transport#VRINGJ} the peer
 * serves (the vhost-user back end, the device end) and the benchmark process connects (the front
 * end, the driver end) and sends on the transmit queue: messages go out in buffers of the driver's
 * own shared memory. In {@link Transport#VRINGJ_DEVICE_END} the benchmark serves and sends as the
 * device end, into the receive buffers the driver posted. Zero copy on both sides either way. Sending claims a message in place
 * ({@code tryClaim}), stamps it and commits it; one {@code flush} per batch publishes it (at most
 * one notification). Receiving polls with a handler that reads each message in place.
 */
public final class VringjLink implements Link {
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED;

    private final MessageChannel channel;
    private final MessageTally sent = new MessageTally();
    private final MessageTally received = new MessageTally();
    private final Sink sink = new Sink(received);
    private final Echo echo;

    private VringjLink(MessageChannel channel) {
        this.channel = channel;
        this.echo = new Echo(received, channel);
    }

    /**
     * @param socket the socket the peer serves on
     * @param maxLength the largest message
     * @return ChannelOptions for both ends: default queue size and layout, this message length
     */
    static ChannelOptions options(Path socket, int maxLength) {
        // the other end is a JVM still starting: give it as long as the session does
        return ChannelOptions.builder(socket).maxMessageLength(maxLength).connectTimeout(PeerSession.START_TIMEOUT)
            .build();
    }

    /**
     * Connects as the driver end.
     *
     * @param socket the serving end's socket
     * @param maxLength the largest message
     * @return the link
     * @throws IOException if the channel cannot connect
     */
    public static VringjLink connect(Path socket, int maxLength) throws IOException {
        return new VringjLink(MessageChannel.connect(options(socket, maxLength)));
    }

    /**
     * Serves as the device end and waits for the other process to connect.
     *
     * @param socket where to listen
     * @param maxLength the largest message
     * @return the link, once connected
     * @throws IOException if the channel cannot be served
     */
    public static VringjLink serve(Path socket, int maxLength) throws IOException {
        return new VringjLink(MessageChannel.serve(options(socket, maxLength)));
    }

    @Override
    public int send(int count, int length) {
        int n = 0;
        for (; n < count; n++) {
            MemorySegment message = channel.tryClaim(length);
            if (message == null) {
                break;
            }
            Payloads.stamp(message, 0, length, sent.next());
            channel.commit();
        }
        if (n > 0) {
            channel.flush();
        }
        return n;
    }

    @Override
    public int receive(int limit) {
        return channel.poll(sink, limit);
    }

    @Override
    public int echo(int limit) {
        int n = channel.poll(echo, limit);
        if (n > 0) {
            channel.flush();
        }
        return n;
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
        channel.close();
    }

    /** Checks each message in place. */
    private static final class Sink implements MessageHandler {
        private final MessageTally tally;

        Sink(MessageTally tally) {
            this.tally = tally;
        }

        @Override
        public void onMessage(MemorySegment buffer, int length) {
            tally.received(buffer.get(LONG, 0), buffer.get(LONG, length - Long.BYTES));
        }
    }

    /** Checks each message and offers (copies) it back; published by the flush after the poll. */
    private static final class Echo implements MessageHandler {
        private final MessageTally tally;
        private final MessageChannel channel;

        Echo(MessageTally tally, MessageChannel channel) {
            this.tally = tally;
            this.channel = channel;
        }

        @Override
        public void onMessage(MemorySegment buffer, int length) {
            tally.received(buffer.get(LONG, 0), buffer.get(LONG, length - Long.BYTES));
            while (!channel.offer(buffer, 0, length)) {
                Thread.onSpinWait();
            }
        }
    }
}

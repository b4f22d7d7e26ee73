package io.vringj.vhostuser.channel.example;

import io.vringj.vhostuser.channel.ChannelOptions;
import io.vringj.vhostuser.channel.MessageChannel;
import io.vringj.vhostuser.channel.MessageHandler;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;

/** {@code Ping serve /tmp/ping.sock} in one process, {@code Ping connect /tmp/ping.sock} in another. */
public final class Ping {
    public static void main(String[] args) throws Exception {
        ChannelOptions options = ChannelOptions.builder(Path.of(args[1])).build();
        long count = args.length > 2 ? Long.parseLong(args[2]) : 10_000_000;
        boolean serve = args[0].equals("serve");
        long[] seen = new long[2];                    // messages, sum of their values
        MessageHandler handler = (buffer, length) -> seen[1] += buffer.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
        try (MessageChannel channel = serve ? MessageChannel.serve(options) : MessageChannel.connect(options)) {
            while (serve && seen[0] < count) {        // each message handed over in place, in shared memory
                int n = channel.poll(handler, 32);
                if ((seen[0] += n) < count && n == 0) {
                    channel.awaitMessages(Duration.ofSeconds(1));   // notifications on, look again, sleep
                }
            }
            for (long i = 0; !serve && i < count; ) {
                MemorySegment message = channel.tryClaim(8);
                if (message != null) {                // null: the ring is full (back-pressure)
                    message.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, i++);
                    channel.commit();                 // published by flush or a full batch
                } else if (channel.flush() == 0) {
                    channel.awaitSpace(Duration.ofSeconds(1));
                }
            }
            System.out.println(serve ? "received " + seen[0] + ", sum " + seen[1] : "sent " + count);
        }                                             // close: waits until the peer took every message
    }
}

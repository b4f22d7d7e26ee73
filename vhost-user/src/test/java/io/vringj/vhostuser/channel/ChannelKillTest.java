package io.vringj.vhostuser.channel;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Killing the other process mid-stream, whichever end it is and whichever way the messages flow:
 * the end in this JVM gets a {@link ChannelClosedException} with a reason, and after
 * {@code close()} holds no fd, no mapping of shared memory and no channel thread it did not hold
 * before ({@link Leaks}).
 */
class ChannelKillTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "this JVM {0}s and {1}s; the other is killed")
    @CsvSource({"serve, receive", "connect, receive", "serve, send", "connect, send"})
    void killingThePeerMidStreamClosesThisEndCleanly(String role, String direction) throws Exception {
        boolean hereServes = role.equals("serve");
        boolean hereSends = direction.equals("send");
        StressPeer.Setup mine = new StressPeer.Setup(hereServes, dir.resolve("kill.sock"), hereSends,
            Long.MAX_VALUE, false, false, true, ChannelStressCases.MAX_LENGTH);
        Path log = dir.resolve("peer.log");
        List<String> fdsBefore = Leaks.openFds();
        Process peer = ChannelStressCases.startPeer(mine.other(), log);
        try {
            MessageChannel channel = mine.open();
            Half stream = hereSends ? new Sending(channel, mine.maxLength()) : new Receiving(channel, mine.maxLength());
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (stream.done() < 50_000 && System.nanoTime() < deadline) {
                stream.step();
            }
            assertTrue(stream.done() >= 50_000, "the peer took part before it was killed; got " + stream.done()
                + "\n" + ChannelStressCases.read(log));
            assertTrue(Leaks.memfdMappings() > 0, "the shared memory is mapped while the channel is open");
            peer.destroyForcibly();
            assertTrue(peer.waitFor(10, TimeUnit.SECONDS));
            long gone = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            ChannelClosedException closed = assertThrows(ChannelClosedException.class, () -> {
                while (System.nanoTime() < gone) {
                    stream.step();
                }
            }, "the channel says the peer is gone within 10 s");
            assertTrue(channel.isClosed());
            assertNotNull(channel.closeReason());
            assertNotNull(closed.getMessage());
            assertThrows(ChannelClosedException.class, () -> channel.tryClaim(8), "no send once the peer died");
            assertThrows(ChannelClosedException.class, () -> channel.poll((b, l) -> { }, 1), "no receive either");
            channel.close();
            channel.close();
        } finally {
            peer.destroyForcibly();
        }
        Leaks.assertNoneLeft(fdsBefore);
    }

    /** One end's half of a stream, one step at a time. */
    interface Half {
        void step();

        long done();
    }

    /** Receives and checks stress messages; a step that finds none waits a little on the eventfd. */
    record Receiving(MessageChannel channel, StressMessages.Checker checker) implements Half {
        Receiving(MessageChannel channel, int maxLength) {
            this(channel, new StressMessages.Checker(maxLength));
        }

        @Override
        public void step() {
            if (channel.poll(checker, 64) == 0) {
                channel.awaitMessages(Duration.ofMillis(20));
            }
            assertEquals(null, checker.failure);
        }

        @Override
        public long done() {
            return checker.expected;
        }
    }

    /** Sends stress messages a batch at a time; a step that finds the ring full waits on the eventfd. */
    static final class Sending implements Half {
        private final MessageChannel channel;
        private final int maxLength;
        private long sequence;

        Sending(MessageChannel channel, int maxLength) {
            this.channel = channel;
            this.maxLength = maxLength;
        }

        @Override
        public void step() {
            for (int i = 0; i < StressPeer.BATCH; i++) {
                int length = StressMessages.length(sequence, maxLength);
                MemorySegment m = channel.tryClaim(length);
                if (m == null) {
                    channel.flush();
                    channel.awaitSpace(Duration.ofMillis(20));
                    return;
                }
                StressMessages.write(m, sequence++, length);
                channel.commit();
            }
            channel.flush();
        }

        @Override
        public long done() {
            return sequence;
        }
    }
}

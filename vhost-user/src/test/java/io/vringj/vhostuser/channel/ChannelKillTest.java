package io.vringj.vhostuser.channel;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Killing the other process mid-stream: the end in this JVM gets a {@link ChannelClosedException}
 * with a reason, and after {@code close()} holds no fd, no mapping of shared memory and no
 * thread it did not hold before.
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
        Set<String> threadsBefore = threadNames();
        List<String> fdsBefore = openFds();
        long mappingsBefore = sharedMappings();
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
            assertTrue(sharedMappings() > mappingsBefore, "the shared memory is mapped while the channel is open");
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
        assertEquals(mappingsBefore, sharedMappings(), "no mapping of the shared memory is left");
        assertEquals(fdsBefore, awaitFds(fdsBefore.size(), 5_000), "no fd is left");
        assertEquals(threadsBefore, awaitThreads(threadsBefore, 5_000), "no thread is left");
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

    /** Live threads by name, without the JDK's process reaper (it outlives the child by design). */
    static Set<String> threadNames() {
        return Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive).map(Thread::getName)
            .filter(n -> !n.startsWith("process reaper")).collect(Collectors.toCollection(TreeSet::new));
    }

    static Set<String> awaitThreads(Set<String> expected, long millis) throws InterruptedException {
        long deadline = System.nanoTime() + millis * 1_000_000;
        Set<String> now = threadNames();
        while (!now.equals(expected) && System.nanoTime() < deadline) {
            Thread.sleep(20);
            now = threadNames();
        }
        return now;
    }

    /** Open fds as "fd -> target", sorted. */
    static List<String> openFds() {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.map(p -> {
                try {
                    return p.getFileName() + " -> " + Files.readSymbolicLink(p);
                } catch (IOException e) {
                    return null; // the listing's own fd, closed by now
                }
            }).filter(s -> s != null).sorted().collect(Collectors.toList());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static List<String> awaitFds(int expected, long millis) throws InterruptedException {
        long deadline = System.nanoTime() + millis * 1_000_000;
        List<String> now = openFds();
        while (now.size() != expected && System.nanoTime() < deadline) {
            Thread.sleep(20);
            now = openFds();
        }
        return now;
    }

    /** Mappings of a memfd (the channel's shared memory, ours or the peer's) in this process. */
    static long sharedMappings() {
        try (Stream<String> lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.filter(l -> l.contains("/memfd:")).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}

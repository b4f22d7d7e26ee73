package io.vringj.vhostuser.channel;

import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The channel across processes: a peer process killed mid-stream leaves this process with a
 * clear reason and without the channel's fds, threads or mapping.
 */
@Timeout(120)
class ChannelProcessTest {
    @TempDir
    Path dir;

    @Test
    void killingTheConnectingProcessClosesTheServingEnd() throws Exception {
        Path socket = dir.resolve("kill.sock");
        List<String> fds = Leaks.openFds();
        Process client = Leaks.ping(dir.resolve("connect.log"), "connect", socket.toString(), "1000000000000");
        try (MessageChannel channel = MessageChannel.serve(ChannelOptions.builder(socket)
                 .connectTimeout(Duration.ofSeconds(30)).build())) {
            assertTrue(Leaks.memfdMappings() > 0, "the peer's memory is mapped while the channel runs");
            long[] seen = new long[1];
            MessageHandler handler = (buffer, length) -> {
                assertEquals(seen[0], buffer.get(ValueLayout.JAVA_LONG_UNALIGNED, 0), "in order, nothing lost");
                seen[0]++;
            };
            while (seen[0] < 20_000) {
                if (channel.poll(handler, 32) == 0) {
                    channel.awaitMessages(Duration.ofSeconds(1));
                }
            }
            client.destroyForcibly();
            assertTrue(client.waitFor(10, TimeUnit.SECONDS));
            ChannelClosedException e = assertThrows(ChannelClosedException.class, () -> {
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (System.nanoTime() < deadline) {
                    if (channel.poll(handler, 32) == 0) {
                        channel.awaitMessages(Duration.ofMillis(100));
                    }
                }
            });
            assertTrue(e.getMessage().contains("peer gone: front end disconnected"), e.getMessage());
            assertTrue(channel.isClosed());
        } catch (Exception | AssertionError e) {
            throw new AssertionError("connecting process:\n" + Files.readString(dir.resolve("connect.log")), e);
        } finally {
            client.destroyForcibly();
        }
        Leaks.assertNoneLeft(fds);
    }

    @Test
    void killingTheServingProcessClosesTheConnectingEnd() throws Exception {
        Path socket = dir.resolve("kill.sock");
        List<String> fds = Leaks.openFds();
        Process server = Leaks.ping(dir.resolve("serve.log"), "serve", socket.toString(), "1000000000000");
        try (MessageChannel channel = MessageChannel.connect(ChannelOptions.builder(socket)
                 .connectTimeout(Duration.ofSeconds(30)).build())) {
            assertTrue(Leaks.memfdMappings() > 0, "the shared memory is mapped while the channel runs");
            long sent = 0;
            while (sent < 20_000) {
                if (channel.offer(java.lang.foreign.MemorySegment.ofArray(new long[] {sent}), 0, 8)) {
                    sent++;
                } else {
                    channel.awaitSpace(Duration.ofSeconds(1));
                }
            }
            channel.flush();
            server.destroyForcibly();
            assertTrue(server.waitFor(10, TimeUnit.SECONDS));
            ChannelClosedException e = assertThrows(ChannelClosedException.class, () -> {
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (System.nanoTime() < deadline) {
                    if (channel.tryClaim(8) == null) {
                        channel.awaitSpace(Duration.ofMillis(100));
                    } else {
                        channel.commit();
                        channel.flush();
                    }
                }
            });
            assertTrue(e.getMessage().contains("peer closed"), e.getMessage());
            assertTrue(channel.isClosed());
        } catch (Exception | AssertionError e) {
            throw new AssertionError("serving process:\n" + Files.readString(dir.resolve("serve.log")), e);
        } finally {
            server.destroyForcibly();
        }
        Leaks.assertNoneLeft(fds);
    }

    @Test
    void aPeerThatNeverComesIsATimeOut() throws Exception {
        Path socket = dir.resolve("nobody.sock");
        List<String> fds = Leaks.openFds();
        long start = System.nanoTime();
        java.io.IOException e = assertThrows(java.io.IOException.class, () -> MessageChannel.serve(
            ChannelOptions.builder(socket).connectTimeout(Duration.ofMillis(300)).build()));
        assertTrue(e.getMessage().contains("no peer connected within 300 ms"), e.getMessage());
        assertTrue(System.nanoTime() - start >= 250_000_000L);
        assertTrue(!Files.exists(socket), "the socket file is removed");
        e = assertThrows(java.io.IOException.class, () -> MessageChannel.connect(
            ChannelOptions.builder(socket).connectTimeout(Duration.ofMillis(300)).build()));
        assertTrue(e.getMessage().contains(socket.toString()), e.getMessage());
        Leaks.assertNoneLeft(fds);
        if (Files.exists(socket)) {
            fail("socket left behind");
        }
    }
}

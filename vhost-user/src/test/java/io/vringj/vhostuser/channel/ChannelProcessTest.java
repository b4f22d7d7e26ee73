package io.vringj.vhostuser.channel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The channel's end when no peer ever comes: a time-out, and nothing left behind. (A peer killed
 * mid-stream: {@link ChannelKillTest}.)
 */
@Timeout(120)
class ChannelProcessTest {
    @TempDir
    Path dir;

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

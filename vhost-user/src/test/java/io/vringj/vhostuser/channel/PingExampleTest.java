package io.vringj.vhostuser.channel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's channel example ({@code example/Ping.java}): shown exactly, under 40 lines, and run as two processes. */
@Timeout(120)
class PingExampleTest {
    @TempDir
    Path dir;

    @Test
    void readmeShowsExactlyThePingProgram() throws Exception {
        // surefire runs in the module's directory
        String readme = Files.readString(Path.of("README.md"));
        String source = Files.readString(Path.of("src", "test", "java", "io", "vringj", "vhostuser", "channel", "example",
            "Ping.java"));
        // the README shows the file without its package line and the blank line after it
        String program = source.substring(source.indexOf("\n\n") + 2);
        assertTrue(readme.contains("```java\n" + program + "```\n"),
            "vhost-user/README.md must show example/Ping.java (from its imports) verbatim in a java block");
        long lines = program.lines().count();
        assertTrue(lines < 40, "the example is " + lines + " lines; the README promises under 40");
        assertTrue(readme.indexOf("Ping.java") < readme.indexOf("## The back end"),
            "the channel is the module's first example");
    }

    @Test
    void pingRunsAsTwoProcesses() throws Exception {
        String socket = dir.resolve("ping.sock").toString();
        long count = 200_000;
        Process server = Leaks.ping(dir.resolve("serve.log"), "serve", socket, Long.toString(count));
        Process client = Leaks.ping(dir.resolve("connect.log"), "connect", socket, Long.toString(count));
        try {
            assertTrue(client.waitFor(60, TimeUnit.SECONDS), "the connecting process ends");
            assertTrue(server.waitFor(60, TimeUnit.SECONDS), "the serving process ends");
            String served = Files.readString(dir.resolve("serve.log"));
            String connected = Files.readString(dir.resolve("connect.log"));
            assertEquals(0, server.exitValue(), served);
            assertEquals(0, client.exitValue(), connected);
            // the values 0..count-1 each arrived once: close waited until the serving end took them all
            assertTrue(served.contains("received " + count + ", sum " + count * (count - 1) / 2), served);
            assertTrue(connected.contains("sent " + count), connected);
        } finally {
            server.destroyForcibly();
            client.destroyForcibly();
        }
    }
}

package io.vringj.vhostuser.frontend;

import io.vringj.ring.VirtioFeatures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * JVM to JVM: our front end in this JVM drives our back end running as {@code rng --socket PATH}
 * in a second JVM started with the same java and class path.
 */
class FrontEndProcessTest {
    static final long SEED = 0x1234_5678L;

    @TempDir
    Path dir;

    Process startBackEnd(String socket, long seed) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp", Resources.classPath(),
            "io.vringj.vhostuser.backend.VhostUserCommand", "rng", "--socket", socket, "--seed", Long.toString(seed));
        pb.redirectErrorStream(true);
        pb.redirectOutput(dir.resolve("back-end-" + seed + ".log").toFile());
        return pb.start();
    }

    String log(long seed) throws Exception {
        Path p = dir.resolve("back-end-" + seed + ".log");
        return Files.exists(p) ? Files.readString(p) : "(no log)";
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"split", "packed"})
    void readsRandomBytesFromABackEndInAnotherJvm(String layout) throws Exception {
        String socket = dir.resolve("rng.sock").toString();
        Process backEnd = startBackEnd(socket, SEED);
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX)
            | (layout.equals("packed") ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0);
        try (VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(FrontEndOptions.client(socket).queueSize(32)
                 .features(features).connectTimeout(Duration.ofSeconds(30)).build())) {
            assertEquals(features, frontEnd.features());
            RngReader reader = new RngReader(frontEnd, frontEnd.startQueues()[0], 8, 512);
            long position = 0;
            for (int round = 0; round < 10; round++) {
                byte[] got = reader.round();
                FrontEndRngTest.assertStream(SEED, position, got, layout + " round " + round);
                position += got.length;
            }
            int base = frontEnd.stopQueue(0);
            assertEquals(layout.equals("packed") ? FrontEndRngTest.packedBase(80, 32) : 80, base);
        } catch (Exception | AssertionError e) {
            throw new AssertionError("back end log:\n" + log(SEED), e);
        } finally {
            backEnd.destroy();
            assertTrue(backEnd.waitFor(10, TimeUnit.SECONDS), "the back end stops on SIGTERM");
        }
    }

    @Test
    void aBackEndProcessThatDiesIsReportedAndAFreshOneIsReconnectedTo() throws Exception {
        String socket = dir.resolve("rng.sock").toString();
        Process first = startBackEnd(socket, SEED);
        Process second = null;
        try (VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(FrontEndOptions.client(socket).queueSize(8)
                 .connectTimeout(Duration.ofSeconds(30)).build())) {
            CountDownLatch lost = new CountDownLatch(1);
            frontEnd.addListener((fe, reason) -> lost.countDown());
            FrontEndRngTest.assertStream(SEED, 0, new RngReader(frontEnd, frontEnd.startQueues()[0], 2, 64).round(),
                "first back end");
            first.destroyForcibly();
            assertTrue(first.waitFor(10, TimeUnit.SECONDS));
            assertTrue(lost.await(10, TimeUnit.SECONDS), "the killed back end is noticed");
            assertEquals(FrontEndState.DISCONNECTED, frontEnd.state());
            // SIGKILL left the socket file behind: the new back end needs it gone to bind
            Files.deleteIfExists(Path.of(socket));
            second = startBackEnd(socket, SEED + 1);
            frontEnd.reconnect();
            FrontEndRngTest.assertStream(SEED + 1, 0,
                new RngReader(frontEnd, frontEnd.startQueues()[0], 2, 64).round(), "second back end");
        } catch (Exception | AssertionError e) {
            throw new AssertionError("back end logs:\n" + log(SEED) + "\n" + log(SEED + 1), e);
        } finally {
            first.destroyForcibly();
            if (second != null) {
                second.destroy();
                second.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }
}

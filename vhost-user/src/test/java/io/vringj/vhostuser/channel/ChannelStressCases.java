package io.vringj.vhostuser.channel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two processes, one channel: this JVM is one end, a second JVM (same java, same class path,
 * {@link StressPeer#main}) the other; {@link #messages()} messages go one way, each checked for
 * loss, duplication, reordering and corruption ({@link StressMessages}), then acknowledged, then
 * the sender closes and the receiver must see it.
 *
 * <p>The eight cases cover every combination of wait (Agrona idle strategy, eventfd), ring layout
 * (split, packed) and in-order (offered, not); the sending end and which end runs here vary so
 * that each direction and each process role meets every value of every factor.
 */
abstract class ChannelStressCases {
    static final int MAX_LENGTH = 4096;

    @TempDir
    Path dir;

    /** @return how many messages each case sends */
    abstract long messages();

    static Stream<Arguments> cases() {
        List<Arguments> all = new ArrayList<>();
        for (boolean eventfd : new boolean[] {false, true}) {
            for (boolean packed : new boolean[] {false, true}) {
                for (boolean inOrder : new boolean[] {false, true}) {
                    boolean serveEndSends = eventfd ^ packed ^ inOrder;
                    boolean hereServes = packed ^ inOrder ^ !eventfd;
                    all.add(Arguments.of(eventfd ? "eventfd" : "poll", packed ? "packed" : "split",
                        inOrder ? "in-order" : "any-order", serveEndSends ? "serve end sends" : "connect end sends",
                        hereServes ? "this JVM serves" : "this JVM connects"));
                }
            }
        }
        return all.stream();
    }

    /** Starts {@link StressPeer} in a second JVM, its output in {@code log}. */
    static Process startPeer(StressPeer.Setup setup, Path log) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-Xmx256m",
            "-cp", Leaks.classPath(), StressPeer.class.getName()));
        command.addAll(List.of(setup.args()));
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.redirectErrorStream(true);
        pb.redirectOutput(log.toFile());
        return pb.start();
    }

    static String read(Path log) throws Exception {
        return Files.exists(log) ? Files.readString(log) : "(no output)";
    }

    @ParameterizedTest(name = "{0}, {1}, {2}, {3}, {4}")
    @MethodSource("cases")
    void everyMessageArrivesOnceInOrderIntact(String wait, String layout, String order, String sender, String here)
            throws Exception {
        boolean serveEndSends = sender.startsWith("serve");
        boolean hereServes = here.endsWith("serves");
        StressPeer.Setup mine = new StressPeer.Setup(hereServes, dir.resolve("stress.sock"),
            serveEndSends == hereServes, messages(), wait.equals("eventfd"), layout.equals("packed"),
            order.equals("in-order"), MAX_LENGTH);
        Path log = dir.resolve("peer.log");
        Process peer = startPeer(mine.other(), log);
        long start = System.nanoTime();
        try (MessageChannel channel = mine.open()) {
            StressPeer here0 = new StressPeer(mine, channel);
            long done = mine.send() ? here0.send() : here0.receive();
            assertEquals(messages(), done);
            assertTrue(peer.waitFor(60, TimeUnit.SECONDS), "the peer exits after the run");
            String out = read(log);
            assertEquals(0, peer.exitValue(), "peer failed:\n" + out);
            assertTrue(out.contains("RESULT ok " + messages()), "peer output:\n" + out);
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("channel stress %s %s %s, %s, %s: %d messages in %.1f s (%.2f M/s), negotiated"
                + " in-order %s packed %s%n", wait, layout, order, sender, here, messages(), seconds,
                messages() / seconds / 1e6, channel.inOrder(), channel.packed());
            assertEquals(layout.equals("packed"), channel.packed(), "ring layout negotiated");
            assertEquals(order.equals("in-order"), channel.inOrder(), "in-order negotiated when both ends want it");
        } catch (Exception | AssertionError e) {
            peer.destroyForcibly();
            peer.waitFor(10, TimeUnit.SECONDS);
            throw new AssertionError("peer output:\n" + read(log), e);
        } finally {
            peer.destroyForcibly();
        }
    }
}

package io.vringj.vhostuser.backend;

import io.vringj.device.net.NetDevice;
import io.vringj.device.net.NetDrop;
import io.vringj.device.net.NetStatistics;
import io.vringj.device.net.Sink;
import io.vringj.vhostuser.frontend.net.NetPeer;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our front end ({@link NetPeer} over {@code NetDriver}) drives our back end's virtio-net
 * ({@code VhostUserServer} with a {@link NetDevice}) over a real Unix socket, split and packed:
 * the sink sees every frame sent, byte for byte; reflect sends every frame back unless it found
 * no rx buffer, and says so.
 */
class NetBackEndTest {
    @TempDir
    Path dir;

    static NetPeer.Options options(String socket, NetPeer.Mode mode, long count, int size, boolean packed) {
        return new NetPeer.Options(socket, false, 0, count, size, packed, mode, 256, Duration.ofSeconds(60),
            Duration.ofSeconds(10));
    }

    @ParameterizedTest(name = "{0} {1} B")
    @CsvSource({"split,64", "packed,64", "split,1500", "packed,1500"})
    @Timeout(120)
    void sinkCountsEveryFrameOurFrontEndSends(String layout, int size) throws Exception {
        NetDevice device = NetDevice.sink();
        long count = 20_000;
        try (BackendHarness backEnd = new BackendHarness(dir, device);
             NetPeer peer = NetPeer.open(options(backEnd.path, NetPeer.Mode.SEND, count, size, layout.equals("packed")))) {
            NetPeer.Result result = peer.run();
            assertNull(result.failure(), result.summary());
            assertTrue(result.complete(), result.summary());
            assertEquals(count, result.sent());
            // every tx buffer came back used, so the device has handled every frame
            NetStatistics stats = device.statistics();
            assertEquals(count, stats.txFrames(), device.report());
            assertEquals(count * size, stats.txBytes(), device.report());
            assertEquals(0, stats.totalDrops(), device.report());
            Sink sink = (Sink) device.pairs().getFirst().handler();
            assertEquals(count, sink.frames());
            assertEquals(count * size, sink.bytes());
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"split", "packed"})
    @Timeout(120)
    void reflectSendsEveryFrameBackThatFoundAnRxBuffer(String layout) throws Exception {
        NetDevice device = NetDevice.reflect();
        long count = 20_000;
        try (BackendHarness backEnd = new BackendHarness(dir, device);
             NetPeer peer = NetPeer.open(options(backEnd.path, NetPeer.Mode.BOTH, count, 64, layout.equals("packed")))) {
            NetPeer.Result result = peer.run();
            assertNull(result.failure(), result.summary());
            assertEquals(count, result.sent());
            NetStatistics stats = device.statistics();
            assertEquals(count, stats.txFrames(), device.report());
            assertTrue(result.received() > 0, result.summary());
            assertEquals(stats.rxFrames(), result.received(), device.report() + " / " + result.summary());
            assertEquals(count, result.received() + stats.drops(NetDrop.NO_RX_BUFFER),
                "each frame came back or was dropped for want of an rx buffer: " + device.report());
            assertEquals(64 * result.received(), result.receivedBytes(), result.summary());
            assertEquals(0, result.drops(), result.summary());
        }
    }
}

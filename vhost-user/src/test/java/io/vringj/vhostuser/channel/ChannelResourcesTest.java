package io.vringj.vhostuser.channel;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Both ends in one JVM: after close no fd, thread or mapping of either end is left, whichever side closed first. */
@Timeout(120)
class ChannelResourcesTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "device end closes first: {0}")
    @ValueSource(booleans = {false, true})
    void closingBothEndsLeavesNothingBehind(boolean deviceFirst) throws Exception {
        List<String> fds = Leaks.openFds();
        ChannelPair pair = ChannelPair.open(ChannelPair.options(dir).build());
        assertTrue(Leaks.memfdMappings() >= 2, "mapped by both ends while the channel runs");
        assertTrue(!Leaks.channelThreads().isEmpty(), "the channel has threads while it runs");
        long count = 10_000;
        CompletableFuture<Void> sender = CompletableFuture.runAsync(() -> {
            for (long i = 0; i < count; i++) {
                Messages.send(pair.driver, i, 100);
            }
            pair.driver.flush();
        });
        new Messages.Checker(100).receive(pair.device, count);
        sender.get(30, TimeUnit.SECONDS);
        if (deviceFirst) {
            pair.device.close();
            pair.driver.close();
        } else {
            pair.driver.close();
            pair.device.close();
        }
        Leaks.assertNoneLeft(fds);
    }
}

package io.vringj.vhostuser.channel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MessageChannelTest {
    @TempDir
    Path dir;

    @Test
    void smoke() throws Exception {
        try (ChannelPair pair = ChannelPair.open(ChannelPair.options(dir).build())) {
            MemorySegment m = pair.driver.tryClaim(8);
            assertNotNull(m);
            m.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 42L);
            pair.driver.commit();
            assertEquals(1, pair.driver.flush());
            long[] got = new long[1];
            int n = 0;
            for (int i = 0; i < 1000 && n == 0; i++) {
                n = pair.device.poll((b, len) -> got[0] = b.get(ValueLayout.JAVA_LONG_UNALIGNED, 0), 8);
                Thread.sleep(1);
            }
            assertEquals(1, n);
            assertEquals(42L, got[0]);
            MemorySegment r = pair.device.tryClaim(8);
            assertNotNull(r);
            r.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 43L);
            pair.device.commit();
            pair.device.flush();
            assertTrue(pair.driver.awaitMessages(Duration.ofSeconds(5)));
            assertEquals(1, pair.driver.poll((b, len) -> got[0] = b.get(ValueLayout.JAVA_LONG_UNALIGNED, 0), 8));
            assertEquals(43L, got[0]);
        }
    }
}

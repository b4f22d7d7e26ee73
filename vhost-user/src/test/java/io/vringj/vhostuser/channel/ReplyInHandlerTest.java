package io.vringj.vhostuser.channel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A serving end's handler that answers each message from inside {@code poll} (claim and commit a
 * reply): the reply's commit must not tell the connection thread that the application let go of
 * the rings while {@code poll} still works on them. The mark that hands the rings back stays set
 * until the outermost operation ends.
 */
class ReplyInHandlerTest {
    @TempDir
    Path dir;

    @Test
    void aReplyCommittedInsideTheHandlerKeepsTheRingsHeldUntilPollEnds() throws Exception {
        try (ChannelPair pair = ChannelPair.open(ChannelPair.options(dir).build())) {
            MessageChannel device = pair.device;
            Object endpoint = field(device, "endpoint");
            VarHandle inside = MethodHandles.privateLookupIn(endpoint.getClass(), MethodHandles.lookup())
                .findVarHandle(endpoint.getClass(), "inside", int.class);
            int[] insideAfterReply = {-1};
            long[] echoed = {0};
            MessageHandler echo = (buffer, length) -> {
                MemorySegment reply = device.tryClaim(length);
                assertTrue(reply != null, "room for the reply");
                MemorySegment.copy(buffer, 0, reply, 0, length);
                device.commit();
                // still inside poll: the rings are still this thread's
                insideAfterReply[0] = (int) inside.getVolatile(endpoint);
                echoed[0]++;
            };
            for (long i = 0; i < 100; i++) {
                MemorySegment m;
                while ((m = pair.driver.tryClaim(8)) == null) {
                    pair.driver.flush();
                    pair.driver.awaitSpace(Duration.ofMillis(10));
                }
                m.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, i);
                pair.driver.commit();
            }
            pair.driver.flush();
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (echoed[0] < 100 && System.nanoTime() < deadline) {
                if (device.poll(echo, 16) == 0) {
                    device.awaitMessages(Duration.ofMillis(10));
                }
                assertEquals(1, insideAfterReply[0], "inside poll after the reply's commit");
                assertEquals(0, (int) inside.getVolatile(endpoint), "let go once poll returned");
            }
            device.flush();
            assertEquals(100, echoed[0]);
            long[] back = {0, 0};
            MessageHandler sum = (buffer, length) -> {
                back[0]++;
                back[1] += buffer.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
            };
            while (back[0] < 100 && System.nanoTime() < deadline) {
                if (pair.driver.poll(sum, 32) == 0) {
                    pair.driver.awaitMessages(Duration.ofMillis(10));
                }
            }
            assertEquals(100, back[0], "every reply came back");
            assertEquals(99 * 100 / 2, back[1]);
        }
    }

    private static Object field(Object o, String name) throws ReflectiveOperationException {
        var f = o.getClass().getDeclaredField(name);
        f.setAccessible(true);
        return f.get(o);
    }
}

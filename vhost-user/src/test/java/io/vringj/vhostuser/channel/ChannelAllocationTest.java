package io.vringj.vhostuser.channel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Claim, commit, flush and poll allocate nothing once warmed up, at both ends (one thread drives
 * both here): the thread's allocation counter barely moves over thousands of messages, in place
 * and merged.
 */
@Timeout(120)
class ChannelAllocationTest {
    @TempDir
    Path dir;

    private long sum;
    private final MessageHandler handler = (buffer, length) -> sum += buffer.get(ValueLayout.JAVA_BYTE, length - 1);

    private static long allocated() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    private void round(ChannelPair pair, int length) {
        oneWay(pair.driver, pair.device, length);
        oneWay(pair.device, pair.driver, length);
    }

    private void oneWay(MessageChannel sender, MessageChannel receiver, int length) {
        for (int i = 0; i < 8; i++) {
            MemorySegment m = sender.tryClaim(length);
            m.set(ValueLayout.JAVA_BYTE, length - 1, (byte) i);
            sender.commit();
        }
        sender.flush();
        int got = 0;
        while (got < 8) {
            got += receiver.poll(handler, 32);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void claimCommitFlushAndPollAllocateNothing(boolean packed) throws Exception {
        // 1 KiB rx buffers: messages up to 1012 bytes in place, longer ones merged (copied once each way)
        try (ChannelPair pair = ChannelPair.open(ChannelPair.options(dir).packed(packed).rxBufferSize(1024).build())) {
            for (int i = 0; i < 3000; i++) {
                round(pair, 1 + i % 4096);
            }
            long before = allocated();
            for (int i = 0; i < 2000; i++) {
                round(pair, 1 + i % 4096);
            }
            long bytes = allocated() - before;
            // one allocation per message would be 32000 x 16 bytes or more; one-off JIT and class work stays far below
            assertTrue(bytes < 8192, "steady path allocated " + bytes + " bytes over 32000 messages");
            assertEquals(false, pair.driver.isClosed());
        }
    }
}

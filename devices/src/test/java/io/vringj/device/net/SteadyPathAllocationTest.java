package io.vringj.device.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Sending, the device's step (sink and reflect, merged or not) and receiving allocate nothing
 * once warmed up: the thread's allocation counter barely moves over thousands of frames.
 */
class SteadyPathAllocationTest {
    private static long allocated() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    private long received;

    private void onFrame(Frame f) {
        received += f.getByte(f.length() - 1) + f.pieceCount();
    }

    private void round(NetDriver driver, NetQueuePair pair, NetDriver.Receiver receiver, int length)
        throws Exception {
        for (int i = 0; i < 8; i++) {
            MemorySegment buffer = driver.claim();
            buffer.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 0x0200_0000_000BL << 16);
            buffer.set(ValueLayout.JAVA_BYTE, length - 1, (byte) i);
            driver.commit(length);
        }
        driver.flush();
        while (pair.doWork() > 0) {
            // drain
        }
        driver.reclaim();
        while (driver.receive(receiver, 64) > 0) {
            // drain
        }
    }

    @ParameterizedTest(name = "mode={0} packed={1} mrg={2}")
    @CsvSource({"sink,false,false", "sink,true,true", "reflect,false,false", "reflect,true,false", "reflect,false,true",
        "reflect,true,true"})
    void sendStepAndReceiveAllocateNothing(String mode, boolean packed, boolean mergeable) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, mergeable, true), 64)) {
            NetDriver driver = rig.driver(mergeable ? 512 : NetDriver.MIN_RX_BUFFER_WITHOUT_MERGE, 12 + 1500);
            NetQueuePair pair = rig.pair(mode.equals("sink") ? NetDevice.sink() : NetDevice.reflect());
            NetDriver.Receiver receiver = this::onFrame;
            for (int i = 0; i < 3000; i++) {
                round(driver, pair, receiver, 60 + i % 1440);
            }
            long before = allocated();
            for (int i = 0; i < 2000; i++) {
                round(driver, pair, receiver, 60 + i % 1440);
            }
            long bytes = allocated() - before;
            // one allocation per frame would be 16000 x 16 bytes or more; one-off JIT and class work stays far below
            assertTrue(bytes < 8192, "steady path allocated " + bytes + " bytes over 16000 frames");
            assertEquals(0, pair.statistics().totalDrops(), pair.statistics().toString());
            assertEquals(mode.equals("sink") ? 0 : 40_000, pair.statistics().rxFrames());
        }
    }
}

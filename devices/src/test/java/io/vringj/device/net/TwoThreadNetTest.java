package io.vringj.device.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The driver on one thread and the reflecting device on another, as across processes: every frame
 * comes back with its MACs swapped and its bytes intact, in order.
 */
class TwoThreadNetTest {
    static final int FRAMES = 20_000;
    static final int OUTSTANDING = 32;

    @ParameterizedTest(name = "packed={0} mrg={1} eventIdx={2}")
    @CsvSource({"false,false,true", "true,true,false", "false,true,false", "true,false,true"})
    void reflectedFramesCrossThreadsIntact(boolean packed, boolean mergeable, boolean eventIdx) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, mergeable, eventIdx), 256)) {
            NetDriver driver = rig.driver(mergeable ? 512 : 2048, 12 + 1500);
            NetQueuePair pair = rig.pair(NetDevice.reflect());
            AtomicReference<Throwable> deviceFailure = new AtomicReference<>();
            Thread device = Thread.ofPlatform().name("net-device").start(() -> {
                try {
                    while (!Thread.currentThread().isInterrupted()) {
                        if (pair.doWork() == 0) {
                            Thread.onSpinWait();
                            Thread.yield();
                        }
                    }
                } catch (Throwable t) {
                    deviceFailure.set(t);
                }
            });
            long[] next = {0};
            long[] bad = {0};
            NetDriver.Receiver check = f -> {
                long seq = next[0]++;
                int length = length(seq);
                if (f.length() != length || f.getMac(0) != NetRig.MAC_A || f.getMac(6) != NetRig.MAC_B
                    || f.getInt(14) != (int) seq || f.getByte(length - 1) != (int) (seq * 31 & 0xFF)) {
                    bad[0]++;
                }
            };
            long sent = 0;
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (next[0] < FRAMES && System.nanoTime() < deadline && deviceFailure.get() == null) {
                while (sent < FRAMES && sent - next[0] < OUTSTANDING) {
                    MemorySegment b = driver.claim();
                    if (b == null) {
                        break;
                    }
                    int length = length(sent);
                    b.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN), 0,
                        (short) (NetRig.MAC_B >>> 32));
                    b.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN), 2, (int) NetRig.MAC_B);
                    b.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN), 6,
                        (short) (NetRig.MAC_A >>> 32));
                    b.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN), 8, (int) NetRig.MAC_A);
                    b.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN), 14, (int) sent);
                    b.set(ValueLayout.JAVA_BYTE, length - 1, (byte) (sent * 31));
                    driver.commit(length);
                    sent++;
                }
                driver.flush();
                if (driver.receive(check, 64) == 0) {
                    Thread.onSpinWait();
                    Thread.yield();
                }
            }
            device.interrupt();
            device.join();
            assertNull(deviceFailure.get());
            assertEquals(FRAMES, next[0], "frames back; device " + pair.statistics());
            assertEquals(0, bad[0]);
            assertEquals(0, pair.statistics().totalDrops());
        }
    }

    private static int length(long seq) {
        return 60 + (int) (seq * 37 % 1441);
    }
}

package io.vringj.device.rng;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.BufferChain;
import io.vringj.ring.ChainHandler;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.VirtioFeatures;
import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The rng's per-chain cap and rate limit (QEMU's max-bytes/period) [issue 11 item 11]. */
class RngLimitsTest {
    static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
    static final int QUEUE_SIZE = 16;
    static final RingAddresses RINGS = new RingAddresses(0, 0x1000, 0x2000);
    static final long BUFFERS = 0x4000;

    /** Offers {@code lengths.length} writable chains and hands each popped one to {@code handler}; returns the lengths written. */
    static long[] serve(ChainHandler handler, int... lengths) throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(0, 0x100000)) {
            DriverQueue driver = DriverQueue.create(FEATURES, QUEUE_SIZE, memory, RINGS);
            DeviceQueue device = DeviceQueue.create(FEATURES, QUEUE_SIZE, RINGS, AddressSpace.identity(memory));
            long at = BUFFERS;
            for (int length : lengths) {
                driver.add(new BufferChain(1).addWritable(at, length));
                at += length;
            }
            driver.publish();
            long[] written = new long[lengths.length];
            DescriptorChain chain = new DescriptorChain();
            for (int i = 0; i < lengths.length; i++) {
                assertTrue(device.pop(chain));
                written[i] = handler.handle(chain);
            }
            return written;
        }
    }

    @Test
    void capsTheBytesWrittenIntoOneChain() throws Exception {
        RngDevice rng = new RngDevice(() -> EntropySource.deterministic(1), false,
            new RngLimits(1000, Long.MAX_VALUE, 1000));
        long[] written = serve(rng.handler(0, FEATURES), 4096, 1000, 999);
        assertEquals(1000, written[0], "a 4096-byte buffer gets the cap");
        assertEquals(1000, written[1]);
        assertEquals(999, written[2], "a buffer below the cap is filled whole");
    }

    @Test
    void slowsADriverThatAsksFasterThanTheRate() throws Exception {
        // 1000 bytes per 100 ms: 5 chains of 1000 bytes need at least 4 periods after the first
        RngDevice rng = new RngDevice(() -> EntropySource.deterministic(1), false, new RngLimits(4096, 1000, 100));
        long start = System.nanoTime();
        long[] written = serve(rng.handler(0, FEATURES), 1000, 1000, 1000, 1000, 1000);
        long millis = (System.nanoTime() - start) / 1_000_000;
        for (long w : written) {
            assertEquals(1000, w);
        }
        assertTrue(millis >= 400, "5000 bytes at 1000 per 100 ms took only " + millis + " ms");
    }

    @Test
    void aChainLargerThanThePeriodsBudgetGetsWhatIsLeft() throws Exception {
        RngDevice rng = new RngDevice(() -> EntropySource.deterministic(1), false, new RngLimits(4096, 1500, 1000));
        long[] written = serve(rng.handler(0, FEATURES), 1000, 1000);
        assertEquals(1000, written[0]);
        assertEquals(500, written[1], "the rest of the period's 1500 bytes");
    }

    @Test
    void isOnByDefault() {
        RngLimits limits = new RngDevice(() -> EntropySource.deterministic(1), false).limits();
        assertEquals(RngLimits.defaults(), limits);
        assertTrue(limits.maxBytesPerChain() < Integer.MAX_VALUE && limits.maxBytesPerPeriod() < Long.MAX_VALUE);
    }

    @Test
    void rejectsLimitsOutsideTheirRange() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new RngLimits(0, 1, 1));
        assertEquals("maxBytesPerChain 0 must be at least 1", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new RngLimits(1, 1, 5000));
        assertEquals("periodMillis 5000 must be in 1..1000", e.getMessage());
    }
}

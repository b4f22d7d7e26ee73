package io.vringj.perf.swiotlb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** The question-6 operations on one thread without JMH: bounces land in the pool with the caller's bytes, and free their slots. */
class SwiotlbBounceLogicTest {

    @Test
    void bounceCopiesTheBufferIntoThePoolAndUnmapsIt() throws Exception {
        SwiotlbBounceBenchmark b = new SwiotlbBounceBenchmark();
        SwiotlbBounceBenchmark.Guest guest = new SwiotlbBounceBenchmark.Guest();
        guest.setUp();
        try {
            SwiotlbBounceBenchmark.Buffer buffer = new SwiotlbBounceBenchmark.Buffer();
            buffer.bytes = 65536;
            buffer.init(guest, 0);
            for (int i = 0; i < 100; i++) {
                long bus = b.bounce(guest, buffer);
                assertTrue(guest.oneArea.pool().owns(bus), "a bounce address is in the pool");
                MemorySegment bounced = guest.memory.slice(bus, buffer.bytes);
                assertEquals(-1L, bounced.mismatch(buffer.original), "the pool got the caller's bytes");
            }
            assertEquals(0, guest.oneArea.pool().liveMappings(), "every bounce was unmapped");
            b.copy(buffer);
            b.copy(buffer);
            assertEquals((byte) 0x5a, buffer.target.get(ValueLayout.JAVA_BYTE, 2 * buffer.bytes - 1));
            assertEquals(2 * buffer.bytes, buffer.targetOffset, "each copy lands at the next place");
            for (int i = 0; i < 100; i++) {
                b.copy(buffer);
            }
            assertTrue(buffer.targetOffset < 4L << 20, "the copies wrap inside the pool-sized region");

            SwiotlbBounceBenchmark.SmallBuffer small = new SwiotlbBounceBenchmark.SmallBuffer();
            small.init(guest, 1);
            assertTrue(guest.oneArea.pool().owns(b.oneArea(guest, small)));
            assertTrue(guest.severalAreas.pool().owns(b.severalAreas(guest, small)));
            assertEquals(0, guest.severalAreas.pool().liveMappings());
        } finally {
            guest.tearDown();
        }
    }
}

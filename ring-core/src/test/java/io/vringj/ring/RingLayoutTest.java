package io.vringj.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** {@link RingLayout} against Linux's uapi {@code vring_init} / {@code vring_size}, and rings built from it. */
class RingLayoutTest {
    private static final long SPLIT = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
    private static final long PACKED = SPLIT | VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** include/uapi/linux/virtio_ring.h: {@code ((num * 16 + 2 * (3 + num) + align - 1) & ~(align - 1)) + 2 * 3 + 8 * num}. */
    private static long vringSize(long num, long align) {
        return ((16 * num + 2 * (3 + num) + align - 1) & ~(align - 1)) + 2 * 3 + 8 * num;
    }

    @Test
    void splitSizeIsVringSize() {
        // worked by hand from the formula: ALIGN(4096 + 518, 4096) + 6 + 2048
        assertEquals(10246, RingLayout.size(SPLIT, 256, 4096));
        // ALIGN(16384 + 2054, 4096) + 6 + 8192
        assertEquals(28678, RingLayout.size(SPLIT, 1024, 4096));
        // ALIGN(16 + 8, 4) + 6 + 8: the smallest ring, packed tight
        assertEquals(38, RingLayout.size(SPLIT, 1, 4));
        for (int q = 1; q <= SplitRing.MAX_QUEUE_SIZE; q <<= 1) {
            for (long align : new long[] {4, 16, 64, 4096, 65536}) {
                assertEquals(vringSize(q, align), RingLayout.size(SPLIT, q, align), "Q=" + q + " align=" + align);
            }
        }
    }

    @Test
    void splitAddressesAreVringInit() {
        RingLayout l = RingLayout.of(SPLIT, 256, 0x1000_0000L, 4096);
        assertEquals(new RingAddresses(0x1000_0000L, 0x1000_1000L, 0x1000_2000L), l.addresses());
        assertEquals(10246, l.totalSize());
        // used_event = &avail->ring[num]; avail_event = &used->ring[num]
        assertEquals(0x1000 + 4 + 2 * 256, l.usedEventOffset());
        assertEquals(0x2000 + 4 + 8 * 256, l.availEventOffset());
        assertEquals(0x1000, l.driverAreaOffset());
        assertEquals(0x2000, l.deviceAreaOffset());
        assertFalse(l.packed());
        assertEquals(256, l.queueSize());
    }

    @Test
    void splitUsedRingIsAlignedAsAnAbsoluteAddress() {
        // vring_init aligns the pointer, not the offset: a base 16 bytes past a page moves the used ring to the
        // next page, 16 bytes closer to the base than with an aligned base
        RingLayout l = RingLayout.of(SPLIT, 256, 0x1000_0010L, 4096);
        assertEquals(0x1000_1010L, l.addresses().driverArea());
        assertEquals(0x1000_2000L, l.addresses().deviceArea());
        assertEquals(0x2000 - 0x10 + 6 + 8 * 256, l.totalSize());
        assertEquals(0x1000 + 4 + 2 * 256, l.usedEventOffset());
        assertEquals(0x2000 - 0x10 + 4 + 8 * 256, l.availEventOffset());
    }

    @Test
    void packedAreasFollowTheDescriptorRing() {
        RingLayout tight = RingLayout.of(PACKED, 5, 0x2000, 4);
        assertTrue(tight.packed());
        assertEquals(new RingAddresses(0x2000, 0x2000 + 80, 0x2000 + 84), tight.addresses());
        assertEquals(88, tight.totalSize());
        assertEquals(80, tight.usedEventOffset(), "the driver event suppression structure");
        assertEquals(84, tight.availEventOffset(), "the device event suppression structure");
        RingLayout cacheLines = RingLayout.of(PACKED, 5, 0x2000, 64);
        assertEquals(0x2000 + 128, cacheLines.addresses().deviceArea());
        assertEquals(132, cacheLines.totalSize());
        assertEquals(16 * 32768 + 4 + 4, RingLayout.size(PACKED, 32768, 4));
    }

    @Test
    void rejectsBadInputNamingTheValueAndTheRule() {
        for (long align : new long[] {0, 1, 2, 3, 6, 4095, -4096, Long.MIN_VALUE}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> RingLayout.of(SPLIT, 8, 0, align));
            assertTrue(e.getMessage().contains("alignment " + align) && e.getMessage().contains("power of two"),
                e.getMessage());
        }
        IllegalArgumentException base = assertThrows(IllegalArgumentException.class,
            () -> RingLayout.of(SPLIT, 8, 0x1008, 4096));
        assertTrue(base.getMessage().contains("0x1008") && base.getMessage().contains("16 bytes"), base.getMessage());
        assertThrows(IllegalArgumentException.class, () -> RingLayout.of(SPLIT, 3, 0, 4096), "split Q must be a power of two");
        assertThrows(IllegalArgumentException.class, () -> RingLayout.of(SPLIT, 65536, 0, 4096));
        assertThrows(IllegalArgumentException.class, () -> RingLayout.of(PACKED, 0, 0, 4096));
        assertEquals(RingLayout.size(PACKED, 3, 4), RingLayout.of(PACKED, 3, 0, 4).totalSize(), "packed Q need not be a power of two");
        IllegalArgumentException end = assertThrows(IllegalArgumentException.class,
            () -> RingLayout.of(SPLIT, 256, -0x1000L, 4096));
        assertTrue(end.getMessage().contains("64-bit address space"), end.getMessage());
        assertThrows(IllegalArgumentException.class, () -> RingLayout.of(PACKED, 4, -0x1000L, 1L << 62),
            "aligning the device area up would wrap");
        // the last bytes of the address space are fine when the ring fits
        RingLayout top = RingLayout.of(PACKED, 1, -32L, 4);
        assertEquals(24, top.totalSize());
    }

    @Test
    void queuesBuiltFromTheLayoutMeetAtItsEventOffsets() throws Exception {
        for (long layoutFeatures : new long[] {SPLIT, PACKED}) {
            long features = layoutFeatures | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX);
            long base = 0x4000_0000L;
            RingLayout layout = RingLayout.of(features, 64, base, 4096);
            try (GuestMemory memory = GuestMemory.ofShared(base, 1 << 20)) {
                MemorySegment block = memory.slice(base, layout.totalSize());
                DriverQueue driver = DriverQueue.create(features, 64, memory, layout.addresses());
                DeviceQueue device = DeviceQueue.create(features, 64, layout.addresses(), AddressSpace.identity(memory));
                DescriptorChain chain = new DescriptorChain();
                for (int i = 0; i < 3; i++) {
                    driver.add(new BufferChain(1).addWritable(base + 0x10000, 16));
                    driver.publish();
                    assertTrue(device.pop(chain));
                    device.addUsed(chain.head(), 16);
                    device.publishUsed();
                    assertTrue(driver.pollUsed() >= 0);
                }
                driver.enableInterrupts();
                device.enableNotifications();
                // both sides ask for the next event after three chains: index 3 (split), position 3 of lap 1 (packed)
                int expected = layout.packed() ? 3 | 0x8000 : 3;
                assertEquals(expected, Short.toUnsignedInt(block.get(LE16, layout.usedEventOffset())), layout.toString());
                assertEquals(expected, Short.toUnsignedInt(block.get(LE16, layout.availEventOffset())), layout.toString());
            }
        }
    }
}

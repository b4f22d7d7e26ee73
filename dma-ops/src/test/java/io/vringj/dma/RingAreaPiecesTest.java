package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.PackedRing;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingError;
import io.vringj.ring.SplitRing;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Ring areas and indirect tables that span several IOTLB entries work when every byte is
 * reachable (issue 11, item 7): QEMU sends one UPDATE per 4 KiB page, so a split ring of 1024
 * entries (a 16 KiB descriptor table) or a packed ring of 512 is always in several entries.
 *
 * <p>Two downstream views: {@code contiguous} (the pages are adjacent in one region: the pieces
 * merge into one and the fast path serves), and {@code scattered} (every page is a segment of its
 * own, as memory the IOMMU mapped from scattered pages: the fragmented path serves, and an
 * indirect table placed across a page boundary has a descriptor split over two pieces).
 */
class RingAreaPiecesTest {
    private static final long GPA = 0x1000_0000L;
    private static final long PAGE = 4096;
    private static final long MEMORY = 4L << 20;

    private final GuestMemory memory = GuestMemory.ofShared(GPA, MEMORY);

    @AfterEach
    void close() {
        memory.close();
    }

    /** Bus address = guest-physical, but each page is delivered as a segment object of its own. */
    private static final class ScatteredPages implements AddressSpace {
        private final MemorySegment[] pages;

        ScatteredPages(GuestMemory memory) {
            pages = new MemorySegment[(int) (MEMORY / PAGE)];
            for (int i = 0; i < pages.length; i++) {
                pages[i] = memory.slice(GPA + i * PAGE, PAGE);
            }
        }

        @Override
        public void translate(long busAddress, long length, Access access, TranslationSink sink) throws TranslationException {
            if (busAddress < GPA || length < 1 || busAddress + length > GPA + MEMORY) {
                throw new TranslationException(TranslationException.Kind.FAULT, busAddress, length, access, "outside");
            }
            long a = busAddress;
            long left = length;
            while (left > 0) {
                long off = (a - GPA) % PAGE;
                long n = Math.min(left, PAGE - off);
                sink.accept(pages[(int) ((a - GPA) / PAGE)], off, n);
                a += n;
                left -= n;
            }
        }
    }

    private static long features(boolean packed) {
        long f = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX)
            | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC);
        return packed ? f | VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : f;
    }

    @ParameterizedTest(name = "{0} Q={1} {2}")
    @CsvSource({
        "split, 1024, contiguous", "split, 1024, scattered", "split, 32768, contiguous", "split, 32768, scattered",
        "packed, 512, contiguous", "packed, 512, scattered", "packed, 1024, scattered", "packed, 32768, contiguous",
        "packed, 32768, scattered"})
    void aRingBehindOneIotlbEntryPerPageCarriesRequestsAcrossEveryPage(String layout, int q, String view)
        throws Exception {
        boolean packed = layout.equals("packed");
        long descSize = packed ? PackedRing.descriptorRingSize(q) : SplitRing.descriptorTableSize(q);
        long desc = GPA;
        long driverArea = GPA + align(descSize);
        long deviceArea = driverArea + align(packed ? PackedRing.EVENT_SIZE : SplitRing.availRingSize(q));
        long buffers = deviceArea + align(packed ? PackedRing.EVENT_SIZE : SplitRing.usedRingSize(q));
        // an indirect table of 3 entries starting 8 bytes before a page boundary: entry 0 is split
        long table = buffers + 3 * PAGE - 8;
        long data = buffers + 4 * PAGE;
        assertTrue(data + 4 * PAGE <= GPA + MEMORY);

        DeviceIotlb iotlb = new DeviceIotlb(view.equals("scattered") ? new ScatteredPages(memory)
            : AddressSpace.identity(memory));
        for (long p = GPA; p < data + 4 * PAGE; p += PAGE) {
            iotlb.update(p, PAGE, p, Permission.RW);
        }
        long features = features(packed);
        RingAddresses rings = new RingAddresses(desc, driverArea, deviceArea);
        DriverQueue driver = DriverQueue.create(features, q, memory, rings);
        DeviceQueue device = DeviceQueue.create(features, q, rings, new IotlbAddressSpace(iotlb));
        DescriptorChain chain = new DescriptorChain();
        MemorySegment scratch = MemorySegment.ofArray(new byte[64]);

        // enough requests to lap the ring (twice for the smaller ones), so every page of every area is
        // read and written and the packed wrap counters flip
        int requests = (q <= 1024 ? 2 * q : q) + 3;
        // at most one indirect request (every fifth) per batch: they share the one table
        int batch = Math.min(q, 5);
        int done = 0;
        while (done < requests) {
            int n = Math.min(batch, requests - done);
            int[] heads = new int[n];
            for (int i = 0; i < n; i++) {
                int r = done + i;
                long rd = data + (r % 8) * 0x100;
                BufferChain c = new BufferChain(3).addReadable(rd, 48).addWritable(data + 2 * PAGE + (r % 8) * 0x100, 32);
                if (r % 5 == 0) {
                    c.addWritable(data + 3 * PAGE, 16);
                    driver.writeIndirectTable(c, memory.slice(table, 3 * 16));
                    heads[i] = driver.addIndirect(c, table);
                } else {
                    heads[i] = driver.add(c);
                }
                memory.slice(rd, 48).set(ValueLayout.JAVA_INT_UNALIGNED, 0, r);
            }
            driver.publish();
            for (int i = 0; i < n; i++) {
                int r = done + i;
                assertEquals(DeviceQueue.POPPED, device.tryPop(chain), "request " + r);
                assertEquals(48, chain.readableLength(), "request " + r);
                assertEquals(r % 5 == 0 ? 48 : 32, chain.writableLength(), "request " + r);
                chain.copyFromReadable(0, scratch, 0, 48);
                assertEquals(r, scratch.get(ValueLayout.JAVA_INT_UNALIGNED, 0), "request " + r + " reads its own bytes");
                device.addUsed(chain.head(), 7);
            }
            device.publishUsed();
            for (int i = 0; i < n; i++) {
                assertEquals(heads[i], driver.pollUsed(), "completion " + (done + i));
                assertEquals(7, driver.usedLength());
            }
            assertEquals(DriverQueue.NONE, driver.pollUsed());
            done += n;
        }
        assertEquals(DeviceQueue.EMPTY, device.tryPop(chain));
        device.enableNotifications();
        assertEquals(0, iotlb.misses());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"split", "packed"})
    void aRingAreaPieceMappedToAMisalignedHostAddressIsAFaultNotACrash(String layout) throws Exception {
        boolean packed = layout.equals("packed");
        DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
        // the descriptor area's second page is mapped one byte off: a field there would be misaligned
        iotlb.update(GPA, PAGE, GPA, Permission.RW);
        iotlb.update(GPA + PAGE, PAGE, GPA + 0x10001, Permission.RW);
        iotlb.update(GPA + 0x8000, 0x4000, GPA + 0x8000, Permission.RW);
        int q = 512;
        RingAddresses rings = new RingAddresses(GPA, GPA + 0x8000, GPA + 0xA000);
        VirtqueueException e = assertThrows(VirtqueueException.class,
            () -> DeviceQueue.create(features(packed), q, rings, new IotlbAddressSpace(iotlb)));
        assertEquals(RingError.ADDRESS_FAULT, e.error(), e.getMessage());
        assertTrue(e.getMessage().contains("not each aligned"), e.getMessage());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"split", "packed"})
    void aBufferOverTwoEntriesIsOnePieceWhenTheirMemoryIsAdjacentAndTwoOtherwise(String layout) throws Exception {
        boolean packed = layout.equals("packed");
        DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
        iotlb.update(GPA, 0x8000, GPA, Permission.RW);
        // two pages adjacent in memory, then one mapped elsewhere
        iotlb.update(GPA + 0x10000, PAGE, GPA + 0x10000, Permission.RW);
        iotlb.update(GPA + 0x11000, PAGE, GPA + 0x11000, Permission.RW);
        iotlb.update(GPA + 0x12000, PAGE, GPA + 0x20000, Permission.RW);
        RingAddresses rings = new RingAddresses(GPA, GPA + 0x2000, GPA + 0x4000);
        DriverQueue driver = DriverQueue.create(features(packed), 16, memory, rings);
        DeviceQueue device = DeviceQueue.create(features(packed), 16, rings, new IotlbAddressSpace(iotlb));
        driver.add(new BufferChain(2).addReadable(GPA + 0x10ff0, 0x20).addWritable(GPA + 0x11ff0, 0x20));
        driver.publish();
        DescriptorChain chain = new DescriptorChain();
        assertEquals(DeviceQueue.POPPED, device.tryPop(chain));
        assertEquals(1, chain.readablePieceCount(), "adjacent memory behind two entries: one piece");
        assertEquals(2, chain.writablePieceCount(), "memory elsewhere behind the second entry: two pieces");
        assertEquals(0x20, chain.pieceLength(0));
    }

    private static long align(long size) {
        return (size + PAGE - 1) & ~(PAGE - 1);
    }
}

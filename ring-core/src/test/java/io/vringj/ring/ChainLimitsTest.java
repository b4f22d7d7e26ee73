package io.vringj.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import io.vringj.testing.RawPackedRing;
import io.vringj.testing.RawSplitRing;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/**
 * The limits on one chain, each tested on both sides: exactly at the limit accepted, one past it
 * rejected with its {@link RingError}. The sources of each limit are named at
 * {@link DeviceQueue#MAX_CHAIN_PIECES} and {@link DeviceQueue#MAX_INDIRECT_ENTRIES}.
 */
class ChainLimitsTest {
    private static final long BUF = RawSplitRing.BUFFERS;
    private static final int MAX_PIECES = DeviceQueue.MAX_CHAIN_PIECES;
    private static final int MAX_ENTRIES = DeviceQueue.MAX_INDIRECT_ENTRIES;
    /** A table of MAX_ENTRIES entries is exactly 1 MiB: it fills RawSplitRing's SECURE region. */
    private static final long BIG_TABLE = RawSplitRing.SECURE_BASE;

    private static VirtqueueException popFails(DeviceQueue device, RingError expected) {
        VirtqueueException e = assertThrows(VirtqueueException.class, () -> device.pop(new DescriptorChain()));
        assertEquals(expected, e.error(), e.getMessage());
        assertTrue(device.isBroken());
        return e;
    }

    private static DescriptorChain pops(DeviceQueue device) throws VirtqueueException {
        DescriptorChain chain = new DescriptorChain();
        assertTrue(device.pop(chain));
        assertFalse(device.isBroken());
        return chain;
    }

    /**
     * Hands buffers out in {@code grain}-byte pieces, as an IOTLB of tiny entries would, each piece
     * behind a segment of its own (as entries backed by separate mappings are), so adjacent pieces
     * do not merge into one; ring areas and tables (below {@link RawSplitRing#BUFFERS}) stay whole.
     */
    private static AddressSpace inPiecesOf(GuestMemory memory, long grain) {
        AddressSpace identity = AddressSpace.identity(memory);
        return new AddressSpace() {
            @Override
            public void translate(long busAddress, long length, Access access, TranslationSink sink)
                throws TranslationException {
                if (busAddress < BUF) {
                    identity.translate(busAddress, length, access, sink);
                    return;
                }
                identity.translate(busAddress, length, access, (segment, offset, len) -> {
                    for (long at = 0; at < len; at += grain) {
                        // a view of its own per piece: the chain merges adjacent pieces of one segment only
                        sink.accept(segment.asSlice(0), offset + at, Math.min(grain, len - at));
                    }
                });
            }

            @Override
            public MemorySegment translate(long busAddress, long length, Access access) throws TranslationException {
                return identity.translate(busAddress, length, access);
            }
        };
    }

    // --- the direct part of a chain: at most Q descriptors [virtio 2.7.5] ---

    @Test
    void splitChainOfExactlyQueueSizeIsAcceptedAndOneMoreLoops() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(0, BUF, 8, SplitRing.DESC_F_NEXT, 1).desc(1, BUF, 8, SplitRing.DESC_F_NEXT, 2)
                .desc(2, BUF, 8, SplitRing.DESC_F_NEXT, 3).desc(3, BUF, 8, 0, 0).offer(0);
            assertEquals(4, pops(ring.device()).descriptorCount());
        }
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            // the fifth visit can only be a repeat: 3 -> 0
            ring.desc(0, BUF, 8, SplitRing.DESC_F_NEXT, 1).desc(1, BUF, 8, SplitRing.DESC_F_NEXT, 2)
                .desc(2, BUF, 8, SplitRing.DESC_F_NEXT, 3).desc(3, BUF, 8, SplitRing.DESC_F_NEXT, 0).offer(0);
            popFails(ring.device(), RingError.CHAIN_LOOP);
        }
    }

    @Test
    void packedChainOfExactlyQueueSizeIsAcceptedAndOneMoreIsNot() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4)) {
            ring.avail(BUF, 8, 0, PackedRing.DESC_F_NEXT).avail(BUF, 8, 0, PackedRing.DESC_F_NEXT)
                .avail(BUF, 8, 0, PackedRing.DESC_F_NEXT).avail(BUF, 8, 3, 0);
            DescriptorChain chain = pops(ring.device());
            assertEquals(4, chain.descriptorCount());
            assertEquals(3, chain.head());
        }
        try (RawPackedRing ring = new RawPackedRing(4)) {
            for (int i = 0; i < 4; i++) {
                ring.avail(BUF, 8, 0, PackedRing.DESC_F_NEXT);
            }
            popFails(ring.device(), RingError.CHAIN_LOOP);
        }
    }

    // --- indirect tables: longer than Q is accepted, up to MAX_INDIRECT_ENTRIES ---

    @Test
    void splitIndirectTableLongerThanQueueSizeIsAccepted() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.INDIRECT_DESC)) {
            for (int i = 0; i < 9; i++) {
                ring.indirect(i, BUF + i, 1, i < 8 ? SplitRing.DESC_F_NEXT : 0, i + 1);
            }
            ring.desc(0, RawSplitRing.INDIRECT, 9 * 16, SplitRing.DESC_F_INDIRECT, 0).offer(0);
            DescriptorChain chain = pops(ring.device());
            assertEquals(9, chain.readableLength());
            assertEquals(10, chain.descriptorCount(), "the INDIRECT descriptor and nine entries");
        }
    }

    @Test
    void packedIndirectTableLongerThanQueueSizeIsAccepted() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4, VirtioFeatures.INDIRECT_DESC)) {
            for (int i = 0; i < 9; i++) {
                ring.indirect(i, BUF + i, 1, 0);
            }
            ring.avail(RawSplitRing.INDIRECT, 9 * 16, 2, PackedRing.DESC_F_INDIRECT);
            assertEquals(9, pops(ring.device()).readableLength());
        }
    }

    @Test
    void splitIndirectTableOfMaxEntriesIsAcceptedAndOneMoreIsNot() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.INDIRECT_DESC)) {
            // a 65536-entry table whose chain uses its first entry only, as vhost allows
            ring.table(BIG_TABLE, 0, BUF, 8, 0, 0);
            ring.desc(0, BIG_TABLE, 16L * MAX_ENTRIES, SplitRing.DESC_F_INDIRECT, 0).offer(0);
            assertEquals(8, pops(ring.device()).readableLength());
        }
        try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.INDIRECT_DESC)) {
            ring.table(BIG_TABLE, 0, BUF, 8, 0, 0);
            ring.desc(0, BIG_TABLE, 16L * (MAX_ENTRIES + 1), SplitRing.DESC_F_INDIRECT, 0).offer(0);
            VirtqueueException e = popFails(ring.device(), RingError.INDIRECT_TOO_LARGE);
            assertTrue(e.getMessage().contains("65537 entries"), e.getMessage());
        }
    }

    @Test
    void packedIndirectTableOfMaxEntriesPassesTheTableRuleAndOneMoreIsNot() throws Exception {
        try (RawPackedRing ring = new RawPackedRing(4, VirtioFeatures.INDIRECT_DESC)) {
            // a packed table is walked to its end, so 65536 entries pass the table rule and then meet the piece limit
            for (int i = 0; i <= MAX_PIECES; i++) {
                ring.table(BIG_TABLE, i, BUF, 1, 0);
            }
            ring.avail(BIG_TABLE, 16L * MAX_ENTRIES, 0, PackedRing.DESC_F_INDIRECT);
            popFails(ring.device(), RingError.CHAIN_TOO_MANY_PIECES);
        }
        try (RawPackedRing ring = new RawPackedRing(4, VirtioFeatures.INDIRECT_DESC)) {
            ring.table(BIG_TABLE, 0, BUF, 1, 0);
            ring.avail(BIG_TABLE, 16L * (MAX_ENTRIES + 1), 0, PackedRing.DESC_F_INDIRECT);
            popFails(ring.device(), RingError.INDIRECT_TOO_LARGE);
        }
    }

    // --- pieces: at most MAX_CHAIN_PIECES per chain, as QEMU's VIRTQUEUE_MAX_SIZE ---

    @Test
    void splitChainOfMaxPiecesIsAcceptedAndOneMoreIsNot() throws Exception {
        for (int entries : new int[] {MAX_PIECES, MAX_PIECES + 1}) {
            try (RawSplitRing ring = RawSplitRing.of(4, VirtioFeatures.INDIRECT_DESC)) {
                for (int i = 0; i < entries; i++) {
                    ring.indirect(i, BUF + i, 1, i < entries - 1 ? SplitRing.DESC_F_NEXT : 0, i + 1);
                }
                ring.desc(1, RawSplitRing.INDIRECT, 16L * entries, SplitRing.DESC_F_INDIRECT, 0).offer(1);
                if (entries == MAX_PIECES) {
                    DescriptorChain chain = pops(ring.device());
                    assertEquals(MAX_PIECES, chain.pieceCount());
                    assertEquals(MAX_PIECES, chain.readableLength());
                } else {
                    popFails(ring.device(), RingError.CHAIN_TOO_MANY_PIECES);
                }
            }
        }
    }

    @Test
    void packedChainOfMaxPiecesIsAcceptedAndOneMoreIsNot() throws Exception {
        for (int entries : new int[] {MAX_PIECES, MAX_PIECES + 1}) {
            try (RawPackedRing ring = new RawPackedRing(4, VirtioFeatures.INDIRECT_DESC)) {
                for (int i = 0; i < entries; i++) {
                    ring.indirect(i, BUF + i, 1, i < 3 ? 0 : PackedRing.DESC_F_WRITE);
                }
                ring.avail(RawSplitRing.INDIRECT, 16L * entries, 1, PackedRing.DESC_F_INDIRECT);
                if (entries == MAX_PIECES) {
                    DescriptorChain chain = pops(ring.device());
                    assertEquals(MAX_PIECES, chain.pieceCount());
                    assertEquals(MAX_PIECES - 3, chain.writablePieceCount());
                } else {
                    popFails(ring.device(), RingError.CHAIN_TOO_MANY_PIECES);
                }
            }
        }
    }

    @Test
    void piecesOfOneBufferCountTowardsTheLimit() throws Exception {
        for (long len : new long[] {8L * MAX_PIECES, 8L * MAX_PIECES + 1}) {
            try (RawSplitRing ring = RawSplitRing.of(4)) {
                ring.desc(0, BUF, len, SplitRing.DESC_F_WRITE, 0).offer(0);
                DeviceQueue device = ring.device(inPiecesOf(ring.memory, 8));
                if (len == 8L * MAX_PIECES) {
                    DescriptorChain chain = pops(device);
                    assertEquals(MAX_PIECES, chain.writablePieceCount());
                    assertEquals(len, chain.writableLength());
                } else {
                    VirtqueueException e = popFails(device, RingError.CHAIN_TOO_MANY_PIECES);
                    assertTrue(e.getMessage().contains("descriptor 0 of head 0"), e.getMessage());
                }
            }
        }
    }

    @Test
    void piecesOfSeveralDescriptorsAddUp() throws Exception {
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            // 1000 + 25 pieces: the second descriptor crosses the limit
            ring.desc(0, BUF, 8L * 1000, SplitRing.DESC_F_NEXT, 1).desc(1, BUF + 0x4000, 8L * 25, 0, 0).offer(0);
            popFails(ring.device(inPiecesOf(ring.memory, 8)), RingError.CHAIN_TOO_MANY_PIECES);
        }
        try (RawSplitRing ring = RawSplitRing.of(4)) {
            ring.desc(0, BUF, 8L * 1000, SplitRing.DESC_F_NEXT, 1).desc(1, BUF + 0x4000, 8L * 24, 0, 0).offer(0);
            assertEquals(MAX_PIECES, pops(ring.device(inPiecesOf(ring.memory, 8))).pieceCount());
        }
    }

    // --- the driver keeps to the same limit ---

    @Test
    void driverAddsChainOfMaxBuffersAndRefusesOneMore() throws Exception {
        for (boolean packed : new boolean[] {false, true}) {
            try (RawSplitRing ring = packed
                    ? RawSplitRing.of(MAX_PIECES, VirtioFeatures.RING_PACKED) : RawSplitRing.of(MAX_PIECES)) {
                DriverQueue driver = ring.driver();
                BufferChain max = new BufferChain(MAX_PIECES + 1);
                for (int i = 0; i < MAX_PIECES; i++) {
                    max.addReadable(BUF + i, 1);
                }
                assertTrue(driver.add(max) >= 0);
                assertTrue(driver.publish());
                assertEquals(MAX_PIECES, pops(ring.device()).pieceCount(), "the device takes what the driver made");
                max.addReadable(BUF, 1);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> driver.add(max));
                assertTrue(e.getMessage().contains("chain of 1025 buffers"), e.getMessage());
            }
        }
    }
}

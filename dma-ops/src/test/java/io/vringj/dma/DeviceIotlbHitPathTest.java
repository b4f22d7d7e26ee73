package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.TranslationException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The IOTLB's hit path: a range inside the hot entry (the one last inserted) or inside the entry its
 * page's hint names is served after one range check. Both are only where to look first, so every
 * rule of the full lookup holds on them: an invalidation or an overlapping update takes effect at
 * once, the permission is checked, a range past the entry's edge is handed out piece by piece (or
 * misses where nothing maps it), and an entry that has moved or gone is never served from its old
 * place. Each test first translates twice so that the hit path serves the entry, then changes
 * something under it.
 */
class DeviceIotlbHitPathTest {
    private static final long GPA = 0x4000_0000L;

    private final GuestMemory memory = GuestMemory.ofShared(GPA, 1 << 20);
    private final DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
    private final List<IotlbMessage> sent = new ArrayList<>();

    DeviceIotlbHitPathTest() {
        iotlb.setMessageSink(sent::add);
    }

    @AfterEach
    void close() {
        memory.close();
    }

    /** The pieces of a translation as {native address, length} pairs; a miss throws. */
    private long[][] pieces(long iova, long length, Access access) throws TranslationException {
        List<long[]> out = new ArrayList<>();
        iotlb.translate(iova, length, access, (seg, off, len) -> out.add(new long[] {seg.address() + off, len}));
        return out.toArray(new long[0][]);
    }

    private long nativeOf(long gpa) {
        return memory.slice(gpa, 1).address();
    }

    /** Translates twice: the first look sets the hint, the second is served from it. */
    private void hitTwice(long iova, long length, Access access, long expectedGpa) throws TranslationException {
        for (int k = 0; k < 2; k++) {
            assertArrayEquals(new long[][] {{nativeOf(expectedGpa), length}}, pieces(iova, length, access));
        }
    }

    @Test
    void anInvalidateOfTheHintedEntryMakesTheNextLookupAMiss() throws Exception {
        iotlb.update(0x10000, 0x1000, GPA + 0x5000, Permission.RW);
        hitTwice(0x10100, 64, Access.READ, GPA + 0x5100);
        iotlb.invalidate(0x10000, 0x1000);
        assertEquals(64, iotlb.tryTranslate(0x10100, 64, Access.READ, (seg, off, n) -> { }),
            "the invalidated entry is not served from the hint");
        assertEquals(List.of(IotlbMessage.miss(0x10100, Permission.RO)), sent);
    }

    @Test
    void aHintNamingASlotPastTheLiveEntriesIsNotServed() throws Exception {
        // B is the last entry (index 1); removing it leaves its old values in slot 1 of the arrays
        iotlb.update(0x10000, 0x1000, GPA, Permission.RW);
        iotlb.update(0x20000, 0x1000, GPA + 0x8000, Permission.RW);
        hitTwice(0x20040, 8, Access.WRITE, GPA + 0x8040);
        iotlb.invalidate(0x20000, 0x1000);
        assertEquals(1, iotlb.size());
        assertEquals(8, iotlb.tryTranslate(0x20040, 8, Access.WRITE, (seg, off, n) -> { }),
            "a removed entry's leftovers past the live entries are a miss, not a hit");
        hitTwice(0x10040, 8, Access.WRITE, GPA + 0x40);
    }

    @Test
    void anUpdateOverTheHintedEntryTakesEffectAtOnce() throws Exception {
        iotlb.update(0x10000, 0x2000, GPA + 0x4000, Permission.RW);
        hitTwice(0x11000, 16, Access.READ, GPA + 0x5000);
        // the second page of the entry now maps elsewhere; the first keeps its old mapping
        iotlb.update(0x11000, 0x1000, GPA + 0x9000, Permission.RW);
        hitTwice(0x11000, 16, Access.READ, GPA + 0x9000);
        hitTwice(0x10ff0, 16, Access.READ, GPA + 0x4ff0);
        // the whole entry replaced in place: same index, new translation
        iotlb.update(0x10000, 0x1000, GPA + 0xC000, Permission.RW);
        hitTwice(0x10ff0, 16, Access.READ, GPA + 0xCff0);
    }

    @Test
    void aRangePastTheEdgeOfTheHintedEntryIsHandedOutPieceByPieceOrMisses() throws Exception {
        iotlb.update(0x10000, 0x1000, GPA + 0x5000, Permission.RW);
        iotlb.update(0x11000, 0x1000, GPA + 0x9000, Permission.RW);
        hitTwice(0x10f00, 0x100, Access.READ, GPA + 0x5f00);
        assertArrayEquals(new long[][] {{nativeOf(GPA + 0x5ff0), 0x10}, {nativeOf(GPA + 0x9000), 0x10}},
            pieces(0x10ff0, 0x20, Access.READ), "one piece per entry crossed");
        hitTwice(0x11f00, 0x100, Access.READ, GPA + 0x9f00);
        // one byte past the second entry has no entry: the bytes from 0x12000 on are left
        assertEquals(1, iotlb.tryTranslate(0x11f00, 0x101, Access.READ, (seg, off, n) -> { }));
        assertEquals(List.of(IotlbMessage.miss(0x12000, Permission.RO)), sent);
    }

    @Test
    void theHintedEntryStillChecksThePermission() throws Exception {
        iotlb.update(0x10000, 0x1000, GPA, Permission.RO);
        hitTwice(0x10010, 8, Access.READ, GPA + 0x10);
        TranslationException fault = assertThrows(TranslationException.class, () -> pieces(0x10010, 8, Access.WRITE));
        assertEquals(TranslationException.Kind.FAULT, fault.kind());
        assertEquals(List.of(IotlbMessage.accessFail(0x10010, Permission.WO)), sent);
        // a write-only entry refuses a read the same way
        iotlb.update(0x10000, 0x1000, GPA, Permission.WO);
        hitTwice(0x10010, 8, Access.WRITE, GPA + 0x10);
        assertEquals(TranslationException.Kind.FAULT,
            assertThrows(TranslationException.class, () -> pieces(0x10010, 8, Access.READ)).kind());
    }

    @Test
    void anEntryMovedToAnotherIndexIsFoundByItsAddressNotItsOldIndex() throws Exception {
        iotlb.update(0x30000, 0x1000, GPA + 0x3000, Permission.RW);
        hitTwice(0x30020, 8, Access.READ, GPA + 0x3020);
        // entries inserted before it shift it to index 2; the hint still names index 0
        iotlb.update(0x10000, 0x1000, GPA + 0x1000, Permission.RW);
        iotlb.update(0x20000, 0x1000, GPA + 0x2000, Permission.RW);
        hitTwice(0x30020, 8, Access.READ, GPA + 0x3020);
        // and removing the entries before it shifts it back
        iotlb.invalidate(0x10000, 0x20000);
        hitTwice(0x30020, 8, Access.READ, GPA + 0x3020);
    }

    @Test
    void pagesSharingAHintSlotTakeTurnsWithoutMixingTheirEntries() throws Exception {
        long stride = (long) DeviceIotlb.HINT_SLOTS * 0x1000;
        iotlb.update(0x10000, 0x1000, GPA + 0x1000, Permission.RW);
        iotlb.update(0x10000 + stride, 0x1000, GPA + 0x7000, Permission.RO);
        for (int k = 0; k < 3; k++) {
            hitTwice(0x10080, 8, Access.WRITE, GPA + 0x1080);
            hitTwice(0x10080 + stride, 8, Access.READ, GPA + 0x7080);
        }
        assertEquals(TranslationException.Kind.FAULT,
            assertThrows(TranslationException.class, () -> pieces(0x10080 + stride, 8, Access.WRITE)).kind());
    }

    @Test
    void anInvalidateAllLeavesNothingToHit() throws Exception {
        iotlb.update(0x10000, 0x1000, GPA, Permission.RW);
        iotlb.update(0x20000, 0x1000, GPA + 0x2000, Permission.RW);
        hitTwice(0x10010, 8, Access.READ, GPA + 0x10);
        hitTwice(0x20010, 8, Access.READ, GPA + 0x2010);
        iotlb.invalidateAll();
        assertEquals(8, iotlb.tryTranslate(0x10010, 8, Access.READ, (seg, off, n) -> { }));
        assertEquals(8, iotlb.tryTranslate(0x20010, 8, Access.READ, (seg, off, n) -> { }));
    }

    @Test
    void aBatchThatUpdatesThenInvalidatesARangeLeavesNothingToHit() throws Exception {
        iotlb.update(0x20000, 0x1000, GPA + 0x2000, Permission.RW);
        hitTwice(0x20010, 8, Access.READ, GPA + 0x2010);
        // the UPDATE makes its entry the hot one; the INVALIDATE after it in the batch removes it
        IotlbMessage[] batch = {IotlbMessage.update(0x10000, 0x1000, GPA, Permission.RW),
            IotlbMessage.invalidate(0x10000, 0x1000)};
        iotlb.applyBatch(batch, batch.length);
        assertEquals(8, iotlb.tryTranslate(0x10010, 8, Access.READ, (seg, off, n) -> { }));
        hitTwice(0x20010, 8, Access.READ, GPA + 0x2010);
    }

    @Test
    void theHotEntryStaysCorrectAcrossChangesElsewhere() throws Exception {
        iotlb.update(0x10000, 0x1000, GPA + 0x1000, Permission.RW);
        iotlb.update(0x30000, 0x1000, GPA + 0x3000, Permission.RW);
        hitTwice(0x30010, 8, Access.WRITE, GPA + 0x3010);
        hitTwice(0x10010, 8, Access.WRITE, GPA + 0x1010);
        iotlb.invalidate(0x10000, 0x1000);
        hitTwice(0x30010, 8, Access.WRITE, GPA + 0x3010);
        assertEquals(8, iotlb.tryTranslate(0x10010, 8, Access.WRITE, (seg, off, n) -> { }));
        // an UPDATE that cuts the hot entry's tail off: the head keeps its mapping, the tail is new
        iotlb.update(0x30800, 0x800, GPA + 0x9000, Permission.RO);
        iotlb.update(0x50000, 0x1000, GPA + 0x5000, Permission.RW);
        hitTwice(0x307f8, 8, Access.WRITE, GPA + 0x37f8);
        hitTwice(0x30800, 8, Access.READ, GPA + 0x9000);
        assertEquals(TranslationException.Kind.FAULT,
            assertThrows(TranslationException.class, () -> pieces(0x30800, 8, Access.WRITE)).kind());
    }

    @Test
    void badLengthsFaultEvenInsideTheHintedEntry() throws Exception {
        iotlb.update(0x10000, 0x1000, GPA, Permission.RW);
        hitTwice(0x10000, 8, Access.READ, GPA);
        for (long length : new long[] {0, -1, Long.MIN_VALUE}) {
            TranslationException e = assertThrows(TranslationException.class,
                () -> iotlb.tryTranslate(0x10000, length, Access.READ, (seg, off, n) -> { }));
            assertEquals(TranslationException.Kind.FAULT, e.kind(), "length " + length);
        }
    }
}

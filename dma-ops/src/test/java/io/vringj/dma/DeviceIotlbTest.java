package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.TranslationException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class DeviceIotlbTest {
    private static final long GPA = 0x4000_0000L;

    private final GuestMemory memory = GuestMemory.ofShared(GPA, 1 << 20);
    private final DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
    private final List<IotlbMessage> sent = new ArrayList<>();

    DeviceIotlbTest() {
        iotlb.setMessageSink(sent::add);
    }

    @AfterEach
    void close() {
        memory.close();
    }

    private List<long[]> pieces(long iova, long length, Access access) throws TranslationException {
        List<long[]> out = new ArrayList<>();
        iotlb.translate(iova, length, access, (seg, off, len) -> out.add(new long[] {seg.address() + off, len}));
        return out;
    }

    private long nativeOf(long gpa) {
        return memory.slice(gpa, 1).address();
    }

    @Test
    void aBufferSpanningTwoEntriesGivesOnePiecePerEntry() throws Exception {
        iotlb.update(0x10000, 0x1000, GPA + 0x5000, Permission.RW);
        iotlb.update(0x11000, 0x1000, GPA + 0x9000, Permission.RO);
        List<long[]> p = pieces(0x10ff0, 0x20, Access.READ);
        assertEquals(2, p.size());
        assertEquals(nativeOf(GPA + 0x5ff0), p.get(0)[0]);
        assertEquals(0x10, p.get(0)[1]);
        assertEquals(nativeOf(GPA + 0x9000), p.get(1)[0]);
        assertEquals(0x10, p.get(1)[1]);
    }

    @Test
    void noCoveringEntryIsAMissAndWrongPermissionIsAFaultNotAMiss() throws Exception {
        iotlb.update(0x10000, 0x1000, GPA, Permission.RO);
        TranslationException miss = assertThrows(TranslationException.class, () -> pieces(0x10800, 0x1000, Access.READ));
        assertEquals(TranslationException.Kind.MISS, miss.kind());
        assertEquals(0x11000, miss.busAddress(), "the first address without an entry");
        TranslationException fault = assertThrows(TranslationException.class, () -> pieces(0x10000, 8, Access.WRITE));
        assertEquals(TranslationException.Kind.FAULT, fault.kind());
        assertEquals(List.of(IotlbMessage.miss(0x11000, Permission.RO), IotlbMessage.accessFail(0x10000, Permission.WO)),
            sent);
    }

    @Test
    void sendsOneMissPerPendingPageAndAgainOnlyAfterAnUpdateAnsweredIt() throws Exception {
        for (int i = 0; i < 3; i++) {
            assertThrows(TranslationException.class, () -> pieces(0x20010, 8, Access.READ));
            assertThrows(TranslationException.class, () -> pieces(0x20800, 8, Access.READ));
        }
        assertEquals(1, sent.size(), "no duplicate MISS for a pending page: " + sent);
        assertEquals(1, iotlb.pendingMisses());
        iotlb.update(0x20000, 0x1000, GPA, Permission.RO);
        assertEquals(0, iotlb.pendingMisses());
        iotlb.invalidate(0x20000, 0x1000);
        assertThrows(TranslationException.class, () -> pieces(0x20010, 8, Access.READ));
        assertEquals(2, sent.size(), "a new miss after the answer is sent again");
    }

    @Test
    void aFloodOfUnansweredMissesKeepsThePendingTableBoundedAndEachMissOneProbe() throws Exception {
        int pages = 100_000;
        for (int i = 0; i < pages; i++) {
            long iova = 0x1_0000_0000L + (long) i * 0x1000;
            assertEquals(8, iotlb.tryTranslate(iova, 8, Access.READ, (seg, off, n) -> { }));
            assertTrue(iotlb.pendingMisses() <= DeviceIotlb.PENDING_SLOTS, "pending table grew past its bound at " + i);
            // the miss just sent is remembered, so the same page again sends nothing
            assertTrue(iotlb.missPending(iova, Access.READ));
        }
        assertEquals(pages, sent.size(), "one MISS per distinct page");
        assertTrue(iotlb.pendingMisses() <= DeviceIotlb.PENDING_SLOTS);
        assertTrue(iotlb.pendingMisses() > DeviceIotlb.PENDING_SLOTS / 2, "the table is used, not cleared");
        long last = 0x1_0000_0000L + (long) (pages - 1) * 0x1000;
        iotlb.tryTranslate(last + 0x10, 8, Access.READ, (seg, off, n) -> { });
        assertEquals(pages, sent.size(), "a miss on a pending page sends nothing");
        // a WRITE on a page pending for READ is a new question
        iotlb.tryTranslate(last, 8, Access.WRITE, (seg, off, n) -> { });
        assertEquals(pages + 1, sent.size());
        // one UPDATE over the whole range answers every pending page
        iotlb.update(0x1_0000_0000L, (long) pages * 0x1000, GPA, Permission.RW);
        assertEquals(0, iotlb.pendingMisses());
        assertFalse(iotlb.missPending(last, Access.READ));
    }

    @Test
    void anUpdateAnswersOnlyThePendingPagesItTouches() throws Exception {
        iotlb.tryTranslate(0x20000, 8, Access.READ, (seg, off, n) -> { });
        iotlb.tryTranslate(0x30000, 8, Access.READ, (seg, off, n) -> { });
        assertEquals(2, iotlb.pendingMisses());
        iotlb.update(0x20800, 0x10, GPA, Permission.RW);
        assertFalse(iotlb.missPending(0x20000, Access.READ), "an UPDATE inside the page answers it");
        assertTrue(iotlb.missPending(0x30000, Access.READ), "another page is still waiting");
        assertEquals(1, iotlb.pendingMisses());
    }

    @Test
    void aFullIotlbEvictsItsOldestEntry() throws Exception {
        DeviceIotlb small = new DeviceIotlb(AddressSpace.identity(memory), 4);
        for (int i = 0; i < 5; i++) {
            small.update(0x1000L * (10 - i), 0x1000, GPA, Permission.RW);
        }
        assertEquals(4, small.size());
        assertEquals(1, small.evictions());
        assertFalse(small.covers(0xA000, 1, Access.READ), "the first entry added was evicted");
        assertTrue(small.covers(0x6000, 0x4000, Access.WRITE));
        assertEquals(DeviceIotlb.DEFAULT_CAPACITY, iotlb.capacity());
    }

    @Test
    void zeroSizeUpdateAndInvalidateAreRefusedAndChangeNothing() {
        iotlb.update(0x1000, 0x1000, GPA, Permission.RW);
        long epoch = iotlb.epoch();
        IllegalArgumentException u = assertThrows(IllegalArgumentException.class,
            () -> iotlb.update(0x5000, 0, GPA, Permission.RW));
        assertTrue(u.getMessage().contains("size 0"), u.getMessage());
        assertThrows(IllegalArgumentException.class, () -> iotlb.invalidate(0x1000, 0));
        assertEquals(1, iotlb.size());
        assertEquals(epoch, iotlb.epoch());
    }

    @Test
    void everyUpdateAndInvalidateMovesTheEpoch() {
        long e0 = iotlb.epoch();
        iotlb.update(0x1000, 0x1000, GPA, Permission.RW);
        long e1 = iotlb.epoch();
        iotlb.invalidate(0x8000, 0x1000);
        long e2 = iotlb.epoch();
        assertTrue(e0 != e1 && e1 != e2);
    }

    @Test
    void theInvalidationEpochMovesOnlyWhenAnEntryIsRemovedOrChanged() {
        long e0 = iotlb.invalidationEpoch();
        iotlb.update(0x1000, 0x1000, GPA, Permission.RW);
        iotlb.update(0x3000, 0x2000, GPA, Permission.RW);
        assertEquals(e0, iotlb.invalidationEpoch(), "UPDATEs into empty IOVA space change no entry");
        iotlb.invalidate(0x8000, 0x1000);
        assertEquals(e0, iotlb.invalidationEpoch(), "an INVALIDATE that removed nothing");
        iotlb.update(0x4000, 0x1000, GPA + 0x8000, Permission.RO);
        long e1 = iotlb.invalidationEpoch();
        assertTrue(e1 != e0, "an UPDATE that trimmed an entry");
        iotlb.invalidate(0x1000, 0x1000);
        assertTrue(iotlb.invalidationEpoch() != e1, "an INVALIDATE that removed an entry");
    }

    @Test
    void unchangedSinceTellsWhetherAnyStepSinceTouchedTheRange() {
        iotlb.update(0x1000, 0x1000, GPA, Permission.RW); // "ring"
        iotlb.update(0x10000, 0x4000, GPA + 0x10000, Permission.RW); // "buffers"
        long since = iotlb.invalidationEpoch();
        iotlb.invalidate(0x11000, 0x1000);
        iotlb.update(0x20000, 0x1000, GPA, Permission.RW);
        assertTrue(iotlb.unchangedSince(since, 0x1000, 0x1000), "the steps since touched only the buffers");
        assertFalse(iotlb.unchangedSince(since, 0x13000, 0x10), "the INVALIDATE removed the whole buffer entry");
        assertFalse(iotlb.unchangedSince(since, 0xF000, 0x1001), "a range reaching into a removed entry by one byte");
        assertTrue(iotlb.unchangedSince(since, 0xF000, 0x1000), "a range ending just before it");
        long now = iotlb.invalidationEpoch();
        assertTrue(iotlb.unchangedSince(now, 0x13000, 0x10), "nothing since now");
        iotlb.update(0x1800, 0x100, GPA + 0x800, Permission.RO);
        assertFalse(iotlb.unchangedSince(now, 0x1000, 0x10), "an UPDATE that split the ring's entry");
        assertTrue(iotlb.unchangedSince(now, 0x30000, 0x1000), "far from the split");
        assertFalse(iotlb.unchangedSince(iotlb.invalidationEpoch() + 1, 0x30000, 0x1000),
            "an epoch not reached yet is not vouched for");
        assertFalse(iotlb.unchangedSince(now, 0x30000, 0), "an empty range is not vouched for");
    }

    @Test
    void unchangedSinceGivesUpWhenTheChangeLogNoLongerReachesBack() {
        iotlb.update(0x1000, 0x1000, GPA, Permission.RW);
        long since = iotlb.invalidationEpoch();
        for (int i = 0; i < DeviceIotlb.CHANGE_LOG; i++) {
            iotlb.update(0x10000, 0x1000, GPA, Permission.RW);
            iotlb.invalidate(0x10000, 0x1000);
        }
        assertEquals(since + DeviceIotlb.CHANGE_LOG, iotlb.invalidationEpoch());
        assertTrue(iotlb.unchangedSince(since, 0x1000, 0x1000), "the log still holds every step");
        iotlb.update(0x10000, 0x1000, GPA, Permission.RW);
        iotlb.invalidate(0x10000, 0x1000);
        assertFalse(iotlb.unchangedSince(since, 0x1000, 0x1000), "one step more than the log holds");
        assertTrue(iotlb.unchangedSince(since + 1, 0x1000, 0x1000));
    }

    @Test
    void anEvictionAndAnInvalidateAllAreChangesTheLogReports() {
        DeviceIotlb small = new DeviceIotlb(AddressSpace.identity(memory), 2);
        small.update(0x1000, 0x1000, GPA, Permission.RW);
        small.update(0x2000, 0x1000, GPA, Permission.RW);
        long since = small.invalidationEpoch();
        small.update(0x9000, 0x1000, GPA, Permission.RW);
        assertFalse(small.unchangedSince(since, 0x1000, 0x10), "the oldest entry was evicted");
        assertTrue(small.unchangedSince(since, 0x2000, 0x10), "the other one stayed");
        long before = small.invalidationEpoch();
        small.invalidateAll();
        assertFalse(small.unchangedSince(before, 0x2000, 0x10));
        assertFalse(small.unchangedSince(before, 0x9000, 0x10));
    }

    @Test
    void anInvalidateOfManyEntriesRemovesExactlyThoseItOverlaps() throws TranslationException {
        for (int i = 0; i < 300; i++) {
            iotlb.update(0x10_0000 + 0x1000L * i, 0x1000, GPA + 0x1000L * (i % 16), Permission.RW);
        }
        iotlb.update(0x1000, 0x1000, GPA, Permission.RW);
        // pages 10..265 go; the INVALIDATE starts and ends inside entries, which go whole
        assertEquals(256, iotlb.invalidate(0x10_0000 + 0xA800, 0xFF000));
        assertEquals(300 + 1 - 256, iotlb.size());
        assertTrue(iotlb.covers(0x1000, 0x1000, Access.READ));
        assertTrue(iotlb.covers(0x10_0000, 10 * 0x1000, Access.READ), "the entries before are kept");
        assertFalse(iotlb.covers(0x10_0000 + 0xA000, 1, Access.READ));
        assertFalse(iotlb.covers(0x10_0000 + 0x109000, 1, Access.READ));
        assertTrue(iotlb.covers(0x10_0000 + 0x10A000, 34 * 0x1000, Access.READ), "the entries after are kept");
        assertEquals(memory.slice(GPA + 0x1000L * (266 % 16), 1).address(),
            pieces(0x10_0000 + 0x10A000, 0x10, Access.READ).get(0)[0], "an entry after kept its address");
    }

    @Test
    void invalidateRemovesEveryOverlappingEntryWhole() {
        iotlb.update(0x1000, 0x2000, GPA, Permission.RW);
        iotlb.update(0x3000, 0x1000, GPA, Permission.RW);
        iotlb.update(0x8000, 0x1000, GPA, Permission.RW);
        assertEquals(2, iotlb.invalidate(0x2fff, 2));
        assertFalse(iotlb.covers(0x1000, 1, Access.READ));
        assertTrue(iotlb.covers(0x8000, 1, Access.READ));
        iotlb.invalidateAll();
        assertEquals(0, iotlb.size());
    }

    @Test
    void anUpdateReplacesOnlyTheOverlappedPartOfAnEntry() throws Exception {
        iotlb.update(0x1000, 0x2000, GPA, Permission.RO);
        iotlb.update(0x2000, 0x1000, GPA + 0x7000, Permission.WO);
        assertEquals(2, iotlb.size());
        assertEquals(nativeOf(GPA + 0x7010), pieces(0x2010, 1, Access.WRITE).get(0)[0]);
        // the head of the old entry, which the UPDATE does not cover, still translates as before
        assertEquals(nativeOf(GPA + 0x10), pieces(0x1010, 1, Access.READ).get(0)[0]);
        assertEquals(0, iotlb.misses());
    }

    @Test
    void anUpdateInsideAnEntrySplitsIt() throws Exception {
        iotlb.update(0x1000, 0x3000, GPA, Permission.RW);
        iotlb.update(0x2000, 0x1000, GPA + 0x7000, Permission.RO);
        assertEquals(3, iotlb.size());
        assertEquals(nativeOf(GPA + 0x0ff0), pieces(0x1ff0, 1, Access.WRITE).get(0)[0]);
        assertEquals(nativeOf(GPA + 0x7000), pieces(0x2000, 1, Access.READ).get(0)[0]);
        assertEquals(nativeOf(GPA + 0x2010), pieces(0x3010, 1, Access.WRITE).get(0)[0]);
        // one translation across all three: head RW, middle RO, tail RW
        assertEquals(3, pieces(0x1800, 0x2000, Access.READ).size());
        assertEquals(0, iotlb.misses());
    }

    @Test
    void aSplitInAFullIotlbEvictsTheOldestAndStaysWithinCapacity() throws Exception {
        DeviceIotlb small = new DeviceIotlb(AddressSpace.identity(memory), 2);
        small.update(0x8000, 0x1000, GPA, Permission.RW);
        small.update(0x1000, 0x3000, GPA, Permission.RW);
        small.update(0x2000, 0x1000, GPA + 0x7000, Permission.RW);
        assertEquals(2, small.size());
        assertFalse(small.covers(0x8000, 1, Access.READ), "the oldest entry made room");
        assertTrue(small.covers(0x2000, 0x1000, Access.READ), "the UPDATE itself is in");
    }

    @Test
    void anEntryMayEndExactlyAtTheTopOfTheAddressSpace() throws Exception {
        iotlb.update(-0x1000L, 0x1000, GPA, Permission.RW);
        assertEquals(nativeOf(GPA + 0xfff), pieces(-1L, 1, Access.READ).get(0)[0]);
        assertThrows(IllegalArgumentException.class, () -> iotlb.update(-0x1000L, 0x1001, GPA, Permission.RW));
        TranslationException wrap = assertThrows(TranslationException.class, () -> pieces(-1L, 2, Access.READ));
        assertEquals(TranslationException.Kind.FAULT, wrap.kind());
    }

    @Test
    void invalidateWaitsForAWorkerInsideItsCriticalSection() throws Exception {
        iotlb.update(0x1000, 0x1000, GPA, Permission.RW);
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Thread worker = new Thread(() -> {
            DeviceIotlb.Worker w = iotlb.registerWorker();
            w.enter();
            inside.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            w.exit();
        });
        worker.start();
        inside.await();
        AtomicBoolean returned = new AtomicBoolean();
        Thread invalidator = new Thread(() -> {
            iotlb.invalidate(0x1000, 0x1000);
            returned.set(true);
        });
        invalidator.start();
        invalidator.join(300);
        assertFalse(returned.get(), "invalidate returned while a worker was inside its critical section");
        assertFalse(iotlb.covers(0x1000, 1, Access.READ), "the entry is already gone for new translations");
        release.countDown();
        invalidator.join(TimeUnit.SECONDS.toMillis(10));
        assertTrue(returned.get());
        worker.join();
    }

    /**
     * A device thread keeps translating an IOVA and writing through the translation inside its
     * critical section; another thread maps the IOVA to page A or B in turn, invalidates it, then
     * writes a sentinel into the page it just removed and checks, a while later, that no device
     * write landed there. A translation used after invalidate returned would overwrite it.
     */
    @Test
    void onceInvalidateReturnsNoDeviceThreadWritesThroughTheRemovedTranslation() throws Exception {
        long iova = 0x7000_0000L;
        long[] pages = {GPA + 0x10000, GPA + 0x20000};
        AtomicBoolean stop = new AtomicBoolean();
        Thread device = new Thread(() -> {
            DeviceIotlb.Worker w = iotlb.registerWorker();
            MemorySegment[] seg = new MemorySegment[1];
            long[] off = new long[1];
            long n = 0;
            while (!stop.get()) {
                w.enter();
                try {
                    iotlb.translate(iova, 8, Access.WRITE, (s, o, l) -> {
                        seg[0] = s;
                        off[0] = o;
                    });
                    for (int k = 0; k < 2000; k++) {
                        seg[0].set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, off[0], ++n);
                    }
                } catch (TranslationException e) {
                    // between cycles: nothing mapped
                } finally {
                    w.exit();
                }
            }
            w.close();
        }, "device");
        iotlb.setMessageSink(null);
        device.start();
        long sentinel = 0xDEAD_BEEF_0000_0000L;
        int violations = 0;
        int overlapped = 0;
        for (int cycle = 0; cycle < 1000; cycle++) {
            long page = pages[cycle & 1];
            MemorySegment s = memory.slice(page, 8);
            s.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 0, 0);
            iotlb.update(iova, 0x1000, page, Permission.WO);
            // wait until the device is writing through this cycle's translation
            for (int spin = 0; spin < 1_000_000 && s.get(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 0) == 0; spin++) {
                Thread.onSpinWait();
            }
            if (s.get(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 0) != 0) {
                overlapped++;
            }
            iotlb.invalidate(iova, 0x1000);
            s.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 0, sentinel + cycle);
            for (int spin = 0; spin < 2000; spin++) {
                Thread.onSpinWait();
            }
            if (s.get(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 0) != sentinel + cycle) {
                violations++;
            }
        }
        assertTrue(overlapped > 100, "the device wrote through the translation in only " + overlapped + " cycles");
        stop.set(true);
        device.join(10_000);
        assertEquals(0, violations, "device writes landed after invalidate returned");
    }
}

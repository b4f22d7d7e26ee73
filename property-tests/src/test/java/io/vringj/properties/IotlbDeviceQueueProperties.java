package io.vringj.properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.IotlbAddressSpace;
import io.vringj.dma.Permission;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingError;
import io.vringj.ring.SplitRing;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import io.vringj.testing.RecordingAddressSpace;
import io.vringj.testing.SplitRingDump;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

/**
 * A device queue behind a device IOTLB (message mode): buffers and indirect tables on pages that
 * are mapped read-only, write-only, read-write or not at all, and invalidations of any page —
 * the rings' included — between pops. A miss must be {@link RingError#TRANSLATION_MISS}: not
 * fatal, nothing consumed (same avail index, nothing in flight); after the IOMMU's UPDATE the same
 * chain pops. A page mapped without the needed permission is a fatal {@code ADDRESS_FAULT}, and
 * only then. Every translated piece stays in the shared region.
 */
class IotlbDeviceQueueProperties {
    private static final SplitMaliciousRing.Memory MEMORY = new SplitMaliciousRing.Memory();
    private static final long IOVA = 0x7000_0000L;
    private static final long PAGE = 4096;
    private static final int PAGES = (int) (SplitMaliciousRing.SHARED_SIZE / PAGE);
    /** Pages 0..3 hold the rings and the indirect tables; buffers start at page 4. */
    private static final int FIRST_BUFFER_PAGE = 4;
    private static final RingAddresses RINGS = new RingAddresses(iova(SplitMaliciousRing.DESC), iova(SplitMaliciousRing.AVAIL),
        iova(SplitMaliciousRing.USED));

    sealed interface Op permits Pop, Invalidate {
    }

    record Pop() implements Op {
        @Override
        public String toString() {
            return "pop";
        }
    }

    record Invalidate(int page) implements Op {
    }

    record ChainShape(int readable, int writable, boolean indirect) {
    }

    private static long iova(long gpa) {
        return gpa - SplitMaliciousRing.SHARED_BASE + IOVA;
    }

    @Property
    @TriesFrom(value = "vringj.fuzz.modelTries", defaultTries = 5000)
    void aMissConsumesNothingAndTheSameChainPopsAfterTheUpdate(
        @ForAll("queueSizes") int queueSize, @ForAll("shapes") List<ChainShape> shapes,
        @ForAll("pagePermissions") List<Permission> pages, @ForAll("operations") List<Op> ops) throws Exception {
        MEMORY.clearShared();
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC);
        DriverQueue driver = DriverQueue.create(features, queueSize, MEMORY.guest, SplitMaliciousRing.RINGS, 65534);
        ArrayDeque<long[]> expected = new ArrayDeque<>();   // {head, readable, writable, first page, last page}
        List<long[]> touched = new ArrayList<>();
        long buffer = SplitMaliciousRing.SHARED_BASE + FIRST_BUFFER_PAGE * PAGE;
        int tables = 0;
        for (ChainShape s : shapes) {
            int n = s.readable() + s.writable();
            boolean indirect = s.indirect() && n <= queueSize && tables < SplitMaliciousRing.INDIRECT_TABLES;
            if (!indirect && n > driver.numFree() || driver.numFree() == 0) {
                break;
            }
            long first = buffer;
            BufferChain chain = new BufferChain(n);
            for (int i = 0; i < n; i++, buffer += 0x300) {
                if (i < s.readable()) {
                    chain.addReadable(iova(buffer), 0x300);
                } else {
                    chain.addWritable(iova(buffer), 0x300);
                }
            }
            int head;
            if (indirect) {
                long table = SplitMaliciousRing.INDIRECT + tables++ * SplitMaliciousRing.INDIRECT_STRIDE;
                driver.writeIndirectTable(chain, MEMORY.guest.slice(table, n * SplitRing.DESC_SIZE));
                head = driver.addIndirect(chain, iova(table));
            } else {
                head = driver.add(chain);
            }
            expected.add(new long[] {head, chain.readableLength(), chain.writableLength(), s.readable()});
            touched.add(new long[] {first, buffer, indirect ? 1 : 0, s.readable()});
        }
        driver.publish();

        Permission[] perm = pages.toArray(Permission[]::new);
        for (int p = 0; p < FIRST_BUFFER_PAGE - 1; p++) {
            perm[p] = Permission.RW;
        }
        DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.sharedOnly(MEMORY.guest));
        for (int p = 0; p < PAGES; p++) {
            if (perm[p] != Permission.NONE) {
                iotlb.update(IOVA + p * PAGE, PAGE, SplitMaliciousRing.SHARED_BASE + p * PAGE, perm[p]);
            }
        }
        RecordingAddressSpace space = new RecordingAddressSpace(new IotlbAddressSpace(iotlb), MEMORY.allowed());
        DeviceQueue device = DeviceQueue.create(features, queueSize, RINGS, space, 65534);
        StringBuilder log = new StringBuilder();
        int misses = 0;
        int chain = 0;
        try {
            for (Op op : ops) {
                log.append("  ").append(op).append('\n');
                if (op instanceof Invalidate v) {
                    iotlb.invalidate(IOVA + v.page() * PAGE, PAGE);
                    perm[v.page()] = Permission.NONE;
                    continue;
                }
                long[] want = expected.peek();
                boolean allowed = want == null || allowed(touched.get(chain), perm);
                int lastAvail = device.lastAvailIdx();
                int inFlight = device.inFlight();
                DescriptorChain popped = new DescriptorChain();
                for (int attempt = 0; ; attempt++) {
                    assertTrue(attempt <= PAGES, "more misses than pages in one pop");
                    try {
                        boolean got = device.pop(popped);
                        assertTrue(allowed, "popped a chain that touches a page without the needed permission");
                        assertEquals(want != null, got, "pop found a chain");
                        if (got) {
                            assertEquals(want[0], popped.head(), "head");
                            assertEquals(want[1], popped.readableLength(), "readable bytes");
                            assertEquals(want[2], popped.writableLength(), "writable bytes");
                            expected.poll();
                            chain++;
                            log.append("    -> head ").append(popped.head()).append('\n');
                        }
                        break;
                    } catch (VirtqueueException e) {
                        log.append("    -> ").append(e.getMessage()).append('\n');
                        if (e.error() == RingError.TRANSLATION_MISS) {
                            misses++;
                            assertFalse(e.fatal(), "a miss is not fatal");
                            assertFalse(device.isBroken(), "a miss does not break the queue");
                            assertEquals(lastAvail, device.lastAvailIdx(), "a miss consumed an avail entry");
                            assertEquals(inFlight, device.inFlight(), "a miss left a chain in flight");
                            TranslationException cause = (TranslationException) e.getCause();
                            assertNotNull(cause, "a miss carries the translation that missed");
                            // the IOMMU answers the MISS with an UPDATE of the page, read-write
                            int page = (int) ((cause.busAddress() - IOVA) / PAGE);
                            assertTrue(page >= 0 && page < PAGES && perm[page] == Permission.NONE,
                                "missed on page " + page + " which is mapped " + (page >= 0 && page < PAGES ? perm[page] : "-"));
                            iotlb.update(IOVA + page * PAGE, PAGE, SplitMaliciousRing.SHARED_BASE + page * PAGE, Permission.RW);
                            perm[page] = Permission.RW;
                            continue;
                        }
                        assertEquals(RingError.ADDRESS_FAULT, e.error(), e.getMessage());
                        assertFalse(allowed, "faulted although every page allows the access: " + e.getMessage());
                        assertTrue(device.isBroken(), "a fault breaks the queue");
                        Statistics.label("outcome").collect("permission fault");
                        return;
                    }
                }
                assertEquals(List.of(), space.violations(), "pieces outside the shared region");
            }
            assertEquals(null, MEMORY.damageOutsideShared(), "memory outside the shared region changed");
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\npages: " + java.util.Arrays.toString(perm) + "\nsteps:\n" + log
                + SplitRingDump.dump(MEMORY.guest, SplitMaliciousRing.RINGS, queueSize), e);
        }
        Statistics.label("outcome").collect(misses == 0 ? "no miss" : "resolved misses");
    }

    /**
     * Whether every page a chain touches allows its access; a page not mapped counts as allowed
     * (the IOMMU will answer its miss with a read-write UPDATE).
     */
    private static boolean allowed(long[] touched, Permission[] perm) {
        long first = touched[0];
        long end = touched[1];
        long readableEnd = first + touched[3] * 0x300;
        for (long a = first; a < end; a += 0x100) {
            int page = (int) ((a - SplitMaliciousRing.SHARED_BASE) / PAGE);
            int need = a < readableEnd ? Permission.RO.bits() : Permission.WO.bits();
            if (perm[page] != Permission.NONE && (perm[page].bits() & need) == 0) {
                return false;
            }
        }
        if (touched[2] == 1) {
            int tablePage = (int) ((SplitMaliciousRing.INDIRECT - SplitMaliciousRing.SHARED_BASE) / PAGE);
            return perm[tablePage] == Permission.NONE || (perm[tablePage].bits() & Permission.RO.bits()) != 0;
        }
        return true;
    }

    @Provide
    Arbitrary<Integer> queueSizes() {
        return Arbitraries.of(2, 4, 8, 16);
    }

    @Provide
    Arbitrary<List<ChainShape>> shapes() {
        return Combinators.combine(Arbitraries.integers().between(0, 3), Arbitraries.integers().between(0, 3),
                Arbitraries.of(false, true))
            .filter((r, w, i) -> r + w > 0).as(ChainShape::new).list().ofMinSize(1).ofMaxSize(4);
    }

    @Provide
    Arbitrary<List<Permission>> pagePermissions() {
        return Arbitraries.frequencyOf(Tuple.of(6, Arbitraries.just(Permission.RW)), Tuple.of(3, Arbitraries.just(Permission.NONE)),
                Tuple.of(1, Arbitraries.of(Permission.RO, Permission.WO)))
            .list().ofSize(PAGES);
    }

    @Provide
    Arbitrary<List<Op>> operations() {
        return Arbitraries.<Op>frequencyOf(
                Tuple.of(3, Arbitraries.just(new Pop())),
                Tuple.of(1, Arbitraries.integers().between(0, PAGES - 1).map(p -> (Op) new Invalidate(p))))
            .list().ofMinSize(1).ofMaxSize(12);
    }
}

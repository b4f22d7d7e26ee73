package io.vringj.vhostuser.backend;

import io.vringj.device.net.Frame;
import io.vringj.device.net.NetDevice;
import io.vringj.device.net.NetDrop;
import io.vringj.device.net.NetDriver;
import io.vringj.device.net.NetFeatures;
import io.vringj.device.net.NetStatistics;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.VhostUserProtocol;
import io.vringj.vhostuser.linux.Libc;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongUnaryOperator;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * virtio-net behind the device IOTLB ({@code ACCESS_PLATFORM}) over a real Unix socket: the test
 * plays QEMU with a vIOMMU. Ring and buffer addresses are IOVAs; the back end's MISSes arrive on
 * the back-end channel and a test IOMMU thread answers each with a one-page UPDATE (as QEMU
 * does), while it also INVALIDATEs pages at random under the running pair. The driver side is
 * {@link NetDriver} over the front end's shared memory; the device is {@code reflect}.
 */
class NetIotlbBackendTest {
    static final int QUEUE_SIZE = 64;
    /** Smaller than the longer frames: with MRG_RXBUF those span two rx buffers. */
    static final int RX_BUFFER = 256;
    static final int TX_BUFFER = 12 + 500;
    static final long IOVA_BASE = 0xd000_0000L;
    static final long PAGE = 4096;
    static final long RX_DESC = TestFrontEnd.GPA_BASE;
    static final long RX_AVAIL = TestFrontEnd.GPA_BASE + 0x1000;
    static final long RX_USED = TestFrontEnd.GPA_BASE + 0x2000;
    static final long TX_DESC = TestFrontEnd.GPA_BASE + 0x3000;
    static final long TX_AVAIL = TestFrontEnd.GPA_BASE + 0x4000;
    static final long TX_USED = TestFrontEnd.GPA_BASE + 0x5000;
    /** The buffer area: Q rx buffers, then Q tx buffers ({@link NetDriver}'s layout). */
    static final long AREA = TestFrontEnd.GPA_BASE + 0x10000;
    static final long RX_AREA_SIZE = (long) QUEUE_SIZE * RX_BUFFER;
    static final long TX_AREA = AREA + RX_AREA_SIZE;
    static final long TX_AREA_SIZE = (long) QUEUE_SIZE * TX_BUFFER;
    static final long DST_MAC = 0x02_00_00_00_00_02L;
    static final long SRC_MAC = 0x02_00_00_00_00_03L;
    static final int ETHER_TYPE = 0x88b5;
    /** Frames in flight at most, so the posted rx buffers always suffice. */
    static final int WINDOW = 8;
    static final Duration TIMEOUT = Duration.ofSeconds(20);
    static final ValueLayout.OfLong SEQ = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    @TempDir
    Path dir;

    static long iova(long gpa) {
        return IOVA_BASE + (gpa - TestFrontEnd.GPA_BASE);
    }

    static long gpaOfIova(long iova) {
        return TestFrontEnd.GPA_BASE + (iova - IOVA_BASE);
    }

    static long uaddr(long gpa) {
        return TestFrontEnd.UADDR_BASE + (gpa - TestFrontEnd.GPA_BASE);
    }

    static long features(boolean packed) {
        return VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM)
            | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) | VirtioFeatures.bit(NetFeatures.MRG_RXBUF)
            | (packed ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0);
    }

    /** Pages [from, from + size) as guest-physical page addresses. */
    static List<Long> pages(long from, long size) {
        List<Long> pages = new ArrayList<>();
        for (long p = from & ~(PAGE - 1); p < from + size; p += PAGE) {
            pages.add(p);
        }
        return pages;
    }

    static List<Long> txPages() {
        List<Long> pages = new ArrayList<>(pages(TX_DESC, 3 * PAGE));
        pages.addAll(pages(TX_AREA, TX_AREA_SIZE));
        return pages;
    }

    static List<Long> allPages() {
        List<Long> pages = new ArrayList<>(pages(RX_DESC, 6 * PAGE));
        pages.addAll(pages(AREA, RX_AREA_SIZE + TX_AREA_SIZE));
        return pages;
    }

    static int frameLength(long seq) {
        return 60 + (int) (seq * 37 % 380);
    }

    static byte bodyByte(long seq, long k) {
        return (byte) (seq * 31 + k);
    }

    /** One connection with both vrings of pair 0 at IOVAs, a {@link NetDriver} and the test IOMMU. */
    static final class Rig implements AutoCloseable {
        final TestFrontEnd fe;
        final NetDevice device;
        final EventFd rxKick = EventFd.create();
        final EventFd txKick = EventFd.create();
        final EventFd rxCall = EventFd.create();
        final EventFd txCall = EventFd.create();
        final NetDriver driver;
        final TestIommu iommu;
        final Thread iommuThread;
        final List<String> badFrames = new CopyOnWriteArrayList<>();
        long sent;
        long received;
        long lastSeq = -1;
        boolean inOrderWithoutGaps = true;

        Rig(BackendHarness backend, NetDevice device, boolean packed, LongUnaryOperator permOfPage,
            List<Long> premapped) throws Exception {
            this.device = device;
            this.fe = backend.connect();
            long features = features(packed);
            fe.send(VhostUserProtocol.GET_FEATURES, 0, 0);
            long offered = fe.replyU64(VhostUserProtocol.GET_FEATURES);
            assertTrue(VirtioFeatures.has(offered, VirtioFeatures.ACCESS_PLATFORM), "net offers ACCESS_PLATFORM");
            assertEquals(features, offered & features, "net offers what the test negotiates");
            fe.sendU64(VhostUserProtocol.SET_PROTOCOL_FEATURES, (1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK)
                | (1L << VhostUserProtocol.PROTOCOL_F_BACKEND_REQ));
            fe.sendBackendReqFd();
            fe.send(VhostUserProtocol.SET_OWNER, 0, 0);
            fe.sendU64NeedReply(VhostUserProtocol.SET_FEATURES,
                features | VirtioFeatures.bit(VhostUserProtocol.F_PROTOCOL_FEATURES));
            assertEquals(0, fe.replyU64(VhostUserProtocol.SET_FEATURES));
            fe.createMemory();
            fe.sendMemTable();
            // the driver lays out its rings and posts rx buffers before the device starts (DRIVER_OK)
            DriverQueue rx = DriverQueue.create(features, QUEUE_SIZE, fe.memory,
                new RingAddresses(RX_DESC, RX_AVAIL, RX_USED));
            DriverQueue tx = DriverQueue.create(features, QUEUE_SIZE, fe.memory,
                new RingAddresses(TX_DESC, TX_AVAIL, TX_USED));
            driver = new NetDriver(rx, tx, fe.memory.slice(AREA, RX_AREA_SIZE + TX_AREA_SIZE), iova(AREA), RX_BUFFER,
                TX_BUFFER, () -> signal(rxKick), () -> signal(txKick));
            int base = packed ? DeviceQueue.PACKED_INITIAL_VRING_BASE & 0xFFFF : 0;
            long[][] rings = {{RX_DESC, RX_USED, RX_AVAIL}, {TX_DESC, TX_USED, TX_AVAIL}};
            EventFd[] kicks = {rxKick, txKick};
            EventFd[] calls = {rxCall, txCall};
            for (int i = 0; i < 2; i++) {
                fe.sendState(VhostUserProtocol.SET_VRING_NUM, i, QUEUE_SIZE);
                fe.sendState(VhostUserProtocol.SET_VRING_BASE, i, base);
                fe.out.header(VhostUserProtocol.SET_VRING_ADDR, 0, 40).putU32(0, i).putU32(4, 0)
                    .putU64(8, iova(rings[i][0])).putU64(16, iova(rings[i][1])).putU64(24, iova(rings[i][2]))
                    .putU64(32, 0);
                fe.channel.write(fe.out);
                fe.sendU64(VhostUserProtocol.SET_VRING_CALL, i, calls[i].fd());
                fe.sendU64(VhostUserProtocol.SET_VRING_KICK, i, kicks[i].fd());
                fe.sendState(VhostUserProtocol.SET_VRING_ENABLE, i, 1);
            }
            for (long page : premapped) {
                fe.sendIotlb(VhostUserProtocol.IOTLB_UPDATE, iova(page), PAGE, uaddr(page),
                    (int) permOfPage.applyAsLong(page));
            }
            iommu = new TestIommu(fe, permOfPage);
            iommuThread = Thread.ofPlatform().name("test-iommu").start(iommu);
        }

        private static void signal(EventFd fd) {
            try {
                fd.signal();
            } catch (NativeCallException e) {
                throw new IllegalStateException(e);
            }
        }

        /** Sends frame {@code sent} if a tx buffer is free; returns whether it did. */
        boolean sendOne() throws Exception {
            MemorySegment buf = driver.claim();
            if (buf == null) {
                return false;
            }
            long seq = sent;
            int length = frameLength(seq);
            putMac(buf, 0, DST_MAC);
            putMac(buf, 6, SRC_MAC);
            buf.set(ValueLayout.JAVA_BYTE, 12, (byte) (ETHER_TYPE >>> 8));
            buf.set(ValueLayout.JAVA_BYTE, 13, (byte) ETHER_TYPE);
            buf.set(SEQ, 14, seq);
            for (int k = 22; k < length; k++) {
                buf.set(ValueLayout.JAVA_BYTE, k, bodyByte(seq, k));
            }
            driver.commit(length);
            driver.flush();
            sent++;
            return true;
        }

        private static void putMac(MemorySegment buf, long offset, long mac) {
            for (int i = 0; i < 6; i++) {
                buf.set(ValueLayout.JAVA_BYTE, offset + i, (byte) (mac >>> (40 - 8 * i)));
            }
        }

        /** Checks one reflected frame: MACs swapped, everything else as sent, later than the last. */
        void onFrame(Frame f) {
            long seq = 0;
            for (int i = 0; i < 8; i++) {
                seq = seq << 8 | f.getByte(14 + i);
            }
            received++;
            if (seq != lastSeq + 1) {
                inOrderWithoutGaps = false;
            }
            if (seq <= lastSeq || seq >= sent) {
                badFrames.add("frame with sequence " + seq + " after " + lastSeq + " (sent " + sent + ")");
                return;
            }
            lastSeq = seq;
            if (f.length() != frameLength(seq) || f.getMac(0) != SRC_MAC || f.getMac(6) != DST_MAC
                || f.getShort(12) != ETHER_TYPE) {
                badFrames.add("frame " + seq + ": length " + f.length() + " (sent " + frameLength(seq) + "), macs "
                    + Long.toHexString(f.getMac(0)) + "/" + Long.toHexString(f.getMac(6)) + ", type "
                    + Integer.toHexString(f.getShort(12)));
                return;
            }
            for (long k = 22; k < f.length(); k++) {
                if ((byte) f.getByte(k) != bodyByte(seq, k)) {
                    badFrames.add("frame " + seq + " byte " + k + " is " + f.getByte(k));
                    return;
                }
            }
        }

        /** Frames the device dropped on rx (counted, never silently lost). */
        long rxDrops() {
            NetStatistics s = device.statistics();
            return s.drops(NetDrop.RX_TRANSLATION_MISS) + s.drops(NetDrop.NO_RX_BUFFER);
        }

        /** Receives what came back; waits up to 5 ms for an rx interrupt if nothing did. */
        int receive() throws Exception {
            int n = driver.receive(this::onFrame, 64);
            if (n == 0 && !driver.enableRxInterrupts()) {
                VhostUserBackendTest.awaitCall(rxCall, Duration.ofMillis(5));
            }
            driver.reclaim();
            return n;
        }

        /** Sends {@code count} frames, at most {@link #WINDOW} unaccounted at a time, until each came back or was dropped. */
        void run(long count) throws Exception {
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            long target = sent + count;
            while (received + rxDrops() < target) {
                if (sent < target && sent - (received + rxDrops()) < WINDOW && sendOne()) {
                    continue;
                }
                receive();
                if (iommu.error != null) {
                    throw new AssertionError("test IOMMU failed", iommu.error);
                }
                if (System.nanoTime() > deadline) {
                    fail("after " + TIMEOUT + ": sent " + sent + ", received " + received + ", " + device.report()
                        + ", driver " + driver.statistics() + ", IOMMU " + iommu);
                }
            }
        }

        /** Stops the IOMMU thread (no more main-channel traffic from it). */
        void stopIommu() throws InterruptedException {
            iommu.stop = true;
            iommuThread.join(TIMEOUT.toMillis());
        }

        @Override
        public void close() throws Exception {
            stopIommu();
            fe.close();
            rxKick.close();
            txKick.close();
            rxCall.close();
            txCall.close();
        }
    }

    /**
     * The vIOMMU's side of the device IOTLB, on its own thread (it alone writes the main socket
     * once the rig is set up): answers each MISS with an UPDATE of its page unless the page is
     * withheld, INVALIDATEs a random page of {@link #churn} every {@link #churnMillis}, and runs
     * what the test submits.
     */
    static final class TestIommu implements Runnable {
        final TestFrontEnd fe;
        final LongUnaryOperator permOfPage;
        final Random random = new Random(0x10_7b);
        final Set<Long> withheld = ConcurrentHashMap.newKeySet();
        final List<Long> withheldMisses = new CopyOnWriteArrayList<>();
        final List<long[]> accessFails = new CopyOnWriteArrayList<>();
        final AtomicLong misses = new AtomicLong();
        final AtomicLong invalidations = new AtomicLong();
        final ConcurrentLinkedQueue<Task> tasks = new ConcurrentLinkedQueue<>();
        volatile List<Long> churn = List.of();
        volatile long churnMillis = 2;
        volatile boolean stop;
        volatile Throwable error;

        TestIommu(TestFrontEnd fe, LongUnaryOperator permOfPage) {
            this.fe = fe;
            this.permOfPage = permOfPage;
        }

        @FunctionalInterface
        interface Action {
            void run() throws Exception;
        }

        record Task(Action action, CompletableFuture<Void> done) {
        }

        /** Runs {@code action} on the IOMMU thread and waits for it. */
        void submit(Action action) throws Exception {
            CompletableFuture<Void> done = new CompletableFuture<>();
            tasks.add(new Task(action, done));
            done.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        }

        void update(long page) throws Exception {
            fe.sendIotlb(VhostUserProtocol.IOTLB_UPDATE, iova(page), PAGE, uaddr(page),
                (int) permOfPage.applyAsLong(page));
        }

        void invalidate(long page) throws Exception {
            fe.sendIotlb(VhostUserProtocol.IOTLB_INVALIDATE, iova(page), PAGE, 0, 0);
            invalidations.incrementAndGet();
        }

        @Override
        public void run() {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment pollfd = arena.allocate(8, 8);
                pollfd.set(ValueLayout.JAVA_INT, 0, fe.backendRequests.fd());
                pollfd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
                long nextChurn = System.nanoTime();
                while (!stop) {
                    Task task;
                    while ((task = tasks.poll()) != null) {
                        try {
                            task.action().run();
                            task.done().complete(null);
                        } catch (Throwable e) {
                            task.done().completeExceptionally(e);
                        }
                    }
                    pollfd.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
                    if (Libc.poll(pollfd, 1, 1) == 1) {
                        if (!fe.backendRequests.read(fe.backendIn)) {
                            return;
                        }
                        handle(fe.backendIn.u64(0), fe.backendIn.u8(24), fe.backendIn.u8(25));
                    }
                    List<Long> pages = churn;
                    if (!pages.isEmpty() && System.nanoTime() - nextChurn >= 0) {
                        invalidate(pages.get(random.nextInt(pages.size())));
                        nextChurn = System.nanoTime() + churnMillis * 1_000_000;
                    }
                }
            } catch (Throwable e) {
                error = e;
            }
        }

        private void handle(long iova, int perm, int type) throws Exception {
            if (type == VhostUserProtocol.IOTLB_ACCESS_FAIL) {
                accessFails.add(new long[] {iova, perm});
                return;
            }
            if (type != VhostUserProtocol.IOTLB_MISS) {
                throw new AssertionError("back-end IOTLB message of type " + type);
            }
            misses.incrementAndGet();
            long page = gpaOfIova(iova) & ~(PAGE - 1);
            if (page < TestFrontEnd.GPA_BASE || page >= TestFrontEnd.GPA_BASE + TestFrontEnd.MEMORY_SIZE) {
                throw new AssertionError("MISS for IOVA 0x" + Long.toHexString(iova) + ", outside what was mapped");
            }
            if (withheld.contains(page)) {
                withheldMisses.add(page);
                return;
            }
            update(page);
        }

        @Override
        public String toString() {
            return misses + " misses, " + invalidations + " invalidations, " + withheldMisses.size()
                + " withheld, " + accessFails.size() + " access failures";
        }
    }

    /** CPU time of the pair worker threads so far, in clock ticks (the JVM names the native thread). */
    static long pairWorkerTicks() throws IOException {
        long ticks = 0;
        int found = 0;
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(Path.of("/proc/self/task"))) {
            for (Path task : tasks) {
                String stat;
                try {
                    if (!Files.readString(task.resolve("comm")).trim().startsWith("vhost-user-pair")) {
                        continue;
                    }
                    stat = Files.readString(task.resolve("stat"));
                } catch (IOException gone) {
                    continue;
                }
                // fields after "(comm) ": state is field 3, utime 14 and stime 15 [proc(5)]
                String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]);
                found++;
            }
        }
        assertEquals(1, found, "one pair worker thread runs");
        return ticks;
    }

    @ParameterizedTest(name = "{0}, invalidating {1} pages")
    @CsvSource({"split,tx", "packed,tx", "split,all", "packed,all"})
    @Timeout(120)
    void reflectsEveryFrameWhileTheIotlbMissesAndInvalidates(String layout, String churned) throws Exception {
        NetDevice device = NetDevice.reflect();
        long minimum = 10_000;
        boolean txOnly = churned.equals("tx");
        // with only tx pages churned the rx side is mapped up front and nothing may be dropped
        List<Long> premapped = txOnly ? allPages().stream().filter(p -> !txPages().contains(p)).toList() : List.of();
        try (BackendHarness backend = new BackendHarness(dir, device);
             Rig rig = new Rig(backend, device, layout.equals("packed"), page -> 3, premapped)) {
            rig.iommu.churn = txOnly ? txPages() : allPages();
            // at least 10 000 frames, and on until the IOTLB churned 20 times: a fast machine sends
            // them all within a few invalidation periods
            long count = 0;
            long deadline = System.nanoTime() + TIMEOUT.multipliedBy(3).toNanos();
            while (count < minimum || rig.iommu.invalidations.get() < 20) {
                assertTrue(System.nanoTime() < deadline, "the IOTLB did not churn 20 times in " + count
                    + " frames: IOMMU " + rig.iommu);
                long batch = count < minimum ? minimum : 1_000;
                rig.run(batch);
                count += batch;
            }
            rig.stopIommu();
            assertNull(rig.iommu.error, "test IOMMU");
            assertEquals(List.of(), rig.badFrames);
            NetStatistics stats = device.statistics();
            String report = device.report() + " / IOMMU " + rig.iommu;
            assertEquals(count, stats.txFrames(), "every tx frame was taken, none lost to a miss: " + report);
            // how many invalidations land between two uses of a page depends on the machine's load
            assertTrue(rig.iommu.misses.get() > 0, "invalidated pages missed: " + report);
            if (txOnly) {
                assertEquals(count, rig.received, report);
                assertTrue(rig.inOrderWithoutGaps, report);
                assertEquals(0, stats.totalDrops(), report);
            } else {
                // a frame whose rx buffer missed waits in the device's staging area; only one that
                // finds it full (64 frames) is dropped, so most of them come back
                assertEquals(count, rig.received + rig.rxDrops(), "each frame came back or was counted: " + report);
                assertEquals(stats.totalDrops(), rig.rxDrops(), "no other drop: " + report);
                assertEquals(stats.totalDrops(), stats.drops(NetDrop.RX_TRANSLATION_MISS), report);
                assertTrue(rig.received > count * 9 / 10, report);
            }
            assertEquals(0, backend.server.statistics().queueErrors.sum(), report);
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"split", "packed"})
    @Timeout(120)
    void aTxMissParksWithoutSpinningAndIsRetriedInOrder(String layout) throws Exception {
        NetDevice device = NetDevice.reflect();
        List<Long> tx = txPages();
        // the rx side is mapped up front: an rx miss would drop a frame, and this test counts every one
        List<Long> rxSide = allPages().stream().filter(p -> !tx.contains(p)).toList();
        try (BackendHarness backend = new BackendHarness(dir, device);
             Rig rig = new Rig(backend, device, layout.equals("packed"), page -> 3, rxSide)) {
            rig.run(16);
            assertEquals(16, rig.received, device.report());
            // the vIOMMU unmaps every tx page and holds back the UPDATEs the device asks for
            rig.iommu.withheld.addAll(tx);
            rig.iommu.submit(() -> {
                for (long page : tx) {
                    rig.iommu.invalidate(page);
                }
            });
            for (int i = 0; i < 10; i++) {
                assertTrue(rig.sendOne());
            }
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (rig.iommu.withheldMisses.isEmpty()) {
                assertTrue(System.nanoTime() < deadline, "no MISS for a tx page: " + rig.iommu);
                Thread.sleep(5);
            }
            long ticks = pairWorkerTicks();
            long until = System.nanoTime() + Duration.ofSeconds(1).toNanos();
            while (System.nanoTime() < until) {
                rig.receive();
            }
            long spent = pairWorkerTicks() - ticks;
            // a worker spinning while parked spends most of that second; one asleep in poll, nothing
            assertTrue(spent <= 15, "pair worker used " + spent + " ticks of CPU in 1 s while parked");
            assertEquals(16, rig.received, "nothing came back while tx was parked");
            assertEquals(16, device.statistics().txFrames(), "the parked chain was not consumed: " + device.report());

            rig.iommu.withheld.clear();
            rig.iommu.submit(() -> {
                for (long page : Set.copyOf(rig.iommu.withheldMisses)) {
                    rig.iommu.update(page);
                }
            });
            rig.run(0);
            assertEquals(26, rig.received, device.report() + " / IOMMU " + rig.iommu);
            assertTrue(rig.inOrderWithoutGaps, "the parked frames came back in order");
            assertEquals(List.of(), rig.badFrames);
            assertEquals(26, device.statistics().txFrames());
            assertEquals(0, device.statistics().totalDrops(), device.report());
            rig.stopIommu();
            assertNull(rig.iommu.error, "test IOMMU");
        }
    }

    @ParameterizedTest(name = "{0} buffers")
    @ValueSource(strings = {"rx read-only", "tx write-only"})
    @Timeout(60)
    void anAccessOutsideThePermissionClosesThatConnectionOnly(String which) throws Exception {
        boolean rxSide = which.startsWith("rx");
        long from = rxSide ? AREA : TX_AREA;
        long to = rxSide ? TX_AREA : TX_AREA + TX_AREA_SIZE;
        int wrongPerm = rxSide ? 1 : 2;
        NetDevice device = NetDevice.reflect();
        try (BackendHarness backend = new BackendHarness(dir, device)) {
            try (Rig rig = new Rig(backend, device, false,
                     page -> page >= (from & ~(PAGE - 1)) && page < to ? wrongPerm : 3, List.of())) {
                long deadline = System.nanoTime() + TIMEOUT.toNanos();
                while (rig.iommu.accessFails.isEmpty()) {
                    assertTrue(System.nanoTime() < deadline, "no ACCESS_FAIL: " + rig.iommu);
                    // a frame whose rx buffer missed is dropped; the next one retries with the entry in place
                    rig.sendOne();
                    rig.receive();
                    Thread.sleep(5);
                }
                long[] fault = rig.iommu.accessFails.getFirst();
                long gpa = gpaOfIova(fault[0]);
                assertTrue(gpa >= from && gpa < to, "ACCESS_FAIL at 0x" + Long.toHexString(fault[0]));
                assertEquals(rxSide ? 2 : 1, fault[1], "the access the device wanted: rx writes, tx reads");
                rig.stopIommu();
                assertTrue(rig.fe.closedByBackEnd(TIMEOUT), "the connection was closed");
            }
            String line = backend.awaitLog("closing connection: pair 0 worker failed", TIMEOUT);
            assertTrue(line.contains("ADDRESS_FAULT") || line.contains("permission"), line);
            assertTrue(backend.serverAlive(), "the process still serves");
            try (TestFrontEnd next = backend.connect()) {
                next.send(VhostUserProtocol.GET_FEATURES, 0, 0);
                assertTrue(VirtioFeatures.has(next.replyU64(VhostUserProtocol.GET_FEATURES),
                    VirtioFeatures.ACCESS_PLATFORM), "a new front end is served");
            }
        }
    }
}

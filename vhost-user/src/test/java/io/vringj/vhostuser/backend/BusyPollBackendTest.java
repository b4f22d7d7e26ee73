package io.vringj.vhostuser.backend;

import io.vringj.device.rng.EntropySource;
import io.vringj.device.rng.RngDevice;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.VhostUserProtocol;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Busy polling ({@link BackendOptions#busyPollMicros()}): a worker whose ring ran dry polls it with
 * kicks disabled, and a worker parked on a miss polls for the UPDATE, both without a wake-up from
 * {@code poll}.
 */
class BusyPollBackendTest {
    static final Duration TIMEOUT = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    private static BackendOptions busyPoll(int micros) {
        return BackendOptions.defaults().withStallMillis(BackendHarness.STALL_MILLIS).withBusyPollMicros(micros);
    }

    @Test
    void aChainPublishedWithoutAKickIsCompletedByTheBusyPollingWorkerWithoutAWakeUp() throws Exception {
        // no EVENT_IDX: the used ring's NO_NOTIFY flag tells the driver whether to kick
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        try (BackendHarness backend = new BackendHarness(dir,
                 new RngDevice(() -> EntropySource.deterministic(VhostUserBackendTest.SEED), false),
                 busyPoll(BackendOptions.MAX_BUSY_POLL_MICROS));
             TestFrontEnd fe = backend.connect()) {
            VhostUserBackendTest.negotiateProtocol(fe);
            EventFd[] fds = VhostUserBackendTest.startRing(fe, features);
            try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                DriverQueue driver = DriverQueue.create(features, VhostUserBackendTest.QUEUE_SIZE, fe.memory,
                    new RingAddresses(VhostUserBackendTest.DESC, VhostUserBackendTest.AVAIL, VhostUserBackendTest.USED));
                driver.add(new BufferChain(1).addWritable(VhostUserBackendTest.BUFFERS, 32));
                driver.publish();
                kick.signal();
                assertTrue(VhostUserBackendTest.awaitCall(call, TIMEOUT));
                assertTrue(driver.pollUsed() >= 0);
                driver.enableInterrupts();

                // the worker polls the ring for up to a second after a chain, notifications disabled
                long wakeups = backend.server.statistics().workerWakeups.sum();
                for (int i = 1; i <= 3; i++) {
                    driver.add(new BufferChain(1).addWritable(VhostUserBackendTest.BUFFERS + 0x100L * i, 16));
                    assertFalse(driver.publish(), "chain " + i + ": the busy-polling worker wants no kick");
                    assertTrue(VhostUserBackendTest.awaitCall(call, TIMEOUT),
                        "chain " + i + " was completed without a kick");
                    assertTrue(driver.pollUsed() >= 0);
                    assertEquals(16, driver.usedLength());
                    driver.enableInterrupts();
                }
                assertEquals(wakeups, backend.server.statistics().workerWakeups.sum(),
                    "no return from poll: the chains were found by polling");
            }
        }
    }

    @Test
    void aParkedWorkerResumesOnTheUpdateWithoutAWakeUpWhenItArrivesWithinTheBusyPoll() throws Exception {
        int micros = 500_000;
        try (BackendHarness backend = new BackendHarness(dir,
                 new RngDevice(() -> EntropySource.deterministic(IotlbBackendTest.SEED), true), busyPoll(micros));
             TestFrontEnd fe = backend.connect()) {
            EventFd[] fds = IotlbBackendTest.start(fe);
            try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                fe.readBackendIotlb(TIMEOUT);
                fe.sendIotlb(VhostUserProtocol.IOTLB_UPDATE, IotlbBackendTest.IOVA_BASE, TestFrontEnd.MEMORY_SIZE,
                    TestFrontEnd.UADDR_BASE, 3);
                DriverQueue driver = DriverQueue.create(IotlbBackendTest.FEATURES, IotlbBackendTest.QUEUE_SIZE,
                    fe.memory, new RingAddresses(VhostUserBackendTest.DESC, VhostUserBackendTest.AVAIL,
                        VhostUserBackendTest.USED));
                driver.add(new BufferChain(1).addWritable(IotlbBackendTest.iova(VhostUserBackendTest.BUFFERS), 48));
                driver.publish();
                kick.signal();
                assertTrue(VhostUserBackendTest.awaitCall(call, TIMEOUT));
                assertTrue(driver.pollUsed() >= 0);
                driver.enableInterrupts();
                VhostUserStatistics s = backend.server.statistics();
                long wakeups = awaitAsleep(s, micros);
                long resumes = s.updateToWorker.count();
                fe.sendIotlb(VhostUserProtocol.IOTLB_INVALIDATE, IotlbBackendTest.IOVA_BASE, TestFrontEnd.MEMORY_SIZE,
                    0, 3);
                driver.add(new BufferChain(1).addWritable(IotlbBackendTest.iova(VhostUserBackendTest.BUFFERS), 16));
                driver.publish();
                kick.signal();
                long[] miss = fe.readBackendIotlb(TIMEOUT);
                assertEquals(VhostUserProtocol.IOTLB_MISS, miss[2]);
                // the worker woke once, for the kick, and now busy polls for the answer
                fe.sendIotlb(VhostUserProtocol.IOTLB_UPDATE, IotlbBackendTest.IOVA_BASE, TestFrontEnd.MEMORY_SIZE,
                    TestFrontEnd.UADDR_BASE, 3);
                assertTrue(VhostUserBackendTest.awaitCall(call, TIMEOUT), "the parked ring resumed after the update");
                assertTrue(driver.pollUsed() >= 0);
                assertEquals(16, driver.usedLength());
                assertEquals(wakeups + 1, awaitAsleep(s, micros),
                    "one return from poll, for the kick; the update was seen by polling and not signalled");
                assertEquals(resumes + 1, s.updateToWorker.count(), "the resume after the update was timed: " + s);
            }
        }
    }

    @Test
    void aBadChainFoundWhileBusyPollingClosesOnlyThatConnection() throws Exception {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        try (BackendHarness backend = new BackendHarness(dir,
                 new RngDevice(() -> EntropySource.deterministic(VhostUserBackendTest.SEED), false),
                 busyPoll(BackendOptions.MAX_BUSY_POLL_MICROS))) {
            try (TestFrontEnd fe = backend.connect()) {
                VhostUserBackendTest.negotiateProtocol(fe);
                EventFd[] fds = VhostUserBackendTest.startRing(fe, features);
                try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                    DriverQueue driver = DriverQueue.create(features, VhostUserBackendTest.QUEUE_SIZE, fe.memory,
                        new RingAddresses(VhostUserBackendTest.DESC, VhostUserBackendTest.AVAIL,
                            VhostUserBackendTest.USED));
                    driver.add(new BufferChain(1).addWritable(VhostUserBackendTest.BUFFERS, 32));
                    driver.publish();
                    kick.signal();
                    assertTrue(VhostUserBackendTest.awaitCall(call, TIMEOUT));
                    // the worker now polls the ring with kicks disabled: a buffer far outside the
                    // one region the front end described, published without a kick
                    driver.add(new BufferChain(1).addWritable(0x1_0000_0000L, 64));
                    assertFalse(driver.publish(), "the busy-polling worker wants no kick");
                    assertTrue(fe.closedByBackEnd(TIMEOUT), "the back end kept the connection open");
                }
            }
            String line = backend.awaitLog("may not reach", TIMEOUT);
            assertTrue(line.startsWith("WARNING closing connection: "), line);
            assertTrue(backend.serverAlive(), "the back end process stays up");
            try (TestFrontEnd next = backend.connect()) {
                VhostUserBackendTest.negotiateProtocol(next);
                next.send(VhostUserProtocol.GET_FEATURES, 0, 0);
                assertTrue(VirtioFeatures.has(next.replyU64(VhostUserProtocol.GET_FEATURES), VirtioFeatures.VERSION_1),
                    "the next connection is served");
            }
        }
    }

    /**
     * Waits until the worker's wake-ups stay unchanged for twice the busy-poll time: it then sleeps
     * in poll with nothing pending (a spin ends within that time, and a pending signal would wake it).
     *
     * @return the wake-up count then
     */
    private static long awaitAsleep(VhostUserStatistics s, int busyPollMicros) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        long before = s.workerWakeups.sum();
        while (System.nanoTime() < deadline) {
            Thread.sleep(2L * busyPollMicros / 1000);
            long now = s.workerWakeups.sum();
            if (now == before) {
                return now;
            }
            before = now;
        }
        throw new AssertionError("the worker kept waking up for " + TIMEOUT + ": " + s);
    }

    @Test
    void busyPollOutsideItsRangeIsRefusedNamingTheValueAndTheRule() {
        IllegalArgumentException below = assertThrows(IllegalArgumentException.class,
            () -> BackendOptions.defaults().withBusyPollMicros(-1));
        assertEquals("busyPollMicros -1 must be within 0..1000000 (microseconds; 0 never busy polls)",
            below.getMessage());
        IllegalArgumentException above = assertThrows(IllegalArgumentException.class,
            () -> BackendOptions.defaults().withBusyPollMicros(1_000_001));
        assertTrue(above.getMessage().contains("busyPollMicros 1000001 must be within 0..1000000"), above.getMessage());
        assertEquals(0, BackendOptions.defaults().busyPollMicros(), "off unless asked for");
        assertEquals(BackendOptions.MAX_BUSY_POLL_MICROS,
            BackendOptions.defaults().withBusyPollMicros(BackendOptions.MAX_BUSY_POLL_MICROS).busyPollMicros());
    }
}

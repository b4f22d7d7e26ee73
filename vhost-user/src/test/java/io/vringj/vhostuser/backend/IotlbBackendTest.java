package io.vringj.vhostuser.backend;

import io.vringj.device.rng.EntropySource;
import io.vringj.device.rng.RngDevice;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.VhostUserProtocol;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ACCESS_PLATFORM over a real socket: ring and buffer addresses are IOVAs, the device IOTLB
 * sends MISSes over the back-end channel, and IOTLB_MSG updates from the front end resume the
 * ring.
 */
class IotlbBackendTest {
    static final long SEED = 77;
    static final int QUEUE_SIZE = 8;
    /** IOVA of guest-physical GPA_BASE: the test IOMMU maps the whole test memory at this offset. */
    static final long IOVA_BASE = 0xd000_0000L;
    static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
        | VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX);
    static final Duration TIMEOUT = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    static long iova(long gpa) {
        return IOVA_BASE + (gpa - TestFrontEnd.GPA_BASE);
    }

    /** Negotiates ACCESS_PLATFORM with the back-end channel and starts vring 0 at IOVAs. */
    static EventFd[] start(TestFrontEnd fe) throws Exception {
        fe.send(VhostUserProtocol.GET_FEATURES, 0, 0);
        assertTrue(VirtioFeatures.has(fe.replyU64(VhostUserProtocol.GET_FEATURES), VirtioFeatures.ACCESS_PLATFORM));
        fe.sendU64(VhostUserProtocol.SET_PROTOCOL_FEATURES, (1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK)
            | (1L << VhostUserProtocol.PROTOCOL_F_BACKEND_REQ));
        fe.sendBackendReqFd();
        fe.send(VhostUserProtocol.SET_OWNER, 0, 0);
        fe.sendU64NeedReply(VhostUserProtocol.SET_FEATURES,
            FEATURES | VirtioFeatures.bit(VhostUserProtocol.F_PROTOCOL_FEATURES));
        assertEquals(0, fe.replyU64(VhostUserProtocol.SET_FEATURES));
        fe.createMemory();
        fe.sendMemTable();
        fe.sendState(VhostUserProtocol.SET_VRING_NUM, 0, QUEUE_SIZE);
        fe.sendState(VhostUserProtocol.SET_VRING_BASE, 0, 0);
        fe.out.header(VhostUserProtocol.SET_VRING_ADDR, 0, 40).putU32(0, 0).putU32(4, 0)
            .putU64(8, iova(VhostUserBackendTest.DESC)).putU64(16, iova(VhostUserBackendTest.USED))
            .putU64(24, iova(VhostUserBackendTest.AVAIL)).putU64(32, 0);
        fe.channel.write(fe.out);
        EventFd kick = EventFd.create();
        EventFd call = EventFd.create();
        fe.sendU64(VhostUserProtocol.SET_VRING_CALL, 0, call.fd());
        fe.sendU64(VhostUserProtocol.SET_VRING_KICK, 0, kick.fd());
        fe.sendState(VhostUserProtocol.SET_VRING_ENABLE, 0, 1);
        return new EventFd[] {kick, call};
    }

    private static DriverQueue driver(TestFrontEnd fe) {
        return DriverQueue.create(FEATURES, QUEUE_SIZE, fe.memory,
            new RingAddresses(VhostUserBackendTest.DESC, VhostUserBackendTest.AVAIL, VhostUserBackendTest.USED));
    }

    @Test
    void missesGoOverTheBackEndChannelAndUpdatesResumeTheRing() throws Exception {
        try (BackendHarness backend = new BackendHarness(dir,
                 new RngDevice(() -> EntropySource.deterministic(SEED), true));
             TestFrontEnd fe = backend.connect()) {
            EventFd[] fds = start(fe);
            try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                // activating the ring translates the descriptor table first: that misses
                long[] miss = fe.readBackendIotlb(TIMEOUT);
                assertEquals(VhostUserProtocol.IOTLB_MISS, miss[2]);
                assertEquals(iova(VhostUserBackendTest.DESC), miss[0]);
                assertEquals(1, miss[1], "the descriptor table is read: RO");
                fe.sendIotlb(VhostUserProtocol.IOTLB_UPDATE, IOVA_BASE, TestFrontEnd.MEMORY_SIZE,
                    TestFrontEnd.UADDR_BASE, 3);

                DriverQueue driver = driver(fe);
                driver.add(new BufferChain(1).addWritable(iova(VhostUserBackendTest.BUFFERS), 48));
                driver.publish();
                kick.signal();
                assertTrue(VhostUserBackendTest.awaitCall(call, TIMEOUT));
                assertTrue(driver.pollUsed() >= 0);
                assertEquals(48, driver.usedLength());
                assertEquals(EntropySource.DeterministicEntropy.byteAt(SEED, 47),
                    fe.memory.slice(VhostUserBackendTest.BUFFERS + 47, 1).get(ValueLayout.JAVA_BYTE, 0));
                driver.enableInterrupts();

                // QEMU 7.2 leaves perm and uaddr of an INVALIDATE uninitialised: garbage is accepted
                fe.sendIotlb(VhostUserProtocol.IOTLB_INVALIDATE, IOVA_BASE, TestFrontEnd.MEMORY_SIZE, 0xdead_beefL, 7);
                driver.add(new BufferChain(1).addWritable(iova(VhostUserBackendTest.BUFFERS), 16));
                driver.publish();
                kick.signal();
                long[] again = fe.readBackendIotlb(TIMEOUT);
                assertEquals(VhostUserProtocol.IOTLB_MISS, again[2], "after the invalidation the ring misses again");
                assertTrue(again[0] >= IOVA_BASE && again[0] < IOVA_BASE + TestFrontEnd.MEMORY_SIZE);
                fe.sendIotlb(VhostUserProtocol.IOTLB_UPDATE, IOVA_BASE, TestFrontEnd.MEMORY_SIZE,
                    TestFrontEnd.UADDR_BASE, 3);
                assertTrue(VhostUserBackendTest.awaitCall(call, TIMEOUT), "the parked ring resumed after the update");
                assertTrue(driver.pollUsed() >= 0);
                assertEquals(16, driver.usedLength());
                // the sender thread counts a MISS after writing it, so the count may trail what we read
                long deadline = System.nanoTime() + TIMEOUT.toNanos();
                while (backend.server.statistics().iotlbMisses.sum() < 2 && System.nanoTime() < deadline) {
                    Thread.sleep(1);
                }
                assertTrue(backend.server.statistics().iotlbMisses.sum() >= 2);
                assertEquals(1, backend.server.statistics().iotlbInvalidations.sum());
                // both round trips were timed in their parts; the parked worker was woken by the second
                VhostUserStatistics s = backend.server.statistics();
                assertTrue(s.missToSocket.count() >= 2, s.toString());
                assertTrue(s.missAnswer.count() >= 2, s.toString());
                assertTrue(s.updateToWorker.count() >= 1, s.toString());
            }
        }
    }

    @Test
    void anUpdatePointingOutsideTheMemoryTableClosesTheConnection() throws Exception {
        try (BackendHarness backend = new BackendHarness(dir,
                 new RngDevice(() -> EntropySource.deterministic(SEED), true))) {
            try (TestFrontEnd fe = backend.connect()) {
                EventFd[] fds = start(fe);
                try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                    fe.readBackendIotlb(TIMEOUT);
                    // the rings map correctly, the buffer's IOVA page maps to a user address nobody described
                    fe.sendIotlb(VhostUserProtocol.IOTLB_UPDATE, IOVA_BASE, 0x10000, TestFrontEnd.UADDR_BASE, 3);
                    fe.sendIotlb(VhostUserProtocol.IOTLB_UPDATE, iova(VhostUserBackendTest.BUFFERS), 0x1000,
                        0x1000, 3);
                    DriverQueue driver = driver(fe);
                    driver.add(new BufferChain(1).addWritable(iova(VhostUserBackendTest.BUFFERS), 48));
                    driver.publish();
                    kick.signal();
                    assertTrue(fe.closedByBackEnd(TIMEOUT));
                }
            }
            backend.awaitLog("closing connection: vring 0: ", TIMEOUT);
        }
    }

    @Test
    void aMissFromTheFrontEndIsRefused() throws Exception {
        try (BackendHarness backend = new BackendHarness(dir,
                 new RngDevice(() -> EntropySource.deterministic(SEED), true))) {
            try (TestFrontEnd fe = backend.connect()) {
                fe.out.header(VhostUserProtocol.IOTLB_MSG, 0, 32);
                fe.out.payload().asSlice(0, 32).fill((byte) 0);
                fe.out.putU64(0, 0x1000).putU8(24, 1).putU8(25, VhostUserProtocol.IOTLB_MISS);
                fe.channel.write(fe.out);
                assertTrue(fe.closedByBackEnd(TIMEOUT));
            }
            backend.awaitLog("IOTLB_MSG refused: MISS goes from the device to the IOMMU", TIMEOUT);
        }
    }
}

package io.vringj.vhostuser.backend;

import io.vringj.device.rng.EntropySource;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.VhostUserProtocol;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The back end driven over a real Unix socket by a front end that plays QEMU's part. */
class VhostUserBackendTest {
    static final long SEED = 0x5eed;
    static final int QUEUE_SIZE = 8;
    static final long DESC = TestFrontEnd.GPA_BASE;
    static final long AVAIL = TestFrontEnd.GPA_BASE + 0x1000;
    static final long USED = TestFrontEnd.GPA_BASE + 0x2000;
    static final long BUFFERS = TestFrontEnd.GPA_BASE + 0x10000;
    static final long TABLES = TestFrontEnd.GPA_BASE + 0x8000;
    static final long PROTOCOL_FEATURES = 1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK;

    @TempDir
    Path dir;

    /** The set-up QEMU does when the guest driver sets DRIVER_OK; returns the kick and call eventfds. */
    static EventFd[] startRing(TestFrontEnd fe, long features) throws Exception {
        return startRing(fe, features, true);
    }

    /** As {@link #startRing(TestFrontEnd, long)}, with the guest memory's file sealed or not. */
    static EventFd[] startRing(TestFrontEnd fe, long features, boolean sealed) throws Exception {
        EventFd[] fds = prepareRing(fe, features, sealed);
        fe.sendU64(VhostUserProtocol.SET_VRING_KICK, 0, fds[0].fd());
        fe.sendState(VhostUserProtocol.SET_VRING_ENABLE, 0, 1);
        return fds;
    }

    /** Everything {@link #startRing} does but SET_VRING_KICK and SET_VRING_ENABLE; returns the kick and call eventfds. */
    static EventFd[] prepareRing(TestFrontEnd fe, long features, boolean sealed) throws Exception {
        fe.send(VhostUserProtocol.SET_OWNER, 0, 0);
        fe.sendU64NeedReply(VhostUserProtocol.SET_FEATURES,
            features | VirtioFeatures.bit(VhostUserProtocol.F_PROTOCOL_FEATURES));
        assertEquals(0, fe.replyU64(VhostUserProtocol.SET_FEATURES), "REPLY_ACK: success");
        fe.createMemory(sealed);
        fe.sendMemTable();
        fe.sendState(VhostUserProtocol.SET_VRING_NUM, 0, QUEUE_SIZE);
        fe.sendState(VhostUserProtocol.SET_VRING_BASE, 0, 0);
        fe.sendVringAddr(0, DESC, USED, AVAIL);
        EventFd kick = EventFd.create();
        EventFd call = EventFd.create();
        fe.sendU64(VhostUserProtocol.SET_VRING_CALL, 0, call.fd());
        return new EventFd[] {kick, call};
    }

    static void negotiateProtocol(TestFrontEnd fe) throws Exception {
        fe.send(VhostUserProtocol.GET_FEATURES, 0, 0);
        long offered = fe.replyU64(VhostUserProtocol.GET_FEATURES);
        assertTrue(VirtioFeatures.has(offered, VhostUserProtocol.F_PROTOCOL_FEATURES));
        fe.send(VhostUserProtocol.GET_PROTOCOL_FEATURES, 0, 0);
        long protocol = fe.replyU64(VhostUserProtocol.GET_PROTOCOL_FEATURES);
        assertEquals(PROTOCOL_FEATURES, protocol & PROTOCOL_FEATURES);
        fe.sendU64(VhostUserProtocol.SET_PROTOCOL_FEATURES, PROTOCOL_FEATURES);
    }

    /** Waits for the call eventfd; returns whether it was signalled. */
    static boolean awaitCall(EventFd call, Duration timeout) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fd = arena.allocate(8, 8);
            fd.set(ValueLayout.JAVA_INT, 0, call.fd());
            fd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            boolean signalled = Libc.poll(fd, 1, (int) timeout.toMillis()) == 1;
            call.drain();
            return signalled;
        }
    }

    @ParameterizedTest(name = "features {0}")
    @ValueSource(strings = {"EVENT_IDX+INDIRECT", "none"})
    void fillsEveryWritableBufferWithTheEntropyStreamAndInterrupts(String which) throws Exception {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | (which.equals("none") ? 0
            : VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC));
        try (BackendHarness backend = new BackendHarness(dir, SEED); TestFrontEnd fe = backend.connect()) {
            negotiateProtocol(fe);
            EventFd[] fds = startRing(fe, features);
            try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                DriverQueue driver = DriverQueue.create(features, QUEUE_SIZE, fe.memory,
                    new RingAddresses(DESC, AVAIL, USED));
                long streamPosition = 0;
                for (int round = 0; round < 5; round++) {
                    int[] lengths = {100, 4096 + 3, 1};
                    long[] addrs = {BUFFERS, BUFFERS + 0x2000, BUFFERS + 0x4000};
                    for (int i = 0; i < lengths.length; i++) {
                        driver.add(new BufferChain(2).addWritable(addrs[i], lengths[i]));
                    }
                    if (driver.publish()) {
                        kick.signal();
                    }
                    assertTrue(awaitCall(call, Duration.ofSeconds(10)), "round " + round + ": no interrupt");
                    for (int i = 0; i < lengths.length; i++) {
                        int head = driver.pollUsed();
                        assertTrue(head >= 0, "round " + round + ": chain " + i + " not returned");
                        assertEquals(lengths[i], driver.usedLength());
                        byte[] got = fe.memory.slice(addrs[i], lengths[i]).toArray(ValueLayout.JAVA_BYTE);
                        for (int b = 0; b < got.length; b++) {
                            assertEquals(EntropySource.DeterministicEntropy.byteAt(SEED, streamPosition + b), got[b],
                                "round " + round + " chain " + i + " byte " + b);
                        }
                        streamPosition += lengths[i];
                    }
                    driver.enableInterrupts();
                }
                fe.sendState(VhostUserProtocol.GET_VRING_BASE, 0, 0);
                assertEquals(15, fe.replyU64(VhostUserProtocol.GET_VRING_BASE) >>> 32,
                    "last avail index after 15 chains (num is the reply's second u32)");
            }
        }
    }

    @Test
    void servesARingThatStraddlesTwoRegionsContiguousInGuestPhysicalAndUserAddresses() throws Exception {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        long split = 0x80000;
        // the descriptor table's first half ends region 0, its second half starts region 1
        long desc = TestFrontEnd.GPA_BASE + split - 64;
        try (BackendHarness backend = new BackendHarness(dir, SEED); TestFrontEnd fe = backend.connect()) {
            negotiateProtocol(fe);
            fe.send(VhostUserProtocol.SET_OWNER, 0, 0);
            fe.sendU64(VhostUserProtocol.SET_FEATURES, features | VirtioFeatures.bit(VhostUserProtocol.F_PROTOCOL_FEATURES));
            fe.createMemory();
            fe.sendMemTableInTwoRegions(split);
            fe.sendState(VhostUserProtocol.SET_VRING_NUM, 0, QUEUE_SIZE);
            fe.sendVringAddr(0, desc, USED, AVAIL);
            try (EventFd kick = EventFd.create(); EventFd call = EventFd.create()) {
                fe.sendU64(VhostUserProtocol.SET_VRING_CALL, 0, call.fd());
                fe.sendU64(VhostUserProtocol.SET_VRING_KICK, 0, kick.fd());
                fe.sendState(VhostUserProtocol.SET_VRING_ENABLE, 0, 1);
                DriverQueue driver = DriverQueue.create(features, QUEUE_SIZE, fe.memory,
                    new RingAddresses(desc, AVAIL, USED));
                // eight chains fill every descriptor, on both sides of the seam
                for (int i = 0; i < QUEUE_SIZE; i++) {
                    driver.add(new BufferChain(1).addWritable(BUFFERS + 0x100L * i, 16));
                }
                driver.publish();
                kick.signal();
                int returned = 0;
                long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
                while (returned < QUEUE_SIZE && System.nanoTime() < deadline) {
                    if (driver.pollUsed() >= 0) {
                        assertEquals(16, driver.usedLength());
                        returned++;
                    } else {
                        awaitCall(call, Duration.ofMillis(100));
                    }
                }
                assertEquals(QUEUE_SIZE, returned, "every chain came back");
                assertFalse(fe.closedByBackEnd(Duration.ofMillis(100)), "the connection stays up");
            }
        }
    }

    @Test
    void honoursIndirectDescriptorsWhenNegotiated() throws Exception {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC);
        try (BackendHarness backend = new BackendHarness(dir, SEED); TestFrontEnd fe = backend.connect()) {
            negotiateProtocol(fe);
            EventFd[] fds = startRing(fe, features);
            try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                DriverQueue driver = DriverQueue.create(features, QUEUE_SIZE, fe.memory,
                    new RingAddresses(DESC, AVAIL, USED));
                BufferChain chain = new BufferChain(3).addWritable(BUFFERS, 10).addWritable(BUFFERS + 0x100, 20)
                    .addWritable(BUFFERS + 0x200, 30);
                driver.writeIndirectTable(chain, fe.memory.slice(TABLES, 48));
                driver.addIndirect(chain, TABLES);
                driver.publish();
                kick.signal();
                assertTrue(awaitCall(call, Duration.ofSeconds(10)));
                assertTrue(driver.pollUsed() >= 0);
                assertEquals(60, driver.usedLength());
                assertEquals(EntropySource.DeterministicEntropy.byteAt(SEED, 10),
                    fe.memory.slice(BUFFERS + 0x100, 1).get(ValueLayout.JAVA_BYTE, 0),
                    "the second piece continues the stream where the first ended");
            }
        }
    }

    @Test
    void closesTheConnectionWhenTheDriverUsesIndirectWithoutNegotiatingIt() throws Exception {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        try (BackendHarness backend = new BackendHarness(dir, SEED); TestFrontEnd fe = backend.connect()) {
            negotiateProtocol(fe);
            EventFd[] fds = startRing(fe, features);
            try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                long indirectFeatures = features | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC);
                DriverQueue driver = DriverQueue.create(indirectFeatures, QUEUE_SIZE, fe.memory,
                    new RingAddresses(DESC, AVAIL, USED));
                BufferChain chain = new BufferChain(1).addWritable(BUFFERS, 10);
                driver.writeIndirectTable(chain, fe.memory.slice(TABLES, 16));
                driver.addIndirect(chain, TABLES);
                driver.publish();
                kick.signal();
                assertTrue(fe.closedByBackEnd(Duration.ofSeconds(10)));
                backend.awaitLog("VIRTIO_F_INDIRECT_DESC was not negotiated", Duration.ofSeconds(5));
                assertEquals(0, fe.memory.slice(BUFFERS, 1).get(ValueLayout.JAVA_BYTE, 0),
                    "nothing was written for the rejected chain");
            }
        }
    }

    @Test
    void shutdownClosesTheListeningSocketAndRemovesItsFile() throws Exception {
        BackendHarness backend = new BackendHarness(dir, SEED);
        assertTrue(Files.exists(Path.of(backend.path)));
        try (TestFrontEnd fe = backend.connect()) {
            negotiateProtocol(fe);
            backend.close();
            assertTrue(fe.closedByBackEnd(Duration.ofSeconds(5)), "the live connection ends with the server");
        }
        assertFalse(backend.serverAlive());
        assertFalse(Files.exists(Path.of(backend.path)));
    }

    @Test
    void getVringBaseStopsTheRingAndLaterKicksAreIgnored() throws Exception {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        try (BackendHarness backend = new BackendHarness(dir, SEED); TestFrontEnd fe = backend.connect()) {
            negotiateProtocol(fe);
            EventFd[] fds = startRing(fe, features);
            try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                DriverQueue driver = DriverQueue.create(features, QUEUE_SIZE, fe.memory,
                    new RingAddresses(DESC, AVAIL, USED));
                fe.sendState(VhostUserProtocol.GET_VRING_BASE, 0, 0);
                assertEquals(0, fe.replyU64(VhostUserProtocol.GET_VRING_BASE) >>> 32);
                driver.add(new BufferChain(1).addWritable(BUFFERS, 8));
                driver.publish();
                kick.signal();
                assertFalse(awaitCall(call, Duration.ofMillis(300)), "a stopped ring does not run");
                assertEquals(DriverQueue.NONE, driver.pollUsed());
            }
        }
    }

    /** Offers one 32-byte writable buffer, kicks, and returns the bytes the device wrote. */
    private static byte[] oneRequest(DriverQueue driver, TestFrontEnd fe, EventFd kick, EventFd call, String when)
        throws Exception {
        driver.add(new BufferChain(1).addWritable(BUFFERS, 32));
        driver.publish();
        kick.signal();
        assertTrue(awaitCall(call, Duration.ofSeconds(10)), when + ": no interrupt");
        assertTrue(driver.pollUsed() >= 0, when + ": chain not returned");
        assertEquals(32, driver.usedLength(), when);
        driver.enableInterrupts();
        return fe.memory.slice(BUFFERS, 32).toArray(ValueLayout.JAVA_BYTE);
    }

    @Test
    void aNewMemoryTableWhileRunningRemapsAndTheRingCarriesOn() throws Exception {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        try (BackendHarness backend = new BackendHarness(dir, SEED); TestFrontEnd fe = backend.connect()) {
            negotiateProtocol(fe);
            EventFd[] fds = startRing(fe, features);
            try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                DriverQueue driver = DriverQueue.create(features, QUEUE_SIZE, fe.memory,
                    new RingAddresses(DESC, AVAIL, USED));
                byte[] first = oneRequest(driver, fe, kick, call, "before the new table");
                assertEquals(EntropySource.DeterministicEntropy.byteAt(SEED, 0), first[0]);
                fe.sendMemTable(VhostUserProtocol.FLAG_NEED_REPLY);
                assertEquals(0, fe.replyU64(VhostUserProtocol.SET_MEM_TABLE), "the new table is in place");
                byte[] second = oneRequest(driver, fe, kick, call, "after the new table");
                assertEquals(EntropySource.DeterministicEntropy.byteAt(SEED, 32), second[0],
                    "the stream continues: the same worker's handler, the queue restored at its avail index");
                fe.sendState(VhostUserProtocol.GET_VRING_BASE, 0, 0);
                assertEquals(2, fe.replyU64(VhostUserProtocol.GET_VRING_BASE) >>> 32);
                backend.awaitLog("memory table MemoryTable[[gpa 0x40000000", Duration.ofSeconds(5));
            }
        }
    }

    @Test
    void aReplacedCallFdIsSignalledInsteadOfTheOldOne() throws Exception {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        try (BackendHarness backend = new BackendHarness(dir, SEED); TestFrontEnd fe = backend.connect()) {
            negotiateProtocol(fe);
            EventFd[] fds = startRing(fe, features);
            try (EventFd kick = fds[0]; EventFd oldCall = fds[1]; EventFd newCall = EventFd.create()) {
                DriverQueue driver = DriverQueue.create(features, QUEUE_SIZE, fe.memory,
                    new RingAddresses(DESC, AVAIL, USED));
                oneRequest(driver, fe, kick, oldCall, "first call fd");
                // NEED_REPLY on a message with the fd: sent by hand so the fd rides along
                fe.out.header(VhostUserProtocol.SET_VRING_CALL, VhostUserProtocol.FLAG_NEED_REPLY, 8).putU64(0, 0);
                fe.channel.write(fe.out, newCall.fd());
                assertEquals(0, fe.replyU64(VhostUserProtocol.SET_VRING_CALL));
                oneRequest(driver, fe, kick, newCall, "second call fd");
                assertFalse(awaitCall(oldCall, Duration.ofMillis(100)), "the old call fd is no longer signalled");
            }
        }
    }

    @Test
    void theBackEndUnmapsAReplacedMemoryTableAndEverythingOnDisconnect() throws Exception {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        try (BackendHarness backend = new BackendHarness(dir, SEED); TestFrontEnd fe = backend.connect()) {
            negotiateProtocol(fe);
            EventFd[] fds = startRing(fe, features);
            try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                DriverQueue driver = DriverQueue.create(features, QUEUE_SIZE, fe.memory,
                    new RingAddresses(DESC, AVAIL, USED));
                oneRequest(driver, fe, kick, call, "first table");
                assertEquals(2, fe.mappingsOfGuestMemory(), "ours and the back end's");
                // NEED_REPLY: the acknowledgement says the new table is in place
                fe.sendMemTable(VhostUserProtocol.FLAG_NEED_REPLY);
                assertEquals(0, fe.replyU64(VhostUserProtocol.SET_MEM_TABLE));
                oneRequest(driver, fe, kick, call, "second table");
                assertEquals(2, fe.mappingsOfGuestMemory(), "the replaced table was unmapped");
                fe.channel.shutdown();
                long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
                while (fe.mappingsOfGuestMemory() != 1 && System.nanoTime() < deadline) {
                    Thread.sleep(10);
                }
                assertEquals(1, fe.mappingsOfGuestMemory(), "the back end unmapped guest memory on disconnect");
                backend.awaitLog("front end disconnected", Duration.ofSeconds(5));
            }
        }
    }
}

package io.vringj.vhostuser.backend;

import io.vringj.device.VirtioDevice;
import io.vringj.device.rng.EntropySource;
import io.vringj.device.rng.RngDevice;
import io.vringj.ring.BufferChain;
import io.vringj.ring.ChainHandler;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.VhostUserProtocol;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Malformed and hostile front-end messages, sent over a real socket: each closes that
 * connection with a logged reason naming the value and the rule, and the back end then serves
 * the next connection normally.
 */
class HostileFrontEndTest {
    static final Duration TIMEOUT = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    @FunctionalInterface
    interface Attack {
        void send(TestFrontEnd fe) throws Exception;
    }

    /** Sends the attack, checks the connection is closed with {@code reason} logged, then that the back end still serves. */
    private void assertRejected(String reason, Attack attack) throws Exception {
        assertRejected(new RngDevice(() -> EntropySource.deterministic(1), false), reason, attack);
    }

    private void assertRejected(VirtioDevice device, String reason, Attack attack) throws Exception {
        try (BackendHarness backend = new BackendHarness(dir, device)) {
            try (TestFrontEnd fe = backend.connect()) {
                attack.send(fe);
                assertTrue(fe.closedByBackEnd(TIMEOUT), "the back end kept the connection open");
            }
            String line = backend.awaitLog(reason, TIMEOUT);
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

    @Test
    void rejectsSetFeaturesWithAFourBytePayload() throws Exception {
        assertRejected("SET_FEATURES has a 4-byte payload; it must be 8 bytes",
            fe -> fe.send(VhostUserProtocol.SET_FEATURES, 0, 4));
    }

    @Test
    void rejectsAnUnknownRequest() throws Exception {
        assertRejected("request 99 is not a request this back end (virtio-rng) accepts",
            fe -> fe.send(99, 0, 0));
    }

    @Test
    void rejectsAConfigRequestItNeverOffered() throws Exception {
        assertRejected("GET_CONFIG is not a request this back end",
            fe -> fe.send(VhostUserProtocol.GET_CONFIG, 0, 12));
    }

    @Test
    void rejectsAPayloadLargerThanAnyRequestNeeds() throws Exception {
        assertRejected("announces a payload of 1000000 bytes; at most 4096 are accepted",
            fe -> {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment header = arena.allocate(12);
                    header.set(ValueLayout.JAVA_INT, 0, VhostUserProtocol.SET_MEM_TABLE);
                    header.set(ValueLayout.JAVA_INT, 4, VhostUserProtocol.VERSION);
                    header.set(ValueLayout.JAVA_INT, 8, 1_000_000);
                    Libc.write(fe.channel.fd(), header, 12);
                }
            });
    }

    @Test
    void rejectsAHeaderWithTheWrongVersion() throws Exception {
        assertRejected("has version 2 in its flags 0x2; only version 1 is spoken", fe -> {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment header = arena.allocate(12);
                header.set(ValueLayout.JAVA_INT, 0, VhostUserProtocol.GET_FEATURES);
                header.set(ValueLayout.JAVA_INT, 4, 2);
                header.set(ValueLayout.JAVA_INT, 8, 0);
                Libc.write(fe.channel.fd(), header, 12);
            }
        });
    }

    @Test
    void closesAConnectionThatStallsInsideAMessage() throws Exception {
        // a front end that sends half a header and then nothing would hold the connection thread
        assertRejected("peer stalled for 300 ms 5 bytes into a 12-byte header", fe -> {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment header = arena.allocate(12);
                header.set(ValueLayout.JAVA_INT, 0, VhostUserProtocol.GET_FEATURES);
                header.set(ValueLayout.JAVA_INT, 4, VhostUserProtocol.VERSION);
                Libc.write(fe.channel.fd(), header, 5);
            }
        });
    }

    @Test
    void rejectsAKickWithoutItsFd() throws Exception {
        assertRejected("SET_VRING_KICK for vring 0 came with 0 fds; it takes 1 (the no-fd bit is clear)",
            fe -> fe.sendU64(VhostUserProtocol.SET_VRING_KICK, 0));
    }

    @Test
    void rejectsAKickForAVringTheDeviceDoesNotHave() throws Exception {
        assertRejected("SET_VRING_KICK names vring 5; virtio-rng has 1 (0..0)",
            fe -> fe.sendU64(VhostUserProtocol.SET_VRING_KICK, 5 | VhostUserProtocol.VRING_NOFD_MASK));
    }

    @Test
    void rejectsAMemoryTableWithFewerFdsThanRegions() throws Exception {
        assertRejected("SET_MEM_TABLE has 1 regions but 0 fds; each region needs exactly one fd", fe -> {
            fe.out.header(VhostUserProtocol.SET_MEM_TABLE, 0, 40).putU32(0, 1).putU32(4, 0)
                .putU64(8, 0).putU64(16, 4096).putU64(24, 0x7000_0000L).putU64(32, 0);
            fe.channel.write(fe.out);
        });
    }

    @Test
    void rejectsAMemoryTableWhosePayloadDisagreesWithItsRegionCount() throws Exception {
        assertRejected("SET_MEM_TABLE with 2 regions has a 40-byte payload; it must be 72 bytes", fe -> {
            fe.out.header(VhostUserProtocol.SET_MEM_TABLE, 0, 40).putU32(0, 2).putU32(4, 0);
            fe.channel.write(fe.out);
        });
    }

    @Test
    void rejectsAMemoryRegionLargerThanItsFile() throws Exception {
        // mapping past the end of the memfd would make every access there a SIGBUS
        int memfd = Libc.memfd("hostile-small", 4096);
        try {
            assertRejected("SET_MEM_TABLE region 0 needs mmap_offset 0x0 + size 0x100000 bytes of its fd, but the "
                + "file holds only 0x1000", fe -> {
                    fe.out.header(VhostUserProtocol.SET_MEM_TABLE, 0, 40).putU32(0, 1).putU32(4, 0)
                        .putU64(8, 0).putU64(16, 0x100000).putU64(24, 0x7000_0000L).putU64(32, 0);
                    fe.channel.write(fe.out, memfd);
                });
        } finally {
            Libc.close(memfd);
        }
    }

    @Test
    void rejectsAQueueSizeThatIsNotAPowerOfTwo() throws Exception {
        assertRejected("SET_VRING_NUM 3 for vring 0: a split ring's size is a power of two",
            fe -> fe.sendState(VhostUserProtocol.SET_VRING_NUM, 0, 3));
    }

    @Test
    void rejectsRingAddressesOutsideTheMemoryTable() throws Exception {
        assertRejected("vring 0 descriptor area at user address 0x7f0012440000 (128 bytes) is outside the memory table",
            fe -> {
                fe.send(VhostUserProtocol.SET_OWNER, 0, 0);
                fe.sendU64(VhostUserProtocol.SET_FEATURES, VirtioFeatures.bit(VirtioFeatures.VERSION_1));
                fe.createMemory();
                fe.sendMemTable();
                fe.sendState(VhostUserProtocol.SET_VRING_NUM, 0, 8);
                // the descriptor table starts one byte past the end of guest memory
                long outside = TestFrontEnd.GPA_BASE + TestFrontEnd.MEMORY_SIZE;
                fe.sendVringAddr(0, outside, TestFrontEnd.GPA_BASE + 0x2000, TestFrontEnd.GPA_BASE + 0x1000);
                try (EventFd kick = EventFd.create()) {
                    fe.sendU64(VhostUserProtocol.SET_VRING_KICK, 0, kick.fd());
                }
            });
    }

    @Test
    void rejectsABufferAddressOutsideTheMemoryTable() throws Exception {
        assertRejected("may not reach", fe -> {
            long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
            VhostUserBackendTest.negotiateProtocol(fe);
            EventFd[] fds = VhostUserBackendTest.startRing(fe, features);
            try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                DriverQueue driver = DriverQueue.create(features, VhostUserBackendTest.QUEUE_SIZE, fe.memory,
                    new RingAddresses(VhostUserBackendTest.DESC, VhostUserBackendTest.AVAIL, VhostUserBackendTest.USED));
                // a guest-physical address far outside the one region the front end described
                driver.add(new BufferChain(1).addWritable(0x1_0000_0000L, 64));
                driver.publish();
                kick.signal();
                assertTrue(fe.closedByBackEnd(TIMEOUT));
            }
        });
    }

    @Test
    void rejectsAChainThatLoops() throws Exception {
        assertRejected("chain has more descriptors than its table, so it loops", fe -> {
            long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
            VhostUserBackendTest.negotiateProtocol(fe);
            EventFd[] fds = VhostUserBackendTest.startRing(fe, features);
            try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                // descriptor 0 -> 1 -> 0 ..., written by hand as a malicious driver would
                MemorySegment desc = fe.memory.slice(VhostUserBackendTest.DESC, 32);
                for (int i = 0; i < 2; i++) {
                    desc.set(ValueLayout.JAVA_LONG_UNALIGNED, 16L * i, VhostUserBackendTest.BUFFERS);
                    desc.set(ValueLayout.JAVA_INT_UNALIGNED, 16L * i + 8, 16);
                    desc.set(ValueLayout.JAVA_SHORT_UNALIGNED, 16L * i + 12, (short) (1 | 2));
                    desc.set(ValueLayout.JAVA_SHORT_UNALIGNED, 16L * i + 14, (short) (1 - i));
                }
                MemorySegment avail = fe.memory.slice(VhostUserBackendTest.AVAIL, 8);
                avail.set(ValueLayout.JAVA_SHORT_UNALIGNED, 4, (short) 0);
                avail.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2, (short) 1);
                kick.signal();
                assertTrue(fe.closedByBackEnd(TIMEOUT));
            }
        });
    }

    @Test
    void rejectsAnIotlbMessageWithoutAccessPlatform() throws Exception {
        assertRejected("IOTLB_MSG but ACCESS_PLATFORM was not negotiated", fe -> {
            fe.out.header(VhostUserProtocol.IOTLB_MSG, 0, VhostUserProtocol.IOTLB_MSG_SIZE)
                .putU64(0, 0x1000).putU64(8, 0x1000).putU64(16, 0x7000_0000L).putU8(24, 3)
                .putU8(25, VhostUserProtocol.IOTLB_UPDATE);
            fe.channel.write(fe.out);
        });
    }

    @Test
    void rejectsAProtocolFeatureThatWasNotOffered() throws Exception {
        assertRejected("SET_PROTOCOL_FEATURES 0x1 sets bits 0x1 that were not offered",
            fe -> fe.sendU64(VhostUserProtocol.SET_PROTOCOL_FEATURES, 1L << VhostUserProtocol.PROTOCOL_F_MQ));
    }

    @Test
    void rejectsThePackedRingWhenTheDeviceDidNotOfferIt() throws Exception {
        RngDevice rng = new RngDevice(() -> EntropySource.deterministic(1), false);
        VirtioDevice splitOnly = new VirtioDevice() {
            @Override
            public String name() {
                return rng.name();
            }

            @Override
            public long offeredFeatures() {
                return rng.offeredFeatures() & ~VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
            }

            @Override
            public int queueCount() {
                return rng.queueCount();
            }

            @Override
            public int maxQueueSize() {
                return rng.maxQueueSize();
            }

            @Override
            public ChainHandler handler(int queueIndex, long negotiatedFeatures) {
                return rng.handler(queueIndex, negotiatedFeatures);
            }
        };
        assertRejected(splitOnly, "sets RING_PACKED, which was not offered",
            fe -> fe.sendU64(VhostUserProtocol.SET_FEATURES,
                VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_PACKED)));
    }

    @Test
    void anErrorInsideAWorkerClosesOnlyThatConnection() throws Exception {
        // what a fault in the front end's memory looks like once the JVM turned it into an exception
        RngDevice rng = new RngDevice(() -> EntropySource.deterministic(1), false);
        VirtioDevice faulting = new VirtioDevice() {
            @Override
            public String name() {
                return rng.name();
            }

            @Override
            public long offeredFeatures() {
                return rng.offeredFeatures();
            }

            @Override
            public int queueCount() {
                return 1;
            }

            @Override
            public int maxQueueSize() {
                return rng.maxQueueSize();
            }

            @Override
            public ChainHandler handler(int queueIndex, long negotiatedFeatures) {
                return chain -> {
                    throw new InternalError("a fault occurred in an unsafe memory access operation");
                };
            }
        };
        assertRejected(faulting, "worker failed: java.lang.InternalError: a fault occurred", fe -> {
            long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
            VhostUserBackendTest.negotiateProtocol(fe);
            EventFd[] fds = VhostUserBackendTest.startRing(fe, features);
            try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                DriverQueue driver = DriverQueue.create(features, VhostUserBackendTest.QUEUE_SIZE, fe.memory,
                    new RingAddresses(VhostUserBackendTest.DESC, VhostUserBackendTest.AVAIL, VhostUserBackendTest.USED));
                driver.add(new BufferChain(1).addWritable(VhostUserBackendTest.BUFFERS, 64));
                driver.publish();
                kick.signal();
                assertTrue(fe.closedByBackEnd(TIMEOUT));
            }
        });
    }

    @Test
    void closesTheFdsOfARejectedMessage() throws Exception {
        // pass one end of a socket pair with a message that takes no fds: once the back end has
        // rejected the message and closed its copy, our end sees end-of-stream
        int[] pair = Libc.socketPair();
        try (Arena arena = Arena.ofConfined()) {
            assertRejected("GET_FEATURES came with 1 fds; it takes 0", fe -> {
                fe.out.header(VhostUserProtocol.GET_FEATURES, 0, 0);
                fe.channel.write(fe.out, pair[1]);
                Libc.close(pair[1]);
            });
            MemorySegment pollfd = arena.allocate(8, 8);
            pollfd.set(ValueLayout.JAVA_INT, 0, pair[0]);
            pollfd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            assertEquals(1, Libc.poll(pollfd, 1, (int) TIMEOUT.toMillis()), "the back end still holds the fd");
            assertEquals(0, Libc.read(pair[0], arena.allocate(8), 8), "end-of-stream: every copy is closed");
        } finally {
            Libc.close(pair[0]);
        }
    }
}

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
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Several front ends on one socket at once, each with its own memory, rings and workers [issue 11 item 12]. */
class ConcurrentFrontEndsTest {
    static final long SEED = 0x77;
    static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX);
    static final Duration TIMEOUT = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    @Test
    void servesTwoFrontEndsAtOnceEachWithItsOwnMemoryAndStream() throws Exception {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            try (BackendHarness backend = new BackendHarness(dir, SEED);
                 TestFrontEnd first = backend.connect(); TestFrontEnd second = backend.connect()) {
                VhostUserBackendTest.negotiateProtocol(first);
                VhostUserBackendTest.negotiateProtocol(second);
                EventFd[] a = VhostUserBackendTest.startRing(first, FEATURES);
                EventFd[] b = VhostUserBackendTest.startRing(second, FEATURES);
                try (EventFd kickA = a[0]; EventFd callA = a[1]; EventFd kickB = b[0]; EventFd callB = b[1]) {
                    assertEquals(2, backend.server.activeConnections(), "both front ends are served");
                    DriverQueue driverA = driver(first);
                    DriverQueue driverB = driver(second);
                    long position = 0;
                    // interleaved: each round both rings have a chain in flight at the same time
                    for (int round = 0; round < 4; round++) {
                        int length = 100 + round;
                        driverA.add(new BufferChain(1).addWritable(VhostUserBackendTest.BUFFERS, length));
                        driverB.add(new BufferChain(1).addWritable(VhostUserBackendTest.BUFFERS, length));
                        driverA.publish();
                        driverB.publish();
                        kickA.signal();
                        kickB.signal();
                        assertTrue(VhostUserBackendTest.awaitCall(callA, TIMEOUT), "round " + round + ": first");
                        assertTrue(VhostUserBackendTest.awaitCall(callB, TIMEOUT), "round " + round + ": second");
                        assertTrue(driverA.pollUsed() >= 0 && driverB.pollUsed() >= 0);
                        assertEquals(length, driverA.usedLength());
                        assertEquals(length, driverB.usedLength());
                        // each connection has its own worker and entropy stream, in its own memory
                        byte[] gotA = first.memory.slice(VhostUserBackendTest.BUFFERS, length).toArray(ValueLayout.JAVA_BYTE);
                        byte[] gotB = second.memory.slice(VhostUserBackendTest.BUFFERS, length).toArray(ValueLayout.JAVA_BYTE);
                        for (int i = 0; i < length; i++) {
                            byte expected = EntropySource.DeterministicEntropy.byteAt(SEED, position + i);
                            assertEquals(expected, gotA[i], "first, byte " + i);
                            assertEquals(expected, gotB[i], "second, byte " + i);
                        }
                        position += length;
                        driverA.enableInterrupts();
                        driverB.enableInterrupts();
                    }
                    // one front end leaving does not disturb the other
                    first.close();
                    backend.awaitLog("front end disconnected", TIMEOUT);
                    ShrinkingMemoryTest.assertServed(second, driverB, kickB, callB);
                }
            }
        });
    }

    @Test
    void refusesAFrontEndPastTheLimitWithALoggedReason() throws Exception {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            BackendOptions options = BackendOptions.defaults().withStallMillis(BackendHarness.STALL_MILLIS)
                .withMaxConnections(1);
            try (BackendHarness backend = new BackendHarness(dir,
                     new RngDevice(() -> EntropySource.deterministic(SEED), false), options);
                 TestFrontEnd first = backend.connect()) {
                VhostUserBackendTest.negotiateProtocol(first);
                try (TestFrontEnd second = backend.connect()) {
                    assertTrue(second.closedByBackEnd(TIMEOUT), "the second front end was not refused");
                }
                String line = backend.awaitLog("refusing front end", TIMEOUT);
                assertTrue(line.startsWith("WARNING") && line.contains("the limit is 1 (--max-connections)"), line);
                assertEquals(1, backend.server.statistics().connectionsRefused.sum());
                EventFd[] fds = VhostUserBackendTest.startRing(first, FEATURES);
                try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                    ShrinkingMemoryTest.assertServed(first, driver(first), kick, call);
                }
                first.close();
                backend.awaitLog("front end disconnected", TIMEOUT);
                // with the first gone, a new front end is served
                try (TestFrontEnd third = backend.connect()) {
                    VhostUserBackendTest.negotiateProtocol(third);
                    EventFd[] fds3 = VhostUserBackendTest.startRing(third, FEATURES);
                    try (EventFd kick = fds3[0]; EventFd call = fds3[1]) {
                        ShrinkingMemoryTest.assertServed(third, driver(third), kick, call);
                    }
                }
            }
        });
    }

    private static DriverQueue driver(TestFrontEnd fe) {
        return DriverQueue.create(FEATURES, VhostUserBackendTest.QUEUE_SIZE, fe.memory,
            new RingAddresses(VhostUserBackendTest.DESC, VhostUserBackendTest.AVAIL, VhostUserBackendTest.USED));
    }
}

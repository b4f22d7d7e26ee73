package io.vringj.vhostuser.backend;

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
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Front ends that hand the back end fds which would block or wake it for ever [issue 11 items
 * 4 and 5]: the back end keeps serving, stops promptly and serves the next front end.
 */
class StuckFrontEndTest {
    static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
    /** The largest value an eventfd counter holds [eventfd(2)]: one more write would block. */
    static final long EVENTFD_MAX = 0xffff_ffff_ffff_fffeL;

    @TempDir
    Path dir;

    @Test
    void aCallEventfdAtItsMaximumCountDropsInterruptsInsteadOfBlocking() throws Exception {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            try (BackendHarness backend = new BackendHarness(dir, 1)) {
                try (TestFrontEnd fe = backend.connect(); Arena arena = Arena.ofConfined()) {
                    VhostUserBackendTest.negotiateProtocol(fe);
                    EventFd[] fds = VhostUserBackendTest.startRing(fe, FEATURES);
                    // a blocking eventfd, as a front end may pass (the flag belongs to the open file, which
                    // the back end shares), in place of the test's non-blocking one
                    fds[1].close();
                    fds[1] = EventFd.adopt(Libc.eventfd(Libc.EFD_CLOEXEC));
                    // acknowledged: the ring is running, and a chain served before the connection thread
                    // swapped the fd would signal the old one
                    fe.sendU64NeedReply(VhostUserProtocol.SET_VRING_CALL, 0, fds[1].fd());
                    assertEquals(0, fe.replyU64(VhostUserProtocol.SET_VRING_CALL), "REPLY_ACK: success");
                    try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                        // the counter at its maximum: a blocking write of 1 would wait until someone reads
                        MemorySegment max = arena.allocate(ValueLayout.JAVA_LONG);
                        max.set(ValueLayout.JAVA_LONG, 0, EVENTFD_MAX);
                        assertEquals(8, Libc.write(call.fd(), max, 8));
                        DriverQueue driver = DriverQueue.create(FEATURES, VhostUserBackendTest.QUEUE_SIZE,
                            fe.memory, new RingAddresses(VhostUserBackendTest.DESC, VhostUserBackendTest.AVAIL,
                                VhostUserBackendTest.USED));
                        for (int round = 0; round < 3; round++) {
                            driver.add(new BufferChain(1).addWritable(VhostUserBackendTest.BUFFERS, 64));
                            driver.publish();
                            kick.signal();
                            // no interrupt can arrive: poll the used ring as a polling driver would
                            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
                            int head;
                            while ((head = driver.pollUsed()) < 0 && System.nanoTime() < deadline) {
                                Thread.sleep(5);
                            }
                            assertTrue(head >= 0, "round " + round + ": the chain was not served");
                            driver.enableInterrupts();
                        }
                        assertTrue(backend.server.statistics().callsDropped.sum() >= 1, "the full call fd dropped "
                            + "interrupts: " + backend.server.statistics());
                        long start = System.nanoTime();
                        fe.sendState(VhostUserProtocol.GET_VRING_BASE, 0, 0);
                        assertEquals(3, fe.replyU64(VhostUserProtocol.GET_VRING_BASE) >>> 32);
                        assertTrue(System.nanoTime() - start < Duration.ofSeconds(2).toNanos(),
                            "GET_VRING_BASE stopped the worker promptly");
                    }
                }
                try (TestFrontEnd next = backend.connect()) {
                    VhostUserBackendTest.negotiateProtocol(next);
                    EventFd[] fds = VhostUserBackendTest.startRing(next, FEATURES);
                    try (EventFd kick = fds[0]; EventFd call = fds[1]) {
                        ShrinkingMemoryTest.assertServed(next,
                            DriverQueue.create(FEATURES, VhostUserBackendTest.QUEUE_SIZE, next.memory,
                                new RingAddresses(VhostUserBackendTest.DESC, VhostUserBackendTest.AVAIL,
                                    VhostUserBackendTest.USED)), kick, call);
                    }
                }
                long start = System.nanoTime();
                backend.server.close();
                assertTrue(System.nanoTime() - start < Duration.ofSeconds(5).toNanos(), "the back end stops promptly");
            }
        });
    }

    @Test
    void aKickFdWhosePeerHungUpEndsTheRingInsteadOfSpinning() throws Exception {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            try (BackendHarness backend = new BackendHarness(dir, 1); TestFrontEnd fe = backend.connect()) {
                VhostUserBackendTest.negotiateProtocol(fe);
                EventFd[] fds = VhostUserBackendTest.prepareRing(fe, FEATURES, true);
                fds[0].close();
                // a stream whose other end is closed: poll reports POLLIN|POLLHUP for ever, read returns 0
                int[] pair = Libc.socketPair();
                try (EventFd call = fds[1]) {
                    fe.sendU64(VhostUserProtocol.SET_VRING_KICK, 0, pair[0]);
                    fe.sendState(VhostUserProtocol.SET_VRING_ENABLE, 0, 1);
                    Libc.close(pair[0]);
                    Libc.close(pair[1]);
                    String line = backend.awaitLog("reports poll events", Duration.ofSeconds(10));
                    assertTrue(line.contains("POLLHUP") && line.startsWith("WARNING"), line);
                    long before = backend.server.statistics().workerWakeups.sum();
                    Thread.sleep(300);
                    long after = backend.server.statistics().workerWakeups.sum();
                    assertEquals(before, after, "the worker keeps waking on the hung-up fd");
                    // the connection is still served: the ring stopped where it was
                    fe.sendState(VhostUserProtocol.GET_VRING_BASE, 0, 0);
                    assertEquals(0, fe.replyU64(VhostUserProtocol.GET_VRING_BASE) >>> 32);
                }
            }
        });
    }
}

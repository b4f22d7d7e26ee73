package io.vringj.vhostuser.backend;

import io.vringj.device.rng.EntropySource;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.VhostUserProtocol;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import static io.vringj.vhostuser.backend.VhostUserBackendTest.awaitCall;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packed ring's {@code SET_VRING_BASE} / {@code GET_VRING_BASE} over a real socket. For a
 * packed ring the state is 32 bits: the next avail position and its wrap counter in bits 0-15,
 * the next used position and its wrap counter in bits 16-31 (QEMU's encoding). Some front ends
 * (DPDK's virtio_user among them) send only the avail half, the high 16 bits zero: with nothing
 * in flight the used state equals the avail state, and the back end must take it so, or it
 * writes used descriptors where the driver does not look, with the wrong wrap counter. The test
 * fails if {@code Vrings.setBase} stops filling in the used half.
 */
class PackedVringBaseTest {
    static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
        | VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
    static final int QUEUE_SIZE = 8;
    static final long DESC = TestFrontEnd.GPA_BASE;
    static final long DRIVER_EVENT = TestFrontEnd.GPA_BASE + 0x1000;
    static final long DEVICE_EVENT = TestFrontEnd.GPA_BASE + 0x2000;
    static final long BUFFERS = TestFrontEnd.GPA_BASE + 0x10000;
    /** The driver's ring state: position 6 of 8, wrap counter 1; three chains cross the wrap. */
    static final int START = 0x8006;
    /** Three chains later: position 1, wrap counter 0, in both halves. */
    static final int AFTER_THREE = 0x0001_0001;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"avail half only", "both halves"})
    void aPackedRingResumesWhereTheDriverStandsAndGetVringBaseReturnsBothHalves(String sent) throws Exception {
        int base = sent.equals("both halves") ? START | START << 16 : START;
        try (BackendHarness backend = new BackendHarness(dir, VhostUserBackendTest.SEED);
             TestFrontEnd fe = backend.connect()) {
            VhostUserBackendTest.negotiateProtocol(fe);
            fe.send(VhostUserProtocol.SET_OWNER, 0, 0);
            fe.sendU64NeedReply(VhostUserProtocol.SET_FEATURES,
                FEATURES | VirtioFeatures.bit(VhostUserProtocol.F_PROTOCOL_FEATURES));
            assertEquals(0, fe.replyU64(VhostUserProtocol.SET_FEATURES), "REPLY_ACK: success");
            fe.createMemory();
            fe.sendMemTable();
            fe.sendState(VhostUserProtocol.SET_VRING_NUM, 0, QUEUE_SIZE);
            fe.sendState(VhostUserProtocol.SET_VRING_BASE, 0, base);
            // SET_VRING_ADDR's order: descriptor, used (device area), avail (driver area)
            fe.sendVringAddr(0, DESC, DEVICE_EVENT, DRIVER_EVENT);
            try (EventFd kick = EventFd.create(); EventFd call = EventFd.create()) {
                fe.sendU64(VhostUserProtocol.SET_VRING_CALL, 0, call.fd());
                fe.sendU64(VhostUserProtocol.SET_VRING_KICK, 0, kick.fd());
                fe.sendState(VhostUserProtocol.SET_VRING_ENABLE, 0, 1);
                DriverQueue driver = DriverQueue.create(FEATURES, QUEUE_SIZE, fe.memory,
                    new RingAddresses(DESC, DRIVER_EVENT, DEVICE_EVENT), START);
                int[] lengths = {40, 7, 100};
                for (int i = 0; i < lengths.length; i++) {
                    driver.add(new BufferChain(1).addWritable(BUFFERS + i * 0x1000L, lengths[i]));
                }
                if (driver.publish()) {
                    kick.signal();
                }
                assertTrue(awaitCall(call, Duration.ofSeconds(10)), sent + ": no interrupt");
                long position = 0;
                for (int i = 0; i < lengths.length; i++) {
                    assertTrue(driver.pollUsed() >= 0, sent + ": chain " + i + " is not where the driver looks for it"
                        + " (used position 6, wrap counter 1)");
                    assertEquals(lengths[i], driver.usedLength(), sent + ": chain " + i);
                    byte[] got = fe.memory.slice(BUFFERS + i * 0x1000L, lengths[i]).toArray(ValueLayout.JAVA_BYTE);
                    for (int b = 0; b < got.length; b++) {
                        assertEquals(EntropySource.DeterministicEntropy.byteAt(VhostUserBackendTest.SEED, position + b),
                            got[b], sent + ": chain " + i + " byte " + b);
                    }
                    position += got.length;
                }
                fe.sendState(VhostUserProtocol.GET_VRING_BASE, 0, 0);
                long reply = fe.replyU64(VhostUserProtocol.GET_VRING_BASE);
                assertEquals(0, (int) reply, "GET_VRING_BASE echoes vring 0");
                assertEquals(AFTER_THREE, (int) (reply >>> 32), () -> sent + ": the avail half and the used half, "
                    + "each at position 1 with wrap counter 0, got 0x" + Long.toHexString(reply >>> 32));
            }
        }
    }
}

package io.vringj.vhostuser.channel;

import io.vringj.device.net.NetFeatures;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.frontend.FrontEndOptions;
import io.vringj.vhostuser.frontend.FrontEndQueue;
import io.vringj.vhostuser.frontend.FrontEndState;
import io.vringj.vhostuser.frontend.VhostUserFrontEnd;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A front end that breaks the rules against the serving end: each attack closes that channel with
 * a reason naming the value and the rule, the front end sees its connection closed, and another
 * channel in the same process goes on working; nothing of the closed channel is left behind.
 */
@Timeout(120)
class HostileFrontEndChannelTest {
    private static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
        | VirtioFeatures.bit(NetFeatures.MRG_RXBUF);

    @TempDir
    Path dir;

    /** What the hostile front end does with its started queues (rx = 0, tx = 1) and a 64 KiB buffer. */
    @FunctionalInterface
    interface Attack {
        void run(VhostUserFrontEnd frontEnd, FrontEndQueue rx, FrontEndQueue tx, MemorySegment buffer, long gpa)
            throws Exception;
    }

    /** The operation of the serving end that meets the attack. */
    @FunctionalInterface
    interface Victim {
        void meet(MessageChannel channel);
    }

    private void assertClosesOnlyThisChannel(String reason, Attack attack, Victim victim) throws Exception {
        try (ChannelPair healthy = ChannelPair.open(ChannelOptions.builder(dir.resolve("healthy.sock")).build())) {
            List<String> fds = Leaks.openFds();
            ChannelOptions options = ChannelOptions.builder(dir.resolve("hostile.sock")).build();
            CompletableFuture<MessageChannel> served = CompletableFuture.supplyAsync(() -> {
                try {
                    return MessageChannel.serve(options);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            try (VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(FrontEndOptions.client(options.socket().toString())
                     .queues(2).queueSize(256).features(FEATURES).memorySize(4 << 20)
                     .connectTimeout(Duration.ofSeconds(10)).memoryName("vringj-hostile").build())) {
                FrontEndQueue[] queues = frontEnd.startQueues(2);
                MessageChannel channel = served.get(10, TimeUnit.SECONDS);
                MemorySegment buffer = frontEnd.allocate(64 << 10, 64);
                attack.run(frontEnd, queues[0], queues[1], buffer, frontEnd.memory().guestPhysicalAddressOf(buffer));
                ChannelClosedException e = assertThrows(ChannelClosedException.class, () -> {
                    for (int i = 0; i < 100; i++) {
                        victim.meet(channel);
                        Thread.sleep(10);
                    }
                });
                assertTrue(e.getMessage().contains("protocol error") && e.getMessage().contains(reason), e.getMessage());
                assertTrue(channel.isClosed());
                assertEquals(e.reason(), channel.closeReason());
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (frontEnd.state() == FrontEndState.CONNECTED && System.nanoTime() < deadline) {
                    Thread.sleep(10);
                }
                assertEquals(FrontEndState.DISCONNECTED, frontEnd.state(), "the front end's connection is closed");
                assertTrue(Leaks.memfdMappings("vringj-hostile") >= 1, "the front end's own mapping");
                channel.close();
            }
            Leaks.assertNoneLeftBut(fds, 1);
            assertEquals(0, Leaks.memfdMappings("vringj-hostile"), "the hostile front end's memory is unmapped");
            // the other channel is untouched
            Messages.fill(Messages.claimNow(healthy.driver, 100), 0, 100);
            healthy.driver.commit();
            healthy.driver.flush();
            new Messages.Checker(100).receive(healthy.device, 1);
        }
    }

    private static void offer(FrontEndQueue queue, BufferChain chain) throws Exception {
        DriverQueue ring = queue.driverQueue();
        ring.add(chain);
        queue.publish();
    }

    private static int poll(MessageChannel channel) {
        return channel.poll((b, l) -> { }, 8);
    }

    @Test
    void aDeviceWritableTxDescriptor() throws Exception {
        assertClosesOnlyThisChannel("device-writable",
            (fe, rx, tx, buffer, gpa) -> offer(tx, new BufferChain(1).addWritable(gpa, 100)),
            HostileFrontEndChannelTest::poll);
    }

    @Test
    void aTxChainShorterThanTheHeader() throws Exception {
        assertClosesOnlyThisChannel("holds 5 bytes, less than the 12-byte virtio_net_hdr",
            (fe, rx, tx, buffer, gpa) -> offer(tx, new BufferChain(1).addReadable(gpa, 5)),
            HostileFrontEndChannelTest::poll);
    }

    @Test
    void aMessageLongerThanTheMaximum() throws Exception {
        assertClosesOnlyThisChannel("message of 5000 bytes; this end's maxMessageLength is 4096",
            (fe, rx, tx, buffer, gpa) -> offer(tx, new BufferChain(1).addReadable(gpa, 12 + 5000)),
            HostileFrontEndChannelTest::poll);
    }

    @Test
    void anOffloadThatWasNeverOffered() throws Exception {
        assertClosesOnlyThisChannel("checksum or segmentation offload", (fe, rx, tx, buffer, gpa) -> {
            buffer.set(ValueLayout.JAVA_BYTE, 0, (byte) 1);
            offer(tx, new BufferChain(1).addReadable(gpa, 12 + 64));
        }, HostileFrontEndChannelTest::poll);
    }

    @Test
    void aDeviceReadableRxBuffer() throws Exception {
        // the front end's own rx ring starts empty here: it posts one readable "rx buffer"
        assertClosesOnlyThisChannel("device-readable",
            (fe, rx, tx, buffer, gpa) -> offer(rx, new BufferChain(1).addReadable(gpa, 4096)),
            channel -> channel.tryClaim(64));
    }

    @Test
    void anAvailIndexFarAheadOfTheRing() throws Exception {
        assertClosesOnlyThisChannel("ring rule", (fe, rx, tx, buffer, gpa) -> {
            // split ring: the driver area's idx at offset 2, 1000 entries ahead of a ring of 256 [virtio 2.7.6]
            MemorySegment avail = fe.memory().slice(tx.ringAddresses().driverArea(), 4);
            avail.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2, (short) 1000);
        }, HostileFrontEndChannelTest::poll);
    }

    @Test
    void aFrontEndWithoutVersion1IsRefused() throws Exception {
        ChannelOptions options = ChannelOptions.builder(dir.resolve("old.sock")).connectTimeout(Duration.ofSeconds(10))
            .build();
        CompletableFuture<MessageChannel> served = CompletableFuture.supplyAsync(() -> {
            try {
                return MessageChannel.serve(options);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        try (VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(FrontEndOptions.client(options.socket().toString())
                 .queues(2).queueSize(256).features(VirtioFeatures.bit(NetFeatures.MRG_RXBUF))
                 .connectTimeout(Duration.ofSeconds(10)).build())) {
            try {
                frontEnd.startQueues(2);
            } catch (Exception e) {
                // the back end closed the connection while the rings started: expected
            }
            Throwable failure = assertThrows(Exception.class, () -> served.get(10, TimeUnit.SECONDS)).getCause();
            assertTrue(failure.getCause() instanceof IOException, failure.toString());
            assertTrue(failure.getMessage().contains("lack VERSION_1 (bit 32)"), failure.getMessage());
        }
    }
}

package io.vringj.vhostuser.channel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Both ends of a channel in one JVM over a real socket in a temp dir, each used from its own
 * thread where the test needs concurrency: sizes, checksums, batching, back-pressure, wake-ups,
 * close from either side, both ring layouts.
 */
@Timeout(120)
class MessageChannelTest {
    private static final int[] SIZES = {0, 1, 64, 1024, 4096, ChannelOptions.MAX_MESSAGE_LENGTH};

    @TempDir
    Path dir;

    private ChannelPair open(boolean packed) throws Exception {
        return ChannelPair.open(ChannelPair.options(dir).packed(packed).build());
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void messagesOfEverySizeArriveIntactFromTheDriverEnd(boolean packed) throws Exception {
        try (ChannelPair pair = ChannelPair.open(ChannelPair.options(dir).packed(packed)
            .maxMessageLength(ChannelOptions.MAX_MESSAGE_LENGTH).build())) {
            assertEquals(packed, pair.driver.packed());
            assertEquals(packed, pair.device.packed());
            long count = SIZES.length * 50L;
            CompletableFuture<Void> sender = CompletableFuture.runAsync(() -> {
                for (long i = 0; i < count; i++) {
                    Messages.send(pair.driver, i, SIZES[(int) (i % SIZES.length)]);
                    pair.driver.flush();
                }
            });
            Messages.Checker checker = new Messages.Checker(SIZES);
            checker.receive(pair.device, count);
            sender.get(30, TimeUnit.SECONDS);
            assertEquals(count, checker.received);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void messagesOfEverySizeArriveIntactFromTheDeviceEnd(boolean packed) throws Exception {
        // the driver's rx buffers hold 4096 message bytes: the largest messages span 16 merged buffers
        try (ChannelPair pair = ChannelPair.open(ChannelPair.options(dir).packed(packed)
            .maxMessageLength(ChannelOptions.MAX_MESSAGE_LENGTH).build())) {
            long count = SIZES.length * 50L;
            CompletableFuture<Void> sender = CompletableFuture.runAsync(() -> {
                for (long i = 0; i < count; i++) {
                    Messages.send(pair.device, i, SIZES[(int) (i % SIZES.length)]);
                    pair.device.flush();
                }
            });
            Messages.Checker checker = new Messages.Checker(SIZES);
            checker.receive(pair.driver, count);
            sender.get(30, TimeUnit.SECONDS);
            assertEquals(count, checker.received);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void smallRxBuffersCarryLongMessagesMerged(boolean packed) throws Exception {
        // 64-byte rx buffers: every message of more than 52 bytes spans several, up to 65 of them
        int[] sizes = {52, 53, 100, 4096};
        try (ChannelPair pair = ChannelPair.open(ChannelPair.options(dir).packed(packed).rxBufferSize(64).build())) {
            long count = sizes.length * 100L;
            CompletableFuture<Void> sender = CompletableFuture.runAsync(() -> {
                for (long i = 0; i < count; i++) {
                    Messages.send(pair.device, i, sizes[(int) (i % sizes.length)]);
                }
                pair.device.flush();
            });
            Messages.Checker checker = new Messages.Checker(sizes);
            checker.receive(pair.driver, count);
            sender.get(30, TimeUnit.SECONDS);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void commitPublishesNothingUntilFlushOrAFullBatch(boolean packed) throws Exception {
        try (ChannelPair pair = open(packed)) {
            for (MessageChannel[] ends : new MessageChannel[][] {{pair.driver, pair.device}, {pair.device, pair.driver}}) {
                MessageChannel sender = ends[0];
                MessageChannel receiver = ends[1];
                Messages.Checker checker = new Messages.Checker(64);
                for (int i = 0; i < 3; i++) {
                    Messages.fill(Messages.claimNow(sender, 64), i, 64);
                    sender.commit();
                }
                Thread.sleep(100);
                assertEquals(0, receiver.poll(checker, 32), "committed but not flushed: nothing visible");
                assertEquals(3, sender.flush());
                assertEquals(0, sender.flush(), "nothing left to publish");
                checker.receive(receiver, 3);
                // a full batch (32 for a queue of 256) publishes by itself
                for (int i = 3; i < 3 + 32; i++) {
                    Messages.fill(Messages.claimNow(sender, 64), i, 64);
                    sender.commit();
                }
                checker.receive(receiver, 35);
                assertEquals(0, sender.flush(), "the batch was published by commit");
            }
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void aFullRingIsNullThenSpaceOnceThePeerPolls(boolean packed) throws Exception {
        try (ChannelPair pair = open(packed)) {
            for (MessageChannel[] ends : new MessageChannel[][] {{pair.driver, pair.device}, {pair.device, pair.driver}}) {
                MessageChannel sender = ends[0];
                MessageChannel receiver = ends[1];
                int sent = 0;
                MemorySegment m;
                while ((m = sender.tryClaim(64)) != null) {
                    Messages.fill(m, sent, 64);
                    sender.commit();
                    sent++;
                    assertTrue(sent <= 256, "more messages in flight than the ring holds");
                }
                assertEquals(256, sent, "one message per buffer, a queue of 256");
                sender.flush();
                assertNull(sender.tryClaim(64), "still full: the peer has not polled");
                Messages.Checker checker = new Messages.Checker(64);
                checker.receive(receiver, sent);
                assertTrue(sender.awaitSpace(Duration.ofSeconds(5)), "space after the peer polled");
                assertNotNull(sender.tryClaim(64));
                sender.abort();
            }
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void awaitMessagesSleepsUntilAMessageArrives(boolean packed) throws Exception {
        try (ChannelPair pair = open(packed)) {
            for (MessageChannel[] ends : new MessageChannel[][] {{pair.driver, pair.device}, {pair.device, pair.driver}}) {
                MessageChannel sender = ends[0];
                MessageChannel receiver = ends[1];
                long start = System.nanoTime();
                assertFalse(receiver.awaitMessages(Duration.ofMillis(100)), "nothing arrives: the time-out");
                assertTrue(System.nanoTime() - start >= 90_000_000L, "slept for the time-out");
                CompletableFuture<Boolean> woke = CompletableFuture.supplyAsync(
                    () -> receiver.awaitMessages(Duration.ofSeconds(20)));
                Thread.sleep(200);
                assertFalse(woke.isDone(), "sleeps while the ring is empty");
                Messages.fill(Messages.claimNow(sender, 8), 0, 8);
                sender.commit();
                sender.flush();
                assertTrue(woke.get(5, TimeUnit.SECONDS), "woken by the notification");
                Messages.Checker checker = new Messages.Checker(8);
                assertEquals(1, receiver.poll(checker, 8));
            }
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void awaitSpaceSleepsUntilThePeerGivesBuffersBack(boolean packed) throws Exception {
        try (ChannelPair pair = open(packed)) {
            for (MessageChannel[] ends : new MessageChannel[][] {{pair.driver, pair.device}, {pair.device, pair.driver}}) {
                MessageChannel sender = ends[0];
                MessageChannel receiver = ends[1];
                int sent = 0;
                MemorySegment m;
                while ((m = sender.tryClaim(16)) != null) {
                    Messages.fill(m, sent++, 16);
                    sender.commit();
                }
                sender.flush();
                CompletableFuture<Boolean> woke = CompletableFuture.supplyAsync(
                    () -> sender.awaitSpace(Duration.ofSeconds(20)));
                Thread.sleep(200);
                assertFalse(woke.isDone(), "sleeps while the ring is full (" + sender + ", " + sent + " sent)");
                new Messages.Checker(16).receive(receiver, sent);
                assertTrue(woke.get(5, TimeUnit.SECONDS), "woken once the peer polled");
                assertNotNull(sender.tryClaim(16));
                sender.abort();
            }
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void closingTheDriverEndIsSeenByTheDeviceEnd(boolean packed) throws Exception {
        try (ChannelPair pair = open(packed)) {
            CompletableFuture<Boolean> sleeper = CompletableFuture.supplyAsync(
                () -> pair.device.awaitMessages(Duration.ofSeconds(30)));
            Thread.sleep(100);
            pair.driver.close();
            assertTrue(pair.driver.isClosed());
            assertEquals("closed by this side", pair.driver.closeReason());
            Throwable woken = assertThrows(Exception.class, () -> sleeper.get(10, TimeUnit.SECONDS)).getCause();
            assertTrue(woken instanceof ChannelClosedException, "the sleeper is woken by the close: " + woken);
            assertTrue(pair.device.isClosed());
            assertTrue(pair.device.closeReason().startsWith("peer closed"), pair.device.closeReason());
            ChannelClosedException e = assertThrows(ChannelClosedException.class, () -> pair.device.tryClaim(8));
            assertTrue(e.getMessage().contains("peer closed"), e.getMessage());
            assertThrows(ChannelClosedException.class, () -> pair.device.poll((b, l) -> { }, 1));
            assertThrows(ChannelClosedException.class, pair.device::flush);
            assertThrows(ChannelClosedException.class, () -> pair.driver.tryClaim(8));
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void closingTheDeviceEndIsSeenByTheDriverEnd(boolean packed) throws Exception {
        try (ChannelPair pair = open(packed)) {
            CompletableFuture<Boolean> sleeper = CompletableFuture.supplyAsync(
                () -> pair.driver.awaitMessages(Duration.ofSeconds(30)));
            Thread.sleep(100);
            pair.device.close();
            assertEquals("closed by this side", pair.device.closeReason());
            Throwable woken = assertThrows(Exception.class, () -> sleeper.get(10, TimeUnit.SECONDS)).getCause();
            assertTrue(woken instanceof ChannelClosedException, "the sleeper is woken by the close: " + woken);
            assertTrue(pair.driver.isClosed());
            assertTrue(pair.driver.closeReason().startsWith("peer closed"), pair.driver.closeReason());
            assertThrows(ChannelClosedException.class, () -> pair.driver.tryClaim(8));
            assertThrows(ChannelClosedException.class, () -> pair.driver.poll((b, l) -> { }, 1));
            assertThrows(ChannelClosedException.class, () -> pair.device.offer(MemorySegment.ofArray(new byte[8]), 0, 8));
        }
    }

    @ParameterizedTest(name = "device offers {0}, driver asks {1}")
    @org.junit.jupiter.params.provider.CsvSource({"true,true", "true,false", "false,true", "false,false"})
    void inOrderIsUsedOnlyWhenBothEndsWantIt(boolean deviceWants, boolean driverWants) throws Exception {
        ChannelOptions device = ChannelPair.options(dir).inOrder(deviceWants).build();
        ChannelOptions driver = ChannelPair.options(dir).inOrder(driverWants).build();
        try (ChannelPair pair = ChannelPair.open(device, driver)) {
            boolean both = deviceWants && driverWants;
            assertEquals(both, pair.device.inOrder());
            assertEquals(both, pair.driver.inOrder());
            // a batch of sent messages comes back with one used entry in order: the sender gets all its buffers back
            for (MessageChannel[] ends : new MessageChannel[][] {{pair.driver, pair.device}, {pair.device, pair.driver}}) {
                Messages.Checker checker = new Messages.Checker(64, 3000, 0);
                CompletableFuture<Void> sender = CompletableFuture.runAsync(() -> {
                    for (long i = 0; i < 3000; i++) {
                        Messages.send(ends[0], i, i % 3 == 0 ? 64 : i % 3 == 1 ? 3000 : 0);
                    }
                    ends[0].flush();
                });
                checker.receive(ends[1], 3000);
                sender.get(30, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void aMessageLongerThanTheMaximumIsRefused() throws Exception {
        try (ChannelPair pair = ChannelPair.open(ChannelPair.options(dir).maxMessageLength(1000).build())) {
            for (MessageChannel end : new MessageChannel[] {pair.driver, pair.device}) {
                assertEquals(1000, end.maxMessageLength());
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> end.tryClaim(1001));
                assertTrue(e.getMessage().contains("1001") && e.getMessage().contains("0..1000"), e.getMessage());
                assertThrows(IllegalArgumentException.class, () -> end.tryClaim(-1));
                assertThrows(IllegalArgumentException.class,
                    () -> end.offer(MemorySegment.ofArray(new byte[2000]), 0, 2000));
                // the channel stays usable
                assertNotNull(end.tryClaim(1000));
                end.abort();
            }
        }
    }

    @Test
    void oneClaimAtATime() throws Exception {
        try (ChannelPair pair = open(false)) {
            for (MessageChannel end : new MessageChannel[] {pair.driver, pair.device}) {
                assertNotNull(end.tryClaim(8));
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> end.tryClaim(8));
                assertTrue(e.getMessage().contains("already claimed"), e.getMessage());
                end.abort();
                assertThrows(IllegalStateException.class, end::commit);
                assertFalse(end.isClosed(), "misuse does not close the channel");
            }
        }
    }

    @Test
    void offerCopiesAndCommits() throws Exception {
        try (ChannelPair pair = open(false)) {
            MemorySegment src = MemorySegment.ofArray(new byte[100]);
            Messages.fill(src.asSlice(10), 0, 50);
            assertTrue(pair.device.offer(src, 10, 50));
            pair.device.flush();
            Messages.Checker checker = new Messages.Checker(50);
            checker.receive(pair.driver, 1);
            assertThrows(IndexOutOfBoundsException.class, () -> pair.driver.offer(src, 90, 50));
        }
    }

    @Test
    void aHandlerThatThrowsLosesOnlyItsOwnMessage() throws Exception {
        try (ChannelPair pair = open(false)) {
            for (MessageChannel[] ends : new MessageChannel[][] {{pair.driver, pair.device}, {pair.device, pair.driver}}) {
                for (int i = 0; i < 2; i++) {
                    Messages.fill(Messages.claimNow(ends[0], 8), i, 8);
                    ends[0].commit();
                }
                ends[0].flush();
                Thread.sleep(50);
                RuntimeException boom = new RuntimeException("boom");
                assertThrows(RuntimeException.class, () -> ends[1].poll((b, l) -> {
                    throw boom;
                }, 1));
                assertFalse(ends[1].isClosed(), "the handler's exception is the application's");
                long[] seen = new long[1];
                assertEquals(1, ends[1].poll((b, l) -> seen[0] = b.get(ValueLayout.JAVA_BYTE, 0), 8));
                assertEquals(Messages.content(1, 0), (byte) seen[0], "the second message follows");
            }
        }
    }

    @Test
    void optionsNameTheValueAndTheRule() {
        ChannelOptions.Builder b = ChannelOptions.builder(dir.resolve("x.sock"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.maxMessageLength(65525));
        assertTrue(e.getMessage().contains("65525") && e.getMessage().contains("1..65524"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> b.queueSize(100).build());
        assertTrue(e.getMessage().contains("100") && e.getMessage().contains("power of two"), e.getMessage());
        assertEquals(100, b.queueSize(100).packed(true).build().queueSize(), "a packed ring may have any size");
        e = assertThrows(IllegalArgumentException.class, () -> b.connectTimeout(Duration.ZERO));
        assertTrue(e.getMessage().contains("PT0S"), e.getMessage());
        ChannelOptions defaults = ChannelOptions.builder(dir.resolve("y.sock")).build();
        assertEquals(256, defaults.queueSize());
        assertEquals(4096, defaults.maxMessageLength());
        assertEquals(4160, defaults.rxBufferSize());
        assertFalse(defaults.packed());
        assertTrue(defaults.inOrder());
        assertEquals(Duration.ofSeconds(10), defaults.connectTimeout());
    }
}

package io.vringj.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.YieldingIdleStrategy;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * One driver thread and one device thread pass ten million chains through a split or packed ring with
 * payload checksums: nothing lost, duplicated, reordered or corrupted, and no hang.
 *
 * <p>Each chain carries a sequence number and a 64-byte payload derived from it, split over one
 * or two readable descriptors; the device checks the sequence, checksums the payload, and
 * writes the sequence and checksum into the chain's 16-byte writable buffer; the driver checks
 * both. Run with kicks and interrupts suppressed (both sides poll), and with real wake-ups
 * (both sides park; a kick or an interrupt is an unpark), each with and without EVENT_IDX. A
 * lost wake-up parks a side for ever and the timeout fails the test. With VIRTIO_F_IN_ORDER two of
 * every three chains are read-only (the device returns them with length 0, in runs under one used
 * entry) and the third keeps its writable buffer (its own entry, with its length), so batches
 * published across threads are taken back whole.
 */
class TwoThreadStressTest {
    private static final int CHAINS = 10_000_000;
    private static final int QUEUE_SIZE = 256;
    private static final long RINGS = 0;
    private static final long BUFFERS = 0x10_0000;
    private static final long SLOT = 128;
    private static final int PAYLOAD = 64;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @ParameterizedTest(name = "packed={0}, eventIdx={1}, wakeUps={2}, inOrder={3}")
    @CsvSource({"false,false,false,false", "false,true,false,false", "false,false,true,false", "false,true,true,false",
        "true,false,false,false", "true,true,false,false", "true,false,true,false", "true,true,true,false",
        "false,false,false,true", "false,true,true,true", "true,false,false,true", "true,true,true,true"})
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void tenMillionChainsArriveExactlyOnceAndIntact(boolean packed, boolean eventIdx, boolean wakeUps, boolean inOrder)
        throws Exception {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | (eventIdx ? VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) : 0)
            | (packed ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0)
            | (inOrder ? VirtioFeatures.bit(VirtioFeatures.IN_ORDER) : 0);
        RingAddresses rings = new RingAddresses(RINGS, RINGS + 0x1000 * 4, RINGS + 0x1000 * 8);
        try (GuestMemory memory = GuestMemory.ofShared(0, BUFFERS + SLOT * QUEUE_SIZE)) {
            DriverQueue driver = DriverQueue.create(features, QUEUE_SIZE, memory, rings);
            DeviceQueue device = DeviceQueue.create(features, QUEUE_SIZE, rings, AddressSpace.identity(memory));
            Thread driverThread = Thread.currentThread();
            Checker checker = new Checker(inOrder);
            DeviceAgent agent = new DeviceAgent("stress-device", device, checker,
                wakeUps ? () -> LockSupport.unpark(driverThread) : () -> { }, 32);
            IdleStrategy idle = wakeUps ? new ParkingIdleStrategy(100) : new YieldingIdleStrategy();
            AtomicReference<Throwable> deviceError = new AtomicReference<>();
            AgentRunner runner = new AgentRunner(idle, deviceError::set, null, agent);
            if (!wakeUps) {
                driver.disableInterrupts();
                device.disableNotifications();
            }
            Thread deviceThread = AgentRunner.startOnThread(runner);
            long start = System.nanoTime();
            try {
                runDriver(memory, driver, deviceThread, wakeUps, inOrder, deviceError);
            } finally {
                runner.close();
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("%s ring, eventIdx=%s, wakeUps=%s, inOrder=%s: %,d chains in %.2f s = %,.0f chains/s%n",
                packed ? "packed" : "split", eventIdx, wakeUps, inOrder, CHAINS, seconds, CHAINS / seconds);
            assertNull(deviceError.get(), () -> "device failed: " + deviceError.get());
            assertNull(checker.error, () -> checker.error);
            assertEquals(CHAINS, agent.chainsHandled());
            assertEquals(QUEUE_SIZE, driver.numFree());
            assertEquals(0, device.inFlight());
        }
    }

    /** @return whether chain {@code seq} has the 16-byte writable buffer (always, unless in order) */
    static boolean hasReply(boolean inOrder, long seq) {
        return !inOrder || seq % 3 == 2;
    }

    private static void runDriver(GuestMemory memory, DriverQueue driver, Thread deviceThread, boolean wakeUps,
                                  boolean inOrder, AtomicReference<Throwable> deviceError) throws VirtqueueException {
        MemorySegment buffers = memory.slice(BUFFERS, SLOT * QUEUE_SIZE);
        BufferChain chain = new BufferChain(3);
        long[] seqOfHead = new long[QUEUE_SIZE];
        long sent = 0;
        long received = 0;
        while (received < CHAINS) {
            boolean progress = false;
            // offer as many chains as fit; the slot is the head (unique while in flight)
            // slots cycle with the sequence number: at most Q chains are in flight, so slot seq % Q is free
            while (sent < CHAINS && driver.numFree() >= 3 && sent - received < QUEUE_SIZE) {
                long slot = (sent % QUEUE_SIZE) * SLOT;
                for (int k = 0; k < PAYLOAD; k += 8) {
                    buffers.set(LONG, slot + k, payloadWord(sent, k));
                }
                chain.clear();
                if ((sent & 1) == 0) {
                    chain.addReadable(BUFFERS + slot, PAYLOAD);
                } else {
                    chain.addReadable(BUFFERS + slot, 24).addReadable(BUFFERS + slot + 24, PAYLOAD - 24);
                }
                if (hasReply(inOrder, sent)) {
                    chain.addWritable(BUFFERS + slot + PAYLOAD, 16);
                }
                int head = driver.add(chain);
                seqOfHead[head] = sent++;
                progress = true;
            }
            if (progress) {
                if (!wakeUps) {
                    // the device polls and never sleeps: no kick decision, no full fence
                    driver.publishQuiet();
                } else if (driver.publish()) {
                    LockSupport.unpark(deviceThread);
                }
            }
            int head;
            while ((head = driver.pollUsed()) != DriverQueue.NONE) {
                long seq = seqOfHead[head];
                long slot = (seq % QUEUE_SIZE) * SLOT;
                if (seq != received) {
                    throw new AssertionError("chain " + seq + " came back when " + received + " was next");
                }
                if (!hasReply(inOrder, seq)) {
                    if (driver.usedLength() != 0) {
                        throw new AssertionError("read-only chain " + seq + " came back with length " + driver.usedLength());
                    }
                } else if (driver.usedLength() != 16 || buffers.get(LONG, slot + PAYLOAD) != seq
                    || buffers.get(LONG, slot + PAYLOAD + 8) != checksum(seq)) {
                    throw new AssertionError("chain " + seq + ": device wrote " + driver.usedLength() + " bytes, seq "
                        + buffers.get(LONG, slot + PAYLOAD) + ", checksum " + buffers.get(LONG, slot + PAYLOAD + 8));
                }
                received++;
                progress = true;
            }
            if (deviceError.get() != null) {
                throw new AssertionError("device failed", deviceError.get());
            }
            if (!progress) {
                if (!wakeUps) {
                    Thread.yield();
                } else if (!driver.enableInterrupts()) {
                    // every chain in flight is the device's: only its interrupt (an unpark) can wake us
                    long parked = System.nanoTime();
                    LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(30));
                    if (System.nanoTime() - parked >= TimeUnit.SECONDS.toNanos(30)) {
                        throw new AssertionError("no interrupt for 30 s with " + (sent - received)
                            + " chains in flight: a wake-up was lost");
                    }
                }
            } else if (wakeUps) {
                driver.disableInterrupts();
            }
        }
    }

    static long payloadWord(long seq, int k) {
        return seq * 0x9E37_79B9_7F4A_7C15L + k;
    }

    static long checksum(long seq) {
        long sum = 0;
        for (int k = 0; k < PAYLOAD; k += 8) {
            sum = Long.rotateLeft(sum, 7) ^ payloadWord(seq, k);
        }
        return sum;
    }

    /** The device: checks order and payload, writes the sequence and checksum back. */
    private static final class Checker implements ChainHandler {
        private final MemorySegment scratch = MemorySegment.ofArray(new long[PAYLOAD / 8 + 2]);
        private final boolean inOrder;
        private long expected;
        volatile String error;

        Checker(boolean inOrder) {
            this.inOrder = inOrder;
        }

        @Override
        public long handle(DescriptorChain chain) {
            boolean reply = hasReply(inOrder, expected);
            if (chain.readableLength() != PAYLOAD || chain.writableLength() != (reply ? 16 : 0)) {
                fail("chain " + expected + " has " + chain.readableLength() + "/" + chain.writableLength() + " bytes");
                return 0;
            }
            chain.copyFromReadable(0, scratch, 0, PAYLOAD);
            long seq = expected;
            long sum = 0;
            for (int k = 0; k < PAYLOAD; k += 8) {
                long word = scratch.get(LONG, k);
                if (word != payloadWord(seq, k)) {
                    fail("chain " + seq + " word " + k + " is " + word + ", expected " + payloadWord(seq, k));
                }
                sum = Long.rotateLeft(sum, 7) ^ word;
            }
            expected++;
            if (!reply) {
                return 0;
            }
            scratch.set(LONG, PAYLOAD, seq);
            scratch.set(LONG, PAYLOAD + 8, sum);
            chain.copyToWritable(0, scratch, PAYLOAD, 16);
            return 16;
        }

        private void fail(String message) {
            if (error == null) {
                error = message;
            }
        }
    }
}

package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vringj.memory.GuestMemory;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.PackedRing;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingSizes;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs many requests through a {@link DmaDriverQueue} on a driver thread and a device on
 * another, checking every byte: each request carries a sequence number and pseudo-random
 * bytes in two readable buffers; the device answers with the sequence number, a checksum of
 * what it read and the number of bytes, in a writable buffer.
 */
final class DmaRingHarness {
    static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX)
        | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC);
    /** {@link #FEATURES} on the packed ring. */
    static final long PACKED_FEATURES = FEATURES | VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
    static final int REPLY = 24;
    /** Slot stride: not a divisor of 4096, so buffers regularly cross page boundaries. */
    static final long SLOT = 1536;

    /** The device side under test: how it activates, pops, and brackets its work. */
    interface Device {
        /** Activates the queue; may retry misses internally. */
        DeviceQueue activate(RingAddresses rings) throws Exception;

        /** @return 1 popped, 0 nothing available, -1 parked on a translation miss */
        int pop(DeviceQueue queue, DescriptorChain chain) throws Exception;

        /** Before a batch of pops (a worker's critical section begins). */
        default void enter() {
        }

        /** After the batch's used entries are published (the critical section ends). */
        default void exit() {
        }

        /** Nothing to do: pump control messages, back off. */
        default void idle() {
            // yield as well: the test machine may have fewer free cores than spinning threads
            Thread.onSpinWait();
            Thread.yield();
        }
    }

    /** What a run did. */
    record Result(long chains, long bytes, long indirect, long parks) {
    }

    private DmaRingHarness() {
    }

    /**
     * Plays a device that breaks the queue: writes one used entry whose id is no head the driver
     * has in flight (split: used ring entry 0 and used idx 1; packed: descriptor 0 marked used
     * with wrap counter 1), so the driver's next poll fails with USED_ID_NOT_IN_FLIGHT.
     */
    static void reportBogusUsedId(long features, MemorySegment descArea, MemorySegment usedArea) {
        ValueLayout.OfShort le16 = ValueLayout.JAVA_SHORT.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
        ValueLayout.OfInt le32 = ValueLayout.JAVA_INT.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
        if (VirtioFeatures.has(features, VirtioFeatures.RING_PACKED)) {
            descArea.set(le32, 8, 0);
            descArea.set(le16, 12, (short) 0x7FFF);
            descArea.set(le16, 14, (short) (PackedRing.DESC_F_AVAIL | PackedRing.DESC_F_USED));
        } else {
            usedArea.set(le32, 4, 70_000);
            usedArea.set(le32, 8, 0);
            usedArea.set(le16, 2, (short) 1);
        }
    }

    static long checksum(MemorySegment s, long off, long len, long h) {
        for (long i = 0; i < len; i++) {
            h = (h ^ (s.get(ValueLayout.JAVA_BYTE, off + i) & 0xFF)) * 0x100000001b3L;
        }
        return h;
    }

    /**
     * @param memory guest memory; buffers are carved from {@code bufferBase}
     * @param dma the driver's DMA ops; rings come from its coherent allocator
     * @param queueSize Q
     * @param chains how many requests
     * @param useIndirect whether every other request goes through an indirect table
     */
    static Result run(GuestMemory memory, long bufferBase, DmaOps dma, int queueSize, long chains, boolean useIndirect,
                      Device device) throws Exception {
        return run(FEATURES, memory, bufferBase, dma, queueSize, chains, useIndirect, device);
    }

    /**
     * As {@link #run(GuestMemory, long, DmaOps, int, long, boolean, Device)} with the features
     * given: with {@code VIRTIO_F_RING_PACKED} the same requests run over the packed ring.
     */
    static Result run(long features, GuestMemory memory, long bufferBase, DmaOps dma, int queueSize, long chains,
                      boolean useIndirect, Device device) throws Exception {
        RingSizes sizes = RingSizes.of(features, queueSize);
        CoherentBuffer descArea = dma.allocCoherent(sizes.descriptorArea());
        CoherentBuffer availArea = dma.allocCoherent(sizes.driverArea());
        CoherentBuffer usedArea = dma.allocCoherent(sizes.deviceArea());
        CoherentBuffer tableArea = dma.allocCoherent(16L * 4 * queueSize);
        DriverQueue ring = DriverQueue.create(features, queueSize, descArea.memory(), availArea.memory(), usedArea.memory());
        DmaDriverQueue driver = new DmaDriverQueue(ring, dma, 4, useIndirect ? tableArea.memory() : null);
        RingAddresses rings = new RingAddresses(descArea.busAddress(), availArea.busAddress(), usedArea.busAddress());

        AtomicReference<Throwable> deviceFailure = new AtomicReference<>();
        long[] parks = new long[1];
        Thread deviceThread = new Thread(() -> {
            try {
                DeviceQueue queue = device.activate(rings);
                DescriptorChain chain = new DescriptorChain();
                MemorySegment scratch = MemorySegment.ofArray(new byte[4096]);
                MemorySegment reply = MemorySegment.ofArray(new long[3]);
                long done = 0;
                while (done < chains) {
                    device.enter();
                    int popped = 0;
                    int r;
                    while (popped < 64 && (r = device.pop(queue, chain)) != 0) {
                        if (r < 0) {
                            parks[0]++;
                            break;
                        }
                        long n = chain.readableLength();
                        chain.copyFromReadable(0, scratch, 0, n);
                        reply.set(ValueLayout.JAVA_LONG, 0, scratch.get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
                        reply.set(ValueLayout.JAVA_LONG, 8, checksum(scratch, 0, n, 0xcbf29ce484222325L));
                        reply.set(ValueLayout.JAVA_LONG, 16, n);
                        chain.copyToWritable(0, reply, 0, REPLY);
                        queue.addUsed(chain.head(), REPLY);
                        popped++;
                    }
                    queue.publishUsed();
                    device.exit();
                    done += popped;
                    if (popped == 0) {
                        device.idle();
                    }
                }
            } catch (Throwable t) {
                deviceFailure.set(t);
            }
        }, "device");
        deviceThread.setDaemon(true);
        deviceThread.start();

        MemorySegment[][] slots = new MemorySegment[queueSize][3];
        long[] expectedSum = new long[queueSize];
        long[] expectedSeq = new long[queueSize];
        long[] expectedLen = new long[queueSize];
        Integer[] tokens = new Integer[queueSize];
        int[] freeSlots = new int[queueSize];
        for (int s = 0; s < queueSize; s++) {
            tokens[s] = s;
            freeSlots[s] = s;
        }
        int freeCount = queueSize;
        long seed = 0x9E3779B97F4A7C15L;
        long sent = 0;
        long received = 0;
        long bytes = 0;
        long indirect = 0;
        while (received < chains) {
            if (deviceFailure.get() != null) {
                throw new AssertionError("device thread failed after " + received + " chains", deviceFailure.get());
            }
            boolean added = false;
            while (sent < chains && freeCount > 0) {
                int s = freeSlots[freeCount - 1];
                seed ^= seed << 13;
                seed ^= seed >>> 7;
                seed ^= seed << 17;
                long a = 8 + (seed & 0x1FF);          // 8..519
                long b = 1 + ((seed >>> 9) & 0x3FF);   // 1..1024
                long slotBase = bufferBase + s * 4 * SLOT;
                MemorySegment bufA = memory.slice(slotBase, a);
                MemorySegment bufB = memory.slice(slotBase + SLOT, b);
                MemorySegment bufW = memory.slice(slotBase + 2 * SLOT + (seed >>> 40 & 0xFF), REPLY);
                bufA.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, sent);
                long x = seed;
                for (long i = 8; i < a; i++) {
                    x = x * 6364136223846793005L + 1442695040888963407L;
                    bufA.set(ValueLayout.JAVA_BYTE, i, (byte) (x >>> 56));
                }
                for (long i = 0; i < b; i++) {
                    x = x * 6364136223846793005L + 1442695040888963407L;
                    bufB.set(ValueLayout.JAVA_BYTE, i, (byte) (x >>> 56));
                }
                bufW.fill((byte) 0x5A);
                expectedSum[s] = checksum(bufB, 0, b, checksum(bufA, 0, a, 0xcbf29ce484222325L));
                expectedSeq[s] = sent;
                expectedLen[s] = a + b;
                slots[s][0] = bufA;
                slots[s][1] = bufB;
                slots[s][2] = bufW;
                boolean viaTable = useIndirect && (sent & 1) == 1;
                int head = viaTable ? driver.addIndirect(slots[s], 2, 1, tokens[s]) : driver.add(slots[s], 2, 1, tokens[s]);
                if (head == DriverQueue.NO_ROOM) {
                    break;
                }
                if (viaTable) {
                    indirect++;
                }
                freeCount--;
                sent++;
                added = true;
            }
            if (added) {
                driver.publish();
            }
            boolean got = false;
            while (driver.pollUsed() != DriverQueue.NONE) {
                int s = (Integer) driver.usedToken();
                assertEquals(REPLY, driver.usedLength());
                MemorySegment w = slots[s][2];
                long seq = w.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
                if (seq != expectedSeq[s] || w.get(ValueLayout.JAVA_LONG_UNALIGNED, 8) != expectedSum[s]
                    || w.get(ValueLayout.JAVA_LONG_UNALIGNED, 16) != expectedLen[s]) {
                    throw new AssertionError("request " + expectedSeq[s] + " in slot " + s + ": device answered seq " + seq
                        + " sum " + Long.toHexString(w.get(ValueLayout.JAVA_LONG_UNALIGNED, 8)) + " (expected "
                        + Long.toHexString(expectedSum[s]) + ") len " + w.get(ValueLayout.JAVA_LONG_UNALIGNED, 16));
                }
                bytes += expectedLen[s];
                freeSlots[freeCount++] = s;
                received++;
                got = true;
            }
            if (!added && !got) {
                Thread.onSpinWait();
                Thread.yield();
            }
        }
        deviceThread.join(10_000);
        if (deviceFailure.get() != null) {
            throw new AssertionError("device thread failed", deviceFailure.get());
        }
        assertEquals(0, driver.inFlight());
        return new Result(received, bytes, indirect, parks[0]);
    }
}

package io.vringj.device.net;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingSizes;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * One virtio-net queue pair in one process: both rings in guest memory, the driver queues, the
 * device queues (identity address space), and optionally a {@link NetDriver} and a
 * {@link NetQueuePair}. A scratch area lets a test hand-build hostile chains.
 */
final class NetRig implements AutoCloseable {
    static final long BASE = 0x10_0000;
    static final long SIZE = 16L << 20;
    static final long MAC_A = 0x02_00_00_00_00_0AL;
    static final long MAC_B = 0x02_00_00_00_00_0BL;

    final long features;
    final int queueSize;
    final GuestMemory memory;
    final DriverQueue rxDriver;
    final DriverQueue txDriver;
    final DeviceQueue rxDevice;
    final DeviceQueue txDevice;
    final long scratchBase;
    private long next;
    private long scratchNext;
    int rxInterrupts;
    int txInterrupts;
    int rxKicks;
    int txKicks;

    NetRig(long features, int queueSize) throws VirtqueueException {
        this.features = features;
        this.queueSize = queueSize;
        this.memory = GuestMemory.ofShared(BASE, SIZE);
        next = BASE;
        RingAddresses rxRings = rings();
        RingAddresses txRings = rings();
        rxDriver = DriverQueue.create(features, queueSize, memory, rxRings);
        txDriver = DriverQueue.create(features, queueSize, memory, txRings);
        AddressSpace space = AddressSpace.identity(memory);
        rxDevice = DeviceQueue.create(features, queueSize, rxRings, space);
        txDevice = DeviceQueue.create(features, queueSize, txRings, space);
        scratchBase = BASE + SIZE / 2;
        scratchNext = scratchBase;
    }

    static long features(boolean packed, boolean mergeable, boolean eventIdx) {
        long f = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC);
        if (packed) {
            f |= VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
        }
        if (mergeable) {
            f |= VirtioFeatures.bit(NetFeatures.MRG_RXBUF);
        }
        if (eventIdx) {
            f |= VirtioFeatures.bit(VirtioFeatures.EVENT_IDX);
        }
        return f;
    }

    private RingAddresses rings() {
        RingSizes sizes = RingSizes.of(features, queueSize);
        long desc = take(sizes.descriptorArea());
        long driver = take(sizes.driverArea());
        long device = take(sizes.deviceArea());
        return new RingAddresses(desc, driver, device);
    }

    /** Bump allocation below the scratch half, page aligned. */
    long take(long size) {
        long at = next;
        next = (next + size + 4095) & ~4095L;
        if (next > BASE + SIZE / 2) {
            throw new IllegalStateException("rig memory exhausted");
        }
        return at;
    }

    /** A fresh scratch buffer (for hand-built chains), 16-byte aligned. */
    long scratch(long size) {
        long at = scratchNext;
        scratchNext = (scratchNext + size + 15) & ~15L;
        if (scratchNext > BASE + SIZE) {
            scratchNext = scratchBase;
            at = scratchNext;
            scratchNext = (scratchNext + size + 15) & ~15L;
        }
        return at;
    }

    MemorySegment slice(long gpa, long size) {
        return memory.slice(gpa, size);
    }

    NetDriver driver(int rxBufferSize, int txBufferSize) throws VirtqueueException {
        long size = NetDriver.bufferAreaSize(queueSize, rxBufferSize, queueSize, txBufferSize);
        long gpa = take(size);
        return new NetDriver(rxDriver, txDriver, memory.slice(gpa, size), gpa, rxBufferSize, txBufferSize,
            () -> rxKicks++, () -> txKicks++);
    }

    NetQueuePair pair(NetDevice device) {
        return device.pair(0, rxDevice, txDevice, () -> rxInterrupts++, () -> txInterrupts++);
    }

    /** Runs the device until it has nothing left to do. */
    static int drain(NetQueuePair pair) throws VirtqueueException {
        int total = 0;
        int n;
        while ((n = pair.doWork()) > 0) {
            total += n;
        }
        return total;
    }

    /** Sends one frame from the driver (claim, copy, commit). */
    static void send(NetDriver driver, byte[] frame) throws VirtqueueException {
        MemorySegment buffer = driver.claim();
        if (buffer == null) {
            throw new IllegalStateException("no tx buffer free");
        }
        MemorySegment.copy(MemorySegment.ofArray(frame), 0, buffer, 0, frame.length);
        driver.commit(frame.length);
    }

    /** Receives every waiting frame as byte arrays. */
    static List<byte[]> receiveAll(NetDriver driver) throws VirtqueueException {
        List<byte[]> out = new ArrayList<>();
        while (driver.receive(f -> out.add(bytes(f)), 64) > 0) {
            // keep going until nothing is waiting
        }
        return out;
    }

    static byte[] bytes(Frame f) {
        byte[] b = new byte[(int) f.length()];
        f.copyTo(0, MemorySegment.ofArray(b), 0, b.length);
        return b;
    }

    /**
     * Offers a raw tx chain on the driver's tx ring: readable buffers with the given bytes (split
     * at the given sizes), then writable buffers of the given sizes.
     */
    int rawTx(byte[] bytes, int[] readableSplits, int[] writableSizes) throws VirtqueueException {
        BufferChain chain = new BufferChain(readableSplits.length + writableSizes.length + 1);
        int at = 0;
        for (int len : readableSplits) {
            long gpa = scratch(len);
            MemorySegment.copy(MemorySegment.ofArray(bytes), at, slice(gpa, len), 0, len);
            chain.addReadable(gpa, len);
            at += len;
        }
        for (int len : writableSizes) {
            chain.addWritable(scratch(len), len);
        }
        int head = txDriver.add(chain);
        txDriver.publish();
        return head;
    }

    /** Posts a raw rx chain: readable sizes first (hostile), then writable sizes; returns head and the gpas. */
    int rawRx(int[] readableSizes, int[] writableSizes, long[] writableGpas) throws VirtqueueException {
        BufferChain chain = new BufferChain(readableSizes.length + writableSizes.length + 1);
        for (int len : readableSizes) {
            chain.addReadable(scratch(len), len);
        }
        for (int i = 0; i < writableSizes.length; i++) {
            long gpa = scratch(writableSizes[i]);
            if (writableGpas != null) {
                writableGpas[i] = gpa;
            }
            chain.addWritable(gpa, writableSizes[i]);
        }
        int head = rxDriver.add(chain);
        rxDriver.publish();
        return head;
    }

    /** A tx payload: the 12-byte header (zero) then the frame. */
    static byte[] withHeader(byte[] frame) {
        byte[] b = new byte[VirtioNetHeader.SIZE + frame.length];
        System.arraycopy(frame, 0, b, VirtioNetHeader.SIZE, frame.length);
        return b;
    }

    /** An Ethernet frame: dst, src, type 0x88B5 (local experimental), then pseudo-random payload. */
    static byte[] frame(int length, long seed) {
        byte[] b = new byte[length];
        long x = seed * 0x9E3779B97F4A7C15L + 1;
        for (int i = 0; i < length; i++) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            b[i] = (byte) x;
        }
        putMac(b, 0, MAC_B);
        putMac(b, 6, MAC_A);
        if (length >= 14) {
            b[12] = (byte) 0x88;
            b[13] = (byte) 0xB5;
        }
        return b;
    }

    static void putMac(byte[] b, int at, long mac) {
        for (int i = 0; i < 6 && at + i < b.length; i++) {
            b[at + i] = (byte) (mac >>> (40 - 8 * i));
        }
    }

    /** The Internet checksum's sum, byte by byte, as RFC 1071 describes it (the test's reference). */
    static int referenceSum(byte[] b, int from, int length) {
        long sum = 0;
        for (int i = 0; i < length; i += 2) {
            int hi = b[from + i] & 0xFF;
            int lo = i + 1 < length ? b[from + i + 1] & 0xFF : 0;
            sum += hi << 8 | lo;
        }
        while ((sum >>> 16) != 0) {
            sum = (sum & 0xFFFF) + (sum >>> 16);
        }
        return (int) sum;
    }

    static int u16(byte[] b, int at) {
        return (b[at] & 0xFF) << 8 | (b[at + 1] & 0xFF);
    }

    static int u16le(MemorySegment s, long at) {
        return Short.toUnsignedInt(s.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), at));
    }

    @Override
    public void close() {
        memory.close();
    }
}

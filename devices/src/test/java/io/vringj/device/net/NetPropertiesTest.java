package io.vringj.device.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DriverQueue;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.From;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

/**
 * Random frames and random hostile chains fed to both sides: the device never throws, counts
 * every chain exactly once (a frame or a drop with the reason a simple model predicts), and
 * reflects every frame it does not drop byte for byte; the driver, fed random used entries by a
 * lying device, hands over exactly the frames the model predicts and reposts every buffer.
 */
class NetPropertiesTest {

    /** A tx chain a hostile driver may build: readable pieces, then writable ones. */
    record RawChain(byte[] bytes, int[] splits, int[] writable) {
        @Override
        public String toString() {
            return "RawChain[" + bytes.length + " bytes in " + java.util.Arrays.toString(splits) + ", writable "
                + java.util.Arrays.toString(writable) + ", flags " + (bytes.length > 0 ? bytes[0] : -1) + ", gso "
                + (bytes.length > 1 ? bytes[1] : -1) + "]";
        }
    }

    @Provide
    Arbitrary<RawChain> rawChains() {
        Arbitrary<Integer> length = Arbitraries.frequencyOf(
            net.jqwik.api.Tuple.of(1, Arbitraries.integers().between(0, 12)),
            net.jqwik.api.Tuple.of(1, Arbitraries.integers().between(12, 26)),
            net.jqwik.api.Tuple.of(4, Arbitraries.integers().between(26, 700)));
        Arbitrary<Integer> flags = Arbitraries.frequencyOf(
            net.jqwik.api.Tuple.of(6, Arbitraries.just(0)), net.jqwik.api.Tuple.of(1, Arbitraries.integers().between(0, 255)));
        Arbitrary<Integer> gso = Arbitraries.frequencyOf(
            net.jqwik.api.Tuple.of(6, Arbitraries.just(0)), net.jqwik.api.Tuple.of(1, Arbitraries.integers().between(0, 255)));
        Arbitrary<Integer> pieces = Arbitraries.integers().between(1, 4);
        Arbitrary<int[]> writable = Arbitraries.frequencyOf(
            net.jqwik.api.Tuple.of(5, Arbitraries.just(new int[0])),
            net.jqwik.api.Tuple.of(1, Arbitraries.integers().between(1, 64).array(int[].class).ofMinSize(1).ofMaxSize(2)));
        Arbitrary<Long> seed = Arbitraries.longs();
        return Combinators.combine(length, flags, gso, pieces, writable, seed).as((len, f, g, p, w, s) -> {
            byte[] bytes = new byte[len];
            byte[] frame = NetRig.frame(Math.max(0, len - 12), s);
            System.arraycopy(frame, 0, bytes, Math.min(12, len), frame.length);
            if (len > 0) {
                bytes[0] = (byte) (int) f;
            }
            if (len > 1) {
                bytes[1] = (byte) (int) g;
            }
            return new RawChain(bytes, splits(len, p, s), w);
        });
    }

    /** Splits {@code len} bytes into up to {@code pieces} non-empty pieces (none if len is 0). */
    private static int[] splits(int len, int pieces, long seed) {
        if (len == 0) {
            return new int[0];
        }
        int n = Math.min(pieces, len);
        int[] out = new int[n];
        int left = len;
        long x = seed | 1;
        for (int i = 0; i < n - 1; i++) {
            x = x * 6364136223846793005L + 1442695040888963407L;
            int max = left - (n - 1 - i);
            out[i] = 1 + (int) Long.remainderUnsigned(x >>> 33, max);
            left -= out[i];
        }
        out[n - 1] = left;
        return out;
    }

    /** What the device must do with a raw chain: the drop reason, or null if the frame goes through. */
    private static NetDrop expectedDrop(RawChain c, long maxFrame) {
        if (c.writable().length > 0) {
            return NetDrop.BAD_TX_CHAIN;
        }
        int len = c.bytes().length;
        if (len < 12) {
            return NetDrop.BAD_HEADER;
        }
        if ((c.bytes()[0] & 1) != 0 || c.bytes()[1] != 0) {
            return NetDrop.BAD_HEADER;
        }
        if (len - 12 < 14) {
            return NetDrop.RUNT_FRAME;
        }
        if (len - 12 > maxFrame) {
            return NetDrop.FRAME_TOO_LONG;
        }
        return null;
    }

    @Property(tries = 150)
    void deviceCountsEveryHostileOrGoodTxChainAsTheModelSays(@ForAll boolean packed, @ForAll boolean mergeable,
        @ForAll @Size(min = 1, max = 40) List<@From("rawChains") RawChain> chains, @ForAll @IntRange(min = 14, max = 700) int maxFrame)
        throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(packed, mergeable, false), 64)) {
            NetQueuePair pair = rig.pair(new NetDevice("sink", Sink::new, 1, false, maxFrame));
            Map<NetDrop, Long> drops = new EnumMap<>(NetDrop.class);
            long frames = 0;
            long bytes = 0;
            long checksum = 0;
            for (RawChain c : chains) {
                if (c.splits().length + c.writable().length == 0) {
                    continue; // the ring cannot carry an empty chain
                }
                rig.rawTx(c.bytes(), c.splits(), c.writable());
                NetDrop drop = expectedDrop(c, maxFrame);
                if (drop == null) {
                    frames++;
                    bytes += c.bytes().length - 12;
                    checksum += NetRig.referenceSum(c.bytes(), 12, c.bytes().length - 12);
                } else {
                    drops.merge(drop, 1L, Long::sum);
                }
                if (rig.txDriver.numFree() < 8) {
                    NetRig.drain(pair);
                    while (rig.txDriver.pollUsed() != DriverQueue.NONE) {
                        assertEquals(0, rig.txDriver.usedLength());
                    }
                }
            }
            NetRig.drain(pair);
            Sink sink = (Sink) pair.handler();
            assertEquals(frames, sink.frames());
            assertEquals(bytes, sink.bytes());
            assertEquals(checksum, sink.checksum());
            assertEquals(drops, pair.statistics().dropsByReason());
            assertTrue(pair.failure() == null);
        }
    }

    @Property(tries = 150)
    void reflectedFramesComeBackSwappedOrAreCountedDrops(@ForAll boolean packed, @ForAll boolean mergeable,
        @ForAll @Size(min = 1, max = 30) List<@IntRange(min = 14, max = 3000) Integer> lengths,
        @ForAll @IntRange(min = 12, max = 600) int mergedBufferSize, @ForAll @IntRange(min = 0, max = 4) int queueShift)
        throws Exception {
        int q = 8 << queueShift;
        int rxBuffer = mergeable ? mergedBufferSize : NetDriver.MIN_RX_BUFFER_WITHOUT_MERGE + 100;
        try (NetRig rig = new NetRig(NetRig.features(packed, mergeable, queueShift % 2 == 0), q)) {
            NetDriver driver = rig.driver(rxBuffer, 12 + 3000);
            NetQueuePair pair = rig.pair(NetDevice.reflect());
            List<byte[]> expected = new ArrayList<>();
            List<byte[]> received = new ArrayList<>();
            for (int i = 0; i < lengths.size(); i++) {
                byte[] f = NetRig.frame(lengths.get(i), i);
                byte[] e = f.clone();
                System.arraycopy(f, 6, e, 0, 6);
                System.arraycopy(f, 0, e, 6, 6);
                expected.add(e);
                NetRig.send(driver, f);
                driver.flush();
                NetRig.drain(pair);
                driver.reclaim();
                received.addAll(NetRig.receiveAll(driver));
            }
            NetStatistics device = pair.statistics();
            assertEquals(lengths.size(), device.txFrames());
            assertEquals(lengths.size(), device.rxFrames() + device.totalDrops(), device.toString());
            assertEquals(device.rxFrames(), received.size());
            // what came back is the expected frames in order, some left out (dropped)
            int at = 0;
            for (byte[] r : received) {
                while (at < expected.size() && !java.util.Arrays.equals(expected.get(at), r)) {
                    at++;
                }
                assertTrue(at < expected.size(), "a received frame matches no sent frame in order");
                at++;
            }
            if (!mergeable) {
                // each rx buffer holds 1626 bytes: frames up to 1614 fit, longer ones are too long
                long tooLong = lengths.stream().filter(l -> l > 1614).count();
                assertEquals(tooLong, device.drops(NetDrop.FRAME_TOO_LONG));
                // the buffer too small came back with 0 bytes: the driver counts a short buffer
                assertEquals(tooLong, driver.statistics().drops(NetDrop.SHORT_RX_BUFFER));
                assertEquals(tooLong, driver.statistics().totalDrops());
            } else {
                assertEquals(0, device.drops(NetDrop.BAD_RX_BUFFER));
                assertEquals(0, driver.statistics().totalDrops());
            }
        }
    }

    /** One used entry series a lying device returns: a header with num_buffers, then continuations. */
    record Delivery(int numBuffers, int firstUsed, int[] continuations) {
    }

    @Provide
    Arbitrary<Delivery> deliveries() {
        Arbitrary<Integer> numBuffers = Arbitraries.frequencyOf(
            net.jqwik.api.Tuple.of(1, Arbitraries.just(0)), net.jqwik.api.Tuple.of(4, Arbitraries.integers().between(1, 4)),
            net.jqwik.api.Tuple.of(1, Arbitraries.integers().between(5, 65535)));
        Arbitrary<Integer> firstUsed = Arbitraries.integers().between(0, 128);
        Arbitrary<int[]> continuations = Arbitraries.integers().between(0, 128).array(int[].class).ofMaxSize(4);
        return Combinators.combine(numBuffers, firstUsed, continuations).as(Delivery::new);
    }

    @Property(tries = 150)
    void driverHandsOverExactlyWhatTheModelSaysFromALyingDevice(@ForAll boolean packed,
        @ForAll @Size(min = 1, max = 12) List<@From("deliveries") Delivery> deliveries) throws Exception {
        int q = 32;
        try (NetRig rig = new NetRig(NetRig.features(packed, true, false), q)) {
            NetDriver driver = rig.driver(128, 256);
            DescriptorChain chain = new DescriptorChain();
            long expectFrames = 0;
            long expectShort = 0;
            long expectBadNum = 0;
            long expectBytes = 0;
            List<byte[]> got = new ArrayList<>();
            for (Delivery d : deliveries) {
                // the used entries of this delivery, as the driver will see them
                int[] used = new int[1 + d.continuations().length];
                used[0] = d.firstUsed();
                System.arraycopy(d.continuations(), 0, used, 1, d.continuations().length);
                for (int u : used) {
                    if (!rig.rxDevice.pop(chain)) {
                        throw new AssertionError("the driver keeps buffers posted: " + rig.rxDriver.inFlight());
                    }
                    byte[] content = NetRig.frame(128, u);
                    chain.copyToWritable(0, MemorySegment.ofArray(content), 0, 128);
                    MemorySegment header = MemorySegment.ofArray(new byte[12]);
                    VirtioNetHeader.write(header, 0, 12, d.numBuffers());
                    chain.copyToWritable(0, header, 0, 12);
                    rig.rxDevice.addUsed(chain.head(), u);
                }
                rig.rxDevice.publishUsed();
                // the model: walk the used entries as the driver does
                int i = 0;
                while (i < used.length) {
                    if (used[i] < 12) {
                        expectShort++;
                        i++;
                        continue;
                    }
                    // each entry's header says d.numBuffers(); a continuation read as a head says it too
                    int n = d.numBuffers();
                    if (n == 0) {
                        expectBadNum++;
                        i++;
                        continue;
                    }
                    if (i + n > used.length) {
                        expectBadNum++;
                        i = used.length;
                        continue;
                    }
                    long len = used[i] - 12L;
                    for (int k = 1; k < n; k++) {
                        len += used[i + k];
                    }
                    expectFrames++;
                    expectBytes += len;
                    i += n;
                }
                got.addAll(NetRig.receiveAll(driver));
                assertEquals(q, rig.rxDriver.inFlight() + driver.rxBuffersAwaitingRefill());
            }
            assertEquals(expectFrames, got.size());
            assertEquals(expectFrames, driver.statistics().rxFrames());
            assertEquals(expectBytes, driver.statistics().rxBytes());
            assertEquals(expectShort, driver.statistics().drops(NetDrop.SHORT_RX_BUFFER));
            assertEquals(expectBadNum, driver.statistics().drops(NetDrop.BAD_NUM_BUFFERS));
        }
    }

    @Property(tries = 300)
    void onesComplementSumOverAnySplitMatchesTheReference(@ForAll @Size(max = 300) byte[] data,
        @ForAll @IntRange(min = 1, max = 6) int pieces, @ForAll long seed, @ForAll @IntRange(min = 0, max = 300) int from) {
        int[] split = splits(data.length, pieces, seed);
        Frame frame = new Frame(1);
        MemorySegment segment = MemorySegment.ofArray(data);
        int at = 0;
        for (int len : split) {
            frame.add(segment, at, len);
            at += len;
        }
        int start = Math.min(from, data.length);
        assertEquals(NetRig.referenceSum(data, start, data.length - start), frame.onesComplementSum(start, data.length - start));
        byte[] copy = new byte[data.length];
        frame.copyTo(0, MemorySegment.ofArray(copy), 0, data.length);
        assertArrayEquals(data, copy);
    }
}

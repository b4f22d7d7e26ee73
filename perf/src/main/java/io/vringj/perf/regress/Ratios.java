package io.vringj.perf.regress;

import java.util.ArrayList;
import java.util.List;

/**
 * The ratios the suite tracks, one list for every profile. Each compares benchmarks of one class
 * measured in the same run, so the machine's speed cancels out.
 */
public final class Ratios {
    /** Q1 and Q9 payload sizes in bytes. */
    public static final List<String> PAYLOADS = List.of("64", "1024", "4096");
    /** Q1 and Q9 batch sizes. */
    public static final List<String> BATCHES = List.of("1", "32");
    /** Q6 mapping sizes in bytes. */
    public static final List<String> BOUNCE_SIZES = List.of("4096", "65536", "262144");
    /**
     * The parameter an {@link Interleaved} result carries: the method it was measured beside. Its
     * figure belongs to that pair only (each pair runs in a JVM of its own).
     */
    public static final String PAIRED_WITH = "pairedWith";

    private Ratios() {
    }

    /** @return every tracked ratio, in question order */
    public static List<RatioSpec> all() {
        List<RatioSpec> list = new ArrayList<>();
        String q1 = "RingThroughputBenchmark.";
        for (String payload : PAYLOADS) {
            for (String batch : BATCHES) {
                String[] p = {"payloadBytes", payload, "batch", batch};
                String where = payload + " B, batch " + batch;
                double agronaTarget = switch (payload) {
                    case "64" -> 1.0;
                    case "4096" -> 4.0;
                    default -> Double.NaN;
                };
                list.add(new RatioSpec("q1.packed-vs-split." + payload + "B.batch" + batch, Question.Q1,
                    "vringj packed ring / split ring messages/s, " + where,
                    Selector.of(q1 + "vringjPacked", "messages", p), Selector.of(q1 + "vringj", "messages", p),
                    Double.NaN, true));
                // measured, no target: what VIRTIO_F_IN_ORDER saves on each layout
                list.add(new RatioSpec("q1.inorder-vs-split." + payload + "B.batch" + batch, Question.Q1,
                    "vringj split ring with IN_ORDER / without, messages/s, " + where,
                    Selector.of(q1 + "vringjInOrder", "messages", p), Selector.of(q1 + "vringj", "messages", p),
                    Double.NaN, true));
                list.add(new RatioSpec("q1.packed-inorder-vs-packed." + payload + "B.batch" + batch, Question.Q1,
                    "vringj packed ring with IN_ORDER / without, messages/s, " + where,
                    Selector.of(q1 + "vringjPackedInOrder", "messages", p), Selector.of(q1 + "vringjPacked", "messages", p),
                    Double.NaN, true));
                for (String peer : List.of("agrona", "jctools", "abq")) {
                    list.add(new RatioSpec("q1.vringj-vs-" + peer + "." + payload + "B.batch" + batch, Question.Q1,
                        "vringj / " + peer + " messages/s, " + where,
                        Selector.of(q1 + "vringj", "messages", p), Selector.of(q1 + peer, "messages", p),
                        peer.equals("agrona") ? agronaTarget : Double.NaN, true));
                }
            }
        }
        list.add(new RatioSpec("q2.ring-vs-pingpong", Question.Q2,
            "ring round trips/s / cache-line ping-pong round trips/s (1.5x the ping-pong's time = 0.667)",
            Selector.of("RoundTripBenchmark.ring", "roundTrips"),
            Selector.of("RoundTripBenchmark.pingPong", "roundTrips"), 1 / 1.5, true));
        String q3 = "DmaIndirectionBenchmark.";
        list.add(ratio("q3.direct-mono-vs-premapped", Question.Q3,
            "DirectDmaOps at a monomorphic call site / premapped, trips/s", q3 + "directMonomorphic", q3 + "premapped",
            0.98));
        list.add(ratio("q3.direct-mega-vs-premapped", Question.Q3,
            "DirectDmaOps at a call site that saw three DmaOps types / premapped, trips/s", q3 + "directMegamorphic",
            q3 + "premapped", 0.95));
        String q4 = "IommuModesBenchmark.";
        list.add(ratio("q4.passthrough-vs-direct", Question.Q4, "IOMMU passthrough / direct, trips/s with map+unmap",
            q4 + "passthrough", q4 + "direct", 0.98));
        list.add(ratio("q4.lazy-vs-direct", Question.Q4, "IOMMU lazy / direct, trips/s with map+unmap",
            q4 + "lazy", q4 + "direct", 0.30));
        list.add(ratio("q4.strict-vs-direct", Question.Q4, "IOMMU strict / direct, trips/s with map+unmap",
            q4 + "strict", q4 + "direct", 0.20));
        String q5 = "DeviceIotlbBenchmark.";
        list.add(ratio("q5.iotlb-cached-vs-identity", Question.Q5,
            "device over the IOTLB (all hits) with the ring-area cache / identity, trips/s",
            q5 + "iotlbCached", q5 + "identity", 0.95));
        list.add(ratio("q5.iotlb-uncached-vs-identity", Question.Q5,
            "device over the IOTLB (all hits) without the ring-area cache / identity, trips/s",
            q5 + "iotlbUncached", q5 + "identity", Double.NaN));
        String q6 = "SwiotlbBounceBenchmark.";
        for (String size : BOUNCE_SIZES) {
            // one thread: an interleaved pair at each size, as the DMA questions are measured
            list.add(new RatioSpec("q6.bounce-vs-copy." + size + "B", Question.Q6,
                "swiotlb map+unmap / MemorySegment.copy of the same bytes, " + size + " B",
                Selector.of(q6 + "bounce", BenchmarkResult.PRIMARY, "bytes", size, PAIRED_WITH, "copy"),
                Selector.of(q6 + "copy", BenchmarkResult.PRIMARY, "bytes", size, PAIRED_WITH, "bounce"),
                "4096".equals(size) ? 0.60 : 0.90, false));
        }
        // two threads: JMH forks, every round
        list.add(new RatioSpec("q6.several-areas-vs-one", Question.Q6,
            "two threads bouncing 4 KiB: a pool with several areas / a pool with one area, ops/s",
            Selector.of(q6 + "severalAreas", BenchmarkResult.PRIMARY),
            Selector.of(q6 + "oneArea", BenchmarkResult.PRIMARY), Double.NaN, true));
        String q8 = "PremappedBuffersBenchmark.";
        for (String mode : List.of("passthrough", "lazy", "strict")) {
            list.add(ratio("q8." + mode + "-premapped-vs-direct", Question.Q8,
                "IOMMU " + mode + " with premapped buffers / direct mapped per request, trips/s",
                q8 + mode + "Premapped", q8 + "direct", 0.95));
        }
        list.add(ratio("q8.lazy-mapped-vs-direct", Question.Q8,
            "IOMMU lazy mapped per request / direct mapped per request, trips/s", q8 + "lazyMapped", q8 + "direct",
            0.30));
        list.add(ratio("q8.strict-mapped-vs-direct", Question.Q8,
            "IOMMU strict mapped per request / direct mapped per request, trips/s", q8 + "strictMapped",
            q8 + "direct", 0.20));
        list.add(ratio("q8.protected-pool-vs-unprotected", Question.Q8,
            "protected guest with a coherent buffer pool in its shared region / unprotected direct ring, trips/s",
            q8 + "protectedPool", q8 + "direct", 0.95));
        list.add(ratio("q8.protected-bounce-vs-unprotected", Question.Q8,
            "protected guest bouncing every request through swiotlb / unprotected direct ring, trips/s",
            q8 + "protectedBounce", q8 + "direct", Double.NaN));
        String q9 = "ChannelThroughputBenchmark.";
        for (String payload : PAYLOADS) {
            for (String batch : BATCHES) {
                String[] p = {"payloadBytes", payload, "batch", batch};
                String where = payload + " B, batch " + batch;
                // zero copy against Aeron's one copy: at least even at 64 B, twice at 4 KiB
                double aeronTarget = switch (payload) {
                    case "64" -> 1.0;
                    case "4096" -> 2.0;
                    default -> Double.NaN;
                };
                list.add(new RatioSpec("q9.vringj-vs-aeron." + payload + "B.batch" + batch, Question.Q9,
                    "vringj channel / Aeron IPC messages/s between two processes, " + where,
                    Selector.of(q9 + "vringj", "messages", p), Selector.of(q9 + "aeron", "messages", p), aeronTarget,
                    true));
                list.add(new RatioSpec("q9.device-end-vs-aeron." + payload + "B.batch" + batch, Question.Q9,
                    "vringj channel sending from the device end / Aeron IPC messages/s between two processes, " + where,
                    Selector.of(q9 + "vringjDeviceEnd", "messages", p), Selector.of(q9 + "aeron", "messages", p),
                    Double.NaN, true));
                list.add(new RatioSpec("q9.vringj-vs-agrona-mmap." + payload + "B.batch" + batch, Question.Q9,
                    "vringj channel / Agrona ring buffer in a mapped file, messages/s between two processes, " + where,
                    Selector.of(q9 + "vringj", "messages", p), Selector.of(q9 + "agronaMmap", "messages", p),
                    Double.NaN, true));
            }
        }
        String q10 = "ChannelRoundTripBenchmark.";
        list.add(new RatioSpec("q10.vringj-vs-aeron", Question.Q10,
            "vringj channel round trips/s / Aeron IPC round trips/s between two processes, 64 B (= Aeron's round-trip"
                + " time / vringj's; within 1.5x of Aeron's = 0.667)",
            Selector.of(q10 + "vringj", "roundTrips"), Selector.of(q10 + "aeron", "roundTrips"), 1 / 1.5, true));
        list.add(new RatioSpec("q10.vringj-vs-agrona-mmap", Question.Q10,
            "vringj channel round trips/s / Agrona mapped ring buffer round trips/s between two processes, 64 B",
            Selector.of(q10 + "vringj", "roundTrips"), Selector.of(q10 + "agronaMmap", "roundTrips"), Double.NaN,
            true));
        return List.copyOf(list);
    }

    /**
     * A one-thread ratio measured as an {@link Interleaved} pair: each side is the figure of its
     * method measured in one JVM with the other side ({@link #PAIRED_WITH} names the other method),
     * not JMH's fork of its own.
     */
    private static RatioSpec ratio(String id, Question q, String description, String numerator, String denominator,
                                   double target) {
        return new RatioSpec(id, q, description,
            Selector.of(numerator, BenchmarkResult.PRIMARY, PAIRED_WITH, methodOf(denominator)),
            Selector.of(denominator, BenchmarkResult.PRIMARY, PAIRED_WITH, methodOf(numerator)), target, false);
    }

    /**
     * @param q a question
     * @param method one of its benchmark methods or groups
     * @return whether JMH measures it once a run only (for allocation): it is a side of an
     *     {@link RatioSpec#interleaved} ratio and of no ratio taken from JMH's forks
     */
    public static boolean measuredOnceARun(Question q, String method) {
        boolean paired = false;
        for (RatioSpec spec : all()) {
            if (spec.question() != q || !(methodOf(spec.numerator().benchmark()).equals(method)
                || methodOf(spec.denominator().benchmark()).equals(method))) {
                continue;
            }
            if (!spec.interleaved()) {
                return false;
            }
            paired = true;
        }
        return paired;
    }

    /**
     * @param shortName {@code Class.method}
     * @return {@code method}
     */
    static String methodOf(String shortName) {
        return shortName.substring(shortName.indexOf('.') + 1);
    }
}

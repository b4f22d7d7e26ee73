package io.vringj.perf.regress;

import java.util.List;
import java.util.Set;

/**
 * The questions of the performance suite, each answered by one benchmark class whose peers run
 * beside it. Question 7 (allocation) has no class of its own: every run is profiled with JMH's
 * {@code gc} profiler and the vringj hot paths of the other questions are checked for 0 B/op.
 */
public enum Question {
    /** Ring throughput, one producer and one consumer thread, against Agrona, JCTools and ArrayBlockingQueue. */
    Q1("Ring throughput vs Agrona, JCTools, ArrayBlockingQueue", "io.vringj.perf.ring.RingThroughputBenchmark",
        Set.of("agrona", "jctools", "abq"), true),
    /** The ring's cross-thread round trip against a cache-line ping-pong. */
    Q2("Ring round trip vs a cache-line ping-pong", "io.vringj.perf.ring.RoundTripBenchmark",
        Set.of("pingPong"), true),
    /** Premapped addresses vs DirectDmaOps at a monomorphic and a megamorphic call site. */
    Q3("Cost of the DMA-ops indirection", "io.vringj.perf.dma.DmaIndirectionBenchmark", Set.of(), false),
    /** Direct vs IOMMU passthrough, lazy and strict, map/unmap per buffer. */
    Q4("IOMMU modes", "io.vringj.perf.dma.IommuModesBenchmark", Set.of(), false),
    /** A device over the device IOTLB (all hits) vs identity, with and without the ring-area cache. */
    Q5("Device IOTLB vs identity", "io.vringj.perf.dma.DeviceIotlbBenchmark", Set.of("iotlbUncached"), false),
    /** swiotlb bounce bandwidth vs MemorySegment.copy, and contention on the pool's areas. */
    Q6("swiotlb bounce vs MemorySegment.copy", "io.vringj.perf.swiotlb.SwiotlbBounceBenchmark",
        Set.of("copy"), false),
    /** Premapped buffers through each IOMMU mode and in a protected guest vs direct per-request mapping. */
    Q8("Premapped buffers vs per-request mapping", "io.vringj.perf.dma.PremappedBuffersBenchmark", Set.of(), false),
    /** Messages from one process to another: vringj's message channel vs Aeron IPC vs Agrona's ring buffer in a mapped file. */
    Q9("Messages between two processes: vringj channel vs Aeron IPC vs Agrona mmap",
        "io.vringj.perf.channel.ChannelThroughputBenchmark", Set.of("aeron", "agronaMmap"), true),
    /** One message to another process and back, through the same three transports. */
    Q10("Round trip between two processes: vringj channel vs Aeron IPC vs Agrona mmap",
        "io.vringj.perf.channel.ChannelRoundTripBenchmark", Set.of("aeron", "agronaMmap"), true);

    /**
     * Question 9's message sizes in the quick profile: those its targets name. Every size runs in
     * the full profile.
     */
    public static final Set<String> Q9_QUICK_PAYLOADS = Set.of("64", "4096");
    /**
     * The transports questions 9 and 10 measure in the quick profile: vringj and the peer their
     * targets name. Agrona's mapped ring runs in the full profile.
     */
    public static final Set<String> TWO_PROCESS_QUICK_BENCHMARKS = Set.of("vringj", "aeron");

    private final String title;
    private final String benchmarkClass;
    private final Set<String> peers;
    private final boolean twoThreaded;

    Question(String title, String benchmarkClass, Set<String> peers, boolean twoThreaded) {
        this.title = title;
        this.benchmarkClass = benchmarkClass;
        this.peers = peers;
        this.twoThreaded = twoThreaded;
    }

    /** @return the lower-case id used in ratio ids and on the command line ({@code q1}) */
    public String id() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /**
     * @return the metric that is this question's throughput: payloads for Q1 and messages sent for
     *     Q9, round trips for Q2 and Q10, the primary metric otherwise
     */
    public String throughputMetric() {
        return switch (this) {
            case Q1, Q9 -> "messages";
            case Q2, Q10 -> "roundTrips";
            default -> BenchmarkResult.PRIMARY;
        };
    }

    /** @return a one-line title */
    public String title() {
        return title;
    }

    /** @return the fully qualified name of the benchmark class answering it */
    public String benchmarkClass() {
        return benchmarkClass;
    }

    /** @return the class's simple name, as it appears in {@link BenchmarkResult#shortName()} */
    public String simpleClassName() {
        return benchmarkClass.substring(benchmarkClass.lastIndexOf('.') + 1);
    }

    /** @return whether all its benchmarks run two threads against each other (noisier on a shared machine) */
    public boolean twoThreaded() {
        return twoThreaded;
    }

    /**
     * @param methodOrGroup a benchmark method or group of this question's class
     * @return whether it measures a peer, a floor or a deliberately degraded configuration (the
     *     IOTLB without the ring-area cache) rather than a vringj hot path
     */
    public boolean isPeer(String methodOrGroup) {
        return peers.contains(methodOrGroup);
    }

    /**
     * Which of this question's benchmarks a profile measures. Every one in the full profile; the
     * quick profile leaves out part of questions 9 and 10 to keep their time near two minutes (a
     * peer JVM starts for every fork): only {@link #TWO_PROCESS_QUICK_BENCHMARKS} and, for
     * question 9, {@link #Q9_QUICK_PAYLOADS}, where the issue sets its targets. Ratios whose
     * benchmarks did not run are reported as not measured, which fails nothing.
     *
     * @param profile the profile
     * @param method a benchmark method or group of this question's class
     * @param params one parameter combination it runs at
     * @return whether the profile measures the method at those parameters
     */
    public boolean measures(Profile profile, String method, java.util.Map<String, String> params) {
        if (profile != Profile.QUICK || (this != Q9 && this != Q10)) {
            return true;
        }
        return TWO_PROCESS_QUICK_BENCHMARKS.contains(method)
            && (this == Q10 || Q9_QUICK_PAYLOADS.contains(params.get("payloadBytes")));
    }

    /**
     * @param result a result of any question
     * @return the question whose class produced it, or {@code null}
     */
    public static Question of(BenchmarkResult result) {
        String name = result.benchmark();
        for (Question q : values()) {
            if (name.startsWith(q.benchmarkClass + ".")) {
                return q;
            }
        }
        return null;
    }

    /**
     * @param ids question ids such as {@code q1}, case-insensitive
     * @return the questions, in suite order
     * @throws IllegalArgumentException naming an unknown id
     */
    public static List<Question> parse(List<String> ids) {
        java.util.EnumSet<Question> set = java.util.EnumSet.noneOf(Question.class);
        for (String id : ids) {
            Question found = null;
            for (Question q : values()) {
                if (q.id().equalsIgnoreCase(id.trim())) {
                    found = q;
                }
            }
            if (found == null) {
                throw new IllegalArgumentException("unknown question \"" + id + "\"; the questions are q1..q6 and q8"
                    + " (q7, allocation, is checked in every run)");
            }
            set.add(found);
        }
        return List.copyOf(set);
    }
}

package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ChecksTest {
    private static final String Q3 = "io.vringj.perf.dma.DmaIndirectionBenchmark.";

    private static CannedJmh q1All(double vringj64, double agrona64) {
        CannedJmh c = new CannedJmh();
        for (String payload : Ratios.PAYLOADS) {
            for (String batch : Ratios.BATCHES) {
                boolean small = payload.equals("64");
                c.q1("vringj", payload, batch, small ? vringj64 : 4e7, 0.001);
                c.q1("agrona", payload, batch, small ? agrona64 : 1e7, 0.0);
                c.q1("jctools", payload, batch, 3e7, 0.0);
                c.q1("abq", payload, batch, 3e6, 4.8);
            }
        }
        return c;
    }

    private static Check check(List<Check> checks, String id) {
        return checks.stream().filter(c -> c.id().equals(id)).findFirst().orElseThrow();
    }

    @Test
    void computesQ1RatioFromTheMessagesMetricOfTheSameParameters() {
        List<BenchmarkResult> results = q1All(3e7, 2e7).parse();
        Map<String, Double> ratios = Checks.ratios(results);
        assertEquals(1.5, ratios.get("q1.vringj-vs-agrona.64B.batch1"), 1e-9);
        assertEquals(4.0, ratios.get("q1.vringj-vs-agrona.4096B.batch32"), 1e-9);
        assertEquals(4e7 / 3e6, ratios.get("q1.vringj-vs-abq.1024B.batch1"), 1e-9);
    }

    @Test
    void ratioIsMissingWhenABenchmarkDidNotRun() {
        List<BenchmarkResult> results = new CannedJmh().single(Q3 + "premapped", 2e7, 0).parse();
        List<Check> checks = Checks.compare(results, null, Profile.QUICK);
        assertEquals(Check.Status.MISSING, check(checks, "q3.direct-mono-vs-premapped").status());
        assertTrue(Double.isNaN(check(checks, "q3.direct-mono-vs-premapped").current()));
    }

    @Test
    void selectorIgnoresParametersItDoesNotName() {
        List<BenchmarkResult> results = new CannedJmh().add("io.vringj.perf.swiotlb.SwiotlbBounceBenchmark.bounce",
            Map.of("bytes", "4096", "areas", "4"), 100, Map.of()).parse();
        assertEquals(100, Selector.of("SwiotlbBounceBenchmark.bounce", BenchmarkResult.PRIMARY, "bytes", "4096")
            .score(results), 1e-9);
        assertTrue(Double.isNaN(Selector.of("SwiotlbBounceBenchmark.bounce", BenchmarkResult.PRIMARY, "bytes", "65536")
            .score(results)));
    }

    @Test
    void ratioWithinToleranceOfBaselinePassesAndBelowItRegresses() {
        double tolerance = Profile.QUICK.tolerance(false);
        assertEquals(Check.Status.PASS, Checks.ratioStatus(1.0 * (1 - tolerance) + 1e-9, 1.0, tolerance));
        assertEquals(Check.Status.REGRESSION, Checks.ratioStatus(1.0 * (1 - tolerance) - 1e-9, 1.0, tolerance));
        assertEquals(Check.Status.PASS, Checks.ratioStatus(3.0, 1.0, tolerance), "an improvement never fails");
        assertEquals(Check.Status.NEW, Checks.ratioStatus(1.0, Double.NaN, tolerance));
        assertEquals(Check.Status.MISSING, Checks.ratioStatus(Double.NaN, 1.0, tolerance));
    }

    @Test
    void twoThreadQuestionsGetTheWiderTolerance() {
        assertTrue(Profile.QUICK.tolerance(true) > Profile.QUICK.tolerance(false));
        assertTrue(Profile.FULL.tolerance(true) < Profile.QUICK.tolerance(true), "the full profile is stricter");
        Baseline base = new Baseline(Profile.QUICK, "", "", "", Map.of("q1.vringj-vs-agrona.64B.batch1", 2.0), Map.of());
        // 1.5 / 2.0 = a 25% drop: inside the two-thread tolerance (40%), outside the single-thread one (20%)
        List<Check> checks = Checks.compare(q1All(3e7, 2e7).parse(), base, Profile.QUICK);
        assertEquals(Check.Status.PASS, check(checks, "q1.vringj-vs-agrona.64B.batch1").status());
        List<Check> strict = Checks.compare(q1All(3e7, 2e7).parse(), new Baseline(Profile.FULL, "", "", "",
            base.ratios(), Map.of()), Profile.FULL);
        assertEquals(Check.Status.PASS, check(strict, "q1.vringj-vs-agrona.64B.batch1").status(),
            "25% drop is exactly the full profile's two-thread tolerance");
        List<Check> worse = Checks.compare(q1All(2.9e7, 2e7).parse(), new Baseline(Profile.FULL, "", "", "",
            base.ratios(), Map.of()), Profile.FULL);
        assertEquals(Check.Status.REGRESSION, check(worse, "q1.vringj-vs-agrona.64B.batch1").status());
    }

    @Test
    void aHotPathThatStartsAllocatingRegressesButJmhNoiseDoesNot() {
        double slack = Checks.ALLOCATION_SLACK;
        assertEquals(Check.Status.PASS, Checks.allocationStatus(0.001, 0.0, slack));
        assertEquals(Check.Status.REGRESSION, Checks.allocationStatus(2.0, 0.0, slack), "one object every 8 ops");
        assertEquals(Check.Status.REGRESSION, Checks.allocationStatus(0.6, Double.NaN, slack),
            "judged against 0 without a baseline");
        assertEquals(Check.Status.NEW, Checks.allocationStatus(0.2, Double.NaN, slack));
        assertEquals(Check.Status.PASS, Checks.allocationStatus(52.0, 48.0, slack), "a known allocating path may grow a little");
        assertEquals(Check.Status.REGRESSION, Checks.allocationStatus(64.0, 48.0, slack));
    }

    @Test
    void slowBenchmarksGetJmhsPerIterationAllocationAsSlack() {
        List<BenchmarkResult> results = new CannedJmh()
            .single("io.vringj.perf.swiotlb.SwiotlbBounceBenchmark.bounce", 33_000, 0.36)
            .single("io.vringj.perf.dma.DmaIndirectionBenchmark.premapped", 2e7, 0.36).parse();
        double slow = Checks.allocationSlack(results.get(0), Profile.QUICK);
        double fast = Checks.allocationSlack(results.get(1), Profile.QUICK);
        assertEquals(Checks.JMH_BYTES_PER_ITERATION / 33_000, slow, 1e-9);
        assertEquals(Checks.ALLOCATION_SLACK, fast, 1e-12);
        assertTrue(Checks.allocationSlack(results.get(0), Profile.FULL) <= slow, "iterations no shorter, noise no larger");
        List<Check> checks = Checks.compare(results, null, Profile.QUICK);
        assertEquals(Check.Status.NEW, check(checks, "SwiotlbBounceBenchmark.bounce[]").status(),
            "0.36 B/op over 33 000 ops is JMH's own allocation");
        assertEquals(Check.Status.NEW, check(checks, "DmaIndirectionBenchmark.premapped[]").status());
        assertEquals(Check.Status.REGRESSION, Checks.compare(new CannedJmh()
                .single("io.vringj.perf.swiotlb.SwiotlbBounceBenchmark.bounce", 33_000, 16.0).parse(), null, Profile.QUICK)
            .get(Ratios.all().size()).status(), "16 B/op is an object per operation");
    }

    @Test
    void peersAreNotCheckedForAllocation() {
        List<Check> checks = Checks.compare(q1All(3e7, 2e7).parse(), null, Profile.QUICK);
        List<String> allocationIds = checks.stream().filter(c -> c.kind() == Check.Kind.ALLOCATION).map(Check::id)
            .toList();
        assertEquals(6, allocationIds.size(), allocationIds.toString());
        assertTrue(allocationIds.stream().allMatch(id -> id.startsWith("RingThroughputBenchmark.vringj[")),
            allocationIds.toString());
        assertFalse(Checks.anyRegression(checks), "the peer abq allocates 4.8 B/op, which is not ours to gate");
    }

    @Test
    void anAllocatingHotPathFailsTheRun() {
        CannedJmh c = q1All(3e7, 2e7);
        c.single(Q3 + "directMonomorphic", 2e7, 24.0).single(Q3 + "premapped", 2e7, 0.0);
        List<Check> checks = Checks.compare(c.parse(), null, Profile.QUICK);
        assertTrue(Checks.anyRegression(checks));
        assertEquals(Check.Status.REGRESSION, check(checks, "DmaIndirectionBenchmark.directMonomorphic[]").status());
    }

    @Test
    void targetMetIsReportedSeparatelyFromTheVerdict() {
        List<Check> checks = Checks.compare(q1All(3e7, 2e7).parse(), null, Profile.QUICK);
        Check small = check(checks, "q1.vringj-vs-agrona.64B.batch1");
        assertEquals(Boolean.TRUE, small.targetMet(), "1.5 >= target 1.0");
        Check large = check(checks, "q1.vringj-vs-agrona.4096B.batch1");
        assertEquals(Boolean.TRUE, large.targetMet(), "4.0 >= target 4.0");
        assertEquals(null, check(checks, "q1.vringj-vs-jctools.64B.batch1").targetMet(), "no target");
        List<Check> low = Checks.compare(q1All(1e7, 2e7).parse(), null, Profile.QUICK);
        assertEquals(Boolean.FALSE, check(low, "q1.vringj-vs-agrona.64B.batch1").targetMet());
        assertFalse(Checks.anyRegression(low), "a missed target is reported, not a regression");
    }

    @Test
    void newBaselineKeepsFiguresThisRunDidNotMeasure() {
        Baseline previous = new Baseline(Profile.QUICK, "then", "m", "", Map.of("q6.several-areas-vs-one", 1.7,
            "q1.vringj-vs-agrona.64B.batch1", 9.0), Map.of("SwiotlbBounceBenchmark.bounce[bytes=4096]", 0.0));
        Baseline next = Checks.baselineOf(q1All(3e7, 2e7).parse(), Profile.QUICK, "now", "m2", "note", previous);
        assertEquals(1.7, next.ratios().get("q6.several-areas-vs-one"), 1e-9);
        assertEquals(1.5, next.ratios().get("q1.vringj-vs-agrona.64B.batch1"), 1e-9, "measured figures replace old ones");
        assertTrue(next.allocation().containsKey("SwiotlbBounceBenchmark.bounce[bytes=4096]"));
        assertTrue(next.allocation().containsKey("RingThroughputBenchmark.vringj[batch=1, payloadBytes=64]"));
        assertFalse(next.ratios().containsKey("q3.direct-mono-vs-premapped"), "unmeasured and not in the old baseline");
    }

    @Test
    void everyRatioIdIsUniqueAndNamesItsQuestion() {
        List<RatioSpec> all = Ratios.all();
        assertEquals(all.size(), all.stream().map(RatioSpec::id).distinct().count());
        for (RatioSpec r : all) {
            assertTrue(r.id().startsWith(r.question().id() + "."), r.id());
            assertTrue(r.numerator().benchmark().startsWith(r.question().simpleClassName() + "."), r.id());
            assertTrue(r.denominator().benchmark().startsWith(r.question().simpleClassName() + "."), r.id());
        }
    }
}

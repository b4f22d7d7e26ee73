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

    /** A baseline entry of this machine with the given ratio medians (no recorded spread). */
    static Baseline.Entry entry(Map<String, Double> ratios) {
        Map<String, Spread> spreads = new java.util.TreeMap<>();
        ratios.forEach((k, v) -> spreads.put(k, Spread.ofMedian(v)));
        return new Baseline.Entry(Machine.current(), "", "", spreads, Map.of());
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
        List<Check> checks = Checks.compare(results, entry(Map.of()), Profile.QUICK);
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
        Spread one = Spread.ofMedian(1.0);
        assertEquals(Check.Status.PASS, Checks.ratioStatus(Spread.ofMedian(1.0 * (1 - tolerance) + 1e-9), one,
            tolerance));
        assertEquals(Check.Status.REGRESSION, Checks.ratioStatus(Spread.ofMedian(1.0 * (1 - tolerance) - 1e-9), one,
            tolerance));
        assertEquals(Check.Status.PASS, Checks.ratioStatus(Spread.ofMedian(3.0), one, tolerance),
            "an improvement never fails");
        assertEquals(Check.Status.NEW, Checks.ratioStatus(one, Spread.NONE, tolerance));
        assertEquals(Check.Status.MISSING, Checks.ratioStatus(Spread.NONE, one, tolerance));
    }

    @Test
    void aDropRegressesOnlyBeyondTheNoiseOfBothRunsAndTheTolerance() {
        double tolerance = 0.2;
        // baseline 1.0 with quartiles 0.9 .. 1.1: a drop must put this run's upper quartile below 0.9 × 0.8 = 0.72
        Spread base = new Spread(1.0, 0.9, 1.1, 5);
        assertEquals(Check.Status.REGRESSION, Checks.ratioStatus(new Spread(0.68, 0.66, 0.71, 5), base, tolerance));
        assertEquals(Check.Status.PASS, Checks.ratioStatus(new Spread(0.75, 0.73, 0.78, 5), base, tolerance),
            "0.75 is 25% below the median, but the baseline's own spread leaves it within the tolerance");
        assertEquals(Check.Status.NOISY, Checks.ratioStatus(new Spread(0.68, 0.64, 0.73, 5), base, tolerance),
            "this run's upper quartile 0.73 reaches past 0.72: not beyond this run's noise, and not clear of it");
        assertEquals(Check.Status.REGRESSION, Checks.ratioStatus(new Spread(0.68, 0.64, 0.73, 5),
            new Spread(1.0, 1.0, 1.0, 5), tolerance), "a steadier baseline (lower quartile 1.0) tells the same drop apart");
    }

    @Test
    void aWideSpreadEntirelyAboveTheRegressionLinePasses() {
        double tolerance = 0.2;
        // the line: 0.98 × 0.8 = 0.784
        Spread base = new Spread(1.0, 0.98, 1.02, 5);
        Spread wide = new Spread(1.0, 0.8, 1.25, 5);
        assertTrue(wide.relativeIqr() > tolerance, "the middle half spans 45% of the median");
        assertEquals(Check.Status.PASS, Checks.ratioStatus(wide, base, tolerance),
            "however wide, the whole middle half is above the line: no regression can hide in it");
        assertEquals(Check.Status.PASS, Checks.ratioStatus(new Spread(2.0, 0.79, 5.0, 5), base, tolerance));
    }

    @Test
    void aSpreadThatStraddlesTheRegressionLineIsTooNoisyWhateverItsWidth() {
        double tolerance = 0.2;
        Spread base = new Spread(1.0, 0.98, 1.02, 5);
        Spread narrow = new Spread(0.79, 0.78, 0.80, 5);
        assertTrue(narrow.relativeIqr() < tolerance / 5, "the middle half spans under 3% of the median");
        assertEquals(Check.Status.NOISY, Checks.ratioStatus(narrow, base, tolerance),
            "0.78 .. 0.80 has the line 0.784 inside: the spread is what stops a decision");
        assertEquals(Check.Status.NOISY, Checks.ratioStatus(new Spread(1.0, 0.5, 1.5, 5), base, tolerance));
    }

    @Test
    void aSpreadEntirelyBelowTheRegressionLineRegressesWhateverItsWidth() {
        double tolerance = 0.2;
        Spread base = new Spread(1.0, 0.98, 1.02, 5);
        assertEquals(Check.Status.REGRESSION, Checks.ratioStatus(new Spread(0.3, 0.2, 0.4, 5), base, tolerance),
            "even with its wide spread the whole middle half is far below");
        assertEquals(Check.Status.REGRESSION, Checks.ratioStatus(new Spread(0.77, 0.765, 0.78, 5), base, tolerance),
            "a narrow spread just below 0.784");
    }

    @Test
    void theRegressionLineItselfCountsAsAboveIt() {
        // 1.0 × (1 − 0.25) = 0.75 exactly in binary floating point
        double tolerance = 0.25;
        Spread base = new Spread(1.0, 1.0, 1.2, 5);
        assertEquals(Check.Status.PASS, Checks.ratioStatus(new Spread(0.9, 0.75, 1.2, 5), base, tolerance),
            "lower quartile exactly on the line");
        assertEquals(Check.Status.NOISY, Checks.ratioStatus(new Spread(0.9, Math.nextDown(0.75), 1.2, 5), base,
            tolerance), "lower quartile a hair below the line");
        assertEquals(Check.Status.NOISY, Checks.ratioStatus(new Spread(0.7, 0.6, 0.75, 5), base, tolerance),
            "upper quartile exactly on the line: not below it");
        assertEquals(Check.Status.REGRESSION, Checks.ratioStatus(new Spread(0.7, 0.6, Math.nextDown(0.75), 5), base,
            tolerance), "upper quartile a hair below the line");
    }

    @Test
    void aBaselineWithoutQuartilesDrawsTheLineFromItsMedian() {
        double tolerance = 0.25;
        // median 1.2, no quartiles: the line is 1.2 × 0.75 = 0.9 (with a lower quartile of 1.0 it would be 0.75)
        Spread base = Spread.ofMedian(1.2);
        assertEquals(Check.Status.PASS, Checks.ratioStatus(new Spread(1.0, 0.91, 1.1, 5), base, tolerance));
        assertEquals(Check.Status.NOISY, Checks.ratioStatus(new Spread(1.0, 0.8, 1.1, 5), base, tolerance),
            "0.8 .. 1.1 straddles 0.9");
        assertEquals(Check.Status.PASS, Checks.ratioStatus(new Spread(1.0, 0.8, 1.1, 5), new Spread(1.2, 1.0, 1.3, 5),
            tolerance), "the same run against a baseline whose lower quartile 1.0 puts the line at 0.75");
        assertEquals(Check.Status.REGRESSION, Checks.ratioStatus(new Spread(0.85, 0.8, 0.89, 5), base, tolerance));
    }

    @Test
    void twoThreadQuestionsGetTheWiderTolerance() {
        assertTrue(Profile.QUICK.tolerance(true) > Profile.QUICK.tolerance(false));
        assertTrue(Profile.FULL.tolerance(true) < Profile.QUICK.tolerance(true), "the full profile is stricter");
        Baseline.Entry base = entry(Map.of("q1.vringj-vs-agrona.64B.batch1", 2.0));
        // 1.5 / 2.0 = a 25% drop: inside the two-thread tolerance (40%), outside the single-thread one (20%)
        List<Check> checks = Checks.compare(q1All(3e7, 2e7).parse(), base, Profile.QUICK);
        assertEquals(Check.Status.PASS, check(checks, "q1.vringj-vs-agrona.64B.batch1").status());
        List<Check> strict = Checks.compare(q1All(3e7, 2e7).parse(), base, Profile.FULL);
        assertEquals(Check.Status.PASS, check(strict, "q1.vringj-vs-agrona.64B.batch1").status(),
            "25% drop is exactly the full profile's two-thread tolerance");
        List<Check> worse = Checks.compare(q1All(2.9e7, 2e7).parse(), base, Profile.FULL);
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
        assertEquals(Checks.JMH_BYTES_PER_ITERATION / (33_000 * Profile.QUICK.measurementMillis() / 1000.0), slow, 1e-9);
        assertEquals(Checks.ALLOCATION_SLACK, fast, 1e-12);
        assertTrue(Checks.allocationSlack(results.get(0), Profile.FULL) <= slow, "iterations no shorter, noise no larger");
        List<Check> checks = Checks.compare(results, entry(Map.of()), Profile.QUICK);
        assertEquals(Check.Status.NEW, check(checks, "SwiotlbBounceBenchmark.bounce[]").status(),
            "0.36 B/op over 33 000 ops is JMH's own allocation");
        assertEquals(Check.Status.NEW, check(checks, "DmaIndirectionBenchmark.premapped[]").status());
        assertEquals(Check.Status.REGRESSION, Checks.compare(new CannedJmh()
                .single("io.vringj.perf.swiotlb.SwiotlbBounceBenchmark.bounce", 33_000, 16.0).parse(), entry(Map.of()),
                Profile.QUICK)
            .get(Ratios.all().size()).status(), "16 B/op is an object per operation");
    }

    @Test
    void peersAreNotCheckedForAllocation() {
        List<Check> checks = Checks.compare(q1All(3e7, 2e7).parse(), entry(Map.of()), Profile.QUICK);
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
        List<Check> checks = Checks.compare(c.parse(), entry(Map.of()), Profile.QUICK);
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
        List<Check> low = Checks.compare(q1All(1e7, 2e7).parse(), entry(Map.of()), Profile.QUICK);
        assertEquals(Boolean.FALSE, check(low, "q1.vringj-vs-agrona.64B.batch1").targetMet());
        assertFalse(Checks.anyRegression(low), "a missed target is reported, not a regression");
    }

    @Test
    void newBaselineEntryKeepsFiguresThisRunDidNotMeasure() {
        Baseline.Entry previous = new Baseline.Entry(Machine.current(), "then", "", Map.of("q6.several-areas-vs-one",
            Spread.ofMedian(1.7), "q1.vringj-vs-agrona.64B.batch1", Spread.ofMedian(9.0)),
            Map.of("SwiotlbBounceBenchmark.bounce[bytes=4096]", 0.0));
        Baseline.Entry next = Checks.entryOf(q1All(3e7, 2e7).parse(), Machine.current(), "now", "note", previous);
        assertEquals(1.7, next.ratios().get("q6.several-areas-vs-one").median(), 1e-9);
        assertEquals(1.5, next.ratios().get("q1.vringj-vs-agrona.64B.batch1").median(), 1e-9,
            "measured figures replace old ones");
        assertEquals(1, next.ratios().get("q1.vringj-vs-agrona.64B.batch1").rounds(), "with their spread");
        assertTrue(next.allocation().containsKey("SwiotlbBounceBenchmark.bounce[bytes=4096]"));
        assertTrue(next.allocation().containsKey("RingThroughputBenchmark.vringj[batch=1, payloadBytes=64]"));
        assertFalse(next.ratios().containsKey("q3.direct-mono-vs-premapped"), "unmeasured and not in the old baseline");
    }

    /** Question 3 in one round per value: directMonomorphic / premapped is {@code ratios[i]} in round i. */
    private static CannedJmh q3Rounds(CannedJmh c, double... ratios) {
        for (double r : ratios) {
            c.single(Q3 + "premapped", 2e7, 0.0).single(Q3 + "directMonomorphic", 2e7 * r, 0.0);
        }
        return c;
    }

    @Test
    void aBaselineFromTwoRunsSpansTheShiftBetweenThemSoALaterRunAtEitherLevelPasses() {
        // the whole of run B is slower than run A (a slow phase of the host), each run steady within itself
        List<BenchmarkResult> a = q3Rounds(new CannedJmh(), 1.0, 0.98, 1.02, 0.99, 1.01).parse();
        List<BenchmarkResult> b = q3Rounds(new CannedJmh(), 0.7, 0.69, 0.71, 0.72, 0.68).parse();
        Baseline.Entry both = Checks.entryOf(Rounds.concat(List.of("a", "b"), List.of(a, b)), Machine.current(), "now",
            "", null);
        Spread s = both.ratios().get("q3.direct-mono-vs-premapped");
        assertEquals(10, s.rounds(), "run B's rounds follow run A's");
        // 0.68 .. 0.72, then 0.98 .. 1.02: quartiles at ranks 2.25 and 6.75
        assertEquals(0.7025, s.low(), 1e-9, "the lower quartile lies among run B's rounds");
        assertEquals(0.9975, s.high(), 1e-9, "the upper quartile among run A's");
        List<BenchmarkResult> later = q3Rounds(new CannedJmh(), 0.7, 0.69, 0.71, 0.7, 0.7).parse();
        assertEquals(Check.Status.PASS, check(Checks.compare(later, both, Profile.QUICK),
            "q3.direct-mono-vs-premapped").status(), "0.7 is where run B was: the baseline has seen it");
        Baseline.Entry oneRun = Checks.entryOf(a, Machine.current(), "now", "", null);
        assertEquals(Check.Status.REGRESSION, check(Checks.compare(later, oneRun, Profile.QUICK),
            "q3.direct-mono-vs-premapped").status(), "a baseline of run A alone never saw a whole run at 0.7");
    }

    @Test
    void aBaselineFromRunsOfUnequalLengthsUsesEveryRoundThatHasTheRatio() {
        // run A: five rounds of q1 and q3; run B: three rounds of q3 only
        CannedJmh a = new CannedJmh();
        for (double r : new double[] {1.0, 1.1, 1.2, 1.3, 1.4}) {
            a.q1("vringj", "64", "1", 2e7 * r, 0.001).q1("agrona", "64", "1", 2e7, 0.0);
            q3Rounds(a, r);
        }
        List<BenchmarkResult> b = q3Rounds(new CannedJmh(), 0.5, 0.6, 0.7).parse();
        List<BenchmarkResult> joined = Rounds.concat(List.of("a", "b"), List.of(a.parse(), b));
        assertEquals(8, Rounds.split(joined).size());
        Baseline.Entry entry = Checks.entryOf(joined, Machine.current(), "now", "", null);
        Spread q1 = entry.ratios().get("q1.vringj-vs-agrona.64B.batch1");
        assertEquals(5, q1.rounds(), "the rounds of run B lack q1 and are left out");
        assertEquals(new Spread(1.2, 1.1, 1.3, 5), q1);
        Spread q3 = entry.ratios().get("q3.direct-mono-vs-premapped");
        assertEquals(8, q3.rounds());
        // 0.5, 0.6, 0.7, 1.0, 1.1, 1.2, 1.3, 1.4: quartiles at ranks 1.75 and 5.25
        assertEquals(0.6 + 0.75 * 0.1, q3.q1(), 1e-9);
        assertEquals(1.05, q3.median(), 1e-9);
        assertEquals(1.2 + 0.25 * 0.1, q3.q3(), 1e-9);
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

    @Test
    void inOrderRatiosAreShownButNotJudgedWhileTheBaselineLacksThem() {
        CannedJmh c = new CannedJmh();
        for (int round = 0; round < 5; round++) {
            for (String payload : Ratios.PAYLOADS) {
                for (String batch : Ratios.BATCHES) {
                    c.q1("vringj", payload, batch, 2e7, 0.001);
                    c.q1("vringjInOrder", payload, batch, 1e7, 0.001);
                    c.q1("agrona", payload, batch, 2e7, 0.0);
                }
            }
        }
        Map<String, Spread> ratios = new java.util.TreeMap<>(steadyEntry().ratios());
        ratios.keySet().removeIf(id -> id.contains("inorder"));
        Baseline.Entry entry = new Baseline.Entry(Machine.current(), "", "", ratios, Map.of());
        List<Check> checks = Checks.compare(c.parse(), entry, Profile.QUICK);
        Check inOrder = check(checks, "q1.inorder-vs-split.64B.batch32");
        assertEquals(0.5, inOrder.current(), 1e-9, "measured and shown");
        assertEquals(Check.Status.NEW, inOrder.status(), "half the split ring's rate, but no baseline to judge it by");
        assertTrue(Double.isNaN(inOrder.target()), "no target: only reported");
        assertEquals(Check.Status.MISSING, check(checks, "q1.packed-inorder-vs-packed.64B.batch32").status());
        assertEquals(Verdict.PASS, Checks.judge(checks, QUIET).verdict());
    }

    private static final MachineLoad QUIET = new MachineLoad(1.0, 1.5, 0.0, 2);

    /** Five rounds of Q1 and Q3; the Q1 vringj/agrona ratios wobble by ± {@code q1Wobble} over the rounds. */
    private static List<BenchmarkResult> fiveRounds(double q1Wobble, double mono) {
        CannedJmh c = new CannedJmh();
        double[] w = {0, -1, 1, -0.5, 0.5};
        for (double x : w) {
            for (String payload : Ratios.PAYLOADS) {
                for (String batch : Ratios.BATCHES) {
                    c.q1("vringj", payload, batch, 2e7 * (1 + x * q1Wobble), 0.001);
                    c.q1("agrona", payload, batch, 2e7, 0.0);
                }
            }
            c.single(Q3 + "premapped", 2e7, 0.0).single(Q3 + "directMonomorphic", 2e7 * mono, 0.0);
        }
        return c.parse();
    }

    private static Baseline.Entry steadyEntry() {
        Map<String, Spread> ratios = new java.util.TreeMap<>();
        for (RatioSpec r : Ratios.all()) {
            ratios.put(r.id(), new Spread(1.0, 0.98, 1.02, 5));
        }
        return new Baseline.Entry(Machine.current(), "", "", ratios, Map.of());
    }

    @Test
    void withoutAnEntryForThisMachineNothingIsJudgedAndTheVerdictSaysSo() {
        List<Check> checks = Checks.compare(fiveRounds(0.01, 0.1), null, Profile.QUICK);
        Check mono = check(checks, "q3.direct-mono-vs-premapped");
        assertEquals(Check.Status.UNJUDGED, mono.status(), "0.1 would be a regression against any baseline near 1");
        assertEquals(0.98, mono.target(), 0, "its target is still shown");
        assertEquals(Check.Status.MISSING, check(checks, "q5.iotlb-cached-vs-identity").status());
        assertTrue(checks.stream().filter(c -> c.kind() == Check.Kind.ALLOCATION)
            .allMatch(c -> c.status() == Check.Status.UNJUDGED));
        Verdict.Judgement j = Checks.judge(checks, new MachineLoad(9.0, 9.0, 0.2, 2));
        assertEquals(Verdict.NO_BASELINE, j.verdict(), "even on a busy machine: nothing to judge against");
        assertEquals(3, j.verdict().exitCode());
        assertEquals("NO BASELINE FOR THIS MACHINE", j.verdict().label());
    }

    @Test
    void aBusyMachineIsTooNoisyToJudgeInsteadOfListingRegressions() {
        List<Check> checks = Checks.compare(fiveRounds(0.01, 0.1), steadyEntry(), Profile.QUICK);
        assertEquals(Check.Status.REGRESSION, check(checks, "q3.direct-mono-vs-premapped").status());
        Verdict.Judgement busy = Checks.judge(checks, new MachineLoad(7.8, 8.5, 0.0, 2));
        assertEquals(Verdict.TOO_NOISY, busy.verdict());
        assertEquals(4, busy.verdict().exitCode());
        assertTrue(busy.reasons().get(0).contains("load average 7.80"), busy.reasons().toString());
        Verdict.Judgement stolen = Checks.judge(checks, new MachineLoad(1.0, 1.0, 0.3, 2));
        assertEquals(Verdict.TOO_NOISY, stolen.verdict());
        Verdict.Judgement quiet = Checks.judge(checks, QUIET);
        assertEquals(Verdict.REGRESSION, quiet.verdict(), "on a quiet machine the drop is real");
        assertEquals(List.of("q3.direct-mono-vs-premapped"), quiet.reasons());
    }

    @Test
    void roundsThatDisagreeOnManyRatiosMakeTheRunTooNoisyOnlyWhenTheyStraddleTheLine() {
        // two-thread ratios, quick profile: the line is 0.98 × (1 − 0.4) = 0.588
        // vringj/agrona per round: 1, 0.1, 1.9, 0.55, 1.45 (quartiles 0.55 .. 1.45) on 6 of the 7
        List<Check> checks = Checks.compare(fiveRounds(0.9, 1.0), steadyEntry(), Profile.QUICK);
        assertEquals(Check.Status.NOISY, check(checks, "q1.vringj-vs-agrona.64B.batch1").status());
        Verdict.Judgement j = Checks.judge(checks, QUIET);
        assertEquals(Verdict.TOO_NOISY, j.verdict());
        assertTrue(j.reasons().get(0).startsWith("6 of 7 judged ratios"), j.reasons().toString());
        assertTrue(j.reasons().get(0).contains("straddles their regression line"), j.reasons().toString());
        // per round: 1, 0.4, 1.6, 0.7, 1.3 (quartiles 0.7 .. 1.3, 60% of the median, wider than the tolerance)
        // lie wholly above the line: judged, and they pass
        List<Check> wideAbove = Checks.compare(fiveRounds(0.6, 1.0), steadyEntry(), Profile.QUICK);
        assertEquals(Check.Status.PASS, check(wideAbove, "q1.vringj-vs-agrona.64B.batch1").status());
        assertEquals(Verdict.PASS, Checks.judge(wideAbove, QUIET).verdict());
    }

    @Test
    void aFewNoisyRatiosAreReportedButTheRestIsJudged() {
        // two-thread ratios steady (± 5%), one single-thread ratio noisy
        CannedJmh c = new CannedJmh();
        double[] mono = {1.0, 0.6, 1.4, 0.75, 1.25};
        for (double m : mono) {
            for (String payload : Ratios.PAYLOADS) {
                for (String batch : Ratios.BATCHES) {
                    c.q1("vringj", payload, batch, 2e7 * (0.95 + 0.1 * (m - 0.6) / 0.8), 0.001);
                    c.q1("agrona", payload, batch, 2e7, 0.0);
                }
            }
            c.single(Q3 + "premapped", 2e7, 0.0).single(Q3 + "directMonomorphic", 2e7 * m, 0.0);
        }
        List<Check> checks = Checks.compare(c.parse(), steadyEntry(), Profile.QUICK);
        assertEquals(Check.Status.NOISY, check(checks, "q3.direct-mono-vs-premapped").status());
        assertEquals(Check.Status.PASS, check(checks, "q1.vringj-vs-agrona.64B.batch1").status());
        Verdict.Judgement j = Checks.judge(checks, QUIET);
        assertEquals(Verdict.PASS, j.verdict(), "1 noisy ratio of 7 is under the quarter");
        assertTrue(j.reasons().get(0).contains("q3.direct-mono-vs-premapped"), j.reasons().toString());
    }

    @Test
    void aQuietRunWithinToleranceOfItsMachinesEntryPasses() {
        Verdict.Judgement j = Checks.judge(Checks.compare(fiveRounds(0.01, 1.0), steadyEntry(), Profile.QUICK), QUIET);
        assertEquals(Verdict.PASS, j.verdict(), j.reasons().toString());
        assertEquals(0, j.verdict().exitCode());
    }
}

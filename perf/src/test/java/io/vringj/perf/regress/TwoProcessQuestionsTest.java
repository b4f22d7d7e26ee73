package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Questions 9 and 10 (messages and round trips between two processes) in the gate: their ratios
 * come from the right metrics and parameters, carry the issue's targets, are shown but not judged
 * where this machine's baseline entry has no value for them, are charted in groups a person can
 * read, and the quick profile measures only the part that keeps it short.
 */
class TwoProcessQuestionsTest {
    private static final String Q9 = "io.vringj.perf.channel.ChannelThroughputBenchmark.";
    private static final String Q10 = "io.vringj.perf.channel.ChannelRoundTripBenchmark.";
    private static final MachineLoad QUIET = new MachineLoad(0.5, 0.5, 0.0, 2);

    /** Five rounds of Q9 (every size and batch) and Q10, and Q3 to have a ratio the baseline knows. */
    private static List<BenchmarkResult> fiveRounds(double vringj64, double vringjAlloc) {
        CannedJmh c = new CannedJmh();
        for (int round = 0; round < 5; round++) {
            for (String payload : Ratios.PAYLOADS) {
                for (String batch : Ratios.BATCHES) {
                    Map<String, String> p = Map.of("payloadBytes", payload, "batch", batch);
                    c.add(Q9 + "vringj", p, 9e6, metrics("messages", payload.equals("64") ? vringj64 : 6e6,
                        vringjAlloc));
                    c.add(Q9 + "vringjDeviceEnd", p, 9e6, metrics("messages", 1e6, vringjAlloc));
                    c.add(Q9 + "aeron", p, 9e6, metrics("messages", 2e6, 48));
                    c.add(Q9 + "agronaMmap", p, 9e6, metrics("messages", 3e6, 48));
                }
            }
            c.add(Q10 + "vringj", Map.of(), 3e7, metrics("roundTrips", 6e5, vringjAlloc));
            c.add(Q10 + "aeron", Map.of(), 3e7, metrics("roundTrips", 8e5, 48));
            c.add(Q10 + "agronaMmap", Map.of(), 3e7, metrics("roundTrips", 1.2e6, 48));
            c.single("io.vringj.perf.dma.DmaIndirectionBenchmark.premapped", 2e7, 0.0)
                .single("io.vringj.perf.dma.DmaIndirectionBenchmark.directMonomorphic", 2e7, 0.0);
        }
        return c.parse();
    }

    private static Map<String, Double> metrics(String name, double value, double bytesPerOp) {
        Map<String, Double> m = new LinkedHashMap<>();
        m.put(name, value);
        m.put(BenchmarkResult.ALLOC_NORM, bytesPerOp);
        return m;
    }

    private static Check check(List<Check> checks, String id) {
        return checks.stream().filter(c -> c.id().equals(id)).findFirst().orElseThrow(() -> new AssertionError(id));
    }

    /** This machine's entry, knowing only question 3's ratio (as one recorded before questions 9 and 10 existed). */
    private static Baseline.Entry entryWithoutTheNewRatios() {
        return new Baseline.Entry(Machine.current(), "", "", Map.of("q3.direct-mono-vs-premapped",
            Spread.of(new double[] {0.99, 1.0, 1.0, 1.0, 1.01})), Map.of());
    }

    @Test
    void throughputRatiosCompareMessagesSentAtTheSameSizeAndBatch() {
        Map<String, Double> ratios = Checks.ratios(fiveRounds(4e6, 0));
        assertEquals(2.0, ratios.get("q9.vringj-vs-aeron.64B.batch1"), 1e-9);
        assertEquals(4e6 / 3e6, ratios.get("q9.vringj-vs-agrona-mmap.64B.batch32"), 1e-9);
        assertEquals(3.0, ratios.get("q9.vringj-vs-aeron.4096B.batch32"), 1e-9);
        assertEquals(2.0, ratios.get("q9.vringj-vs-agrona-mmap.1024B.batch1"), 1e-9);
        assertEquals(0.5, ratios.get("q9.device-end-vs-aeron.4096B.batch1"), 1e-9, "the other direction");
        assertEquals(0.75, ratios.get("q10.vringj-vs-aeron"), 1e-9, "round trips per second: Aeron's time / ours");
        assertEquals(0.5, ratios.get("q10.vringj-vs-agrona-mmap"), 1e-9);
    }

    @Test
    void targetsAreTheIssues() {
        Map<String, Double> targets = new LinkedHashMap<>();
        Ratios.all().forEach(r -> targets.put(r.id(), r.target()));
        for (String batch : Ratios.BATCHES) {
            assertEquals(1.0, targets.get("q9.vringj-vs-aeron.64B.batch" + batch), "at least Aeron at 64 B");
            assertEquals(2.0, targets.get("q9.vringj-vs-aeron.4096B.batch" + batch), "twice Aeron at 4 KiB");
            assertTrue(targets.get("q9.vringj-vs-aeron.1024B.batch" + batch).isNaN());
            for (String payload : Ratios.PAYLOADS) {
                assertTrue(targets.get("q9.vringj-vs-agrona-mmap." + payload + "B.batch" + batch).isNaN());
            }
        }
        assertEquals(1 / 1.5, targets.get("q10.vringj-vs-aeron"), 1e-12, "round trip within 1.5x of Aeron's");
        assertTrue(targets.get("q10.vringj-vs-agrona-mmap").isNaN());
    }

    @Test
    void newRatiosWithoutABaselineValueAreShownButNotJudged() {
        // far below every target, and no baseline value: reported, never a regression
        List<Check> checks = Checks.compare(fiveRounds(1e5, 0), entryWithoutTheNewRatios(), Profile.QUICK);
        Check slow = check(checks, "q9.vringj-vs-aeron.64B.batch1");
        assertEquals(Check.Status.NEW, slow.status());
        assertEquals(0.05, slow.current(), 1e-9);
        assertEquals(Boolean.FALSE, slow.targetMet(), "the target is still reported as missed");
        assertEquals(Check.Status.NEW, check(checks, "q10.vringj-vs-aeron").status());
        assertEquals(Check.Status.PASS, check(checks, "q3.direct-mono-vs-premapped").status());
        Verdict.Judgement j = Checks.judge(checks, QUIET);
        assertEquals(Verdict.PASS, j.verdict(), j.reasons().toString());
    }

    @Test
    void theNewVringjHotPathsAreCheckedForAllocationButThePeersAreNot() {
        List<Check> allocating = Checks.compare(fiveRounds(4e6, 64), entryWithoutTheNewRatios(), Profile.QUICK);
        assertEquals(Check.Status.REGRESSION,
            check(allocating, "ChannelThroughputBenchmark.vringj[batch=1, payloadBytes=64]").status());
        assertEquals(Check.Status.REGRESSION, check(allocating, "ChannelRoundTripBenchmark.vringj[]").status());
        assertEquals(Check.Status.REGRESSION,
            check(allocating, "ChannelThroughputBenchmark.vringjDeviceEnd[batch=32, payloadBytes=4096]").status());
        assertTrue(allocating.stream().noneMatch(c -> c.id().startsWith("ChannelThroughputBenchmark.aeron")
            || c.id().startsWith("ChannelRoundTripBenchmark.agronaMmap")), "peers are not vringj's hot paths");
        List<Check> clean = Checks.compare(fiveRounds(4e6, 0), entryWithoutTheNewRatios(), Profile.QUICK);
        assertEquals(Check.Status.NEW, check(clean, "ChannelRoundTripBenchmark.vringj[]").status());
    }

    @Test
    void chartsShowAtMostEightBarsEach() {
        List<Check> checks = Checks.compare(fiveRounds(4e6, 0), null, Profile.QUICK);
        Map<String, List<Check>> groups = ReportWriter.chartGroups(checks);
        assertEquals(List.of("q3", "q9-vringj-vs-aeron", "q9-device-end-vs-aeron", "q9-vringj-vs-agrona-mmap", "q10"),
            List.copyOf(groups.keySet()));
        groups.values().forEach(g -> assertTrue(g.size() <= ReportWriter.MAX_BARS, g.size() + " bars"));
        assertEquals(6, groups.get("q9-vringj-vs-aeron").size());
        assertEquals(2, groups.get("q10").size());
    }

    @Test
    void theQuickProfileMeasuresTheTwoProcessQuestionsOnlyWhereTheirTargetsAre() {
        assertTrue(Question.Q9.measures(Profile.QUICK, "vringj", Map.of("payloadBytes", "4096", "batch", "1")));
        assertFalse(Question.Q9.measures(Profile.QUICK, "vringj", Map.of("payloadBytes", "1024", "batch", "1")));
        assertFalse(Question.Q9.measures(Profile.QUICK, "agronaMmap", Map.of("payloadBytes", "64", "batch", "1")));
        assertTrue(Question.Q9.measures(Profile.FULL, "agronaMmap", Map.of("payloadBytes", "1024", "batch", "32")));
        assertFalse(Question.Q10.measures(Profile.QUICK, "agronaMmap", Map.of()));
        assertTrue(Question.Q10.measures(Profile.QUICK, "aeron", Map.of()));
        assertTrue(Question.Q10.measures(Profile.FULL, "agronaMmap", Map.of()));
        assertTrue(Question.Q1.measures(Profile.QUICK, "abq", Map.of("payloadBytes", "1024", "batch", "1")),
            "the other questions run whole");

        List<RegressionRunner.Batch> all = RegressionRunner.batches(RegressionRunner.includeRegex(Question.Q9, null));
        List<RegressionRunner.Batch> full = RegressionRunner.restrict(Question.Q9, Profile.FULL, all);
        assertEquals(all, full);
        assertEquals(6, full.size());
        full.forEach(b -> assertEquals(List.of("aeron", "agronaMmap", "vringj", "vringjDeviceEnd"), b.benchmarks()
            .stream().map(n -> n.substring(n.lastIndexOf('.') + 1)).toList()));
        List<RegressionRunner.Batch> quick = RegressionRunner.restrict(Question.Q9, Profile.QUICK, all);
        assertEquals(4, quick.size(), quick.toString());
        for (RegressionRunner.Batch b : quick) {
            assertTrue(Question.Q9_QUICK_PAYLOADS.contains(b.params().get("payloadBytes")), b.toString());
            assertEquals(List.of("aeron", "vringj"), b.benchmarks().stream()
                .map(n -> n.substring(n.lastIndexOf('.') + 1)).toList(), "the peers still back to back");
        }
        List<RegressionRunner.Batch> q10 = RegressionRunner.restrict(Question.Q10, Profile.QUICK,
            RegressionRunner.batches(RegressionRunner.includeRegex(Question.Q10, null)));
        assertEquals(1, q10.size());
        assertEquals(2, q10.get(0).benchmarks().size());

        // every fork starts a peer JVM as well: the two questions add about two minutes to the quick profile
        int forksPerRound = quick.stream().mapToInt(b -> b.benchmarks().size()).sum()
            + q10.get(0).benchmarks().size();
        long seconds = Profile.QUICK.rounds() * Profile.QUICK.estimateSeconds(forksPerRound);
        assertTrue(seconds <= 130, seconds + " s");
    }

    @Test
    void questionsNineAndTenParseAndReportTheirOwnThroughputMetric() {
        assertEquals(List.of(Question.Q9, Question.Q10), Question.parse(List.of("q10", "Q9")));
        assertEquals("messages", Question.Q9.throughputMetric());
        assertEquals("roundTrips", Question.Q10.throughputMetric());
    }
}

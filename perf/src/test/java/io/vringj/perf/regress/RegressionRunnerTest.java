package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The runner's logic that does not need JMH: what to re-measure, which benchmarks a filter selects. */
class RegressionRunnerTest {

    @Test
    void suspectsAreBothSidesOfARegressedRatioAndTheAllocatingBenchmark() {
        Check ratio = new Check("q1.vringj-vs-agrona.64B.batch1", Question.Q1, Check.Kind.RATIO, "",
            Spread.ofMedian(1.0), Spread.ofMedian(2.0), 0.4, 1.0, Check.Status.REGRESSION);
        Check passing = new Check("q2.ring-vs-pingpong", Question.Q2, Check.Kind.RATIO, "", Spread.ofMedian(0.5),
            Spread.ofMedian(0.5), 0.4, 0.667, Check.Status.PASS);
        Check alloc = new Check("DmaIndirectionBenchmark.directMonomorphic[]", Question.Q3, Check.Kind.ALLOCATION, "",
            Spread.ofMedian(24), Spread.ofMedian(0), 0.5, 0, Check.Status.REGRESSION);
        Map<Question, Set<String>> suspects = RegressionRunner.suspects(List.of(ratio, passing, alloc));
        assertEquals(Map.of(Question.Q1, Set.of("vringj", "agrona"), Question.Q3, Set.of("directMonomorphic")),
            suspects);
    }

    @Test
    void noRegressionMeansNothingToConfirm() {
        Check fresh = new Check("q3.direct-mono-vs-premapped", Question.Q3, Check.Kind.RATIO, "", Spread.ofMedian(1.0),
            Spread.NONE, 0.2, 0.98, Check.Status.NEW);
        assertTrue(RegressionRunner.suspects(List.of(fresh)).isEmpty());
    }

    @Test
    void includeFilterNarrowsAQuestionRatherThanWideningIt() {
        Pattern all = Pattern.compile(RegressionRunner.includeRegex(Question.Q1, null));
        Pattern agrona = Pattern.compile(RegressionRunner.includeRegex(Question.Q1, "\\.agrona$"));
        String agronaName = "io.vringj.perf.ring.RingThroughputBenchmark.agrona";
        String vringjName = "io.vringj.perf.ring.RingThroughputBenchmark.vringj";
        String otherClass = "io.vringj.perf.ring.RoundTripBenchmark.ring";
        assertTrue(all.matcher(agronaName).find());
        assertTrue(all.matcher(vringjName).find());
        assertFalse(all.matcher(otherClass).find());
        assertTrue(agrona.matcher(agronaName).find());
        assertFalse(agrona.matcher(vringjName).find());
        assertFalse(Pattern.compile(RegressionRunner.includeRegex(Question.Q2, "\\.agrona$")).matcher(agronaName).find());
    }

    @Test
    void settingsRejectANegativeConfirmationCountAndABadFilter() {
        assertThrows(IllegalArgumentException.class, () -> new RegressionRunner.Settings(Profile.QUICK,
            List.of(Question.Q1), null, Path.of("r"), Path.of("b.json"), false, "", false, -1, false));
        assertThrows(java.util.regex.PatternSyntaxException.class, () -> new RegressionRunner.Settings(Profile.QUICK,
            List.of(Question.Q1), "([", Path.of("r"), Path.of("b.json"), false, "", false, 1, false));
    }

    @Test
    void batchesPutThePeersOfOneParameterCombinationTogether() {
        List<RegressionRunner.Batch> batches = RegressionRunner.batches(RegressionRunner.includeRegex(Question.Q1, null));
        assertEquals(6, batches.size(), batches.toString());
        for (RegressionRunner.Batch b : batches) {
            assertEquals(java.util.Set.of("batch", "payloadBytes"), b.params().keySet());
            assertEquals(List.of("abq", "agrona", "jctools", "vringj", "vringjInOrder", "vringjPacked",
                "vringjPackedInOrder"), b.benchmarks().stream()
                .map(n -> n.substring(n.lastIndexOf('.') + 1)).toList(), "every peer, back to back");
        }
        List<RegressionRunner.Batch> q6 = RegressionRunner.batches(RegressionRunner.includeRegex(Question.Q6, null));
        assertTrue(q6.stream().anyMatch(b -> b.params().isEmpty()
            && b.benchmarks().stream().anyMatch(n -> n.endsWith(".oneArea"))), "benchmarks without parameters: " + q6);
        assertEquals(q6.stream().mapToInt(b -> b.benchmarks().size()).sum(),
            q6.stream().flatMap(b -> b.benchmarks().stream().map(n -> n + b.params())).distinct().count(),
            "each benchmark and combination runs once per round");
    }

    @Test
    void combinationsCoverEveryParameterValue() {
        List<Map<String, String>> combos = RegressionRunner.combinations(Map.of("a", new String[] {"1", "2"},
            "b", new String[] {"x", "y", "z"}));
        assertEquals(6, combos.size());
        assertEquals(Map.of("a", "1", "b", "x"), combos.get(0));
        assertEquals(Map.of("a", "2", "b", "z"), combos.get(5));
        assertEquals(List.of(Map.of()), RegressionRunner.combinations(Map.of()));
    }

    @Test
    void quickProfileFitsInAFewMinutesForTheWholeSuite() {
        // 42 ring-throughput runs (7 peers, in-order variants among them), 2 round-trip, 3 indirection,
        // 4 IOMMU, 3 IOTLB, 3 + 3 + 2 swiotlb, and the two-process questions: 8 of q9 in the quick
        // profile, 2 of q10
        int runs = 42 + 2 + 3 + 4 + 3 + 8 + 8 + 2;
        long seconds = Profile.QUICK.rounds() * Profile.QUICK.estimateSeconds(runs);
        assertTrue(seconds <= 15 * 60, seconds + " s");
        assertTrue(Profile.FULL.rounds() * Profile.FULL.estimateSeconds(runs) > seconds);
        assertTrue(Profile.QUICK.rounds() >= 5, "quartiles need at least five rounds to leave one bad round outside");
    }

    @Test
    void theTimeLeftFallsToZeroAndNeverBelowWhateverTheBatchSizes() {
        // 328 forks in batches of 7 (each 10.5 s, which rounded up per batch would sum past the total) and 70 pairs
        RegressionRunner.Clock clock = new RegressionRunner.Clock(Profile.QUICK, 328, 70);
        assertEquals(clock.total(), clock.secondsLeft(0), "before anything is done, the estimate itself");
        int forks = 0;
        long elapsed = 0;
        long previous = Long.MAX_VALUE;
        while (forks < 328) {
            int batch = Math.min(7, 328 - forks);
            clock.forksDone(batch);
            forks += batch;
            elapsed += 10;
            long left = clock.secondsLeft(elapsed);
            assertTrue(left > 0, "pairs are still to run, yet " + left + " s left after " + forks + " forks");
            previous = left;
        }
        for (int p = 0; p < 70; p++) {
            clock.pairDone();
            elapsed += 3;
            long left = clock.secondsLeft(elapsed);
            assertTrue(left >= 0 && left <= previous + 60, left + " s left after " + (p + 1) + " pairs");
            previous = left;
        }
        assertEquals(0, clock.secondsLeft(elapsed), "everything done: nothing left");
        clock.forksDone(5); // confirmations beyond the plan do not make the time left negative
        assertEquals(0, clock.secondsLeft(elapsed + 10));
    }

    @Test
    void theTimeEstimateRoundsUpOnceForTheWholeRunNotOnceAFork() {
        // a quick fork is 0.9 s measured + the JVM's overhead: 1.5 s, which rounded up per fork became 3 s and
        // doubled the estimate of a whole run
        long perForkMillis = 2 * 200 + 2 * 250 + Profile.JVM_OVERHEAD_MILLIS;
        assertEquals((328 * perForkMillis + 999) / 1000, Profile.QUICK.estimateSeconds(328));
        assertTrue(Profile.QUICK.estimateSeconds(328) < 328 * Profile.QUICK.estimateSeconds(1),
            "one fork rounds up to a whole second; 328 of them must not each be rounded");
        // the quick run of session 6 (328 forks, 70 pairs) took 11.5 min; its estimate said 21 min
        long run = RegressionRunner.estimateSeconds(Profile.QUICK, 328, 70);
        assertEquals(Profile.QUICK.estimateSeconds(328) + Profile.QUICK.estimateInterleavedSeconds(70), run);
        assertTrue(run >= 600 && run <= 15 * 60, run + " s");
        // a pair runs in two JVMs, one per set-up order, each warmed up, measuring half the time each
        long perPairMillis = 2 * (1500 + Profile.JVM_OVERHEAD_MILLIS) + 1000;
        assertEquals((70 * perPairMillis + 999) / 1000, Profile.QUICK.estimateInterleavedSeconds(70));
        assertEquals(0, Profile.QUICK.estimateSeconds(0));
        assertEquals(0, Profile.QUICK.estimateInterleavedSeconds(0));
        // the full profile measures longer per fork and per pair, so its estimate is longer at equal counts
        assertTrue(Profile.FULL.estimateSeconds(328) > Profile.QUICK.estimateSeconds(328));
        assertTrue(Profile.FULL.estimateInterleavedSeconds(70) > Profile.QUICK.estimateInterleavedSeconds(70));
    }
}

package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class RoundsTest {
    private static final String Q3 = "io.vringj.perf.dma.DmaIndirectionBenchmark.";

    /** Three rounds of question 3, the second disturbed (premapped measured while the machine was busy). */
    private static List<BenchmarkResult> threeRounds() {
        return new CannedJmh()
            .single(Q3 + "premapped", 2.0e7, 0.001).single(Q3 + "directMonomorphic", 1.9e7, 0.001)
            .single(Q3 + "premapped", 0.5e7, 0.002).single(Q3 + "directMonomorphic", 2.0e7, 0.001)
            .single(Q3 + "premapped", 2.1e7, 0.001).single(Q3 + "directMonomorphic", 2.0e7, 24.0)
            .parse();
    }

    @Test
    void theNthResultOfABenchmarkBelongsToRoundN() {
        List<List<BenchmarkResult>> rounds = Rounds.split(threeRounds());
        assertEquals(3, rounds.size());
        for (List<BenchmarkResult> round : rounds) {
            assertEquals(List.of("DmaIndirectionBenchmark.premapped", "DmaIndirectionBenchmark.directMonomorphic"),
                round.stream().map(BenchmarkResult::shortName).toList());
        }
        assertEquals(0.5e7, rounds.get(1).get(0).primary().score(), 1e-3);
    }

    @Test
    void joinedRunsKeepTheirRoundsOneAfterTheOther() {
        List<BenchmarkResult> second = new CannedJmh()
            .single(Q3 + "premapped", 1.0e7, 0.001).single(Q3 + "directMonomorphic", 0.7e7, 0.001)
            .single(Q3 + "premapped", 1.0e7, 0.001).single(Q3 + "directMonomorphic", 0.8e7, 0.001)
            .parse();
        List<BenchmarkResult> joined = Rounds.concat(List.of("first", "second"), List.of(threeRounds(), second));
        assertEquals(10, joined.size());
        List<List<BenchmarkResult>> rounds = Rounds.split(joined);
        assertEquals(5, rounds.size(), "three rounds, then two");
        assertEquals(0.7e7, rounds.get(3).get(1).primary().score(), 1e-3, "the second run's first round is round 4");
        double[] perRound = Rounds.ratioPerRound(Ratios.all().stream()
            .filter(r -> r.id().equals("q3.direct-mono-vs-premapped")).findFirst().orElseThrow(), joined);
        assertEquals(0.7, perRound[3], 1e-9);
        assertEquals(0.8, perRound[4], 1e-9);
    }

    @Test
    void joiningRefusesARunWhoseBenchmarkAnEarlierRunLacksInSomeRounds() {
        // the first run measured only the one-area pool: the second run's several-areas pool (a
        // two-thread ratio, from JMH in every round) would land in the first run's rounds and be
        // divided by the first run's one-area figure
        String q6 = "io.vringj.perf.swiotlb.SwiotlbBounceBenchmark.";
        List<BenchmarkResult> partial = new CannedJmh().single(q6 + "oneArea", 2e6, 0.0)
            .single(q6 + "oneArea", 2e6, 0.0).parse();
        CannedJmh full = new CannedJmh();
        for (int round = 0; round < 3; round++) {
            full.single(q6 + "severalAreas", 1e6, 0.0).single(q6 + "oneArea", 2e6, 0.0);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> Rounds.concat(List.of("a.json", "b.json"), List.of(partial, full.parse())));
        assertTrue(e.getMessage().contains("results b.json hold SwiotlbBounceBenchmark.severalAreas"), e.getMessage());
        assertTrue(e.getMessage().contains("(a.json) hold in 0 of their 2 rounds"), e.getMessage());
        assertEquals(8, Rounds.concat(List.of("b.json", "a.json"), List.of(full.parse(), partial)).size(),
            "the other way round every run's rounds stay together");
    }

    @Test
    void runsWhoseOneThreadRatiosComeFromPairsJoinThoughJmhMeasuredThemOnce() {
        // each run: JMH's lazy and direct once (allocation), then a lazy/direct pair in each of 2 rounds
        String q4 = "io.vringj.perf.dma.IommuModesBenchmark.";
        java.util.function.DoubleFunction<List<BenchmarkResult>> run = ratio -> {
            CannedJmh c = new CannedJmh().single(q4 + "lazy", 1e6, 0.0).single(q4 + "direct", 1e7, 0.0);
            for (int round = 0; round < 2; round++) {
                c.add(q4 + "lazy", Map.of(Ratios.PAIRED_WITH, "direct"), ratio * 1e7, Map.of())
                    .add(q4 + "direct", Map.of(Ratios.PAIRED_WITH, "lazy"), 1e7, Map.of());
            }
            return c.parse();
        };
        List<BenchmarkResult> joined = Rounds.concat(List.of("a", "b"), List.of(run.apply(0.3), run.apply(0.25)));
        double[] perRound = Rounds.ratioPerRound(Ratios.all().stream().filter(r -> r.id().equals("q4.lazy-vs-direct"))
            .findFirst().orElseThrow(), joined);
        assertEquals(4, perRound.length);
        assertEquals(0.3, perRound[0], 1e-9, "the pairs, not JMH's 0.1, in every round");
        assertEquals(0.3, perRound[1], 1e-9);
        assertEquals(0.25, perRound[2], 1e-9, "the second run's pairs are rounds 3 and 4");
        assertEquals(0.25, perRound[3], 1e-9);
    }

    @Test
    void parametersTellResultsOfOneRoundApart() {
        List<BenchmarkResult> one = new CannedJmh()
            .add("io.vringj.perf.swiotlb.SwiotlbBounceBenchmark.bounce", Map.of("bytes", "4096"), 1, Map.of())
            .add("io.vringj.perf.swiotlb.SwiotlbBounceBenchmark.bounce", Map.of("bytes", "65536"), 2, Map.of())
            .parse();
        assertEquals(1, Rounds.split(one).size());
    }

    @Test
    void medianIgnoresMissingValuesAndAveragesTheMiddlePair() {
        assertEquals(2.0, Rounds.median(3, 1, 2), 0);
        assertEquals(2.5, Rounds.median(1, 4, 2, 3), 0);
        assertEquals(5.0, Rounds.median(Double.NaN, 5, Double.NaN), 0);
        assertTrue(Double.isNaN(Rounds.median(Double.NaN)));
        assertTrue(Double.isNaN(Rounds.median()));
    }

    @Test
    void aRatioIsTheMedianOfItsPerRoundValuesSoOneBadRoundIsOutvoted() {
        // per round: 0.95, 4.0 (the disturbed round), 0.952
        double ratio = Checks.ratios(threeRounds()).get("q3.direct-mono-vs-premapped");
        assertEquals(2.0e7 / 2.1e7, ratio, 1e-9);
        // five rounds, the second disturbed: the quartiles, like the median, outvote it
        List<BenchmarkResult> five = new CannedJmh()
            .single(Q3 + "premapped", 2.0e7, 0.001).single(Q3 + "directMonomorphic", 1.9e7, 0.001)
            .single(Q3 + "premapped", 0.5e7, 0.002).single(Q3 + "directMonomorphic", 2.0e7, 0.001)
            .single(Q3 + "premapped", 2.1e7, 0.001).single(Q3 + "directMonomorphic", 2.0e7, 0.001)
            .single(Q3 + "premapped", 2.0e7, 0.001).single(Q3 + "directMonomorphic", 1.95e7, 0.001)
            .single(Q3 + "premapped", 2.05e7, 0.001).single(Q3 + "directMonomorphic", 2.0e7, 0.001)
            .parse();
        Spread spread = Rounds.ratioSpread(Ratios.all().stream().filter(r -> r.id().equals("q3.direct-mono-vs-premapped"))
            .findFirst().orElseThrow(), five);
        assertEquals(5, spread.rounds());
        assertTrue(spread.q3() < 1.0, "the disturbed round's 4.0 is outside the middle half: " + spread);
        Baseline.Entry base = ChecksTest.entry(Map.of("q3.direct-mono-vs-premapped", 0.96));
        List<Check> checks = Checks.compare(five, base, Profile.QUICK);
        assertEquals(Check.Status.PASS, checks.stream().filter(c -> c.id().equals("q3.direct-mono-vs-premapped"))
            .findFirst().orElseThrow().status());
    }

    @Test
    void allocationIsTheMedianOverRoundsAndThroughputsComeFromTheMedianRound() {
        Map<String, Double> alloc = Checks.allocations(threeRounds());
        assertEquals(0.001, alloc.get("DmaIndirectionBenchmark.directMonomorphic[]"), 1e-12,
            "one round's 24 B/op is outvoted");
        List<BenchmarkResult> medians = Rounds.medianResults(threeRounds());
        assertEquals(2, medians.size());
        assertEquals(2.0e7, medians.get(0).primary().score(), 1e-3, "premapped: 0.5e7, 2.0e7, 2.1e7");
        assertEquals(2.0e7, medians.get(1).primary().score(), 1e-3, "directMonomorphic: 1.9e7, 2.0e7, 2.0e7");
    }
}

package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The interleaved harness: two sides taking turns cancel a machine that changes speed, its result
 * line, the pairs the runner measures, and a real forked pair.
 */
class InterleavedTest {

    /**
     * A clock that only the fake loops move: an operation of a side costs its base cost times the
     * machine's current speed factor, which doubles for {@code phase} ns and then halves again, as
     * the shared host did.
     */
    private static final class PhasedMachine {
        private final long phase;
        private long now;

        PhasedMachine(long phase) {
            this.phase = phase;
        }

        long factor() {
            return (now / phase) % 2 == 0 ? 1 : 2;
        }

        Interleaved.Target side(String name, long cost) {
            return new Interleaved.Target(name, n -> {
                for (int i = 0; i < n; i++) {
                    now += cost * factor();
                }
                return n;
            }, () -> { });
        }
    }

    @Test
    void takingTurnsCancelsAMachineThatChangesSpeedWhereBackToBackRunsDoNot() throws Exception {
        // slices of 10 ms, the machine's speed halves for 1.3 s at a time; A costs 50 ns, B 100 ns
        PhasedMachine m = new PhasedMachine(1_300_000_000L);
        Interleaved.Result r = Interleaved.measure(m.side("a", 50), m.side("b", 100), 1_000_000_000L,
            4_000_000_000L, 10_000_000L, () -> m.now);
        assertEquals(2.0, r.ratio(), 0.02, "A is twice B's rate whatever the machine's speed: " + r);
        assertEquals(2.0, r.pairRatioMedian(), 0.02);
        assertTrue(r.slicePairs() >= 190, "about 4 s / 20 ms pairs: " + r.slicePairs());

        // the same two sides measured one after the other, 2 s each, as two forks are
        PhasedMachine seq = new PhasedMachine(1_300_000_000L);
        Interleaved.Target a = seq.side("a", 50);
        Interleaved.Target b = seq.side("b", 100);
        seq.now = 0;
        long aOps = a.trips().run(40_000_000);
        long aTime = seq.now;
        long bOps = b.trips().run(10_000_000);
        double backToBack = ((double) aOps / aTime) / ((double) bOps / (seq.now - aTime));
        assertTrue(Math.abs(backToBack - 2.0) > 0.2, "back to back, the phases do not cancel: " + backToBack);
    }

    @Test
    void theOrderIsABBA() {
        boolean[] expected = {true, false, false, true, true, false, false, true};
        for (int turn = 0; turn < expected.length; turn++) {
            assertEquals(expected[turn], Interleaved.abba(turn), "turn " + turn);
        }
    }

    @Test
    void aSliceOrMeasurementThatCannotHoldTwoSlicesIsRefusedByValue() {
        PhasedMachine m = new PhasedMachine(1_000);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Interleaved.measure(
            m.side("a", 1), m.side("b", 1), 0, 15, 10, () -> m.now));
        assertTrue(e.getMessage().contains("15 ns") && e.getMessage().contains("two slices"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Interleaved.measure(m.side("a", 1), m.side("b", 1), 0, 100,
            0, () -> m.now));
    }

    @Test
    void theResultLineRoundTripsAndABadLineIsNamed() {
        Interleaved.Result r = new Interleaved.Result("lazy", 1000, 2_000_000, "direct", 3000, 2_000_000, 50, 0.3333);
        Interleaved.Result back = Interleaved.Result.parse(r.line());
        assertEquals(r.numerator(), back.numerator());
        assertEquals(r.denominatorOps(), back.denominatorOps());
        assertEquals(1.0 / 3, back.ratio(), 1e-9);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> Interleaved.Result.parse("interleaved-result lazy 1 2"));
        assertTrue(e.getMessage().contains("lazy 1 2"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
            () -> Interleaved.Result.parse("interleaved-result a 0 1 b 1 1 1 1.0"), "zero operations");
        assertThrows(IllegalArgumentException.class,
            () -> Interleaved.Result.parse("interleaved-result a x 1 b 1 1 1 1.0"), "not a number");
    }

    /** A benchmark class that records the order its instances are set up in. */
    static final class SetUpOrder {
        static final List<String> SET_UP = new ArrayList<>();

        static Interleaved.Target interleavedTarget(String method) {
            SET_UP.add(method);
            return new Interleaved.Target(method, Interleaved.repeat(() -> 1L), () -> { });
        }
    }

    @Test
    void aRoundAddsUpTheTwoSetUpOrdersSideBySide() {
        Interleaved.Result numFirst = new Interleaved.Result("passthrough", 900, 1_000_000, "direct", 1000, 1_000_000,
            50, 0.9);
        Interleaved.Result denFirst = new Interleaved.Result("passthrough", 2000, 2_000_000, "direct", 2000, 2_000_000,
            25, 1.0);
        Interleaved.Result both = numFirst.plus(denFirst);
        assertEquals(2900, both.numeratorOps());
        assertEquals(3_000_000, both.numeratorNanos());
        assertEquals(3000, both.denominatorOps());
        assertEquals(3_000_000, both.denominatorNanos());
        assertEquals(75, both.slicePairs());
        assertEquals(2900.0 / 3000, both.ratio(), 1e-12, "each side's operations over its time, both JVMs together");
        assertEquals(Math.sqrt(0.9), both.pairRatioMedian(), 1e-12);
        Interleaved.Result reversed = new Interleaved.Result("direct", 1, 1, "passthrough", 1, 1, 1, 1.0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> numFirst.plus(reversed));
        assertTrue(e.getMessage().contains("direct/passthrough") && e.getMessage().contains("passthrough/direct"),
            e.getMessage());
    }

    @Test
    void theSideSetUpFirstAlternatesByRoundWhileTheNumeratorStaysTheNumerator() throws Exception {
        Interleaved.Target[] sides = new Interleaved.Target[2];
        SetUpOrder.SET_UP.clear();
        Interleaved.setUp(SetUpOrder.class, "num", "den", Map.of(), false, sides);
        assertEquals(List.of("num", "den"), SetUpOrder.SET_UP);
        assertEquals("num", sides[0].method());
        assertEquals("den", sides[1].method());
        SetUpOrder.SET_UP.clear();
        Interleaved.setUp(SetUpOrder.class, "num", "den", Map.of(), true, sides);
        assertEquals(List.of("den", "num"), SetUpOrder.SET_UP);
        assertEquals("num", sides[0].method(), "the numerator keeps its place whichever is set up first");
        assertEquals("den", sides[1].method());

        // every round measures both orders; which JVM runs first alternates by round
        assertEquals(List.of(false, true, false, true, false),
            java.util.stream.IntStream.rangeClosed(1, 5).mapToObj(RegressionRunner::denominatorFirst).toList());
        RegressionRunner.Pair pair = new RegressionRunner.Pair(Question.Q4, "q4.passthrough-vs-direct", "passthrough",
            "direct");
        List<String> plain = RegressionRunner.pairCommand(pair, 100, 200, false);
        List<String> swapped = RegressionRunner.pairCommand(pair, 100, 200, true);
        assertFalse(plain.contains(Interleaved.SET_UP_DENOMINATOR_FIRST), plain.toString());
        int main = swapped.indexOf(Interleaved.class.getName());
        assertEquals(Interleaved.SET_UP_DENOMINATOR_FIRST, swapped.get(main + 1), swapped.toString());
        assertEquals(List.of(Question.Q4.benchmarkClass(), "passthrough", "direct"), swapped.subList(main + 2, main + 5));
    }

    @Test
    void aClassWithoutAFactoryIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> Interleaved.target(String.class, "length"));
        assertTrue(e.getMessage().contains("java.lang.String") && e.getMessage().contains("interleavedTarget"),
            e.getMessage());
    }

    @Test
    void everyOneThreadRatioIsAPairOfItsQuestionAndAFilterKeepsThePairsWithAMatchingSide() {
        List<String> ids = new ArrayList<>();
        for (Question q : Question.values()) {
            RegressionRunner.pairs(q, null).forEach(p -> ids.add(p.ratioId()));
        }
        List<String> expected = Ratios.all().stream().filter(r -> !r.twoThreaded() && (r.question() != Question.Q6
            || r.id().startsWith("q6.bounce-vs-copy."))).map(RatioSpec::id).toList();
        assertEquals(expected, ids, "every one-thread ratio, q6's bounce vs copy included");
        assertTrue(Ratios.all().stream().allMatch(r -> r.interleaved() == !r.twoThreaded()),
            "the two-thread ratios (q6's pools among them) stay on JMH forks");
        assertEquals(List.of(new RegressionRunner.Pair(Question.Q4, "q4.lazy-vs-direct", "lazy", "direct")),
            RegressionRunner.pairs(Question.Q4, "\\.lazy$"));
        assertEquals(List.of("q8.lazy-premapped-vs-direct", "q8.lazy-mapped-vs-direct"),
            RegressionRunner.pairs(Question.Q8, "lazy").stream().map(RegressionRunner.Pair::ratioId).toList());
        assertTrue(RegressionRunner.pairs(Question.Q4, "nothing-matches").isEmpty());
    }

    @Test
    void pairFiguresWrittenBesideJmhsGiveTheRatioAndJmhsOwnFiguresAreNotMixedIn(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("jmh-result.json");
        // JMH's own forks say lazy/direct = 0.1; the interleaved pair says 0.3
        Files.writeString(file, new CannedJmh().single("io.vringj.perf.dma.IommuModesBenchmark.lazy", 1e6, 0.0)
            .single("io.vringj.perf.dma.IommuModesBenchmark.direct", 1e7, 0.0).json());
        RatioSpec lazy = Ratios.all().stream().filter(r -> r.id().equals("q4.lazy-vs-direct")).findFirst().orElseThrow();
        assertEquals(0.1, lazy.compute(JmhJson.read(file)), 1e-9, "without a pair, JMH's figures give the ratio");

        Interleaved.Result pair = new Interleaved.Result("lazy", 3_000, 1_000_000, "direct", 10_000, 1_000_000, 40, 0.31);
        JmhJson.append(file, RegressionRunner.pairResults(new RegressionRunner.Pair(Question.Q4, "q4.lazy-vs-direct",
            "lazy", "direct"), pair));
        List<BenchmarkResult> all = JmhJson.read(file);
        assertEquals(4, all.size());
        BenchmarkResult lazyPaired = all.get(2);
        assertEquals("io.vringj.perf.dma.IommuModesBenchmark.lazy", lazyPaired.benchmark());
        assertEquals(Map.of(Ratios.PAIRED_WITH, "direct"), lazyPaired.params());
        assertEquals(3e6, lazyPaired.primary().score(), 1e-6, "3000 operations in 1 ms");
        assertEquals(0.31, lazyPaired.metric("slicePairRatioMedian").score(), 1e-9);
        assertEquals(0.3, lazy.compute(all), 1e-9, "the pair's figures win over JMH's");
        // a pair measured for another ratio does not stand in for this one
        RatioSpec strict = Ratios.all().stream().filter(r -> r.id().equals("q4.strict-vs-direct")).findFirst()
            .orElseThrow();
        assertTrue(Double.isNaN(strict.compute(all.subList(2, 4))), "strict was never measured");
    }

    @Test
    void everySideOfEveryPairHasALoopThatRunsItsTrips() throws Exception {
        List<String> sides = new ArrayList<>();
        for (Question q : Question.values()) {
            Class<?> cls = Class.forName(q.benchmarkClass());
            for (RegressionRunner.Pair p : RegressionRunner.pairs(q, null)) {
                for (String method : List.of(p.numerator(), p.denominator())) {
                    Interleaved.Target t = Interleaved.target(cls, method, p.params());
                    try {
                        assertEquals(method, t.method());
                        // a ring trip's device reads the payload the driver stamped (sequence ^ ~sequence
                        // = -1); a q6 operation returns the last byte it put in the pool's memory (0x5a)
                        long perTrip = q == Question.Q6 ? 0x5a : -1;
                        assertEquals(100 * perTrip, t.trips().run(100), q.id() + " " + method + " " + p.params());
                        sides.add(q.id() + "." + method + p.params());
                    } finally {
                        t.tearDown().run();
                    }
                }
            }
        }
        for (String bytes : Ratios.BOUNCE_SIZES) {
            assertTrue(sides.contains("q6.bounce{bytes=" + bytes + "}") && sides.contains("q6.copy{bytes=" + bytes + "}"),
                "q6's sides at " + bytes + " B: " + sides);
        }
        assertThrows(IllegalArgumentException.class, () -> Interleaved.target(
            Class.forName(Question.Q3.benchmarkClass()), "nonsense"));
    }

    @Test
    void q6PairsRunAtTheirSizeAndItsTwoThreadRatioStillComesFromJmhInEveryRound(@TempDir Path dir) throws Exception {
        List<RegressionRunner.Pair> q6 = RegressionRunner.pairs(Question.Q6, null);
        assertEquals(List.of(Map.of("bytes", "4096"), Map.of("bytes", "65536"), Map.of("bytes", "262144")),
            q6.stream().map(RegressionRunner.Pair::params).toList());
        assertTrue(q6.stream().allMatch(p -> p.numerator().equals("bounce") && p.denominator().equals("copy")));
        assertEquals("bounce vs copy, bytes=65536, interleaved", q6.get(1).label());

        // JMH: bounce/copy once a run (allocation), the two-thread pools in every round
        List<RegressionRunner.Batch> batches = RegressionRunner.batches(RegressionRunner.includeRegex(Question.Q6, null));
        String cls = Question.Q6.benchmarkClass() + ".";
        assertEquals(4, batches.size(), "three sizes and the parameterless pools: " + batches);
        for (RegressionRunner.Batch b : batches) {
            boolean pools = b.benchmarks().equals(List.of(cls + "oneArea", cls + "severalAreas"));
            assertEquals(pools ? 5 : 1, RegressionRunner.jmhRounds(Question.Q6, b, 5), b.toString());
            assertEquals(pools, b.params().isEmpty(), b.toString());
        }
        assertTrue(Ratios.measuredOnceARun(Question.Q4, "lazy"), "the DMA questions keep JMH once a run");

        // the pair's results carry its size: each size's ratio picks its own pair, never JMH's figure
        Path file = dir.resolve("jmh-result.json");
        CannedJmh jmh = new CannedJmh();
        for (String bytes : Ratios.BOUNCE_SIZES) {
            jmh.add(cls + "bounce", Map.of("bytes", bytes), 1e5, Map.of()).add(cls + "copy", Map.of("bytes", bytes),
                1e6, Map.of());
        }
        Files.writeString(file, jmh.single(cls + "oneArea", 2e6, 0.0).single(cls + "severalAreas", 3e6, 0.0).json());
        JmhJson.append(file, RegressionRunner.pairResults(q6.get(1),
            new Interleaved.Result("bounce", 900, 1_000_000, "copy", 1_000, 1_000_000, 40, 0.9)));
        JmhJson.append(file, RegressionRunner.pairResults(q6.get(2),
            new Interleaved.Result("bounce", 990, 1_000_000, "copy", 1_000, 1_000_000, 40, 0.99)));
        List<BenchmarkResult> all = JmhJson.read(file);
        Map<String, Double> ratios = new java.util.TreeMap<>();
        for (RatioSpec r : Ratios.all()) {
            if (r.question() == Question.Q6) {
                ratios.put(r.id(), r.compute(all));
            }
        }
        assertEquals(0.1, ratios.get("q6.bounce-vs-copy.4096B"), 1e-9, "no pair at 4 KiB: JMH's figures");
        assertEquals(0.9, ratios.get("q6.bounce-vs-copy.65536B"), 1e-9);
        assertEquals(0.99, ratios.get("q6.bounce-vs-copy.262144B"), 1e-9);
        assertEquals(1.5, ratios.get("q6.several-areas-vs-one"), 1e-9, "the two-thread ratio: JMH's forks");
        assertEquals(Map.of("bytes", "65536", Ratios.PAIRED_WITH, "copy"), all.get(8).params());
    }

    @Test
    void aParameterisedClassNeedsItsParametersAndBadOnesAreNamed() throws Exception {
        Class<?> q6 = Class.forName(Question.Q6.benchmarkClass());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> Interleaved.target(q6, "bounce", Map.of("bytes", "1000")));
        assertTrue(e.getMessage().contains("1000") && e.getMessage().contains("65536"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Interleaved.target(q6, "oneArea", Map.of("bytes", "4096")));
        assertTrue(e.getMessage().contains("oneArea"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Interleaved.target(
            Class.forName(Question.Q4.benchmarkClass()), "lazy", Map.of("bytes", "4096")));
        assertTrue(e.getMessage().contains("Map<String, String>") && e.getMessage().contains("bytes"), e.getMessage());
        assertEquals(Map.of("bytes", "4096"), Interleaved.params(List.of("bytes=4096")));
        e = assertThrows(IllegalArgumentException.class, () -> Interleaved.params(List.of("bytes")));
        assertTrue(e.getMessage().contains("\"bytes\"") && e.getMessage().contains("NAME=VALUE"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Interleaved.params(List.of("a=1", "a=2")));
    }

    @Test
    void aRealPairRunsInAJvmOfItsOwn() throws Exception {
        RegressionRunner.Pair pair = new RegressionRunner.Pair(Question.Q4, "q4.passthrough-vs-direct", "passthrough",
            "direct");
        Interleaved.Result r = RegressionRunner.runPair(pair, 100, 200);
        assertEquals("passthrough", r.numerator());
        assertEquals("direct", r.denominator());
        assertTrue(r.numeratorOps() > 0 && r.denominatorOps() > 0, r.line());
        // 200 ms in 10 ms slices is ten pairs on a quiet machine; a busy one stretches the slices
        assertTrue(r.slicePairs() >= 2, "200 ms in 10 ms slices: " + r.line());
        assertTrue(r.ratio() > 0.1 && r.ratio() < 10, "passthrough runs the same trip as direct: " + r.line());
    }

    @Test
    void aRealQ6PairRunsAtItsSize() throws Exception {
        RegressionRunner.Pair pair = RegressionRunner.pairs(Question.Q6, null).get(1);
        Interleaved.Result r = RegressionRunner.runPair(pair, 100, 200, true);
        assertEquals("bounce", r.numerator(), "set up second, the numerator is still the numerator");
        assertEquals("copy", r.denominator());
        assertTrue(r.slicePairs() >= 2 && r.ratio() > 0.1 && r.ratio() < 10, r.line());
    }

    @Test
    void aPairThatFailsIsReportedWithItsOutput() {
        RegressionRunner.Pair pair = new RegressionRunner.Pair(Question.Q4, "q4.bogus", "bogus", "direct");
        org.openjdk.jmh.runner.RunnerException e = assertThrows(org.openjdk.jmh.runner.RunnerException.class,
            () -> RegressionRunner.runPair(pair, 10, 40));
        assertTrue(e.getMessage().contains("bogus") && e.getMessage().contains("exit 1"), e.getMessage());
    }
}

package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReportWriterTest {
    private static final String Q3 = "io.vringj.perf.dma.DmaIndirectionBenchmark.";

    @TempDir
    Path dir;

    /** Five rounds of every Q1 peer and of Q3 (premapped 2e7; monomorphic 1e7 ± a little; megamorphic 1e5). */
    private static List<BenchmarkResult> results() {
        CannedJmh c = new CannedJmh();
        double[] wobble = {1.0, 0.98, 1.02, 0.99, 1.01};
        for (double w : wobble) {
            for (String payload : Ratios.PAYLOADS) {
                for (String batch : Ratios.BATCHES) {
                    c.q1("vringj", payload, batch, 4e7 * w, 0.001);
                    c.q1("vringjPacked", payload, batch, 4e7, 0.001);
                    c.q1("agrona", payload, batch, 2e7, 0.0);
                    c.q1("jctools", payload, batch, 3e7, 0.0);
                    c.q1("abq", payload, batch, 3e6, 4.8);
                }
            }
            c.single(Q3 + "premapped", 2e7, 0.0).single(Q3 + "directMonomorphic", 1e7 * w, 0.0)
                .single(Q3 + "directMegamorphic", 1e5, 0.0);
        }
        return c.parse();
    }

    private static ReportWriter.RunInfo info(Baseline baseline, Baseline.Entry entry, List<Check> checks) {
        MachineLoad load = new MachineLoad(1.2, 1.9, 0.001, 2);
        return new ReportWriter.RunInfo(Profile.QUICK, "now", Machine.current(), load, "5 builds",
            "perf/baseline/quick.json", baseline, entry, Checks.judge(checks, load));
    }

    @Test
    void showsPerRatioThisRunTheBaselineTheSpreadAndTheDecision() throws Exception {
        List<BenchmarkResult> results = results();
        Baseline.Entry entry = new Baseline.Entry(Machine.current(), "earlier", "quiet",
            Map.of("q3.direct-mono-vs-premapped", new Spread(1.0, 0.98, 1.01, 5)), Map.of());
        Baseline base = new Baseline(Profile.QUICK, List.of(entry));
        List<Check> checks = Checks.compare(results, entry, Profile.QUICK);
        Path md = ReportWriter.write(dir, info(base, entry, checks), results, checks);
        String text = Files.readString(md);
        assertTrue(text.contains("**Verdict: REGRESSION** (exit status 1)"), text);
        assertTrue(text.contains("- q3.direct-mono-vs-premapped"), "the reason names the ratio: " + text);
        // per round 0.5 × (1.0, 0.98, 1.02, 0.99, 1.01): median 0.5, quartiles 0.495 .. 0.505
        // the regression line: the baseline's lower quartile 0.98 × (1 − 20%)
        assertTrue(text.contains("| q3 | DirectDmaOps at a monomorphic call site / premapped, trips/s | 0.500 |"
            + " 0.495 – 0.505 | 1.000 | 0.980 – 1.010 | 0.784 | -50.0% | REGRESSION | ≥ 0.980 | no |"), text);
        assertTrue(text.contains("| q1 | vringj / agrona messages/s, 64 B, batch 1 | 2.000 | 1.980 – 2.020 | — | — | — |"
            + " — | new | ≥ 1.000 | yes |"), text);
        assertTrue(text.contains("| RingThroughputBenchmark.vringj[batch=1, payloadBytes=64] | 0.001 | — | 0.500 | new |"),
            text);
        assertTrue(text.contains("| RingThroughputBenchmark.abq | batch=1, payloadBytes=64 | messages | 3.00 M |"), text);
        assertTrue(text.contains("- while measuring: load average 1.20 (median; max 1.90; limit 3.00), steal 0.1%"),
            text);
        assertTrue(text.contains("- note: 5 builds"));
        assertTrue(text.contains("- this machine's entry: recorded earlier on "), text);
        assertTrue(text.contains("![q1-vringj-vs-agrona.png](q1-vringj-vs-agrona.png)"), text);
        assertTrue(text.contains("(jmh-result.json)"));
    }

    @Test
    void aMiddleHalfLopsidedAboutItsMedianIsShownByItsQuartilesSoTheDecisionCanBeRead() throws Exception {
        // two of five rounds at half speed: the median sits at the top of the middle half, not in its centre
        CannedJmh c = new CannedJmh();
        for (double w : new double[] {1.0, 0.5, 0.52, 1.0, 1.0}) {
            c.single(Q3 + "premapped", 2e7, 0.0).single(Q3 + "directMonomorphic", 1e7 * w, 0.0)
                .single(Q3 + "directMegamorphic", 1e5, 0.0);
        }
        List<BenchmarkResult> results = c.parse();
        Baseline.Entry entry = new Baseline.Entry(Machine.current(), "earlier", "quiet",
            Map.of("q3.direct-mono-vs-premapped", new Spread(0.5, 0.45, 0.55, 5)), Map.of());
        List<Check> checks = Checks.compare(results, entry, Profile.QUICK);
        Path md = ReportWriter.write(dir, info(new Baseline(Profile.QUICK, List.of(entry)), entry, checks), results,
            checks);
        String text = Files.readString(md);
        // same median as the baseline, yet too noisy: the lower quartile 0.26 lies below the line 0.45 × 0.8 = 0.36
        // and the upper one above it, which "± half the IQR" (0.120 either side of 0.500) would hide
        assertTrue(text.contains("| q3 | DirectDmaOps at a monomorphic call site / premapped, trips/s | 0.500 |"
            + " 0.260 – 0.500 | 0.500 | 0.450 – 0.550 | 0.360 | +0.0% | too noisy | ≥ 0.980 | no |"), text);
        assertTrue(text.contains("| this run | its middle half | baseline | its middle half | regression line |"), text);
    }

    @Test
    void aRunOnABusyMachineIsTooNoisyAndNoRowOfItSaysRegression() throws Exception {
        List<BenchmarkResult> results = results();
        Baseline.Entry entry = new Baseline.Entry(Machine.current(), "earlier", "quiet",
            Map.of("q3.direct-mono-vs-premapped", new Spread(1.0, 0.98, 1.01, 5)), Map.of());
        List<Check> checks = Checks.compare(results, entry, Profile.QUICK);
        assertTrue(checks.stream().anyMatch(c -> c.status() == Check.Status.REGRESSION), "q3 halved: past its line");
        MachineLoad busy = new MachineLoad(7.5, 11.0, 0.0, 2);
        ReportWriter.RunInfo info = new ReportWriter.RunInfo(Profile.QUICK, "now", Machine.current(), busy, "",
            "perf/baseline/quick.json", new Baseline(Profile.QUICK, List.of(entry)), entry, Checks.judge(checks, busy));
        String text = Files.readString(ReportWriter.write(dir, info, results, checks));
        assertTrue(text.contains("**Verdict: TOO NOISY TO JUDGE** (exit status 4)"), text);
        assertTrue(text.contains("| 0.784 | -50.0% | past its line, not judged (run too noisy) | ≥ 0.980 | no |"), text);
        assertFalse(text.contains("REGRESSION"), text);
    }

    @Test
    void withoutThisMachinesEntryEveryRatioIsShownWithItsTargetAndNoneJudged() throws Exception {
        List<BenchmarkResult> results = results();
        Baseline other = new Baseline(Profile.QUICK, List.of(new Baseline.Entry(new Machine("Some Other CPU", 64, "25",
            "Linux"), "then", "", Map.of("q3.direct-mono-vs-premapped", Spread.ofMedian(9.0)), Map.of())));
        List<Check> checks = Checks.compare(results, null, Profile.QUICK);
        String text = Files.readString(ReportWriter.write(dir, info(other, null, checks), results, checks));
        assertTrue(text.contains("**Verdict: NO BASELINE FOR THIS MACHINE** (exit status 3)"), text);
        assertTrue(text.contains("- this machine's entry: none (figures are shown, not judged)"), text);
        assertTrue(text.contains("| q3 | DirectDmaOps at a monomorphic call site / premapped, trips/s | 0.500 |"
            + " 0.495 – 0.505 | — | — | — | — | not judged | ≥ 0.980 | no |"), text);
        assertTrue(text.contains("entries for: Some Other CPU, 64 CPUs"), text);
    }

    @Test
    void oneChartPerQuestionOrPerComparisonWithAtMostEightBars() throws Exception {
        List<BenchmarkResult> results = results();
        List<Check> checks = Checks.compare(results, null, Profile.QUICK);
        Map<String, List<Check>> groups = ReportWriter.chartGroups(checks);
        assertEquals(List.of("q1-packed-vs-split", "q1-vringj-vs-agrona", "q1-vringj-vs-jctools", "q1-vringj-vs-abq",
            "q3"), List.copyOf(groups.keySet()));
        groups.values().forEach(g -> assertTrue(g.size() <= ReportWriter.MAX_BARS, g.size() + " bars"));
        assertEquals(6, groups.get("q1-vringj-vs-agrona").size());

        ReportWriter.write(dir, info(null, null, checks), results, checks);
        for (String name : groups.keySet()) {
            BufferedImage image = ImageIO.read(dir.resolve(name + ".png").toFile());
            assertNotNull(image, name + " is a readable image");
            assertEquals(900, image.getWidth(), name);
        }
        assertTrue(Files.notExists(dir.resolve("q2.png")), "no chart for a question that did not run");
        assertTrue(Files.readString(dir.resolve(ReportWriter.REPORT)).contains("none at perf/baseline/quick.json"));
    }

    @Test
    void ratiosSpanningMoreThanTenfoldAreDrawnOnALogAxisEvenWithAMissingBaseline() throws Exception {
        // q3: monomorphic 0.5, megamorphic 0.005 (100x apart); the baseline has only one of them
        List<BenchmarkResult> results = results();
        Baseline.Entry entry = new Baseline.Entry(Machine.current(), "", "",
            Map.of("q3.direct-mono-vs-premapped", new Spread(0.5, 0.3, 0.6, 5)), Map.of());
        List<Check> checks = Checks.compare(results, entry, Profile.QUICK);
        ReportWriter.write(dir, info(new Baseline(Profile.QUICK, List.of(entry)), entry, checks), results, checks);
        BufferedImage image = ImageIO.read(dir.resolve("q3.png").toFile());
        assertNotNull(image, "drawn without zero or negative values on the log axis");
    }
}

package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
    @TempDir
    Path dir;

    private static List<BenchmarkResult> results() {
        CannedJmh c = new CannedJmh();
        for (String payload : Ratios.PAYLOADS) {
            for (String batch : Ratios.BATCHES) {
                c.q1("vringj", payload, batch, 4e7, 0.001);
                c.q1("agrona", payload, batch, 2e7, 0.0);
                c.q1("jctools", payload, batch, 3e7, 0.0);
                c.q1("abq", payload, batch, 3e6, 4.8);
            }
        }
        return c.single("io.vringj.perf.dma.DmaIndirectionBenchmark.premapped", 2e7, 0.0)
            .single("io.vringj.perf.dma.DmaIndirectionBenchmark.directMonomorphic", 1e7, 0.0).parse();
    }

    @Test
    void writesMarkdownWithVerdictRatiosAllocationAndThroughputs() throws Exception {
        List<BenchmarkResult> results = results();
        Baseline base = new Baseline(Profile.QUICK, "earlier", "same box", "", Map.of("q3.direct-mono-vs-premapped", 1.0),
            Map.of());
        List<Check> checks = Checks.compare(results, base, Profile.QUICK);
        Path md = ReportWriter.write(dir, new ReportWriter.RunInfo(Profile.QUICK, "now", "test machine", "5 builds",
            "perf/baseline/quick.json", base), results, checks);
        String text = Files.readString(md);
        assertTrue(text.contains("**Verdict: REGRESSION (1)**"), "0.5 against a baseline of 1.0 is a regression");
        assertTrue(text.contains("| q3 | DirectDmaOps at a monomorphic call site / premapped, trips/s | 0.500 | 1.000 |"
            + " -50.0% | REGRESSION | ≥ 0.980 | no |"), text);
        assertTrue(text.contains("| q1 | vringj / agrona messages/s, 64 B, batch 1 | 2.000 | — | — | NEW | ≥ 1.000 | yes |"),
            text);
        assertTrue(text.contains("| RingThroughputBenchmark.vringj[batch=1, payloadBytes=64] | 0.001 | — | 0.500 | NEW |"),
            text);
        assertTrue(text.contains("| RingThroughputBenchmark.abq | batch=1, payloadBytes=64 | messages | 3.00 M |"), text);
        assertTrue(text.contains("- machine: test machine"));
        assertTrue(text.contains("- note: 5 builds"));
        assertTrue(text.contains("![q1-ratios.png](q1-ratios.png)"));
        assertTrue(text.contains("(jmh-result.json)"));
    }

    @Test
    void drawsRatioAndThroughputChartsAsPngPerMeasuredQuestion() throws Exception {
        List<BenchmarkResult> results = results();
        ReportWriter.write(dir, new ReportWriter.RunInfo(Profile.QUICK, "now", "m", "", "b.json", null), results,
            Checks.compare(results, null, Profile.QUICK));
        for (String name : List.of("q1-ratios.png", "q1-throughput.png", "q3-ratios.png", "q3-throughput.png")) {
            BufferedImage image = ImageIO.read(dir.resolve(name).toFile());
            assertNotNull(image, name + " is a readable image");
            assertEquals(1000, image.getWidth(), name);
            assertEquals(560, image.getHeight(), name);
        }
        assertTrue(Files.notExists(dir.resolve("q2-ratios.png")), "no chart for a question that did not run");
        assertTrue(Files.readString(dir.resolve(ReportWriter.REPORT)).contains("none at b.json"));
    }
}

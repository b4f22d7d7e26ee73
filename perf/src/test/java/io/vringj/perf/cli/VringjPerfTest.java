package io.vringj.perf.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line over canned JMH JSON: the {@code report} path runs everything but JMH. */
class VringjPerfTest {
    private static final String RESULTS = """
        [
          {"benchmark":"io.vringj.perf.dma.DmaIndirectionBenchmark.premapped","mode":"thrpt","params":{},
           "primaryMetric":{"score":2.0E7,"scoreError":"NaN","scoreUnit":"ops/s"},
           "secondaryMetrics":{"gc.alloc.rate.norm":{"score":0.001,"scoreError":"NaN","scoreUnit":"B/op"}}},
          {"benchmark":"io.vringj.perf.dma.DmaIndirectionBenchmark.directMonomorphic","mode":"thrpt","params":{},
           "primaryMetric":{"score":1.9E7,"scoreError":"NaN","scoreUnit":"ops/s"},
           "secondaryMetrics":{"gc.alloc.rate.norm":{"score":0.001,"scoreError":"NaN","scoreUnit":"B/op"}}}
        ]
        """;

    @TempDir
    Path dir;

    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);

    private int run(String... args) {
        return VringjPerf.execute(out, args);
    }

    private String output() {
        return bytes.toString(StandardCharsets.UTF_8);
    }

    private void baseline(double monoRatio) throws Exception {
        Files.writeString(dir.resolve("quick.json"), "{\"profile\":\"quick\",\"ratios\":{\"q3.direct-mono-vs-premapped\":"
            + monoRatio + "},\"allocation\":{}}");
    }

    @Test
    void reportPassesWhenTheRatioIsWithinToleranceOfTheBaseline() throws Exception {
        Files.writeString(dir.resolve("r.json"), RESULTS);
        baseline(1.0);
        int status = run("report", "--quick", "--results", dir.resolve("r.json").toString(), "--baseline",
            dir.resolve("quick.json").toString(), "--report-dir", dir.resolve("report").toString());
        assertEquals(0, status, output());
        assertTrue(output().contains("1 passed, 0 regressed"), output());
        assertTrue(Files.exists(dir.resolve("report/report.md")));
        assertTrue(Files.exists(dir.resolve("report/q3-ratios.png")));
    }

    @Test
    void reportExitsOneOnARegression() throws Exception {
        Files.writeString(dir.resolve("r.json"), RESULTS);
        baseline(1.5);
        int status = run("report", "--quick", "--results", dir.resolve("r.json").toString(), "--baseline",
            dir.resolve("quick.json").toString(), "--report-dir", dir.resolve("report").toString());
        assertEquals(1, status, output());
        assertTrue(output().contains("REGRESSION q3.direct-mono-vs-premapped"), output());
    }

    @Test
    void updateBaselineWritesTheRunsFiguresAndPasses() throws Exception {
        Files.writeString(dir.resolve("r.json"), RESULTS);
        baseline(1.5);
        int status = run("report", "--quick", "--update-baseline", "--note", "test", "--results",
            dir.resolve("r.json").toString(), "--baseline", dir.resolve("quick.json").toString(), "--report-dir",
            dir.resolve("report").toString());
        assertEquals(0, status, output());
        String written = Files.readString(dir.resolve("quick.json"));
        assertTrue(written.contains("\"q3.direct-mono-vs-premapped\": 0.95"), written);
        assertTrue(written.contains("\"note\": \"test\""), written);
    }

    @Test
    void aBaselineOfTheOtherProfileIsRefused() throws Exception {
        Files.writeString(dir.resolve("r.json"), RESULTS);
        baseline(1.0);
        int status = run("report", "--results", dir.resolve("r.json").toString(), "--baseline",
            dir.resolve("quick.json").toString(), "--report-dir", dir.resolve("report").toString());
        assertEquals(VringjPerf.FAILED, status);
    }

    @Test
    void aMissingResultsFileIsAnErrorNotAPass() {
        int status = run("report", "--quick", "--results", dir.resolve("nope.json").toString());
        assertEquals(VringjPerf.FAILED, status);
    }

    @Test
    void anUnknownOptionIsAUsageError() {
        assertEquals(2, run("regress", "--quik"));
    }

    @Test
    void jmhPassesItsOptionsToJmhUnparsed() {
        // -l lists the benchmarks compiled into the module (JMH prints to standard output)
        PrintStream saved = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        int status;
        try {
            status = run("jmh", "-l", "RoundTrip");
        } finally {
            System.setOut(saved);
        }
        assertEquals(0, status, output());
        String listed = captured.toString(StandardCharsets.UTF_8);
        assertTrue(listed.contains("io.vringj.perf.ring.RoundTripBenchmark.ring"), listed);
        assertTrue(!listed.contains("RingThroughputBenchmark"), "the filter reached JMH: " + listed);
    }

    @Test
    void listNamesEveryQuestionAndTarget() {
        assertEquals(0, run("list"));
        for (int q = 1; q <= 7; q++) {
            assertTrue(output().contains("q" + q + "  "), "q" + q + " in\n" + output());
        }
        assertTrue(output().contains("q1.vringj-vs-agrona.4096B.batch32"), output());
        assertTrue(output().contains("; target >= 4.000]"), output());
    }
}

package io.vringj.perf.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.perf.regress.Baseline;
import io.vringj.perf.regress.Machine;
import io.vringj.perf.regress.Profile;
import io.vringj.perf.regress.Spread;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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
        baseline(Machine.current(), monoRatio);
    }

    private void baseline(Machine machine, double monoRatio) throws Exception {
        new Baseline(Profile.QUICK, List.of(new Baseline.Entry(machine, "then", "", Map.of("q3.direct-mono-vs-premapped",
            Spread.ofMedian(monoRatio)), Map.of()))).write(dir.resolve("quick.json"));
    }

    private int report(String... more) throws Exception {
        List<String> args = new ArrayList<>(List.of("report", "--quick", "--results", dir.resolve("r.json").toString(),
            "--baseline", dir.resolve("quick.json").toString(), "--report-dir", dir.resolve("report").toString()));
        args.addAll(List.of(more));
        return run(args.toArray(String[]::new));
    }

    /** Five rounds of question 3 whose monomorphic / premapped ratio is {@code ratios[i]} in round i. */
    private void results(double... ratios) throws Exception {
        StringBuilder sb = new StringBuilder("[");
        for (double r : ratios) {
            sb.append(sb.length() > 1 ? "," : "").append(result("premapped", 2.0e7)).append(',')
                .append(result("directMonomorphic", 2.0e7 * r));
        }
        Files.writeString(dir.resolve("r.json"), sb.append(']').toString());
    }

    private static String result(String method, double score) {
        return String.format(java.util.Locale.ROOT, "{\"benchmark\":\"io.vringj.perf.dma.DmaIndirectionBenchmark.%s\","
            + "\"mode\":\"thrpt\",\"params\":{},\"primaryMetric\":{\"score\":%f,\"scoreError\":\"NaN\","
            + "\"scoreUnit\":\"ops/s\"},\"secondaryMetrics\":{\"gc.alloc.rate.norm\":{\"score\":0.001,"
            + "\"scoreError\":\"NaN\",\"scoreUnit\":\"B/op\"}}}", method, score);
    }

    @Test
    void reportPassesWhenTheRatioIsWithinToleranceOfTheBaseline() throws Exception {
        Files.writeString(dir.resolve("r.json"), RESULTS);
        baseline(1.0);
        assertEquals(0, report(), output());
        assertTrue(output().contains("VERDICT: PASS (exit 0)"), output());
        assertTrue(Files.exists(dir.resolve("report/report.md")));
        assertTrue(Files.exists(dir.resolve("report/q3.png")));
    }

    @Test
    void reportExitsOneOnARegression() throws Exception {
        Files.writeString(dir.resolve("r.json"), RESULTS);
        baseline(1.5);
        assertEquals(1, report(), output());
        assertTrue(output().contains("VERDICT: REGRESSION (exit 1)"), output());
        assertTrue(output().contains("  q3.direct-mono-vs-premapped"), output());
    }

    @Test
    void aMachineWithoutAnEntryGetsEveryRatioAndTargetButNoJudgementAndExitThree() throws Exception {
        Files.writeString(dir.resolve("r.json"), RESULTS);
        baseline(new Machine("Some Other CPU", 64, "25", "Linux"), 1.5);
        assertEquals(3, report(), output());
        assertTrue(output().contains("VERDICT: NO BASELINE FOR THIS MACHINE (exit 3)"), output());
        assertTrue(output().matches("(?s).*q3\\.direct-mono-vs-premapped +0\\.950 .*not judged +>= 0\\.980 missed.*"),
            output());
        assertTrue(!output().contains("REGRESSION"), "1.5 belongs to another machine: " + output());
    }

    @Test
    void roundsThatDisagreeMakeTheRunTooNoisyToJudgeExitFour() throws Exception {
        results(0.95, 0.5, 1.4, 0.7, 1.2);
        baseline(1.0);
        assertEquals(4, report(), output());
        assertTrue(output().contains("VERDICT: TOO NOISY TO JUDGE (exit 4)"), output());
        assertTrue(output().contains("straddles their regression line"), output());
    }

    @Test
    void aSpreadWiderThanTheToleranceButWhollyAboveTheLineIsJudgedAndPasses() throws Exception {
        // quartiles 1.0 .. 1.4 (a third of the median 1.2, wider than the tolerance); the line is 1.0 × 0.8
        results(1.2, 0.9, 1.4, 1.0, 1.5);
        baseline(1.0);
        assertEquals(0, report(), output());
        assertTrue(output().contains("VERDICT: PASS (exit 0)"), output());
    }

    @Test
    void updateBaselineAddsThisMachinesEntryBesideTheOthers() throws Exception {
        Files.writeString(dir.resolve("r.json"), RESULTS);
        Machine other = new Machine("Some Other CPU", 64, "25", "Linux");
        baseline(other, 1.5);
        assertEquals(0, report("--update-baseline", "--note", "test"), output());
        Baseline written = Baseline.read(dir.resolve("quick.json"));
        assertEquals(List.of(other, Machine.current()), written.entries().stream().map(Baseline.Entry::machine).toList());
        assertEquals(1.5, written.entries().get(0).ratios().get("q3.direct-mono-vs-premapped").median(), 1e-9,
            "the other machine's entry is kept");
        Baseline.Entry mine = written.entryFor(Machine.current()).orElseThrow();
        assertEquals(0.95, mine.ratios().get("q3.direct-mono-vs-premapped").median(), 1e-9);
        assertEquals("test", mine.note());
        bytes.reset();
        assertEquals(0, report(), "judged against the new entry: " + output());
    }

    @Test
    void updateBaselineRefusesATooNoisyRunUnlessNoiseIsAccepted() throws Exception {
        results(0.95, 0.5, 1.4, 0.7, 1.2);
        baseline(1.0);
        String before = Files.readString(dir.resolve("quick.json"));
        assertEquals(4, report("--update-baseline"), output());
        assertTrue(output().contains("baseline NOT written"), output());
        assertEquals(before, Files.readString(dir.resolve("quick.json")));
        assertEquals(0, report("--update-baseline", "--accept-noise"), output());
        assertEquals(0.95, Baseline.read(dir.resolve("quick.json")).entryFor(Machine.current()).orElseThrow().ratios()
            .get("q3.direct-mono-vs-premapped").median(), 1e-9);
    }

    /** Writes {@code file} with one round of question 3 per value (see {@link #results}). */
    private Path resultsFile(String file, double... ratios) throws Exception {
        results(ratios);
        return Files.move(dir.resolve("r.json"), dir.resolve(file));
    }

    private int reportOf(List<Path> files, String... more) {
        List<String> args = new ArrayList<>(List.of("report", "--quick"));
        for (Path f : files) {
            args.addAll(List.of("--results", f.toString()));
        }
        args.addAll(List.of("--baseline", dir.resolve("quick.json").toString(), "--report-dir",
            dir.resolve("report").toString()));
        args.addAll(List.of(more));
        return run(args.toArray(String[]::new));
    }

    @Test
    void aBaselineRecordedFromTwoRunsSpansBothSoALaterRunAtTheSlowerOnePasses() throws Exception {
        Path fast = resultsFile("a.json", 1.0, 0.98, 1.02, 0.99, 1.01);
        Path slow = resultsFile("b.json", 0.7, 0.69, 0.71, 0.72, 0.68);
        Path later = resultsFile("c.json", 0.7, 0.69, 0.71, 0.7, 0.7);
        assertEquals(0, reportOf(List.of(fast, slow), "--update-baseline", "--note", "two runs"), output());
        Spread recorded = Baseline.read(dir.resolve("quick.json")).entryFor(Machine.current()).orElseThrow().ratios()
            .get("q3.direct-mono-vs-premapped");
        assertEquals(10, recorded.rounds(), "both runs' rounds");
        assertTrue(recorded.q1() < 0.71 && recorded.q3() > 0.99, recorded.toString());
        bytes.reset();
        assertEquals(0, reportOf(List.of(later)), output());
        assertTrue(output().contains("VERDICT: PASS (exit 0)"), output());

        assertEquals(0, reportOf(List.of(fast), "--update-baseline"), output());
        bytes.reset();
        assertEquals(1, reportOf(List.of(later)), "a baseline of the fast run alone: " + output());
    }

    @Test
    void everyResultsFileMustExistAndTheErrorNamesIt() throws Exception {
        Path fast = resultsFile("a.json", 1.0, 0.98, 1.02);
        baseline(1.0);
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream savedErr = System.err;
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        int status;
        try {
            status = reportOf(List.of(fast, dir.resolve("nope.json")));
        } finally {
            System.setErr(savedErr);
        }
        assertEquals(2, status);
        String message = err.toString(StandardCharsets.UTF_8);
        assertTrue(message.contains("results file " + dir.resolve("nope.json") + " does not exist"), message);
    }

    @Test
    void aBaselineOfTheOtherProfileIsAnError() throws Exception {
        Files.writeString(dir.resolve("r.json"), RESULTS);
        baseline(1.0);
        int status = run("report", "--results", dir.resolve("r.json").toString(), "--baseline",
            dir.resolve("quick.json").toString(), "--report-dir", dir.resolve("report").toString());
        assertEquals(2, status);
    }

    @Test
    void aMissingResultsFileIsAnErrorNotAPass() {
        int status = run("report", "--quick", "--results", dir.resolve("nope.json").toString());
        assertEquals(2, status);
    }

    @Test
    void anUnknownOptionIsAUsageError() {
        assertEquals(2, run("regress", "--quik"));
    }

    @Test
    void helpListsTheFixedExitStatuses() {
        assertEquals(0, run("regress", "--help"));
        String help = output();
        for (String line : List.of("0   judged", "1   REGRESSION", "2   usage or run error",
            "3   NO BASELINE FOR THIS MACHINE", "4   TOO NOISY TO JUDGE")) {
            assertTrue(help.contains(line), line + " in\n" + help);
        }
    }

    @Test
    void jmhForksGetTheFlagThatSilencesUnsafeWarningsUnlessTheCallerSetsTheirOwn() {
        assertEquals(List.of("-l", "-jvmArgsPrepend", "--sun-misc-unsafe-memory-access=allow"),
            VringjPerf.Jmh.jmhArgs(List.of("-l")));
        assertEquals(List.of("-jvmArgsPrepend", "-Xint"), VringjPerf.Jmh.jmhArgs(List.of("-jvmArgsPrepend", "-Xint")));
    }

    @Test
    void aJvmWithoutTheUnsafeFlagRelaunchesItselfWithIt() {
        // the test JVM runs with the flag (see the pom's argLine): no relaunch
        assertEquals(List.of(), VringjPerf.relaunchCommand(new String[] {"list"}));
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

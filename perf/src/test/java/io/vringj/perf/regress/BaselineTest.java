package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BaselineTest {
    private static final Machine AMD = new Machine("AMD EPYC", 2, "25.0.3+9-LTS", "Linux 6.18.44");
    private static final Machine XEON = new Machine("Intel(R) Xeon(R) Processor", 2, "25.0.3+9-LTS", "Linux 6.18.44");

    /** The single-machine form baselines had before entries per machine (the committed quick.json's shape). */
    private static final String LEGACY = """
        {
          "profile": "quick",
          "recorded": "2026-11-21T06:20:12Z",
          "machine": "Linux 6.18.44-fc-v657 amd64, 2 CPUs (AMD EPYC), JDK 25.0.3+9-LTS (Eclipse Adoptium), load average 1.56",
          "note": "nothing else running",
          "ratios": { "q2.ring-vs-pingpong": 0.1184, "q4.lazy-vs-direct": 0.0613 },
          "allocation": { "IommuModesBenchmark.lazy[]": 1256.0079 }
        }
        """;

    @TempDir
    Path dir;

    private static Baseline.Entry entry(Machine m, double ringVsPingPong) {
        return new Baseline.Entry(m, "2026-01-01T00:00:00Z", "other helpers' builds",
            Map.of("q2.ring-vs-pingpong", new Spread(ringVsPingPong, ringVsPingPong * 0.9, ringVsPingPong * 1.1, 5)),
            Map.of("RoundTripBenchmark.ring[]", 0.001));
    }

    @Test
    void writtenBaselineReadsBackWithEveryMachinesFiguresAndSpreads() throws Exception {
        Baseline b = new Baseline(Profile.QUICK, List.of(entry(AMD, 0.512345678), entry(XEON, 0.2)));
        Path file = dir.resolve("nested/quick.json");
        b.write(file);
        Baseline read = Baseline.read(file);
        assertEquals(Profile.QUICK, read.profile());
        assertEquals(List.of(AMD, XEON), read.entries().stream().map(Baseline.Entry::machine).toList());
        Baseline.Entry amd = read.entries().get(0);
        assertEquals("other helpers' builds", amd.note());
        assertTrue(Files.readString(file).contains("helpers' builds"), "written as typed, not \\u0027-escaped");
        Spread s = amd.ratios().get("q2.ring-vs-pingpong");
        assertEquals(0.5123, s.median(), 1e-12, "stored to 4 decimals");
        assertEquals(0.4611, s.q1(), 1e-12);
        assertEquals(0.5636, s.q3(), 1e-12);
        assertEquals(5, s.rounds());
        assertEquals(0.001, amd.allocation().get("RoundTripBenchmark.ring[]"), 1e-12);
        assertEquals(0.2, read.entries().get(1).ratios().get("q2.ring-vs-pingpong").median(), 1e-12);
        assertTrue(Files.readString(file).contains("\n  \"machines\""), "pretty-printed for readable diffs");
    }

    @Test
    void migratesTheSingleMachineFormIntoOneEntryWithoutSpreads() throws Exception {
        Path file = dir.resolve("quick.json");
        Files.writeString(file, LEGACY);
        Baseline read = Baseline.read(file);
        assertEquals(1, read.entries().size());
        Baseline.Entry e = read.entries().get(0);
        assertEquals(new Machine("AMD EPYC", 2, "25.0.3+9-LTS", "Linux 6.18.44-fc-v657"), e.machine());
        assertEquals("2026-11-21T06:20:12Z", e.recorded());
        assertEquals("nothing else running", e.note());
        Spread s = e.ratios().get("q2.ring-vs-pingpong");
        assertEquals(0.1184, s.median(), 1e-12);
        assertFalse(s.hasQuartiles(), "the old form recorded no spread");
        assertEquals(1256.0079, e.allocation().get("IommuModesBenchmark.lazy[]"), 1e-9);

        read.write(file);
        String migrated = Files.readString(file);
        assertTrue(migrated.contains("\"machines\""), migrated);
        assertFalse(migrated.contains("\"q1\""), "no invented quartiles: " + migrated);
        assertEquals(read, Baseline.read(file), "the migrated file reads back the same");
    }

    @Test
    void anEntryServesTheSameCpuCoreCountAndJdkReleaseOnly() {
        Baseline b = new Baseline(Profile.QUICK, List.of(entry(AMD, 0.5)));
        assertTrue(b.entryFor(new Machine("AMD EPYC", 2, "25.0.4+7-LTS", "Linux 6.19.1")).isPresent(),
            "a JDK update or a new kernel keeps the entry");
        assertTrue(b.entryFor(new Machine("amd epyc", 2, "25", "Linux 6.18.44")).isPresent(), "model case ignored");
        assertTrue(b.entryFor(XEON).isEmpty(), "another CPU model");
        assertTrue(b.entryFor(new Machine("AMD EPYC", 4, "25.0.3+9-LTS", "Linux 6.18.44")).isEmpty(), "4 cores");
        assertTrue(b.entryFor(new Machine("AMD EPYC", 2, "26+1", "Linux 6.18.44")).isEmpty(), "JDK 26");
    }

    @Test
    void anUpdateReplacesTheSameMachinesEntryAndAddsAnotherMachinesBeside() {
        Baseline b = new Baseline(Profile.QUICK, List.of(entry(AMD, 0.5)));
        Baseline added = b.with(entry(XEON, 0.2));
        assertEquals(List.of(AMD, XEON), added.entries().stream().map(Baseline.Entry::machine).toList());
        Baseline replaced = added.with(entry(new Machine("AMD EPYC", 2, "25.0.4", "Linux 6.19"), 0.7));
        assertEquals(2, replaced.entries().size());
        assertEquals(0.7, replaced.entries().get(0).ratios().get("q2.ring-vs-pingpong").median(), 1e-12);
        assertEquals(0.2, replaced.entries().get(1).ratios().get("q2.ring-vs-pingpong").median(), 1e-12);
    }

    @Test
    void rejectsAnUnknownProfileNamingIt() throws Exception {
        Path file = dir.resolve("b.json");
        Files.writeString(file, "{\"profile\":\"medium\",\"machines\":[]}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Baseline.read(file));
        assertTrue(e.getMessage().contains("\"medium\""), e.getMessage());
    }

    @Test
    void rejectsARatioThatIsNotANumberNamingIt() throws Exception {
        Path file = dir.resolve("b.json");
        Files.writeString(file, "{\"profile\":\"quick\",\"machines\":[{\"machine\":{\"cpu\":\"x\",\"cores\":2,"
            + "\"jdk\":\"25\",\"kernel\":\"k\"},\"ratios\":{\"q2.ring-vs-pingpong\":\"fast\"}}]}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Baseline.read(file));
        assertTrue(e.getMessage().contains("ratios.q2.ring-vs-pingpong"), e.getMessage());
    }

    @Test
    void rejectsAnEntryWithoutItsMachine() throws Exception {
        Path file = dir.resolve("b.json");
        Files.writeString(file, "{\"profile\":\"quick\",\"machines\":[{\"ratios\":{}}]}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Baseline.read(file));
        assertTrue(e.getMessage().contains("machines[0]") && e.getMessage().contains("\"machine\""), e.getMessage());
    }

    @Test
    void rejectsAnOldFormWhoseMachineLineCannotBeRead() throws Exception {
        Path file = dir.resolve("b.json");
        Files.writeString(file, "{\"profile\":\"quick\",\"machine\":\"my laptop\",\"ratios\":{}}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Baseline.read(file));
        assertTrue(e.getMessage().contains("\"my laptop\""), e.getMessage());
    }
}

package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BaselineTest {
    @TempDir
    Path dir;

    @Test
    void writtenBaselineReadsBackWithItsFigures() throws Exception {
        Baseline b = new Baseline(Profile.QUICK, "2026-01-01T00:00:00Z", "2 CPUs", "other helpers' builds",
            Map.of("q2.ring-vs-pingpong", 0.512345678), Map.of("RoundTripBenchmark.ring[]", 0.001));
        Path file = dir.resolve("nested/quick.json");
        b.write(file);
        Baseline read = Baseline.read(file);
        assertEquals(Profile.QUICK, read.profile());
        assertEquals("2 CPUs", read.machine());
        assertEquals("other helpers' builds", read.note());
        assertTrue(Files.readString(file).contains("helpers' builds"), "written as typed, not \\u0027-escaped");
        assertEquals(0.5123, read.ratios().get("q2.ring-vs-pingpong"), 1e-12, "stored to 4 decimals");
        assertEquals(0.001, read.allocation().get("RoundTripBenchmark.ring[]"), 1e-12);
        assertTrue(Files.readString(file).contains("\n  \"ratios\""), "pretty-printed for readable diffs");
    }

    @Test
    void rejectsAnUnknownProfileNamingIt() throws Exception {
        Path file = dir.resolve("b.json");
        Files.writeString(file, "{\"profile\":\"medium\",\"ratios\":{}}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Baseline.read(file));
        assertTrue(e.getMessage().contains("\"medium\""), e.getMessage());
    }

    @Test
    void rejectsARatioThatIsNotANumberNamingIt() throws Exception {
        Path file = dir.resolve("b.json");
        Files.writeString(file, "{\"profile\":\"quick\",\"ratios\":{\"q2.ring-vs-pingpong\":\"fast\"}}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Baseline.read(file));
        assertTrue(e.getMessage().contains("ratios.q2.ring-vs-pingpong"), e.getMessage());
    }
}

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
        Check ratio = new Check("q1.vringj-vs-agrona.64B.batch1", Question.Q1, Check.Kind.RATIO, "", 1.0, 2.0, 0.4,
            1.0, Check.Status.REGRESSION);
        Check passing = new Check("q2.ring-vs-pingpong", Question.Q2, Check.Kind.RATIO, "", 0.5, 0.5, 0.4, 0.667,
            Check.Status.PASS);
        Check alloc = new Check("DmaIndirectionBenchmark.directMonomorphic[]", Question.Q3, Check.Kind.ALLOCATION, "",
            24, 0, 0.5, 0, Check.Status.REGRESSION);
        Map<Question, Set<String>> suspects = RegressionRunner.suspects(List.of(ratio, passing, alloc));
        assertEquals(Map.of(Question.Q1, Set.of("vringj", "agrona"), Question.Q3, Set.of("directMonomorphic")),
            suspects);
    }

    @Test
    void noRegressionMeansNothingToConfirm() {
        Check fresh = new Check("q3.direct-mono-vs-premapped", Question.Q3, Check.Kind.RATIO, "", 1.0, Double.NaN, 0.2,
            0.98, Check.Status.NEW);
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
            List.of(Question.Q1), null, Path.of("r"), Path.of("b.json"), false, "", false, -1));
        assertThrows(java.util.regex.PatternSyntaxException.class, () -> new RegressionRunner.Settings(Profile.QUICK,
            List.of(Question.Q1), "([", Path.of("r"), Path.of("b.json"), false, "", false, 1));
    }

    @Test
    void quickProfileFitsInAFewMinutesForTheWholeSuite() {
        // 24 ring-throughput runs, 2 round-trip, 3 indirection, 4 IOMMU, 3 IOTLB, 3 + 3 + 2 swiotlb
        int runs = 24 + 2 + 3 + 4 + 3 + 8;
        long seconds = Profile.QUICK.rounds() * Profile.QUICK.estimateSeconds(runs);
        assertTrue(seconds <= 8 * 60, seconds + " s");
        assertTrue(Profile.FULL.rounds() * Profile.FULL.estimateSeconds(runs) > seconds);
        assertTrue(Profile.QUICK.rounds() >= 3, "a median needs at least three rounds to outvote one bad round");
    }
}

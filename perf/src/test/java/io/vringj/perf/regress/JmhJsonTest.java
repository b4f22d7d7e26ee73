package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class JmhJsonTest {

    @Test
    void readsBenchmarkParamsPrimaryAndSecondaryMetrics() {
        List<BenchmarkResult> results = new CannedJmh().q1("vringj", "4096", "32", 4.5e7, 0.002).parse();
        assertEquals(1, results.size());
        BenchmarkResult r = results.get(0);
        assertEquals("io.vringj.perf.ring.RingThroughputBenchmark.vringj", r.benchmark());
        assertEquals("RingThroughputBenchmark.vringj", r.shortName());
        assertEquals("4096", r.params().get("payloadBytes"));
        assertEquals("batch=32, payloadBytes=4096", r.paramsLabel());
        assertEquals(9.0e7, r.primary().score(), 1e-3);
        assertTrue(Double.isNaN(r.primary().error()), "JMH's \"NaN\" error string reads as NaN");
        assertEquals(4.5e7, r.metric("messages").score(), 1e-3);
        assertEquals("B/op", r.metric(BenchmarkResult.ALLOC_NORM).unit());
        assertNull(r.metric("noSuchMetric"));
    }

    @Test
    void rejectsAnythingButAnArrayNamingTheSource() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> JmhJson.parse("{\"benchmark\":\"x\"}", "results.json"));
        assertTrue(e.getMessage().contains("results.json"), e.getMessage());
        assertTrue(e.getMessage().contains("array"), e.getMessage());
    }

    @Test
    void rejectsAResultWithoutAPrimaryMetricNamingTheField() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> JmhJson.parse("[{\"benchmark\":\"a.B.c\"}]", "r.json"));
        assertTrue(e.getMessage().contains("r.json result 0"), e.getMessage());
        assertTrue(e.getMessage().contains("primaryMetric"), e.getMessage());
    }

    @Test
    void rejectsAScoreThatIsNotANumber() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> JmhJson.parse("[{\"benchmark\":\"a.B.c\",\"primaryMetric\":{\"score\":\"fast\"}}]", "r.json"));
        assertTrue(e.getMessage().contains("\"fast\""), e.getMessage());
    }

    @Test
    void rejectsTextThatIsNotJson() {
        assertThrows(IllegalArgumentException.class, () -> JmhJson.parse("[{", "broken.json"));
    }
}

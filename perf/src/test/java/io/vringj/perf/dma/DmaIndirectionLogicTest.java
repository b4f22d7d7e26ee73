package io.vringj.perf.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The question-3 trips on one thread without JMH: each returns an intact payload and leaves the ring empty. */
class DmaIndirectionLogicTest {

    @Test
    void everyVariantCompletesItsTripWithAnIntactPayload() throws Exception {
        for (boolean pollute : new boolean[] {false, true}) {
            DmaIndirectionBenchmark b = new DmaIndirectionBenchmark();
            b.init(pollute);
            try {
                for (int i = 0; i < 1000; i++) {
                    assertEquals(-1L, b.premapped());
                    assertEquals(-1L, b.directMonomorphic());
                    assertEquals(-1L, b.directMegamorphic());
                }
            } finally {
                b.tearDown();
            }
        }
    }
}

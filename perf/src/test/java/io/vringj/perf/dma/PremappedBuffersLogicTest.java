package io.vringj.perf.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The question-8 trips on one thread without JMH: every configuration completes with intact payloads. */
class PremappedBuffersLogicTest {

    @Test
    void everyConfigurationCompletesItsTripsWithIntactPayloads() throws Exception {
        for (String config : List.of("direct", "passthroughPremapped", "lazyPremapped", "strictPremapped", "lazyMapped",
            "strictMapped", "protectedPool", "protectedBounce")) {
            PremappedBuffersBenchmark b = new PremappedBuffersBenchmark();
            b.init(config);
            try {
                // more trips than the lazy flush queue holds, so lazy mode flushes and reuses IOVAs
                for (int i = 0; i < 2_000; i++) {
                    long read = switch (config) {
                        case "direct" -> b.direct();
                        case "passthroughPremapped" -> b.passthroughPremapped();
                        case "lazyPremapped" -> b.lazyPremapped();
                        case "strictPremapped" -> b.strictPremapped();
                        case "lazyMapped" -> b.lazyMapped();
                        case "strictMapped" -> b.strictMapped();
                        case "protectedPool" -> b.protectedPool();
                        default -> b.protectedBounce();
                    };
                    assertEquals(-1L, read, config + " trip " + i);
                }
            } finally {
                b.tearDown();
            }
        }
    }

    @Test
    void unknownConfigurationIsRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> new PremappedBuffersBenchmark().init("sloppy"));
        assertTrue(e.getMessage().contains("\"sloppy\""), e.getMessage());
    }
}

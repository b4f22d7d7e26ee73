package io.vringj.perf.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The question-4 and question-5 trips on one thread without JMH: each mode and view completes with an intact payload. */
class DmaPathLogicTest {

    @Test
    void everyIommuModeCompletesItsTripsWithIntactPayloads() throws Exception {
        for (String mode : List.of("direct", "passthrough", "lazy", "strict")) {
            IommuModesBenchmark b = new IommuModesBenchmark();
            b.init(mode);
            try {
                // more trips than the lazy flush queue holds, so lazy mode flushes and reuses IOVAs
                for (int i = 0; i < 2_000; i++) {
                    long read = switch (mode) {
                        case "direct" -> b.direct();
                        case "passthrough" -> b.passthrough();
                        case "lazy" -> b.lazy();
                        default -> b.strict();
                    };
                    assertEquals(-1L, read, mode + " trip " + i);
                }
            } finally {
                b.tearDown();
            }
        }
    }

    @Test
    void unknownModeIsRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> new IommuModesBenchmark().init("sloppy"));
        assertEquals(true, e.getMessage().contains("\"sloppy\""), e.getMessage());
    }

    @Test
    void everyDeviceViewCompletesItsTripsWithIntactPayloads() throws Exception {
        for (String view : List.of("identity", "iotlbCached", "iotlbUncached")) {
            DeviceIotlbBenchmark b = new DeviceIotlbBenchmark();
            b.init(view);
            try {
                for (int i = 0; i < 2_000; i++) {
                    long read = switch (view) {
                        case "identity" -> b.identity();
                        case "iotlbCached" -> b.iotlbCached();
                        default -> b.iotlbUncached();
                    };
                    assertEquals(-1L, read, view + " trip " + i);
                }
            } finally {
                b.tearDown();
            }
        }
    }
}

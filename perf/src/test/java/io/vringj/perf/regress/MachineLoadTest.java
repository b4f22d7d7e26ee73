package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class MachineLoadTest {
    @Test
    void theBenchmarksOwnThreadsPlusHalfTheCpusIsTheLoadLimit() {
        assertEquals(3.0, MachineLoad.loadLimit(2), 0, "2 benchmark threads + 1");
        assertEquals(1.5, MachineLoad.loadLimit(1), 0);
        assertEquals(6.0, MachineLoad.loadLimit(8), 0);
    }

    @Test
    void aLoadAboveTheLimitOrStolenTimeMakeTheMachineTooBusy() {
        assertTrue(new MachineLoad(2.4, 2.9, 0.01, 2).tooBusy().isEmpty(), "two spinning benchmark threads and a little");
        assertTrue(new MachineLoad(7.8, 9.0, 0.0, 2).tooBusy().get(0).contains("load average 7.80"));
        assertTrue(new MachineLoad(1.0, 1.0, 0.12, 2).tooBusy().get(0).contains("stole 12.0%"));
        assertEquals(2, new MachineLoad(7.8, 9.0, 0.12, 2).tooBusy().size());
        assertTrue(MachineLoad.unknown(2).tooBusy().isEmpty(), "unknown figures judge nothing");
    }

    @Test
    void readsTotalAndStealFromTheAggregateCpuLine() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        assertArrayEquals(new long[] {7342 + 1135 + 40542 + 111 + 63 + 14, 14},
            MachineLoad.cpuTimes("cpu  7342 0 1135 40542 111 0 63 14 0 0"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> MachineLoad.cpuTimes("cpu0 1 2 3 4 5 6 7 8"));
        assertTrue(e.getMessage().contains("cpu0"), e.getMessage());
    }
}

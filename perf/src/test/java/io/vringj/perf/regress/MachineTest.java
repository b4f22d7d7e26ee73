package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class MachineTest {
    @Test
    void readsTheOldOneLineDescriptionIncludingModelsWithParentheses() {
        assertEquals(new Machine("AMD EPYC", 2, "25.0.3+9-LTS", "Linux 6.18.44-fc-v657"), Machine.parseLegacy(
            "Linux 6.18.44-fc-v657 amd64, 2 CPUs (AMD EPYC), JDK 25.0.3+9-LTS (Eclipse Adoptium), load average 1.56"));
        assertEquals(new Machine("Intel(R) Xeon(R) Processor", 2, "25.0.3+9-LTS", "Linux 6.18.44"), Machine.parseLegacy(
            "Linux 6.18.44 amd64, 2 CPUs (Intel(R) Xeon(R) Processor), JDK 25.0.3+9-LTS (Eclipse Adoptium)"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Machine.parseLegacy("a box"));
        assertTrue(e.getMessage().contains("\"a box\""), e.getMessage());
    }

    @Test
    void theSameMachineIsTheSameCpuCoresAndJdkFeatureRelease() {
        Machine m = new Machine("AMD EPYC", 2, "25.0.3+9-LTS", "Linux 6.18.44");
        assertEquals("25", m.jdkFeature());
        assertTrue(m.sameAs(new Machine("AMD EPYC", 2, "25.0.9", "Linux 7.0")));
        for (Machine other : List.of(new Machine("AMD EPYC 9B14", 2, "25.0.3+9-LTS", "Linux 6.18.44"),
            new Machine("AMD EPYC", 8, "25.0.3+9-LTS", "Linux 6.18.44"),
            new Machine("AMD EPYC", 2, "26-ea", "Linux 6.18.44"))) {
            assertFalse(m.sameAs(other), other.toString());
        }
    }

    @Test
    void theCurrentMachineNamesItsCoresAndJdk() {
        Machine m = Machine.current();
        assertEquals(Runtime.getRuntime().availableProcessors(), m.cores());
        assertEquals(String.valueOf(Runtime.version().feature()), m.jdkFeature());
        assertTrue(m.sameAs(Machine.current()));
        assertThrows(IllegalArgumentException.class, () -> new Machine("x", 0, "25", "k"));
    }
}

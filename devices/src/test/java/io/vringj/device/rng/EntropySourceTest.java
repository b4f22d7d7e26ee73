package io.vringj.device.rng;

import java.util.Arrays;
import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EntropySourceTest {

    @Test
    void secureRandomPartialFillTouchesOnlyTheBytesAskedFor() {
        byte[] buffer = new byte[64];
        Arrays.fill(buffer, (byte) 0x5a);
        EntropySource.secureRandom().fill(buffer, 7);
        for (int i = 7; i < buffer.length; i++) {
            assertEquals(0x5a, buffer[i], "byte " + i + " is past the fill");
        }
        // 7 random bytes all equal to the sentinel has probability 2^-56
        boolean changed = false;
        for (int i = 0; i < 7; i++) {
            changed |= buffer[i] != 0x5a;
        }
        assertTrue(changed);
    }

    @Test
    void secureRandomWholeFillsDiffer() {
        byte[] a = new byte[32];
        byte[] b = new byte[32];
        EntropySource source = EntropySource.secureRandom();
        source.fill(a, 32);
        source.fill(b, 32);
        assertTrue(!Arrays.equals(a, b), "two 256-bit draws are equal with probability 2^-256");
    }
}

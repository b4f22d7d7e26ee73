package io.vringj.vhostuser.frontend;

import io.vringj.ring.VirtioFeatures;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Options the front end cannot honour are refused up front, naming the value and the rule. */
class FrontEndOptionsTest {

    static String refused(FrontEndOptions.Builder builder) {
        return assertThrows(IllegalArgumentException.class, builder::build).getMessage();
    }

    @Test
    void refusesWhatTheFrontEndCannotDo() {
        assertEquals("queue size 12 is not a power of two, which a split ring needs (want RING_PACKED for other sizes)",
            refused(FrontEndOptions.client("s").queueSize(12)));
        assertEquals(12, FrontEndOptions.client("s").queueSize(12)
            .features(VirtioFeatures.bit(VirtioFeatures.RING_PACKED)).build().queueSize(), "a packed ring takes it");
        assertEquals("queue size 65536 is outside 1..32768", refused(FrontEndOptions.client("s").queueSize(65536)));
        assertEquals("queue count 0 is outside 1..256", refused(FrontEndOptions.client("s").queues(0)));
        assertEquals("features 0x200000000 include ACCESS_PLATFORM (bit 33); this front end shares its memory directly "
            + "and sends no IOTLB messages",
            refused(FrontEndOptions.client("s").features(VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM))));
        assertEquals("features 0x40000000 include bit 30 (VHOST_USER_F_PROTOCOL_FEATURES); the front end negotiates "
            + "it itself", refused(FrontEndOptions.client("s").features(1L << 30)));
        assertEquals("required features 0x8000 are not all wanted (0x100000000)",
            refused(FrontEndOptions.client("s").requireFeatures(1L << 15)));
        assertEquals("memory size 5000 must be a positive multiple of 4096",
            refused(FrontEndOptions.client("s").memorySize(5000)));
        assertEquals("reply time-out PT0S is outside 1 ms..24 days",
            refused(FrontEndOptions.client("s").replyTimeout(Duration.ZERO)));
        assertEquals("memfd name 'a/b' must be 1..200 characters without '/' or NUL",
            refused(FrontEndOptions.client("s").memoryName("a/b")));
    }
}

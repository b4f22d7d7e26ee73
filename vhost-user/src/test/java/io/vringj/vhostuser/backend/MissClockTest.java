package io.vringj.vhostuser.backend;

import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MissClockTest {
    final VhostUserStatistics statistics = new VhostUserStatistics();
    final MissClock clock = new MissClock(statistics);

    @Test
    void aMissIsTimedInItsParts() {
        clock.queued(0x12345, 1_000);
        clock.written(0x12345, 4_000);
        assertEquals(1, statistics.missToSocket.count());
        assertEquals(3_000, statistics.missToSocket.totalNanos());
        // an update of the whole 2 MiB page around it answers it
        assertTrue(clock.answered(0, 2 << 20, 10_000));
        assertEquals(1, statistics.missAnswer.count());
        assertEquals(6_000, statistics.missAnswer.totalNanos());
        // answered once: the same update again answers nothing
        assertFalse(clock.answered(0, 2 << 20, 11_000));
        assertEquals(1, statistics.missAnswer.count());
    }

    @Test
    void anUpdateElsewhereOrBeforeTheMissWasWrittenAnswersNothing() {
        clock.queued(0x5000, 1_000);
        assertFalse(clock.answered(0x5000, 4096, 2_000), "not written yet: the front end cannot have answered it");
        clock.written(0x5000, 3_000);
        assertFalse(clock.answered(0x6000, 4096, 4_000), "the next page");
        assertFalse(clock.answered(0x4000, 4096, 4_000), "the page before");
        assertTrue(clock.answered(0x5800, 1, 5_000), "any byte of the page");
        assertEquals(2_000, statistics.missAnswer.totalNanos());
        assertTrue(statistics.toString().contains("missAnswer=1/2.0us/2.0us"), statistics.toString());
    }

    @Test
    void aWriteOfAPageNobodyMissedIsNotTimed() {
        clock.queued(0x1000, 1_000);
        clock.written(0x2000, 2_000);
        assertEquals(0, statistics.missToSocket.count());
        assertEquals("0/0.0us/0.0us", statistics.missToSocket.toString());
    }
}

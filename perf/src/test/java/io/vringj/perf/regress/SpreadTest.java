package io.vringj.perf.regress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SpreadTest {
    @Test
    void medianAndQuartilesInterpolateBetweenTheClosestRounds() {
        Spread s = Spread.of(5, 1, 4, 2, 3);
        assertEquals(3, s.median(), 0);
        assertEquals(2, s.q1(), 0);
        assertEquals(4, s.q3(), 0);
        assertEquals(5, s.rounds());
        assertEquals(2.0 / 3, s.relativeIqr(), 1e-12);
        Spread even = Spread.of(1, 2, 3, 4);
        assertEquals(2.5, even.median(), 1e-12);
        assertEquals(1.75, even.q1(), 1e-12);
        assertEquals(3.25, even.q3(), 1e-12);
    }

    @Test
    void roundsWithoutAValueAreLeftOut() {
        Spread s = Spread.of(Double.NaN, 2, Double.NaN);
        assertEquals(2, s.median(), 0);
        assertEquals(0, s.iqr(), 0);
        assertEquals(1, s.rounds());
        assertFalse(Spread.of(Double.NaN).measured());
        assertFalse(Spread.of().measured());
    }

    @Test
    void aMedianWithoutQuartilesCountsAsItsOwnBounds() {
        Spread s = Spread.ofMedian(0.8);
        assertFalse(s.hasQuartiles());
        assertEquals(0.8, s.low(), 0);
        assertEquals(0.8, s.high(), 0);
        assertEquals(0, s.iqr(), 0);
        assertTrue(s.measured());
    }

    @Test
    void quartilesMustBracketTheMedian() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Spread(1.0, 1.2, 1.5, 5));
        assertTrue(e.getMessage().contains("bracket the median 1.0"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Spread(1.0, 0.9, 1.1, -1));
    }
}

package io.vringj.perf.regress;

import java.util.Arrays;

/**
 * A figure measured over several rounds: the median and the interquartile range of its
 * per-round values. The spread is what one run's noise looks like; a difference between two runs
 * smaller than their spreads is not a change.
 *
 * @param median the median of the per-round values, NaN if none was measured
 * @param q1 the lower quartile (25th percentile), NaN if unknown
 * @param q3 the upper quartile (75th percentile), NaN if unknown
 * @param rounds how many rounds gave a value (0 when only the median is known, as in a migrated baseline)
 */
public record Spread(double median, double q1, double q3, int rounds) {
    /** Nothing measured. */
    public static final Spread NONE = new Spread(Double.NaN, Double.NaN, Double.NaN, 0);

    /**
     * @param median the median
     * @param q1 the lower quartile
     * @param q3 the upper quartile
     * @param rounds how many values, at least 0
     */
    public Spread {
        if (rounds < 0) {
            throw new IllegalArgumentException("rounds " + rounds + " must be at least 0");
        }
        if (q1 > median || q3 < median) {
            throw new IllegalArgumentException("quartiles " + q1 + " .. " + q3 + " must bracket the median " + median);
        }
    }

    /**
     * @param median a figure whose spread is not known (a baseline recorded before spreads were)
     * @return the figure with an unknown spread
     */
    public static Spread ofMedian(double median) {
        return new Spread(median, Double.NaN, Double.NaN, 0);
    }

    /**
     * @param values per-round values; NaN (a round that did not measure it) is left out
     * @return their median and quartiles (linear interpolation between the closest ranks), or
     *     {@link #NONE} if there is no value
     */
    public static Spread of(double... values) {
        double[] v = Arrays.stream(values).filter(x -> !Double.isNaN(x)).sorted().toArray();
        if (v.length == 0) {
            return NONE;
        }
        return new Spread(quantile(v, 0.5), quantile(v, 0.25), quantile(v, 0.75), v.length);
    }

    private static double quantile(double[] sorted, double p) {
        double pos = p * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = (int) Math.ceil(pos);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }

    /** @return whether a median was measured */
    public boolean measured() {
        return !Double.isNaN(median);
    }

    /** @return the interquartile range, 0 when unknown (only the median was recorded) */
    public double iqr() {
        return Double.isNaN(q1) || Double.isNaN(q3) ? 0 : q3 - q1;
    }

    /** @return whether the quartiles are known */
    public boolean hasQuartiles() {
        return !Double.isNaN(q1) && !Double.isNaN(q3);
    }

    /** @return the interquartile range relative to the median (0.1 = the middle half spans 10% of the median) */
    public double relativeIqr() {
        return median > 0 ? iqr() / median : Double.NaN;
    }

    /** @return the lower end of the middle half: the lower quartile, or the median when unknown */
    public double low() {
        return hasQuartiles() ? q1 : median;
    }

    /** @return the upper end of the middle half: the upper quartile, or the median when unknown */
    public double high() {
        return hasQuartiles() ? q3 : median;
    }
}

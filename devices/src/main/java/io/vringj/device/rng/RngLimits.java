package io.vringj.device.rng;

/**
 * How much entropy a virtio-rng queue hands out: at most {@code maxBytesPerChain} into one
 * chain, and at most {@code maxBytesPerPeriod} in each {@code periodMillis} (QEMU's
 * {@code virtio-rng} has the same pair as {@code max-bytes} and {@code period}). A chain that
 * arrives when the period's bytes are spent waits, on its queue's worker, for the next period;
 * a driver that asks faster than the limit is slowed down, not refused.
 *
 * @param maxBytesPerChain the most bytes written into one chain, at least 1 (the driver accepts
 *     a shorter fill [virtio 5.4.6])
 * @param maxBytesPerPeriod the most bytes per period, at least 1
 * @param periodMillis the period in milliseconds, 1..1000 (a worker waits at most one period, so
 *     that stopping it stays prompt)
 */
public record RngLimits(int maxBytesPerChain, long maxBytesPerPeriod, long periodMillis) {
    /** Default per-chain cap: 64 KiB, more than Linux's virtio-rng asks for at once. */
    public static final int DEFAULT_MAX_BYTES_PER_CHAIN = 64 * 1024;
    /** Default bytes per period: 1 MiB per 100 ms (10 MiB/s per queue). */
    public static final long DEFAULT_MAX_BYTES_PER_PERIOD = 1024 * 1024;
    /** Default period, in milliseconds. */
    public static final long DEFAULT_PERIOD_MILLIS = 100;
    /** The longest period accepted, in milliseconds. */
    public static final long MAX_PERIOD_MILLIS = 1000;

    /**
     * @throws IllegalArgumentException if a limit is below 1 or the period is outside 1..1000 ms
     */
    public RngLimits {
        if (maxBytesPerChain < 1) {
            throw new IllegalArgumentException("maxBytesPerChain " + maxBytesPerChain + " must be at least 1");
        }
        if (maxBytesPerPeriod < 1) {
            throw new IllegalArgumentException("maxBytesPerPeriod " + maxBytesPerPeriod + " must be at least 1");
        }
        if (periodMillis < 1 || periodMillis > MAX_PERIOD_MILLIS) {
            throw new IllegalArgumentException("periodMillis " + periodMillis + " must be in 1.." + MAX_PERIOD_MILLIS);
        }
    }

    /** @return the defaults: 64 KiB per chain, 1 MiB per 100 ms */
    public static RngLimits defaults() {
        return new RngLimits(DEFAULT_MAX_BYTES_PER_CHAIN, DEFAULT_MAX_BYTES_PER_PERIOD, DEFAULT_PERIOD_MILLIS);
    }

    /** @return no practical limit: {@link Integer#MAX_VALUE} per chain, {@link Long#MAX_VALUE} per period */
    public static RngLimits unlimited() {
        return new RngLimits(Integer.MAX_VALUE, Long.MAX_VALUE, MAX_PERIOD_MILLIS);
    }
}

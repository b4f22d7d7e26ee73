package io.vringj.device.rng;

import io.vringj.device.VirtioDevice;
import io.vringj.ring.ChainHandler;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

/**
 * virtio-rng (device id 4) [virtio 5.4]: one queue; the driver offers writable buffers and the
 * device fills them with entropy. The device has no feature bits of its own; it offers the
 * transport features the ring engine honours (EVENT_IDX, INDIRECT_DESC, RING_PACKED) and
 * VERSION_1, plus ACCESS_PLATFORM when an IOTLB is available to the back end.
 *
 * <p>Each queue hands out entropy within {@link RngLimits}: a cap per chain and a rate (bytes
 * per period), on by default.
 */
public final class RngDevice implements VirtioDevice {
    /** Bytes handed to the entropy source at a time. */
    static final int CHUNK = 4096;

    private final Supplier<EntropySource> sources;
    private final boolean accessPlatform;
    private final RngLimits limits;

    /**
     * A device with the default {@link RngLimits}.
     *
     * @param sources gives each queue worker its own entropy source
     * @param accessPlatform whether to offer {@code ACCESS_PLATFORM} (the back end then needs IOTLB messages)
     */
    public RngDevice(Supplier<EntropySource> sources, boolean accessPlatform) {
        this(sources, accessPlatform, RngLimits.defaults());
    }

    /**
     * @param sources gives each queue worker its own entropy source
     * @param accessPlatform whether to offer {@code ACCESS_PLATFORM} (the back end then needs IOTLB messages)
     * @param limits the per-chain cap and the rate of each queue
     */
    public RngDevice(Supplier<EntropySource> sources, boolean accessPlatform, RngLimits limits) {
        this.sources = Objects.requireNonNull(sources, "sources");
        this.accessPlatform = accessPlatform;
        this.limits = Objects.requireNonNull(limits, "limits");
    }

    /** @return the limits each queue obeys */
    public RngLimits limits() {
        return limits;
    }

    @Override
    public String name() {
        return "virtio-rng";
    }

    @Override
    public long offeredFeatures() {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX)
            | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC)
            | VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
        if (accessPlatform) {
            features |= VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM);
        }
        return features;
    }

    @Override
    public int queueCount() {
        return 1;
    }

    @Override
    public int maxQueueSize() {
        return 32768;
    }

    @Override
    public ChainHandler handler(int queueIndex, long negotiatedFeatures) {
        return new Filler(sources.get(), limits);
    }

    /**
     * Fills the writable part of a chain, up to the per-chain cap and the period's remaining
     * bytes, from a buffer of {@link #CHUNK} entropy bytes, refilled whole when used up: the
     * source always fills whole buffers, and bytes go out in stream order across chains. When
     * the period's bytes are spent it waits for the next period. Allocation-free after
     * construction.
     */
    static final class Filler implements ChainHandler {
        private final EntropySource source;
        private final byte[] buffer = new byte[CHUNK];
        private final MemorySegment bufferSegment = MemorySegment.ofArray(buffer);
        private final int maxPerChain;
        private final long maxPerPeriod;
        private final long periodNanos;
        /** Next unused byte of {@link #buffer}; {@link #CHUNK} when it needs a refill. */
        private int position = CHUNK;
        /** Start of the current period ({@link System#nanoTime()}) and the bytes left in it. */
        private long periodStart;
        private long budget;

        Filler(EntropySource source, RngLimits limits) {
            this.source = Objects.requireNonNull(source, "source");
            this.maxPerChain = limits.maxBytesPerChain();
            this.maxPerPeriod = limits.maxBytesPerPeriod();
            this.periodNanos = limits.periodMillis() * 1_000_000;
            this.periodStart = System.nanoTime();
            this.budget = maxPerPeriod;
        }

        /** Starts a new period if the current one is over; waits for it if nothing is left of this one. */
        private void refill() {
            long now = System.nanoTime();
            if (budget == 0) {
                long wait = periodStart + periodNanos - now;
                while (wait > 0) {
                    // at most one period (<= 1 s), so a worker told to stop ends promptly
                    LockSupport.parkNanos(this, wait);
                    now = System.nanoTime();
                    wait = periodStart + periodNanos - now;
                }
            }
            if (now - periodStart >= periodNanos) {
                periodStart = now;
                budget = maxPerPeriod;
            }
        }

        @Override
        public long handle(DescriptorChain chain) {
            refill();
            long total = Math.min(Math.min(chain.writableLength(), maxPerChain), budget);
            budget -= total;
            long done = 0;
            while (done < total) {
                if (position == CHUNK) {
                    source.fill(buffer, CHUNK);
                    position = 0;
                }
                int n = (int) Math.min(CHUNK - position, total - done);
                chain.copyToWritable(done, bufferSegment, position, n);
                position += n;
                done += n;
            }
            return total;
        }
    }
}

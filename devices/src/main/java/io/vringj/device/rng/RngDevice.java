package io.vringj.device.rng;

import io.vringj.device.VirtioDevice;
import io.vringj.ring.ChainHandler;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * virtio-rng (device id 4) [virtio 5.4]: one queue; the driver offers writable buffers and the
 * device fills them with entropy. The device has no feature bits of its own; it offers the
 * transport features the ring engine honours (EVENT_IDX, INDIRECT_DESC) and VERSION_1, plus
 * ACCESS_PLATFORM when an IOTLB is available to the back end.
 */
public final class RngDevice implements VirtioDevice {
    /** Bytes handed to the entropy source at a time. */
    static final int CHUNK = 4096;

    private final Supplier<EntropySource> sources;
    private final boolean accessPlatform;

    /**
     * @param sources gives each queue worker its own entropy source
     * @param accessPlatform whether to offer {@code ACCESS_PLATFORM} (the back end then needs IOTLB messages)
     */
    public RngDevice(Supplier<EntropySource> sources, boolean accessPlatform) {
        this.sources = Objects.requireNonNull(sources, "sources");
        this.accessPlatform = accessPlatform;
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
        return new Filler(sources.get());
    }

    /**
     * Fills every writable byte of a chain from a buffer of {@link #CHUNK} entropy bytes, refilled
     * whole when used up: the source always fills whole buffers, and bytes go out in stream
     * order across chains. Allocation-free after construction.
     */
    static final class Filler implements ChainHandler {
        private final EntropySource source;
        private final byte[] buffer = new byte[CHUNK];
        private final MemorySegment bufferSegment = MemorySegment.ofArray(buffer);
        /** Next unused byte of {@link #buffer}; {@link #CHUNK} when it needs a refill. */
        private int position = CHUNK;

        Filler(EntropySource source) {
            this.source = Objects.requireNonNull(source, "source");
        }

        @Override
        public long handle(DescriptorChain chain) {
            long total = chain.writableLength();
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

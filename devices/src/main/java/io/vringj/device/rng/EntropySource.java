package io.vringj.device.rng;

import java.security.SecureRandom;
import java.util.Objects;

/** Where virtio-rng's bytes come from. Not thread-safe: each queue worker gets its own source. */
@FunctionalInterface
public interface EntropySource {

    /**
     * Fills {@code buffer[0, length)} with bytes.
     *
     * @param buffer the destination
     * @param length how many bytes
     */
    void fill(byte[] buffer, int length);

    /** @return a source backed by a new {@link SecureRandom} (the platform's strong default); allocation-free */
    static EntropySource secureRandom() {
        SecureRandom random = new SecureRandom();
        return (buffer, length) -> {
            Objects.checkFromIndexSize(0, length, buffer.length);
            if (length == buffer.length) {
                random.nextBytes(buffer);
                return;
            }
            // SecureRandom fills whole arrays only: build a partial fill from ints, without allocating
            for (int i = 0; i < length; i += 4) {
                int r = random.nextInt();
                for (int j = 0; j < 4 && i + j < length; j++) {
                    buffer[i + j] = (byte) (r >>> (8 * j));
                }
            }
        };
    }

    /**
     * A deterministic source for tests: byte {@code i} of the stream is a pure function of
     * {@code seed} and {@code i} (a SplitMix64 sequence), so a test can predict every byte.
     *
     * @param seed the seed
     * @return the source
     */
    static EntropySource deterministic(long seed) {
        return new DeterministicEntropy(seed);
    }

    /** The stream {@link #deterministic(long)} produces, for tests that check bytes. */
    final class DeterministicEntropy implements EntropySource {
        private final long seed;
        private long position;

        DeterministicEntropy(long seed) {
            this.seed = seed;
        }

        /**
         * @param seed the seed
         * @param index the byte's position in the stream
         * @return byte {@code index} of the stream for {@code seed}
         */
        public static byte byteAt(long seed, long index) {
            long z = seed + (index >>> 3) * 0x9E3779B97F4A7C15L;
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            z = z ^ (z >>> 31);
            return (byte) (z >>> (8 * (index & 7)));
        }

        @Override
        public void fill(byte[] buffer, int length) {
            Objects.checkFromIndexSize(0, length, buffer.length);
            for (int i = 0; i < length; i++) {
                buffer[i] = byteAt(seed, position++);
            }
        }
    }
}

package io.vringj.vhostuser.channel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The messages of the channel stress run: each carries its sequence number, its length and a
 * checksum of its payload, so a receiver can tell a lost, duplicated, reordered or corrupted
 * message from a good one without knowing anything else.
 *
 * <pre>
 *   message: ┌ sequence (8) ┬ checksum (8) ┬ payload (length - 16): bytes derived from the sequence ┐
 *   length:  16..127 for most; every 61st up to the largest message (crosses rx buffers)
 * </pre>
 */
final class StressMessages {
    static final int HEADER = 16;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED;

    private StressMessages() {
    }

    /** A 64-bit mix (splitmix64's finaliser): payload bytes and lengths from a sequence number. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    /** @return the length of message {@code sequence}, 16..maxLength */
    static int length(long sequence, int maxLength) {
        long r = mix(sequence) >>> 1;
        if (sequence % 61 == 60) {
            return HEADER + (int) (r % (maxLength - HEADER + 1));
        }
        return HEADER + (int) (r % Math.min(112, maxLength - HEADER + 1));
    }

    /** Writes message {@code sequence} of {@code length} bytes at the start of {@code m}. */
    static void write(MemorySegment m, long sequence, int length) {
        long seed = mix(sequence ^ 0x5DEECE66DL);
        int i = HEADER;
        for (; i + 8 <= length; i += 8) {
            m.set(LONG, i, seed + i);
        }
        for (; i < length; i++) {
            m.set(ValueLayout.JAVA_BYTE, i, (byte) (seed + i));
        }
        m.set(LONG, 0, sequence);
        m.set(LONG, 8, checksum(m, length));
    }

    /** @return the checksum of the payload of the {@code length}-byte message at the start of {@code m} */
    static long checksum(MemorySegment m, int length) {
        long h = length;
        int i = HEADER;
        for (; i + 8 <= length; i += 8) {
            h = (h ^ m.get(LONG, i)) * 0x100000001b3L;
        }
        for (; i < length; i++) {
            h = (h ^ m.get(ValueLayout.JAVA_BYTE, i)) * 0x100000001b3L;
        }
        return mix(h);
    }

    /** Checks messages in arrival order against the sequence they must follow. */
    static final class Checker implements MessageHandler {
        private final int maxLength;
        long expected;
        String failure;

        Checker(int maxLength) {
            this.maxLength = maxLength;
        }

        @Override
        public void onMessage(MemorySegment buffer, int length) {
            if (failure != null) {
                return;
            }
            int want = length(expected, maxLength);
            if (length < HEADER) {
                failure = "message " + expected + ": " + length + " bytes, shorter than its 16-byte header";
                return;
            }
            long sequence = buffer.get(LONG, 0);
            if (sequence != expected) {
                failure = "expected message " + expected + ", got " + sequence
                    + (sequence < expected ? " (duplicated or reordered)" : " (lost " + (sequence - expected) + ")");
            } else if (length != want) {
                failure = "message " + sequence + ": " + length + " bytes, sent " + want;
            } else if (buffer.get(LONG, 8) != checksum(buffer, length)) {
                failure = "message " + sequence + " (" + length + " bytes): checksum mismatch, corrupted";
            } else {
                expected++;
            }
        }
    }
}

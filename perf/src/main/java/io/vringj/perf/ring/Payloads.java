package io.vringj.perf.ring;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * How every benchmark "writes" and "reads" a payload in place, the same for every peer: the
 * producer stamps a sequence number into the first and the last eight bytes (touching the first
 * and the last cache line, as a producer that built the payload there would have), and the
 * consumer reads both back. What differs between peers is only what the transport adds: a copy
 * (Agrona), a reference (JCTools, {@code ArrayBlockingQueue}) or a descriptor (vringj).
 */
public final class Payloads {
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED;

    private Payloads() {
    }

    /**
     * @param segment where the payload lies
     * @param offset its first byte in {@code segment}
     * @param length its length, at least 8
     * @param sequence the stamp
     */
    public static void stamp(MemorySegment segment, long offset, long length, long sequence) {
        segment.set(LONG, offset, sequence);
        segment.set(LONG, offset + length - Long.BYTES, ~sequence);
    }

    /**
     * @param segment where the payload lies
     * @param offset its first byte in {@code segment}
     * @param length its length, at least 8
     * @return a value derived from both stamps (for a {@code Blackhole})
     */
    public static long read(MemorySegment segment, long offset, long length) {
        return segment.get(LONG, offset) ^ segment.get(LONG, offset + length - Long.BYTES);
    }
}

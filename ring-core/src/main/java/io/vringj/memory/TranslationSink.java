package io.vringj.memory;

import java.lang.foreign.MemorySegment;

/**
 * Receives the pieces of memory one translation resolves to, without allocating: a piece is
 * named by the backing segment it lies in, an offset into that segment and a length.
 *
 * <p>A translation of {@code length} bytes delivers one or more pieces whose lengths add up to
 * {@code length}, in bus-address order. An identity or protected address space always
 * delivers exactly one; an IOTLB may deliver several when a buffer spans entries.
 */
@FunctionalInterface
public interface TranslationSink {
    /**
     * Accepts one piece.
     *
     * @param backing the segment the piece lies in (usually a whole region's segment)
     * @param offset the offset of the piece within {@code backing}
     * @param length the length of the piece, at least 1
     */
    void accept(MemorySegment backing, long offset, long length);
}

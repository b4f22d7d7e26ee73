package io.vringj.vhostuser.channel;

import java.lang.foreign.MemorySegment;

/**
 * Slices of the peer's buffers, made once per buffer address and handed out again each time the
 * peer reuses the buffer, whatever the message's length, so a message handed over in place
 * allocates nothing on the steady path (a peer posts the same Q buffers again and again). A slice
 * is made long enough for the longest message (where the region allows), so it may extend past
 * the descriptor into the peer's memory next to it: only {@code [0, length)} is the message.
 * Open addressing over a power-of-two table, a few probes, the home slot overwritten on a miss.
 *
 * <p>Owned by the application's thread; valid for one memory table (the channel closes when the
 * front end replaces it).
 */
final class SliceCache {
    private static final int PROBES = 4;

    private final long[] addresses;
    private final long[] lengths;
    private final MemorySegment[] slices;
    private final int mask;
    private final int shift;

    /** @param buffers how many distinct buffers to expect (the queue size) */
    SliceCache(int buffers) {
        int size = Integer.highestOneBit(Math.max(64, buffers * 4 - 1)) << 1;
        this.addresses = new long[size];
        this.lengths = new long[size];
        this.slices = new MemorySegment[size];
        this.mask = size - 1;
        this.shift = 64 - Integer.numberOfTrailingZeros(size);
    }

    /**
     * @param backing the memory region the buffer is in
     * @param offset the buffer's part's offset in {@code backing}
     * @param length the bytes the caller needs from there (within {@code backing})
     * @param span how long to make a new slice: at least {@code length}, cut at the end of
     *     {@code backing}, so that the next use of this buffer with another length finds it
     * @return a slice of {@code backing} from {@code offset} of at least {@code length} bytes, from
     *     the cache when one was made before for this address
     */
    MemorySegment slice(MemorySegment backing, long offset, long length, long span) {
        long address = backing.address() + offset;
        // Fibonacci hashing: the high bits of the product spread buffers a fixed stride apart
        int home = (int) ((address * 0x9E3779B97F4A7C15L) >>> shift);
        for (int p = 0; p < PROBES; p++) {
            int i = (home + p) & mask;
            if (addresses[i] == address && lengths[i] >= length && slices[i] != null) {
                return slices[i];
            }
            if (slices[i] == null) {
                home = i;
                break;
            }
        }
        long n = Math.max(length, Math.min(span, backing.byteSize() - offset));
        MemorySegment slice = backing.asSlice(offset, n);
        addresses[home] = address;
        lengths[home] = n;
        slices[home] = slice;
        return slice;
    }
}

package io.vringj.ring;

import static io.vringj.ring.RingFormat.DESC_LE_INT;
import static io.vringj.ring.RingFormat.DESC_LE_LONG;
import static io.vringj.ring.RingFormat.DESC_LE_SHORT;
import static io.vringj.ring.RingFormat.SHORT;

import io.vringj.memory.TranslationSink;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * One translated ring area (descriptor table, avail or used ring, an event suppression
 * structure) or indirect table, as the device reaches it: the pieces an {@code AddressSpace}
 * delivered, kept until the address space's epoch moves. Offsets are from the area's first
 * byte. Filling and reading allocate nothing once the piece arrays are large enough.
 *
 * <pre>
 *   contiguous (one piece, or pieces adjacent in one backing segment — the usual case):
 *     segment, base        field at off  →  segment[base + off]          one null check
 *   fragmented (an IOMMU mapped the area's pages to scattered memory):
 *     start[k] .. start[k]+length[k]-1  →  backing[k][offset[k] ...]   a hint, then a search
 * </pre>
 *
 * <p>A ring area's pieces are checked by {@link #alignedPieces(int)}: each starts at an area
 * offset and a host address that are multiples of the area's alignment, so no field of the
 * layout straddles two pieces and the ordered accesses stay atomic. An indirect table has no
 * such rule [virtio 2.7.5.3]: a field that straddles two of its pieces is read byte by byte.
 *
 * <p>Owned by the device thread of its queue.
 */
final class RingArea implements TranslationSink {
    /** The contiguous view, or {@code null} when the area is fragmented. */
    private MemorySegment segment;
    private long base;

    private int count;
    private MemorySegment[] backing = new MemorySegment[1];
    private long[] offset = new long[1];
    private long[] start = new long[1];
    private long[] length = new long[1];
    private long filled;
    /** The piece the last fragmented access found; checked first by the next. */
    private int hint;

    /** Forgets the pieces before a new translation fills the area. */
    void clear() {
        count = 0;
        filled = 0;
        hint = 0;
        segment = null;
    }

    @Override
    public void accept(MemorySegment pieceBacking, long pieceOffset, long pieceLength) {
        int k = count - 1;
        if (k >= 0 && backing[k] == pieceBacking && offset[k] + length[k] == pieceOffset) {
            // adjacent in the same backing segment: one piece (IOTLB entries of consecutive pages)
            length[k] += pieceLength;
        } else {
            if (count == backing.length) {
                // slow path, once per larger piece count this queue meets
                int n = count * 2;
                backing = Arrays.copyOf(backing, n);
                offset = Arrays.copyOf(offset, n);
                start = Arrays.copyOf(start, n);
                length = Arrays.copyOf(length, n);
            }
            backing[count] = pieceBacking;
            offset[count] = pieceOffset;
            start[count] = filled;
            length[count] = pieceLength;
            count++;
        }
        filled += pieceLength;
        if (count == 1) {
            segment = backing[0];
            base = offset[0];
        } else {
            segment = null;
        }
    }

    /** @return how many pieces the area is in (1 when contiguous) */
    int pieces() {
        return count;
    }

    /** @return the bytes delivered since {@link #clear()} */
    long filled() {
        return filled;
    }

    /**
     * Whether every piece starts at an area offset and a host address that are multiples of
     * {@code align} (a power of two), so no field of a ring layout straddles two pieces.
     */
    boolean alignedPieces(int align) {
        for (int k = 0; k < count; k++) {
            if ((start[k] & (align - 1)) != 0 || ((backing[k].address() + offset[k]) & (align - 1)) != 0) {
                return false;
            }
        }
        return true;
    }

    /** @return the piece holding area offset {@code off} (fragmented areas only) */
    private int piece(long off) {
        int h = hint;
        if (h < count && off - start[h] >= 0 && off - start[h] < length[h]) {
            return h;
        }
        int lo = 0;
        int hi = count - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (start[mid] <= off) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        hint = lo;
        return lo;
    }

    /** @return whether {@code [off, off + size)} lies within piece {@code k} */
    private boolean within(int k, long off, long size) {
        return off + size <= start[k] + length[k];
    }

    short getShort(long off) {
        MemorySegment s = segment;
        if (s != null) {
            return s.get(DESC_LE_SHORT, base + off);
        }
        int k = piece(off);
        if (within(k, off, 2)) {
            return backing[k].get(DESC_LE_SHORT, offset[k] + off - start[k]);
        }
        return (short) straddling(off, 2);
    }

    int getInt(long off) {
        MemorySegment s = segment;
        if (s != null) {
            return s.get(DESC_LE_INT, base + off);
        }
        int k = piece(off);
        if (within(k, off, 4)) {
            return backing[k].get(DESC_LE_INT, offset[k] + off - start[k]);
        }
        return (int) straddling(off, 4);
    }

    long getLong(long off) {
        MemorySegment s = segment;
        if (s != null) {
            return s.get(DESC_LE_LONG, base + off);
        }
        int k = piece(off);
        if (within(k, off, 8)) {
            return backing[k].get(DESC_LE_LONG, offset[k] + off - start[k]);
        }
        return straddling(off, 8);
    }

    /** A little-endian field across pieces (indirect tables only), read byte by byte. */
    private long straddling(long off, int size) {
        long v = 0;
        for (int i = 0; i < size; i++) {
            int k = piece(off + i);
            long b = backing[k].get(ValueLayout.JAVA_BYTE, offset[k] + off + i - start[k]) & 0xFF;
            v |= b << (8 * i);
        }
        return v;
    }

    // Writes and ordered reads are on ring areas only, whose pieces alignedPieces() checked: the
    // field lies in one piece at an aligned host address.

    void setShort(long off, short value) {
        MemorySegment s = segment;
        if (s != null) {
            s.set(DESC_LE_SHORT, base + off, value);
            return;
        }
        int k = piece(off);
        backing[k].set(DESC_LE_SHORT, offset[k] + off - start[k], value);
    }

    void setInt(long off, int value) {
        MemorySegment s = segment;
        if (s != null) {
            s.set(DESC_LE_INT, base + off, value);
            return;
        }
        int k = piece(off);
        backing[k].set(DESC_LE_INT, offset[k] + off - start[k], value);
    }

    /** Acquire load of an {@code le16}; the caller names the release store it pairs with. */
    short getShortAcquire(long off) {
        MemorySegment s = segment;
        if (s != null) {
            return (short) SHORT.getAcquire(s, base + off);
        }
        int k = piece(off);
        return (short) SHORT.getAcquire(backing[k], offset[k] + off - start[k]);
    }

    /** Opaque load of an {@code le16} (after the caller's full fence). */
    short getShortOpaque(long off) {
        MemorySegment s = segment;
        if (s != null) {
            return (short) SHORT.getOpaque(s, base + off);
        }
        int k = piece(off);
        return (short) SHORT.getOpaque(backing[k], offset[k] + off - start[k]);
    }

    /** Release store of an {@code le16}; the caller names the acquire load it pairs with. */
    void setShortRelease(long off, short value) {
        MemorySegment s = segment;
        if (s != null) {
            SHORT.setRelease(s, base + off, value);
            return;
        }
        int k = piece(off);
        SHORT.setRelease(backing[k], offset[k] + off - start[k], value);
    }
}

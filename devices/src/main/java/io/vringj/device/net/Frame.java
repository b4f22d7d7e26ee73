package io.vringj.device.net;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * An Ethernet frame where it lies in shared memory, as a list of pieces: each a (backing
 * segment, offset, length) triple, the frame being their concatenation. A frame that sits in one
 * buffer is one piece; a frame the driver scattered over descriptors, or a received frame that
 * spans merged rx buffers, has several. Nothing is copied to show it.
 *
 * <p>Offsets are frame offsets: 0 is the first byte of the Ethernet header, the virtio-net header
 * is not part of the frame. Multi-byte reads are in network (big-endian) order and may cross
 * pieces; the common case, a frame in one piece, reads straight from its segment.
 *
 * <p>A frame is a reusable view handed to a callback and valid only until the callback
 * returns: the memory goes back to the peer afterwards. Owned by one thread; reading it
 * allocates nothing.
 */
public final class Frame {
    private static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private MemorySegment[] segments;
    private long[] offsets;
    private long[] lengths;
    private int count;
    private long length;
    /** Set by {@link #locate(long)}: the offset inside the piece it returned. */
    private long within;

    /**
     * @param initialPieces how many pieces to make room for; more grow the arrays (once)
     */
    Frame(int initialPieces) {
        int n = Math.max(1, initialPieces);
        segments = new MemorySegment[n];
        offsets = new long[n];
        lengths = new long[n];
    }

    /** Empties the view (drops the segment references). */
    void clear() {
        Arrays.fill(segments, 0, count, null);
        count = 0;
        length = 0;
    }

    /** Appends a piece of at least one byte. */
    void add(MemorySegment segment, long offset, long pieceLength) {
        if (pieceLength <= 0) {
            return;
        }
        if (count == segments.length) {
            int n = count * 2;
            segments = Arrays.copyOf(segments, n);
            offsets = Arrays.copyOf(offsets, n);
            lengths = Arrays.copyOf(lengths, n);
        }
        segments[count] = segment;
        offsets[count] = offset;
        lengths[count] = pieceLength;
        count++;
        // every piece is below 2^32 bytes and there are at most 2^31 of them: no overflow
        length += pieceLength;
    }

    /**
     * Makes this view show bytes {@code [from, from + n)} of {@code other}.
     */
    void sliceOf(Frame other, long from, long n) {
        clear();
        other.checkRange(from, n);
        if (n == 0) {
            return;
        }
        int p = other.locate(from);
        long skip = other.within;
        long left = n;
        while (left > 0) {
            long take = Math.min(other.lengths[p] - skip, left);
            add(other.segments[p], other.offsets[p] + skip, take);
            left -= take;
            skip = 0;
            p++;
        }
    }

    /** @return the frame's length in bytes */
    public long length() {
        return length;
    }

    /** @return how many pieces the frame is in */
    public int pieceCount() {
        return count;
    }

    /**
     * @param piece 0..pieceCount-1
     * @return the segment the piece lies in
     */
    public MemorySegment pieceSegment(int piece) {
        return segments[checkPiece(piece)];
    }

    /**
     * @param piece 0..pieceCount-1
     * @return the piece's offset in {@link #pieceSegment(int)}
     */
    public long pieceOffset(int piece) {
        return offsets[checkPiece(piece)];
    }

    /**
     * @param piece 0..pieceCount-1
     * @return the piece's length
     */
    public long pieceLength(int piece) {
        return lengths[checkPiece(piece)];
    }

    /**
     * @param offset a frame offset
     * @return the byte there, unsigned
     * @throws IndexOutOfBoundsException if outside the frame
     */
    public int getByte(long offset) {
        checkRange(offset, 1);
        int p = locate(offset);
        return Byte.toUnsignedInt(segments[p].get(ValueLayout.JAVA_BYTE, offsets[p] + within));
    }

    /**
     * @param offset a frame offset
     * @return the 16-bit big-endian value there, unsigned
     * @throws IndexOutOfBoundsException if outside the frame
     */
    public int getShort(long offset) {
        checkRange(offset, 2);
        int p = locate(offset);
        if (lengths[p] - within >= 2) {
            return Short.toUnsignedInt(segments[p].get(BE16, offsets[p] + within));
        }
        return getByte(offset) << 8 | getByte(offset + 1);
    }

    /**
     * @param offset a frame offset
     * @return the 32-bit big-endian value there
     * @throws IndexOutOfBoundsException if outside the frame
     */
    public int getInt(long offset) {
        checkRange(offset, 4);
        int p = locate(offset);
        if (lengths[p] - within >= 4) {
            return segments[p].get(BE32, offsets[p] + within);
        }
        return getShort(offset) << 16 | getShort(offset + 2);
    }

    /**
     * @param offset a frame offset
     * @return the 48-bit big-endian value there (a MAC address), in the low bits
     * @throws IndexOutOfBoundsException if outside the frame
     */
    public long getMac(long offset) {
        checkRange(offset, 6);
        return (long) getShort(offset) << 32 | Integer.toUnsignedLong(getInt(offset + 2));
    }

    /**
     * Copies bytes of the frame out. Allocation-free.
     *
     * @param offset a frame offset
     * @param dst the destination
     * @param dstOffset where in {@code dst}
     * @param n how many bytes
     * @throws IndexOutOfBoundsException if the range is outside the frame or {@code dst}
     */
    public void copyTo(long offset, MemorySegment dst, long dstOffset, long n) {
        checkRange(offset, n);
        if (n == 0) {
            return;
        }
        int p = locate(offset);
        long skip = within;
        long left = n;
        while (left > 0) {
            long take = Math.min(lengths[p] - skip, left);
            MemorySegment.copy(segments[p], offsets[p] + skip, dst, dstOffset, take);
            dstOffset += take;
            left -= take;
            skip = 0;
            p++;
        }
    }

    /**
     * The 16-bit one's complement sum of bytes {@code [offset, offset + n)} taken as big-endian
     * 16-bit words from {@code offset} (an odd last byte padded with zero), folded to 16 bits: the
     * Internet checksum's sum [RFC 1071]. The checksum field to write is its complement; data
     * whose checksum is right sums to {@code 0xFFFF}. Reads 8 bytes at a time.
     *
     * @param offset a frame offset
     * @param n how many bytes
     * @return the folded sum, 0..0xFFFF
     * @throws IndexOutOfBoundsException if the range is outside the frame
     */
    public int onesComplementSum(long offset, long n) {
        checkRange(offset, n);
        if (n == 0) {
            return 0;
        }
        int p = locate(offset);
        long skip = within;
        long left = n;
        long done = 0;
        long sum = 0;
        while (left > 0) {
            long take = Math.min(lengths[p] - skip, left);
            int part = sumPiece(segments[p], offsets[p] + skip, take);
            // a piece that starts at an odd position has its bytes in swapped word halves [RFC 1071 2(B)]
            sum += (done & 1) == 0 ? part : Integer.reverseBytes(part) >>> 16;
            done += take;
            left -= take;
            skip = 0;
            p++;
        }
        return fold(sum);
    }

    /** The folded sum of one contiguous range, as if it started on a word boundary. */
    static int sumPiece(MemorySegment segment, long offset, long n) {
        long sum = 0;
        long i = 0;
        // each step adds at most 2^33 and a range is below 2^32 bytes (2^29 steps): no overflow
        for (; i + 8 <= n; i += 8) {
            long v = segment.get(BE64, offset + i);
            sum += (v >>> 32) + (v & 0xFFFF_FFFFL);
        }
        if (i + 4 <= n) {
            sum += Integer.toUnsignedLong(segment.get(BE32, offset + i));
            i += 4;
        }
        if (i + 2 <= n) {
            sum += Short.toUnsignedInt(segment.get(BE16, offset + i));
            i += 2;
        }
        if (i < n) {
            sum += Byte.toUnsignedInt(segment.get(ValueLayout.JAVA_BYTE, offset + i)) << 8;
        }
        return fold(sum);
    }

    /**
     * Folds a sum of 16-bit words to 16 bits with end-around carry.
     *
     * @param sum a non-negative sum
     * @return the folded value, 0..0xFFFF
     */
    static int fold(long sum) {
        while ((sum >>> 16) != 0) {
            sum = (sum & 0xFFFF) + (sum >>> 16);
        }
        return (int) sum;
    }

    // --- writes: the device side fills rx frames through RxPort, which calls these ---

    void putByte(long offset, int value) {
        checkRange(offset, 1);
        int p = locate(offset);
        segments[p].set(ValueLayout.JAVA_BYTE, offsets[p] + within, (byte) value);
    }

    void putShort(long offset, int value) {
        checkRange(offset, 2);
        int p = locate(offset);
        if (lengths[p] - within >= 2) {
            segments[p].set(BE16, offsets[p] + within, (short) value);
            return;
        }
        putByte(offset, value >>> 8);
        putByte(offset + 1, value);
    }

    void putInt(long offset, int value) {
        checkRange(offset, 4);
        int p = locate(offset);
        if (lengths[p] - within >= 4) {
            segments[p].set(BE32, offsets[p] + within, value);
            return;
        }
        putShort(offset, value >>> 16);
        putShort(offset + 2, value);
    }

    void putMac(long offset, long mac) {
        checkRange(offset, 6);
        putShort(offset, (int) (mac >>> 32));
        putInt(offset + 2, (int) mac);
    }

    void copyFrom(long offset, MemorySegment src, long srcOffset, long n) {
        checkRange(offset, n);
        if (n == 0) {
            return;
        }
        int p = locate(offset);
        long skip = within;
        long left = n;
        while (left > 0) {
            long take = Math.min(lengths[p] - skip, left);
            MemorySegment.copy(src, srcOffset, segments[p], offsets[p] + skip, take);
            srcOffset += take;
            left -= take;
            skip = 0;
            p++;
        }
    }

    void copyFrom(long offset, Frame src, long srcOffset, long n) {
        checkRange(offset, n);
        src.checkRange(srcOffset, n);
        if (n == 0) {
            return;
        }
        int d = locate(offset);
        long dSkip = within;
        int s = src.locate(srcOffset);
        long sSkip = src.within;
        long left = n;
        while (left > 0) {
            long take = Math.min(Math.min(lengths[d] - dSkip, src.lengths[s] - sSkip), left);
            MemorySegment.copy(src.segments[s], src.offsets[s] + sSkip, segments[d], offsets[d] + dSkip, take);
            left -= take;
            dSkip += take;
            sSkip += take;
            if (dSkip == lengths[d]) {
                d++;
                dSkip = 0;
            }
            if (sSkip == src.lengths[s]) {
                s++;
                sSkip = 0;
            }
        }
    }

    /** Finds the piece holding {@code offset} (inside the frame) and leaves the rest in {@link #within}. */
    private int locate(long offset) {
        long rest = offset;
        int p = 0;
        while (rest >= lengths[p]) {
            rest -= lengths[p];
            p++;
        }
        within = rest;
        return p;
    }

    private void checkRange(long offset, long n) {
        if (offset < 0 || n < 0 || offset > length - n) {
            throw new IndexOutOfBoundsException("range [" + offset + ", +" + n + ") is outside the frame's " + length
                + " bytes");
        }
    }

    private int checkPiece(int piece) {
        if (piece < 0 || piece >= count) {
            throw new IndexOutOfBoundsException("piece " + piece + " of " + count);
        }
        return piece;
    }

    @Override
    public String toString() {
        return "Frame[" + length + " bytes in " + count + " pieces]";
    }
}

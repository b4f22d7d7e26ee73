package io.vringj.ring;

import io.vringj.memory.TranslationSink;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One validated chain as the device sees it after {@link DeviceQueue#pop(DescriptorChain)}: its
 * head, then its memory as pieces — readable pieces first, writable pieces after — each a
 * (backing segment, offset, length) triple already checked against the device's
 * {@link io.vringj.memory.AddressSpace}. A descriptor usually gives one piece; a buffer that
 * spans IOTLB entries gives several, unless their memory is adjacent (then they merge).
 *
 * <p>Reusable: popping into an existing chain allocates nothing once its arrays have grown to
 * the longest chain seen. The {@code readable(i)} / {@code writable(i)} slice accessors
 * allocate a segment and are for convenience; the copy methods and the raw triples do not.
 *
 * <p>Owned by the device thread; valid until the chain is popped into again.
 */
public final class DescriptorChain {
    private static final int INITIAL_PIECES = 16;

    private MemorySegment[] backing = new MemorySegment[INITIAL_PIECES];
    private long[] offsets = new long[INITIAL_PIECES];
    private long[] lengths = new long[INITIAL_PIECES];
    private int pieces;
    /** Set when a translation offered a piece past {@link DeviceQueue#MAX_CHAIN_PIECES}; the piece was dropped. */
    private boolean tooManyPieces;
    /** Pieces before this index belong to earlier descriptors; later ones may merge. */
    private int descriptorStart;
    private int readablePieces;
    private int head = -1;
    private int descriptors;
    private long readableLength;
    private long writableLength;

    /** Collects translated pieces into the arrays; writable or not is set by the walker. */
    final TranslationSink sink = this::append;

    /** Creates an empty chain, ready to be popped into. */
    public DescriptorChain() {
    }

    void reset(int head) {
        // drop references so a chain does not keep a replaced guest memory reachable
        Arrays.fill(backing, 0, pieces, null);
        this.head = head;
        pieces = 0;
        tooManyPieces = false;
        descriptorStart = 0;
        readablePieces = 0;
        descriptors = 0;
        readableLength = 0;
        writableLength = 0;
    }

    private void append(MemorySegment segment, long offset, long length) {
        int last = pieces - 1;
        if (last >= descriptorStart && backing[last] == segment && offsets[last] + lengths[last] == offset) {
            // one buffer over two IOTLB entries whose memory is adjacent: still one piece
            lengths[last] += length;
            return;
        }
        if (pieces == DeviceQueue.MAX_CHAIN_PIECES) {
            // the walker fails the chain after this translation; the arrays never grow past the cap
            tooManyPieces = true;
            return;
        }
        if (pieces == backing.length) {
            int n = Math.min(pieces * 2, DeviceQueue.MAX_CHAIN_PIECES);
            backing = Arrays.copyOf(backing, n);
            offsets = Arrays.copyOf(offsets, n);
            lengths = Arrays.copyOf(lengths, n);
        }
        backing[pieces] = segment;
        offsets[pieces] = offset;
        lengths[pieces] = length;
        pieces++;
    }

    /** @return whether the last translation offered more pieces than a chain may hold */
    boolean tooManyPieces() {
        return tooManyPieces;
    }

    void head(int head) {
        this.head = head;
    }

    void addReadableDescriptor(long length) {
        readablePieces = pieces;
        descriptorStart = pieces;
        readableLength += length;
        descriptors++;
    }

    void addWritableDescriptor(long length) {
        descriptorStart = pieces;
        writableLength += length;
        descriptors++;
    }

    void countDescriptor() {
        descriptors++;
    }

    /** @return the chain's head index (what the device reports in the used ring) */
    public int head() {
        return head;
    }

    /** @return how many descriptors the walk visited, indirect table descriptors included */
    public int descriptorCount() {
        return descriptors;
    }

    /** @return total bytes the device may read */
    public long readableLength() {
        return readableLength;
    }

    /** @return total bytes the device may write */
    public long writableLength() {
        return writableLength;
    }

    /** @return how many pieces there are, readable and writable */
    public int pieceCount() {
        return pieces;
    }

    /** @return how many of the pieces are readable (they come first) */
    public int readablePieceCount() {
        return readablePieces;
    }

    /** @return how many of the pieces are writable (they come after the readable ones) */
    public int writablePieceCount() {
        return pieces - readablePieces;
    }

    /**
     * @param piece 0..pieceCount-1
     * @return the segment the piece lies in
     */
    public MemorySegment pieceSegment(int piece) {
        return backing[check(piece)];
    }

    /**
     * @param piece 0..pieceCount-1
     * @return the piece's offset in {@link #pieceSegment(int)}
     */
    public long pieceOffset(int piece) {
        return offsets[check(piece)];
    }

    /**
     * @param piece 0..pieceCount-1
     * @return the piece's length
     */
    public long pieceLength(int piece) {
        return lengths[check(piece)];
    }

    /**
     * @param i 0..readablePieceCount-1
     * @return the i-th readable piece as a read-only slice (allocates)
     */
    public MemorySegment readable(int i) {
        if (i < 0 || i >= readablePieces) {
            throw new IndexOutOfBoundsException("readable piece " + i + " of " + readablePieces);
        }
        return backing[i].asSlice(offsets[i], lengths[i]).asReadOnly();
    }

    /**
     * @param i 0..writablePieceCount-1
     * @return the i-th writable piece as a slice (allocates)
     */
    public MemorySegment writable(int i) {
        if (i < 0 || i >= pieces - readablePieces) {
            throw new IndexOutOfBoundsException("writable piece " + i + " of " + (pieces - readablePieces));
        }
        int p = readablePieces + i;
        return backing[p].asSlice(offsets[p], lengths[p]);
    }

    /**
     * Copies readable bytes of the chain, as if its readable pieces were one buffer, into
     * {@code dst}. Allocation-free.
     *
     * @param chainOffset where to start in the readable bytes
     * @param dst the destination
     * @param dstOffset where to start in {@code dst}
     * @param length how many bytes
     * @throws IndexOutOfBoundsException if the range is not inside the readable bytes
     */
    public void copyFromReadable(long chainOffset, MemorySegment dst, long dstOffset, long length) {
        checkRange(chainOffset, length, readableLength, "readable");
        copy(0, readablePieces, chainOffset, dst, dstOffset, length, false);
    }

    /**
     * Copies {@code src} into the writable bytes of the chain, as if its writable pieces were
     * one buffer. Allocation-free.
     *
     * @param chainOffset where to start in the writable bytes
     * @param src the source
     * @param srcOffset where to start in {@code src}
     * @param length how many bytes
     * @throws IndexOutOfBoundsException if the range is not inside the writable bytes
     */
    public void copyToWritable(long chainOffset, MemorySegment src, long srcOffset, long length) {
        checkRange(chainOffset, length, writableLength, "writable");
        copy(readablePieces, pieces, chainOffset, src, srcOffset, length, true);
    }

    private void copy(int from, int to, long chainOffset, MemorySegment other, long otherOffset, long length,
                      boolean intoChain) {
        long skip = chainOffset;
        long left = length;
        for (int p = from; p < to && left > 0; p++) {
            long len = lengths[p];
            if (skip >= len) {
                skip -= len;
                continue;
            }
            long n = Math.min(len - skip, left);
            if (intoChain) {
                MemorySegment.copy(other, otherOffset, backing[p], offsets[p] + skip, n);
            } else {
                MemorySegment.copy(backing[p], offsets[p] + skip, other, otherOffset, n);
            }
            otherOffset += n;
            left -= n;
            skip = 0;
        }
    }

    private static void checkRange(long offset, long length, long total, String what) {
        if (offset < 0 || length < 0 || offset > total - length) {
            throw new IndexOutOfBoundsException("range [" + offset + ", +" + length + ") is outside the chain's "
                + total + " " + what + " bytes");
        }
    }

    private int check(int piece) {
        if (piece < 0 || piece >= pieces) {
            throw new IndexOutOfBoundsException("piece " + piece + " of " + pieces);
        }
        return piece;
    }

    @Override
    public String toString() {
        return "DescriptorChain[head=" + head + ", descriptors=" + descriptors + ", readable=" + readableLength
            + " bytes in " + readablePieces + " pieces, writable=" + writableLength + " bytes in "
            + (pieces - readablePieces) + " pieces]";
    }
}

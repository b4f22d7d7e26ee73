package io.vringj.device.net;

import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.MissParking;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * The device's way to put a frame on an rx queue, in place: {@link #begin(long)} takes posted rx
 * buffers for the header and the frame, the caller fills the frame through the put and copy
 * methods, {@link #commit()} writes the header and returns the buffers as used. The used entries
 * are published with the pair's other work, all of one frame in the same publication.
 *
 * <pre>
 *   without MRG_RXBUF: one rx chain holds header + frame [virtio 5.1.6.3.1]; num_buffers = 1
 *   with MRG_RXBUF:    chains are taken until they hold header + frame [virtio 5.1.6.4]
 *       chain 0: ┌ header (num_buffers = n) ┬ frame bytes ...  ┐
 *       chain 1: ┌ ... frame bytes ...                          ┐
 *       chain n-1: ┌ ... last frame bytes ┬ (unused) ┐
 * </pre>
 *
 * <p>The device pops rx chains only when it has a frame. With {@code MRG_RXBUF}, chains popped
 * for a frame that then does not fit (too few posted) stay held, in flight, for the next frame:
 * a chain once popped cannot be given back. {@link NetQueuePair#close()} returns held chains with
 * 0 bytes when the queue stops.
 *
 * <p>Behind an IOTLB a held chain's pieces are translations from the critical section that
 * popped it; {@link #begin} uses them only if the translations have not changed since (the
 * {@link MissParking.Translations#stamp() stamp} read before that pop is still current), else it
 * returns the held chains used with 0 bytes, untouched, before popping new ones [vhost: a
 * translation is not used after the invalidation that removed it returned]. A miss while popping
 * drops the frame ({@link NetDrop#RX_TRANSLATION_MISS}) and parks the rx side
 * ({@link MissParking}): until a retry may succeed, frames are dropped without touching the ring.
 *
 * <p>Bad rx chains (a readable descriptor, or shorter than the header) are returned at once with
 * 0 bytes and counted as {@link NetDrop#BAD_RX_BUFFER}; Linux and DPDK drivers take a used
 * length shorter than the header as an error and repost the buffer.
 *
 * <p>Owned by the pair's worker thread. Allocation-free once its arrays have grown to the most
 * chains and pieces one frame needed.
 */
public final class RxPort {
    /** The most rx chains one frame may span with MRG_RXBUF (as Linux vhost-net's UIO_MAXIOV). */
    public static final int MAX_MERGED_BUFFERS = 1024;
    private static final int INITIAL = 16;

    private final DeviceQueue rx;
    private final NetStatistics statistics;
    private final int headerSize;
    private final boolean mergeable;
    private final long maxFrameLength;
    private final int maxChains;
    private final DescriptorChain chain = new DescriptorChain();
    private final MemorySegment headerScratch = MemorySegment.ofArray(new byte[VirtioNetHeader.SIZE]);

    // held chains, in pop order: their heads, writable bytes and pieces
    private int[] heads = new int[INITIAL];
    private long[] writable = new long[INITIAL];
    private int[] pieceEnd = new int[INITIAL];
    private int held;
    private long heldBytes;
    private final Frame heldPieces = new Frame(INITIAL);

    // the frame being filled
    private final Frame whole = new Frame(INITIAL);
    private final Frame frame = new Frame(INITIAL);
    private boolean open;
    private int frameChains;

    private int usedAdded;
    private VirtqueueException failure;

    /** The IOTLB's view behind an IOTLB, else {@code null}. */
    private final MissParking.Translations translations;
    /** The rx side's miss rule behind an IOTLB, else {@code null}. */
    private final MissParking parking;
    /** The stamp read before the oldest held chain was popped (meaningful while {@code held > 0}). */
    private long heldStamp;

    RxPort(DeviceQueue rx, NetStatistics statistics, long maxFrameLength, MissParking.Translations translations) {
        this.rx = Objects.requireNonNull(rx, "rx");
        this.translations = translations;
        this.parking = translations == null ? null : new MissParking(translations);
        this.statistics = Objects.requireNonNull(statistics, "statistics");
        this.headerSize = VirtioNetHeader.size(rx.features());
        this.mergeable = NetFeatures.mergeableRxBuffers(rx.features());
        this.maxFrameLength = maxFrameLength;
        this.maxChains = Math.min(rx.queueSize(), MAX_MERGED_BUFFERS);
    }

    /**
     * Takes rx buffers for a frame of {@code frameLength} bytes. On false the frame is dropped
     * and counted ({@link NetDrop#NO_RX_BUFFER}, {@link NetDrop#FRAME_TOO_LONG},
     * {@link NetDrop#RX_TRANSLATION_MISS}), or the rx queue broke (the pair then fails); do not
     * fill it. A frame begun and not committed is discarded by the next begin or when the
     * handler returns.
     *
     * @param frameLength the frame's length, without the virtio-net header
     * @return whether the frame may be filled and committed
     */
    public boolean begin(long frameLength) {
        open = false;
        if (failure != null) {
            return false;
        }
        if (frameLength < 0 || frameLength > maxFrameLength) {
            statistics.drop(NetDrop.FRAME_TOO_LONG);
            return false;
        }
        if (held > 0 && translations != null && translations.stamp() != heldStamp) {
            // the held chains' translations may be gone: give them back unused rather than write through them
            releaseHeld();
        }
        // frameLength <= maxFrameLength < 2^31 and headerSize is 12: no overflow
        long need = headerSize + frameLength;
        if (!mergeable) {
            if (held == 0 && !popOne()) {
                return false;
            }
            if (writable[0] < need) {
                // a chain too small for a whole frame; it cannot hold any later frame either [virtio 5.1.6.3.1]
                statistics.drop(NetDrop.FRAME_TOO_LONG);
                rx.addUsed(heads[0], 0);
                usedAdded++;
                release(1);
                return false;
            }
            frameChains = 1;
        } else {
            while (heldBytes < need) {
                if (held == maxChains) {
                    statistics.drop(NetDrop.FRAME_TOO_LONG);
                    return false;
                }
                if (!popOne()) {
                    return false;
                }
            }
            long sum = 0;
            int k = 0;
            while (sum < need) {
                sum += writable[k++];
            }
            frameChains = k;
        }
        whole.sliceOf(heldPieces, 0, need);
        frame.sliceOf(whole, headerSize, frameLength);
        open = true;
        return true;
    }

    /** @return the length of the frame begun, or -1 if none is open */
    public long length() {
        return open ? frame.length() : -1;
    }

    /**
     * @param offset a frame offset
     * @param value the byte
     */
    public void putByte(long offset, int value) {
        checkOpen();
        frame.putByte(offset, value);
    }

    /**
     * @param offset a frame offset
     * @param value a 16-bit value, written big-endian
     */
    public void putShort(long offset, int value) {
        checkOpen();
        frame.putShort(offset, value);
    }

    /**
     * @param offset a frame offset
     * @param value a 32-bit value, written big-endian
     */
    public void putInt(long offset, int value) {
        checkOpen();
        frame.putInt(offset, value);
    }

    /**
     * @param offset a frame offset
     * @param mac a MAC address in the low 48 bits, written big-endian (wire order)
     */
    public void putMac(long offset, long mac) {
        checkOpen();
        frame.putMac(offset, mac);
    }

    /**
     * Copies bytes of another frame (a tx frame, in place) into this one.
     *
     * @param offset a frame offset in this frame
     * @param src the source frame
     * @param srcOffset where in {@code src}
     * @param n how many bytes
     */
    public void copyFrom(long offset, Frame src, long srcOffset, long n) {
        checkOpen();
        frame.copyFrom(offset, src, srcOffset, n);
    }

    /**
     * Copies bytes of a segment into the frame.
     *
     * @param offset a frame offset
     * @param src the source
     * @param srcOffset where in {@code src}
     * @param n how many bytes
     */
    public void copyFrom(long offset, MemorySegment src, long srcOffset, long n) {
        checkOpen();
        frame.copyFrom(offset, src, srcOffset, n);
    }

    /**
     * Writes the header and returns the frame's buffers as used (published with the pair's other
     * work).
     *
     * @throws IllegalStateException if no frame is open
     */
    public void commit() {
        checkOpen();
        int numBuffers = mergeable ? frameChains : 1;
        if (whole.pieceLength(0) >= headerSize) {
            VirtioNetHeader.write(whole.pieceSegment(0), whole.pieceOffset(0), headerSize, numBuffers);
        } else {
            // a driver may split the first buffer's header over descriptors [virtio 2.6.4]
            VirtioNetHeader.write(headerScratch, 0, headerSize, numBuffers);
            whole.copyFrom(0, headerScratch, 0, headerSize);
        }
        long left = whole.length();
        for (int i = 0; i < frameChains; i++) {
            long n = Math.min(writable[i], left);
            rx.addUsed(heads[i], n);
            left -= n;
        }
        usedAdded += frameChains;
        statistics.rx(frame.length());
        open = false;
        release(frameChains);
    }

    /** Discards a frame begun and not committed; its chains stay held. */
    void abort() {
        open = false;
    }

    /** @return whether used entries were added since the last call (and forgets them) */
    boolean takeUsedAdded() {
        boolean any = usedAdded > 0;
        usedAdded = 0;
        return any;
    }

    /** @return the fatal rx queue error met while popping, or {@code null} */
    VirtqueueException failure() {
        return failure;
    }

    /** @return how many popped rx chains are held for a later frame */
    public int heldBuffers() {
        return held;
    }

    /** Returns every held chain as used with 0 bytes (the queue is stopping). */
    void releaseHeld() {
        open = false;
        if (rx.isBroken()) {
            return;
        }
        for (int i = 0; i < held; i++) {
            rx.addUsed(heads[i], 0);
        }
        usedAdded += held;
        release(held);
    }

    /**
     * Pops one good rx chain into the held list; bad ones are returned and counted on the way.
     *
     * @return false if none is available (counted), or the queue broke ({@link #failure})
     */
    private boolean popOne() {
        while (true) {
            if (parking != null && parking.stillParked()) {
                statistics.drop(NetDrop.RX_TRANSLATION_MISS);
                return false;
            }
            // read before the attempt: an update landing during it moves the stamp past this value
            long stamp = parking == null ? 0 : parking.beforeAttempt();
            int popped;
            try {
                popped = rx.tryPop(chain);
            } catch (VirtqueueException e) {
                // tryPop reports a miss as MISSED; what it throws broke the queue
                if (e.fatal()) {
                    failure = e;
                } else {
                    statistics.drop(NetDrop.RX_TRANSLATION_MISS);
                }
                return false;
            }
            if (popped == DeviceQueue.MISSED) {
                // nothing was consumed; the IOTLB has asked for the entry, the frame does not wait for it
                if (parking != null) {
                    parking.park(stamp, rx.missAddress(), rx.missAccess());
                }
                statistics.drop(NetDrop.RX_TRANSLATION_MISS);
                return false;
            }
            if (popped == DeviceQueue.EMPTY) {
                statistics.drop(NetDrop.NO_RX_BUFFER);
                return false;
            }
            if (chain.readablePieceCount() > 0 || chain.writableLength() < headerSize) {
                statistics.drop(NetDrop.BAD_RX_BUFFER);
                rx.addUsed(chain.head(), 0);
                usedAdded++;
                continue;
            }
            if (held == 0) {
                heldStamp = stamp;
            }
            hold(chain);
            return true;
        }
    }

    private void hold(DescriptorChain c) {
        if (held == heads.length) {
            int n = held * 2;
            heads = Arrays.copyOf(heads, n);
            writable = Arrays.copyOf(writable, n);
            pieceEnd = Arrays.copyOf(pieceEnd, n);
        }
        for (int p = c.readablePieceCount(); p < c.pieceCount(); p++) {
            heldPieces.add(c.pieceSegment(p), c.pieceOffset(p), c.pieceLength(p));
        }
        heads[held] = c.head();
        writable[held] = c.writableLength();
        pieceEnd[held] = heldPieces.pieceCount();
        // every chain is below 2^32 bytes and at most MAX_MERGED_BUFFERS are held: no overflow
        heldBytes += c.writableLength();
        held++;
    }

    /** Forgets the first {@code n} held chains (returned as used by the caller). */
    private void release(int n) {
        if (n == held) {
            held = 0;
            heldBytes = 0;
            heldPieces.clear();
            return;
        }
        // rare: a merged frame left chains held for the next one; keep the rest, in order
        int firstPiece = pieceEnd[n - 1];
        for (int i = 0; i < n; i++) {
            heldBytes -= writable[i];
        }
        int rest = held - n;
        System.arraycopy(heads, n, heads, 0, rest);
        System.arraycopy(writable, n, writable, 0, rest);
        System.arraycopy(pieceEnd, n, pieceEnd, 0, rest);
        for (int i = 0; i < rest; i++) {
            pieceEnd[i] -= firstPiece;
        }
        held = rest;
        whole.sliceOf(heldPieces, heldPiecesOffset(firstPiece), heldBytes);
        heldPieces.clear();
        for (int p = 0; p < whole.pieceCount(); p++) {
            heldPieces.add(whole.pieceSegment(p), whole.pieceOffset(p), whole.pieceLength(p));
        }
        whole.clear();
    }

    private long heldPiecesOffset(int piece) {
        long offset = 0;
        for (int p = 0; p < piece; p++) {
            offset += heldPieces.pieceLength(p);
        }
        return offset;
    }

    private void checkOpen() {
        if (!open) {
            throw new IllegalStateException("no rx frame is open: begin(length) must return true first");
        }
    }
}

package io.vringj.device.net;

import io.vringj.ring.BufferChain;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * The driver side of one virtio-net queue pair: sends frames written in place in shared memory
 * and receives frames in place, over a {@link DriverQueue} pair (rx, tx) [virtio 5.1.6].
 *
 * <p>Buffers come from one area of memory the device can reach, given as the CPU's view and its
 * bus address (guest-physical without an IOMMU, or an IOVA the caller mapped once for the
 * driver's lifetime, as DPDK maps its mempools): Q<sub>rx</sub> rx buffers, then Q<sub>tx</sub>
 * tx buffers, each one descriptor. {@link #bufferAreaSize} says how big it must be.
 *
 * <pre>
 *   area: ┌ rx 0 ┬ rx 1 ┬ ... ┬ rx Qrx-1 ┬ tx 0 ┬ ... ┬ tx Qtx-1 ┐
 *   tx buffer: ┌ virtio_net_hdr (12) ┬ frame (claim() returns this part) ┐
 *   rx buffer: ┌ virtio_net_hdr (12) ┬ frame ... ┐   (with MRG_RXBUF a frame may continue
 *                                                      in further buffers, without header)
 * </pre>
 *
 * <p>Send: {@link #claim()} a tx buffer, write the frame into the returned segment,
 * {@link #commit(int)} its length; {@link #flush()} publishes and kicks the device (commit does
 * so by itself every {@code txBatch} frames). Tx buffers come back when the device has used them
 * ({@link #reclaim()}, also done by {@code claim()} when none is free). Tx interrupts are off:
 * reclaiming is lazy.
 *
 * <p>Receive: {@link #receive(Receiver, int)} takes used rx buffers and hands each frame to the
 * {@link Receiver} in place, then reposts the buffers in batches. A frame that spans several
 * merged buffers ({@code MRG_RXBUF}) is handed over as a {@link Frame} of several pieces, one per
 * buffer, not copied: the accessors read across pieces, a handler that needs the bytes in one
 * place copies them once with {@link Frame#copyTo}, and the common frame (one buffer) costs
 * nothing either way. A device that lies is counted, not trusted: a used length shorter than the
 * header ({@link NetDrop#SHORT_RX_BUFFER}); {@code num_buffers} of 0, or more than the device has
 * used ({@link NetDrop#BAD_NUM_BUFFERS}: the buffers taken so far are dropped, as Linux and DPDK
 * drop them). Without {@code MRG_RXBUF}, {@code num_buffers} is not read [virtio 5.1.6.4].
 * Ring rules the device breaks are {@link VirtqueueException}s from the rings.
 *
 * <p>Owned by one thread. Allocation-free after construction.
 */
public final class NetDriver {

    /** How the driver notifies the device that a ring has new buffers (an eventfd write, an unpark). */
    @FunctionalInterface
    public interface Kick {
        /** Notifies the device. */
        void kick();
    }

    /**
     * The smallest rx buffer without MRG_RXBUF: header and a 1514-byte frame [virtio 5.1.6.3.1].
     */
    public static final int MIN_RX_BUFFER_WITHOUT_MERGE = VirtioNetHeader.SIZE + 1514;

    /** Receives frames from {@link #receive(Receiver, int)}. */
    @FunctionalInterface
    public interface Receiver {
        /**
         * @param frame the frame in place in rx buffers, valid until this method returns
         */
        void onFrame(Frame frame);
    }

    private final DriverQueue rx;
    private final DriverQueue tx;
    private final MemorySegment area;
    private final long areaBus;
    private final int headerSize;
    private final boolean mergeable;
    private final int rxBufferSize;
    private final int txBufferSize;
    private final long txBase;
    private final Kick rxKick;
    private final Kick txKick;
    private final NetStatistics statistics = new NetStatistics();
    private final BufferChain chain = new BufferChain(1);

    private final int[] rxSlotOfHead;
    private final int[] refill;
    private int refillCount;
    private final int refillBatch;
    private final int[] frameSlots;
    private final Frame frame;

    private final int[] txSlotOfHead;
    private final int[] freeTx;
    private int freeTxCount;
    private final MemorySegment[] txFrames;
    private int claimed = -1;
    private int pendingTx;
    private final int txBatch;
    private final int minFrameLength;

    /**
     * Posts every rx buffer and publishes them; frames sent are Ethernet frames (at least 14 bytes).
     *
     * @param rx the receive queue (queue 0 of the pair)
     * @param tx the transmit queue (queue 1), with the same features, which must include VERSION_1
     * @param area the CPU's view of the buffer area, at least {@link #bufferAreaSize} bytes
     * @param areaBusAddress where the device finds {@code area}
     * @param rxBufferSize bytes per rx buffer: at least the header (12) with MRG_RXBUF, at least
     *     {@link #MIN_RX_BUFFER_WITHOUT_MERGE} without
     * @param txBufferSize bytes per tx buffer: the header and the longest frame to send (at least 14)
     * @param rxKick kicks the device on rx (refills)
     * @param txKick kicks the device on tx
     * @throws VirtqueueException if the rx queue is already broken
     */
    public NetDriver(DriverQueue rx, DriverQueue tx, MemorySegment area, long areaBusAddress, int rxBufferSize,
                     int txBufferSize, Kick rxKick, Kick txKick)
        throws VirtqueueException {
        this(rx, tx, area, areaBusAddress, rxBufferSize, txBufferSize, rxKick, txKick, NetQueuePair.ETHERNET_HEADER);
    }

    /**
     * As the other constructor, with the shortest frame {@link #commit(int)} takes: 14 (an Ethernet
     * header) for a network, 0 for a message channel between two ends that agree on no link
     * header (a frame is then any run of bytes behind the virtio_net_hdr).
     *
     * @param rx the receive queue (queue 0 of the pair)
     * @param tx the transmit queue (queue 1), with the same features, which must include VERSION_1
     * @param area the CPU's view of the buffer area, at least {@link #bufferAreaSize} bytes
     * @param areaBusAddress where the device finds {@code area}
     * @param rxBufferSize bytes per rx buffer: at least the header (12) with MRG_RXBUF, at least
     *     {@link #MIN_RX_BUFFER_WITHOUT_MERGE} without
     * @param txBufferSize bytes per tx buffer: the header and the longest frame to send (at least
     *     {@code minFrameLength}, and at least 1)
     * @param rxKick kicks the device on rx (refills)
     * @param txKick kicks the device on tx
     * @param minFrameLength the shortest frame to send, 0..14
     * @throws VirtqueueException if the rx queue is already broken
     */
    public NetDriver(DriverQueue rx, DriverQueue tx, MemorySegment area, long areaBusAddress, int rxBufferSize,
                     int txBufferSize, Kick rxKick, Kick txKick, int minFrameLength)
        throws VirtqueueException {
        if (minFrameLength < 0 || minFrameLength > NetQueuePair.ETHERNET_HEADER) {
            throw new IllegalArgumentException("minimum frame length " + minFrameLength + " is outside 0.."
                + NetQueuePair.ETHERNET_HEADER + " (no link header .. an Ethernet header)");
        }
        this.minFrameLength = minFrameLength;
        this.rx = Objects.requireNonNull(rx, "rx");
        this.tx = Objects.requireNonNull(tx, "tx");
        this.area = Objects.requireNonNull(area, "area");
        this.rxKick = Objects.requireNonNull(rxKick, "rxKick");
        this.txKick = Objects.requireNonNull(txKick, "txKick");
        long features = rx.features();
        if (features != tx.features()) {
            throw new IllegalArgumentException("rx features 0x" + Long.toHexString(features) + " differ from tx features 0x"
                + Long.toHexString(tx.features()) + "; both queues of a pair share one negotiation");
        }
        if (!VirtioFeatures.has(features, VirtioFeatures.VERSION_1)) {
            throw new IllegalArgumentException("features 0x" + Long.toHexString(features) + " lack VERSION_1 (bit 32); "
                + "this driver speaks only the 12-byte virtio_net_hdr_v1 with any buffer layout [virtio 5.1.6]");
        }
        this.headerSize = VirtioNetHeader.SIZE;
        this.mergeable = NetFeatures.mergeableRxBuffers(features);
        int minRx = mergeable ? headerSize : MIN_RX_BUFFER_WITHOUT_MERGE;
        if (rxBufferSize < minRx) {
            throw new IllegalArgumentException("rx buffer size " + rxBufferSize + " is below " + minRx + (mergeable
                ? " (each merged buffer holds at least the header)"
                : " (without MRG_RXBUF each buffer holds the header and a whole 1514-byte frame)")
                + " [virtio 5.1.6.3.1]");
        }
        int minTx = headerSize + Math.max(1, minFrameLength);
        if (txBufferSize < minTx) {
            throw new IllegalArgumentException("tx buffer size " + txBufferSize + " is below " + minTx
                + " (the header and the shortest frame)");
        }
        long need = bufferAreaSize(rx.queueSize(), rxBufferSize, tx.queueSize(), txBufferSize);
        if (area.byteSize() < need) {
            throw new IllegalArgumentException("buffer area of " + area.byteSize() + " bytes is below the " + need
                + " bytes " + rx.queueSize() + " rx buffers of " + rxBufferSize + " and " + tx.queueSize()
                + " tx buffers of " + txBufferSize + " need");
        }
        this.areaBus = areaBusAddress;
        this.rxBufferSize = rxBufferSize;
        this.txBufferSize = txBufferSize;
        this.txBase = (long) rx.queueSize() * rxBufferSize;

        int qrx = rx.queueSize();
        this.rxSlotOfHead = new int[qrx];
        this.refill = new int[qrx];
        this.frameSlots = new int[qrx];
        this.frame = new Frame(qrx);
        this.refillBatch = Math.max(1, Math.min(64, qrx / 4));

        int qtx = tx.queueSize();
        this.txSlotOfHead = new int[qtx];
        this.freeTx = new int[qtx];
        this.txFrames = new MemorySegment[qtx];
        for (int s = qtx - 1; s >= 0; s--) {
            freeTx[freeTxCount++] = s;
            txFrames[s] = area.asSlice(txOffset(s) + headerSize, txBufferSize - headerSize);
        }
        this.txBatch = Math.max(1, Math.min(32, qtx / 4));
        tx.disableInterrupts();

        for (int s = 0; s < qrx; s++) {
            refill[refillCount++] = s;
        }
        postRefills();
    }

    /**
     * @param rxQueueSize Q of the rx queue
     * @param rxBufferSize bytes per rx buffer
     * @param txQueueSize Q of the tx queue
     * @param txBufferSize bytes per tx buffer
     * @return the bytes of buffer area a driver with these sizes needs
     */
    public static long bufferAreaSize(int rxQueueSize, int rxBufferSize, int txQueueSize, int txBufferSize) {
        return (long) rxQueueSize * rxBufferSize + (long) txQueueSize * txBufferSize;
    }

    // --- receive ---

    /**
     * Hands up to {@code budget} received frames to {@code receiver}, in place, then reposts the
     * buffers (in batches) and kicks the device if it asks. An exception from the receiver ends
     * the call; the frame it was given counts as received and its buffers are reposted with the
     * next batch.
     *
     * @param receiver gets each frame
     * @param budget the most frames to hand over, at least 1
     * @return frames handed over
     * @throws VirtqueueException if the device broke a ring rule (the queue is then broken)
     */
    public int receive(Receiver receiver, int budget) throws VirtqueueException {
        int frames = 0;
        while (frames < budget) {
            int head = rx.pollUsed();
            if (head == DriverQueue.NONE) {
                break;
            }
            int slot = rxSlotOfHead[head];
            long used = rx.usedLength();
            if (used < headerSize) {
                statistics.drop(NetDrop.SHORT_RX_BUFFER);
                refill[refillCount++] = slot;
                continue;
            }
            long offset = rxOffset(slot);
            int numBuffers = mergeable ? VirtioNetHeader.numBuffers(area, offset) : 1;
            frame.clear();
            frame.add(area, offset + headerSize, used - headerSize);
            frameSlots[0] = slot;
            int taken = 1;
            boolean whole = numBuffers != 0;
            while (whole && taken < numBuffers) {
                int next = rx.pollUsed();
                if (next == DriverQueue.NONE) {
                    // the device said more buffers than it used: drop what arrived, as Linux does
                    whole = false;
                    break;
                }
                int s = rxSlotOfHead[next];
                frameSlots[taken++] = s;
                frame.add(area, rxOffset(s), rx.usedLength());
            }
            try {
                if (whole) {
                    statistics.rx(frame.length());
                    frames++;
                    receiver.onFrame(frame);
                } else {
                    statistics.drop(NetDrop.BAD_NUM_BUFFERS);
                }
            } finally {
                // also when the receiver throws: its buffers are reposted, the frame counts as received
                frame.clear();
                for (int i = 0; i < taken; i++) {
                    refill[refillCount++] = frameSlots[i];
                }
            }
        }
        if (refillCount >= refillBatch || rx.inFlight() < rx.queueSize() / 2) {
            postRefills();
        }
        return frames;
    }

    /** Posts every buffer waiting for refill and publishes them, kicking the device if it asks. */
    private void postRefills() throws VirtqueueException {
        if (refillCount == 0) {
            return;
        }
        for (int i = 0; i < refillCount; i++) {
            int slot = refill[i];
            chain.clear().addWritable(areaBus + rxOffset(slot), rxBufferSize);
            int head = rx.add(chain);
            if (head == DriverQueue.NO_ROOM) {
                // cannot happen: one descriptor per buffer, Q buffers; keep the rest for later if it does
                System.arraycopy(refill, i, refill, 0, refillCount - i);
                refillCount -= i;
                publishRx();
                return;
            }
            rxSlotOfHead[head] = slot;
        }
        refillCount = 0;
        publishRx();
    }

    private void publishRx() {
        if (rx.publish()) {
            rxKick.kick();
        }
    }

    /**
     * Asks the device for rx interrupts again, before sleeping on them.
     *
     * @return whether frames are already waiting (receive instead of sleeping)
     */
    public boolean enableRxInterrupts() {
        return rx.enableInterrupts();
    }

    /** Tells the device rx interrupts are not wanted (while polling). */
    public void disableRxInterrupts() {
        rx.disableInterrupts();
    }

    // --- send ---

    /**
     * Claims a tx buffer for one frame. Write the frame from offset 0 of the returned segment,
     * then {@link #commit(int)} (or {@link #abort()}).
     *
     * @return the frame part of a free tx buffer ({@link #maxFrameLength()} bytes; only what
     *     commit says is sent), or {@code null} if every tx buffer is with the device
     * @throws IllegalStateException if a claim is already open
     * @throws VirtqueueException if the device broke a ring rule while reclaiming
     */
    public MemorySegment claim() throws VirtqueueException {
        if (claimed >= 0) {
            throw new IllegalStateException("tx buffer " + claimed + " is already claimed; commit or abort it first");
        }
        if (freeTxCount == 0 && reclaim() == 0) {
            if (pendingTx > 0) {
                flush();
            }
            return null;
        }
        claimed = freeTx[--freeTxCount];
        return txFrames[claimed];
    }

    /**
     * Offers the claimed frame to the device (published by {@link #flush()}, or here once
     * {@code txBatch} frames wait).
     *
     * @param frameLength bytes written from offset 0 of the claimed segment, the shortest frame
     *     (14 unless the constructor said otherwise) .. {@link #maxFrameLength()}
     * @throws IllegalStateException if nothing is claimed
     * @throws IllegalArgumentException if the length is out of range (the claim stays open)
     * @throws VirtqueueException if the tx queue is broken
     */
    public void commit(int frameLength) throws VirtqueueException {
        if (claimed < 0) {
            throw new IllegalStateException("no tx buffer is claimed");
        }
        if (frameLength < minFrameLength || frameLength > maxFrameLength()) {
            throw new IllegalArgumentException("frame length " + frameLength + " is outside "
                + minFrameLength + ".." + maxFrameLength() + " (the shortest frame .. the tx buffer)");
        }
        int slot = claimed;
        long offset = txOffset(slot);
        VirtioNetHeader.write(area, offset, headerSize, 0);
        chain.clear().addReadable(areaBus + offset, headerSize + frameLength);
        int head = tx.add(chain);
        if (head == DriverQueue.NO_ROOM) {
            throw new IllegalStateException("tx ring has no free descriptor although tx buffer " + slot + " was free; "
                + "the ring and the buffers disagree");
        }
        claimed = -1;
        txSlotOfHead[head] = slot;
        statistics.tx(frameLength);
        if (++pendingTx >= txBatch) {
            flush();
        }
    }

    /** Gives the claimed tx buffer back unsent. */
    public void abort() {
        if (claimed >= 0) {
            freeTx[freeTxCount++] = claimed;
            claimed = -1;
        }
    }

    /**
     * Publishes the committed frames and kicks the device if it asks.
     *
     * @return how many frames were published
     */
    public int flush() {
        int n = pendingTx;
        if (n == 0) {
            return 0;
        }
        pendingTx = 0;
        if (tx.publish()) {
            txKick.kick();
        }
        return n;
    }

    /** @return frames committed and not yet published */
    public int pendingTx() {
        return pendingTx;
    }

    /**
     * Asks the device for tx interrupts (used tx buffers), before sleeping on them while every tx
     * buffer is with the device; tx interrupts are off otherwise.
     *
     * @return whether used tx buffers are already waiting ({@link #reclaim()} instead of sleeping)
     */
    public boolean enableTxInterrupts() {
        return tx.enableInterrupts();
    }

    /** Tells the device tx interrupts are not wanted again (reclaiming is lazy). */
    public void disableTxInterrupts() {
        tx.disableInterrupts();
    }

    /**
     * Takes back the tx buffers the device has used.
     *
     * @return how many came back
     * @throws VirtqueueException if the device broke a ring rule
     */
    public int reclaim() throws VirtqueueException {
        int n = 0;
        int head;
        while ((head = tx.pollUsed()) != DriverQueue.NONE) {
            freeTx[freeTxCount++] = txSlotOfHead[head];
            n++;
        }
        return n;
    }

    /** @return the longest frame one tx buffer holds */
    public int maxFrameLength() {
        return txBufferSize - headerSize;
    }

    /** @return rx buffers received and waiting to be posted again with the next batch */
    public int rxBuffersAwaitingRefill() {
        return refillCount;
    }

    /** @return tx buffers free for {@link #claim()} right now (without reclaiming) */
    public int freeTxBuffers() {
        return freeTxCount;
    }

    /** @return this driver's counters (tx: frames committed; rx: frames handed over) */
    public NetStatistics statistics() {
        return statistics;
    }

    private long rxOffset(int slot) {
        return (long) slot * rxBufferSize;
    }

    private long txOffset(int slot) {
        return txBase + (long) slot * txBufferSize;
    }
}

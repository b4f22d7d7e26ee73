package io.vringj.device.net;

import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceLoop;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.MissParking;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import org.agrona.concurrent.Agent;

/**
 * The device side of one virtio-net queue pair: the worker step a transport runs for an rx queue
 * and a tx queue [virtio 5.1.2]. Net is not request/response per chain: the device takes rx
 * buffers when it has a frame, so one worker owns both queues of the pair.
 *
 * <pre>
 *   doWork():
 *     up to batch times: pop a tx chain → check it → Frame in place → handler.onFrame(frame, rx)
 *                        (the handler may take rx buffers and fill them) → tx chain used (0 bytes)
 *     tx ring empty → enable tx kicks and look again (the order that cannot lose a kick)
 *     publish used: tx → interrupt the driver on tx if the ring says so; rx → the same on rx
 *     return the tx chains handled (0: kicks are on, the transport may sleep until a tx kick)
 * </pre>
 *
 * <p>Rx kicks are turned off for good: the device never waits for rx buffers. A frame that
 * finds none is dropped and counted ({@link NetDrop#NO_RX_BUFFER}), as DPDK's back end does.
 *
 * <p>A tx chain is checked before its frame is shown: no device-writable descriptor
 * ({@link NetDrop#BAD_TX_CHAIN}), at least a header, no offloads that were not negotiated
 * ({@link NetDrop#BAD_HEADER}), at least an Ethernet header ({@link NetDrop#RUNT_FRAME}), at most
 * the maximum frame length ({@link NetDrop#FRAME_TOO_LONG}). A bad chain is returned used and
 * counted; the queue goes on. A ring that breaks a virtqueue rule is another matter: the queue
 * latches broken, {@link #doWork()} throws the {@link VirtqueueException} (and again on every
 * later call without touching the rings), and the transport closes that connection.
 *
 * <p>Behind an IOTLB (a pair made with {@link MissParking.Translations}) the miss rule is
 * {@link MissParking}'s, as in {@link DeviceLoop}. A miss on the tx ring (its areas or a tx
 * chain's buffers) consumes nothing: {@code doWork} publishes what it did, parks and returns;
 * while parked it touches no ring and returns 0 at once (publishing anything still deferred), so
 * the transport sleeps until the IOTLB update wakes it; then the same chain is popped again, so
 * tx frames are neither lost nor reordered. A miss on the rx ring or an rx buffer drops that
 * frame ({@link NetDrop#RX_TRANSLATION_MISS}), as DPDK's back end drops what it cannot enqueue;
 * while the rx side is parked later frames are dropped the same way without touching the ring.
 * Every translation is used only inside one {@code doWork} (one IOTLB critical section), with
 * one exception made safe: rx chains held for a later frame (MRG_RXBUF) are returned used with
 * 0 bytes, untouched, once the translations changed since they were popped ({@link RxPort}).
 * Used entries the ring could not take (its used area missed) are published by a later call.
 *
 * <p>Owned by one thread; an Agrona {@link Agent}, so it runs under an
 * {@link org.agrona.concurrent.AgentRunner} or any loop that calls {@link #doWork()}.
 * Allocation-free on the steady path.
 */
public final class NetQueuePair implements Agent {
    /** Ethernet header: destination, source, EtherType. */
    static final int ETHERNET_HEADER = 14;

    private final String name;
    private final DeviceQueue rxQueue;
    private final DeviceQueue txQueue;
    private final FrameHandler handler;
    private final DeviceLoop.Notifier rxInterrupt;
    private final DeviceLoop.Notifier txInterrupt;
    private final int batch;
    private final long maxFrameLength;
    private final int headerSize;
    private final NetStatistics statistics;
    private final RxPort rxPort;
    private final DescriptorChain chain = new DescriptorChain();
    private final Frame frame = new Frame(16);
    private final MemorySegment headerScratch = MemorySegment.ofArray(new byte[VirtioNetHeader.SIZE]);
    /** The tx side's miss rule behind an IOTLB, or {@code null}. */
    private final MissParking txParking;
    private final boolean behindIotlb;
    private boolean kicksEnabled = true;
    private VirtqueueException failure;

    /**
     * @param name the worker's role name, for logs
     * @param rx the pair's receive queue (even index); features must equal {@code tx}'s
     * @param tx the pair's transmit queue (odd index)
     * @param handler the device's mode
     * @param rxInterrupt interrupts the driver on the rx queue (its call eventfd)
     * @param txInterrupt interrupts the driver on the tx queue
     * @param maxFrameLength the longest frame accepted on tx or put on rx, 14..2^31-1-12
     * @param batch the most tx chains handled per {@link #doWork()}, at least 1
     * @param statistics where to count (one writer: this worker)
     */
    public NetQueuePair(String name, DeviceQueue rx, DeviceQueue tx, FrameHandler handler,
                        DeviceLoop.Notifier rxInterrupt, DeviceLoop.Notifier txInterrupt, long maxFrameLength,
                        int batch, NetStatistics statistics) {
        this(name, rx, tx, handler, rxInterrupt, txInterrupt, maxFrameLength, batch, statistics, null);
    }

    /**
     * A pair whose queues may translate through an IOTLB (see the class comment).
     *
     * @param name the worker's role name, for logs
     * @param rx the pair's receive queue (even index); features must equal {@code tx}'s
     * @param tx the pair's transmit queue (odd index)
     * @param handler the device's mode
     * @param rxInterrupt interrupts the driver on the rx queue (its call eventfd)
     * @param txInterrupt interrupts the driver on the tx queue
     * @param maxFrameLength the longest frame accepted on tx or put on rx, 14..2^31-1-12
     * @param batch the most tx chains handled per {@link #doWork()}, at least 1
     * @param statistics where to count (one writer: this worker)
     * @param translations the IOTLB both queues translate through, as the miss rule sees it
     *     ({@code io.vringj.dma.IotlbTranslations}); {@code null} when they cannot miss
     */
    public NetQueuePair(String name, DeviceQueue rx, DeviceQueue tx, FrameHandler handler,
                        DeviceLoop.Notifier rxInterrupt, DeviceLoop.Notifier txInterrupt, long maxFrameLength,
                        int batch, NetStatistics statistics, MissParking.Translations translations) {
        this.name = Objects.requireNonNull(name, "name");
        this.rxQueue = Objects.requireNonNull(rx, "rx");
        this.txQueue = Objects.requireNonNull(tx, "tx");
        this.handler = Objects.requireNonNull(handler, "handler");
        this.rxInterrupt = Objects.requireNonNull(rxInterrupt, "rxInterrupt");
        this.txInterrupt = Objects.requireNonNull(txInterrupt, "txInterrupt");
        this.statistics = Objects.requireNonNull(statistics, "statistics");
        if (rx.features() != tx.features()) {
            throw new IllegalArgumentException("rx features 0x" + Long.toHexString(rx.features()) + " differ from tx "
                + "features 0x" + Long.toHexString(tx.features()) + "; both queues of a pair share one negotiation");
        }
        if (maxFrameLength < ETHERNET_HEADER || maxFrameLength > Integer.MAX_VALUE - VirtioNetHeader.SIZE) {
            throw new IllegalArgumentException("maximum frame length " + maxFrameLength + " is outside "
                + ETHERNET_HEADER + ".." + (Integer.MAX_VALUE - VirtioNetHeader.SIZE));
        }
        if (batch < 1) {
            throw new IllegalArgumentException("batch " + batch + " must be at least 1");
        }
        this.maxFrameLength = maxFrameLength;
        this.batch = batch;
        this.headerSize = VirtioNetHeader.size(tx.features());
        this.rxPort = new RxPort(rx, statistics, maxFrameLength, translations);
        this.txParking = translations == null ? null : new MissParking(translations);
        this.behindIotlb = translations != null;
        // the device takes rx buffers only when it has a frame and never waits for them
        rx.disableNotifications();
    }

    @Override
    public int doWork() throws VirtqueueException {
        if (failure != null) {
            throw failure;
        }
        if (txParking != null && txParking.stillParked()) {
            // nothing changed that could let the parked chain through: no ring access but a
            // publish of entries deferred while the used area missed (a no-op when there are none)
            publish();
            return 0;
        }
        // read before the attempt: an update landing during it moves the stamp past this value
        long stamp = txParking == null ? 0 : txParking.beforeAttempt();
        int work = 0;
        try {
            while (work < batch) {
                int popped = txQueue.tryPop(chain);
                if (popped == DeviceQueue.MISSED) {
                    // nothing was consumed; the IOTLB has asked for the entry: retry this head after the update
                    if (txParking != null) {
                        txParking.park(stamp, txQueue.missAddress(), txQueue.missAccess());
                    }
                    break;
                }
                if (popped == DeviceQueue.EMPTY) {
                    if (work > 0 || !enableKicksFoundMore()) {
                        break;
                    }
                    continue;
                }
                if (kicksEnabled) {
                    txQueue.disableNotifications();
                    kicksEnabled = false;
                }
                transmit(chain);
                txQueue.addUsed(chain.head(), 0);
                work++;
                if (rxPort.failure() != null) {
                    throw rxPort.failure();
                }
            }
        } catch (VirtqueueException e) {
            if (e.fatal()) {
                failure = e;
                publish();
                throw e;
            }
            // a translation miss reported by an exception: nothing was consumed; retry after the update
            if (txParking != null) {
                txParking.parkOnMiss(e, stamp);
            }
        }
        publish();
        return work;
    }

    /** @return whether the tx side waits for an IOTLB update (see {@link MissParking}) */
    public boolean isParked() {
        return txParking != null && txParking.isParked();
    }

    /** Checks one tx chain and hands its frame to the handler, in place. */
    private void transmit(DescriptorChain c) {
        if (c.writablePieceCount() > 0) {
            statistics.drop(NetDrop.BAD_TX_CHAIN);
            return;
        }
        long readable = c.readableLength();
        if (readable < headerSize) {
            statistics.drop(NetDrop.BAD_HEADER);
            return;
        }
        boolean plain;
        if (c.pieceLength(0) >= headerSize) {
            plain = VirtioNetHeader.isPlainTx(c.pieceSegment(0), c.pieceOffset(0));
        } else {
            // the header spread over descriptors [virtio 2.6.4]: gather its 10 or 12 bytes
            c.copyFromReadable(0, headerScratch, 0, headerSize);
            plain = VirtioNetHeader.isPlainTx(headerScratch, 0);
        }
        if (!plain) {
            statistics.drop(NetDrop.BAD_HEADER);
            return;
        }
        long length = readable - headerSize;
        if (length < ETHERNET_HEADER) {
            statistics.drop(NetDrop.RUNT_FRAME);
            return;
        }
        if (length > maxFrameLength) {
            statistics.drop(NetDrop.FRAME_TOO_LONG);
            return;
        }
        frame.clear();
        long skip = headerSize;
        for (int p = 0, n = c.readablePieceCount(); p < n; p++) {
            long len = c.pieceLength(p);
            if (skip >= len) {
                skip -= len;
                continue;
            }
            frame.add(c.pieceSegment(p), c.pieceOffset(p) + skip, len - skip);
            skip = 0;
        }
        statistics.tx(length);
        handler.onFrame(frame, rxPort);
        rxPort.abort();
        frame.clear();
    }

    private void publish() {
        if (txQueue.publishUsed()) {
            txInterrupt.notifyDriver();
        }
        // behind an IOTLB an earlier publish may have missed with entries deferred: try every time
        if ((rxPort.takeUsedAdded() || behindIotlb) && rxQueue.publishUsed()) {
            rxInterrupt.notifyDriver();
        }
    }

    /** Enables tx kicks before going idle; returns whether chains arrived meanwhile. */
    private boolean enableKicksFoundMore() throws VirtqueueException {
        if (kicksEnabled) {
            return false;
        }
        kicksEnabled = true;
        return txQueue.enableNotifications();
    }

    /**
     * Returns the rx chains held for a frame that did not fit (see {@link RxPort}) as used with
     * 0 bytes and publishes them: call before the transport reads the ring state to stop the
     * queues ({@code GET_VRING_BASE}), on the worker thread or after it stopped.
     */
    @Override
    public void onClose() {
        close();
    }

    /** As {@link #onClose()}. */
    public void close() {
        if (failure != null || rxQueue.isBroken()) {
            return;
        }
        rxPort.releaseHeld();
        if ((rxPort.takeUsedAdded() || behindIotlb) && rxQueue.publishUsed()) {
            rxInterrupt.notifyDriver();
        }
    }

    @Override
    public String roleName() {
        return name;
    }

    /** @return this pair's counters */
    public NetStatistics statistics() {
        return statistics;
    }

    /** @return the handler (the device's mode) of this pair */
    public FrameHandler handler() {
        return handler;
    }

    /** @return how many rx chains are held for a frame that did not fit (MRG_RXBUF) */
    public int heldRxBuffers() {
        return rxPort.heldBuffers();
    }

    /** @return the fatal ring error that stopped the pair, or {@code null} */
    public VirtqueueException failure() {
        return failure;
    }
}

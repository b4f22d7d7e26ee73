package io.vringj.device.net;

import io.vringj.device.QueuePairDevice;
import io.vringj.ring.DeviceLoop;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.MissParking;
import io.vringj.ring.VirtioFeatures;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Supplier;

/**
 * virtio-net (device id 1) [virtio 5.1], transport-independent: what the device offers, and a
 * worker per rx/tx queue pair ({@link NetQueuePair}) whose mode is a {@link FrameHandler}:
 * {@link #sink()}, {@link #reflect()} or {@link #responder(long, int)}.
 *
 * <p>How a transport drives it (a vhost-user back end, or a test in one process):
 * <ol>
 *   <li>offer {@link #offeredFeatures()} and {@link #queueCount()} queues of at most
 *       {@link #maxQueueSize()}; queue {@code 2p} is pair p's rx, {@code 2p + 1} its tx
 *       ({@link NetFeatures#rxQueue}, {@link NetFeatures#txQueue});</li>
 *   <li>once both queues of a pair are ready (addresses, kick, call, enabled), create both
 *       {@link DeviceQueue}s with the negotiated features and call
 *       {@link #pair(int, DeviceQueue, DeviceQueue, DeviceLoop.Notifier, DeviceLoop.Notifier)};
 *       the notifiers signal the rx and tx call eventfds;</li>
 *   <li>on the pair's worker thread call {@link NetQueuePair#doWork()} in a loop; when it
 *       returns 0, tx kicks are enabled and the ring was checked again (or, behind an IOTLB, the
 *       pair is parked on a miss), so the thread may sleep until the tx queue's kick (the rx kick
 *       needs no action: drain it) or a wake-up (an IOTLB update, a stop); behind an IOTLB create
 *       the queues on that thread (a ring area may miss: retry after the update), pass its
 *       translations, and run each call, and the close, inside one IOTLB critical section;</li>
 *   <li>if {@code doWork} throws a {@link io.vringj.ring.VirtqueueException}, the peer broke a
 *       ring rule: close that connection;</li>
 *   <li>to stop (disable, {@code GET_VRING_BASE}), stop the worker, then call
 *       {@link NetQueuePair#close()} (held rx buffers go back used with 0 bytes), then read each
 *       queue's {@code vringBase()}.</li>
 * </ol>
 *
 * <p>Offered: VERSION_1, MRG_RXBUF, EVENT_IDX, INDIRECT_DESC, RING_PACKED, and ACCESS_PLATFORM
 * (by the mode factories, as the rng back end does; the front end decides: QEMU negotiates it
 * only with {@code iommu_platform=on}, DPDK's virtio_user never does, and behind it the transport
 * needs an IOTLB and passes it to {@link #pair(int, DeviceQueue, DeviceQueue, DeviceLoop.Notifier,
 * DeviceLoop.Notifier, MissParking.Translations)}); with several pairs also MQ and CTRL_VQ (the control queue is the front end's, as
 * with DPDK's back end). Not offered: IN_ORDER (ring-core's queues honour it when it is negotiated,
 * but this device does not offer it yet: DPDK's virtio_user takes it whenever it is offered),
 * checksum and segmentation offloads, MAC and STATUS (the front end keeps the configuration space).
 *
 * <p>Thread-safe: pairs may be created from any thread; each pair is then owned by its worker.
 */
public final class NetDevice implements QueuePairDevice {
    /**
     * The longest frame by default: the largest MTU Linux allows without VIRTIO_NET_F_MTU (65535)
     * plus an Ethernet header and a VLAN tag.
     */
    public static final int DEFAULT_MAX_FRAME_LENGTH = 65_535 + 14 + 4;
    /** Tx chains handled per {@link NetQueuePair#doWork()} by default. */
    public static final int DEFAULT_BATCH = 64;
    /** The largest queue size accepted (a packed ring's limit, and a split ring's). */
    public static final int MAX_QUEUE_SIZE = 32768;

    private final String mode;
    private final Supplier<? extends FrameHandler> handlers;
    private final int queuePairs;
    private final boolean accessPlatform;
    private final int maxFrameLength;
    private final List<NetQueuePair> pairs = new CopyOnWriteArrayList<>();

    /**
     * @param mode the mode's name, for reports
     * @param handlers gives each queue pair its own handler
     * @param queuePairs how many rx/tx pairs, 1..32767
     * @param accessPlatform whether to offer ACCESS_PLATFORM (the transport then needs an IOTLB)
     * @param maxFrameLength the longest frame taken from tx or put on rx, 14..2^31-13
     */
    public NetDevice(String mode, Supplier<? extends FrameHandler> handlers, int queuePairs, boolean accessPlatform,
                     int maxFrameLength) {
        this.mode = Objects.requireNonNull(mode, "mode");
        this.handlers = Objects.requireNonNull(handlers, "handlers");
        if (queuePairs < 1 || queuePairs > 0x7FFF) {
            throw new IllegalArgumentException("queue pairs " + queuePairs + " is outside 1..32767 [virtio 5.1.4]");
        }
        if (maxFrameLength < NetQueuePair.ETHERNET_HEADER || maxFrameLength > Integer.MAX_VALUE - VirtioNetHeader.SIZE) {
            throw new IllegalArgumentException("maximum frame length " + maxFrameLength + " is outside "
                + NetQueuePair.ETHERNET_HEADER + ".." + (Integer.MAX_VALUE - VirtioNetHeader.SIZE));
        }
        this.queuePairs = queuePairs;
        this.accessPlatform = accessPlatform;
        this.maxFrameLength = maxFrameLength;
    }

    /** @return a one-pair device in {@code sink} mode ({@link Sink}), offering ACCESS_PLATFORM */
    public static NetDevice sink() {
        return sink(1);
    }

    /**
     * @param queuePairs how many rx/tx pairs, 1..32767 (several: MQ is offered)
     * @return a device in {@code sink} mode ({@link Sink}), one sink per pair
     * @throws IllegalArgumentException if the pair count is out of range
     */
    public static NetDevice sink(int queuePairs) {
        return new NetDevice("sink", Sink::new, queuePairs, true, DEFAULT_MAX_FRAME_LENGTH);
    }

    /** @return a one-pair device in {@code reflect} mode ({@link Reflector}), offering ACCESS_PLATFORM */
    public static NetDevice reflect() {
        return reflect(1);
    }

    /**
     * @param queuePairs how many rx/tx pairs, 1..32767 (several: MQ is offered)
     * @return a device in {@code reflect} mode ({@link Reflector}): each pair sends its tx frames
     *     back on its own rx queue
     * @throws IllegalArgumentException if the pair count is out of range
     */
    public static NetDevice reflect(int queuePairs) {
        return new NetDevice("reflect", Reflector::new, queuePairs, true, DEFAULT_MAX_FRAME_LENGTH);
    }

    /**
     * @param mac the responder's MAC address (low 48 bits)
     * @param ipv4 its IPv4 address (big-endian int)
     * @return a one-pair device in {@code responder} mode ({@link Responder}), offering ACCESS_PLATFORM
     * @throws IllegalArgumentException if the MAC is not a unicast 48-bit address
     */
    public static NetDevice responder(long mac, int ipv4) {
        return responder(mac, ipv4, 1);
    }

    /**
     * @param mac the responder's MAC address (low 48 bits)
     * @param ipv4 its IPv4 address (big-endian int)
     * @param queuePairs how many rx/tx pairs, 1..32767; each answers what arrives on its own tx queue
     * @return a device in {@code responder} mode ({@link Responder})
     * @throws IllegalArgumentException if the MAC is not a unicast 48-bit address or the pair count is out of range
     */
    public static NetDevice responder(long mac, int ipv4, int queuePairs) {
        Responder.checkMac(mac); // now, rather than when the first pair starts
        return new NetDevice("responder", () -> new Responder(mac, ipv4), queuePairs, true, DEFAULT_MAX_FRAME_LENGTH);
    }

    /** @return the device's name, for logs */
    @Override
    public String name() {
        return "virtio-net " + mode;
    }

    /** @return the virtio feature bits offered (see the class comment) */
    @Override
    public long offeredFeatures() {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX)
            | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC)
            | VirtioFeatures.bit(VirtioFeatures.RING_PACKED)
            | VirtioFeatures.bit(NetFeatures.MRG_RXBUF);
        if (queuePairs > 1) {
            features |= VirtioFeatures.bit(NetFeatures.MQ) | VirtioFeatures.bit(NetFeatures.CTRL_VQ);
        }
        if (accessPlatform) {
            features |= VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM);
        }
        return features;
    }

    /** @return how many rx/tx pairs */
    public int queuePairs() {
        return queuePairs;
    }

    /**
     * @param negotiatedFeatures the features the front end set
     * @return every pair if {@link NetFeatures#MQ} was negotiated, otherwise 1: without it only
     *     receiveq1 and transmitq1 exist [virtio 5.1.2]
     */
    @Override
    public int usablePairs(long negotiatedFeatures) {
        return VirtioFeatures.has(negotiatedFeatures, NetFeatures.MQ) ? queuePairs : 1;
    }

    /** @return the number of virtqueues the transport serves: two per pair */
    @Override
    public int queueCount() {
        return 2 * queuePairs;
    }

    /** Offset of {@code max_virtqueue_pairs} (le16) in {@code struct virtio_net_config} [virtio 5.1.4]. */
    public static final int CONFIG_MAX_VIRTQUEUE_PAIRS = 8;
    /** Bytes of {@code struct virtio_net_config} served: mac, status, max_virtqueue_pairs, mtu [virtio 5.1.4]. */
    public static final int CONFIG_SIZE = 12;

    /**
     * The configuration space [virtio 5.1.4]: {@code mac} and {@code status} zero (MAC and STATUS
     * are not offered; the front end keeps them), {@code max_virtqueue_pairs} the number of pairs,
     * {@code mtu} zero (MTU not offered).
     *
     * <pre>
     *   0 mac[6] | 6 status le16 | 8 max_virtqueue_pairs le16 | 10 mtu le16
     * </pre>
     *
     * @return a fresh copy, {@value #CONFIG_SIZE} bytes
     */
    @Override
    public byte[] config() {
        byte[] config = new byte[CONFIG_SIZE];
        config[CONFIG_MAX_VIRTQUEUE_PAIRS] = (byte) queuePairs;
        config[CONFIG_MAX_VIRTQUEUE_PAIRS + 1] = (byte) (queuePairs >>> 8);
        return config;
    }

    /** @return the largest queue size accepted */
    @Override
    public int maxQueueSize() {
        return MAX_QUEUE_SIZE;
    }

    /** @return the longest frame taken from tx or put on rx */
    public int maxFrameLength() {
        return maxFrameLength;
    }

    /**
     * Creates the worker of one queue pair, with a new handler from this device's mode.
     *
     * @param pair the pair, 0..queuePairs-1
     * @param rx its receive queue (index {@code 2 * pair})
     * @param tx its transmit queue (index {@code 2 * pair + 1}), with the same features
     * @param rxInterrupt interrupts the driver on rx
     * @param txInterrupt interrupts the driver on tx
     * @return the worker, owned by the calling transport's worker thread from now on
     */
    @Override
    public NetQueuePair pair(int pair, DeviceQueue rx, DeviceQueue tx, DeviceLoop.Notifier rxInterrupt,
                             DeviceLoop.Notifier txInterrupt) {
        return pair(pair, rx, tx, rxInterrupt, txInterrupt, null);
    }

    /**
     * Creates the worker of one queue pair, with a new handler from this device's mode, whose
     * queues may translate through an IOTLB ({@link NetQueuePair} says how misses are handled).
     *
     * @param pair the pair, 0..queuePairs-1
     * @param rx its receive queue (index {@code 2 * pair})
     * @param tx its transmit queue (index {@code 2 * pair + 1}), with the same features
     * @param rxInterrupt interrupts the driver on rx
     * @param txInterrupt interrupts the driver on tx
     * @param translations the IOTLB both queues translate through, or {@code null}
     * @return the worker, owned by the calling transport's worker thread from now on
     */
    @Override
    public NetQueuePair pair(int pair, DeviceQueue rx, DeviceQueue tx, DeviceLoop.Notifier rxInterrupt,
                             DeviceLoop.Notifier txInterrupt, MissParking.Translations translations) {
        if (pair < 0 || pair >= queuePairs) {
            throw new IllegalArgumentException("queue pair " + pair + " is outside 0.." + (queuePairs - 1));
        }
        NetQueuePair worker = new NetQueuePair("virtio-net-" + mode + "-pair-" + pair, rx, tx, handlers.get(),
            rxInterrupt, txInterrupt, maxFrameLength, DEFAULT_BATCH, new NetStatistics(), translations);
        pairs.add(worker);
        return worker;
    }

    /** @return every pair created so far, oldest first */
    public List<NetQueuePair> pairs() {
        return List.copyOf(pairs);
    }

    /** @return the counters of every pair created so far, summed */
    public NetStatistics statistics() {
        NetStatistics total = new NetStatistics();
        for (NetQueuePair p : pairs) {
            p.statistics().addTo(total);
        }
        return total;
    }

    /**
     * @return a report: the summed counters, then for each pair its own counters and its mode's
     *     summary (for exit and signals)
     */
    @Override
    public String report() {
        StringBuilder sb = new StringBuilder(name()).append(": ").append(statistics());
        for (NetQueuePair p : pairs) {
            sb.append("\n  ").append(p.roleName()).append(": ").append(p.statistics()).append("; ")
                .append(p.handler().summary());
        }
        return sb.toString();
    }
}

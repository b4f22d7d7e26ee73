package io.vringj.device.net;

import io.vringj.ring.VirtioFeatures;

/**
 * The virtio-net feature bits this package acts on [virtio 5.1.3], and the queue numbering
 * [virtio 5.1.2]. Transport bits (VERSION_1, EVENT_IDX, ...) are in {@link VirtioFeatures}.
 *
 * <p>A vhost-user back end offers only the bits that concern the data path: MAC, STATUS and the
 * control queue are answered by the front end itself (QEMU's virtio-net, DPDK's virtio_user), so
 * {@link NetDevice} never offers {@link #MAC} or {@link #STATUS}, and offers {@link #CTRL_VQ}
 * and {@link #MQ} only for several queue pairs, as DPDK's back end does.
 */
public final class NetFeatures {
    /** The device has a MAC address in its configuration space [virtio 5.1.3]. */
    public static final int MAC = 5;
    /** The driver can merge receive buffers: a frame may span several rx chains [virtio 5.1.3, 5.1.6.4]. */
    public static final int MRG_RXBUF = 15;
    /** The configuration space has a link status field [virtio 5.1.3]. */
    public static final int STATUS = 16;
    /** There is a control virtqueue after the data queues [virtio 5.1.3]. */
    public static final int CTRL_VQ = 17;
    /** Several rx/tx queue pairs (needs {@link #CTRL_VQ}) [virtio 5.1.3, 5.1.6.5.5]. */
    public static final int MQ = 22;

    private NetFeatures() {
    }

    /**
     * @param pair a queue pair, from 0
     * @return the virtqueue index of its receive queue: {@code 2 * pair} [virtio 5.1.2]
     */
    public static int rxQueue(int pair) {
        checkPair(pair);
        return 2 * pair;
    }

    /**
     * @param pair a queue pair, from 0
     * @return the virtqueue index of its transmit queue: {@code 2 * pair + 1} [virtio 5.1.2]
     */
    public static int txQueue(int pair) {
        checkPair(pair);
        return 2 * pair + 1;
    }

    /**
     * @param features negotiated features
     * @return whether rx frames may span several buffers ({@link #MRG_RXBUF})
     */
    public static boolean mergeableRxBuffers(long features) {
        return VirtioFeatures.has(features, MRG_RXBUF);
    }

    private static void checkPair(int pair) {
        // 0x8000 queue pairs is the most [virtio 5.1.4]; beyond it the indices would not fit 16 bits
        if (pair < 0 || pair >= 0x8000) {
            throw new IllegalArgumentException("queue pair " + pair + " is outside 0..32767 [virtio 5.1.4]");
        }
    }
}

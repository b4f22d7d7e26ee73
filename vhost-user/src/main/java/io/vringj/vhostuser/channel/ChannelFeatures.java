package io.vringj.vhostuser.channel;

import io.vringj.device.net.NetFeatures;
import io.vringj.ring.VirtioFeatures;

/**
 * The virtio features both ends of a channel offer or ask for, in one place: VERSION_1 (the
 * 12-byte virtio_net_hdr), MRG_RXBUF (a message longer than one rx buffer), EVENT_IDX (fewer
 * notifications), RING_PACKED when {@link ChannelOptions#packed()}, and VIRTIO_F_IN_ORDER when
 * {@link ChannelOptions#inOrder()}. No ACCESS_PLATFORM: the peers share
 * memory directly.
 */
final class ChannelFeatures {
    private ChannelFeatures() {
    }

    /** @return what the serving end offers and the connecting end asks for */
    static long wanted(ChannelOptions options) {
        long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(NetFeatures.MRG_RXBUF)
            | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX);
        if (options.packed()) {
            features |= VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
        }
        if (options.inOrder()) {
            features |= VirtioFeatures.bit(VirtioFeatures.IN_ORDER);
        }
        return features;
    }

    /** @return what the connecting end cannot do without: VERSION_1, and RING_PACKED when asked for */
    static long required(ChannelOptions options) {
        return VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | (options.packed() ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0);
    }
}

package io.vringj.vhostuser.channel;

import io.vringj.device.QueuePairDevice;
import io.vringj.ring.DeviceLoop;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.MissParking;
import org.agrona.concurrent.Agent;

/**
 * What the serving end declares to its front end: a virtio-net device of one queue pair with the
 * channel's features. Its pair is never worked by a pair worker: the back end hands the queues to
 * the {@link DeviceEndpoint} ({@link io.vringj.vhostuser.backend.PairOwner}).
 */
final class ChannelDevice implements QueuePairDevice {
    private final long features;

    ChannelDevice(long features) {
        this.features = features;
    }

    @Override
    public String name() {
        return "channel";
    }

    @Override
    public long offeredFeatures() {
        return features;
    }

    @Override
    public int queueCount() {
        return 2;
    }

    @Override
    public int maxQueueSize() {
        return ChannelOptions.MAX_QUEUE_SIZE;
    }

    /** Never called: the back end gives this device's pair to its owner instead of a pair worker. */
    @Override
    public Agent pair(int pair, DeviceQueue rx, DeviceQueue tx, DeviceLoop.Notifier rxInterrupt,
                      DeviceLoop.Notifier txInterrupt, MissParking.Translations translations) {
        throw new UnsupportedOperationException("the channel's queues are worked by the application's thread "
            + "(a PairOwner), not by a pair worker");
    }

    @Override
    public int usablePairs(long negotiatedFeatures) {
        return 1;
    }

    @Override
    public String report() {
        return "channel";
    }
}

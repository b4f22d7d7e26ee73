package io.vringj.device;

/**
 * What every device type served by the vhost-user back end declares: its name, the features it
 * offers, how many queues it has and how big they may be. How its queues are worked depends on
 * the kind of device: {@link ChainDevice} (one handler per queue, called per descriptor chain,
 * like rng) or {@link QueuePairDevice} (one worker per rx/tx pair, like net). The back end does
 * everything else (protocol, memory, rings, notifications).
 */
public sealed interface VirtioDevice permits ChainDevice, QueuePairDevice {

    /** @return the device's name, for logs */
    String name();

    /**
     * @return the virtio feature bits the device offers, device-specific and transport ones it
     *     can honour; the back end adds the vhost-user protocol-features bit
     */
    long offeredFeatures();

    /** @return the number of virtqueues */
    int queueCount();

    /** @return the largest queue size accepted in {@code SET_VRING_NUM} */
    int maxQueueSize();

    /**
     * The device-specific configuration space [virtio 4.1.4.3], little-endian, as a front end
     * reads it with vhost-user's {@code GET_CONFIG}; the back end offers {@code PROTOCOL_F_CONFIG}
     * only for a device that has one.
     *
     * @return a fresh copy of the configuration space, empty if the device serves none
     */
    default byte[] config() {
        return new byte[0];
    }
}

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
}

package io.vringj.device;

import io.vringj.ring.ChainHandler;

/**
 * A device type served by the vhost-user back end: what it offers, and how it handles one chain.
 * The back end does everything else (protocol, memory, rings, notifications).
 */
public interface VirtioDevice {

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
     * Creates the handler of one queue, run on that queue's worker thread.
     *
     * @param queueIndex the queue
     * @param negotiatedFeatures the features the front end set
     * @return the handler (the one {@link ChainHandler} type, run by ring-core's
     *     {@link io.vringj.ring.DeviceLoop}); owned by the worker thread
     */
    ChainHandler handler(int queueIndex, long negotiatedFeatures);
}

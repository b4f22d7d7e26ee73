package io.vringj.device;

import io.vringj.ring.ChainHandler;

/**
 * A device whose queues are independent and worked chain by chain (rng): the back end runs one
 * ring-core {@link io.vringj.ring.DeviceLoop} per queue with the handler made here.
 */
public non-sealed interface ChainDevice extends VirtioDevice {

    /**
     * Creates the handler of one queue, run on that queue's worker thread.
     *
     * @param queueIndex the queue
     * @param negotiatedFeatures the features the front end set
     * @return the handler (the one {@link io.vringj.ring.ChainHandler} type, run by ring-core's
     *     {@link io.vringj.ring.DeviceLoop}); owned by the worker thread
     */
    ChainHandler handler(int queueIndex, long negotiatedFeatures);
}

package io.vringj.ring;

/**
 * What a device does with one popped chain: consumes its readable part and fills its writable
 * part in place. Run on the device thread of its queue (a {@link DeviceLoop}); must not
 * allocate on the steady path.
 */
@FunctionalInterface
public interface ChainHandler {
    /**
     * Handles one chain.
     *
     * @param chain the validated chain, valid until this method returns
     * @return the number of bytes written into the chain's writable part [virtio 2.7.8]
     */
    long handle(DescriptorChain chain);
}

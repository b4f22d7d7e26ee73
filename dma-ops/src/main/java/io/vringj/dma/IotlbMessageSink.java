package io.vringj.dma;

/**
 * Where a {@link DeviceIotlb} sends the messages it originates: a {@code MISS} for an address
 * it has no entry for, an {@code ACCESS_FAIL} for an access refused by permission. In process
 * this may encode the message with {@link IotlbMessageCodec} and queue the bytes; in vhost-user
 * it is the back-end channel's {@code IOTLB_MSG}.
 *
 * <p>Called from device worker threads, outside any lock of the IOTLB; implementations must be
 * thread-safe and must not block on the IOTLB's invalidation.
 */
@FunctionalInterface
public interface IotlbMessageSink {
    /**
     * @param message a MISS or an ACCESS_FAIL
     */
    void send(IotlbMessage message);

    /**
     * Sends a MISS. The default builds the message and calls {@link #send}; a sink that encodes
     * straight into its own buffer overrides this, and a device's miss then allocates nothing.
     *
     * @param iova the address that missed
     * @param permission the access wanted (RO or WO)
     */
    default void sendMiss(long iova, Permission permission) {
        send(IotlbMessage.miss(iova, permission));
    }
}

package io.vringj.dma;

/**
 * A device IOTLB message broke the protocol: truncated bytes, an unknown type or permission,
 * a zero-size or wrapping UPDATE / INVALIDATE, a message the device never receives, or a batch
 * marker out of place. Such a message comes from a peer and is refused with this checked
 * error; the IOTLB is left as it was. The message names the values.
 */
public final class IotlbProtocolException extends Exception {
    private static final long serialVersionUID = 1L;

    /**
     * @param message what was wrong, with the values
     */
    public IotlbProtocolException(String message) {
        super(message, null, false, false);
    }
}

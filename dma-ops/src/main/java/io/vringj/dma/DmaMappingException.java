package io.vringj.dma;

/**
 * A buffer could not be mapped for a device. Checked: a full IOVA space or bounce pool is an
 * ordinary outcome a driver handles (Linux's {@code dma_mapping_error}), and the map left
 * nothing behind. The {@link #reason()} says why; the message names the values.
 */
public final class DmaMappingException extends Exception {
    private static final long serialVersionUID = 1L;

    /** Why a mapping failed. */
    public enum Reason {
        /** The buffer is not inside the guest memory this {@code DmaOps} serves. */
        NOT_GUEST_MEMORY,
        /** The device cannot reach the buffer and this {@code DmaOps} cannot bounce it. */
        UNREACHABLE,
        /** No room left: the IOVA space or the bounce pool is full. */
        NO_SPACE,
        /** The buffer is larger than one mapping may be. */
        TOO_LARGE,
        /** The buffer is empty. */
        EMPTY
    }

    private final Reason reason;

    /**
     * @param reason why the map failed
     * @param message the values involved
     */
    public DmaMappingException(Reason reason, String message) {
        super(reason + ": " + message);
        this.reason = reason;
    }

    /** @return why the map failed */
    public Reason reason() {
        return reason;
    }
}

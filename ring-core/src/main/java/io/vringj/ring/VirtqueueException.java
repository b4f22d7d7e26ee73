package io.vringj.ring;

/**
 * A peer broke a virtqueue rule. The {@link #error()} says which; the message names the
 * values. For a {@linkplain RingError#fatal() fatal} error the queue is now broken and every
 * later call throws this same exception without touching the ring.
 *
 * <p>No stack trace is recorded: this is input from a peer, not a bug in the caller.
 */
public final class VirtqueueException extends Exception {
    private static final long serialVersionUID = 1L;

    private final RingError error;

    /**
     * @param error the rule broken
     * @param detail the values involved
     * @param cause the underlying translation failure, or {@code null}
     */
    public VirtqueueException(RingError error, String detail, Throwable cause) {
        super(error.name() + ": " + error.rule() + " (" + detail + ")", cause, false, false);
        this.error = error;
    }

    /** @return the rule broken */
    public RingError error() {
        return error;
    }

    /** @return whether the queue is now broken for good */
    public boolean fatal() {
        return error.fatal();
    }
}

package io.vringj.vhostuser.channel;

/**
 * Thrown by the operations of a {@link MessageChannel} ({@code tryClaim}, {@code commit},
 * {@code flush}, {@code offer}, {@code poll}, {@code awaitMessages}, {@code awaitSpace}) once the
 * channel is closed, by either side or because the peer broke the protocol; the message says
 * why (the same text as {@link MessageChannel#closeReason()}).
 */
public final class ChannelClosedException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** Why the channel closed, as {@link MessageChannel#closeReason()} says it. */
    private final String reason;

    /**
     * @param reason why the channel closed ("closed by this side", "peer closed: ...", "protocol error: ...")
     */
    public ChannelClosedException(String reason) {
        super("channel closed: " + reason);
        this.reason = reason;
    }

    /**
     * @param reason why the channel closed
     * @param cause what made it close (a ring rule the peer broke, a fault in unmapped memory)
     */
    public ChannelClosedException(String reason, Throwable cause) {
        super("channel closed: " + reason, cause);
        this.reason = reason;
    }

    /** @return why the channel closed, without the "channel closed: " prefix */
    public String reason() {
        return reason;
    }
}

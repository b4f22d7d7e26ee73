package io.vringj.vhostuser.channel;

import java.lang.foreign.MemorySegment;

/**
 * Receives the messages {@link MessageChannel#poll(MessageHandler, int)} hands over, one call per
 * message, in arrival order, on the polling thread.
 */
@FunctionalInterface
public interface MessageHandler {
    /**
     * One message, in place in shared memory (or, for a message that spanned several merged rx
     * buffers, in the channel's reassembly buffer).
     *
     * @param buffer starts at the message's first byte; bytes {@code [0, length)} are the message
     *     (the segment may be longer: what follows is not part of it). Valid only during this call:
     *     the buffer goes back to the peer when the handler returns, and an access after the
     *     channel closed throws {@link IllegalStateException}. Nothing is allocated per message.
     * @param length the message's length in bytes, 0..{@link MessageChannel#maxMessageLength()}
     */
    void onMessage(MemorySegment buffer, int length);
}

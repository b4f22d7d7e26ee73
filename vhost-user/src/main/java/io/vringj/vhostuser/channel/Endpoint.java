package io.vringj.vhostuser.channel;

import java.lang.foreign.MemorySegment;

/**
 * One end's data path behind {@link MessageChannel}: the driver end ({@code connect}) or the
 * device end ({@code serve}). Owned by the application's thread, except {@link #close()} and the
 * close state, which any thread may touch.
 */
abstract class Endpoint {
    /** Why the channel closed, or null while open; written once (the first reason wins). */
    private volatile String closeReason;

    abstract int maxMessageLength();

    abstract MemorySegment tryClaim(int length);

    abstract void commit();

    abstract void abort();

    abstract int flush();

    abstract int poll(MessageHandler handler, int limit);

    abstract boolean awaitMessages(long timeoutNanos);

    abstract boolean awaitSpace(long timeoutNanos);

    abstract boolean packed();

    abstract boolean inOrder();

    abstract void close();

    final String closeReason() {
        // volatile read: pairs with the write in markClosed
        return closeReason;
    }

    /**
     * Records why the channel closed, once.
     *
     * @return whether this call closed it
     */
    final synchronized boolean markClosed(String reason) {
        if (closeReason != null) {
            return false;
        }
        // volatile write: pairs with the reads in closeReason() and checkOpen()
        closeReason = reason;
        return true;
    }

    /** @throws ChannelClosedException if the channel closed */
    final void checkOpen() {
        // volatile read: pairs with the write in markClosed
        String reason = closeReason;
        if (reason != null) {
            throw new ChannelClosedException(reason);
        }
    }
}

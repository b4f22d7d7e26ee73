package io.vringj.vhostuser.channel;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.Objects;

/**
 * One end of a point-to-point message channel between two processes over a virtio-net queue
 * pair in shared memory, set up by vhost-user: one process {@linkplain #serve serves} (the
 * vhost-user back end, the device end), the other {@linkplain #connect connects} (the front end,
 * the driver end, which shares its memory). Either end sends and receives; a message is written
 * and read in place in the shared memory, with no copy on either side.
 *
 * <pre>
 *   connect (driver end)                         serve (device end)
 *   tryClaim → tx buffer ──── tx ring (1) ─────→ poll: the tx buffer in place
 *   poll: the rx buffer  ←─── rx ring (0) ────── tryClaim → the driver's rx buffer
 *   message on the wire: ┌ virtio_net_hdr (12, zero but num_buffers) ┬ message (0..max bytes) ┐
 * </pre>
 *
 * <p><b>Sending.</b> {@link #tryClaim(int)} returns a segment in shared memory to write the
 * message into, or {@code null} when the ring is full (back-pressure: never blocks);
 * {@link #commit()} makes it part of the current batch, {@link #flush()} publishes the batch with
 * one index store and at most one notification of the peer (none when the peer polls, by the
 * ring's event suppression or EVENT_IDX rules). A full batch is flushed by {@code commit} itself.
 * One claim may be outstanding at a time.
 *
 * <p><b>Receiving.</b> {@link #poll(MessageHandler, int)} hands up to {@code limit} messages to
 * the handler, each in place, and gives their buffers back; nothing is allocated per message.
 * A message that fits one rx buffer (the connecting end's {@link ChannelOptions#rxBufferSize()})
 * is handed over in place; a longer one spans several merged rx buffers (MRG_RXBUF) and is
 * copied once: on receive into a reassembly buffer at the connecting end, and at the serving end,
 * on send, from a staging buffer into the merged buffers.
 *
 * <p><b>Waiting.</b> Either poll with an Agrona {@code IdleStrategy}:
 * <pre>{@code
 *   IdleStrategy idle = new BackoffIdleStrategy();
 *   while (running) {
 *       idle.idle(channel.poll(handler, 32));   // 0 messages: back off; some: reset
 *   }
 * }</pre>
 * or sleep on the eventfd: {@link #awaitMessages(Duration)} (and {@link #awaitSpace(Duration)}
 * for a full ring) turns the peer's notifications on, looks at the ring again, and sleeps only if
 * it is still empty (the order that cannot lose a wake-up), then turns them off again, so the
 * peer does not signal while this end polls.
 *
 * <p><b>Closing.</b> {@link #close()} is orderly. At the connecting end, called on the
 * application's thread, it first publishes what was committed and waits (up to the connect
 * time-out) until the serving end took every message, then stops the queues
 * ({@code GET_VRING_BASE}) and disconnects; the serving end disconnects. The peer's next
 * operation throws {@link ChannelClosedException} and its {@link #closeReason()} begins with
 * "peer closed" (at the connecting end, {@code poll} first hands over what the serving end
 * published before it closed: the rings are the connecting end's memory). A peer that breaks
 * the rules (a bad ring, a malformed or too long message, wrong features) closes the channel with
 * "protocol error: ..." and the values; one that disconnects without stopping its queues with
 * "peer gone: ...". The process goes on, and no mapping, fd or thread of the channel is left
 * behind once both ends are closed.
 *
 * <p><b>Threads.</b> One application thread uses a channel (sends and receives); the serving
 * end's rings are worked on that thread only (no worker thread of the library touches them; the
 * vhost-user connection runs on a thread of the channel and takes the rings back only between two
 * operations, see {@link io.vringj.vhostuser.backend.PairOwner}). {@link #close()},
 * {@link #isClosed()} and {@link #closeReason()} may be called from any thread; an operation
 * racing with a close from another thread throws {@link ChannelClosedException}.
 *
 * <p><b>Costs.</b> Per message sent: a claim and a commit (at the serving end, one full fence per
 * claim, to hand the rings back safely); per batch: one release store of the ring index and at most
 * one eventfd write. Per batch received: one acquire load per message and one index store.
 */
public final class MessageChannel implements AutoCloseable {
    private final Endpoint endpoint;

    private MessageChannel(Endpoint endpoint) {
        this.endpoint = endpoint;
    }

    /**
     * Listens on {@code options.socket()} (which must not exist) as the vhost-user back end (the
     * device end) and waits up to {@link ChannelOptions#connectTimeout()} for one peer to connect
     * and start its queues. The socket file is removed once the peer connected.
     *
     * @param options the socket, ring size and layout, longest message
     * @return the channel, open
     * @throws IOException if the socket cannot be made, no peer started within the time-out, or
     *     the peer broke the protocol while setting up
     */
    public static MessageChannel serve(ChannelOptions options) throws IOException {
        Objects.requireNonNull(options, "options");
        return new MessageChannel(DeviceEndpoint.serve(options));
    }

    /**
     * Connects to {@code options.socket()} as the vhost-user front end (the driver end), retrying
     * until {@link ChannelOptions#connectTimeout()}, shares its memory and starts the queue pair.
     * Works against any virtio-net back end that offers VERSION_1 (and RING_PACKED when asked),
     * such as DPDK's {@code net_vhost}.
     *
     * @param options the socket, ring size and layout, longest message
     * @return the channel, open
     * @throws IOException if the back end is not reached in time or breaks the protocol
     */
    public static MessageChannel connect(ChannelOptions options) throws IOException {
        Objects.requireNonNull(options, "options");
        return new MessageChannel(DriverEndpoint.connect(options));
    }

    /** @return the longest message this end sends or accepts */
    public int maxMessageLength() {
        return endpoint.maxMessageLength();
    }

    /**
     * Claims space for one message of {@code length} bytes: write bytes {@code [0, length)} of the
     * returned segment (in shared memory, or a staging buffer for a message the serving end must
     * spread over merged rx buffers), then {@link #commit()} or {@link #abort()}.
     *
     * @param length the message's length, 0..{@link #maxMessageLength()}
     * @return the message's bytes, or {@code null} when the ring is full (back-pressure)
     * @throws IllegalArgumentException if {@code length} is negative or above {@link #maxMessageLength()}
     * @throws IllegalStateException if a claim is already outstanding
     * @throws ChannelClosedException if the channel closed
     */
    public MemorySegment tryClaim(int length) {
        return endpoint.tryClaim(length);
    }

    /**
     * Commits the claimed message: it becomes visible to the peer at the next {@link #flush()},
     * which happens here by itself once a batch is full.
     *
     * @throws IllegalStateException if nothing is claimed
     * @throws ChannelClosedException if the channel closed
     */
    public void commit() {
        endpoint.commit();
    }

    /** Gives the claimed space back unsent; does nothing without a claim. */
    public void abort() {
        endpoint.abort();
    }

    /**
     * Publishes every committed message with one index store and notifies the peer at most once
     * (only if it asked for notifications).
     *
     * @return how many messages were published
     * @throws ChannelClosedException if the channel closed
     */
    public int flush() {
        return endpoint.flush();
    }

    /**
     * Copies one message in and commits it ({@link #tryClaim}, copy, {@link #commit}). Does not
     * flush.
     *
     * @param src where the message is
     * @param offset its first byte in {@code src}
     * @param length its length, 0..{@link #maxMessageLength()}
     * @return false when the ring is full (nothing was sent)
     * @throws IllegalArgumentException if {@code length} is out of range
     * @throws IndexOutOfBoundsException if {@code [offset, offset + length)} is not inside {@code src}
     * @throws ChannelClosedException if the channel closed
     */
    public boolean offer(MemorySegment src, long offset, int length) {
        Objects.checkFromIndexSize(offset, length, src.byteSize());
        MemorySegment buffer = endpoint.tryClaim(length);
        if (buffer == null) {
            return false;
        }
        MemorySegment.copy(src, offset, buffer, 0, length);
        endpoint.commit();
        return true;
    }

    /**
     * Hands up to {@code limit} received messages to {@code handler}, in place and in order, then
     * gives their buffers back to the peer. Never blocks.
     *
     * @param handler gets each message
     * @param limit the most messages to hand over, at least 1
     * @return how many were handed over (0: none waiting)
     * @throws IllegalArgumentException if {@code limit} is below 1
     * @throws ChannelClosedException if the channel closed (also when the peer sent something the
     *     protocol does not allow: the reason says what)
     */
    public int poll(MessageHandler handler, int limit) {
        Objects.requireNonNull(handler, "handler");
        if (limit < 1) {
            throw new IllegalArgumentException("limit " + limit + " must be at least 1");
        }
        return endpoint.poll(handler, limit);
    }

    /**
     * Sleeps until a message may have arrived: publishes what this end committed, turns the
     * peer's notifications on, looks at the ring again and sleeps on the eventfd (the call fd at
     * the connecting end, the kick fd at the serving end) only if it is still empty; turns them
     * off again before returning.
     *
     * @param timeout the longest sleep (at most a year; 0 only looks)
     * @return true when {@link #poll} may find a message, false when the time-out passed
     * @throws IllegalArgumentException if {@code timeout} is negative
     * @throws ChannelClosedException if the channel closed (before or while sleeping)
     */
    public boolean awaitMessages(Duration timeout) {
        return endpoint.awaitMessages(timeoutNanos(timeout));
    }

    /**
     * As {@link #awaitMessages(Duration)} for send space: sleeps until the peer gave buffers
     * back, with the same enable-then-recheck order.
     *
     * @param timeout the longest sleep
     * @return true when {@link #tryClaim} may succeed, false when the time-out passed
     * @throws ChannelClosedException if the channel closed (before or while sleeping)
     */
    public boolean awaitSpace(Duration timeout) {
        return endpoint.awaitSpace(timeoutNanos(timeout));
    }

    /** The longest sleep one await takes: longer time-outs are cut to it (the caller looks again). */
    private static final Duration LONGEST_WAIT = Duration.ofDays(365);

    private static long timeoutNanos(Duration timeout) {
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative()) {
            throw new IllegalArgumentException("timeout " + timeout + " is negative");
        }
        return timeout.compareTo(LONGEST_WAIT) > 0 ? LONGEST_WAIT.toNanos() : timeout.toNanos();
    }

    /** @return whether the channel is closed (by either side, or by a protocol error); any thread */
    public boolean isClosed() {
        return endpoint.closeReason() != null;
    }

    /**
     * @return why the channel closed ("closed by this side", "peer closed: ...", "protocol
     *     error: ..."), or {@code null} while it is open; any thread
     */
    public String closeReason() {
        return endpoint.closeReason();
    }

    /** @return whether VIRTIO_F_IN_ORDER was negotiated */
    public boolean inOrder() {
        return endpoint.inOrder();
    }

    /** @return whether the packed ring layout was negotiated (false: split) */
    public boolean packed() {
        return endpoint.packed();
    }

    /**
     * Closes the channel in order (the peer sees it) and releases its memory mapping, fds and
     * threads. Any thread; idempotent. Operations after it throw {@link ChannelClosedException}.
     */
    @Override
    public void close() {
        endpoint.close();
    }

    @Override
    public String toString() {
        String reason = endpoint.closeReason();
        return "MessageChannel[" + endpoint + (reason == null ? ", open" : ", closed: " + reason) + "]";
    }
}

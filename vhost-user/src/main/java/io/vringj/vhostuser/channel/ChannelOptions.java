package io.vringj.vhostuser.channel;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;

/**
 * How a {@link MessageChannel} is opened: the socket, the ring size and layout, the longest
 * message. Immutable; made with a {@link Builder}, which checks every value and names the value
 * and the rule when one is wrong:
 *
 * <pre>
 *   ChannelOptions options = ChannelOptions.builder(Path.of("/run/app/channel.sock"))
 *       .queueSize(512).maxMessageLength(1024).packed(true).build();
 * </pre>
 *
 * <p>Both ends should use the same {@link #maxMessageLength()}: a message longer than the
 * receiving end's maximum is a protocol error that closes the channel.
 */
public final class ChannelOptions {
    /** The virtio_net_hdr_v1 every message travels behind [virtio 5.1.6]. */
    public static final int HEADER_LENGTH = 12;
    /** The longest message: a 64 KiB frame less its header. */
    public static final int MAX_MESSAGE_LENGTH = 65536 - HEADER_LENGTH;
    /** The largest queue [virtio 2.7, 2.8]. */
    public static final int MAX_QUEUE_SIZE = 32768;
    /** Entries per ring unless told otherwise. */
    public static final int DEFAULT_QUEUE_SIZE = 256;
    /** The longest message unless told otherwise. */
    public static final int DEFAULT_MAX_MESSAGE_LENGTH = 4096;
    /** How long to wait for the peer unless told otherwise. */
    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(10);
    /** The most message bytes one default rx buffer holds; longer messages span merged buffers. */
    static final int DEFAULT_RX_MESSAGE_BYTES = 4096;
    /** The smallest rx buffer: the header and some message bytes. */
    public static final int MIN_RX_BUFFER_SIZE = 64;
    /** The largest rx buffer: header and the longest message. */
    public static final int MAX_RX_BUFFER_SIZE = 65536;

    private final Path socket;
    private final int queueSize;
    private final int maxMessageLength;
    private final int rxBufferSize;
    private final boolean packed;
    private final boolean inOrder;
    private final Duration connectTimeout;
    private final boolean allowUnsealedMemory;

    private ChannelOptions(Builder b, int rxBufferSize) {
        this.socket = b.socket;
        this.queueSize = b.queueSize;
        this.maxMessageLength = b.maxMessageLength;
        this.rxBufferSize = rxBufferSize;
        this.packed = b.packed;
        this.inOrder = b.inOrder;
        this.connectTimeout = b.connectTimeout;
        this.allowUnsealedMemory = b.allowUnsealedMemory;
    }

    /**
     * @param socket the Unix socket the serving end listens on and the connecting end connects to
     * @return a builder with the defaults
     */
    public static Builder builder(Path socket) {
        return new Builder(Objects.requireNonNull(socket, "socket"));
    }

    /** @return the Unix socket the serving end listens on and the connecting end connects to */
    public Path socket() {
        return socket;
    }

    /**
     * @return entries per ring (default {@value #DEFAULT_QUEUE_SIZE}): a power of two in
     *     1..{@value #MAX_QUEUE_SIZE} for split rings, any size in that range for packed rings
     */
    public int queueSize() {
        return queueSize;
    }

    /**
     * @return the longest message in bytes (default {@value #DEFAULT_MAX_MESSAGE_LENGTH}), at most
     *     {@value #MAX_MESSAGE_LENGTH} (64 KiB less the 12-byte virtio_net_hdr)
     */
    public int maxMessageLength() {
        return maxMessageLength;
    }

    /**
     * @return bytes per rx buffer the connecting (driver) end posts: the header and up to 4096
     *     message bytes by default (rounded up to 64). A message that does not fit one buffer
     *     spans several merged ones (MRG_RXBUF) and is copied once on receive.
     */
    public int rxBufferSize() {
        return rxBufferSize;
    }

    /** @return whether to offer (serve) or ask for (connect) the packed ring layout; default false (split) */
    public boolean packed() {
        return packed;
    }

    /**
     * @return whether to offer or ask for VIRTIO_F_IN_ORDER (default true); used only when both
     *     ends offer it and the rings implement it ({@link MessageChannel#inOrder()} says whether it was)
     */
    public boolean inOrder() {
        return inOrder;
    }

    /** @return how long {@code serve} waits for a peer and {@code connect} for the serving end (default 10 s) */
    public Duration connectTimeout() {
        return connectTimeout;
    }

    /**
     * @return whether the serving end maps a front end's memory whose file is not sealed against
     *     shrinking (default false; DPDK's {@code virtio_user} without hugepages shares such a
     *     memfd). The back end then checks the file's size before each ring starts; a front end
     *     that truncates it while the channel runs can still end the process with SIGBUS on an
     *     access, so allow it only for a peer you trust. vringj's connecting end always seals.
     */
    public boolean allowUnsealedMemory() {
        return allowUnsealedMemory;
    }

    @Override
    public String toString() {
        return "ChannelOptions[socket=" + socket + ", queueSize=" + queueSize + ", maxMessageLength="
            + maxMessageLength + ", rxBufferSize=" + rxBufferSize + ", packed=" + packed + ", inOrder=" + inOrder
            + ", connectTimeout=" + connectTimeout + (allowUnsealedMemory ? ", allowUnsealedMemory" : "") + "]";
    }

    /** Collects the options; {@link #build()} checks them. */
    public static final class Builder {
        private final Path socket;
        private int queueSize = DEFAULT_QUEUE_SIZE;
        private int maxMessageLength = DEFAULT_MAX_MESSAGE_LENGTH;
        private int rxBufferSize;
        private boolean packed;
        private boolean inOrder = true;
        private Duration connectTimeout = DEFAULT_CONNECT_TIMEOUT;
        private boolean allowUnsealedMemory;

        private Builder(Path socket) {
            this.socket = socket;
        }

        /**
         * @param size entries per ring (checked by {@link #build()} against the layout)
         * @return this builder
         */
        public Builder queueSize(int size) {
            this.queueSize = size;
            return this;
        }

        /**
         * @param length the longest message, 1..{@value ChannelOptions#MAX_MESSAGE_LENGTH}
         * @return this builder
         * @throws IllegalArgumentException if the length is out of range
         */
        public Builder maxMessageLength(int length) {
            if (length < 1 || length > MAX_MESSAGE_LENGTH) {
                throw new IllegalArgumentException("maxMessageLength " + length + " is outside 1.." + MAX_MESSAGE_LENGTH
                    + " (a frame is at most 65536 bytes, " + HEADER_LENGTH + " of them the virtio_net_hdr)");
            }
            this.maxMessageLength = length;
            return this;
        }

        /**
         * @param size bytes per rx buffer the connecting end posts, header included,
         *     {@value ChannelOptions#MIN_RX_BUFFER_SIZE}..{@value ChannelOptions#MAX_RX_BUFFER_SIZE}
         *     (0: the default, header + min(maxMessageLength, 4096) rounded up to 64)
         * @return this builder
         * @throws IllegalArgumentException if the size is out of range
         */
        public Builder rxBufferSize(int size) {
            if (size != 0 && (size < MIN_RX_BUFFER_SIZE || size > MAX_RX_BUFFER_SIZE)) {
                throw new IllegalArgumentException("rxBufferSize " + size + " is outside " + MIN_RX_BUFFER_SIZE + ".."
                    + MAX_RX_BUFFER_SIZE + " (0 for the default)");
            }
            this.rxBufferSize = size;
            return this;
        }

        /**
         * @param packed offer/ask for the packed ring layout instead of split
         * @return this builder
         */
        public Builder packed(boolean packed) {
            this.packed = packed;
            return this;
        }

        /**
         * @param inOrder offer/ask for VIRTIO_F_IN_ORDER
         * @return this builder
         */
        public Builder inOrder(boolean inOrder) {
            this.inOrder = inOrder;
            return this;
        }

        /**
         * @param timeout how long to wait for the peer, positive
         * @return this builder
         * @throws IllegalArgumentException if the time-out is not positive
         */
        public Builder connectTimeout(Duration timeout) {
            Objects.requireNonNull(timeout, "timeout");
            if (timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException("connectTimeout " + timeout + " must be positive");
            }
            this.connectTimeout = timeout;
            return this;
        }

        /**
         * @param allow let the serving end map a front end's memory that is not sealed against
         *     shrinking (see {@link ChannelOptions#allowUnsealedMemory()})
         * @return this builder
         */
        public Builder allowUnsealedMemory(boolean allow) {
            this.allowUnsealedMemory = allow;
            return this;
        }

        /**
         * @return the options
         * @throws IllegalArgumentException if the queue size does not suit the layout
         */
        public ChannelOptions build() {
            if (queueSize < 1 || queueSize > MAX_QUEUE_SIZE || (!packed && Integer.bitCount(queueSize) != 1)) {
                throw new IllegalArgumentException("queueSize " + queueSize + (packed
                    ? " is outside 1.." + MAX_QUEUE_SIZE + " (a packed ring's size) [virtio 2.8]"
                    : " is not a power of two in 1.." + MAX_QUEUE_SIZE + " (a split ring's size) [virtio 2.7]"));
            }
            int rx = rxBufferSize != 0 ? rxBufferSize
                : (HEADER_LENGTH + Math.min(maxMessageLength, DEFAULT_RX_MESSAGE_BYTES) + 63) & ~63;
            return new ChannelOptions(this, rx);
        }
    }
}

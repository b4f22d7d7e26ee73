package io.vringj.vhostuser.frontend;

import io.vringj.ring.VirtioFeatures;
import java.time.Duration;
import java.util.Objects;

/**
 * How a {@link VhostUserFrontEnd} reaches its back end and what it asks for. Immutable; build one
 * with {@link #client(String)} (connect to a back end's socket, as QEMU does by default) or
 * {@link #server(String)} (listen and let the back end connect, as QEMU's {@code server=on} and
 * DPDK's {@code server=1}).
 *
 * <pre>
 *   FrontEndOptions options = FrontEndOptions.client("/run/vhost/net0.sock")
 *       .queues(2).queueSize(256)
 *       .features(VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_PACKED))
 *       .build();
 * </pre>
 *
 * @param mode client or server
 * @param socketPath the Unix socket path
 * @param queueCount how many vrings the front end sets up (rng: 1; net: 2 per queue pair)
 * @param queueSize Q of every vring (split: a power of two; packed: any size), at most 32768
 * @param wantedFeatures the virtio features the caller can drive; the negotiated set is these
 *     and what the back end offers
 * @param requiredFeatures features without which the caller cannot work (a subset of the wanted
 *     ones); a back end that lacks one is refused
 * @param vringsPerQueueNum 0 for no multiqueue; otherwise ask for {@code PROTOCOL_F_MQ} and read
 *     {@code GET_QUEUE_NUM}'s answer as a count of units of this many vrings (2 for virtio-net,
 *     whose back ends count queue pairs; 1 for a device whose queues are single vrings)
 * @param multiQueueOptional with multiqueue asked for: whether a back end without
 *     {@code PROTOCOL_F_MQ}, or with fewer queues in {@code GET_QUEUE_NUM} than {@code queueCount}
 *     needs, is accepted; the front end then uses only the vrings the back end serves, at least one
 *     unit ({@link VhostUserFrontEnd#usableQueueCount()}). Otherwise such a back end is refused.
 * @param memorySize bytes of guest memory (a multiple of 4096): rings and buffers
 * @param guestPhysicalBase the guest-physical address of the memory's first byte
 * @param replyTimeout how long a back end may take to answer one request
 * @param connectTimeout how long to wait for the connection (client: retrying while the socket is
 *     missing or refuses; server: waiting in accept)
 * @param memoryName the memfd's name (shown in {@code /proc/PID/maps})
 */
public record FrontEndOptions(Mode mode, String socketPath, int queueCount, int queueSize, long wantedFeatures,
                              long requiredFeatures, int vringsPerQueueNum, boolean multiQueueOptional,
                              long memorySize, long guestPhysicalBase,
                              Duration replyTimeout, Duration connectTimeout, String memoryName) {

    /** The largest queue size of either layout [virtio 2.7, 2.8]. */
    public static final int MAX_QUEUE_SIZE = 32768;
    /** The most vrings a vhost-user front end can name (the KICK/CALL index is 8 bits). */
    public static final int MAX_QUEUES = 256;

    /** Who connects to whom. */
    public enum Mode {
        /** The front end connects to a listening back end. */
        CLIENT,
        /** The front end listens; the back end connects. */
        SERVER
    }

    /**
     * Checks every option.
     *
     * @throws IllegalArgumentException naming the option, its value and the rule
     */
    public FrontEndOptions {
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(socketPath, "socketPath");
        Objects.requireNonNull(replyTimeout, "replyTimeout");
        Objects.requireNonNull(connectTimeout, "connectTimeout");
        Objects.requireNonNull(memoryName, "memoryName");
        if (queueCount < 1 || queueCount > MAX_QUEUES) {
            throw new IllegalArgumentException("queue count " + queueCount + " is outside 1.." + MAX_QUEUES);
        }
        if (queueSize < 1 || queueSize > MAX_QUEUE_SIZE) {
            throw new IllegalArgumentException("queue size " + queueSize + " is outside 1.." + MAX_QUEUE_SIZE);
        }
        if (!VirtioFeatures.has(wantedFeatures, VirtioFeatures.RING_PACKED) && Integer.bitCount(queueSize) != 1) {
            throw new IllegalArgumentException("queue size " + queueSize + " is not a power of two, which a split ring "
                + "needs (want RING_PACKED for other sizes)");
        }
        if (VirtioFeatures.has(wantedFeatures, VirtioFeatures.ACCESS_PLATFORM)) {
            throw new IllegalArgumentException("features 0x" + Long.toHexString(wantedFeatures) + " include "
                + "ACCESS_PLATFORM (bit 33); this front end shares its memory directly and sends no IOTLB messages");
        }
        if ((wantedFeatures & VirtioFeatures.bit(30)) != 0) {
            throw new IllegalArgumentException("features 0x" + Long.toHexString(wantedFeatures) + " include bit 30 "
                + "(VHOST_USER_F_PROTOCOL_FEATURES); the front end negotiates it itself");
        }
        if ((requiredFeatures & ~wantedFeatures) != 0) {
            throw new IllegalArgumentException("required features 0x" + Long.toHexString(requiredFeatures)
                + " are not all wanted (0x" + Long.toHexString(wantedFeatures) + ")");
        }
        if (vringsPerQueueNum < 0 || vringsPerQueueNum > MAX_QUEUES) {
            throw new IllegalArgumentException("vrings per GET_QUEUE_NUM unit " + vringsPerQueueNum + " is outside 0.."
                + MAX_QUEUES + " (0: no multiqueue)");
        }
        if (memorySize < SharedMemory.PAGE || memorySize % SharedMemory.PAGE != 0) {
            throw new IllegalArgumentException("memory size " + memorySize + " must be a positive multiple of "
                + SharedMemory.PAGE);
        }
        if (guestPhysicalBase % SharedMemory.PAGE != 0 || Long.compareUnsigned(guestPhysicalBase, -memorySize) > 0) {
            throw new IllegalArgumentException(String.format("guest-physical base 0x%x must be page-aligned and leave "
                + "room for %d bytes below 2^64", guestPhysicalBase, memorySize));
        }
        long replyMillis = replyTimeout.toMillis();
        if (replyMillis < 1 || replyMillis > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("reply time-out " + replyTimeout + " is outside 1 ms..24 days");
        }
        if (connectTimeout.isNegative() || connectTimeout.toMillis() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("connect time-out " + connectTimeout + " is outside 0..24 days");
        }
        if (memoryName.isEmpty() || memoryName.length() > 200 || memoryName.indexOf('\0') >= 0
            || memoryName.indexOf('/') >= 0) {
            throw new IllegalArgumentException("memfd name '" + memoryName + "' must be 1..200 characters without "
                + "'/' or NUL");
        }
    }

    /**
     * @param socketPath the back end's socket
     * @return a builder for a front end that connects to it
     */
    public static Builder client(String socketPath) {
        return new Builder(Mode.CLIENT, socketPath);
    }

    /**
     * @param socketPath the socket to create and listen on (must not exist)
     * @return a builder for a front end that waits for a back end to connect
     */
    public static Builder server(String socketPath) {
        return new Builder(Mode.SERVER, socketPath);
    }

    /** Builds {@link FrontEndOptions}; defaults: 1 queue of 256, VERSION_1, 4 MiB, 2 s replies, 5 s connect. */
    public static final class Builder {
        private final Mode mode;
        private final String socketPath;
        private int queueCount = 1;
        private int queueSize = 256;
        private long wantedFeatures = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        private long requiredFeatures;
        private int vringsPerQueueNum;
        private boolean multiQueueOptional;
        private long memorySize = 4L << 20;
        private long guestPhysicalBase;
        private Duration replyTimeout = Duration.ofSeconds(2);
        private Duration connectTimeout = Duration.ofSeconds(5);
        private String memoryName = "vringj-guest";

        private Builder(Mode mode, String socketPath) {
            this.mode = mode;
            this.socketPath = Objects.requireNonNull(socketPath, "socketPath");
        }

        /**
         * @param count how many vrings to set up
         * @return this builder
         */
        public Builder queues(int count) {
            this.queueCount = count;
            return this;
        }

        /**
         * @param size Q of every vring
         * @return this builder
         */
        public Builder queueSize(int size) {
            this.queueSize = size;
            return this;
        }

        /**
         * @param wanted the features the caller can drive (device bits such as MRG_RXBUF included)
         * @return this builder
         */
        public Builder features(long wanted) {
            this.wantedFeatures = wanted;
            return this;
        }

        /**
         * @param required features the caller cannot do without
         * @return this builder
         */
        public Builder requireFeatures(long required) {
            this.requiredFeatures = required;
            return this;
        }

        /**
         * Asks for multiqueue ({@code PROTOCOL_F_MQ}) and checks {@code GET_QUEUE_NUM}.
         *
         * @param vringsPerUnit how many vrings one unit of the back end's answer stands for
         * @return this builder
         */
        public Builder multiQueue(int vringsPerUnit) {
            this.vringsPerQueueNum = vringsPerUnit;
            this.multiQueueOptional = false;
            return this;
        }

        /**
         * Asks for multiqueue as {@link #multiQueue(int)} does, but falls back to the vrings the
         * back end serves (at least one unit) when it lacks {@code PROTOCOL_F_MQ} or answers
         * {@code GET_QUEUE_NUM} with fewer units than the configured vrings need.
         *
         * @param vringsPerUnit how many vrings one unit of the back end's answer stands for
         * @return this builder
         */
        public Builder multiQueueIfOffered(int vringsPerUnit) {
            this.vringsPerQueueNum = vringsPerUnit;
            this.multiQueueOptional = true;
            return this;
        }

        /**
         * @param bytes guest memory size
         * @return this builder
         */
        public Builder memorySize(long bytes) {
            this.memorySize = bytes;
            return this;
        }

        /**
         * @param base guest-physical address of the memory
         * @return this builder
         */
        public Builder guestPhysicalBase(long base) {
            this.guestPhysicalBase = base;
            return this;
        }

        /**
         * @param timeout how long one reply may take
         * @return this builder
         */
        public Builder replyTimeout(Duration timeout) {
            this.replyTimeout = timeout;
            return this;
        }

        /**
         * @param timeout how long to wait for the connection
         * @return this builder
         */
        public Builder connectTimeout(Duration timeout) {
            this.connectTimeout = timeout;
            return this;
        }

        /**
         * @param name the memfd's name
         * @return this builder
         */
        public Builder memoryName(String name) {
            this.memoryName = name;
            return this;
        }

        /**
         * @return the options
         * @throws IllegalArgumentException if an option is out of range
         */
        public FrontEndOptions build() {
            return new FrontEndOptions(mode, socketPath, queueCount, queueSize, wantedFeatures, requiredFeatures,
                vringsPerQueueNum, multiQueueOptional, memorySize, guestPhysicalBase, replyTimeout, connectTimeout,
                memoryName);
        }
    }
}

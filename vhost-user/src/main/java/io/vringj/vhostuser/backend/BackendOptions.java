package io.vringj.vhostuser.backend;

import io.vringj.vhostuser.VhostUserChannel;

/**
 * How a {@link VhostUserServer} treats its front ends. Immutable; start from {@link #defaults()}
 * and change one setting at a time:
 *
 * <pre>
 *   BackendOptions.defaults().withMaxConnections(4).withAllowUnsealedMemory(true)
 * </pre>
 *
 * @param stallMillis how long the rest of a message may take once it began, in milliseconds (at least 1)
 * @param allowUnsealedMemory whether to map a memory region whose file is not sealed against
 *     shrinking ({@code F_SEAL_SHRINK}). The back end then checks the file's size before each
 *     pass over a ring and closes the connection whose file shrank; a truncation that races
 *     with an access can still end the process (HotSpot turns SIGBUS in an unsafe access into an
 *     {@link InternalError} on most paths, not all). Off by default; QEMU's
 *     {@code memory-backend-memfd} seals its file, so it needs no such permission.
 * @param maxConnections how many front ends are served at once (at least 1); one more is
 *     refused with a logged reason
 * @param busyPollMicros how long a vring's worker busy polls, in microseconds, before it sleeps
 *     in {@code poll} (0 to {@value #MAX_BUSY_POLL_MICROS}; 0, the default, never): once its ring
 *     runs dry it keeps the driver's kicks disabled and polls the ring, and once a translation
 *     misses in the device IOTLB it polls for the UPDATE, as Linux vhost's
 *     {@code busyloop_timeout} does. A chain found starts the time again. It trades a core
 *     spinning for the kick and the wake-up from {@code poll} on each request: worth it when
 *     requests come one at a time and a core is free; on a machine with no spare core the
 *     spinning thread competes with the front end. Queue-pair (net) workers do not busy poll.
 */
public record BackendOptions(int stallMillis, boolean allowUnsealedMemory, int maxConnections, int busyPollMicros) {
    /** Front ends served at once unless told otherwise. */
    public static final int DEFAULT_MAX_CONNECTIONS = 16;
    /** The longest busy poll, in microseconds (one second). */
    public static final int MAX_BUSY_POLL_MICROS = 1_000_000;

    /**
     * @throws IllegalArgumentException if {@code stallMillis} or {@code maxConnections} is below 1,
     *     or {@code busyPollMicros} is outside 0..{@value #MAX_BUSY_POLL_MICROS}
     */
    public BackendOptions {
        if (stallMillis < 1) {
            throw new IllegalArgumentException("stallMillis " + stallMillis + " must be at least 1");
        }
        if (maxConnections < 1) {
            throw new IllegalArgumentException("maxConnections " + maxConnections + " must be at least 1");
        }
        if (busyPollMicros < 0 || busyPollMicros > MAX_BUSY_POLL_MICROS) {
            throw new IllegalArgumentException("busyPollMicros " + busyPollMicros + " must be within 0.."
                + MAX_BUSY_POLL_MICROS + " (microseconds; 0 never busy polls)");
        }
    }

    /**
     * The options without busy polling.
     *
     * @param stallMillis how long the rest of a message may take once it began, in milliseconds (at least 1)
     * @param allowUnsealedMemory whether to map a memory region whose file is not sealed against shrinking
     * @param maxConnections how many front ends are served at once (at least 1)
     * @throws IllegalArgumentException if {@code stallMillis} or {@code maxConnections} is below 1
     */
    public BackendOptions(int stallMillis, boolean allowUnsealedMemory, int maxConnections) {
        this(stallMillis, allowUnsealedMemory, maxConnections, 0);
    }

    /**
     * @return the defaults: the channel's stall time-out, sealed memory only,
     *     {@value #DEFAULT_MAX_CONNECTIONS} front ends, no busy polling
     */
    public static BackendOptions defaults() {
        return new BackendOptions(VhostUserChannel.DEFAULT_STALL_MILLIS, false, DEFAULT_MAX_CONNECTIONS);
    }

    /** @param millis the stall time-out @return these options with it */
    public BackendOptions withStallMillis(int millis) {
        return new BackendOptions(millis, allowUnsealedMemory, maxConnections, busyPollMicros);
    }

    /** @param allow whether to accept unsealed memory files @return these options with it */
    public BackendOptions withAllowUnsealedMemory(boolean allow) {
        return new BackendOptions(stallMillis, allow, maxConnections, busyPollMicros);
    }

    /** @param max front ends served at once @return these options with it */
    public BackendOptions withMaxConnections(int max) {
        return new BackendOptions(stallMillis, allowUnsealedMemory, max, busyPollMicros);
    }

    /**
     * @param micros how long a vring's worker busy polls before sleeping, 0..{@value #MAX_BUSY_POLL_MICROS}
     * @return these options with it
     */
    public BackendOptions withBusyPollMicros(int micros) {
        return new BackendOptions(stallMillis, allowUnsealedMemory, maxConnections, micros);
    }
}

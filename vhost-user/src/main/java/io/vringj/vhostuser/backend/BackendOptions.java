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
 */
public record BackendOptions(int stallMillis, boolean allowUnsealedMemory, int maxConnections) {
    /** Front ends served at once unless told otherwise. */
    public static final int DEFAULT_MAX_CONNECTIONS = 16;

    /**
     * @throws IllegalArgumentException if {@code stallMillis} or {@code maxConnections} is below 1
     */
    public BackendOptions {
        if (stallMillis < 1) {
            throw new IllegalArgumentException("stallMillis " + stallMillis + " must be at least 1");
        }
        if (maxConnections < 1) {
            throw new IllegalArgumentException("maxConnections " + maxConnections + " must be at least 1");
        }
    }

    /** @return the defaults: the channel's stall time-out, sealed memory only, {@value #DEFAULT_MAX_CONNECTIONS} front ends */
    public static BackendOptions defaults() {
        return new BackendOptions(VhostUserChannel.DEFAULT_STALL_MILLIS, false, DEFAULT_MAX_CONNECTIONS);
    }

    /** @param millis the stall time-out @return these options with it */
    public BackendOptions withStallMillis(int millis) {
        return new BackendOptions(millis, allowUnsealedMemory, maxConnections);
    }

    /** @param allow whether to accept unsealed memory files @return these options with it */
    public BackendOptions withAllowUnsealedMemory(boolean allow) {
        return new BackendOptions(stallMillis, allow, maxConnections);
    }

    /** @param max front ends served at once @return these options with it */
    public BackendOptions withMaxConnections(int max) {
        return new BackendOptions(stallMillis, allowUnsealedMemory, max);
    }
}

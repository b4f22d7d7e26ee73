package io.vringj.vhostuser.frontend;

/** Where a {@link VhostUserFrontEnd}'s connection to its back end stands. */
public enum FrontEndState {
    /** Negotiated and sharing memory; queues may run. */
    CONNECTED,
    /**
     * The back end went away (socket hang-up or end of stream) or broke the protocol; the
     * connection's resources are still held until {@link VhostUserFrontEnd#reconnect()} or
     * {@link VhostUserFrontEnd#close()}.
     */
    DISCONNECTED,
    /** {@link VhostUserFrontEnd#close()} ran; nothing is held. */
    CLOSED
}

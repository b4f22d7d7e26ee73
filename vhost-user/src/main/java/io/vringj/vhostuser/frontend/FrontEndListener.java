package io.vringj.vhostuser.frontend;

/**
 * Told when a {@link VhostUserFrontEnd} loses its back end. Called once per lost connection, on
 * the front end's monitor thread or on the thread whose request found the loss; it must not
 * block for long. It may call {@link VhostUserFrontEnd#reconnect()}.
 */
@FunctionalInterface
public interface FrontEndListener {
    /**
     * @param frontEnd the front end, now {@link FrontEndState#DISCONNECTED}
     * @param reason what happened, for logs
     */
    void disconnected(VhostUserFrontEnd frontEnd, String reason);
}

package io.vringj.vhostuser;

/**
 * The peer sent something the protocol does not allow. For the back end: a front end's wrong
 * size, unknown request, missing fd or address outside the memory table; the back end closes that
 * connection and logs this message. For the front end: a back end's reply with the wrong request
 * code, size or flags, a missing reply (time-out), or a connection closed mid-setup; the front
 * end closes that connection. Either way the process carries on.
 */
public final class ProtocolException extends Exception {
    private static final long serialVersionUID = 1L;

    /** @param reason what was wrong, naming the value and the rule */
    public ProtocolException(String reason) {
        super(reason);
    }

    /**
     * @param reason what was wrong, naming the value and the rule
     * @param cause the underlying error
     */
    public ProtocolException(String reason, Throwable cause) {
        super(reason, cause);
    }
}

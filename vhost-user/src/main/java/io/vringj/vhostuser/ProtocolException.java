package io.vringj.vhostuser;

/**
 * The front end sent something the protocol does not allow (a wrong size, an unknown request, a
 * missing fd, an address outside the memory table). The back end closes that connection and
 * logs this message; the process carries on.
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

package io.vringj.vhostuser.backend;

import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.VhostUserMessage;
import io.vringj.vhostuser.VhostUserProtocol;

/** Checks every request handler applies to its message: payload size and fd count. */
final class Requests {
    private Requests() {
    }

    /**
     * @param m the request
     * @param size the payload size it must have
     * @param fds the number of fds it must carry
     * @throws ProtocolException naming the request, what it had and what it takes
     */
    static void expect(VhostUserMessage m, int size, int fds) throws ProtocolException {
        if (m.size() != size) {
            throw new ProtocolException(VhostUserProtocol.requestName(m.request()) + " has a " + m.size()
                + "-byte payload; it must be " + size + " bytes");
        }
        if (m.receivedFdCount() != fds) {
            throw new ProtocolException(VhostUserProtocol.requestName(m.request()) + " came with "
                + m.receivedFdCount() + " fds; it takes " + fds);
        }
    }
}

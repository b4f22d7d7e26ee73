package io.vringj.perf.channel;

/** What the peer process does with the messages it receives. */
public enum PeerRole {
    /** Consumes and checks every message (throughput). */
    SINK,
    /** Checks every message and sends it straight back (round trip). */
    ECHO;

    /**
     * @param name {@code sink} or {@code echo}, case-insensitive
     * @return the role
     * @throws IllegalArgumentException naming the unknown role
     */
    public static PeerRole of(String name) {
        for (PeerRole r : values()) {
            if (r.name().equalsIgnoreCase(name)) {
                return r;
            }
        }
        throw new IllegalArgumentException("unknown peer role \"" + name + "\"; the roles are sink and echo");
    }
}

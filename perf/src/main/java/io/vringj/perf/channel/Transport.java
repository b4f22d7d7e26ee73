package io.vringj.perf.channel;

import java.util.Locale;

/** The transports the two-process questions compare, by the id the peer's command line and the benchmarks use. */
public enum Transport {
    /**
     * vringj's {@link io.vringj.vhostuser.channel.MessageChannel}: the peer serves, the benchmark
     * connects and sends as the driver end.
     */
    VRINGJ("vringj"),
    /** The same channel the other way round: the benchmark serves and sends as the device end, the peer connects. */
    VRINGJ_DEVICE_END("vringjDeviceEnd"),
    /** Aeron IPC through a media driver embedded in the benchmark process. */
    AERON("aeron"),
    /** Agrona's {@code OneToOneRingBuffer} in a file both processes map. */
    AGRONA_MMAP("agronaMmap");

    private final String id;

    Transport(String id) {
        this.id = id;
    }

    /** @return the id: also the benchmark method's name */
    public String id() {
        return id;
    }

    /**
     * @param id a transport's id, case-insensitive
     * @return the transport
     * @throws IllegalArgumentException naming the unknown id and the known ones
     */
    public static Transport of(String id) {
        for (Transport t : values()) {
            if (t.id.equalsIgnoreCase(id)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown transport \"" + id + "\"; the transports are vringj, vringjDeviceEnd,"
            + " aeron and agronaMmap");
    }

    @Override
    public String toString() {
        return id.toLowerCase(Locale.ROOT);
    }
}

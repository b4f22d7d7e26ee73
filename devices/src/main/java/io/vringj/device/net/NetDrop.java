package io.vringj.device.net;

/**
 * Why a frame or buffer was dropped, on either side. Each is counted in {@link NetStatistics};
 * none is an exception: a peer's bad frame is input, and the queue goes on.
 */
public enum NetDrop {
    // --- device side ---
    /** A frame for rx found no posted rx buffer (the driver has not refilled). */
    NO_RX_BUFFER("no rx buffer posted"),
    /** A frame for rx met an IOTLB miss on an rx buffer while the frames already waiting for the update filled the staging area. */
    RX_TRANSLATION_MISS("rx buffer not yet translated (IOTLB miss)"),
    /**
     * A frame longer than the device's maximum, or one that does not fit the rx buffers: one chain
     * without MRG_RXBUF [virtio 5.1.6.3.1], the most chains one frame may span with it.
     */
    FRAME_TOO_LONG("frame longer than the maximum or than the rx buffers"),
    /** A tx frame shorter than an Ethernet header (14 bytes). */
    RUNT_FRAME("frame shorter than an Ethernet header"),
    /** A tx chain shorter than the virtio-net header, or a header asking for offloads not negotiated [virtio 5.1.6.2.1]. */
    BAD_HEADER("tx chain shorter than the header, or header with offloads not negotiated"),
    /** A tx chain with a device-writable descriptor: tx buffers are device-readable [virtio 5.1.6.2]. */
    BAD_TX_CHAIN("tx chain with a device-writable descriptor"),
    /**
     * An rx chain with a device-readable descriptor, or shorter than the header: rx buffers are
     * device-writable and each holds at least the header [virtio 5.1.6.3.1]. Returned with 0 bytes.
     */
    BAD_RX_BUFFER("rx chain with a readable descriptor or shorter than the header"),

    // --- driver side: what a device may have written ---
    /** A used rx buffer shorter than the header. */
    SHORT_RX_BUFFER("used rx length shorter than the header"),
    /** {@code num_buffers} is 0, or more buffers than the device had used [virtio 5.1.6.4]. */
    BAD_NUM_BUFFERS("num_buffers is 0 or more than the buffers used");

    private final String rule;

    NetDrop(String rule) {
        this.rule = rule;
    }

    /** @return what went wrong, in a few words */
    public String rule() {
        return rule;
    }
}

package io.vringj.vhostuser;

/**
 * Numbers of the vhost-user protocol (QEMU {@code docs/interop/vhost-user.rst}).
 *
 * <pre>
 *   header (12 bytes, native endian)     payloads used here
 *   &#64;0 u32 request                        u64:          &#64;0 u64
 *   &#64;4 u32 flags  version 1 in bits 0-1   vring state:  &#64;0 u32 index, &#64;4 u32 num
 *                 REPLY 0x4, NEED_REPLY 0x8
 *   &#64;8 u32 size   payload bytes           vring addr:   &#64;0 u32 index, &#64;4 u32 flags, &#64;8 u64 desc,
 *                                                       &#64;16 u64 used, &#64;24 u64 avail, &#64;32 u64 log
 *   fds ride as SCM_RIGHTS on the header  memory:       &#64;0 u32 n, &#64;4 pad, then n x {u64 gpa,
 *                                                       u64 size, u64 uaddr, u64 mmap_offset}
 *                                         iotlb:        &#64;0 u64 iova, &#64;8 u64 size, &#64;16 u64 uaddr,
 *                                                       &#64;24 u8 perm, &#64;25 u8 type
 * </pre>
 */
public final class VhostUserProtocol {
    /** Header size in bytes. */
    public static final int HEADER_SIZE = 12;
    /** The largest payload accepted; QEMU's largest (a memory table of 8 regions, a config space) is smaller. */
    public static final int MAX_PAYLOAD = 4096;
    /** The most fds one message may carry (the memory table's 8 regions). */
    public static final int MAX_FDS = 8;

    /** Header flags: the protocol version (bits 0-1). */
    public static final int VERSION = 0x1;
    /** Header flags: the version mask. */
    public static final int VERSION_MASK = 0x3;
    /** Header flags: this message is a reply. */
    public static final int FLAG_REPLY = 0x4;
    /** Header flags: the sender wants a reply (with REPLY_ACK). */
    public static final int FLAG_NEED_REPLY = 0x8;

    /** Front-end request. */
    public static final int GET_FEATURES = 1;
    /** Front-end request. */
    public static final int SET_FEATURES = 2;
    /** Front-end request. */
    public static final int SET_OWNER = 3;
    /** Front-end request. */
    public static final int RESET_OWNER = 4;
    /** Front-end request. */
    public static final int SET_MEM_TABLE = 5;
    /** Front-end request. */
    public static final int SET_VRING_NUM = 8;
    /** Front-end request. */
    public static final int SET_VRING_ADDR = 9;
    /** Front-end request. */
    public static final int SET_VRING_BASE = 10;
    /** Front-end request. */
    public static final int GET_VRING_BASE = 11;
    /** Front-end request. */
    public static final int SET_VRING_KICK = 12;
    /** Front-end request. */
    public static final int SET_VRING_CALL = 13;
    /** Front-end request. */
    public static final int SET_VRING_ERR = 14;
    /** Front-end request. */
    public static final int GET_PROTOCOL_FEATURES = 15;
    /** Front-end request. */
    public static final int SET_PROTOCOL_FEATURES = 16;
    /** Front-end request. */
    public static final int GET_QUEUE_NUM = 17;
    /** Front-end request. */
    public static final int SET_VRING_ENABLE = 18;
    /** Front-end request. */
    public static final int SET_BACKEND_REQ_FD = 21;
    /** Front-end request. */
    public static final int IOTLB_MSG = 22;
    /** Front-end request. */
    public static final int GET_CONFIG = 24;
    /** Front-end request. */
    public static final int SET_CONFIG = 25;
    /** Front-end request: the virtio device status byte, as a u64 (with the STATUS protocol feature). */
    public static final int SET_STATUS = 39;
    /** Front-end request: read back the device status (with the STATUS protocol feature). */
    public static final int GET_STATUS = 40;

    /** Back-end request (on the back-end channel): an IOTLB message, here a miss. */
    public static final int BACKEND_IOTLB_MSG = 1;

    /** Virtio feature bit: the back end speaks the protocol-feature extension. */
    public static final int F_PROTOCOL_FEATURES = 30;

    /** Protocol feature bit: multiple queues. */
    public static final int PROTOCOL_F_MQ = 0;
    /** Protocol feature bit: NEED_REPLY gets a u64 status reply. */
    public static final int PROTOCOL_F_REPLY_ACK = 3;
    /** Protocol feature bit: the back-end request channel. */
    public static final int PROTOCOL_F_BACKEND_REQ = 5;
    /** Protocol feature bit: device config space messages. */
    public static final int PROTOCOL_F_CONFIG = 9;
    /** Protocol feature bit: SET_STATUS / GET_STATUS carry the virtio device status. */
    public static final int PROTOCOL_F_STATUS = 16;

    /** Device status bit [virtio 2.1]: the driver found the device. */
    public static final int STATUS_ACKNOWLEDGE = 1;
    /** Device status bit [virtio 2.1]: the driver knows how to drive it. */
    public static final int STATUS_DRIVER = 2;
    /** Device status bit [virtio 2.1]: the driver is set up and ready. */
    public static final int STATUS_DRIVER_OK = 4;
    /** Device status bit [virtio 2.1]: feature negotiation is complete. */
    public static final int STATUS_FEATURES_OK = 8;

    /** The most vrings one connection can name: KICK/CALL/ERR carry the index in 8 bits. */
    public static final int MAX_VRINGS = 256;

    /** KICK/CALL/ERR payload: the ring index mask. */
    public static final long VRING_IDX_MASK = 0xFF;
    /** KICK/CALL/ERR payload: no fd is passed (polling / no notification). */
    public static final long VRING_NOFD_MASK = 0x100;

    /** Vring address flag: log writes to the used ring (needs LOG_ALL; never offered here). */
    public static final int VRING_F_LOG = 0x1;

    /** IOTLB message type. */
    public static final int IOTLB_MISS = 1;
    /** IOTLB message type. */
    public static final int IOTLB_UPDATE = 2;
    /** IOTLB message type. */
    public static final int IOTLB_INVALIDATE = 3;
    /** IOTLB message type. */
    public static final int IOTLB_ACCESS_FAIL = 4;
    /** IOTLB message size on the wire ({@code struct vhost_iotlb_msg} with its padding). */
    public static final int IOTLB_MSG_SIZE = 32;

    private VhostUserProtocol() {
    }

    /**
     * @param request a front-end request number
     * @return its name, for logs
     */
    public static String requestName(int request) {
        return switch (request) {
            case GET_FEATURES -> "GET_FEATURES";
            case SET_FEATURES -> "SET_FEATURES";
            case SET_OWNER -> "SET_OWNER";
            case RESET_OWNER -> "RESET_OWNER";
            case SET_MEM_TABLE -> "SET_MEM_TABLE";
            case 6 -> "SET_LOG_BASE";
            case 7 -> "SET_LOG_FD";
            case SET_VRING_NUM -> "SET_VRING_NUM";
            case SET_VRING_ADDR -> "SET_VRING_ADDR";
            case SET_VRING_BASE -> "SET_VRING_BASE";
            case GET_VRING_BASE -> "GET_VRING_BASE";
            case SET_VRING_KICK -> "SET_VRING_KICK";
            case SET_VRING_CALL -> "SET_VRING_CALL";
            case SET_VRING_ERR -> "SET_VRING_ERR";
            case GET_PROTOCOL_FEATURES -> "GET_PROTOCOL_FEATURES";
            case SET_PROTOCOL_FEATURES -> "SET_PROTOCOL_FEATURES";
            case GET_QUEUE_NUM -> "GET_QUEUE_NUM";
            case SET_VRING_ENABLE -> "SET_VRING_ENABLE";
            case SET_BACKEND_REQ_FD -> "SET_BACKEND_REQ_FD";
            case IOTLB_MSG -> "IOTLB_MSG";
            case GET_CONFIG -> "GET_CONFIG";
            case SET_CONFIG -> "SET_CONFIG";
            case SET_STATUS -> "SET_STATUS";
            case GET_STATUS -> "GET_STATUS";
            default -> "request " + request;
        };
    }
}

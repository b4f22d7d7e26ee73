/**
 * vringj vhost-user: the transport that carries virtio devices across processes. The shared part
 * (message codec, fd passing, eventfds, protocol constants) is {@code io.vringj.vhostuser}; the
 * back end that serves a front end (QEMU, DPDK virtio_user) is {@code io.vringj.vhostuser.backend};
 * the front end that drives a back end (DPDK net_vhost, vringj's back end) is
 * {@code io.vringj.vhostuser.frontend}; the message channel between two processes built on both is
 * {@code io.vringj.vhostuser.channel}; libc through FFM lives in the unexported {@code io.vringj.vhostuser.linux}.
 */
module io.vringj.vhostuser {
    requires transitive io.vringj.devices;
    requires info.picocli;
    requires java.logging;
    requires jdk.unsupported;

    exports io.vringj.vhostuser;
    exports io.vringj.vhostuser.backend;
    exports io.vringj.vhostuser.channel;
    exports io.vringj.vhostuser.frontend;
    exports io.vringj.vhostuser.frontend.net;

    opens io.vringj.vhostuser.backend to info.picocli;
    opens io.vringj.vhostuser.frontend.net to info.picocli;
}

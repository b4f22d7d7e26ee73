/**
 * vringj vhost-user: libc through FFM (Unix sockets with fd passing, mmap, eventfd, poll), the
 * vhost-user protocol, and device back ends (virtio-rng) that a real QEMU drives.
 */
module io.vringj.vhostuser {
    requires transitive io.vringj.dma;
    requires info.picocli;
    requires java.logging;

    exports io.vringj.vhostuser;

    opens io.vringj.vhostuser to info.picocli;
}

/**
 * vringj ring-core: guest memory, the device's view of it, and the virtio split ring with its
 * driver and device sides.
 */
module io.vringj.core {
    requires transitive org.agrona;

    exports io.vringj.memory;
    exports io.vringj.ring;
}

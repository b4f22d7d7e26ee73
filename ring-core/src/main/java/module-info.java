/**
 * vringj ring-core: guest memory and the device's view of it ({@code io.vringj.memory}); the
 * virtio split and packed rings, their layout, and the driver and device sides of a virtqueue
 * with the validation of everything a peer writes ({@code io.vringj.ring}).
 */
module io.vringj.core {
    requires transitive org.agrona;

    exports io.vringj.memory;
    exports io.vringj.ring;
}

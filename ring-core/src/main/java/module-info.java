/**
 * vringj ring-core: guest memory and the device's view of it ({@code io.vringj.memory}); the
 * virtio split and packed rings, their layout, the driver and device sides of a virtqueue with the
 * validation of everything a peer writes, and the device loop ({@code io.vringj.ring}). Agrona is
 * optional: only the Agrona adapters ({@code DeviceAgent}, {@code ParkingIdleStrategy}) need it.
 */
module io.vringj.core {
    requires static org.agrona;

    exports io.vringj.memory;
    exports io.vringj.ring;
}

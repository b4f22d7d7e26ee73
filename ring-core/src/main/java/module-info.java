/**
 * vringj ring-core: guest memory, the device's view of it, and the virtio split and packed rings
 * with their driver and device sides and the device loop. Agrona is optional: only the Agrona
 * adapters ({@code DeviceAgent}, {@code ParkingIdleStrategy}) need it at run time.
 */
module io.vringj.core {
    requires static org.agrona;

    exports io.vringj.memory;
    exports io.vringj.ring;
}

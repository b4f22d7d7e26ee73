package io.vringj.ring;

/**
 * Where a virtqueue's three areas are, as the VIRTIO spec names them [virtio 2.6]: the
 * descriptor area, the driver area (split: the available ring; packed: the driver event
 * suppression structure) and the device area (split: the used ring; packed: the device event
 * suppression structure). For the driver these are guest-physical addresses; for the device
 * they are bus addresses, translated through its {@link io.vringj.memory.AddressSpace}.
 *
 * @param descriptorArea the descriptor table (split) or descriptor ring (packed)
 * @param driverArea the available ring (split) or driver event suppression (packed)
 * @param deviceArea the used ring (split) or device event suppression (packed)
 */
public record RingAddresses(long descriptorArea, long driverArea, long deviceArea) {
    @Override
    public String toString() {
        return String.format("RingAddresses[desc=0x%x, driver=0x%x, device=0x%x]", descriptorArea, driverArea, deviceArea);
    }
}

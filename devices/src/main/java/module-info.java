/**
 * vringj devices: the logic of virtio devices (rng, and net on both sides) over ring-core and
 * dma-ops queues. No sockets, no transport: a device is driven in one process by tests, and by
 * the vhost-user module across processes.
 */
module io.vringj.devices {
    requires transitive io.vringj.dma;
    requires transitive org.agrona;

    exports io.vringj.device;
    exports io.vringj.device.net;
    exports io.vringj.device.rng;
}

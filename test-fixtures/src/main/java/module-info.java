/**
 * vringj test fixtures: the one place tests build rings by hand. {@link io.vringj.testing.RawSplitRing}
 * and {@link io.vringj.testing.RawPackedRing} write descriptors, ring entries, flags, indices,
 * event fields and indirect tables with any value, as a buggy or malicious peer would;
 * {@link io.vringj.testing.SplitRingDump} and {@link io.vringj.testing.PackedRingDump} print a ring in
 * virtio terms for failure messages; {@link io.vringj.testing.RecordingAddressSpace} records every
 * translation a device asks for. Ring placement comes from ring-core's
 * {@link io.vringj.ring.RingLayout}. For tests only: other modules depend on it with test scope.
 */
module io.vringj.testing {
    requires transitive io.vringj.core;

    exports io.vringj.testing;
}

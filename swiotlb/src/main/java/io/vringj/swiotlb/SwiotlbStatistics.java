package io.vringj.swiotlb;

/**
 * A snapshot of a {@link SwiotlbPool}'s counters. The counters are read one after another
 * while other threads may map and unmap, so a snapshot taken under load is approximate; one
 * taken while the pool is quiet is exact.
 *
 * @param slotsTotal slots in the pool, transient pools included
 * @param slotsInUse slots held by live mappings and allocations
 * @param highWaterMark the most slots ever in use at once
 * @param liveMappings mappings made by {@code map} and not yet unmapped
 * @param liveAllocations allocations made by {@code allocate} and not yet freed
 * @param bytesToDevice bytes copied from original buffers into bounce slots
 * @param bytesFromDevice bytes copied from bounce slots back into original buffers
 * @param failedMaps maps and allocations refused for want of room
 * @param transientPools transient pools alive now
 */
public record SwiotlbStatistics(long slotsTotal, long slotsInUse, long highWaterMark, long liveMappings,
                                long liveAllocations, long bytesToDevice, long bytesFromDevice, long failedMaps,
                                long transientPools) {
}

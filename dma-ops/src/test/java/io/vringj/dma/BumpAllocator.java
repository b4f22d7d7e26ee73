package io.vringj.dma;

import io.vringj.memory.GuestMemory;
import java.lang.foreign.MemorySegment;

/** A page-aligned bump allocator over a guest-physical range, for coherent memory in tests. */
final class BumpAllocator implements DirectDmaOps.CoherentAllocator {
    private final GuestMemory memory;
    private final long end;
    private long next;

    BumpAllocator(GuestMemory memory, long base, long size) {
        this.memory = memory;
        this.next = base;
        this.end = base + size;
    }

    @Override
    public synchronized MemorySegment allocate(long size) {
        long rounded = (size + 4095) & ~4095L;
        if (next + rounded > end) {
            return null;
        }
        MemorySegment m = memory.slice(next, size);
        next += rounded;
        return m;
    }
}

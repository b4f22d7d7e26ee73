package io.vringj.dma;

import java.lang.foreign.MemorySegment;

/**
 * Memory from {@link DmaOps#allocCoherent(long)}: the CPU and the device see the same bytes
 * with no sync calls (rings live here).
 *
 * @param memory the CPU's view of the memory
 * @param busAddress where the device finds it
 */
public record CoherentBuffer(MemorySegment memory, long busAddress) {
    @Override
    public String toString() {
        return String.format("CoherentBuffer[bus=0x%x, %d bytes]", busAddress, memory.byteSize());
    }
}

package io.vringj.swiotlb;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.MemoryRegion;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import java.lang.foreign.MemorySegment;

/**
 * An instrumented device view: wraps the device's address space and records every request
 * that touches a SECURE region, whether or not the wrapped space would allow it, and every
 * piece handed out that does not lie in the SHARED region's memory.
 *
 * <p>Owned by the device thread (plain counters, read after that thread is joined).
 */
final class RecordingAddressSpace implements AddressSpace, TranslationSink {
    private final AddressSpace inner;
    private final MemoryRegion secure;
    private final MemoryRegion shared;
    private TranslationSink downstream;

    long translations;
    long bytesTranslated;
    long secureRequests;
    long piecesOutsideShared;

    RecordingAddressSpace(AddressSpace inner, MemoryRegion secure, MemoryRegion shared) {
        this.inner = inner;
        this.secure = secure;
        this.shared = shared;
    }

    @Override
    public void translate(long busAddress, long length, Access access, TranslationSink sink) throws TranslationException {
        translations++;
        if (overlapsSecure(busAddress, length)) {
            secureRequests++;
        }
        downstream = sink;
        try {
            inner.translate(busAddress, length, access, this);
        } finally {
            downstream = null;
        }
        bytesTranslated += length;
    }

    private boolean overlapsSecure(long busAddress, long length) {
        long last = busAddress + Math.max(length, 1) - 1;
        long secureLast = secure.guestPhysicalAddress() + secure.size() - 1;
        return Long.compareUnsigned(busAddress, secureLast) <= 0
            && Long.compareUnsigned(last, secure.guestPhysicalAddress()) >= 0;
    }

    @Override
    public void accept(MemorySegment backing, long offset, long length) {
        MemorySegment sharedMemory = shared.segment();
        long address = backing.address() + offset;
        if (address < sharedMemory.address() || address + length > sharedMemory.address() + sharedMemory.byteSize()) {
            piecesOutsideShared++;
        }
        downstream.accept(backing, offset, length);
    }

    @Override
    public long epoch() {
        return inner.epoch();
    }
}

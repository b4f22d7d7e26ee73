package io.vringj.memory;

/**
 * Bus address = guest-physical address, optionally limited to {@code SHARED} regions.
 * Immutable and safe for any number of threads.
 */
final class IdentityAddressSpace implements AddressSpace {
    private final GuestMemory memory;
    private final boolean sharedOnly;

    IdentityAddressSpace(GuestMemory memory, boolean sharedOnly) {
        this.memory = java.util.Objects.requireNonNull(memory, "memory");
        this.sharedOnly = sharedOnly;
    }

    @Override
    public void translate(long busAddress, long length, Access access, TranslationSink sink) throws TranslationException {
        if (length <= 0) {
            throw new TranslationException(TranslationException.Kind.FAULT, busAddress, length, access,
                "length must be at least 1");
        }
        int index = memory.regionIndexOf(busAddress, length);
        if (index < 0) {
            throw new TranslationException(TranslationException.Kind.FAULT, busAddress, length, access,
                "not wholly inside one guest memory region " + memory.regions());
        }
        MemoryRegion region = memory.region(index);
        if (sharedOnly && region.kind() != RegionKind.SHARED) {
            throw new TranslationException(TranslationException.Kind.FAULT, busAddress, length, access,
                "inside " + region + ", which this device may not reach (shared regions only)");
        }
        sink.accept(region.segment(), busAddress - region.guestPhysicalAddress(), length);
    }

    @Override
    public String toString() {
        return (sharedOnly ? "SharedOnlyAddressSpace" : "IdentityAddressSpace") + memory.regions();
    }
}

package io.vringj.memory;

import java.lang.foreign.MemorySegment;

/**
 * How a device reaches memory: bus addresses written by the driver (guest-physical addresses,
 * or I/O virtual addresses behind an IOMMU) become pieces of native memory.
 *
 * <p>A failed translation is a {@link TranslationException} — a fault or a miss — never an
 * {@link IndexOutOfBoundsException}, and never a piece outside the memory the device is
 * allowed to reach.
 *
 * <p>Implementations here: {@link #identity(GuestMemory)} (bus address = guest-physical) and
 * {@link #sharedOnly(GuestMemory)} (identity, but only {@link RegionKind#SHARED} regions). The
 * dma-ops module adds one backed by a device IOTLB.
 */
public interface AddressSpace {

    /**
     * Translates {@code [busAddress, busAddress + length)} into pieces handed to {@code sink}.
     * Allocation-free in the identity and protected implementations. On failure nothing is
     * guaranteed about pieces already delivered for this call; callers discard them.
     *
     * @param busAddress the first bus address
     * @param length the number of bytes, at least 1
     * @param access whether the device will read or write the range
     * @param sink receives the pieces in bus-address order
     * @throws TranslationException if the range, or any part of it, cannot be reached
     */
    void translate(long busAddress, long length, Access access, TranslationSink sink) throws TranslationException;

    /**
     * Translates like {@link #translate(long, long, Access, TranslationSink)}, but a miss is a
     * return value instead of an exception: the form the device queues use, so that a device
     * behind an IOTLB that misses allocates and throws nothing. A fault still throws (it breaks
     * the queue, so it is not a hot path).
     *
     * <p>The default catches the {@link TranslationException.Kind#MISS} of
     * {@link #translate(long, long, Access, TranslationSink)}; address spaces that can miss
     * override it without allocating.
     *
     * @param busAddress the first bus address
     * @param length the number of bytes, at least 1
     * @param access whether the device will read or write the range
     * @param sink receives the pieces in bus-address order
     * @return 0 when every byte was delivered; otherwise a miss: the number of bytes left
     *     untranslated, starting at {@code busAddress + length - result}, the first address with
     *     no translation yet (the pieces before it were delivered and are to be discarded)
     * @throws TranslationException a {@link TranslationException.Kind#FAULT}, never a miss
     */
    default long tryTranslate(long busAddress, long length, Access access, TranslationSink sink)
        throws TranslationException {
        try {
            translate(busAddress, length, access, sink);
            return 0;
        } catch (TranslationException e) {
            if (e.kind() == TranslationException.Kind.MISS && e.length() > 0) {
                return e.length();
            }
            throw e;
        }
    }

    /**
     * Translates a range that must resolve to one contiguous piece, as a bounded slice.
     * Allocates the slice; meant for set-up paths (ring areas) and for tests.
     *
     * @param busAddress the first bus address
     * @param length the number of bytes, at least 1
     * @param access whether the device will read or write the range
     * @return a slice of exactly {@code length} bytes
     * @throws TranslationException if the range cannot be reached, or is not contiguous behind
     *     this address space (reported as a fault)
     */
    default MemorySegment translate(long busAddress, long length, Access access) throws TranslationException {
        ContiguousPiece piece = new ContiguousPiece();
        translate(busAddress, length, access, piece);
        if (piece.count != 1) {
            throw new TranslationException(TranslationException.Kind.FAULT, busAddress, length, access,
                "the range is not contiguous behind this address space (" + piece.count + " pieces)");
        }
        return piece.backing.asSlice(piece.offset, length);
    }

    /**
     * A counter that changes whenever a translation this address space handed out may have
     * become stale (for an IOTLB: an entry removed or changed; an UPDATE into empty space leaves
     * every earlier translation valid and need not move it). A device caches the translation of its
     * ring areas and translates them again when this value moves. Address spaces whose
     * translations never change return a constant.
     *
     * @return the current translation epoch
     */
    default long epoch() {
        return 0;
    }

    /**
     * Whether a translation of {@code [busAddress, busAddress + length)} taken when
     * {@link #epoch()} returned {@code epoch} is still what a translation now would give: nothing
     * under that range was taken away or changed since. A device asks this when the epoch moved,
     * before it translates its ring areas again, so an invalidation elsewhere (a buffer unmapped)
     * leaves its ring-area cache standing. An answer of false is always safe (translate again);
     * the default gives it.
     *
     * @param epoch an earlier value of {@link #epoch()}
     * @param busAddress the first bus address of the range
     * @param length bytes, at least 1
     * @return true only if no translation of the range can have changed since {@code epoch}
     */
    default boolean unchangedSince(long epoch, long busAddress, long length) {
        return false;
    }

    /**
     * The identity address space: a bus address is a guest-physical address, and every region,
     * {@code SECURE} or {@code SHARED}, is reachable. This is a device without an IOMMU in an
     * ordinary guest.
     *
     * @param memory the guest memory
     * @return an address space over all of {@code memory}
     */
    static AddressSpace identity(GuestMemory memory) {
        return new IdentityAddressSpace(memory, false);
    }

    /**
     * The protected address space: identity, but only {@link RegionKind#SHARED} regions are
     * reachable; any other address is a fault. This is a device of a protected guest.
     *
     * @param memory the guest memory
     * @return an address space over the shared regions of {@code memory}
     */
    static AddressSpace sharedOnly(GuestMemory memory) {
        return new IdentityAddressSpace(memory, true);
    }
}

/** Collects the pieces of a translation for {@link AddressSpace#translate(long, long, Access)}. */
final class ContiguousPiece implements TranslationSink {
    MemorySegment backing;
    long offset;
    int count;

    @Override
    public void accept(MemorySegment backing, long offset, long length) {
        if (count++ == 0) {
            this.backing = backing;
            this.offset = offset;
        }
    }
}

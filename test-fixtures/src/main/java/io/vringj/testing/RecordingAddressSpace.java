package io.vringj.testing;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.MemoryRegion;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * An instrumented view of another {@link AddressSpace}: it passes every translation through,
 * counts the translations, the bytes asked for and the pieces handed out, and checks each piece
 * against the native memory the device is allowed to reach. A piece outside every allowed segment
 * is recorded as a violation (and still passed on, so the caller's own checks run too). It can
 * also watch a range of bus addresses (a SECURE region, say) and count every request that
 * touches it, whether or not the wrapped space allows it.
 *
 * <p>Not thread-safe: one device thread per instance, as for a device queue.
 */
public final class RecordingAddressSpace implements AddressSpace, TranslationSink {
    private final AddressSpace delegate;
    private final MemorySegment[] allowed;
    private final List<String> violations = new ArrayList<>();
    private long translations;
    private long pieces;
    private long writablePieces;
    private long bytesTranslated;
    private long watchedBase;
    private long watchedLast = -1;
    private boolean watching;
    private long watchedRequests;
    /** The caller's sink and request during one translation (no allocation per request). */
    private TranslationSink downstream;
    private long requestAddress;
    private Access requestAccess;

    /**
     * @param delegate the address space that really translates
     * @param allowed the native memory a piece may lie in
     * @throws IllegalArgumentException if no allowed segment is given
     */
    public RecordingAddressSpace(AddressSpace delegate, List<MemorySegment> allowed) {
        this.delegate = Objects.requireNonNull(delegate, "delegate");
        if (allowed.isEmpty()) {
            throw new IllegalArgumentException("at least one allowed segment is needed");
        }
        this.allowed = allowed.toArray(MemorySegment[]::new);
    }

    /**
     * A view that lets the device reach only {@code shared}'s memory and watches {@code secure}'s
     * guest-physical range: the instrument of a protected guest's device.
     *
     * @param delegate the address space that really translates
     * @param secure the region whose bus addresses every request is checked against
     * @param shared the region whose memory every piece must lie in
     * @return the view
     */
    public static RecordingAddressSpace sharedOnly(AddressSpace delegate, MemoryRegion secure, MemoryRegion shared) {
        return new RecordingAddressSpace(delegate, List.of(shared.segment()))
            .watch(secure.guestPhysicalAddress(), secure.size());
    }

    /**
     * Counts, from now on, every request whose bus range overlaps {@code [base, base + size)}.
     *
     * @param base first bus address watched
     * @param size bytes watched, at least 1
     * @return this view
     * @throws IllegalArgumentException if {@code size} is not positive
     */
    public RecordingAddressSpace watch(long base, long size) {
        if (size < 1) {
            throw new IllegalArgumentException("watched range size " + size + " must be at least 1");
        }
        watchedBase = base;
        // unsigned: a range that ends at the top of the 64-bit bus space is allowed
        watchedLast = base + size - 1;
        watching = true;
        return this;
    }

    @Override
    public void translate(long busAddress, long length, Access access, TranslationSink sink) throws TranslationException {
        translations++;
        if (watching && overlapsWatched(busAddress, length)) {
            watchedRequests++;
        }
        downstream = sink;
        requestAddress = busAddress;
        requestAccess = access;
        try {
            delegate.translate(busAddress, length, access, this);
        } finally {
            downstream = null;
            requestAccess = null;
        }
        bytesTranslated += length;
    }

    /** Records one piece of the current translation and hands it on (the sink the delegate calls). */
    @Override
    public void accept(MemorySegment backing, long offset, long length) {
        record(requestAddress, requestAccess, backing, offset, length);
        downstream.accept(backing, offset, length);
    }

    private boolean overlapsWatched(long busAddress, long length) {
        long last = busAddress + Math.max(length, 1) - 1;
        return Long.compareUnsigned(busAddress, watchedLast) <= 0 && Long.compareUnsigned(last, watchedBase) >= 0;
    }

    private void record(long busAddress, Access access, MemorySegment backing, long offset, long length) {
        pieces++;
        if (access == Access.WRITE) {
            writablePieces++;
        }
        if (offset < 0 || length < 1 || offset > backing.byteSize() - length) {
            violations.add(String.format("piece [%d, +%d) for bus address 0x%x is outside its backing segment of %d bytes",
                offset, length, busAddress, backing.byteSize()));
            return;
        }
        long start = backing.address() + offset;
        for (MemorySegment a : allowed) {
            // both ranges are inside real native allocations, so these sums cannot overflow
            if (start >= a.address() && start + length <= a.address() + a.byteSize()) {
                return;
            }
        }
        violations.add(String.format("%s piece of %d bytes at native 0x%x (bus address 0x%x) is outside the allowed memory",
            access, length, start, busAddress));
    }

    @Override
    public long epoch() {
        return delegate.epoch();
    }

    @Override
    public boolean unchangedSince(long epoch, long busAddress, long length) {
        return delegate.unchangedSince(epoch, busAddress, length);
    }

    /** @return the pieces that lay outside the allowed memory, described; empty when none */
    public List<String> violations() {
        return List.copyOf(violations);
    }

    /** @return how many translations were asked for since the last {@link #reset()} */
    public long translations() {
        return translations;
    }

    /** @return how many pieces were handed out since the last {@link #reset()} */
    public long pieces() {
        return pieces;
    }

    /** @return how many of those pieces were for writing */
    public long writablePieces() {
        return writablePieces;
    }

    /** @return how many bytes the translations that succeeded asked for */
    public long bytesTranslated() {
        return bytesTranslated;
    }

    /** @return how many requests touched the {@linkplain #watch watched} range, allowed or not */
    public long watchedRequests() {
        return watchedRequests;
    }

    /** Forgets the counts and violations (the watched range stays). */
    public void reset() {
        violations.clear();
        translations = 0;
        pieces = 0;
        writablePieces = 0;
        bytesTranslated = 0;
        watchedRequests = 0;
    }

    @Override
    public String toString() {
        return "RecordingAddressSpace[" + delegate + ", " + translations + " translations, " + pieces + " pieces, "
            + violations.size() + " violations]";
    }
}

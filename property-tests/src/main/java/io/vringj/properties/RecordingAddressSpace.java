package io.vringj.properties;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * An instrumented view of another {@link AddressSpace}: it passes every translation through,
 * counts the translations and the pieces handed out, and checks each piece against the native
 * memory the device is allowed to reach. A piece outside every allowed segment is recorded as a
 * violation (and still passed on, so the caller's own checks run too).
 *
 * <p>Not thread-safe: one device thread per instance, as for a device queue.
 */
public final class RecordingAddressSpace implements AddressSpace {
    private final AddressSpace delegate;
    private final MemorySegment[] allowed;
    private final List<String> violations = new ArrayList<>();
    private long translations;
    private long pieces;
    private long writablePieces;

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

    @Override
    public void translate(long busAddress, long length, Access access, TranslationSink sink) throws TranslationException {
        translations++;
        delegate.translate(busAddress, length, access, (backing, offset, pieceLength) -> {
            record(busAddress, access, backing, offset, pieceLength);
            sink.accept(backing, offset, pieceLength);
        });
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

    /** Forgets the counts and violations. */
    public void reset() {
        violations.clear();
        translations = 0;
        pieces = 0;
        writablePieces = 0;
    }

    @Override
    public String toString() {
        return "RecordingAddressSpace[" + delegate + ", " + translations + " translations, " + pieces + " pieces, "
            + violations.size() + " violations]";
    }
}

package io.vringj.properties;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;

/**
 * An IOTLB stand-in over another {@link AddressSpace}: up to 64 pages of {@value #PAGE} bytes from
 * {@code window} have no translation yet, so any range touching one is a
 * {@link TranslationException.Kind#MISS} (asked before the delegate, as a device IOTLB would be);
 * {@link #update()} fills them all in and moves the epoch, as an IOTLB update does. Not
 * thread-safe.
 */
final class MissingPagesAddressSpace implements AddressSpace {
    static final long PAGE = 0x100;

    private final AddressSpace delegate;
    private final long window;
    private long missing;
    private long epoch;

    /**
     * @param delegate the address space behind the IOTLB
     * @param window the bus address of page 0
     * @param missing bit i set: page i has no translation yet
     */
    MissingPagesAddressSpace(AddressSpace delegate, long window, long missing) {
        this.delegate = delegate;
        this.window = window;
        this.missing = missing;
    }

    /**
     * @return whether {@code [busAddress, busAddress + length)} touches a page of {@code window}
     *     set in {@code missing}; unsigned, and a range that runs past 2^64 reaches to the top
     */
    static boolean misses(long window, long missing, long busAddress, long length) {
        if (missing == 0 || length <= 0) {
            return false;
        }
        long end = busAddress + length;
        boolean endWraps = Long.compareUnsigned(end, busAddress) < 0;
        for (int page = 0; page < 64; page++) {
            if ((missing & (1L << page)) == 0) {
                continue;
            }
            long start = window + page * PAGE;
            if (Long.compareUnsigned(busAddress, start + PAGE) < 0 && (endWraps || Long.compareUnsigned(start, end) < 0)) {
                return true;
            }
        }
        return false;
    }

    boolean misses(long busAddress, long length) {
        return misses(window, missing, busAddress, length);
    }

    /** Every page gets its translation; the epoch moves. */
    void update() {
        missing = 0;
        epoch++;
    }

    @Override
    public void translate(long busAddress, long length, Access access, TranslationSink sink) throws TranslationException {
        if (misses(busAddress, length)) {
            throw new TranslationException(TranslationException.Kind.MISS, busAddress, length, access,
                "no IOTLB entry yet");
        }
        delegate.translate(busAddress, length, access, sink);
    }

    @Override
    public long epoch() {
        return epoch;
    }

    @Override
    public String toString() {
        return "MissingPages[missing=0x" + Long.toHexString(missing) + " from 0x" + Long.toHexString(window) + ", epoch "
            + epoch + "] over " + delegate;
    }
}

package io.vringj.memory;

/**
 * A device's translation of a bus address failed. This is a checked outcome the device side
 * reports, never a crash: a {@link Kind#FAULT} means the device may not have that memory
 * (outside every region, not reachable by this device, or a permission it lacks); a
 * {@link Kind#MISS} means an IOTLB holds no entry for it yet and the request may be retried
 * once one arrives.
 *
 * <p>The exception carries no stack trace: faults are input from a peer, and building stack
 * traces for them would only slow a device that a malicious driver is hammering.
 */
public final class TranslationException extends Exception {
    private static final long serialVersionUID = 1L;

    /** Why a translation failed. */
    public enum Kind {
        /** The device may not reach this memory, or not with this access. Not retryable. */
        FAULT,
        /** No translation is known yet; retry after the IOTLB is updated. */
        MISS
    }

    private final Kind kind;
    private final long busAddress;
    private final long length;
    private final Access access;

    /**
     * @param kind fault or miss
     * @param busAddress the first bus address that could not be translated
     * @param length the length still untranslated from {@code busAddress}
     * @param access the access the device asked for
     * @param reason what rule the request broke, for the message
     */
    public TranslationException(Kind kind, long busAddress, long length, Access access, String reason) {
        super(String.format("%s: %s of %d bytes at bus address 0x%x: %s", kind, access, length, busAddress, reason),
            null, false, false);
        this.kind = kind;
        this.busAddress = busAddress;
        this.length = length;
        this.access = access;
    }

    /** @return fault or miss */
    public Kind kind() {
        return kind;
    }

    /** @return the first bus address that could not be translated */
    public long busAddress() {
        return busAddress;
    }

    /** @return how many bytes from {@link #busAddress()} were left untranslated */
    public long length() {
        return length;
    }

    /** @return the access the device asked for */
    public Access access() {
        return access;
    }
}

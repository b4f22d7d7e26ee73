package io.vringj.memory;

/**
 * A guest-physical range that is not wholly inside one region of a {@link GuestMemory}
 * was asked for by the caller. This is vringj's own error: no raw
 * {@link IndexOutOfBoundsException} escapes, and nothing outside the regions is touched.
 */
public final class MemoryAccessException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final long address;
    private final long length;

    MemoryAccessException(long address, long length, String message) {
        super(message);
        this.address = address;
        this.length = length;
    }

    /** @return the first guest-physical address of the range asked for */
    public long address() {
        return address;
    }

    /** @return the length of the range asked for */
    public long length() {
        return length;
    }
}

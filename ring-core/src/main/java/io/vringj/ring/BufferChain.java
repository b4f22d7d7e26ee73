package io.vringj.ring;

import java.util.Arrays;

/**
 * The buffers of one request as the driver hands them to {@link DriverQueue#add}: bus
 * addresses that are already mapped ("premapped"), device-readable buffers first, then
 * device-writable ones [virtio 2.7.4.2]. A caller keeps one and {@link #clear()}s it between
 * requests, so adding a chain allocates nothing.
 *
 * <p>Not thread-safe; owned by the driver thread.
 */
public final class BufferChain {
    /** The largest length one buffer may have: a descriptor's {@code len} is a le32. */
    public static final long MAX_BUFFER_LENGTH = 0xFFFF_FFFFL;

    private final long[] addresses;
    private final long[] lengths;
    private int size;
    private int readable;
    private long readableLength;
    private long writableLength;

    /**
     * @param capacity the most buffers one chain may hold, at least 1
     */
    public BufferChain(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("buffer chain capacity " + capacity + " must be at least 1");
        }
        addresses = new long[capacity];
        lengths = new long[capacity];
    }

    /**
     * Empties the chain for reuse.
     *
     * @return this chain
     */
    public BufferChain clear() {
        size = 0;
        readable = 0;
        readableLength = 0;
        writableLength = 0;
        return this;
    }

    /**
     * Appends a device-readable buffer.
     *
     * @param busAddress where the device finds it
     * @param length its length, 1..2^32-1
     * @return this chain
     * @throws IllegalStateException if a writable buffer was already added, or the chain is full
     * @throws IllegalArgumentException if the length is out of range, or the chain's total
     *     length would reach 2^32
     */
    public BufferChain addReadable(long busAddress, long length) {
        if (size != readable) {
            throw new IllegalStateException("readable buffer at bus address 0x" + Long.toHexString(busAddress)
                + " added after a writable one; readable buffers must come first [virtio 2.7.4.2]");
        }
        append(busAddress, length);
        readable++;
        readableLength += length;
        return this;
    }

    /**
     * Appends a device-writable buffer.
     *
     * @param busAddress where the device finds it
     * @param length its length, 1..2^32-1
     * @return this chain
     * @throws IllegalStateException if the chain is full
     * @throws IllegalArgumentException if the length is out of range, or the chain's total
     *     length would reach 2^32
     */
    public BufferChain addWritable(long busAddress, long length) {
        append(busAddress, length);
        writableLength += length;
        return this;
    }

    private void append(long busAddress, long length) {
        if (length < 1 || length > MAX_BUFFER_LENGTH) {
            throw new IllegalArgumentException("buffer length " + length + " at bus address 0x"
                + Long.toHexString(busAddress) + " is outside 1..2^32-1");
        }
        if (size == addresses.length) {
            throw new IllegalStateException("buffer chain is full: capacity " + addresses.length);
        }
        // both totals are below 2^32 and length is below 2^32, so the sum cannot overflow a long
        if (readableLength + writableLength + length > MAX_BUFFER_LENGTH) {
            throw new IllegalArgumentException("chain total length would be " + (readableLength + writableLength + length)
                + " bytes; a chain's total length must be below 2^32 [virtio 2.7.5]");
        }
        addresses[size] = busAddress;
        lengths[size] = length;
        size++;
    }

    /** @return how many buffers the chain holds */
    public int size() {
        return size;
    }

    /** @return how many of them are device-readable (they come first) */
    public int readableCount() {
        return readable;
    }

    /** @return how many of them are device-writable (they come last) */
    public int writableCount() {
        return size - readable;
    }

    /** @return the sum of the readable buffers' lengths */
    public long readableLength() {
        return readableLength;
    }

    /** @return the sum of the writable buffers' lengths */
    public long writableLength() {
        return writableLength;
    }

    /** @return the most buffers this chain may hold */
    public int capacity() {
        return addresses.length;
    }

    /**
     * @param i a buffer's position, 0..size-1
     * @return its bus address
     */
    public long busAddress(int i) {
        return addresses[checkIndex(i)];
    }

    /**
     * @param i a buffer's position, 0..size-1
     * @return its length
     */
    public long length(int i) {
        return lengths[checkIndex(i)];
    }

    /**
     * @param i a buffer's position, 0..size-1
     * @return whether the device may write it
     */
    public boolean isWritable(int i) {
        return checkIndex(i) >= readable;
    }

    private int checkIndex(int i) {
        if (i < 0 || i >= size) {
            throw new IndexOutOfBoundsException("buffer " + i + " of a chain of " + size);
        }
        return i;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("BufferChain[");
        for (int i = 0; i < size; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(i < readable ? "R " : "W ").append("0x").append(Long.toHexString(addresses[i]))
                .append('+').append(lengths[i]);
        }
        return sb.append(']').toString();
    }

    long[] addressArray() {
        return addresses;
    }

    long[] lengthArray() {
        return lengths;
    }
}

package io.vringj.vhostuser;

import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One vhost-user message: header fields, a payload buffer of {@link VhostUserProtocol#MAX_PAYLOAD}
 * bytes and the fds that came with it. Reused for every message of a connection; owned by one
 * thread. Payload accessors are native-endian, as the protocol is, and are bounded by the
 * payload size the header announced.
 *
 * <p>Fds received are owned by the message until {@link #takeFd(int)} hands one to its new
 * owner; {@link #closeFds()} closes those nobody took (so a hostile message leaks nothing).
 */
public final class VhostUserMessage {
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;

    private final MemorySegment payload;
    private final int[] fds = new int[VhostUserProtocol.MAX_FDS];
    private int fdCount;
    private int request;
    private int flags;
    private int size;

    /** @param arena where the payload buffer lives */
    public VhostUserMessage(Arena arena) {
        this.payload = arena.allocate(VhostUserProtocol.MAX_PAYLOAD, 8);
    }

    /**
     * Sets the header of an outgoing message.
     *
     * @param request the request number
     * @param flags the header flags (the version is added)
     * @param size the payload size
     * @return this message
     */
    public VhostUserMessage header(int request, int flags, int size) {
        if (size < 0 || size > VhostUserProtocol.MAX_PAYLOAD) {
            throw new IllegalArgumentException("payload size " + size + " is outside 0.." + VhostUserProtocol.MAX_PAYLOAD);
        }
        this.request = request;
        this.flags = flags | VhostUserProtocol.VERSION;
        this.size = size;
        return this;
    }

    /** @return the request number */
    public int request() {
        return request;
    }

    /** @return the header flags */
    public int flags() {
        return flags;
    }

    /** @return the payload size the header announced */
    public int size() {
        return size;
    }

    /** @return the payload buffer ({@link VhostUserProtocol#MAX_PAYLOAD} bytes; {@link #size()} of them valid) */
    public MemorySegment payload() {
        return payload;
    }

    /** @return whether the sender asked for a REPLY_ACK reply */
    public boolean needsReply() {
        return (flags & VhostUserProtocol.FLAG_NEED_REPLY) != 0;
    }

    /** @return how many fds came with the message and are still owned by it */
    public int fdCount() {
        int n = 0;
        for (int i = 0; i < fdCount; i++) {
            if (fds[i] >= 0) {
                n++;
            }
        }
        return n;
    }

    /** @return how many fds arrived with the message */
    public int receivedFdCount() {
        return fdCount;
    }

    /**
     * Hands fd {@code i} to the caller, who now closes it.
     *
     * @param i the fd's position in the message
     * @return the fd
     */
    public int takeFd(int i) {
        if (i < 0 || i >= fdCount || fds[i] < 0) {
            throw new IllegalStateException("fd " + i + " of " + fdCount + " is not held by this message");
        }
        int fd = fds[i];
        fds[i] = -1;
        return fd;
    }

    /** Closes every fd that nobody took. */
    public void closeFds() {
        for (int i = 0; i < fdCount; i++) {
            Libc.closeQuietly(fds[i]);
            fds[i] = -1;
        }
        fdCount = 0;
    }

    void received(int request, int flags, int size) {
        this.request = request;
        this.flags = flags;
        this.size = size;
    }

    void addFd(int fd) {
        if (fdCount == fds.length) {
            Libc.closeQuietly(fd);
            return;
        }
        fds[fdCount++] = fd;
    }

    /**
     * Peeks at a received fd without taking it (for checks such as fstat before the fd is taken).
     *
     * @param i the fd's position in this message
     * @return the fd, still owned by this message
     */
    public int rawFd(int i) {
        return fds[i];
    }

    // ---------------------------------------------------------------- payload codecs

    /**
     * @param offset byte offset in the payload
     * @return the u32 there
     */
    public int u32(long offset) {
        check(offset, 4);
        return payload.get(U32, offset);
    }

    /**
     * @param offset byte offset in the payload
     * @return the u64 there
     */
    public long u64(long offset) {
        check(offset, 8);
        return payload.get(U64, offset);
    }

    /**
     * @param offset byte offset in the payload
     * @return the u8 there
     */
    public int u8(long offset) {
        check(offset, 1);
        return Byte.toUnsignedInt(payload.get(ValueLayout.JAVA_BYTE, offset));
    }

    /**
     * Writes a u32 into the payload of an outgoing message.
     *
     * @param offset byte offset
     * @param value the value
     * @return this message
     */
    public VhostUserMessage putU32(long offset, int value) {
        payload.set(U32, offset, value);
        return this;
    }

    /**
     * Writes a u64 into the payload of an outgoing message.
     *
     * @param offset byte offset
     * @param value the value
     * @return this message
     */
    public VhostUserMessage putU64(long offset, long value) {
        payload.set(U64, offset, value);
        return this;
    }

    /**
     * Writes a u8 into the payload of an outgoing message.
     *
     * @param offset byte offset
     * @param value the value (low 8 bits)
     * @return this message
     */
    public VhostUserMessage putU8(long offset, int value) {
        payload.set(ValueLayout.JAVA_BYTE, offset, (byte) value);
        return this;
    }

    private void check(long offset, int width) {
        if (offset < 0 || offset + width > size) {
            throw new IndexOutOfBoundsException("payload field at " + offset + " (" + width + " bytes) is past the "
                + size + "-byte payload of " + VhostUserProtocol.requestName(request));
        }
    }

    @Override
    public String toString() {
        return VhostUserProtocol.requestName(request) + "[flags=0x" + Integer.toHexString(flags) + ", size=" + size
            + ", fds=" + fdCount + "]";
    }
}

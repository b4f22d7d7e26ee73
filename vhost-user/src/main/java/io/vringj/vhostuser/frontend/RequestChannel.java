package io.vringj.vhostuser.frontend;

import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.VhostUserChannel;
import io.vringj.vhostuser.VhostUserMessage;
import io.vringj.vhostuser.VhostUserProtocol;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;

/**
 * The front end's side of the main socket: sends requests and reads their replies, checking each
 * reply as strictly as the back end checks requests. A reply must repeat its request's code,
 * carry flags of exactly version 1 and {@code REPLY} ({@code 0x5}), have the request's payload
 * size and no fds, and arrive within the reply time-out (a bounded {@code poll}, never a hang).
 *
 * <p>Once {@code REPLY_ACK} is negotiated, every request that has no reply of its own is sent with
 * {@code NEED_REPLY} and its u64 status checked (0 is success), so a back end that refuses a
 * request says so at that request.
 *
 * <p>Used by one thread at a time (the front end's control methods are synchronized).
 */
final class RequestChannel implements AutoCloseable {
    /** A reply's flags: version 1 and REPLY, nothing else (DPDK's and QEMU's rule). */
    static final int REPLY_FLAGS = VhostUserProtocol.VERSION | VhostUserProtocol.FLAG_REPLY;
    private static final int EPIPE = 32;
    private static final int ECONNRESET = 104;

    private final VhostUserChannel channel;
    private final int replyTimeoutMillis;
    private final Arena arena = Arena.ofShared();
    private final VhostUserMessage out = new VhostUserMessage(arena);
    private final VhostUserMessage in = new VhostUserMessage(arena);
    private final MemorySegment pollfd;
    private boolean replyAck;

    /**
     * @param fd a connected socket; this object owns and closes it
     * @param replyTimeoutMillis how long a reply may take
     */
    RequestChannel(int fd, int replyTimeoutMillis) {
        this.channel = new VhostUserChannel(fd, replyTimeoutMillis);
        this.replyTimeoutMillis = replyTimeoutMillis;
        this.pollfd = arena.allocate(Libc.POLLFD_SIZE, 8);
        pollfd.set(ValueLayout.JAVA_INT, 0, fd);
        pollfd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
    }

    /** @return the socket fd */
    int fd() {
        return channel.fd();
    }

    /** From now on requests without a reply of their own carry NEED_REPLY and their status is checked. */
    void enableReplyAck() {
        replyAck = true;
    }

    /**
     * Starts an outgoing message.
     *
     * @param request the request code
     * @param size the payload size
     * @return the message, to fill in its payload
     */
    VhostUserMessage request(int request, int size) {
        out.payload().asSlice(0, size).fill((byte) 0);
        return out.header(request, 0, size);
    }

    /** Sends the message begun with {@link #request}; no reply is expected, even with REPLY_ACK. */
    void sendWithoutReply(int... fds) throws ProtocolException, NativeCallException {
        write(fds);
    }

    /** Writes {@code out}; a back end that already closed the connection is a protocol error, not a libc one. */
    private void write(int... fds) throws ProtocolException, NativeCallException {
        try {
            channel.write(out, fds);
        } catch (NativeCallException e) {
            if (e.errno() == EPIPE || e.errno() == ECONNRESET) {
                throw new ProtocolException("back end closed the connection before "
                    + VhostUserProtocol.requestName(out.request()) + " could be sent (" + e.getMessage() + ")", e);
            }
            throw e;
        }
    }

    /**
     * Sends the message begun with {@link #request}: with REPLY_ACK negotiated, asks for a reply
     * and checks that the back end reports success.
     */
    void send(int... fds) throws ProtocolException, NativeCallException {
        if (!replyAck) {
            write(fds);
            return;
        }
        int request = out.request();
        out.header(request, VhostUserProtocol.FLAG_NEED_REPLY, out.size());
        write(fds);
        long status = readReplyU64(request);
        if (status != 0) {
            throw new ProtocolException(String.format(Locale.ROOT,
                "back end refused %s: REPLY_ACK status 0x%x (0 is success)", VhostUserProtocol.requestName(request),
                status));
        }
    }

    /** Sends a request with no payload whose reply is a u64 (GET_FEATURES and friends); returns the u64. */
    long getU64(int request) throws ProtocolException, NativeCallException {
        request(request, 0);
        write();
        return readReplyU64(request);
    }

    /**
     * {@code GET_VRING_BASE} for vring {@code index}: the reply must echo the index.
     *
     * @return the vring base (u32)
     */
    int getVringBase(int index) throws ProtocolException, NativeCallException {
        request(VhostUserProtocol.GET_VRING_BASE, 8).putU32(0, index).putU32(4, 0);
        write();
        readReply(VhostUserProtocol.GET_VRING_BASE, 8);
        int echoed = in.u32(0);
        if (echoed != index) {
            throw new ProtocolException("reply to GET_VRING_BASE for vring " + index + " names vring "
                + Integer.toUnsignedString(echoed) + "; a vring state reply echoes the index it was asked for");
        }
        return in.u32(4);
    }

    /**
     * {@code GET_CONFIG} for {@code size} bytes from {@code offset}: the reply must repeat the
     * offset and size; a reply without payload is the back end's refusal.
     *
     * @return the bytes
     */
    byte[] getConfig(int offset, int size) throws ProtocolException, NativeCallException {
        request(VhostUserProtocol.GET_CONFIG, 12 + size).putU32(0, offset).putU32(4, size).putU32(8, 0);
        write();
        try {
            readReply(VhostUserProtocol.GET_CONFIG, 12 + size);
        } catch (ProtocolException e) {
            if (in.request() == VhostUserProtocol.GET_CONFIG && in.size() == 0) {
                throw new ProtocolException("back end refused GET_CONFIG for " + size + " bytes at offset " + offset
                    + " (a reply without payload)", e);
            }
            throw e;
        }
        if (in.u32(0) != offset || in.u32(4) != size) {
            throw new ProtocolException("reply to GET_CONFIG names offset " + Integer.toUnsignedString(in.u32(0))
                + " and size " + Integer.toUnsignedString(in.u32(4)) + "; it must repeat the request's " + offset
                + " and " + size);
        }
        return in.payload().asSlice(12, size).toArray(ValueLayout.JAVA_BYTE);
    }

    private long readReplyU64(int request) throws ProtocolException, NativeCallException {
        readReply(request, 8);
        return in.u64(0);
    }

    /** Waits (bounded) for the reply to {@code request} and checks its header; the payload is then in {@code in}. */
    private void readReply(int request, int size) throws ProtocolException, NativeCallException {
        String name = VhostUserProtocol.requestName(request);
        pollfd.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
        if (Libc.poll(pollfd, 1, replyTimeoutMillis) == 0) {
            throw new ProtocolException("back end did not reply to " + name + " within " + replyTimeoutMillis
                + " ms (the reply time-out)");
        }
        boolean read;
        try {
            read = channel.read(in);
        } catch (ProtocolException e) {
            in.closeFds();
            throw new ProtocolException("reply to " + name + ": " + e.getMessage(), e);
        } catch (NativeCallException e) {
            in.closeFds();
            if (e.errno() == ECONNRESET) {
                // the back end closed with our request unread: the kernel resets instead of ending the stream
                throw new ProtocolException("back end closed the connection instead of replying to " + name + " ("
                    + e.getMessage() + ")", e);
            }
            throw e;
        }
        try {
            if (!read) {
                throw new ProtocolException("back end closed the connection instead of replying to " + name);
            }
            if (in.request() != request) {
                throw new ProtocolException("reply to " + name + " has request code " + in.request() + " ("
                    + VhostUserProtocol.requestName(in.request()) + "); a reply repeats its request's code "
                    + request);
            }
            if (in.flags() != REPLY_FLAGS) {
                throw new ProtocolException("reply to " + name + " has flags 0x" + Integer.toHexString(in.flags())
                    + "; a reply's flags must be exactly 0x" + Integer.toHexString(REPLY_FLAGS)
                    + " (version 1 and REPLY)");
            }
            if (in.size() != size) {
                throw new ProtocolException("reply to " + name + " has a " + in.size() + "-byte payload; it must be "
                    + size + " bytes");
            }
            if (in.receivedFdCount() != 0) {
                throw new ProtocolException("reply to " + name + " came with " + in.receivedFdCount()
                    + " fds; a reply carries none");
            }
        } finally {
            in.closeFds();
        }
    }

    /** Shuts the socket down and closes it. */
    @Override
    public void close() {
        in.closeFds();
        channel.close();
        arena.close();
    }
}

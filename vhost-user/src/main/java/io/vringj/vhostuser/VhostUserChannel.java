package io.vringj.vhostuser;

import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One end of a vhost-user Unix socket: reads and writes whole messages, with fds as
 * {@code SCM_RIGHTS} on the header. Buffers are allocated once; a channel is used by one thread
 * at a time per direction.
 */
public final class VhostUserChannel implements AutoCloseable {
    private static final long CMSG_SPACE = Libc.CMSG_HEADER + 4L * VhostUserProtocol.MAX_FDS;

    /** How long the rest of a message may take once its first byte arrived, by default. */
    public static final int DEFAULT_STALL_MILLIS = 5000;

    private final int fd;
    private final int stallMillis;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment pollfd;
    private final MemorySegment header;
    private final MemorySegment iov;
    private final MemorySegment msghdr;
    private final MemorySegment control;
    private final MemorySegment sendHeader;
    private final MemorySegment sendIov;
    private final MemorySegment sendMsghdr;
    private final MemorySegment sendControl;
    private volatile boolean closed;

    /** @param fd a connected stream socket; the channel owns and closes it */
    public VhostUserChannel(int fd) {
        this(fd, DEFAULT_STALL_MILLIS);
    }

    /**
     * @param fd a connected stream socket; the channel owns and closes it
     * @param stallMillis how long the rest of a message may take once it began; a peer that
     *     stalls longer inside a message is a protocol error (it would block the connection)
     */
    public VhostUserChannel(int fd, int stallMillis) {
        if (stallMillis < 1) {
            throw new IllegalArgumentException("stall time-out " + stallMillis + " ms must be at least 1 ms");
        }
        this.fd = fd;
        this.stallMillis = stallMillis;
        pollfd = arena.allocate(Libc.POLLFD_SIZE, 8);
        pollfd.set(ValueLayout.JAVA_INT, 0, fd);
        pollfd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
        header = arena.allocate(VhostUserProtocol.HEADER_SIZE, 8);
        iov = arena.allocate(Libc.IOVEC);
        msghdr = arena.allocate(Libc.MSGHDR);
        control = arena.allocate(CMSG_SPACE, 8);
        sendHeader = arena.allocate(VhostUserProtocol.HEADER_SIZE + VhostUserProtocol.MAX_PAYLOAD, 8);
        sendIov = arena.allocate(Libc.IOVEC);
        sendMsghdr = arena.allocate(Libc.MSGHDR);
        sendControl = arena.allocate(CMSG_SPACE, 8);
    }

    /** @return the socket fd */
    public int fd() {
        return fd;
    }

    /**
     * Reads the next message into {@code msg} (header, fds, payload).
     *
     * @param msg where it goes; fds it held before are closed first
     * @return false if the peer closed the connection before a new message began
     * @throws ProtocolException if the header is malformed, the payload too large, fds were
     *     truncated, or the stream ended inside a message
     * @throws NativeCallException if a socket call failed
     */
    public boolean read(VhostUserMessage msg) throws ProtocolException, NativeCallException {
        msg.closeFds();
        iov.set(ValueLayout.ADDRESS, 0, header);
        iov.set(ValueLayout.JAVA_LONG, 8, VhostUserProtocol.HEADER_SIZE);
        msghdr.fill((byte) 0);
        msghdr.set(ValueLayout.ADDRESS, Libc.MSG_IOV, iov);
        msghdr.set(ValueLayout.JAVA_LONG, Libc.MSG_IOVLEN, 1);
        msghdr.set(ValueLayout.ADDRESS, Libc.MSG_CONTROL, control);
        msghdr.set(ValueLayout.JAVA_LONG, Libc.MSG_CONTROLLEN, CMSG_SPACE);
        long n = Libc.recvmsg(fd, msghdr);
        if (n == 0) {
            return false;
        }
        collectFds(msg);
        if ((msghdr.get(ValueLayout.JAVA_INT, Libc.MSG_FLAGS) & Libc.MSG_CTRUNC) != 0) {
            throw new ProtocolException("message carried more than " + VhostUserProtocol.MAX_FDS
                + " fds (control data truncated)");
        }
        if (n < VhostUserProtocol.HEADER_SIZE) {
            readFully(header, n, VhostUserProtocol.HEADER_SIZE - n, "header");
        }
        int request = header.get(ValueLayout.JAVA_INT, 0);
        int flags = header.get(ValueLayout.JAVA_INT, 4);
        int size = header.get(ValueLayout.JAVA_INT, 8);
        msg.received(request, flags, size);
        if ((flags & VhostUserProtocol.VERSION_MASK) != VhostUserProtocol.VERSION) {
            throw new ProtocolException(VhostUserProtocol.requestName(request) + " has version "
                + (flags & VhostUserProtocol.VERSION_MASK) + " in its flags 0x" + Integer.toHexString(flags)
                + "; only version 1 is spoken");
        }
        if (size < 0 || size > VhostUserProtocol.MAX_PAYLOAD) {
            throw new ProtocolException(VhostUserProtocol.requestName(request) + " announces a payload of "
                + Integer.toUnsignedString(size) + " bytes; at most " + VhostUserProtocol.MAX_PAYLOAD + " are accepted");
        }
        if (size > 0) {
            readFully(msg.payload(), 0, size, VhostUserProtocol.requestName(request) + " payload");
        }
        return true;
    }

    private void collectFds(VhostUserMessage msg) {
        long controlLen = msghdr.get(ValueLayout.JAVA_LONG, Libc.MSG_CONTROLLEN);
        long off = 0;
        while (off + Libc.CMSG_HEADER <= controlLen) {
            long cmsgLen = control.get(ValueLayout.JAVA_LONG, off);
            if (cmsgLen < Libc.CMSG_HEADER || off + cmsgLen > controlLen) {
                return;
            }
            int level = control.get(ValueLayout.JAVA_INT, off + Libc.CMSG_LEVEL);
            int type = control.get(ValueLayout.JAVA_INT, off + Libc.CMSG_TYPE);
            if (level == Libc.SOL_SOCKET && type == Libc.SCM_RIGHTS) {
                long count = (cmsgLen - Libc.CMSG_HEADER) / 4;
                for (long i = 0; i < count; i++) {
                    msg.addFd(control.get(ValueLayout.JAVA_INT, off + Libc.CMSG_HEADER + 4 * i));
                }
            }
            off += (cmsgLen + 7) & ~7L;
        }
    }

    private void readFully(MemorySegment dst, long offset, long length, String what)
        throws ProtocolException, NativeCallException {
        long done = 0;
        while (done < length) {
            pollfd.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
            if (Libc.poll(pollfd, 1, stallMillis) == 0) {
                throw new ProtocolException("peer stalled for " + stallMillis + " ms " + (offset + done)
                    + " bytes into a " + (offset + length) + "-byte " + what);
            }
            long n = Libc.read(fd, dst.asSlice(offset + done), length - done);
            if (n == 0) {
                throw new ProtocolException("connection closed " + (offset + done) + " bytes into a " + (offset + length)
                    + "-byte " + what);
            }
            done += n;
        }
    }

    /**
     * Writes {@code msg}'s header and {@link VhostUserMessage#size()} payload bytes, with fds.
     *
     * @param msg the message (its own fds are not sent)
     * @param sendFds fds to pass, or an empty array
     * @throws NativeCallException if the socket call failed (a closed peer is {@code EPIPE})
     */
    public synchronized void write(VhostUserMessage msg, int... sendFds) throws NativeCallException {
        long total = prepare(msg, sendFds);
        finish(Libc.sendmsg(fd, sendMsghdr), total);
    }

    /** The largest message {@link #tryWrite} takes: far below any socket's send buffer. */
    public static final int TRY_WRITE_MAX = 4096;

    /**
     * Writes {@code msg} (no fds) only if the socket has room for it now: never waits for the peer
     * to read. A message this small goes whole or not at all: a Unix stream socket sends it as one
     * buffer, which it either has room for or not [net/unix/af_unix.c, unix_stream_sendmsg].
     *
     * @param msg the message, at most {@link #TRY_WRITE_MAX} bytes with its header
     * @return whether it was written; false: the socket was full, nothing was sent
     * @throws NativeCallException if the socket call failed (a closed peer is {@code EPIPE})
     * @throws IllegalArgumentException if the message is larger than {@link #TRY_WRITE_MAX}
     */
    public synchronized boolean tryWrite(VhostUserMessage msg) throws NativeCallException {
        if (VhostUserProtocol.HEADER_SIZE + (long) msg.size() > TRY_WRITE_MAX) {
            throw new IllegalArgumentException("message of " + msg.size() + " payload bytes; tryWrite takes at most "
                + TRY_WRITE_MAX + " bytes with the header");
        }
        long total = prepare(msg);
        long sent = Libc.sendmsgNonBlocking(fd, sendMsghdr);
        if (sent < 0) {
            return false;
        }
        finish(sent, total);
        return true;
    }

    /** Fills the send buffers with {@code msg} and its fds; returns the bytes to send. */
    private long prepare(VhostUserMessage msg, int... sendFds) {
        if (sendFds.length > VhostUserProtocol.MAX_FDS) {
            throw new IllegalArgumentException(sendFds.length + " fds; at most " + VhostUserProtocol.MAX_FDS
                + " fit in one message");
        }
        long total = VhostUserProtocol.HEADER_SIZE + (long) msg.size();
        sendHeader.set(ValueLayout.JAVA_INT, 0, msg.request());
        sendHeader.set(ValueLayout.JAVA_INT, 4, msg.flags());
        sendHeader.set(ValueLayout.JAVA_INT, 8, msg.size());
        MemorySegment.copy(msg.payload(), 0, sendHeader, VhostUserProtocol.HEADER_SIZE, msg.size());
        sendMsghdr.fill((byte) 0);
        sendIov.set(ValueLayout.ADDRESS, 0, sendHeader);
        sendIov.set(ValueLayout.JAVA_LONG, 8, total);
        sendMsghdr.set(ValueLayout.ADDRESS, Libc.MSG_IOV, sendIov);
        sendMsghdr.set(ValueLayout.JAVA_LONG, Libc.MSG_IOVLEN, 1);
        if (sendFds.length > 0) {
            long dataLen = 4L * sendFds.length;
            sendControl.fill((byte) 0);
            sendControl.set(ValueLayout.JAVA_LONG, 0, Libc.CMSG_HEADER + dataLen);
            sendControl.set(ValueLayout.JAVA_INT, Libc.CMSG_LEVEL, Libc.SOL_SOCKET);
            sendControl.set(ValueLayout.JAVA_INT, Libc.CMSG_TYPE, Libc.SCM_RIGHTS);
            for (int i = 0; i < sendFds.length; i++) {
                sendControl.set(ValueLayout.JAVA_INT, Libc.CMSG_HEADER + 4L * i, sendFds[i]);
            }
            sendMsghdr.set(ValueLayout.ADDRESS, Libc.MSG_CONTROL, sendControl);
            sendMsghdr.set(ValueLayout.JAVA_LONG, Libc.MSG_CONTROLLEN, Libc.CMSG_HEADER + ((dataLen + 7) & ~7L));
        }
        return total;
    }

    /** After {@code sent} of {@code total} bytes went with sendmsg, writes the rest. */
    private void finish(long sent, long total) throws NativeCallException {
        // fds went with the first byte; send any rest of a short write without them
        while (sent < total) {
            long n = Libc.write(fd, sendHeader.asSlice(sent), total - sent);
            if (n <= 0) {
                throw new NativeCallException("write", Libc.EAGAIN, "fd " + fd + " would block inside a message");
            }
            sent += n;
        }
    }

    /** Shuts the socket down, waking a thread blocked reading it; {@link #close()} still follows. */
    public void shutdown() {
        try {
            Libc.shutdown(fd);
        } catch (NativeCallException ignored) {
            // already closed or not connected: nothing left to wake
        }
    }

    /** Closes the socket and frees the buffers. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            Libc.closeQuietly(fd);
        }
        arena.close();
    }
}

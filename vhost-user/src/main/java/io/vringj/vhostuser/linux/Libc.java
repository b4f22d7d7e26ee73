package io.vringj.vhostuser.linux;

import io.vringj.vhostuser.NativeCallException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

/**
 * The libc calls the back end needs, as FFM downcalls on x86_64 Linux. Each call captures
 * {@code errno} and turns a failure into a {@link NativeCallException} that names the call.
 * Calls interrupted by a signal ({@code EINTR}) are retried.
 *
 * <p>Layouts (x86_64 Linux, LP64):
 * <pre>
 *   struct sockaddr_un { u16 sun_family @0; char sun_path[108] @2 }               110 bytes
 *   struct iovec       { void *iov_base @0; size_t iov_len @8 }                   16 bytes
 *   struct msghdr      { void *msg_name @0; u32 msg_namelen @8; (pad 4)
 *                        iovec *msg_iov @16; size_t msg_iovlen @24;
 *                        void *msg_control @32; size_t msg_controllen @40;
 *                        int msg_flags @48; (pad 4) }                               56 bytes
 *   struct cmsghdr     { size_t cmsg_len @0; int cmsg_level @8; int cmsg_type @12;
 *                        data @16 }       CMSG_LEN(n) = 16 + n, CMSG_SPACE(n) = 16 + align8(n)
 *   struct pollfd      { int fd @0; short events @4; short revents @6 }           8 bytes
 * </pre>
 *
 * <p>Thread-safe: every call uses a per-thread errno capture segment allocated once.
 */
public final class Libc {
    public static final int AF_UNIX = 1;
    public static final int SOCK_STREAM = 1;
    public static final int SOCK_CLOEXEC = 0x80000;
    public static final int SOL_SOCKET = 1;
    public static final int SCM_RIGHTS = 1;
    public static final int MSG_CTRUNC = 0x8;
    public static final int MSG_NOSIGNAL = 0x4000;
    /** {@code MSG_DONTWAIT}: this call only, as if the socket were non-blocking. */
    public static final int MSG_DONTWAIT = 0x40;
    public static final int MSG_CMSG_CLOEXEC = 0x40000000;
    public static final int SHUT_RDWR = 2;
    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;
    public static final int MAP_SHARED = 1;
    public static final int MAP_PRIVATE = 2;
    public static final int MAP_FIXED = 0x10;
    public static final int MAP_ANONYMOUS = 0x20;
    public static final int MAP_NORESERVE = 0x4000;
    public static final int PROT_NONE = 0;
    /** The page size mappings are aligned to (x86-64 and arm64 with 4 KiB pages). */
    public static final long PAGE_SIZE = 4096;
    public static final int EFD_CLOEXEC = 0x80000;
    public static final int EFD_NONBLOCK = 0x800;
    public static final short POLLIN = 0x1;
    public static final short POLLERR = 0x8;
    public static final short POLLHUP = 0x10;
    public static final short POLLNVAL = 0x20;

    /** {@code fcntl} commands and flags (x86_64 Linux, {@code <fcntl.h>}, {@code <linux/fcntl.h>}). */
    public static final int F_GETFL = 3;
    public static final int F_SETFL = 4;
    public static final int O_NONBLOCK = 0x800;
    public static final int F_ADD_SEALS = 1024 + 9;
    public static final int F_GET_SEALS = 1024 + 10;
    public static final int F_SEAL_SEAL = 0x1;
    public static final int F_SEAL_SHRINK = 0x2;
    public static final int F_SEAL_GROW = 0x4;
    public static final int F_SEAL_WRITE = 0x8;
    public static final int MFD_CLOEXEC = 0x1;
    public static final int MFD_ALLOW_SEALING = 0x2;

    public static final int EINTR = 4;
    public static final int EAGAIN = 11;
    public static final int EINVAL = 22;

    /** The longest socket path {@code sun_path} holds, without its terminating NUL. */
    public static final int UNIX_PATH_MAX = 107;

    public static final StructLayout SOCKADDR_UN = MemoryLayout.structLayout(
        ValueLayout.JAVA_SHORT.withName("sun_family"),
        MemoryLayout.sequenceLayout(108, ValueLayout.JAVA_BYTE).withName("sun_path"));

    public static final StructLayout IOVEC = MemoryLayout.structLayout(
        ValueLayout.ADDRESS.withName("iov_base"),
        ValueLayout.JAVA_LONG.withName("iov_len"));

    public static final StructLayout MSGHDR = MemoryLayout.structLayout(
        ValueLayout.ADDRESS.withName("msg_name"),
        ValueLayout.JAVA_INT.withName("msg_namelen"),
        MemoryLayout.paddingLayout(4),
        ValueLayout.ADDRESS.withName("msg_iov"),
        ValueLayout.JAVA_LONG.withName("msg_iovlen"),
        ValueLayout.ADDRESS.withName("msg_control"),
        ValueLayout.JAVA_LONG.withName("msg_controllen"),
        ValueLayout.JAVA_INT.withName("msg_flags"),
        MemoryLayout.paddingLayout(4));

    public static final long MSG_IOV = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_iov"));
    public static final long MSG_IOVLEN = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_iovlen"));
    public static final long MSG_CONTROL = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_control"));
    public static final long MSG_CONTROLLEN = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_controllen"));
    public static final long MSG_FLAGS = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_flags"));

    public static final long CMSG_HEADER = 16;
    public static final long CMSG_LEVEL = 8;
    public static final long CMSG_TYPE = 12;
    public static final long POLLFD_SIZE = 8;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
        CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final ValueLayout.OfInt C_INT = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong C_LONG = ValueLayout.JAVA_LONG;
    private static final ValueLayout C_PTR = ValueLayout.ADDRESS;

    private static final MethodHandle SOCKET = downcall("socket", FunctionDescriptor.of(C_INT, C_INT, C_INT, C_INT));
    private static final MethodHandle SOCKETPAIR =
        downcall("socketpair", FunctionDescriptor.of(C_INT, C_INT, C_INT, C_INT, C_PTR));
    private static final MethodHandle BIND = downcall("bind", FunctionDescriptor.of(C_INT, C_INT, C_PTR, C_INT));
    private static final MethodHandle CONNECT = downcall("connect", FunctionDescriptor.of(C_INT, C_INT, C_PTR, C_INT));
    private static final MethodHandle LISTEN = downcall("listen", FunctionDescriptor.of(C_INT, C_INT, C_INT));
    private static final MethodHandle ACCEPT4 =
        downcall("accept4", FunctionDescriptor.of(C_INT, C_INT, C_PTR, C_PTR, C_INT));
    private static final MethodHandle RECVMSG = downcall("recvmsg", FunctionDescriptor.of(C_LONG, C_INT, C_PTR, C_INT));
    private static final MethodHandle SENDMSG = downcall("sendmsg", FunctionDescriptor.of(C_LONG, C_INT, C_PTR, C_INT));
    private static final MethodHandle READ = downcall("read", FunctionDescriptor.of(C_LONG, C_INT, C_PTR, C_LONG));
    private static final MethodHandle WRITE = downcall("write", FunctionDescriptor.of(C_LONG, C_INT, C_PTR, C_LONG));
    private static final MethodHandle CLOSE = downcall("close", FunctionDescriptor.of(C_INT, C_INT));
    private static final MethodHandle SHUTDOWN = downcall("shutdown", FunctionDescriptor.of(C_INT, C_INT, C_INT));
    private static final MethodHandle UNLINK = downcall("unlink", FunctionDescriptor.of(C_INT, C_PTR));
    private static final MethodHandle MMAP =
        downcall("mmap", FunctionDescriptor.of(C_PTR, C_PTR, C_LONG, C_INT, C_INT, C_INT, C_LONG));
    private static final MethodHandle MUNMAP = downcall("munmap", FunctionDescriptor.of(C_INT, C_PTR, C_LONG));
    private static final MethodHandle EVENTFD = downcall("eventfd", FunctionDescriptor.of(C_INT, C_INT, C_INT));
    private static final MethodHandle POLL = downcall("poll", FunctionDescriptor.of(C_INT, C_PTR, C_LONG, C_INT));
    private static final MethodHandle MEMFD_CREATE =
        downcall("memfd_create", FunctionDescriptor.of(C_INT, C_PTR, C_INT));
    private static final MethodHandle FTRUNCATE = downcall("ftruncate", FunctionDescriptor.of(C_INT, C_INT, C_LONG));
    private static final MethodHandle FSTAT = downcall("fstat", FunctionDescriptor.of(C_INT, C_INT, C_PTR));
    /** {@code int fcntl(int fd, int cmd, ...)}: variadic after the command, called with one int argument. */
    private static final MethodHandle FCNTL = LINKER.downcallHandle(
        LIBC.find("fcntl").orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol fcntl")),
        FunctionDescriptor.of(C_INT, C_INT, C_INT, C_INT), CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));

    /** {@code sizeof(struct stat)} on x86_64 Linux. */
    public static final long STAT_SIZE = 144;
    /** Offset of {@code st_size} in {@code struct stat} on x86_64 Linux. */
    public static final long STAT_ST_SIZE = 48;

    /** One errno capture segment per thread, allocated once: calls on hot paths do not allocate. */
    private static final ThreadLocal<MemorySegment> CAPTURE_STATE =
        ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE));

    private Libc() {
    }

    private static MethodHandle downcall(String name, FunctionDescriptor descriptor) {
        MemorySegment symbol = LIBC.find(name)
            .orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
        return LINKER.downcallHandle(symbol, descriptor, CAPTURE_ERRNO);
    }

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    private static NativeCallException failure(String call, MemorySegment state, String detail) {
        return new NativeCallException(call, errno(state), detail);
    }

    /** Wraps a Throwable escaping {@code invokeExact} (none is expected from these downcalls). */
    private static IllegalStateException unexpected(String call, Throwable t) {
        return new IllegalStateException("downcall " + call + " failed unexpectedly", t);
    }

    // ---------------------------------------------------------------- sockets

    /** @return a new {@code AF_UNIX} stream socket (close-on-exec) */
    public static int socket() throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            int fd = (int) SOCKET.invokeExact(state, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                throw failure("socket", state, "AF_UNIX, SOCK_STREAM");
            }
            return fd;
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("socket", t);
        }
    }

    /** @return two connected {@code AF_UNIX} stream sockets (close-on-exec) */
    public static int[] socketPair() throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(C_INT, 2);
            int rc = (int) SOCKETPAIR.invokeExact(state, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
            if (rc < 0) {
                throw failure("socketpair", state, "AF_UNIX, SOCK_STREAM");
            }
            return new int[] {fds.getAtIndex(C_INT, 0), fds.getAtIndex(C_INT, 1)};
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("socketpair", t);
        }
    }

    private static MemorySegment sockaddr(Arena arena, String path) {
        byte[] bytes = path.getBytes(StandardCharsets.UTF_8);
        if (bytes.length == 0 || bytes.length > UNIX_PATH_MAX) {
            throw new IllegalArgumentException("socket path '" + path + "' is " + bytes.length
                + " bytes; a Unix socket path must be 1.." + UNIX_PATH_MAX + " bytes");
        }
        if (path.indexOf('\0') >= 0) {
            throw new IllegalArgumentException("socket path '" + path + "' contains a NUL byte");
        }
        MemorySegment addr = arena.allocate(SOCKADDR_UN);
        addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(bytes, 0, addr, ValueLayout.JAVA_BYTE, 2, bytes.length);
        return addr;
    }

    /** Binds {@code fd} to the socket file {@code path}. */
    public static void bind(int fd, String path) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = sockaddr(arena, path);
            int rc = (int) BIND.invokeExact(state, fd, addr, (int) SOCKADDR_UN.byteSize());
            if (rc < 0) {
                throw failure("bind", state, path);
            }
        } catch (NativeCallException | IllegalArgumentException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("bind", t);
        }
    }

    /** Connects {@code fd} to the socket file {@code path}. */
    public static void connect(int fd, String path) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = sockaddr(arena, path);
            int rc;
            do {
                rc = (int) CONNECT.invokeExact(state, fd, addr, (int) SOCKADDR_UN.byteSize());
            } while (rc < 0 && errno(state) == EINTR);
            if (rc < 0) {
                throw failure("connect", state, path);
            }
        } catch (NativeCallException | IllegalArgumentException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("connect", t);
        }
    }

    /** Marks {@code fd} as listening. */
    public static void listen(int fd, int backlog) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            int rc = (int) LISTEN.invokeExact(state, fd, backlog);
            if (rc < 0) {
                throw failure("listen", state, "backlog " + backlog);
            }
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("listen", t);
        }
    }

    /** @return the accepted connection (close-on-exec) */
    public static int accept(int fd) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            int conn;
            do {
                conn = (int) ACCEPT4.invokeExact(state, fd, MemorySegment.NULL, MemorySegment.NULL, SOCK_CLOEXEC);
            } while (conn < 0 && errno(state) == EINTR);
            if (conn < 0) {
                throw failure("accept", state, "listening fd " + fd);
            }
            return conn;
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("accept", t);
        }
    }

    /**
     * {@code recvmsg(fd, msg, MSG_CMSG_CLOEXEC)}.
     *
     * @return the bytes received; 0 at end of stream
     */
    public static long recvmsg(int fd, MemorySegment msghdr) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            long n;
            do {
                n = (long) RECVMSG.invokeExact(state, fd, msghdr, MSG_CMSG_CLOEXEC);
            } while (n < 0 && errno(state) == EINTR);
            if (n < 0) {
                throw failure("recvmsg", state, "fd " + fd);
            }
            return n;
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("recvmsg", t);
        }
    }

    /**
     * {@code sendmsg(fd, msg, MSG_NOSIGNAL)}: a closed peer is an {@code EPIPE} error, not a signal.
     *
     * @return the bytes sent
     */
    public static long sendmsg(int fd, MemorySegment msghdr) throws NativeCallException {
        return sendmsg(fd, msghdr, MSG_NOSIGNAL);
    }

    /**
     * {@code sendmsg(fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT)}: never waits for room in the socket.
     *
     * @return the bytes sent, or -1 if the socket had no room ({@code EAGAIN}: nothing was sent)
     */
    public static long sendmsgNonBlocking(int fd, MemorySegment msghdr) throws NativeCallException {
        return sendmsg(fd, msghdr, MSG_NOSIGNAL | MSG_DONTWAIT);
    }

    private static long sendmsg(int fd, MemorySegment msghdr, int flags) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            long n;
            do {
                n = (long) SENDMSG.invokeExact(state, fd, msghdr, flags);
            } while (n < 0 && errno(state) == EINTR);
            if (n < 0 && (flags & MSG_DONTWAIT) != 0 && errno(state) == EAGAIN) {
                return -1;
            }
            if (n < 0) {
                throw failure("sendmsg", state, "fd " + fd);
            }
            return n;
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("sendmsg", t);
        }
    }

    /** Shuts down both directions of a socket, waking any thread blocked on it. */
    public static void shutdown(int fd) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            int rc = (int) SHUTDOWN.invokeExact(state, fd, SHUT_RDWR);
            if (rc < 0) {
                throw failure("shutdown", state, "fd " + fd);
            }
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("shutdown", t);
        }
    }

    /** Removes the file {@code path}. */
    public static void unlink(String path) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            int rc = (int) UNLINK.invokeExact(state, arena.allocateFrom(path));
            if (rc < 0) {
                throw failure("unlink", state, path);
            }
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("unlink", t);
        }
    }

    // ---------------------------------------------------------------- fds

    /**
     * {@code read(fd, buf, len)}.
     *
     * @return the bytes read; 0 at end of stream; -1 if {@code fd} is non-blocking and has nothing
     */
    public static long read(int fd, MemorySegment buf, long len) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            long n;
            do {
                n = (long) READ.invokeExact(state, fd, buf, len);
            } while (n < 0 && errno(state) == EINTR);
            if (n < 0) {
                if (errno(state) == EAGAIN) {
                    return -1;
                }
                throw failure("read", state, "fd " + fd + ", " + len + " bytes");
            }
            return n;
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("read", t);
        }
    }

    /**
     * {@code write(fd, buf, len)}.
     *
     * @return the bytes written; -1 if {@code fd} is non-blocking and full
     */
    public static long write(int fd, MemorySegment buf, long len) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            long n;
            do {
                n = (long) WRITE.invokeExact(state, fd, buf, len);
            } while (n < 0 && errno(state) == EINTR);
            if (n < 0) {
                if (errno(state) == EAGAIN) {
                    return -1;
                }
                throw failure("write", state, "fd " + fd + ", " + len + " bytes");
            }
            return n;
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("write", t);
        }
    }

    /** Closes {@code fd}. */
    public static void close(int fd) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            // no retry on EINTR: Linux releases the fd even then, and a retry could close a reused fd
            int rc = (int) CLOSE.invokeExact(state, fd);
            if (rc < 0) {
                throw failure("close", state, "fd " + fd);
            }
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("close", t);
        }
    }

    /** Closes {@code fd} if it is not negative, ignoring errors (clean-up paths). */
    public static void closeQuietly(int fd) {
        if (fd >= 0) {
            try {
                close(fd);
            } catch (NativeCallException ignored) {
                // clean-up: the fd is released by the kernel whatever close reports
            }
        }
    }

    /** @return a new eventfd with counter 0 */
    public static int eventfd(int flags) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            int fd = (int) EVENTFD.invokeExact(state, 0, flags);
            if (fd < 0) {
                throw failure("eventfd", state, "flags 0x" + Integer.toHexString(flags));
            }
            return fd;
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("eventfd", t);
        }
    }

    /**
     * {@code poll(fds, n, timeoutMillis)}.
     *
     * @return how many entries have events; 0 on time-out
     */
    public static int poll(MemorySegment pollfds, int n, int timeoutMillis) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            int rc;
            do {
                rc = (int) POLL.invokeExact(state, pollfds, (long) n, timeoutMillis);
            } while (rc < 0 && errno(state) == EINTR);
            if (rc < 0) {
                throw failure("poll", state, n + " fds");
            }
            return rc;
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("poll", t);
        }
    }

    // ---------------------------------------------------------------- memory

    /**
     * {@code mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)}.
     *
     * @return the address of the mapping
     */
    public static long mmapShared(int fd, long length) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            MemorySegment addr = (MemorySegment) MMAP.invokeExact(state, MemorySegment.NULL, length,
                PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0L);
            if (addr.address() == -1L) {
                throw failure("mmap", state, "fd " + fd + ", " + length + " bytes");
            }
            return addr.address();
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("mmap", t);
        }
    }

    /**
     * Reserves {@code length} bytes of address space, inaccessible and backed by nothing, for
     * {@link #mmapSharedFixed} to place mappings side by side in; {@link #munmap} releases it.
     *
     * @return the address of the reservation
     */
    public static long mmapReserve(long length) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            MemorySegment addr = (MemorySegment) MMAP.invokeExact(state, MemorySegment.NULL, length,
                PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0L);
            if (addr.address() == -1L) {
                throw failure("mmap", state, "reserve " + length + " bytes");
            }
            return addr.address();
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("mmap", t);
        }
    }

    /**
     * Maps {@code length} bytes of {@code fd} from {@code offset} (page-aligned), shared and
     * read-write, exactly at {@code address} inside a reservation from {@link #mmapReserve}.
     */
    public static void mmapSharedFixed(long address, int fd, long length, long offset) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            MemorySegment addr = (MemorySegment) MMAP.invokeExact(state, MemorySegment.ofAddress(address), length,
                PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, offset);
            if (addr.address() == -1L) {
                throw failure("mmap", state, "fd " + fd + ", " + length + " bytes from offset " + offset
                    + " at 0x" + Long.toHexString(address));
            }
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("mmap", t);
        }
    }

    /**
     * {@code fstat(fd).st_size}: the size of the file behind {@code fd}.
     *
     * @return the size in bytes
     */
    public static long fileSize(int fd) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stat = arena.allocate(STAT_SIZE, 8);
            int rc = (int) FSTAT.invokeExact(state, fd, stat);
            if (rc < 0) {
                throw failure("fstat", state, "fd " + fd);
            }
            return stat.get(ValueLayout.JAVA_LONG, STAT_ST_SIZE);
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("fstat", t);
        }
    }

    /** {@code munmap(address, length)}. */
    public static void munmap(long address, long length) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            int rc = (int) MUNMAP.invokeExact(state, MemorySegment.ofAddress(address), length);
            if (rc < 0) {
                throw failure("munmap", state, "0x" + Long.toHexString(address) + ", " + length + " bytes");
            }
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("munmap", t);
        }
    }

    /** @return an anonymous memory file of {@code size} bytes (close-on-exec); tests share memory with it */
    public static int memfd(String name, long size) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            int fd = (int) MEMFD_CREATE.invokeExact(state, arena.allocateFrom(name), MFD_CLOEXEC);
            if (fd < 0) {
                throw failure("memfd_create", state, name);
            }
            int rc = (int) FTRUNCATE.invokeExact(state, fd, size);
            if (rc < 0) {
                NativeCallException e = failure("ftruncate", state, "memfd " + name + " to " + size + " bytes");
                closeQuietly(fd);
                throw e;
            }
            return fd;
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("memfd_create", t);
        }
    }

    /**
     * A memory file that can neither shrink nor grow: {@code memfd_create} with sealing allowed,
     * sized, then sealed with {@code F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL}, so a peer that maps
     * it can never see its pages vanish (QEMU's {@code memory-backend-memfd} seals the same way).
     *
     * @return the fd (close-on-exec)
     */
    public static int sealedMemfd(String name, long size) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        int fd;
        try (Arena arena = Arena.ofConfined()) {
            fd = (int) MEMFD_CREATE.invokeExact(state, arena.allocateFrom(name), MFD_CLOEXEC | MFD_ALLOW_SEALING);
            if (fd < 0) {
                throw failure("memfd_create", state, name);
            }
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("memfd_create", t);
        }
        try {
            ftruncate(fd, size);
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
            return fd;
        } catch (NativeCallException e) {
            closeQuietly(fd);
            throw e;
        }
    }

    /** {@code ftruncate(fd, size)}. */
    public static void ftruncate(int fd, long size) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            int rc = (int) FTRUNCATE.invokeExact(state, fd, size);
            if (rc < 0) {
                throw failure("ftruncate", state, "fd " + fd + " to " + size + " bytes");
            }
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("ftruncate", t);
        }
    }

    /**
     * {@code fcntl(fd, cmd, arg)}.
     *
     * @return what fcntl returned (for {@code F_GETFL} the flags, for {@code F_GET_SEALS} the seals)
     */
    public static int fcntl(int fd, int cmd, int arg) throws NativeCallException {
        MemorySegment state = CAPTURE_STATE.get();
        try {
            int rc = (int) FCNTL.invokeExact(state, fd, cmd, arg);
            if (rc < 0) {
                throw failure("fcntl", state, "fd " + fd + ", cmd " + cmd + ", arg 0x" + Integer.toHexString(arg));
            }
            return rc;
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected("fcntl", t);
        }
    }

    /** @return the seals on {@code fd} ({@code F_SEAL_*} bits); a file that cannot be sealed has none */
    public static int seals(int fd) throws NativeCallException {
        try {
            return fcntl(fd, F_GET_SEALS, 0);
        } catch (NativeCallException e) {
            if (e.errno() == EINVAL) {
                return 0;
            }
            throw e;
        }
    }

    /** Puts {@code fd} in non-blocking mode, so a read or write that would wait fails with EAGAIN. */
    public static void setNonBlocking(int fd) throws NativeCallException {
        int flags = fcntl(fd, F_GETFL, 0);
        if ((flags & O_NONBLOCK) == 0) {
            fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        }
    }
}

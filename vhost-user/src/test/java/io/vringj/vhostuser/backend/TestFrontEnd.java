package io.vringj.vhostuser.backend;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.VhostUserChannel;
import io.vringj.vhostuser.VhostUserMessage;
import io.vringj.vhostuser.VhostUserProtocol;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import static io.vringj.vhostuser.VhostUserProtocol.FLAG_REPLY;

/**
 * A vhost-user front end for tests, over a real Unix socket with our own FFM libc: it plays
 * QEMU's part (guest memory in a memfd shared with the back end, eventfds for kick and call).
 */
final class TestFrontEnd implements AutoCloseable {
    /** Guest-physical base of the test guest's memory. */
    static final long GPA_BASE = 0x4000_0000L;
    /** The front end's user address of the same memory (deliberately unlike the GPA). */
    static final long UADDR_BASE = 0x7f00_1234_0000L;
    static final long MEMORY_SIZE = 1 << 20;

    final Arena arena = Arena.ofShared();
    final VhostUserChannel channel;
    final VhostUserMessage out = new VhostUserMessage(arena);
    final VhostUserMessage in = new VhostUserMessage(arena);
    private static final java.util.concurrent.atomic.AtomicInteger NEXT_ID = new java.util.concurrent.atomic.AtomicInteger();
    /** The memfd's name, unique per front end: /proc/self/maps shows it as {@code /memfd:NAME}. */
    final String memfdName = "vringj-test-guest-" + NEXT_ID.incrementAndGet();
    private int memfd = -1;
    /** Our end of the back-end request channel, once {@link #sendBackendReqFd()} ran. */
    VhostUserChannel backendRequests;
    final VhostUserMessage backendIn = new VhostUserMessage(arena);
    private MemorySegment mapping;
    GuestMemory memory;

    TestFrontEnd(String path) throws NativeCallException {
        int fd = Libc.socket();
        try {
            Libc.connect(fd, path);
        } catch (NativeCallException e) {
            Libc.closeQuietly(fd);
            throw e;
        }
        channel = new VhostUserChannel(fd);
    }

    /** Creates the guest memory: a sealed memfd (as QEMU's memory-backend-memfd) mapped here, to be handed to the back end. */
    GuestMemory createMemory() throws NativeCallException {
        return createMemory(true);
    }

    /** Creates the guest memory in a memfd, sealed against shrinking and growing or not. */
    GuestMemory createMemory(boolean sealed) throws NativeCallException {
        memfd = sealed ? Libc.sealedMemfd(memfdName, MEMORY_SIZE) : Libc.memfd(memfdName, MEMORY_SIZE);
        long address = Libc.mmapShared(memfd, MEMORY_SIZE);
        mapping = MemorySegment.ofAddress(address).reinterpret(MEMORY_SIZE, arena,
            s -> {
                try {
                    Libc.munmap(address, MEMORY_SIZE);
                } catch (NativeCallException e) {
                    throw new IllegalStateException(e);
                }
            });
        memory = GuestMemory.builder().region(GPA_BASE, mapping, RegionKind.SHARED).build();
        return memory;
    }

    /** Truncates the guest memory's file (a hostile front end taking the pages away under the back end). */
    void shrinkMemory(long size) throws NativeCallException {
        Libc.ftruncate(memfd, size);
    }

    long uaddr(long gpa) {
        return UADDR_BASE + (gpa - GPA_BASE);
    }

    void send(int request, int flags, int size, int... fds) throws NativeCallException {
        out.header(request, flags, size);
        channel.write(out, fds);
    }

    void sendU64(int request, long value, int... fds) throws NativeCallException {
        out.header(request, 0, 8).putU64(0, value);
        channel.write(out, fds);
    }

    /** As {@link #sendU64}, asking for a REPLY_ACK: read it with {@link #replyU64}. */
    void sendU64NeedReply(int request, long value, int... fds) throws NativeCallException {
        out.header(request, VhostUserProtocol.FLAG_NEED_REPLY, 8).putU64(0, value);
        channel.write(out, fds);
    }

    void sendState(int request, int index, int num) throws NativeCallException {
        out.header(request, 0, 8).putU32(0, index).putU32(4, num);
        channel.write(out);
    }

    void sendMemTable() throws NativeCallException {
        sendMemTable(0);
    }

    void sendMemTable(int flags) throws NativeCallException {
        out.header(VhostUserProtocol.SET_MEM_TABLE, flags, 8 + 32).putU32(0, 1).putU32(4, 0)
            .putU64(8, GPA_BASE).putU64(16, MEMORY_SIZE).putU64(24, UADDR_BASE).putU64(32, 0);
        channel.write(out, memfd);
    }

    /**
     * Describes the memory as two regions that meet at {@code split} bytes, contiguous in both
     * guest-physical and user addresses, each with the memfd at its own mmap_offset.
     */
    void sendMemTableInTwoRegions(long split) throws NativeCallException {
        out.header(VhostUserProtocol.SET_MEM_TABLE, 0, 8 + 64).putU32(0, 2).putU32(4, 0)
            .putU64(8, GPA_BASE).putU64(16, split).putU64(24, UADDR_BASE).putU64(32, 0)
            .putU64(40, GPA_BASE + split).putU64(48, MEMORY_SIZE - split).putU64(56, UADDR_BASE + split)
            .putU64(64, split);
        channel.write(out, memfd, memfd);
    }

    void sendVringAddr(int index, long descGpa, long usedGpa, long availGpa) throws NativeCallException {
        out.header(VhostUserProtocol.SET_VRING_ADDR, 0, 40).putU32(0, index).putU32(4, 0)
            .putU64(8, uaddr(descGpa)).putU64(16, uaddr(usedGpa)).putU64(24, uaddr(availGpa)).putU64(32, 0);
        channel.write(out);
    }

    /** Reads the reply to {@code request} and returns its u64 (or the state's num for GET_VRING_BASE). */
    long replyU64(int request) throws Exception {
        if (!channel.read(in)) {
            throw new AssertionError("back end closed the connection instead of replying to "
                + VhostUserProtocol.requestName(request));
        }
        if (in.request() != request || (in.flags() & FLAG_REPLY) == 0 || in.size() != 8) {
            throw new AssertionError("expected an 8-byte reply to " + VhostUserProtocol.requestName(request)
                + ", got " + in);
        }
        return in.u64(0);
    }

    /** @return how many mappings of this front end's memfd the process has (ours and the back end's) */
    long mappingsOfGuestMemory() throws java.io.IOException {
        try (java.util.stream.Stream<String> lines = java.nio.file.Files.lines(java.nio.file.Path.of("/proc/self/maps"))) {
            return lines.filter(l -> l.endsWith("/memfd:" + memfdName + " (deleted)") || l.endsWith("/memfd:" + memfdName))
                .count();
        }
    }

    /** Gives the back end one end of a socket pair as its request channel (with NEED_REPLY). */
    void sendBackendReqFd() throws Exception {
        int[] pair = Libc.socketPair();
        backendRequests = new VhostUserChannel(pair[0]);
        out.header(VhostUserProtocol.SET_BACKEND_REQ_FD, VhostUserProtocol.FLAG_NEED_REPLY, 0);
        channel.write(out, pair[1]);
        Libc.close(pair[1]);
        if (replyU64(VhostUserProtocol.SET_BACKEND_REQ_FD) != 0) {
            throw new AssertionError("SET_BACKEND_REQ_FD was not acknowledged");
        }
    }

    /** Sends an IOTLB_MSG with NEED_REPLY and checks the acknowledgement. */
    void sendIotlb(int type, long iova, long size, long uaddr, int perm) throws Exception {
        out.header(VhostUserProtocol.IOTLB_MSG, VhostUserProtocol.FLAG_NEED_REPLY, VhostUserProtocol.IOTLB_MSG_SIZE);
        out.payload().asSlice(0, VhostUserProtocol.IOTLB_MSG_SIZE).fill((byte) 0);
        out.putU64(0, iova).putU64(8, size).putU64(16, uaddr).putU8(24, perm).putU8(25, type);
        channel.write(out);
        long ack = replyU64(VhostUserProtocol.IOTLB_MSG);
        if (ack != 0) {
            throw new AssertionError("IOTLB_MSG acknowledged with " + ack);
        }
    }

    /** Reads the next back-end request; returns {iova, perm, type} of the IOTLB message it carries. */
    long[] readBackendIotlb(Duration timeout) throws Exception {
        MemorySegment pollfd = arena.allocate(8, 8);
        pollfd.set(ValueLayout.JAVA_INT, 0, backendRequests.fd());
        pollfd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
        if (Libc.poll(pollfd, 1, (int) timeout.toMillis()) == 0) {
            throw new AssertionError("no back-end request within " + timeout);
        }
        if (!backendRequests.read(backendIn)) {
            throw new AssertionError("back end closed its request channel");
        }
        if (backendIn.request() != VhostUserProtocol.BACKEND_IOTLB_MSG || backendIn.size() != 32) {
            throw new AssertionError("expected a 32-byte back-end IOTLB_MSG, got " + backendIn);
        }
        return new long[] {backendIn.u64(0), backendIn.u8(24), backendIn.u8(25)};
    }

    /** @return whether the back end closed the connection within {@code timeout} */
    boolean closedByBackEnd(Duration timeout) throws Exception {
        MemorySegment pollfd = arena.allocate(8, 8);
        pollfd.set(ValueLayout.JAVA_INT, 0, channel.fd());
        pollfd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
        if (Libc.poll(pollfd, 1, (int) timeout.toMillis()) == 0) {
            return false;
        }
        try {
            return !channel.read(in);
        } catch (ProtocolException | NativeCallException e) {
            return true;
        }
    }

    private boolean closed;

    /** Closes the connection and releases the memory; idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        channel.close();
        if (backendRequests != null) {
            backendRequests.close();
        }
        if (memory != null) {
            memory.close();
        }
        arena.close();
        Libc.closeQuietly(memfd);
    }
}

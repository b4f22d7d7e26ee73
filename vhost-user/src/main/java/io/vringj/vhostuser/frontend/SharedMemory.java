package io.vringj.vhostuser.frontend;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The front end's guest memory: one sealed memfd (it can neither shrink nor grow, so a back end
 * that maps it never sees pages vanish), mapped shared here and wrapped as one {@code SHARED}
 * region of a ring-core {@link GuestMemory}. The same fd goes to the back end in
 * {@code SET_MEM_TABLE}.
 *
 * <pre>
 *   guest-physical  guestPhysicalBase ............ + size
 *   user address    mapping.address() ............ + size      (SET_MEM_TABLE: mmap_offset 0)
 *                   [ rings of each queue | buffers from allocate() ... ]
 * </pre>
 *
 * <p>The mapping belongs to a shared {@link Arena}: {@link #close()} unmaps it (after every
 * thread left its accesses) and later accesses fail with an exception instead of touching
 * unmapped memory. {@link #allocate} is a bump allocator, thread-safe; nothing is freed before
 * {@link #close()}.
 */
final class SharedMemory implements AutoCloseable {
    /** Page size: the memory and every ring start on a page. */
    static final long PAGE = 4096;

    private final String name;
    private final int fd;
    private final long size;
    private final Arena arena;
    private final MemorySegment mapping;
    private final GuestMemory memory;
    private long next;
    private boolean closed;

    private SharedMemory(String name, int fd, long size, Arena arena, MemorySegment mapping, GuestMemory memory) {
        this.name = name;
        this.fd = fd;
        this.size = size;
        this.arena = arena;
        this.mapping = mapping;
        this.memory = memory;
    }

    /**
     * Creates, seals and maps the memory.
     *
     * @param name the memfd's name (shown in {@code /proc/PID/maps} as {@code /memfd:NAME})
     * @param guestPhysicalBase the guest-physical address of its first byte
     * @param size bytes, a multiple of the page size
     * @return the memory, zeroed
     * @throws NativeCallException if memfd_create, sealing or mmap failed (nothing is left behind)
     */
    static SharedMemory create(String name, long guestPhysicalBase, long size) throws NativeCallException {
        int fd = Libc.sealedMemfd(name, size);
        Arena arena = Arena.ofShared();
        try {
            long address = Libc.mmapShared(fd, size);
            MemorySegment mapping = MemorySegment.ofAddress(address).reinterpret(size, arena,
                segment -> unmapQuietly(address, size));
            GuestMemory memory = GuestMemory.builder().region(guestPhysicalBase, mapping, RegionKind.SHARED).build(arena);
            return new SharedMemory(name, fd, size, arena, mapping, memory);
        } catch (NativeCallException | RuntimeException e) {
            arena.close();
            Libc.closeQuietly(fd);
            throw e;
        }
    }

    private static void unmapQuietly(long address, long length) {
        try {
            Libc.munmap(address, length);
        } catch (NativeCallException e) {
            System.getLogger(SharedMemory.class.getName()).log(System.Logger.Level.WARNING,
                "cannot unmap guest memory: " + e.getMessage());
        }
    }

    /** @return the memfd's name */
    String name() {
        return name;
    }

    /** @return the memfd (owned by this object) */
    int fd() {
        return fd;
    }

    /** @return the size in bytes */
    long size() {
        return size;
    }

    /** @return the user address of the first byte (what SET_MEM_TABLE and SET_VRING_ADDR name) */
    long userAddress() {
        return mapping.address();
    }

    /** @return the guest-physical address of the first byte */
    long guestPhysicalBase() {
        return memory.region(0).guestPhysicalAddress();
    }

    /** @return the guest memory view */
    GuestMemory memory() {
        return memory;
    }

    /** @return the user address of guest-physical {@code gpa} inside this memory */
    long userAddressOf(long gpa) {
        return userAddress() + (gpa - guestPhysicalBase());
    }

    /**
     * Takes {@code bytes} bytes, aligned to {@code alignment}, zeroed.
     *
     * @return the memory, or {@code null} if not enough is left
     */
    synchronized MemorySegment tryAllocate(long bytes, long alignment) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("allocation of " + bytes + " bytes; it must be at least 1");
        }
        if (alignment <= 0 || Long.bitCount(alignment) != 1 || alignment > PAGE) {
            throw new IllegalArgumentException("alignment " + alignment + " must be a power of two in 1.." + PAGE);
        }
        // next <= size and alignment <= PAGE: no overflow
        long start = (next + alignment - 1) & -alignment;
        if (start > size || bytes > size - start) {
            return null;
        }
        next = start + bytes;
        MemorySegment segment = mapping.asSlice(start, bytes);
        segment.fill((byte) 0);
        return segment;
    }

    /** As {@link #tryAllocate}, failing with a message that names the sizes when the memory is full. */
    MemorySegment allocate(long bytes, long alignment) {
        MemorySegment segment = tryAllocate(bytes, alignment);
        if (segment == null) {
            throw new IllegalStateException(String.format(
                "guest memory of %d bytes has %d left; %d bytes (aligned to %d) do not fit", size, remaining(), bytes,
                alignment));
        }
        return segment;
    }

    /** @return bytes not yet allocated */
    synchronized long remaining() {
        return size - next;
    }

    /** Unmaps the memory and closes the memfd. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        arena.close();
        Libc.closeQuietly(fd);
    }

    @Override
    public String toString() {
        return String.format("memfd %s: %d bytes at guest-physical 0x%x, user address 0x%x", name, size,
            guestPhysicalBase(), userAddress());
    }
}

package io.vringj.vhostuser.backend;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.VhostUserMessage;
import io.vringj.vhostuser.VhostUserProtocol;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The front end's memory table ({@code SET_MEM_TABLE}) mapped into this process: each region's
 * fd is mapped {@code size + mmap_offset} bytes from offset 0 and sliced at {@code mmap_offset},
 * then becomes a {@code SHARED} region of a ring-core {@link GuestMemory} at its guest-physical
 * address.
 *
 * <p>The mappings belong to a shared {@link Arena} whose close unmaps them; closing waits until
 * no thread is inside an access, and later accesses fail with an exception instead of touching
 * unmapped memory. Close the table when it is replaced or the connection ends, after the queue
 * workers have stopped.
 *
 * <p>Regions that follow one another in both guest-physical and user addresses (with page-aligned
 * sizes and offsets) are mapped side by side in one reservation and become one region, so a
 * ring or buffer that straddles them is reachable, as the kernel's vhost allows.
 *
 * <p>Without {@code ACCESS_PLATFORM} the ring addresses of {@code SET_VRING_ADDR} are the front
 * end's user addresses: {@link #userToGuestPhysical(long, long)} turns them into guest-physical.
 */
public final class MemoryTable implements AutoCloseable {
    /** Bytes of one region entry. */
    public static final int REGION_SIZE = 32;
    /** Bytes before the first region entry ({@code u32 n, u32 padding}). */
    public static final int REGIONS_OFFSET = 8;

    private final Arena arena;
    private final long[] gpa;
    private final long[] size;
    private final long[] uaddr;
    private final GuestMemory memory;
    private final GuestMemory userMemory;
    private final AddressSpace userSpace;
    /** Per region: the fd of a file that may shrink (kept to watch its size), or -1 for a sealed one. */
    private final int[] watchedFd;
    /** Per region: the bytes of its file the mapping needs ({@code mmap_offset + size}). */
    private final long[] needed;

    private MemoryTable(Arena arena, long[] gpa, long[] size, long[] uaddr, GuestMemory memory,
                        GuestMemory userMemory, int[] watchedFd, long[] needed) {
        this.arena = arena;
        this.watchedFd = watchedFd;
        this.needed = needed;
        this.gpa = gpa;
        this.size = size;
        this.uaddr = uaddr;
        this.memory = memory;
        this.userMemory = userMemory;
        this.userSpace = AddressSpace.identity(userMemory);
    }

    /**
     * Checks and maps the table in {@code msg}; the region fds are closed whatever happens (the
     * mappings keep the memory).
     *
     * @param msg a {@code SET_MEM_TABLE} message
     * @return the mapped table
     * @throws ProtocolException if the payload size, region count, fd count or a region is wrong
     * @throws NativeCallException if {@code mmap} failed
     */
    public static MemoryTable map(VhostUserMessage msg) throws ProtocolException, NativeCallException {
        return map(msg, false);
    }

    /**
     * As {@link #map(VhostUserMessage)}, choosing whether a region's file must be sealed against
     * shrinking. A file that can shrink under a mapping turns the next access to the lost pages
     * into a fault inside the JVM instead of an exception; the size check here holds only at the
     * moment it runs, so by default such a file is refused.
     *
     * @param msg a {@code SET_MEM_TABLE} message
     * @param allowUnsealed whether to map a file without {@code F_SEAL_SHRINK} (a documented risk)
     * @return the mapped table
     * @throws ProtocolException if the payload size, region count, fd count or a region is wrong,
     *     or a region's file may shrink and {@code allowUnsealed} is false
     * @throws NativeCallException if {@code mmap} failed
     */
    public static MemoryTable map(VhostUserMessage msg, boolean allowUnsealed)
        throws ProtocolException, NativeCallException {
        try {
            if (msg.size() < REGIONS_OFFSET) {
                throw new ProtocolException("SET_MEM_TABLE payload is " + msg.size() + " bytes; at least "
                    + REGIONS_OFFSET + " are needed for the region count");
            }
            int n = msg.u32(0);
            if (n < 1 || n > VhostUserProtocol.MAX_FDS) {
                throw new ProtocolException("SET_MEM_TABLE has " + Integer.toUnsignedString(n) + " regions; 1.."
                    + VhostUserProtocol.MAX_FDS + " are accepted");
            }
            long expected = REGIONS_OFFSET + (long) REGION_SIZE * n;
            if (msg.size() != expected) {
                throw new ProtocolException("SET_MEM_TABLE with " + n + " regions has a " + msg.size()
                    + "-byte payload; it must be " + expected + " bytes");
            }
            if (msg.receivedFdCount() != n) {
                throw new ProtocolException("SET_MEM_TABLE has " + n + " regions but " + msg.receivedFdCount()
                    + " fds; each region needs exactly one fd");
            }
            long[] gpa = new long[n];
            long[] size = new long[n];
            long[] uaddr = new long[n];
            long[] offset = new long[n];
            for (int i = 0; i < n; i++) {
                long base = REGIONS_OFFSET + (long) REGION_SIZE * i;
                gpa[i] = msg.u64(base);
                size[i] = msg.u64(base + 8);
                uaddr[i] = msg.u64(base + 16);
                offset[i] = msg.u64(base + 24);
                checkRegion(i, gpa[i], size[i], uaddr[i], offset[i]);
            }
            Arena arena = Arena.ofShared();
            int[] watchedFd = new int[n];
            java.util.Arrays.fill(watchedFd, -1);
            long[] needed = new long[n];
            try {
                int[] fd = new int[n];
                for (int i = 0; i < n; i++) {
                    fd[i] = msg.rawFd(i);
                    long length = size[i] + offset[i];
                    long fileSize = Libc.fileSize(fd[i]);
                    if (length > fileSize) {
                        // pages past the end of the file would raise SIGBUS on access, not an exception
                        throw new ProtocolException(String.format(Locale.ROOT,
                            "SET_MEM_TABLE region %d needs mmap_offset 0x%x + size 0x%x bytes of its fd, "
                                + "but the file holds only 0x%x", i, offset[i], size[i], fileSize));
                    }
                    needed[i] = length;
                    boolean sealed = (Libc.seals(fd[i]) & Libc.F_SEAL_SHRINK) != 0;
                    if (!sealed && !allowUnsealed) {
                        throw new ProtocolException("SET_MEM_TABLE region " + i + ": its file is not sealed against "
                            + "shrinking (F_GET_SEALS lacks F_SEAL_SHRINK), so the front end could truncate it under "
                            + "our mapping; share a sealed memfd (QEMU's memory-backend-memfd seals by default) or "
                            + "start the back end with --allow-unsealed-memory");
                    }
                    if (!sealed) {
                        // keep the fd of a file that may shrink: workers check its size before each pass
                        watchedFd[i] = msg.takeFd(i);
                    }
                }
                // regions contiguous in both guest-physical and user addresses are mapped side by side
                // and become one region, so a ring that straddles them is reachable (as vhost allows)
                int[][] runs = contiguousRuns(gpa, size, uaddr, offset);
                long[] runGpa = new long[runs.length];
                long[] runSize = new long[runs.length];
                long[] runUaddr = new long[runs.length];
                GuestMemory.Builder builder = GuestMemory.builder();
                GuestMemory.Builder userBuilder = GuestMemory.builder();
                for (int r = 0; r < runs.length; r++) {
                    int[] run = runs[r];
                    int first = run[0];
                    MemorySegment region;
                    if (run.length == 1) {
                        long length = size[first] + offset[first];
                        long address = Libc.mmapShared(fd[first], length);
                        MemorySegment mapping = MemorySegment.ofAddress(address)
                            .reinterpret(length, arena, segment -> unmapQuietly(address, length));
                        region = mapping.asSlice(offset[first], size[first]);
                    } else {
                        long total = 0;
                        for (int i : run) {
                            total += size[i];  // cannot overflow: the run lies inside the 64-bit user address space
                        }
                        long length = total;
                        long base = Libc.mmapReserve(length);
                        region = MemorySegment.ofAddress(base)
                            .reinterpret(length, arena, segment -> unmapQuietly(base, length));
                        long at = 0;
                        for (int i : run) {
                            Libc.mmapSharedFixed(base + at, fd[i], size[i], offset[i]);
                            at += size[i];
                        }
                    }
                    runGpa[r] = gpa[first];
                    runSize[r] = region.byteSize();
                    runUaddr[r] = uaddr[first];
                    builder.region(runGpa[r], region, RegionKind.SHARED);
                    userBuilder.region(runUaddr[r], region, RegionKind.SHARED);
                }
                GuestMemory memory;
                GuestMemory userMemory;
                try {
                    memory = builder.build();
                    userMemory = userBuilder.build();
                } catch (IllegalArgumentException e) {
                    throw new ProtocolException("SET_MEM_TABLE regions are inconsistent: " + e.getMessage(), e);
                }
                return new MemoryTable(arena, runGpa, runSize, runUaddr, memory, userMemory, watchedFd, needed);
            } catch (ProtocolException | NativeCallException | RuntimeException e) {
                closeWatched(watchedFd);
                arena.close();
                throw e;
            }
        } finally {
            msg.closeFds();
        }
    }

    /**
     * Groups the regions into runs, each sorted by guest-physical address, whose members follow
     * one another in both guest-physical and user addresses and can be mapped side by side
     * (page-aligned sizes and file offsets). A region that joins nothing is a run of one.
     */
    static int[][] contiguousRuns(long[] gpa, long[] size, long[] uaddr, long[] offset) {
        Integer[] order = new Integer[gpa.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> Long.compareUnsigned(gpa[a], gpa[b]));
        List<int[]> runs = new ArrayList<>();
        List<Integer> current = new ArrayList<>();
        for (int k = 0; k < order.length; k++) {
            int i = order[k];
            if (!current.isEmpty()) {
                int last = current.get(current.size() - 1);
                boolean joins = gpa[last] + size[last] == gpa[i] && uaddr[last] + size[last] == uaddr[i]
                    && pageAligned(size[last], offset[last]) && pageAligned(size[i], offset[i]);
                if (!joins) {
                    runs.add(current.stream().mapToInt(Integer::intValue).toArray());
                    current.clear();
                }
            }
            current.add(i);
        }
        runs.add(current.stream().mapToInt(Integer::intValue).toArray());
        return runs.toArray(new int[0][]);
    }

    private static boolean pageAligned(long size, long offset) {
        return size % Libc.PAGE_SIZE == 0 && offset % Libc.PAGE_SIZE == 0;
    }

    private static void checkRegion(int i, long gpa, long size, long uaddr, long offset) throws ProtocolException {
        if (size <= 0) {
            throw new ProtocolException(String.format(Locale.ROOT,
                "SET_MEM_TABLE region %d has size 0x%x; a region size must be positive (and below 2^63)", i, size));
        }
        if (offset < 0 || size + offset < 0) {
            throw new ProtocolException(String.format(Locale.ROOT,
                "SET_MEM_TABLE region %d: mmap_offset 0x%x + size 0x%x overflows a 63-bit mapping length",
                i, offset, size));
        }
        if (Long.compareUnsigned(gpa, -size) > 0 || Long.compareUnsigned(uaddr, -size) > 0) {
            throw new ProtocolException(String.format(Locale.ROOT,
                "SET_MEM_TABLE region %d [gpa 0x%x, uaddr 0x%x, size 0x%x) runs past the end of the address space",
                i, gpa, uaddr, size));
        }
    }

    private static void unmapQuietly(long address, long length) {
        try {
            Libc.munmap(address, length);
        } catch (NativeCallException ignored) {
            // the address and length are the ones mmap returned; munmap cannot fail for them
        }
    }

    private static void closeWatched(int[] fds) {
        for (int i = 0; i < fds.length; i++) {
            Libc.closeQuietly(fds[i]);
            fds[i] = -1;
        }
    }

    /** @return whether a region's file may shrink (accepted with {@code --allow-unsealed-memory}) */
    public boolean hasUnsealedRegion() {
        for (int fd : watchedFd) {
            if (fd >= 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * Checks that no unsealed region's file shrank below what its mapping needs. Accessing such
     * pages would raise SIGBUS; the JVM turns that into an {@link InternalError} on most access
     * paths but not on all (an interpreted volatile store can abort the process), so the back
     * end checks before it touches the memory. A shrink that races with an access after the
     * check is the risk {@code --allow-unsealed-memory} accepts. Sealed regions cost nothing.
     *
     * @return {@code null} if every region is whole, else why not
     */
    public String shrunkRegion() {
        for (int i = 0; i < watchedFd.length; i++) {
            if (watchedFd[i] >= 0) {
                long fileSize;
                try {
                    fileSize = Libc.fileSize(watchedFd[i]);
                } catch (NativeCallException e) {
                    return "region " + i + ": cannot read its file size: " + e.getMessage();
                }
                if (fileSize < needed[i]) {
                    return String.format(Locale.ROOT, "the front end shrank the file of memory region %d to 0x%x "
                        + "bytes; its mapping needs 0x%x (the file is not sealed: --allow-unsealed-memory)",
                        i, fileSize, needed[i]);
                }
            }
        }
        return null;
    }

    /** @return the guest memory over the mapped regions (all {@code SHARED}) */
    public GuestMemory memory() {
        return memory;
    }

    /**
     * The same memory seen at the front end's user addresses: what an IOTLB {@code UPDATE}'s
     * {@code uaddr} points into. Identity over {@link #userMemory()}; allocation-free.
     *
     * @return the address space of user addresses
     */
    public AddressSpace userSpace() {
        return userSpace;
    }

    /** @return the regions placed at their user addresses instead of their guest-physical ones */
    public GuestMemory userMemory() {
        return userMemory;
    }

    /** @return the number of regions after joining contiguous ones (see {@link #userToGuestPhysical}) */
    public int regionCount() {
        return gpa.length;
    }

    /**
     * Translates a front-end user address range into a guest-physical address.
     *
     * @param userAddress the first byte, as the front end sees it
     * @param length the number of bytes, at least 1
     * @return the guest-physical address of the first byte, or -1 if the range is not inside one region
     */
    public long userToGuestPhysical(long userAddress, long length) {
        for (int i = 0; i < gpa.length; i++) {
            long off = userAddress - uaddr[i];
            // unsigned: off < size and length <= size - off means the range lies inside region i
            if (Long.compareUnsigned(off, size[i]) < 0 && length > 0 && Long.compareUnsigned(length, size[i] - off) <= 0) {
                return gpa[i] + off;
            }
        }
        return -1;
    }

    /** Unmaps every region; accesses afterwards fail with an exception. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            closeWatched(watchedFd);
            memory.close();
            userMemory.close();
            arena.close();
        }
    }

    @Override
    public String toString() {
        List<String> parts = new ArrayList<>();
        for (int i = 0; i < gpa.length; i++) {
            parts.add(String.format(Locale.ROOT, "[gpa 0x%x, size 0x%x, uaddr 0x%x]", gpa[i], size[i], uaddr[i]));
        }
        return "MemoryTable" + parts;
    }
}

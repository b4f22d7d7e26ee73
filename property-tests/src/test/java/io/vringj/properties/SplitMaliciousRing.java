package io.vringj.properties;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.ring.RingAddresses;
import io.vringj.testing.RawSplitRing;
import io.vringj.testing.SplitRingDump;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The guest memory a malicious driver writes into, and the values it writes, as plain data that
 * jqwik generates and shrinks.
 *
 * <pre>
 *   native allocation:  [guard 4K][ SHARED region 64K ][guard 4K]      [ SECURE region 16K ]
 *   guest-physical:            0x2000_0000                              0x4000_0000
 *   SHARED:  +0x0000 descriptor table   +0x1000 avail ring   +0x2000 used ring
 *            +0x3000 indirect tables (0x400 apart)   +0x4000.. buffers
 * </pre>
 *
 * <p>The device reaches memory through {@code AddressSpace.sharedOnly}: everything outside the
 * shared region, the secure region included, must fault. The guards are not guest memory at all;
 * they hold a pattern that must survive every run.
 */
final class SplitMaliciousRing {
    static final long SHARED_BASE = 0x2000_0000L;
    static final long SHARED_SIZE = 0x1_0000L;
    static final long SHARED_END = SHARED_BASE + SHARED_SIZE;
    static final long SECURE_BASE = 0x4000_0000L;
    static final long SECURE_SIZE = 0x4000L;
    static final long GUARD = 0x1000L;
    static final long DESC = SHARED_BASE;
    static final long AVAIL = SHARED_BASE + 0x1000;
    static final long USED = SHARED_BASE + 0x2000;
    static final long INDIRECT = SHARED_BASE + 0x3000;
    static final long INDIRECT_STRIDE = 0x400;
    static final int INDIRECT_TABLES = 4;
    static final long BUFFERS = SHARED_BASE + 0x4000;
    static final RingAddresses RINGS = new RingAddresses(DESC, AVAIL, USED);
    static final byte GUARD_PATTERN = (byte) 0xA5;
    static final byte SECURE_PATTERN = (byte) 0x5E;
    /** Largest queue the generators use (tables and avail rings are generated at this size). */
    static final int MAX_Q = 16;

    static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One descriptor as the driver wrote it, any value allowed. */
    record Desc(long addr, long len, int flags, int next) {
        void writeTo(MemorySegment table, long index) {
            RawSplitRing.writeDescriptor(table, index, addr, len, flags, next);
        }

        @Override
        public String toString() {
            return String.format("{addr=0x%x len=%d flags=%s next=%d}", addr, len, SplitRingDump.descriptorFlags(flags), next);
        }
    }

    /** Which driver-written area a field write lands in. */
    enum Area {
        DESCRIPTORS(DESC, 16L * MAX_Q),
        AVAIL_RING(AVAIL, 6 + 2L * MAX_Q),
        USED_RING(USED, 6 + 8L * MAX_Q),
        INDIRECT_AREA(INDIRECT, INDIRECT_STRIDE * SplitMaliciousRing.INDIRECT_TABLES);

        final long base;
        final long size;

        Area(long base, long size) {
            this.base = base;
            this.size = size;
        }
    }

    /** The driver stores {@code width} bytes of {@code value} at {@code offset} into an area. */
    record FieldWrite(Area area, int offset, int width, long value) {
        void apply(MemorySegment shared) {
            long at = area.base - SHARED_BASE + Math.floorMod(offset, area.size - width + 1);
            switch (width) {
                case 1 -> shared.set(ValueLayout.JAVA_BYTE, at, (byte) value);
                case 2 -> shared.set(LE_SHORT, at, (short) value);
                case 4 -> shared.set(LE_INT, at, (int) value);
                default -> shared.set(LE_LONG, at, value);
            }
        }

        @Override
        public String toString() {
            return String.format("write le%d 0x%x at %s+%d", width * 8, value, area,
                Math.floorMod(offset, area.size - width + 1));
        }
    }

    /** The memory every try shares: allocated once, cleared before each try. */
    static final class Memory {
        final MemorySegment all;
        final MemorySegment shared;
        final MemorySegment secure;
        final GuestMemory guest;

        Memory() {
            Arena arena = Arena.ofAuto();
            all = arena.allocate(GUARD + SHARED_SIZE + GUARD, 4096);
            all.fill(GUARD_PATTERN);
            shared = all.asSlice(GUARD, SHARED_SIZE);
            secure = arena.allocate(SECURE_SIZE, 4096);
            secure.fill(SECURE_PATTERN);
            guest = GuestMemory.builder()
                .region(SHARED_BASE, shared, RegionKind.SHARED)
                .region(SECURE_BASE, secure, RegionKind.SECURE)
                .build(arena);
        }

        void clearShared() {
            shared.fill((byte) 0);
        }

        /** @return a description of any byte outside the shared region that changed, or null */
        String damageOutsideShared() {
            for (long i = 0; i < GUARD; i++) {
                if (all.get(ValueLayout.JAVA_BYTE, i) != GUARD_PATTERN) {
                    return "guard byte " + (GUARD - i) + " below the shared region changed";
                }
                if (all.get(ValueLayout.JAVA_BYTE, GUARD + SHARED_SIZE + i) != GUARD_PATTERN) {
                    return "guard byte " + i + " above the shared region changed";
                }
            }
            for (long i = 0; i < SECURE_SIZE; i++) {
                if (secure.get(ValueLayout.JAVA_BYTE, i) != SECURE_PATTERN) {
                    return "secure region byte " + i + " changed";
                }
            }
            return null;
        }

        List<MemorySegment> allowed() {
            return List.of(shared);
        }
    }

    private SplitMaliciousRing() {
    }
}

package io.vringj.ring;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * What the split and packed layouts share, in one place: the 16-byte descriptor's common
 * fields and flags, the little-endian accessors every ring access goes through, and the check
 * of a ring area handed to a driver.
 *
 * <pre>
 * descriptor (16 bytes, both layouts):
 *   +0  le64 addr      +8  le32 len      +12 le16 (split: flags, packed: id)      +14 le16 (split: next, packed: flags)
 *   flags: NEXT 1, WRITE 2, INDIRECT 4      (packed adds AVAIL 1&lt;&lt;7, USED 1&lt;&lt;15)
 * </pre>
 *
 * <p>The accessors are {@code static final} with exact {@code long} offsets, so a silently
 * widened {@code int} is a link-time error rather than a slow path.
 */
final class RingFormat {
    /** Size of one descriptor, split [virtio 2.7.5] or packed [virtio 2.8]. */
    static final long DESC_SIZE = 16;
    static final long DESC_ADDR = 0;
    static final long DESC_LEN = 8;

    /** The chain continues (split: at {@code next}; packed: in the next descriptor). */
    static final int DESC_F_NEXT = 1;
    /** The buffer is device-writable. */
    static final int DESC_F_WRITE = 2;
    /** The buffer is an indirect descriptor table. */
    static final int DESC_F_INDIRECT = 4;

    static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);

    /*
     * Indirect tables sit wherever the driver put them: the spec sets no alignment for them
     * [virtio 2.7.5.3], so they are read and written through unaligned layouts (the same load and
     * store instructions on x86 and arm64). The rings themselves are checked to be aligned.
     */
    static final ValueLayout.OfShort DESC_LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt DESC_LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong DESC_LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** {@code le16} at (segment, offset): plain, opaque, acquire and release access for indices and flags. */
    static final VarHandle SHORT = LE_SHORT.varHandle().withInvokeExactBehavior();

    private RingFormat() {
    }

    /**
     * Checks a ring area given to a driver as the CPU's view of it: native, large enough and
     * aligned as its layout requires.
     *
     * @param what the area's name, for the message
     * @param area the memory
     * @param size the bytes the layout needs
     * @param align the alignment the layout needs
     * @return the first {@code size} bytes of {@code area}
     * @throws IllegalArgumentException naming the value and the rule
     */
    static MemorySegment checkArea(String what, MemorySegment area, long size, int align) {
        Objects.requireNonNull(area, what);
        if (!area.isNative()) {
            throw new IllegalArgumentException(what + " must be native memory");
        }
        if (area.byteSize() < size) {
            throw new IllegalArgumentException(what + " has " + area.byteSize() + " bytes; it needs " + size);
        }
        if (area.address() % align != 0) {
            throw new IllegalArgumentException(what + " at native address 0x" + Long.toHexString(area.address())
                + " is not aligned to " + align + " bytes");
        }
        return area.asSlice(0, size);
    }
}

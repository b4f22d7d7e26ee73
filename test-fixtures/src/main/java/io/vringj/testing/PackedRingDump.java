package io.vringj.testing;

import io.vringj.memory.GuestMemory;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.PackedRing;
import io.vringj.ring.RingAddresses;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Prints a packed ring in virtio terms [virtio 2.8]: every descriptor with {@code addr},
 * {@code len}, {@code id} and {@code flags} (the {@code AVAIL}/{@code USED} pair decoded into
 * "available in lap w" / "used in lap w"), the indirect tables the descriptors point to (when
 * they lie in guest memory), both event suppression structures ({@code flags} and
 * {@code desc_event} split into offset and wrap counter), and, when the queues are given, each
 * side's positions and wrap counters. Used in property failure messages, after shrinking.
 *
 * <pre>
 * packed ring Q=3 at RingAddresses[desc=0x10000000, driver=0x10001000, device=0x10002000]
 * descriptor ring:
 *   [0] addr=0x10010000 len=16 id=0 flags=NEXT|AVAIL (available in lap 1)   &lt;- device next avail
 *   [1] addr=0x10010100 len=64 id=0 flags=WRITE|AVAIL (available in lap 1)
 *   [2] addr=0x0 len=0 id=0 flags=0 (neither: never written, or used in lap 0)
 * driver event suppression: flags=DESC desc_event={off=0, wrap=1}
 * device event suppression: flags=ENABLE desc_event={off=0, wrap=0}
 * </pre>
 *
 * <p>Reading never fails: an area that is not in guest memory is printed as unreachable.
 */
public final class PackedRingDump {
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Bytes of one packed descriptor. */
    private static final long DESC_SIZE = PackedRing.DESC_SIZE;
    /** Indirect tables longer than this many entries are cut short in the dump. */
    private static final int MAX_INDIRECT_ENTRIES = 64;
    private static final int KNOWN_FLAGS = PackedRing.DESC_F_NEXT | PackedRing.DESC_F_WRITE | PackedRing.DESC_F_INDIRECT
        | PackedRing.DESC_F_AVAIL | PackedRing.DESC_F_USED;

    private PackedRingDump() {
    }

    /**
     * Dumps the packed ring of {@code queueSize} descriptors at {@code addresses} in {@code memory}.
     *
     * @param memory the guest memory holding the ring
     * @param addresses guest-physical addresses of the descriptor ring and the two event
     *     suppression structures
     * @param queueSize Q
     * @return a multi-line description
     */
    public static String dump(GuestMemory memory, RingAddresses addresses, int queueSize) {
        return dump(memory, addresses, queueSize, null, null);
    }

    /**
     * As {@link #dump(GuestMemory, RingAddresses, int)}, followed by each side's own view: its
     * positions and wrap counters, and the device's next position marked in the ring.
     *
     * @param memory the guest memory holding the ring
     * @param addresses guest-physical addresses of the three areas
     * @param queueSize Q
     * @param driver the driver side, or {@code null}
     * @param device the device side, or {@code null}
     * @return a multi-line description
     */
    public static String dump(GuestMemory memory, RingAddresses addresses, int queueSize, DriverQueue driver,
                              DeviceQueue device) {
        StringBuilder sb = new StringBuilder();
        sb.append("packed ring Q=").append(queueSize).append(" at ").append(addresses).append('\n');
        int deviceNext = device == null ? -1 : device.lastAvailIdx() & 0x7FFF;
        MemorySegment ring = slice(memory, addresses.descriptorArea(), PackedRing.descriptorRingSize(queueSize));
        sb.append("descriptor ring:\n");
        if (ring == null) {
            sb.append("  (not in guest memory)\n");
        } else {
            for (int i = 0; i < queueSize; i++) {
                appendDescriptor(sb, "  ", ring, i, true);
                if (i == deviceNext) {
                    sb.append("   <- device next avail");
                }
                sb.append('\n');
                int flags = Short.toUnsignedInt(ring.get(LE_SHORT, (long) i * DESC_SIZE + 14));
                if ((flags & PackedRing.DESC_F_INDIRECT) != 0) {
                    appendIndirect(sb, memory, ring, i);
                }
            }
        }
        appendEvent(sb, "driver", memory, addresses.driverArea());
        appendEvent(sb, "device", memory, addresses.deviceArea());
        if (driver != null) {
            sb.append("driver: ").append(driver).append('\n');
        }
        if (device != null) {
            int last = device.lastAvailIdx();
            sb.append("device: ").append(device).append(" (last avail 0x").append(Integer.toHexString(last))
                .append(" = position ").append(last & 0x7FFF).append(", wrap ").append(last >>> 15).append(")\n");
        }
        return sb.toString();
    }

    private static void appendEvent(StringBuilder sb, String side, GuestMemory memory, long address) {
        sb.append(side).append(" event suppression: ");
        MemorySegment event = slice(memory, address, PackedRing.EVENT_SIZE);
        if (event == null) {
            sb.append("(not in guest memory)\n");
            return;
        }
        int offWrap = Short.toUnsignedInt(event.get(LE_SHORT, 0));
        int flags = Short.toUnsignedInt(event.get(LE_SHORT, 2));
        sb.append("flags=").append(eventFlags(flags)).append(" desc_event={off=").append(offWrap & 0x7FFF)
            .append(", wrap=").append(offWrap >>> 15).append("}\n");
    }

    /**
     * @param flags an event suppression structure's {@code flags}
     * @return {@code ENABLE}, {@code DISABLE}, {@code DESC}, or the reserved value in hex
     */
    public static String eventFlags(int flags) {
        return switch (flags) {
            case PackedRing.EVENT_FLAG_ENABLE -> "ENABLE";
            case PackedRing.EVENT_FLAG_DISABLE -> "DISABLE";
            case PackedRing.EVENT_FLAG_DESC -> "DESC";
            default -> "0x" + Integer.toHexString(flags) + "(reserved)";
        };
    }

    private static void appendIndirect(StringBuilder sb, GuestMemory memory, MemorySegment ring, int i) {
        long off = (long) i * DESC_SIZE;
        long addr = ring.get(LE_LONG, off);
        long len = Integer.toUnsignedLong(ring.get(LE_INT, off + 8));
        long entries = len / DESC_SIZE;
        if (len == 0) {
            sb.append("    indirect table: (length 0)\n");
            return;
        }
        MemorySegment table = slice(memory, addr, len);
        if (table == null) {
            sb.append("    indirect table: (not in guest memory)\n");
            return;
        }
        sb.append("    indirect table, ").append(entries).append(" entries")
            .append(len % DESC_SIZE != 0 ? " (length not a multiple of 16)" : "").append(":\n");
        for (int k = 0; k < Math.min(entries, MAX_INDIRECT_ENTRIES); k++) {
            appendDescriptor(sb, "    ", table, k, false);
            sb.append('\n');
        }
        if (entries > MAX_INDIRECT_ENTRIES) {
            sb.append("    ... ").append(entries - MAX_INDIRECT_ENTRIES).append(" more\n");
        }
    }

    private static void appendDescriptor(StringBuilder sb, String indent, MemorySegment table, int i, boolean inRing) {
        long off = (long) i * DESC_SIZE;
        long addr = table.get(LE_LONG, off);
        long len = Integer.toUnsignedLong(table.get(LE_INT, off + 8));
        int id = Short.toUnsignedInt(table.get(LE_SHORT, off + 12));
        int flags = Short.toUnsignedInt(table.get(LE_SHORT, off + 14));
        sb.append(indent).append('[').append(i).append("] addr=0x").append(Long.toHexString(addr))
            .append(" len=").append(len).append(" id=").append(id).append(" flags=").append(descriptorFlags(flags));
        if (inRing) {
            sb.append(' ').append(lapState(flags));
        }
    }

    /**
     * @param flags a packed descriptor's {@code flags}
     * @return the flags as names joined by {@code |}, unknown bits in hex, {@code 0} when none
     */
    public static String descriptorFlags(int flags) {
        StringBuilder sb = new StringBuilder();
        appendFlag(sb, flags, PackedRing.DESC_F_NEXT, "NEXT");
        appendFlag(sb, flags, PackedRing.DESC_F_WRITE, "WRITE");
        appendFlag(sb, flags, PackedRing.DESC_F_INDIRECT, "INDIRECT");
        appendFlag(sb, flags, PackedRing.DESC_F_AVAIL, "AVAIL");
        appendFlag(sb, flags, PackedRing.DESC_F_USED, "USED");
        int unknown = flags & ~KNOWN_FLAGS;
        if (unknown != 0) {
            sb.append(sb.isEmpty() ? "" : "|").append("0x").append(Integer.toHexString(unknown));
        }
        return sb.isEmpty() ? "0" : sb.toString();
    }

    /**
     * @param flags a packed descriptor's {@code flags}
     * @return what its AVAIL/USED pair means: available in a lap (the bits differ, AVAIL is the
     *     driver's wrap counter) or used in a lap (both equal the device's wrap counter)
     */
    public static String lapState(int flags) {
        boolean avail = (flags & PackedRing.DESC_F_AVAIL) != 0;
        boolean used = (flags & PackedRing.DESC_F_USED) != 0;
        if (avail != used) {
            return "(available in lap " + (avail ? 1 : 0) + ")";
        }
        return avail ? "(used in lap 1)" : "(used in lap 0, or never written)";
    }

    private static void appendFlag(StringBuilder sb, int flags, int bit, String name) {
        if ((flags & bit) != 0) {
            sb.append(sb.isEmpty() ? "" : "|").append(name);
        }
    }

    private static MemorySegment slice(GuestMemory memory, long address, long length) {
        int region = memory.regionIndexOf(address, length);
        if (region < 0) {
            return null;
        }
        return memory.region(region).segment().asSlice(address - memory.region(region).guestPhysicalAddress(), length);
    }
}

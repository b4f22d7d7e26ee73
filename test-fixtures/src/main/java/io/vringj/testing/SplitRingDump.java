package io.vringj.testing;

import io.vringj.memory.GuestMemory;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.SplitRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Prints a split ring in virtio terms [virtio 2.7]: every descriptor with {@code addr},
 * {@code len}, {@code flags} and {@code next}; the indirect tables the descriptors point to (when
 * they lie in guest memory); the avail and used rings with their flags, indices, entries and
 * event indices. Used in property failure messages, after shrinking, so a failing case reads
 * like a ring a virtio developer would draw.
 *
 * <pre>
 * split ring Q=2 at RingAddresses[desc=0x10000000, driver=0x10001000, device=0x10002000]
 * descriptor table:
 *   [0] addr=0x10010000 len=16 flags=NEXT next=1
 *   [1] addr=0x10010100 len=64 flags=WRITE next=0
 * avail: flags=0x0 idx=65535 ring=[0, 0] used_event=65534
 * used:  flags=0x1(NO_NOTIFY) idx=65534 ring=[{id=0 len=0}, {id=0 len=0}] avail_event=65535
 * </pre>
 *
 * <p>Reading never fails: an area that is not in guest memory is printed as unreachable.
 */
public final class SplitRingDump {
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Indirect tables longer than this many entries are cut short in the dump. */
    private static final int MAX_INDIRECT_ENTRIES = 64;

    private SplitRingDump() {
    }

    /**
     * Dumps the split ring of {@code queueSize} entries at {@code addresses} in {@code memory}.
     *
     * @param memory the guest memory holding the ring
     * @param addresses guest-physical addresses of the three areas
     * @param queueSize Q
     * @return a multi-line description
     */
    public static String dump(GuestMemory memory, RingAddresses addresses, int queueSize) {
        StringBuilder sb = new StringBuilder();
        sb.append("split ring Q=").append(queueSize).append(" at ").append(addresses).append('\n');
        MemorySegment desc = slice(memory, addresses.descriptorArea(), SplitRing.descriptorTableSize(queueSize));
        sb.append("descriptor table:\n");
        if (desc == null) {
            sb.append("  (not in guest memory)\n");
        } else {
            for (int i = 0; i < queueSize; i++) {
                appendDescriptor(sb, "  ", desc, i);
                int flags = Short.toUnsignedInt(desc.get(LE_SHORT, i * SplitRing.DESC_SIZE + 12));
                if ((flags & SplitRing.DESC_F_INDIRECT) != 0) {
                    appendIndirect(sb, memory, desc, i);
                }
            }
        }
        MemorySegment avail = slice(memory, addresses.driverArea(), SplitRing.availRingSize(queueSize));
        sb.append("avail: ");
        if (avail == null) {
            sb.append("(not in guest memory)\n");
        } else {
            int flags = Short.toUnsignedInt(avail.get(LE_SHORT, 0));
            sb.append("flags=0x").append(Integer.toHexString(flags))
                .append((flags & SplitRing.AVAIL_F_NO_INTERRUPT) != 0 ? "(NO_INTERRUPT)" : "")
                .append(" idx=").append(Short.toUnsignedInt(avail.get(LE_SHORT, 2))).append(" ring=[");
            for (int i = 0; i < queueSize; i++) {
                sb.append(i == 0 ? "" : ", ").append(Short.toUnsignedInt(avail.get(LE_SHORT, 4 + 2L * i)));
            }
            sb.append("] used_event=").append(Short.toUnsignedInt(avail.get(LE_SHORT, 4 + 2L * queueSize))).append('\n');
        }
        MemorySegment used = slice(memory, addresses.deviceArea(), SplitRing.usedRingSize(queueSize));
        sb.append("used:  ");
        if (used == null) {
            sb.append("(not in guest memory)\n");
        } else {
            int flags = Short.toUnsignedInt(used.get(LE_SHORT, 0));
            sb.append("flags=0x").append(Integer.toHexString(flags))
                .append((flags & SplitRing.USED_F_NO_NOTIFY) != 0 ? "(NO_NOTIFY)" : "")
                .append(" idx=").append(Short.toUnsignedInt(used.get(LE_SHORT, 2))).append(" ring=[");
            for (int i = 0; i < queueSize; i++) {
                long elem = 4 + 8L * i;
                sb.append(i == 0 ? "" : ", ").append("{id=").append(Integer.toUnsignedLong(used.get(LE_INT, elem)))
                    .append(" len=").append(Integer.toUnsignedLong(used.get(LE_INT, elem + 4))).append('}');
            }
            sb.append("] avail_event=").append(Short.toUnsignedInt(used.get(LE_SHORT, 4 + 8L * queueSize))).append('\n');
        }
        return sb.toString();
    }

    private static void appendIndirect(StringBuilder sb, GuestMemory memory, MemorySegment desc, int i) {
        long off = i * SplitRing.DESC_SIZE;
        long addr = desc.get(LE_LONG, off);
        long len = Integer.toUnsignedLong(desc.get(LE_INT, off + 8));
        long entries = len / SplitRing.DESC_SIZE;
        MemorySegment table = len == 0 ? null : slice(memory, addr, len);
        if (table == null) {
            sb.append("    indirect table: (not in guest memory)\n");
            return;
        }
        sb.append("    indirect table, ").append(entries).append(" entries")
            .append(len % SplitRing.DESC_SIZE != 0 ? " (length not a multiple of 16)" : "").append(":\n");
        for (int k = 0; k < Math.min(entries, MAX_INDIRECT_ENTRIES); k++) {
            appendDescriptor(sb, "    ", table, k);
        }
        if (entries > MAX_INDIRECT_ENTRIES) {
            sb.append("    ... ").append(entries - MAX_INDIRECT_ENTRIES).append(" more\n");
        }
    }

    private static void appendDescriptor(StringBuilder sb, String indent, MemorySegment table, int i) {
        long off = i * SplitRing.DESC_SIZE;
        long addr = table.get(LE_LONG, off);
        long len = Integer.toUnsignedLong(table.get(LE_INT, off + 8));
        int flags = Short.toUnsignedInt(table.get(LE_SHORT, off + 12));
        int next = Short.toUnsignedInt(table.get(LE_SHORT, off + 14));
        sb.append(indent).append('[').append(i).append("] addr=0x").append(Long.toHexString(addr))
            .append(" len=").append(len).append(" flags=").append(descriptorFlags(flags))
            .append(" next=").append(next).append('\n');
    }

    /**
     * @param flags a descriptor's {@code flags}
     * @return the flags as names joined by {@code |}, unknown bits in hex, {@code 0} when none
     */
    public static String descriptorFlags(int flags) {
        StringBuilder sb = new StringBuilder();
        if ((flags & SplitRing.DESC_F_NEXT) != 0) {
            sb.append("NEXT");
        }
        if ((flags & SplitRing.DESC_F_WRITE) != 0) {
            sb.append(sb.isEmpty() ? "" : "|").append("WRITE");
        }
        if ((flags & SplitRing.DESC_F_INDIRECT) != 0) {
            sb.append(sb.isEmpty() ? "" : "|").append("INDIRECT");
        }
        int unknown = flags & ~(SplitRing.DESC_F_NEXT | SplitRing.DESC_F_WRITE | SplitRing.DESC_F_INDIRECT);
        if (unknown != 0) {
            sb.append(sb.isEmpty() ? "" : "|").append("0x").append(Integer.toHexString(unknown));
        }
        return sb.isEmpty() ? "0" : sb.toString();
    }

    private static MemorySegment slice(GuestMemory memory, long address, long length) {
        int region = memory.regionIndexOf(address, length);
        if (region < 0) {
            return null;
        }
        return memory.region(region).segment().asSlice(address - memory.region(region).guestPhysicalAddress(), length);
    }
}

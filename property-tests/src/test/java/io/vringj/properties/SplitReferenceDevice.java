package io.vringj.properties;

import static io.vringj.properties.SplitMaliciousRing.LE_INT;
import static io.vringj.properties.SplitMaliciousRing.LE_LONG;
import static io.vringj.properties.SplitMaliciousRing.LE_SHORT;

import io.vringj.ring.DeviceQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.SplitRing;
import java.lang.foreign.MemorySegment;
import java.util.BitSet;

/**
 * A deliberately plain re-statement of the device-side rules of a split ring [virtio 2.7], used
 * as the oracle for the malicious-driver property: for the ring as it is in memory now, is the
 * next pop "nothing", a valid chain (with these lengths), or a broken rule? It reads memory the
 * way the device may — only inside the shared region — and keeps the device's indices.
 *
 * <p>It does not say which rule: when several are broken at once the device may report any of
 * them. It does say that one is, so a device that lets a bad chain through fails the property.
 */
final class SplitReferenceDevice {
    /** Outcome of a pop as the reference sees it. */
    enum Outcome { NONE, CHAIN, BROKEN }

    private final MemorySegment shared;
    private final int queueSize;
    private final boolean indirectNegotiated;
    private final RingAddresses rings;
    final BitSet inFlight = new BitSet();
    int lastAvail;
    int cachedAvail;
    /** Set by a CHAIN outcome. */
    int head;
    long readable;
    long writable;
    /** How many descriptors the last walk read (the bound for the device's translations). */
    int walked;
    /** Entries of the indirect table the last walk entered, 0 if none. */
    long tableEntries;
    String rule;

    SplitReferenceDevice(MemorySegment shared, int queueSize, boolean indirectNegotiated, RingAddresses rings,
                    int lastAvailIdx) {
        this.shared = shared;
        this.queueSize = queueSize;
        this.indirectNegotiated = indirectNegotiated;
        this.rings = rings;
        this.lastAvail = this.cachedAvail = lastAvailIdx;
    }

    /** @return whether [addr, addr+len) lies wholly in the shared region */
    static boolean reachable(long addr, long len) {
        long offset = addr - SplitMaliciousRing.SHARED_BASE;
        return len >= 1 && Long.compareUnsigned(offset, SplitMaliciousRing.SHARED_SIZE) < 0
            && Long.compareUnsigned(len, SplitMaliciousRing.SHARED_SIZE - offset) <= 0;
    }

    private long at(long busAddress) {
        return busAddress - SplitMaliciousRing.SHARED_BASE;
    }

    private int availIdx() {
        return Short.toUnsignedInt(shared.get(LE_SHORT, at(rings.driverArea()) + 2));
    }

    /** The device rereads avail idx (in pop when its cached view is empty, and in enableNotifications). */
    Outcome rereadAvailIdx() {
        int idx = availIdx();
        if (((idx - lastAvail) & 0xFFFF) > queueSize) {
            rule = "avail idx " + idx + " is more than Q=" + queueSize + " ahead of " + lastAvail;
            return Outcome.BROKEN;
        }
        cachedAvail = idx;
        return idx == lastAvail ? Outcome.NONE : Outcome.CHAIN;
    }

    Outcome pop() {
        walked = 0;
        tableEntries = 0;
        if (lastAvail == cachedAvail) {
            Outcome o = rereadAvailIdx();
            if (o != Outcome.CHAIN) {
                return o;
            }
        }
        int h = Short.toUnsignedInt(shared.get(LE_SHORT, at(rings.driverArea()) + 4 + 2L * (lastAvail & (queueSize - 1))));
        if (h >= queueSize) {
            rule = "head " + h + " >= Q";
            return Outcome.BROKEN;
        }
        if (inFlight.get(h)) {
            rule = "head " + h + " already in flight";
            return Outcome.BROKEN;
        }
        rule = walk(h);
        if (rule != null) {
            return Outcome.BROKEN;
        }
        head = h;
        inFlight.set(h);
        lastAvail = (lastAvail + 1) & 0xFFFF;
        return Outcome.CHAIN;
    }

    private String walk(int h) {
        long table = rings.descriptorArea();
        long tableSize = queueSize;
        boolean inIndirect = false;
        boolean sawWritable = false;
        int index = h;
        long visited = 0;
        readable = 0;
        writable = 0;
        while (true) {
            if (++visited > tableSize) {
                return "loop: more than " + tableSize + " descriptors";
            }
            walked++;
            long d = at(table) + index * SplitRing.DESC_SIZE;
            long addr = shared.get(LE_LONG, d);
            long len = Integer.toUnsignedLong(shared.get(LE_INT, d + 8));
            int flags = Short.toUnsignedInt(shared.get(LE_SHORT, d + 12));
            int next = Short.toUnsignedInt(shared.get(LE_SHORT, d + 14));
            if ((flags & SplitRing.DESC_F_INDIRECT) != 0) {
                if (!indirectNegotiated) {
                    return "INDIRECT not negotiated";
                }
                if (inIndirect) {
                    return "nested INDIRECT";
                }
                if ((flags & SplitRing.DESC_F_NEXT) != 0) {
                    return "INDIRECT with NEXT";
                }
                // generated chains stay far below DeviceQueue.MAX_CHAIN_PIECES, so that limit is not modelled
                if (len == 0 || len % 16 != 0 || len / 16 > DeviceQueue.MAX_INDIRECT_ENTRIES) {
                    return "indirect table length " + len;
                }
                if (!reachable(addr, len)) {
                    return "indirect table unreachable";
                }
                table = addr;
                tableSize = len / 16;
                tableEntries = tableSize;
                inIndirect = true;
                index = 0;
                visited = 0;
                continue;
            }
            if (len == 0) {
                return "zero length";
            }
            if (readable + writable + len > 0xFFFF_FFFFL) {
                return "chain length 2^32 or more";
            }
            if ((flags & SplitRing.DESC_F_WRITE) != 0) {
                sawWritable = true;
                writable += len;
            } else {
                if (sawWritable) {
                    return "readable after writable";
                }
                readable += len;
            }
            if (!reachable(addr, len)) {
                return "buffer unreachable";
            }
            if ((flags & SplitRing.DESC_F_NEXT) == 0) {
                return null;
            }
            if (next >= tableSize) {
                return "next " + next + " >= table size " + tableSize;
            }
            index = next;
        }
    }
}

package io.vringj.properties;

import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.PackedRing;
import io.vringj.ring.RingError;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A reference packed-ring device, written from the rules in [virtio 2.8] and the project's
 * validation list, in the plainest way: it reads the ring straight from guest memory, walks the
 * chain at its position and says what the device under test must answer — nothing available,
 * a chain (buffer id, readable and writable bytes, descriptors walked) or the first rule the
 * chain breaks, checked in walk order (per descriptor: INDIRECT rules, then zero length, total
 * length, readable after writable, reachability: an IOTLB miss, else a fault). It never writes
 * memory.
 */
final class PackedReferenceDevice {
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long MAX_TOTAL = 0xFFFF_FFFFL;

    /** What a pop must answer. */
    sealed interface Outcome {
    }

    /** Nothing is available at the device's position. */
    record Nothing() implements Outcome {
    }

    /** A valid chain. */
    record Chain(int id, long readable, long writable, int descriptors) implements Outcome {
    }

    /** The chain breaks {@code error}. */
    record Broken(RingError error) implements Outcome {
    }

    /** A translation missed: nothing is consumed, the queue is not broken, a retry may succeed. */
    record Miss() implements Outcome {
    }

    private enum Reach { OK, FAULT, MISS }

    private final GuestMemory memory;
    private final boolean sharedOnly;
    private final MissingPagesAddressSpace iotlb;
    private final int queueSize;
    private final boolean eventIdx;
    private final boolean indirect;
    private final long ringAddress;
    private final long driverEventAddress;

    private int nextAvail;
    private boolean availWrap;
    private int nextUsed;
    private boolean usedWrap;
    private final long[] inFlightWritable;
    private final int[] ringDescriptors;
    private final boolean[] inFlight;
    private int usedMoved;
    private boolean usedPending;
    RingError broken;
    /** Entries of the indirect table the last pop entered, 0 if none. */
    long tableEntries;

    /**
     * @param iotlb says which ranges miss (a miss is reported before a fault, as the device's
     *     address space does); {@code null} when none do
     */
    PackedReferenceDevice(GuestMemory memory, boolean sharedOnly, MissingPagesAddressSpace iotlb, int queueSize,
                          long features, long ringAddress, long driverEventAddress, int start) {
        this.memory = memory;
        this.sharedOnly = sharedOnly;
        this.iotlb = iotlb;
        this.queueSize = queueSize;
        this.eventIdx = VirtioFeatures.has(features, VirtioFeatures.EVENT_IDX);
        this.indirect = VirtioFeatures.has(features, VirtioFeatures.INDIRECT_DESC);
        this.ringAddress = ringAddress;
        this.driverEventAddress = driverEventAddress;
        this.nextAvail = this.nextUsed = start & 0x7FFF;
        this.availWrap = this.usedWrap = (start & 0x8000) != 0;
        this.inFlightWritable = new long[queueSize];
        this.ringDescriptors = new int[queueSize];
        this.inFlight = new boolean[queueSize];
    }

    /** @return the position (bits 0-14) and wrap counter (bit 15) of the next descriptor to read */
    int lastAvailIdx() {
        return nextAvail | (availWrap ? 0x8000 : 0);
    }

    boolean isInFlight(int id) {
        return inFlight[id];
    }

    long writable(int id) {
        return inFlightWritable[id];
    }

    /** Whether the device may reach {@code [addr, addr + len)}: one region, shared unless identity. */
    boolean reachable(long addr, long len) {
        int region = memory.regionIndexOf(addr, len);
        return region >= 0 && (!sharedOnly || memory.region(region).kind() == RegionKind.SHARED);
    }

    private Reach reach(long addr, long len) {
        if (iotlb != null && iotlb.misses(addr, len)) {
            return Reach.MISS;
        }
        return reachable(addr, len) ? Reach.OK : Reach.FAULT;
    }

    private MemorySegment ring() {
        return memory.slice(ringAddress, PackedRing.descriptorRingSize(queueSize));
    }

    private static boolean isAvailable(int flags, boolean wrap) {
        return ((flags & PackedRing.DESC_F_AVAIL) != 0) == wrap && ((flags & PackedRing.DESC_F_USED) != 0) != wrap;
    }

    /** @return whether the descriptor at the device's position is available for its lap */
    boolean nextAvailable() {
        return isAvailable(Short.toUnsignedInt(ring().get(LE_SHORT, 16L * nextAvail + 14)), availWrap);
    }

    /** Pops: walks the chain at the position, as the device must. */
    Outcome pop() {
        if (broken != null) {
            return new Broken(broken);
        }
        tableEntries = 0;
        if (!nextAvailable()) {
            return new Nothing();
        }
        MemorySegment ring = ring();
        int position = nextAvail;
        boolean wrap = availWrap;
        long readable = 0;
        long writable = 0;
        int descriptors = 0;
        int walked = 0;
        boolean sawWritable = false;
        int id;
        while (true) {
            walked++;
            if (walked > queueSize) {
                return breaks(RingError.CHAIN_LOOP);
            }
            long off = 16L * position;
            long addr = ring.get(LE_LONG, off);
            long len = Integer.toUnsignedLong(ring.get(LE_INT, off + 8));
            int descId = Short.toUnsignedInt(ring.get(LE_SHORT, off + 12));
            int flags = Short.toUnsignedInt(ring.get(LE_SHORT, off + 14));
            position++;
            if (position == queueSize) {
                position = 0;
                wrap = !wrap;
            }
            if ((flags & PackedRing.DESC_F_INDIRECT) != 0) {
                if (!indirect) {
                    return breaks(RingError.INDIRECT_NOT_NEGOTIATED);
                }
                if ((flags & PackedRing.DESC_F_NEXT) != 0) {
                    return breaks(RingError.INDIRECT_WITH_NEXT);
                }
                if (len == 0 || len % 16 != 0) {
                    return breaks(RingError.BAD_INDIRECT_LENGTH);
                }
                // generated chains stay far below DeviceQueue.MAX_CHAIN_PIECES, so that limit is not modelled
                if (len / 16 > DeviceQueue.MAX_INDIRECT_ENTRIES) {
                    return breaks(RingError.INDIRECT_TOO_LARGE);
                }
                tableEntries = len / 16;
                Reach table = reach(addr, len);
                if (table == Reach.MISS) {
                    return new Miss();
                }
                if (table == Reach.FAULT) {
                    return breaks(RingError.ADDRESS_FAULT);
                }
                MemorySegment entries = memory.slice(addr, len);
                for (long e = 0; e < len / 16; e++) {
                    long eAddr = entries.get(LE_LONG, 16 * e);
                    long eLen = Integer.toUnsignedLong(entries.get(LE_INT, 16 * e + 8));
                    int eFlags = Short.toUnsignedInt(entries.get(LE_SHORT, 16 * e + 14));
                    if ((eFlags & PackedRing.DESC_F_INDIRECT) != 0) {
                        return breaks(RingError.NESTED_INDIRECT);
                    }
                    // only WRITE means anything inside a packed table; the other bits are ignored [virtio 2.8.19]
                    boolean write = (eFlags & PackedRing.DESC_F_WRITE) != 0;
                    RingError bad = checkBuffer(eAddr, eLen, write, sawWritable, readable + writable);
                    if (bad == RingError.TRANSLATION_MISS) {
                        return new Miss();
                    }
                    if (bad != null) {
                        return breaks(bad);
                    }
                    sawWritable |= write;
                    if (write) {
                        writable += eLen;
                    } else {
                        readable += eLen;
                    }
                    descriptors++;
                }
                descriptors++;
                id = descId;
                break;
            }
            boolean write = (flags & PackedRing.DESC_F_WRITE) != 0;
            RingError bad = checkBuffer(addr, len, write, sawWritable, readable + writable);
            if (bad == RingError.TRANSLATION_MISS) {
                return new Miss();
            }
            if (bad != null) {
                return breaks(bad);
            }
            sawWritable |= write;
            if (write) {
                writable += len;
            } else {
                readable += len;
            }
            descriptors++;
            if ((flags & PackedRing.DESC_F_NEXT) == 0) {
                id = descId;
                break;
            }
        }
        if (id >= queueSize) {
            return breaks(RingError.HEAD_OUT_OF_RANGE);
        }
        if (inFlight[id]) {
            return breaks(RingError.HEAD_IN_FLIGHT);
        }
        inFlight[id] = true;
        inFlightWritable[id] = writable;
        ringDescriptors[id] = walked;
        nextAvail = position;
        availWrap = wrap;
        return new Chain(id, readable, writable, descriptors);
    }

    private RingError checkBuffer(long addr, long len, boolean write, boolean sawWritable, long totalSoFar) {
        if (len == 0) {
            return RingError.ZERO_LENGTH;
        }
        if (totalSoFar + len > MAX_TOTAL) {
            return RingError.CHAIN_TOO_LONG;
        }
        if (!write && sawWritable) {
            return RingError.READABLE_AFTER_WRITABLE;
        }
        return switch (reach(addr, len)) {
            case OK -> null;
            case FAULT -> RingError.ADDRESS_FAULT;
            case MISS -> RingError.TRANSLATION_MISS;
        };
    }

    private Outcome breaks(RingError error) {
        broken = error;
        return new Broken(error);
    }

    /** The device returns chain {@code id}: its used descriptor takes the next used position. */
    void addUsed(int id) {
        inFlight[id] = false;
        int n = ringDescriptors[id];
        usedMoved += n;
        usedPending = true;
        nextUsed += n;
        if (nextUsed >= queueSize) {
            nextUsed -= queueSize;
            usedWrap = !usedWrap;
        }
    }

    /**
     * Publishes the used descriptors added since the last publication.
     *
     * @return whether the driver must be interrupted: its event suppression structure as it is in
     *     memory now, by Linux's packed rule
     */
    boolean publishUsed() {
        if (broken != null || !usedPending) {
            return false;
        }
        usedPending = false;
        int moved = usedMoved;
        usedMoved = 0;
        MemorySegment event = memory.slice(driverEventAddress, PackedRing.EVENT_SIZE);
        int offWrap = Short.toUnsignedInt(event.get(LE_SHORT, 0));
        int flags = Short.toUnsignedInt(event.get(LE_SHORT, 2));
        if (!eventIdx && flags == PackedRing.EVENT_FLAG_DESC) {
            flags = PackedRing.EVENT_FLAG_ENABLE;
        }
        if (flags != PackedRing.EVENT_FLAG_DESC) {
            return flags != PackedRing.EVENT_FLAG_DISABLE;
        }
        int eventPosition = offWrap & 0x7FFF;
        if (((offWrap & 0x8000) != 0) != usedWrap) {
            eventPosition -= queueSize;
        }
        // vring_need_event(event, new, old) in 16-bit arithmetic
        return ((nextUsed - eventPosition - 1) & 0xFFFF) < (moved & 0xFFFF);
    }

    @Override
    public String toString() {
        return "reference[nextAvail=" + nextAvail + "/" + (availWrap ? 1 : 0) + ", nextUsed=" + nextUsed + "/"
            + (usedWrap ? 1 : 0) + (broken != null ? ", broken: " + broken : "") + "]";
    }
}

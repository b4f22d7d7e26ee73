package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.TranslationException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The device IOTLB against a list-of-entries model under random updates, invalidations and
 * lookups: an UPDATE keeps the parts of older entries it does not cover (vhost's interval tree),
 * an INVALIDATE removes every entry it touches whole.
 */
class DeviceIotlbModelTest {
    private static final long GPA = 0x4000_0000L;

    private record Entry(long start, long size, long uaddr, Permission perm) {
        boolean overlaps(long s, long n) {
            return s < start + size && start < s + n;
        }
    }

    @Test
    void behavesLikeAListOfNonOverlappingEntries() throws Exception {
        try (GuestMemory memory = GuestMemory.ofShared(GPA, 1 << 20)) {
            DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
            long base = memory.slice(GPA, 1).address();
            List<Entry> model = new ArrayList<>();
            SplittableRandom rnd = new SplittableRandom(7);
            Permission[] perms = {Permission.RO, Permission.WO, Permission.RW};
            for (int step = 0; step < 20_000; step++) {
                long start = rnd.nextLong(0, 256) * 0x100;
                long size = rnd.nextLong(1, 16) * 0x100;
                int op = rnd.nextInt(10);
                if (op < 4) {
                    Permission perm = perms[rnd.nextInt(3)];
                    long uaddr = GPA + rnd.nextLong(0, 512) * 0x100;
                    iotlb.update(start, size, uaddr, perm);
                    trim(model, start, size);
                    model.add(new Entry(start, size, uaddr, perm));
                } else if (op < 5) {
                    iotlb.invalidate(start, size);
                    model.removeIf(e -> e.overlaps(start, size));
                } else {
                    long addr = start + rnd.nextLong(0, 0x100);
                    long len = rnd.nextLong(1, 0x400);
                    Access access = rnd.nextBoolean() ? Access.READ : Access.WRITE;
                    String expected = expect(model, addr, len, access);
                    String actual;
                    try {
                        StringBuilder sb = new StringBuilder();
                        iotlb.translate(addr, len, access, (seg, off, n) -> sb.append(Long.toHexString(seg.address() + off - base))
                            .append('+').append(n).append(' '));
                        actual = sb.toString().trim();
                    } catch (TranslationException e) {
                        actual = e.kind() + "@" + Long.toHexString(e.busAddress());
                    }
                    assertEquals(expected, actual, "step " + step + ": " + access + " of [0x" + Long.toHexString(addr)
                        + ", +0x" + Long.toHexString(len) + ") with entries " + model);
                }
                assertEquals(model.size(), iotlb.size());
            }
        }
    }

    /** Cuts [start, start + size) out of the model's entries, keeping what sticks out on either side. */
    private static void trim(List<Entry> model, long start, long size) {
        List<Entry> kept = new ArrayList<>();
        for (Entry e : model) {
            if (!e.overlaps(start, size)) {
                kept.add(e);
                continue;
            }
            if (e.start() < start) {
                kept.add(new Entry(e.start(), start - e.start(), e.uaddr(), e.perm()));
            }
            long end = start + size;
            if (e.start() + e.size() > end) {
                kept.add(new Entry(end, e.start() + e.size() - end, e.uaddr() + (end - e.start()), e.perm()));
            }
        }
        model.clear();
        model.addAll(kept);
    }

    private static String expect(List<Entry> model, long addr, long len, Access access) {
        StringBuilder sb = new StringBuilder();
        long a = addr;
        long left = len;
        while (left > 0) {
            Entry hit = null;
            for (Entry e : model) {
                if (a >= e.start() && a < e.start() + e.size()) {
                    hit = e;
                }
            }
            if (hit == null) {
                return "MISS@" + Long.toHexString(a);
            }
            if (!hit.perm().allows(access)) {
                return "FAULT@" + Long.toHexString(a);
            }
            long n = Math.min(left, hit.start() + hit.size() - a);
            sb.append(Long.toHexString(hit.uaddr() + (a - hit.start()) - GPA)).append('+').append(n).append(' ');
            a += n;
            left -= n;
        }
        return sb.toString().trim();
    }
}

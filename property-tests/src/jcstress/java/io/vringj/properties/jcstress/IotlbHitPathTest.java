package io.vringj.properties.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.Permission;
import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.J_Result;

/**
 * The device IOTLB's hit path against an UPDATE that cuts its hot entry: a device thread translates
 * one address while another thread's UPDATE maps the second half of the entry elsewhere. The
 * lookup reads the hot entry's start, size, uaddr and permission without a lock and trusts them
 * only once the optimistic stamp validates, so it sees the old entry whole or the new one whole:
 * a start from one and a uaddr from the other would land the device in memory neither mapping
 * gives.
 *
 * <pre>
 *   before: [IOVA, IOVA + 0x2000) → GPA            (hot: the device translated it once)
 *   UPDATE: [IOVA + 0x1000, +0x1000) → GPA + 0x8000 (trims the old entry, becomes the hot one)
 *   device: IOVA + 0x1800, 8 bytes, READ   → offset 0x1800 (old) or 0x8800 (new) in the region
 * </pre>
 *
 * <p>r1: the offset of the piece the device got in the guest region, -1 on a miss.
 */
@JCStressTest
@Description("IOTLB hit path: an UPDATE cutting the hot entry is seen whole or not at all")
@Outcome(id = "6144", expect = ACCEPTABLE, desc = "the device translated before the UPDATE")
@Outcome(id = "34816", expect = ACCEPTABLE, desc = "the device translated after the UPDATE")
@Outcome(expect = FORBIDDEN, desc = "a translation mixing the old entry and the new one, or a miss")
@State
public class IotlbHitPathTest {
    private static final long GPA = 0x4000_0000L;
    private static final long IOVA = 0x10_0000L;
    /** One region shared by every state: the IOTLB never writes to it, the device only looks. */
    private static final GuestMemory MEMORY =
        GuestMemory.builder().allocate(GPA, 0x10000, RegionKind.SHARED).build(Arena.ofAuto());

    private final DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(MEMORY), 4);
    private final OffsetSink sink = new OffsetSink();

    {
        iotlb.update(IOVA, 0x2000, GPA, Permission.RW);
        try {
            // the entry is the hot one and the page's hint names it
            iotlb.translate(IOVA + 0x1800, 8, Access.READ, sink);
        } catch (TranslationException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The front end's UPDATE: the second half of the entry now maps elsewhere. */
    @Actor
    public void update() {
        iotlb.update(IOVA + 0x1000, 0x1000, GPA + 0x8000, Permission.RW);
    }

    /** The device translates an address in the second half. */
    @Actor
    public void device(J_Result r) {
        try {
            long left = iotlb.tryTranslate(IOVA + 0x1800, 8, Access.READ, sink);
            r.r1 = left == 0 ? sink.offset : -1;
        } catch (TranslationException e) {
            r.r1 = -2;
        }
    }

    /** Keeps the offset of the one piece a translation gives. */
    static final class OffsetSink implements TranslationSink {
        long offset;

        @Override
        public void accept(MemorySegment backing, long pieceOffset, long length) {
            offset = pieceOffset;
        }
    }
}

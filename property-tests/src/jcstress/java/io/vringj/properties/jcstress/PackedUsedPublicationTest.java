package io.vringj.properties.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.II_Result;

/**
 * When the driver sees a used descriptor's flags (AVAIL and USED both equal to its used wrap
 * counter) it sees the buffer id and len the device wrote before them (the release store of the
 * flags in {@code publishUsed} paired with the acquire load in {@code pollUsed}) [virtio 2.8.21].
 * After the device popped the chain, every descriptor's id and len are poisoned (an id the driver
 * never offered, a length beyond the writable part) with the flags left as they were, so a stale
 * id or len shows up as a broken queue, never as a quiet success.
 *
 * <p>r1: the buffer id polled, -1 nothing yet, -2 the driver rejected the descriptor; r2: the used length.
 */
@JCStressTest
@Description("packed used publication: buffer id and len visible with the used flags")
@Outcome(id = "-1, 0", expect = ACCEPTABLE, desc = "driver looked before the device published")
@Outcome(id = "0, 17", expect = ACCEPTABLE, desc = "driver saw the flags, the id and the len")
@Outcome(expect = FORBIDDEN, desc = "driver saw the used flags but a stale id or len")
@State
public class PackedUsedPublicationTest {
    private final Rings rings = Rings.packed(false, Rings.PACKED_NEAR_WRAP);
    private final int head;

    {
        head = rings.popOne();
        rings.poisonDescriptorIdsAndLengths();
    }

    /** The device returns the chain and publishes the used descriptor. */
    @Actor
    public void device() {
        rings.addUsedAndPublish(head);
    }

    /** The driver polls. */
    @Actor
    public void driver(II_Result r) {
        rings.poll(r);
    }
}

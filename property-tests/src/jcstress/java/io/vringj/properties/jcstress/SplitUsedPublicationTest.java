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
 * When the driver sees the new used idx it sees the used element's id and len the device wrote
 * before it (the release store in {@code publishUsed} paired with the acquire load in
 * {@code pollUsed}). The used elements are poisoned with an id the driver never offered and a
 * huge length, so a stale element shows up as a broken queue, never as a quiet success.
 *
 * <p>r1: the head polled, -1 nothing yet, -2 the driver rejected the element; r2: the used length.
 */
@JCStressTest
@Description("used idx publication: used element id and len visible with the index")
@Outcome(id = "-1, 0", expect = ACCEPTABLE, desc = "driver looked before the device published")
@Outcome(id = "0, 17", expect = ACCEPTABLE, desc = "driver saw the index and the element")
@Outcome(expect = FORBIDDEN, desc = "driver saw the index but a stale used element")
@State
public class SplitUsedPublicationTest {
    private final Rings rings = Rings.split(false, 65535);
    private final int head;

    {
        head = rings.popOne();
        rings.poisonUsedRing();
    }

    /** The device returns the chain and publishes the used idx. */
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

package io.vringj.properties.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import io.vringj.ring.DescriptorChain;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.II_Result;

/**
 * When the device sees the new avail idx it sees the descriptor and the avail ring entry the
 * driver wrote before it (the release store in {@code publish} paired with the acquire load in
 * {@code pop}). The ring entries are poisoned with an out-of-range head and a fresh descriptor
 * has length 0, so a stale read shows up as a rejected chain, never as a quiet success.
 *
 * <p>r1: 1 popped, 0 nothing yet, -1 the device rejected the chain; r2: readable bytes popped.
 */
@JCStressTest
@Description("avail idx publication: descriptor and ring entry visible with the index")
@Outcome(id = "0, 0", expect = ACCEPTABLE, desc = "device looked before the driver published")
@Outcome(id = "1, 42", expect = ACCEPTABLE, desc = "device saw the index, the ring entry and the descriptor")
@Outcome(expect = FORBIDDEN, desc = "device saw the index but a stale ring entry or descriptor")
@State
public class SplitAvailPublicationTest {
    private final Rings rings = Rings.split(false, 65535);
    private final DescriptorChain popped = new DescriptorChain();

    {
        rings.poisonAvailRing();
    }

    /** The driver adds a chain and publishes the avail idx. */
    @Actor
    public void driver() {
        rings.addAndPublish();
    }

    /** The device pops. */
    @Actor
    public void device(II_Result r) {
        rings.pop(popped, r);
    }
}

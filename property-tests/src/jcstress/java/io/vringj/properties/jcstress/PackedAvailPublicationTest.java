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
 * When the device sees the head descriptor's flags made available for its lap, it sees the
 * head's addr, len and id and every other descriptor of the chain the driver wrote before them
 * (the release store of the head's flags in {@code publish} paired with the acquire load of the
 * flags in {@code pop}) [virtio 2.8.21]. The ring starts at position 3 of lap 1, so the
 * two-descriptor chain crosses the end of the ring and its second descriptor belongs to lap 0.
 * Every descriptor is poisoned with len 1000 and flags available in neither lap, so a stale read
 * shows up as a rejected chain or a readable length other than 42, never as a quiet success.
 *
 * <p>r1: 1 popped, 0 nothing yet, -1 the device rejected the chain; r2: readable bytes popped.
 */
@JCStressTest
@Description("packed avail publication: descriptors visible with the head's flags")
@Outcome(id = "0, 0", expect = ACCEPTABLE, desc = "device looked before the driver published")
@Outcome(id = "1, 42", expect = ACCEPTABLE, desc = "device saw the head's flags and every descriptor")
@Outcome(expect = FORBIDDEN, desc = "device saw the head's flags but a stale descriptor")
@State
public class PackedAvailPublicationTest {
    private final Rings rings = Rings.packed(false, Rings.PACKED_NEAR_WRAP);
    private final DescriptorChain popped = new DescriptorChain();

    {
        rings.poisonDescriptorRing();
    }

    /** The driver adds a chain and makes its head available. */
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

package io.vringj.device.net;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The {@code reflect} mode: every transmitted frame goes back on rx with the destination and
 * source MAC addresses swapped and everything else as it was, like testpmd's {@code macswap}.
 * One copy, from the tx buffers straight into the rx buffers; a frame that finds no rx buffer
 * is dropped and counted by the pair.
 */
public final class Reflector implements FrameHandler {
    private static final VarHandle REFLECTED;

    static {
        try {
            REFLECTED = MethodHandles.lookup().findVarHandle(Reflector.class, "reflected", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private long reflected;

    /** Creates a reflector. */
    public Reflector() {
    }

    @Override
    public void onFrame(Frame frame, RxPort rx) {
        long length = frame.length();
        if (!rx.begin(length)) {
            return;
        }
        // frames are at least an Ethernet header (the pair drops runts): both addresses are there
        rx.copyFrom(0, frame, Ethernet.SOURCE, 6);
        rx.copyFrom(Ethernet.SOURCE, frame, 0, 6);
        rx.copyFrom(Ethernet.TYPE, frame, Ethernet.TYPE, length - Ethernet.TYPE);
        rx.commit();
        // release: pairs with the acquire in reflected(); only this worker writes
        REFLECTED.setRelease(this, reflected + 1);
    }

    /** @return frames sent back */
    public long reflected() {
        // acquire: pairs with the release in onFrame
        return (long) REFLECTED.getAcquire(this);
    }

    @Override
    public String summary() {
        return "reflect: " + reflected() + " frames sent back";
    }
}

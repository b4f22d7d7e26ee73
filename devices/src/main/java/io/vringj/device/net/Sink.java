package io.vringj.device.net;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The {@code sink} mode: counts every frame and its bytes and reads every byte in place, folding
 * each frame's one's complement sum ({@link Frame#onesComplementSum}) into a running 64-bit
 * checksum, so a test (or a person) can check that what arrived is what was sent. Sends nothing.
 *
 * <p>Written by the pair's worker; the counters may be read from any thread.
 */
public final class Sink implements FrameHandler {
    private static final VarHandle FRAMES;
    private static final VarHandle BYTES;
    private static final VarHandle CHECKSUM;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            FRAMES = lookup.findVarHandle(Sink.class, "frames", long.class);
            BYTES = lookup.findVarHandle(Sink.class, "bytes", long.class);
            CHECKSUM = lookup.findVarHandle(Sink.class, "checksum", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private long frames;
    private long bytes;
    private long checksum;

    /** Creates a sink with zero counts. */
    public Sink() {
    }

    @Override
    public void onFrame(Frame frame, RxPort rx) {
        long length = frame.length();
        // release: each pairs with the acquire in its getter; only this worker writes
        CHECKSUM.setRelease(this, checksum + frame.onesComplementSum(0, length));
        BYTES.setRelease(this, bytes + length);
        FRAMES.setRelease(this, frames + 1);
    }

    /** @return frames seen */
    public long frames() {
        // acquire: pairs with the release in onFrame
        return (long) FRAMES.getAcquire(this);
    }

    /** @return frame bytes seen */
    public long bytes() {
        // acquire: pairs with the release in onFrame
        return (long) BYTES.getAcquire(this);
    }

    /**
     * @return the sum over every frame seen of its 16-bit one's complement sum, modulo 2^64
     *     (independent of the order frames arrive in)
     */
    public long checksum() {
        // acquire: pairs with the release in onFrame
        return (long) CHECKSUM.getAcquire(this);
    }

    @Override
    public String summary() {
        return "sink: " + frames() + " frames, " + bytes() + " bytes, checksum 0x" + Long.toHexString(checksum());
    }
}

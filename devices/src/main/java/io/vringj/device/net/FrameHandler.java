package io.vringj.device.net;

/**
 * What a virtio-net device does with each frame the driver transmits: the device's mode. It reads
 * the frame in place and may answer on rx through the {@link RxPort}. Runs on the queue pair's
 * worker thread; one handler per pair.
 *
 * <p>Must not allocate on the steady path and must not throw on any frame: a frame from the peer
 * is input. Read only inside the frame's length (the {@link Frame} accessors throw
 * {@link IndexOutOfBoundsException} outside it, which would be a bug in the handler).
 */
@FunctionalInterface
public interface FrameHandler {

    /**
     * Handles one transmitted frame.
     *
     * @param frame the frame, in place in the driver's tx buffers; valid until this method returns
     * @param rx where to put frames for the driver; a frame begun and not committed is discarded
     */
    void onFrame(Frame frame, RxPort rx);

    /** @return the handler's own counters, for a report (allocates; not on the data path) */
    default String summary() {
        return getClass().getSimpleName();
    }
}

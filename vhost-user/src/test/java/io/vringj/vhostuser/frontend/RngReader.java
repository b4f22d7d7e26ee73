package io.vringj.vhostuser.frontend;

import io.vringj.ring.BufferChain;
import io.vringj.ring.DriverQueue;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;

/** The driver side of virtio-rng over a front-end queue, as a test needs it: offer buffers, kick, wait, read. */
final class RngReader {
    private final VhostUserFrontEnd frontEnd;
    private final FrontEndQueue queue;
    private final MemorySegment[] buffers;
    private long chainsUsed;

    /**
     * @param frontEnd the front end (its memory holds the buffers)
     * @param queue the started rng queue
     * @param count how many buffers to keep
     * @param length bytes per buffer
     */
    RngReader(VhostUserFrontEnd frontEnd, FrontEndQueue queue, int count, int length) {
        this.frontEnd = frontEnd;
        this.queue = queue;
        this.buffers = new MemorySegment[count];
        for (int i = 0; i < count; i++) {
            buffers[i] = frontEnd.allocate(length, 8);
        }
    }

    /** @return how many chains the back end used so far */
    long chainsUsed() {
        return chainsUsed;
    }

    /**
     * Offers every buffer as one writable chain, publishes (kicking when asked), waits for all of
     * them on the call eventfd and returns their bytes in the order the back end used them.
     */
    byte[] round() throws Exception {
        DriverQueue ring = queue.driverQueue();
        Map<Integer, MemorySegment> byHead = new HashMap<>();
        for (MemorySegment b : buffers) {
            b.fill((byte) 0);
            int head = ring.add(new BufferChain(1).addWritable(frontEnd.memory().guestPhysicalAddressOf(b),
                b.byteSize()));
            if (head == DriverQueue.NO_ROOM) {
                throw new AssertionError("no room for " + buffers.length + " chains in a ring of " + ring.queueSize());
            }
            byHead.put(head, b);
        }
        queue.publish();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int got = 0;
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (got < buffers.length) {
            int head = ring.pollUsed();
            if (head == DriverQueue.NONE) {
                if (!ring.enableInterrupts() && !queue.awaitCall(100) && System.nanoTime() > deadline) {
                    throw new AssertionError("back end used " + got + " of " + buffers.length + " chains in 10 s");
                }
                continue;
            }
            MemorySegment b = byHead.remove(head);
            if (b == null) {
                throw new AssertionError("used head " + head + " was not offered");
            }
            out.write(b.asSlice(0, ring.usedLength()).toArray(ValueLayout.JAVA_BYTE));
            got++;
            chainsUsed++;
        }
        return out.toByteArray();
    }
}

package io.vringj.vhostuser;

import java.lang.foreign.Arena;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * The back-end request channel ({@code SET_BACKEND_REQ_FD}): requests from the back end to the
 * front end, here IOTLB misses. Messages are queued and written by a sender thread of their own,
 * so neither the main-socket thread nor a queue worker ever waits on this socket (QEMU may be
 * busy sending us a request on the main socket at the same moment: waiting would deadlock).
 * Misses are sent without NEED_REPLY; the answer is an IOTLB update on the main socket.
 */
final class BackendChannel implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(BackendChannel.class.getName());
    /** Misses waiting to be sent; beyond this the newest is dropped (the worker asks again after its next wake-up). */
    private static final int CAPACITY = 256;
    private static final long[] STOP = new long[0];

    private final VhostUserChannel channel;
    private final VhostUserStatistics statistics;
    private final BlockingQueue<long[]> pending = new ArrayBlockingQueue<>(CAPACITY);
    private final Thread sender;

    BackendChannel(VhostUserChannel channel, VhostUserStatistics statistics) {
        this.channel = channel;
        this.statistics = statistics;
        this.sender = Thread.ofPlatform().name("vhost-user-backend-req").daemon().start(this::run);
    }

    /**
     * Queues an IOTLB miss; never blocks.
     *
     * @param iova the I/O virtual address that missed
     * @param perm the access wanted ({@code 1} read, {@code 2} write, {@code 3} both)
     * @return false if the queue was full and the miss was dropped
     */
    boolean sendMiss(long iova, int perm) {
        return pending.offer(new long[] {iova, perm});
    }

    private void run() {
        try (Arena arena = Arena.ofConfined()) {
            VhostUserMessage msg = new VhostUserMessage(arena);
            while (true) {
                long[] miss = pending.take();
                if (miss == STOP) {
                    return;
                }
                msg.header(VhostUserProtocol.BACKEND_IOTLB_MSG, 0, VhostUserProtocol.IOTLB_MSG_SIZE);
                msg.payload().asSlice(0, VhostUserProtocol.IOTLB_MSG_SIZE).fill((byte) 0);
                msg.putU64(0, miss[0]).putU64(8, 0).putU64(16, 0)
                    .putU8(24, (int) miss[1]).putU8(25, VhostUserProtocol.IOTLB_MISS);
                channel.write(msg);
                statistics.iotlbMisses.increment();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (NativeCallException e) {
            LOG.log(System.Logger.Level.WARNING, "back-end channel closed: " + e.getMessage());
        }
    }

    @Override
    public void close() {
        pending.clear();
        pending.offer(STOP);
        channel.shutdown();
        try {
            sender.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        channel.close();
    }
}

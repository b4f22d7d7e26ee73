package io.vringj.vhostuser.backend;

import io.vringj.dma.DeviceIotlb;
import io.vringj.dma.IotlbMessage;
import io.vringj.dma.IotlbMessageCodec;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.VhostUserChannel;
import io.vringj.vhostuser.VhostUserMessage;
import io.vringj.vhostuser.VhostUserProtocol;
import java.lang.foreign.Arena;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * The back-end request channel ({@code SET_BACKEND_REQ_FD}): requests from the back end to the
 * front end, here IOTLB misses (and access failures). Messages are queued and written by a sender thread of their own,
 * so neither the main-socket thread nor a queue worker ever waits on this socket (QEMU may be
 * busy sending us a request on the main socket at the same moment: waiting would deadlock).
 * Misses are sent without NEED_REPLY; the answer is an IOTLB update on the main socket.
 */
final class BackendChannel implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(BackendChannel.class.getName());
    /**
     * Messages waiting to be sent; beyond this the newest is dropped. As many as the IOTLB
     * remembers pending pages: it sends one MISS per pending page, so a drop needs more distinct
     * pages unanswered at once than it can remember (a dropped MISS is asked again only after the
     * next change of the IOTLB).
     */
    private static final int CAPACITY = DeviceIotlb.PENDING_SLOTS;
    private static final IotlbMessage STOP = IotlbMessage.batchEnd();
    /** How long {@link #close()} lets the sender write what is already queued. */
    static final long DRAIN_MILLIS = 200;

    private final VhostUserChannel channel;
    private final VhostUserStatistics statistics;
    private final MissClock missClock;
    private final BlockingQueue<IotlbMessage> pending = new ArrayBlockingQueue<>(CAPACITY);
    private final Thread sender;

    BackendChannel(VhostUserChannel channel, VhostUserStatistics statistics, MissClock missClock) {
        this.channel = channel;
        this.statistics = statistics;
        this.missClock = missClock;
        this.sender = Thread.ofPlatform().name("vhost-user-backend-req").daemon().start(this::run);
    }

    /**
     * Queues an IOTLB message (a MISS or an ACCESS_FAIL); never blocks. Called from queue
     * workers through the IOTLB's message sink.
     *
     * @param message the message
     * @return false if the queue was full and the message was dropped
     */
    boolean send(IotlbMessage message) {
        return pending.offer(message);
    }

    private void run() {
        try (Arena arena = Arena.ofConfined()) {
            VhostUserMessage msg = new VhostUserMessage(arena);
            while (true) {
                IotlbMessage message = pending.take();
                if (message == STOP) {
                    return;
                }
                // the codec writes the 64-byte kernel form; vhost-user carries the 32-byte struct
                IotlbMessageCodec.encode(message, msg.payload(), 0);
                msg.header(VhostUserProtocol.BACKEND_IOTLB_MSG, 0, IotlbMessageCodec.STRUCT_SIZE);
                if (message.type() == IotlbMessage.Type.MISS) {
                    // timed before the write: the answer may be read before this thread runs again
                    missClock.written(message.iova(), System.nanoTime());
                }
                channel.write(msg);
                if (message.type() == IotlbMessage.Type.MISS) {
                    statistics.iotlbMisses.increment();
                } else {
                    statistics.iotlbAccessFailures.increment();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (NativeCallException e) {
            LOG.log(System.Logger.Level.WARNING, "back-end channel closed: " + e.getMessage());
        }
    }

    /**
     * Stops the sender and closes the socket. What is queued goes out first, for at most
     * {@link #DRAIN_MILLIS}: an ACCESS_FAIL queued by the fault that closes the connection tells the
     * front end why. A front end that does not read gets nothing more: the rest is dropped and the
     * socket shut down under the sender.
     */
    @Override
    public void close() {
        if (!pending.offer(STOP) || !senderEnded(DRAIN_MILLIS)) {
            pending.clear();
            pending.offer(STOP);
            channel.shutdown();
            senderEnded(1000);
        }
        channel.close();
    }

    /** Waits for the sender thread; returns whether it ended. */
    private boolean senderEnded(long millis) {
        try {
            sender.join(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return !sender.isAlive();
    }
}

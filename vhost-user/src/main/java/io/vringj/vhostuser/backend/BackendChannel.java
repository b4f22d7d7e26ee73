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
import java.util.concurrent.locks.ReentrantLock;

/**
 * The back-end request channel ({@code SET_BACKEND_REQ_FD}): requests from the back end to the
 * front end, here IOTLB misses (and access failures). Neither the main-socket thread nor a queue
 * worker ever waits on this socket (QEMU may be busy sending us a request on the main socket at
 * the same moment: waiting would deadlock). A worker writes its message itself when nothing is
 * queued before it and the socket has room ({@link VhostUserChannel#tryWrite}: no thread hop on a
 * miss's round trip); otherwise the message is queued and a sender thread of its own writes it,
 * waiting for room as long as it takes. Queued messages go out in the order they were queued; one a
 * worker writes itself may pass a message the sender has just taken off the queue (misses ask for
 * distinct pages, so their order means nothing to the front end).
 * Misses are sent without NEED_REPLY; the answer is an IOTLB update on the main socket.
 *
 * <pre>
 *   send():  queue empty and writeLock free?  tryWrite: written -> done;  full -> queue
 *            otherwise -> queue           sender: take -> writeLock -> write (may wait)
 * </pre>
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
    /** Held by whoever writes; a worker only tries it. Guards {@link #direct}. */
    private final ReentrantLock writeLock = new ReentrantLock();
    /** The message a worker encodes into, under {@link #writeLock}. */
    private final VhostUserMessage direct = new VhostUserMessage(Arena.ofAuto());

    BackendChannel(VhostUserChannel channel, VhostUserStatistics statistics, MissClock missClock) {
        this.channel = channel;
        this.statistics = statistics;
        this.missClock = missClock;
        this.sender = Thread.ofPlatform().name("vhost-user-backend-req").daemon().start(this::run);
    }

    /**
     * Sends or queues an IOTLB message (a MISS or an ACCESS_FAIL); never blocks. Called from
     * queue workers through the IOTLB's message sink.
     *
     * @param message the message
     * @return false if the queue was full and the message was dropped
     */
    boolean send(IotlbMessage message) {
        if (pending.isEmpty() && writeLock.tryLock()) {
            try {
                // under the lock the sender writes nothing: an empty queue means nothing goes before this one
                if (pending.isEmpty() && writeNow(message)) {
                    return true;
                }
            } finally {
                writeLock.unlock();
            }
        }
        return pending.offer(message);
    }

    /** Writes {@code message} if the socket has room; false if not (or the socket failed: the sender finds out). */
    private boolean writeNow(IotlbMessage message) {
        encode(message, direct);
        try {
            if (!channel.tryWrite(direct)) {
                return false;
            }
        } catch (NativeCallException e) {
            return false;
        }
        counted(message);
        return true;
    }

    private void encode(IotlbMessage message, VhostUserMessage msg) {
        // the codec writes the 64-byte kernel form; vhost-user carries the 32-byte struct
        IotlbMessageCodec.encode(message, msg.payload(), 0);
        msg.header(VhostUserProtocol.BACKEND_IOTLB_MSG, 0, IotlbMessageCodec.STRUCT_SIZE);
        if (message.type() == IotlbMessage.Type.MISS) {
            // timed before the write: the answer may be read before this thread runs again
            missClock.written(message.iova(), System.nanoTime());
        }
    }

    private void counted(IotlbMessage message) {
        if (message.type() == IotlbMessage.Type.MISS) {
            statistics.iotlbMisses.increment();
        } else {
            statistics.iotlbAccessFailures.increment();
        }
    }

    private void run() {
        try (Arena arena = Arena.ofConfined()) {
            VhostUserMessage msg = new VhostUserMessage(arena);
            while (true) {
                IotlbMessage message = pending.take();
                if (message == STOP) {
                    return;
                }
                writeLock.lock();
                try {
                    encode(message, msg);
                    channel.write(msg);
                } finally {
                    writeLock.unlock();
                }
                counted(message);
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

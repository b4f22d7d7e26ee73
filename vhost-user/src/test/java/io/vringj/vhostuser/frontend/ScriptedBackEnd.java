package io.vringj.vhostuser.frontend;

import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.VhostUserChannel;
import io.vringj.vhostuser.VhostUserMessage;
import io.vringj.vhostuser.VhostUserProtocol;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A fake back end for tests: it speaks just enough vhost-user to answer a front end honestly, and
 * misbehaves on the requests a test picks (wrong reply code, size or flags, no reply, closing,
 * a wrong vring index...). Listens like a normal back end, or connects to a listening front end.
 */
final class ScriptedBackEnd implements AutoCloseable {
    /** What to do with one request instead of answering it honestly. */
    @FunctionalInterface
    interface Misbehaviour {
        /**
         * @param request the request as received
         * @param reply a message to send through {@code channel}
         * @param channel the connection
         * @return false to close the connection now
         */
        boolean act(VhostUserMessage request, VhostUserMessage reply, VhostUserChannel channel) throws Exception;
    }

    /** Closes the connection when the request arrives. */
    static final Misbehaviour CLOSE = (request, reply, channel) -> false;
    /** Reads the request and never answers. */
    static final Misbehaviour SILENCE = (request, reply, channel) -> true;

    long offeredFeatures = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_PACKED)
        | VirtioFeatures.bit(VhostUserProtocol.F_PROTOCOL_FEATURES);
    long offeredProtocolFeatures = (1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK)
        | (1L << VhostUserProtocol.PROTOCOL_F_STATUS) | (1L << VhostUserProtocol.PROTOCOL_F_MQ);
    long queueNum = 1;
    /** Vring base returned by GET_VRING_BASE. */
    int vringBase;
    /** Request codes received, in order. */
    final List<Integer> received = new CopyOnWriteArrayList<>();
    /** Payload u64 of each SET_STATUS received. */
    final List<Long> statuses = new CopyOnWriteArrayList<>();
    private final Map<Integer, Misbehaviour> misbehaviours = new ConcurrentHashMap<>();

    private final Arena arena = Arena.ofShared();
    private final VhostUserMessage in = new VhostUserMessage(arena);
    private final VhostUserMessage out = new VhostUserMessage(arena);
    private final EventFd stop;
    private final int listenFd;
    private final String path;
    private final boolean connect;
    private Thread thread;
    private volatile VhostUserChannel channel;
    private long protocolFeatures;
    private boolean closed;

    private ScriptedBackEnd(String path, boolean connect) throws NativeCallException {
        this.path = path;
        this.connect = connect;
        this.stop = EventFd.create();
        if (connect) {
            listenFd = -1;
        } else {
            listenFd = Libc.socket();
            Libc.bind(listenFd, path);
            Libc.listen(listenFd, 1);
        }
    }

    /** A back end listening on {@code path}; call {@link #start()} after setting its script. */
    static ScriptedBackEnd listening(String path) throws NativeCallException {
        return new ScriptedBackEnd(path, false);
    }

    /** A back end that connects to a front end listening on {@code path}, on {@link #start()}. */
    static ScriptedBackEnd connecting(String path) throws NativeCallException {
        return new ScriptedBackEnd(path, true);
    }

    /** Misbehave on {@code request}. */
    ScriptedBackEnd on(int request, Misbehaviour misbehaviour) {
        misbehaviours.put(request, misbehaviour);
        return this;
    }

    ScriptedBackEnd start() {
        thread = Thread.ofPlatform().name("scripted-back-end").start(this::serve);
        return this;
    }

    private void serve() {
        try (Arena local = Arena.ofConfined()) {
            int fd;
            MemorySegment pollfds = local.allocate(Libc.POLLFD_SIZE * 2, 8);
            if (connect) {
                fd = Libc.socket();
                try {
                    Libc.connect(fd, path);
                } catch (NativeCallException e) {
                    Libc.closeQuietly(fd);
                    throw e;
                }
            } else {
                pollfds.set(ValueLayout.JAVA_INT, 0, listenFd);
                pollfds.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
                pollfds.set(ValueLayout.JAVA_INT, 8, stop.fd());
                pollfds.set(ValueLayout.JAVA_SHORT, 12, Libc.POLLIN);
                Libc.poll(pollfds, 2, -1);
                if (pollfds.get(ValueLayout.JAVA_SHORT, 14) != 0) {
                    return;
                }
                fd = Libc.accept(listenFd);
            }
            channel = new VhostUserChannel(fd);
            pollfds.set(ValueLayout.JAVA_INT, 0, fd);
            pollfds.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            pollfds.set(ValueLayout.JAVA_INT, 8, stop.fd());
            pollfds.set(ValueLayout.JAVA_SHORT, 12, Libc.POLLIN);
            while (true) {
                pollfds.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
                pollfds.set(ValueLayout.JAVA_SHORT, 14, (short) 0);
                Libc.poll(pollfds, 2, -1);
                if (pollfds.get(ValueLayout.JAVA_SHORT, 14) != 0 || !channel.read(in)) {
                    return;
                }
                received.add(in.request());
                Misbehaviour m = misbehaviours.get(in.request());
                boolean goOn = m != null ? m.act(in, out, channel) : answer();
                in.closeFds();
                if (!goOn) {
                    return;
                }
            }
        } catch (Exception e) {
            // the front end hung up or sent garbage: the script ends
        } finally {
            in.closeFds();
            VhostUserChannel c = channel;
            if (c != null) {
                c.close();
            }
        }
    }

    /** The honest answer. */
    private boolean answer() throws NativeCallException, ProtocolException {
        int request = in.request();
        switch (request) {
            case VhostUserProtocol.GET_FEATURES -> replyU64(offeredFeatures);
            case VhostUserProtocol.GET_PROTOCOL_FEATURES -> replyU64(offeredProtocolFeatures);
            case VhostUserProtocol.GET_QUEUE_NUM -> replyU64(queueNum);
            case VhostUserProtocol.GET_VRING_BASE -> {
                out.header(request, VhostUserProtocol.FLAG_REPLY, 8).putU32(0, in.u32(0)).putU32(4, vringBase);
                channel.write(out);
            }
            default -> {
                if (request == VhostUserProtocol.SET_PROTOCOL_FEATURES) {
                    protocolFeatures = in.u64(0);
                }
                if (request == VhostUserProtocol.SET_STATUS) {
                    statuses.add(in.u64(0));
                }
                if (in.needsReply() && (protocolFeatures & (1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK)) != 0) {
                    replyU64(0);
                }
            }
        }
        return true;
    }

    private void replyU64(long value) throws NativeCallException {
        out.header(in.request(), VhostUserProtocol.FLAG_REPLY, 8).putU64(0, value);
        channel.write(out);
    }

    /** Ends the script and releases its fds. */
    @Override
    public synchronized void close() throws InterruptedException {
        if (closed) {
            return;
        }
        closed = true;
        stop.wakeQuietly();
        if (thread != null) {
            thread.join(5000);
        }
        stop.close();
        if (listenFd >= 0) {
            Libc.closeQuietly(listenFd);
            try {
                Libc.unlink(path);
            } catch (NativeCallException ignored) {
                // already gone
            }
        }
        arena.close();
    }
}

package io.vringj.vhostuser.frontend;

import io.vringj.device.ChainDevice;
import io.vringj.device.VirtioDevice;
import io.vringj.device.rng.EntropySource;
import io.vringj.device.rng.RngDevice;
import io.vringj.ring.ChainHandler;
import io.vringj.ring.VirtioFeatures;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.VhostUserChannel;
import io.vringj.vhostuser.backend.VhostUserConnection;
import io.vringj.vhostuser.backend.VhostUserServer;
import io.vringj.vhostuser.backend.VhostUserStatistics;
import io.vringj.vhostuser.linux.Libc;

/** vringj's own rng back end in this JVM, listening (as usual) or connecting to a listening front end. */
final class InProcessBackEnd implements AutoCloseable {
    private final VhostUserServer server;
    private final EventFd stop;
    private final Thread thread;

    private InProcessBackEnd(VhostUserServer server, EventFd stop, Thread thread) {
        this.server = server;
        this.stop = stop;
        this.thread = thread;
    }

    static RngDevice rng(long seed) {
        return new RngDevice(() -> EntropySource.deterministic(seed), false);
    }

    /**
     * The rng device offering VIRTIO_F_IN_ORDER as well: its queues are worked by ring-core's
     * DeviceLoop, which returns every chain as soon as it popped it, so in order.
     */
    static ChainDevice inOrderRng(long seed) {
        RngDevice rng = rng(seed);
        return new ChainDevice() {
            @Override
            public String name() {
                return rng.name();
            }

            @Override
            public long offeredFeatures() {
                return rng.offeredFeatures() | VirtioFeatures.bit(VirtioFeatures.IN_ORDER);
            }

            @Override
            public int queueCount() {
                return rng.queueCount();
            }

            @Override
            public int maxQueueSize() {
                return rng.maxQueueSize();
            }

            @Override
            public ChainHandler handler(int queueIndex, long negotiatedFeatures) {
                return rng.handler(queueIndex, negotiatedFeatures);
            }
        };
    }

    /** A {@link VhostUserServer} with an rng device on {@code path}, running on its own thread. */
    static InProcessBackEnd listening(String path, long seed) throws NativeCallException {
        return listening(path, rng(seed));
    }

    /** A {@link VhostUserServer} with {@code device} on {@code path}, running on its own thread. */
    static InProcessBackEnd listening(String path, VirtioDevice device) throws NativeCallException {
        VhostUserServer server = VhostUserServer.bind(path, device);
        Thread t = Thread.ofPlatform().name("test-rng-back-end").start(() -> {
            try {
                server.run();
            } catch (NativeCallException e) {
                throw new IllegalStateException(e);
            }
        });
        return new InProcessBackEnd(server, null, t);
    }

    /**
     * Our back end's connection logic on a socket it connects to a front end listening on
     * {@code path} (our server only listens; this plays DPDK's {@code client=1}).
     */
    static InProcessBackEnd connecting(String path, long seed) throws NativeCallException {
        int fd = Libc.socket();
        try {
            Libc.connect(fd, path);
        } catch (NativeCallException e) {
            Libc.closeQuietly(fd);
            throw e;
        }
        EventFd stop = EventFd.create();
        // the connection's arena is confined: make it on the thread that serves
        Thread t = Thread.ofPlatform().name("test-rng-back-end-client").start(() -> {
            try (VhostUserConnection connection = new VhostUserConnection(rng(seed), new VhostUserChannel(fd),
                new VhostUserStatistics())) {
                connection.serve(stop);
            } catch (NativeCallException e) {
                Libc.closeQuietly(fd);
                throw new IllegalStateException(e);
            }
        });
        return new InProcessBackEnd(null, stop, t);
    }

    /** Stops serving and waits; a listening server removes its socket file. */
    @Override
    public void close() throws InterruptedException {
        if (server != null) {
            server.close();
        } else {
            stop.wakeQuietly();
        }
        thread.join(5000);
        if (stop != null) {
            stop.close();
        }
    }
}

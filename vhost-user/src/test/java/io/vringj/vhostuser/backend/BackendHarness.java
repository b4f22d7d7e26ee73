package io.vringj.vhostuser.backend;

import io.vringj.device.VirtioDevice;
import io.vringj.device.rng.EntropySource;
import io.vringj.device.rng.RngDevice;
import io.vringj.vhostuser.NativeCallException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/** Runs a {@link VhostUserServer} on a thread and collects what it logs. */
final class BackendHarness implements AutoCloseable {
    /** Held strongly: java.util.logging keeps loggers only weakly. */
    private static final Logger PACKAGE_LOGGER = Logger.getLogger("io.vringj.vhostuser");

    /** A short stall time-out, so the test of a stalling front end is quick. */
    static final int STALL_MILLIS = 300;

    final VhostUserServer server;
    final String path;
    private final Thread thread;
    private final List<String> log = new CopyOnWriteArrayList<>();
    private final Handler handler = new Handler() {
        @Override
        public void publish(LogRecord record) {
            log.add(record.getLevel() + " " + record.getMessage());
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    BackendHarness(Path dir, long seed) throws NativeCallException {
        this(dir, new RngDevice(() -> EntropySource.deterministic(seed), false));
    }

    BackendHarness(Path dir, VirtioDevice device) throws NativeCallException {
        this(dir, device, BackendOptions.defaults().withStallMillis(STALL_MILLIS));
    }

    BackendHarness(Path dir, VirtioDevice device, BackendOptions options) throws NativeCallException {
        PACKAGE_LOGGER.addHandler(handler);
        PACKAGE_LOGGER.setLevel(Level.ALL);
        path = dir.resolve("backend.sock").toString();
        server = VhostUserServer.bind(path, device, options);
        thread = Thread.ofPlatform().name("test-vhost-user-server").start(() -> {
            try {
                server.run();
            } catch (NativeCallException e) {
                log.add("SEVERE server failed: " + e.getMessage());
            }
        });
    }

    TestFrontEnd connect() throws NativeCallException {
        return new TestFrontEnd(path);
    }

    /** Waits until a log line containing {@code fragment} appears; returns it. */
    String awaitLog(String fragment, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            for (String line : log) {
                if (line.contains(fragment)) {
                    return line;
                }
            }
            Thread.sleep(10);
        }
        throw new AssertionError("no log line contains '" + fragment + "'; log: " + log);
    }

    boolean serverAlive() {
        return thread.isAlive();
    }

    @Override
    public void close() throws InterruptedException {
        server.close();
        thread.join(5000);
        PACKAGE_LOGGER.removeHandler(handler);
    }
}

package io.vringj.vhostuser.channel;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Both ends of a channel in this JVM over a real socket: the serving end opened on a thread of its own. */
final class ChannelPair implements AutoCloseable {
    final MessageChannel device;
    final MessageChannel driver;

    private ChannelPair(MessageChannel device, MessageChannel driver) {
        this.device = device;
        this.driver = driver;
    }

    static ChannelOptions.Builder options(Path dir) {
        return ChannelOptions.builder(dir.resolve("channel.sock")).connectTimeout(Duration.ofSeconds(10));
    }

    static ChannelPair open(ChannelOptions options) throws Exception {
        return open(options, options);
    }

    /** Both ends with options of their own (the same socket). */
    static ChannelPair open(ChannelOptions deviceOptions, ChannelOptions driverOptions) throws Exception {
        ChannelOptions options = deviceOptions;
        CompletableFuture<MessageChannel> served = new CompletableFuture<>();
        Thread server = Thread.ofPlatform().name("serve").start(() -> {
            try {
                served.complete(MessageChannel.serve(options));
            } catch (Throwable e) {
                served.completeExceptionally(e);
            }
        });
        MessageChannel driver;
        try {
            driver = MessageChannel.connect(driverOptions);
        } catch (Exception e) {
            server.join();
            throw e;
        }
        MessageChannel device = served.get(20, TimeUnit.SECONDS);
        server.join();
        return new ChannelPair(device, driver);
    }

    @Override
    public void close() {
        driver.close();
        device.close();
    }
}

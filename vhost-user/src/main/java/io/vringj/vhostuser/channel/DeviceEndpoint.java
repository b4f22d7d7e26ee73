package io.vringj.vhostuser.channel;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** Placeholder while the data path is written: every operation throws. */
final class DeviceEndpoint extends Endpoint {
    static DeviceEndpoint serve(ChannelOptions options) throws IOException {
        throw new IOException("MessageChannel.serve is not implemented yet on this branch");
    }

    @Override int maxMessageLength() { throw new UnsupportedOperationException(); }
    @Override MemorySegment tryClaim(int length) { throw new UnsupportedOperationException(); }
    @Override void commit() { throw new UnsupportedOperationException(); }
    @Override void abort() { throw new UnsupportedOperationException(); }
    @Override int flush() { throw new UnsupportedOperationException(); }
    @Override int poll(MessageHandler handler, int limit) { throw new UnsupportedOperationException(); }
    @Override boolean awaitMessages(long timeoutNanos) { throw new UnsupportedOperationException(); }
    @Override boolean awaitSpace(long timeoutNanos) { throw new UnsupportedOperationException(); }
    @Override boolean packed() { throw new UnsupportedOperationException(); }
    @Override boolean inOrder() { throw new UnsupportedOperationException(); }
    @Override void close() { throw new UnsupportedOperationException(); }
}

package io.vringj.vhostuser.backend;

import io.vringj.dma.IotlbMessage;
import io.vringj.dma.Permission;
import io.vringj.vhostuser.VhostUserChannel;
import io.vringj.vhostuser.VhostUserMessage;
import io.vringj.vhostuser.VhostUserProtocol;
import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BackendChannelTest {

    @Test
    void sendNeverWaitsWhenTheFrontEndDoesNotRead() throws Exception {
        int[] pair = Libc.socketPair();
        VhostUserStatistics statistics = new VhostUserStatistics();
        try (VhostUserChannel frontEnd = new VhostUserChannel(pair[0]);
             BackendChannel channel = new BackendChannel(new VhostUserChannel(pair[1]), statistics, new MissClock(statistics))) {
            // nobody reads pair[0]: the socket buffer fills, the sender thread blocks, the queue fills,
            // and send keeps returning at once (false when full) instead of waiting
            int refused = 0;
            for (int i = 0; i < 100_000; i++) {
                if (!channel.send(IotlbMessage.miss(0x1000L * i, Permission.RO))) {
                    refused++;
                }
            }
            assertTrue(refused > 0, "a front end that never reads fills the queue");
            long sent = statistics.iotlbMisses.sum();
            assertTrue(sent < 100_000, "the socket buffer filled (" + sent + " sent)");

            // the messages that were sent are whole MISSes in order
            try (Arena arena = Arena.ofConfined()) {
                VhostUserMessage in = new VhostUserMessage(arena);
                assertTrue(frontEnd.read(in));
                assertEquals(VhostUserProtocol.BACKEND_IOTLB_MSG, in.request());
                assertEquals(32, in.size());
                assertEquals(0, in.u64(0));
                assertEquals(VhostUserProtocol.IOTLB_MISS, in.u8(25));
                assertEquals(1, in.u8(24));
                assertTrue(frontEnd.read(in));
                assertEquals(0x1000, in.u64(0));
                assertFalse(in.needsReply(), "a miss is answered by an UPDATE on the main socket, not a reply");
            }
        }
    }

    @Test
    void whatIsQueuedWhenTheConnectionClosesIsStillSent() throws Exception {
        int[] pair = Libc.socketPair();
        VhostUserStatistics statistics = new VhostUserStatistics();
        try (VhostUserChannel frontEnd = new VhostUserChannel(pair[0]); Arena arena = Arena.ofConfined()) {
            BackendChannel channel = new BackendChannel(new VhostUserChannel(pair[1]), statistics, new MissClock(statistics));
            // a worker's fault queues an ACCESS_FAIL and the connection closes at once: the front end
            // still learns why
            assertTrue(channel.send(IotlbMessage.miss(0x1000, Permission.RO)));
            assertTrue(channel.send(IotlbMessage.accessFail(0x2000, Permission.WO)));
            channel.close();
            VhostUserMessage in = new VhostUserMessage(arena);
            assertTrue(frontEnd.read(in));
            assertEquals(VhostUserProtocol.IOTLB_MISS, in.u8(25));
            assertTrue(frontEnd.read(in));
            assertEquals(VhostUserProtocol.IOTLB_ACCESS_FAIL, in.u8(25));
            assertEquals(0x2000, in.u64(0));
            assertEquals(2, in.u8(24));
            assertFalse(frontEnd.read(in), "then the channel is closed");
            assertEquals(1, statistics.iotlbAccessFailures.sum());
        }
    }

    @Test
    void aWorkerWritesItsMissItselfWhenTheSocketHasRoom() throws Exception {
        int[] pair = Libc.socketPair();
        VhostUserStatistics statistics = new VhostUserStatistics();
        try (VhostUserChannel frontEnd = new VhostUserChannel(pair[0]);
             BackendChannel channel = new BackendChannel(new VhostUserChannel(pair[1]), statistics, new MissClock(statistics));
             Arena arena = Arena.ofConfined()) {
            for (int i = 1; i <= 3; i++) {
                assertTrue(channel.send(IotlbMessage.miss(0x7000L * i, Permission.RW)));
                // written (and counted) before send returned: no hop through the sender thread
                assertEquals(i, statistics.iotlbMisses.sum());
                VhostUserMessage in = new VhostUserMessage(arena);
                assertTrue(frontEnd.read(in));
                assertEquals(0x7000L * i, in.u64(0));
                assertEquals(VhostUserProtocol.IOTLB_MISS, in.u8(25));
            }
        }
    }
}

package io.vringj.vhostuser.channel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.zip.CRC32;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Test messages with contents that depend on their sequence number, and a receiver that checks them. */
final class Messages {
    private Messages() {
    }

    /** Byte {@code j} of message {@code seq}. */
    static byte content(long seq, int j) {
        return (byte) (seq * 31 + j * 7 + (j >>> 8));
    }

    /** Writes message {@code seq} of {@code length} bytes. */
    static void fill(MemorySegment buffer, long seq, int length) {
        for (int j = 0; j < length; j++) {
            buffer.set(ValueLayout.JAVA_BYTE, j, content(seq, j));
        }
    }

    /** @return the CRC-32 of message {@code seq} of {@code length} bytes */
    static long expectedCrc(long seq, int length) {
        byte[] b = new byte[length];
        for (int j = 0; j < length; j++) {
            b[j] = content(seq, j);
        }
        CRC32 crc = new CRC32();
        crc.update(b);
        return crc.getValue();
    }

    /** Claims, fills and commits message {@code seq}, waiting for space if the ring is full. */
    static void send(MessageChannel channel, long seq, int length) {
        MemorySegment buffer;
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while ((buffer = channel.tryClaim(length)) == null) {
            assertTrue(System.nanoTime() < deadline, "no space for message " + seq + " within 20 s");
            channel.awaitSpace(Duration.ofMillis(50));
        }
        fill(buffer, seq, length);
        channel.commit();
    }

    /** Receives in order and checks every message against its expected length and CRC. */
    static final class Checker implements MessageHandler {
        private final int[] lengths;
        long received;
        private final CRC32 crc = new CRC32();

        /** @param lengths message i has length lengths[i % lengths.length] */
        Checker(int... lengths) {
            this.lengths = lengths;
        }

        @Override
        public void onMessage(MemorySegment buffer, int length) {
            long seq = received;
            int expected = lengths[(int) (seq % lengths.length)];
            assertEquals(expected, length, "length of message " + seq);
            assertTrue(buffer.byteSize() >= length, "the segment holds the message");
            crc.reset();
            crc.update(buffer.asSlice(0, length).asByteBuffer());
            assertEquals(expectedCrc(seq, length), crc.getValue(), "checksum of message " + seq + " (" + length + " B)");
            received++;
        }

        /** Polls (sleeping on the eventfd between polls) until {@code count} messages arrived. */
        void receive(MessageChannel channel, long count) {
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (received < count) {
                assertTrue(System.nanoTime() < deadline, "received " + received + " of " + count + " within 30 s");
                if (channel.poll(this, 32) == 0) {
                    channel.awaitMessages(Duration.ofMillis(50));
                }
            }
        }
    }

    static MemorySegment claimNow(MessageChannel channel, int length) {
        MemorySegment m = channel.tryClaim(length);
        assertNotNull(m, "space for a message");
        return m;
    }
}

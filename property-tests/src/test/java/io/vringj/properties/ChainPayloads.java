package io.vringj.properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import io.vringj.memory.GuestMemory;
import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The bytes the model-based ring systems (split and packed) put in each chain and expect back:
 * every readable buffer carries a pattern derived from the chain's token and the buffer's
 * position, every reply a pattern derived from the token alone, so a byte in the wrong place, a
 * short copy or a stale buffer shows up.
 */
final class ChainPayloads {
    /** The salt of the device's reply pattern. */
    private static final int REPLY = 100;

    private ChainPayloads() {
    }

    private static byte payloadByte(int token, int salt, long i) {
        return (byte) (token * 31 + salt * 7 + i);
    }

    /** Fills readable buffer {@code salt} of chain {@code token}. */
    static void fill(MemorySegment buffer, int token, int salt) {
        for (long i = 0; i < buffer.byteSize(); i++) {
            buffer.set(ValueLayout.JAVA_BYTE, i, payloadByte(token, salt, i));
        }
    }

    /**
     * Checks a popped chain against what the driver offered: readable and writable byte counts,
     * descriptors walked (an indirect chain walks its table's entries plus the INDIRECT one),
     * and the readable bytes themselves.
     */
    static void checkPopped(DescriptorChain popped, BufferChain buffers, boolean indirect, int token, Object chain) {
        assertEquals(buffers.readableLength(), popped.readableLength(), "readable bytes of " + chain);
        assertEquals(buffers.writableLength(), popped.writableLength(), "writable bytes of " + chain);
        assertEquals(indirect ? 1 + buffers.size() : buffers.size(), popped.descriptorCount(),
            "descriptors walked for " + chain);
        checkReadable(popped, buffers, token, chain);
    }

    /** Checks what the device can read through {@code popped} is what the driver put in {@code buffers}. */
    private static void checkReadable(DescriptorChain popped, BufferChain buffers, int token, Object chain) {
        MemorySegment seen = MemorySegment.ofArray(new byte[(int) popped.readableLength()]);
        popped.copyFromReadable(0, seen, 0, popped.readableLength());
        long at = 0;
        for (int i = 0; i < buffers.readableCount(); i++) {
            for (long k = 0; k < buffers.length(i); k++, at++) {
                if (seen.get(ValueLayout.JAVA_BYTE, at) != payloadByte(token, i, k)) {
                    fail("device read wrong byte " + at + " of " + chain);
                }
            }
        }
    }

    /** The device writes {@code written} bytes of chain {@code token}'s reply through the chain it popped. */
    static void writeReply(DescriptorChain popped, int token, long written) {
        MemorySegment reply = MemorySegment.ofArray(new byte[(int) written]);
        for (long i = 0; i < written; i++) {
            reply.set(ValueLayout.JAVA_BYTE, i, payloadByte(token, REPLY, i));
        }
        popped.copyToWritable(0, reply, 0, written);
    }

    /** Checks the driver sees the first {@code written} reply bytes in its writable buffers. */
    static void checkWritten(GuestMemory memory, BufferChain buffers, int token, long written, Object chain) {
        long at = 0;
        for (int i = buffers.readableCount(); i < buffers.size() && at < written; i++) {
            long n = Math.min(buffers.length(i), written - at);
            MemorySegment buf = memory.slice(buffers.busAddress(i), n);
            for (long k = 0; k < n; k++, at++) {
                if (buf.get(ValueLayout.JAVA_BYTE, k) != payloadByte(token, REPLY, at)) {
                    fail("driver sees wrong reply byte " + at + " of " + chain);
                }
            }
        }
    }
}

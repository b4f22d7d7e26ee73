package io.vringj.perf.channel;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.agrona.BitUtil;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.MessageHandler;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.OneToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RecordDescriptor;
import org.agrona.concurrent.ringbuffer.RingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;

/**
 * The hand-made peer: two Agrona {@code OneToOneRingBuffer}s in one memory-mapped file that both
 * processes map. The benchmark process creates the file; the peer maps it.
 *
 * <pre>
 *   file offset 0        ring "to peer":   capacity bytes of records | trailer (head, tail, ...)
 *   file offset stride   ring "from peer": the same, for the echo
 *   stride = capacity + trailer, rounded up to a page; capacity = the next power of two that
 *   holds {@value #RECORDS} records of the largest message (as in question 1)
 * </pre>
 *
 * Sending claims a record ({@code tryClaim}), stamps it in place and commits it, which publishes
 * it: the ring has no separate publish step. Receiving reads each record in place in a handler.
 */
public final class AgronaMmapLink implements Link {
    /** Records of the largest message each ring holds at least (the other transports' queue size). */
    public static final int RECORDS = 256;
    private static final int MSG_TYPE = 1;
    private static final long PAGE = 4096;

    private final Arena arena;
    private final UnsafeBuffer outBuffer;
    private final RingBuffer out;
    private final RingBuffer in;
    private final MessageTally sent = new MessageTally();
    private final MessageTally received = new MessageTally();
    private final Sink sink = new Sink(received);
    private final Echo echo;

    private AgronaMmapLink(Path file, int maxLength, boolean creator) {
        int capacity = capacity(maxLength);
        long stride = stride(maxLength);
        Arena a = Arena.ofShared();
        try (FileChannel fc = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            if (fc.size() != 2 * stride) {
                throw new IllegalArgumentException("ring file " + file + " has " + fc.size() + " bytes; "
                    + maxLength + "-byte messages need " + 2 * stride);
            }
            MemorySegment map = fc.map(FileChannel.MapMode.READ_WRITE, 0, 2 * stride, a);
            int length = capacity + RingBufferDescriptor.TRAILER_LENGTH;
            UnsafeBuffer first = new UnsafeBuffer(map.address(), length);
            UnsafeBuffer second = new UnsafeBuffer(map.address() + stride, length);
            // the creator sends on the first ring and hears the echo on the second; the peer the other way
            outBuffer = creator ? first : second;
            out = new OneToOneRingBuffer(outBuffer);
            in = new OneToOneRingBuffer(creator ? second : first);
        } catch (IOException e) {
            a.close();
            throw new UncheckedIOException("cannot map ring file " + file, e);
        } catch (RuntimeException e) {
            a.close();
            throw e;
        }
        arena = a;
        echo = new Echo(received, out);
    }

    /**
     * Creates and sizes the ring file (zeroes: two empty rings) and maps it: the benchmark's end.
     *
     * @param file a file that does not exist yet
     * @param maxLength the largest message in bytes
     * @return the link
     * @throws IOException if the file cannot be created
     */
    public static AgronaMmapLink create(Path file, int maxLength) throws IOException {
        try (FileChannel fc = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
            StandardOpenOption.WRITE)) {
            fc.truncate(0);
            // a file grown by a write past its end reads as zeroes up to it: two empty rings
            fc.write(java.nio.ByteBuffer.allocate(1), 2 * stride(maxLength) - 1);
        }
        return new AgronaMmapLink(file, maxLength, true);
    }

    /**
     * Maps a ring file the benchmark process created: the peer's end.
     *
     * @param file the file
     * @param maxLength the largest message, as given to {@link #create}
     * @return the link
     */
    public static AgronaMmapLink open(Path file, int maxLength) {
        return new AgronaMmapLink(file, maxLength, false);
    }

    /**
     * @param maxLength the largest message
     * @return each ring's capacity in bytes
     */
    static int capacity(int maxLength) {
        int record = BitUtil.align(maxLength + RecordDescriptor.HEADER_LENGTH, RecordDescriptor.ALIGNMENT);
        return BitUtil.findNextPositivePowerOfTwo(record * RECORDS);
    }

    private static long stride(int maxLength) {
        long bytes = capacity(maxLength) + RingBufferDescriptor.TRAILER_LENGTH;
        return (bytes + PAGE - 1) / PAGE * PAGE;
    }

    @Override
    public int send(int count, int length) {
        int n = 0;
        for (; n < count; n++) {
            int index = out.tryClaim(MSG_TYPE, length);
            if (index < 0) {
                break;
            }
            long sequence = sent.next();
            outBuffer.putLong(index, sequence);
            outBuffer.putLong(index + length - Long.BYTES, ~sequence);
            // release: commit publishes the record; pairs with the acquire in the peer's read
            out.commit(index);
        }
        return n;
    }

    @Override
    public int receive(int limit) {
        return in.read(sink, limit);
    }

    @Override
    public int echo(int limit) {
        return in.read(echo, limit);
    }

    @Override
    public MessageTally sent() {
        return sent;
    }

    @Override
    public MessageTally received() {
        return received;
    }

    @Override
    public void close() {
        arena.close();
    }

    /** Checks each record in place. */
    private static final class Sink implements MessageHandler {
        private final MessageTally tally;

        Sink(MessageTally tally) {
            this.tally = tally;
        }

        @Override
        public void onMessage(int msgTypeId, MutableDirectBuffer buffer, int index, int length) {
            tally.received(buffer.getLong(index), buffer.getLong(index + length - Long.BYTES));
        }
    }

    /** Checks each record and writes (copies) it back on the other ring. */
    private static final class Echo implements MessageHandler {
        private final MessageTally tally;
        private final RingBuffer back;

        Echo(MessageTally tally, RingBuffer back) {
            this.tally = tally;
            this.back = back;
        }

        @Override
        public void onMessage(int msgTypeId, MutableDirectBuffer buffer, int index, int length) {
            tally.received(buffer.getLong(index), buffer.getLong(index + length - Long.BYTES));
            while (!back.write(MSG_TYPE, buffer, index, length)) {
                Thread.onSpinWait();
            }
        }
    }
}

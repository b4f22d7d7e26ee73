package io.vringj.perf.channel;

/**
 * What one side of a two-process benchmark sent or received: a count, an order-independent
 * checksum of the sequence numbers, and how many messages arrived out of sequence or damaged.
 * Each message carries its sequence number in its first eight bytes and the complement in its
 * last eight ({@link io.vringj.perf.ring.Payloads}), so a lost, repeated, reordered or torn
 * message shows up as {@link #bad()} and a peer that skips work cannot report a matching tally.
 * Owned by one thread.
 */
public final class MessageTally {
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    private long count;
    private long checksum;
    private long bad;

    /**
     * @param sequence a message's sequence number
     * @return its share of the checksum: a bijective mix, so a sum over the messages tells a
     *     missing or repeated one apart from a complete set
     */
    public static long mix(long sequence) {
        long z = (sequence + 1) * GOLDEN;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        return z ^ (z >>> 31);
    }

    /**
     * Counts the next message sent.
     *
     * @return its sequence number, to stamp into it
     */
    public long next() {
        long sequence = count++;
        checksum += mix(sequence);
        return sequence;
    }

    /**
     * Counts a message received and checks it: its first stamp must be the next sequence number
     * and its last stamp that number's complement.
     *
     * @param first the message's first eight bytes
     * @param last its last eight bytes
     */
    public void received(long first, long last) {
        if (first != count || last != ~first) {
            bad++;
        }
        count++;
        checksum += mix(first);
    }

    /** @return messages counted */
    public long count() {
        return count;
    }

    /** @return the sum of {@link #mix} over the sequence numbers counted */
    public long checksum() {
        return checksum;
    }

    /** @return messages received out of sequence or with a damaged stamp */
    public long bad() {
        return bad;
    }
}

package io.vringj.perf.channel;

/**
 * One process's end of a message transport between two processes, as the benchmarks use it:
 * the benchmark process sends (and, for the round trip, receives the echo); the peer process
 * receives (a sink) or sends each message straight back (an echo). Every message is stamped and
 * checked through the link's {@link MessageTally}s. Owned by one thread; the hot-path methods
 * allocate nothing.
 */
public interface Link extends AutoCloseable {
    /**
     * Claims, stamps in place and commits up to {@code count} messages, then publishes them at
     * once; stops early when the transport is full (back-pressure).
     *
     * @param count messages wanted, at least 1
     * @param length each message's length in bytes, at least 16 (two stamps)
     * @return messages sent, 0 when the transport was full
     */
    int send(int count, int length);

    /**
     * Hands up to {@code limit} received messages to the received tally, reading them in place.
     *
     * @param limit the most to take
     * @return messages taken, 0 when none was there
     */
    int receive(int limit);

    /**
     * Takes up to {@code limit} received messages and sends each one back unchanged, then
     * publishes. The echo waits for room on the way back: at most one message is in flight.
     *
     * @param limit the most to take
     * @return messages echoed
     */
    int echo(int limit);

    /** @return what {@link #send} sent */
    MessageTally sent();

    /** @return what {@link #receive} and {@link #echo} took */
    MessageTally received();

    /** Releases the transport (mappings, files, connections); the link is unusable after. */
    @Override
    void close();
}

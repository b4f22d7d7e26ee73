package io.vringj.perf.ring;

/**
 * A base class that puts 64 bytes of padding before a subclass's fields, so the state one
 * benchmark thread writes does not share a cache line with what the other thread reads (false
 * sharing would be measured as the peer's cost).
 *
 * <pre>
 *   header | p0 .. p7 (64 bytes) | subclass fields
 * </pre>
 */
public abstract class PaddedSide {
    // written by no one; only their place in the layout matters
    protected long p0;
    protected long p1;
    protected long p2;
    protected long p3;
    protected long p4;
    protected long p5;
    protected long p6;
    protected long p7;

    /** For subclasses. */
    protected PaddedSide() {
    }
}

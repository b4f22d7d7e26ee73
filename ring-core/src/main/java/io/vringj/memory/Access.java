package io.vringj.memory;

/** What a device wants to do with a range of memory it translates. */
public enum Access {
    /** The device reads the range (a device-readable buffer, the descriptor table, the avail ring). */
    READ,
    /** The device writes the range (a device-writable buffer, the used ring). */
    WRITE
}

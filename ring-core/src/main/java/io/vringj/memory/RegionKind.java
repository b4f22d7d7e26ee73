package io.vringj.memory;

/**
 * Who may see a {@link MemoryRegion}.
 *
 * <p>A protected guest (SEV, TDX, POWER secure VMs, s390 PV) keeps most of its memory
 * {@link #SECURE}: encrypted or otherwise private, so the host and its devices cannot read
 * it. It shares a small part, {@link #SHARED}, through which all device I/O is bounced.
 * An ordinary guest's memory is all {@code SHARED}.
 */
public enum RegionKind {
    /** Private to the guest; a device must never touch it. */
    SECURE,
    /** Readable and writable by the host and its devices. */
    SHARED
}

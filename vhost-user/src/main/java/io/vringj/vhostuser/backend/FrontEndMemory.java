package io.vringj.vhostuser.backend;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;

/**
 * The front end's user addresses, through whatever memory table is current: the downstream of
 * the device IOTLB (an UPDATE maps an IOVA range to a {@code uaddr}). The connection thread
 * swaps the table only while every queue worker is stopped; workers read it through a volatile.
 */
final class FrontEndMemory implements AddressSpace {
    /** Written by the connection thread between worker runs; volatile so a restarted worker sees it. */
    private volatile MemoryTable table;

    void setTable(MemoryTable table) {
        this.table = table;
    }

    @Override
    public void translate(long busAddress, long length, Access access, TranslationSink sink) throws TranslationException {
        MemoryTable t = table;
        if (t == null) {
            throw new TranslationException(TranslationException.Kind.FAULT, busAddress, length, access,
                "no memory table yet (SET_MEM_TABLE)");
        }
        t.userSpace().translate(busAddress, length, access, sink);
    }

    @Override
    public String toString() {
        return "FrontEndMemory[" + table + "]";
    }
}

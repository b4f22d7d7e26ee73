package io.vringj.vhostuser.frontend;

import io.vringj.vhostuser.linux.Libc;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The front end's guest memory: a sealed memfd, mapped once, addresses consistent. */
class SharedMemoryTest {

    @Test
    void isAMemfdThatCanNeitherShrinkNorGrowMappedAtItsGuestPhysicalBase() throws Exception {
        String name = "vringj-shared-memory-test";
        try (SharedMemory memory = SharedMemory.create(name, 0x4000_0000L, 64 * 1024)) {
            int seals = Libc.seals(memory.fd());
            int wanted = Libc.F_SEAL_SHRINK | Libc.F_SEAL_GROW | Libc.F_SEAL_SEAL;
            assertEquals(wanted, seals & wanted, "seals 0x" + Integer.toHexString(seals));
            assertEquals(64 * 1024, Libc.fileSize(memory.fd()));
            assertEquals(1, Resources.memfdMappings(name));

            MemorySegment a = memory.allocate(100, 8);
            MemorySegment b = memory.allocate(16, 4096);
            long gpaB = memory.memory().guestPhysicalAddressOf(b);
            assertEquals(0x4000_0000L, memory.memory().guestPhysicalAddressOf(a));
            assertEquals(0x4000_1000L, gpaB, "aligned to its page");
            assertEquals(b.address(), memory.userAddressOf(gpaB), "user address and guest-physical agree");
            b.set(ValueLayout.JAVA_LONG, 0, 42);
            assertEquals(42, memory.memory().slice(gpaB, 8).get(ValueLayout.JAVA_LONG, 0));

            assertNull(memory.tryAllocate(64 * 1024, 8), "more than is left");
            IllegalStateException full = assertThrows(IllegalStateException.class, () -> memory.allocate(64 * 1024, 8));
            assertTrue(full.getMessage().contains("do not fit"), full.getMessage());
            assertThrows(IllegalArgumentException.class, () -> memory.allocate(8, 3));
            memory.close();
            assertEquals(0, Resources.memfdMappings(name), "close unmaps");
            assertFalse(a.scope().isAlive(), "and later accesses fail instead of touching unmapped memory");
        }
    }
}

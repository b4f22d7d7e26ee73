package io.vringj.swiotlb;

import static io.vringj.swiotlb.SwiotlbPool.SEGMENT_SIZE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.dma.CoherentBuffer;
import io.vringj.dma.DirectDmaOps;
import io.vringj.dma.DmaDirection;
import io.vringj.dma.DmaMappingException;
import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.memory.RegionKind;
import io.vringj.memory.TranslationException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class SwiotlbDmaOpsTest {
    static final long SECURE_BASE = 0;
    static final long SHARED_BASE = 0x1_0000_0000L;
    static final long POOL_BASE = SHARED_BASE;
    static final long RESTRICTED_BASE = SHARED_BASE + SEGMENT_SIZE;
    static final long SHARED_DATA = SHARED_BASE + 2 * SEGMENT_SIZE;

    private final GuestMemory memory = GuestMemory.builder()
        .allocate(SECURE_BASE, 1L << 20, RegionKind.SECURE)
        .allocate(SHARED_BASE, 4 * SEGMENT_SIZE, RegionKind.SHARED)
        .build();
    private final SwiotlbPool pool = SwiotlbPool.builder(memory, POOL_BASE, SEGMENT_SIZE).areas(1).build();
    private final SwiotlbPool restricted = SwiotlbPool.builder(memory, RESTRICTED_BASE, SEGMENT_SIZE).areas(1).build();
    private final DirectDmaOps direct = new DirectDmaOps(memory);

    @AfterEach
    void close() {
        memory.close();
    }

    @Test
    void forceBounceBouncesEvenBuffersTheDeviceCouldReach() throws Exception {
        SwiotlbDmaOps ops = SwiotlbDmaOps.builder(pool, direct, SwiotlbDmaOps.Mode.FORCE_BOUNCE).build();
        MemorySegment shared = memory.slice(SHARED_DATA, 100);
        shared.fill((byte) 3);
        long bus = ops.map(shared, DmaDirection.TO_DEVICE);
        assertTrue(pool.owns(bus), "bounced into the pool");
        assertEquals(3, memory.slice(bus, 100).get(ValueLayout.JAVA_BYTE, 99));
        ops.unmap(bus, 100, DmaDirection.TO_DEVICE);
        assertEquals(0, pool.slotsInUse());
    }

    @Test
    void bounceWhenUnreachableBouncesOnlySecureOrOutOfMaskBuffers() throws Exception {
        SwiotlbDmaOps ops = SwiotlbDmaOps.builder(pool, direct, SwiotlbDmaOps.Mode.BOUNCE_WHEN_UNREACHABLE).build();
        MemorySegment shared = memory.slice(SHARED_DATA, 100);
        long direct = ops.map(shared, DmaDirection.FROM_DEVICE);
        assertEquals(SHARED_DATA, direct, "a shared buffer goes straight to the device");
        assertEquals(0, pool.slotsInUse());
        ops.unmap(direct, 100, DmaDirection.FROM_DEVICE);

        MemorySegment secure = memory.slice(SECURE_BASE + 4096, 100);
        secure.fill((byte) 8);
        long bounced = ops.map(secure, DmaDirection.BIDIRECTIONAL);
        assertTrue(pool.owns(bounced));
        memory.slice(bounced, 100).fill((byte) 9);
        ops.syncForCpu(bounced, 100, DmaDirection.BIDIRECTIONAL);
        assertEquals(9, secure.get(ValueLayout.JAVA_BYTE, 0));
        ops.unmap(bounced, 100, DmaDirection.BIDIRECTIONAL);
        assertEquals(0, pool.slotsInUse());

        SwiotlbDmaOps narrow = SwiotlbDmaOps.builder(pool, this.direct, SwiotlbDmaOps.Mode.BOUNCE_WHEN_UNREACHABLE)
            .dmaMask(0xFFFF_FFFFL).build();
        assertFalse(narrow.reachable(SHARED_DATA, 100), "above a 32-bit mask");
        long high = narrow.map(shared, DmaDirection.TO_DEVICE);
        assertTrue(pool.owns(high), "a device with a 32-bit mask cannot reach 4 GiB and up; the buffer bounces");
        narrow.unmap(high, 100, DmaDirection.TO_DEVICE);
    }

    @Test
    void refusesEmptyBuffersAndMemoryOutsideTheGuest() {
        SwiotlbDmaOps ops = SwiotlbDmaOps.builder(pool, direct, SwiotlbDmaOps.Mode.FORCE_BOUNCE).build();
        assertEquals(DmaMappingException.Reason.EMPTY, assertThrows(DmaMappingException.class,
            () -> ops.map(memory.slice(SECURE_BASE, 10).asSlice(0, 0), DmaDirection.TO_DEVICE)).reason());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment foreign = arena.allocate(64);
            assertEquals(DmaMappingException.Reason.NOT_GUEST_MEMORY, assertThrows(DmaMappingException.class,
                () -> ops.map(foreign, DmaDirection.TO_DEVICE)).reason());
        }
        assertEquals(0, pool.slotsInUse());
    }

    @Test
    void unmapOfAnAddressNeitherLayerKnowsNamesIt() {
        SwiotlbDmaOps ops = SwiotlbDmaOps.builder(pool, direct, SwiotlbDmaOps.Mode.FORCE_BOUNCE).build();
        IllegalArgumentException inPool = assertThrows(IllegalArgumentException.class,
            () -> ops.unmap(POOL_BASE + 8192, 10, DmaDirection.TO_DEVICE));
        assertTrue(inPool.getMessage().contains("0x100002000"), inPool.getMessage());
        IllegalArgumentException nowhere = assertThrows(IllegalArgumentException.class,
            () -> ops.unmap(0x7000_0000_0000L, 10, DmaDirection.TO_DEVICE));
        assertTrue(nowhere.getMessage().contains("0x700000000000"), nowhere.getMessage());
    }

    @Test
    void minAlignMaskOfTheDeviceIsKept() throws Exception {
        SwiotlbDmaOps ops = SwiotlbDmaOps.builder(pool, direct, SwiotlbDmaOps.Mode.FORCE_BOUNCE).minAlignMask(0xFFF).build();
        long bus = ops.map(memory.slice(SECURE_BASE + 0x5A30, 512), DmaDirection.TO_DEVICE);
        assertEquals(0xA30, bus & 0xFFF);
        ops.unmap(bus, 512, DmaDirection.TO_DEVICE);
        assertThrows(IllegalArgumentException.class,
            () -> SwiotlbDmaOps.builder(pool, direct, SwiotlbDmaOps.Mode.FORCE_BOUNCE).minAlignMask(0x1000));
    }

    @Test
    void coherentMemoryComesFromTheRestrictedPoolWhereTheDeviceReachesIt() throws Exception {
        SwiotlbDmaOps ops = SwiotlbDmaOps.builder(pool, direct, SwiotlbDmaOps.Mode.FORCE_BOUNCE)
            .coherentPool(restricted).build();
        CoherentBuffer ring = ops.allocCoherent(10_000);
        assertTrue(restricted.owns(ring.busAddress()));
        assertEquals(0, ring.busAddress() & 0xFFF, "page-aligned");
        assertEquals(10_000, ring.memory().byteSize());
        // the CPU and a protected device see the same bytes, with no sync
        ring.memory().set(ValueLayout.JAVA_INT, 40, 0xCAFE);
        MemorySegment deviceView = AddressSpace.sharedOnly(memory).translate(ring.busAddress(), 10_000, Access.READ);
        assertEquals(0xCAFE, deviceView.get(ValueLayout.JAVA_INT, 40));
        assertEquals(0, pool.slotsInUse(), "the bounce pool is not used for rings");
        ops.freeCoherent(ring);
        assertEquals(0, restricted.slotsInUse());
        assertThrows(IllegalArgumentException.class, () -> ops.freeCoherent(ring));
        assertEquals(DmaMappingException.Reason.TOO_LARGE,
            assertThrows(DmaMappingException.class, () -> ops.allocCoherent(SEGMENT_SIZE + 1)).reason());
    }

    @Test
    void withoutARestrictedPoolCoherentAllocationsGoToTheInnerOps() {
        SwiotlbDmaOps ops = SwiotlbDmaOps.builder(pool, direct, SwiotlbDmaOps.Mode.FORCE_BOUNCE).build();
        DmaMappingException e = assertThrows(DmaMappingException.class, () -> ops.allocCoherent(4096));
        assertTrue(e.getMessage().contains("no coherent allocator"), e.getMessage());
    }

    @Test
    void aProtectedDeviceReachesBouncedBuffersButNotTheOriginals() throws Exception {
        SwiotlbDmaOps ops = SwiotlbDmaOps.builder(pool, direct, SwiotlbDmaOps.Mode.FORCE_BOUNCE).build();
        AddressSpace device = AddressSpace.sharedOnly(memory);
        MemorySegment secure = memory.slice(SECURE_BASE + 8192, 256);
        long bus = ops.map(secure, DmaDirection.FROM_DEVICE);
        device.translate(bus, 256, Access.WRITE).fill((byte) 0x77);
        TranslationException fault = assertThrows(TranslationException.class,
            () -> device.translate(SECURE_BASE + 8192, 256, Access.WRITE));
        assertEquals(TranslationException.Kind.FAULT, fault.kind());
        ops.unmap(bus, 256, DmaDirection.FROM_DEVICE);
        assertEquals(0x77, secure.get(ValueLayout.JAVA_BYTE, 255));
    }
}

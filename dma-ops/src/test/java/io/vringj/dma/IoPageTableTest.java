package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class IoPageTableTest {
    @Test
    void mapsEachPageWithItsPermissionAndUnmapsThem() {
        IoPageTable t = new IoPageTable();
        long iova = 0x7F_FFFF_E000L; // crosses a 2 MiB and a 1 GiB boundary on the second page
        t.map(iova, 0x5000_0000L, 3, Permission.WO);
        assertEquals(0x5000_0000L | IoPageTable.START | 2, t.lookup(iova), "the first page is marked as a mapping's start");
        assertTrue(IoPageTable.isMappingStart(t.lookup(iova)));
        assertFalse(IoPageTable.isMappingStart(t.lookup(iova + 0x1000)));
        assertEquals(0x5000_2000L | 2, t.lookup(iova + 0x2000 + 0x123));
        assertEquals(Permission.WO, IoPageTable.permissionOf(t.lookup(iova + 0x1000)));
        assertEquals(0, t.lookup(iova + 0x3000));
        assertEquals(3, t.mappedPages());
        t.unmap(iova, 3);
        assertEquals(0, t.lookup(iova + 0x1000));
        assertEquals(0, t.mappedPages());
    }

    @Test
    void refusesToMapAPageTwiceAndChangesNothing() {
        IoPageTable t = new IoPageTable();
        t.map(0x3000, 0x9000, 1, Permission.RO);
        assertThrows(IllegalArgumentException.class, () -> t.map(0x2000, 0x1000, 2, Permission.RW));
        assertEquals(0, t.lookup(0x2000));
        assertEquals(1, t.mappedPages());
    }

    @Test
    void refusesToUnmapAPageThatIsNotMapped() {
        IoPageTable t = new IoPageTable();
        t.map(0x3000, 0x9000, 1, Permission.RO);
        assertThrows(IllegalArgumentException.class, () -> t.unmap(0x3000, 2));
        assertEquals(0x9000 | IoPageTable.START | 1, t.lookup(0x3000));
    }

    @Test
    void addressesAbove48BitsAreNeverMapped() {
        IoPageTable t = new IoPageTable();
        assertEquals(0, t.lookup(1L << 48));
        assertThrows(IllegalArgumentException.class, () -> t.map(1L << 48, 0, 1, Permission.RO));
    }
}

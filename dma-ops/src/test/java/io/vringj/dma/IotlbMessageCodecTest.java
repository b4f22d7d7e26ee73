package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class IotlbMessageCodecTest {
    @Test
    void roundTripsEveryMessageTypeAndPermission() throws Exception {
        for (IotlbMessage.Type type : IotlbMessage.Type.values()) {
            for (Permission perm : Permission.values()) {
                IotlbMessage m = new IotlbMessage(type, 0xFFFF_FFFF_FFFF_F000L, 0x8000_0000_0000_0000L, -2L, perm);
                byte[] bytes = IotlbMessageCodec.encode(m);
                assertEquals(IotlbMessageCodec.ENCODED_SIZE, bytes.length);
                assertEquals(m, IotlbMessageCodec.decode(bytes));
            }
        }
        IotlbMessage update = IotlbMessage.update(0x1000, 0x2000, 0x3000, Permission.RW);
        assertEquals(update, IotlbMessageCodec.decode(IotlbMessageCodec.encode(update)));
    }

    @Test
    void layoutIsVhostIotlbMsgPaddedTo64Bytes() {
        byte[] bytes = IotlbMessageCodec.encode(IotlbMessage.update(0x1122334455667788L, 0x10, 0x20, Permission.WO));
        MemorySegment s = MemorySegment.ofArray(bytes);
        ValueLayout.OfLong u64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.nativeOrder());
        assertEquals(0x1122334455667788L, s.get(u64, 0));
        assertEquals(0x10, s.get(u64, 8));
        assertEquals(0x20, s.get(u64, 16));
        assertEquals(2, bytes[24], "perm at byte 24");
        assertEquals(2, bytes[25], "type UPDATE (2) at byte 25");
        byte[] padding = Arrays.copyOfRange(bytes, 26, 64);
        assertTrue(Arrays.equals(new byte[38], padding), "padding is zero");
    }

    @Test
    void decodesTheBare32ByteStructThatVhostUserCarries() throws Exception {
        byte[] bytes = Arrays.copyOf(IotlbMessageCodec.encode(IotlbMessage.invalidate(0x5000, 0x1000)), 32);
        assertEquals(IotlbMessage.invalidate(0x5000, 0x1000), IotlbMessageCodec.decode(bytes));
    }

    @Test
    void rejectsATruncatedMessage() {
        byte[] bytes = Arrays.copyOf(IotlbMessageCodec.encode(IotlbMessage.batchBegin()), 31);
        IotlbProtocolException e = assertThrows(IotlbProtocolException.class, () -> IotlbMessageCodec.decode(bytes));
        assertTrue(e.getMessage().contains("31 bytes"), e.getMessage());
        assertThrows(IotlbProtocolException.class, () -> IotlbMessageCodec.decode(new byte[0]));
    }

    @Test
    void rejectsAnUnknownTypeNamingIt() {
        for (int code : new int[] {0, 7, 255}) {
            byte[] bytes = IotlbMessageCodec.encode(IotlbMessage.batchEnd());
            bytes[25] = (byte) code;
            IotlbProtocolException e = assertThrows(IotlbProtocolException.class, () -> IotlbMessageCodec.decode(bytes));
            assertTrue(e.getMessage().contains("type " + code), e.getMessage());
        }
    }

    @Test
    void rejectsAnUnknownPermission() {
        byte[] bytes = IotlbMessageCodec.encode(IotlbMessage.update(0, 1, 0, Permission.RO));
        bytes[24] = 4;
        IotlbProtocolException e = assertThrows(IotlbProtocolException.class, () -> IotlbMessageCodec.decode(bytes));
        assertTrue(e.getMessage().contains("permission 4"), e.getMessage());
    }
}

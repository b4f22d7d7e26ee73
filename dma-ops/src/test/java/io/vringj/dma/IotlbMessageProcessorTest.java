package io.vringj.dma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class IotlbMessageProcessorTest {
    private final GuestMemory memory = GuestMemory.ofShared(0x4000_0000L, 1 << 20);
    private final DeviceIotlb iotlb = new DeviceIotlb(AddressSpace.identity(memory));
    private final IotlbMessageProcessor processor = new IotlbMessageProcessor(iotlb);

    @AfterEach
    void close() {
        memory.close();
    }

    @Test
    void appliesUpdatesAndInvalidations() throws Exception {
        processor.process(IotlbMessage.update(0x1000, 0x1000, 0x4000_0000L, Permission.RO));
        assertTrue(iotlb.covers(0x1800, 1, Access.READ));
        processor.process(IotlbMessage.invalidate(0x1000, 0x1000));
        assertFalse(iotlb.covers(0x1800, 1, Access.READ));
    }

    @Test
    void aBatchIsAppliedAtItsEndInOneEpochStep() throws Exception {
        processor.process(IotlbMessage.batchBegin());
        processor.process(IotlbMessage.update(0x1000, 0x1000, 0x4000_0000L, Permission.RO));
        processor.process(IotlbMessage.update(0x2000, 0x1000, 0x4000_1000L, Permission.RO));
        long epoch = iotlb.epoch();
        assertFalse(iotlb.covers(0x1000, 1, Access.READ), "nothing applies before BATCH_END");
        processor.process(IotlbMessage.batchEnd());
        assertTrue(iotlb.covers(0x1000, 0x2000, Access.READ));
        assertEquals(epoch + 1, iotlb.epoch());
    }

    @Test
    void rejectsZeroSizeUpdateAndInvalidate() {
        IotlbProtocolException u = assertThrows(IotlbProtocolException.class,
            () -> processor.process(IotlbMessage.update(0x1000, 0, 0x4000_0000L, Permission.RO)));
        assertTrue(u.getMessage().contains("size 0"), u.getMessage());
        assertThrows(IotlbProtocolException.class, () -> processor.process(IotlbMessage.invalidate(0x1000, 0)));
        assertEquals(0, iotlb.size());
    }

    @Test
    void rejectsARangeThatWrapsAndAnUpdateWithoutPermission() {
        assertThrows(IotlbProtocolException.class,
            () -> processor.process(IotlbMessage.invalidate(-0x1000L, 0x2000)));
        assertThrows(IotlbProtocolException.class,
            () -> processor.process(IotlbMessage.update(0x1000, 0x1000, 0x4000_0000L, Permission.NONE)));
    }

    @Test
    void rejectsMessagesADeviceNeverReceives() {
        assertThrows(IotlbProtocolException.class, () -> processor.process(IotlbMessage.miss(0x1000, Permission.RO)));
        assertThrows(IotlbProtocolException.class, () -> processor.process(IotlbMessage.accessFail(0x1000, Permission.RO)));
    }

    @Test
    void rejectsBatchMarkersOutOfPlace() throws Exception {
        assertThrows(IotlbProtocolException.class, () -> processor.process(IotlbMessage.batchEnd()));
        processor.process(IotlbMessage.batchBegin());
        assertThrows(IotlbProtocolException.class, () -> processor.process(IotlbMessage.batchBegin()));
        assertTrue(processor.inBatch());
    }

    @Test
    void decodesBytesBeforeApplyingThem() throws Exception {
        byte[] bytes = IotlbMessageCodec.encode(IotlbMessage.update(0x3000, 0x1000, 0x4000_0000L, Permission.WO));
        processor.process(java.lang.foreign.MemorySegment.ofArray(bytes), 0, bytes.length);
        assertTrue(iotlb.covers(0x3000, 0x1000, Access.WRITE));
        bytes[25] = 9;
        assertThrows(IotlbProtocolException.class,
            () -> processor.process(java.lang.foreign.MemorySegment.ofArray(bytes), 0, bytes.length));
    }
}

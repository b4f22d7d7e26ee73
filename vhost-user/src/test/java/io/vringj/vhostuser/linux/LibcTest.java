package io.vringj.vhostuser.linux;

import io.vringj.device.rng.EntropySource;
import io.vringj.vhostuser.EventFd;
import io.vringj.vhostuser.NativeCallException;
import io.vringj.vhostuser.ProtocolException;
import io.vringj.vhostuser.VhostUserChannel;
import io.vringj.vhostuser.VhostUserMessage;
import io.vringj.vhostuser.VhostUserProtocol;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LibcTest {

    @Test
    void passesFdsAsScmRightsWithTheMessage() throws Exception {
        int[] pair = Libc.socketPair();
        try (Arena arena = Arena.ofConfined();
             VhostUserChannel a = new VhostUserChannel(pair[0]);
             VhostUserChannel b = new VhostUserChannel(pair[1]);
             EventFd event = EventFd.create()) {
            VhostUserMessage out = new VhostUserMessage(arena);
            out.header(VhostUserProtocol.SET_VRING_CALL, 0, 8).putU64(0, 0);
            a.write(out, event.fd());

            VhostUserMessage in = new VhostUserMessage(arena);
            assertTrue(b.read(in));
            assertEquals(VhostUserProtocol.SET_VRING_CALL, in.request());
            assertEquals(1, in.receivedFdCount());
            // the received fd is a second reference to the same eventfd: a signal through it is seen here
            try (EventFd received = EventFd.adopt(in.takeFd(0))) {
                received.signal();
                received.signal();
                assertEquals(2, event.drain());
            }
        }
    }

    @Test
    void readReportsEndOfStreamAtAMessageBoundary() throws Exception {
        int[] pair = Libc.socketPair();
        try (Arena arena = Arena.ofConfined(); VhostUserChannel b = new VhostUserChannel(pair[1])) {
            Libc.close(pair[0]);
            assertFalse(b.read(new VhostUserMessage(arena)));
        }
    }

    @Test
    void rejectsAStreamThatEndsInsideAPayload() throws Exception {
        int[] pair = Libc.socketPair();
        try (Arena arena = Arena.ofConfined(); VhostUserChannel b = new VhostUserChannel(pair[1])) {
            MemorySegment header = arena.allocate(12);
            header.set(ValueLayout.JAVA_INT, 0, VhostUserProtocol.SET_FEATURES);
            header.set(ValueLayout.JAVA_INT, 4, VhostUserProtocol.VERSION);
            header.set(ValueLayout.JAVA_INT, 8, 8);
            Libc.write(pair[0], header, 12);
            Libc.write(pair[0], header, 3);
            Libc.close(pair[0]);
            ProtocolException e = assertThrows(ProtocolException.class, () -> b.read(new VhostUserMessage(arena)));
            assertTrue(e.getMessage().contains("3 bytes into a 8-byte SET_FEATURES payload"), e.getMessage());
        }
    }

    @Test
    void eventFdCountsSignalsAndDrainResetsIt() throws Exception {
        try (EventFd event = EventFd.create()) {
            assertEquals(0, event.drain(), "a fresh non-blocking eventfd has nothing to read");
            event.signal();
            event.signal();
            event.signal();
            assertEquals(3, event.drain());
            assertEquals(0, event.drain());
        }
    }

    @Test
    void pollSeesAReadableEventFdAndTimesOutOnAQuietOne() throws Exception {
        try (Arena arena = Arena.ofConfined(); EventFd quiet = EventFd.create(); EventFd loud = EventFd.create()) {
            MemorySegment fds = arena.allocate(16, 8);
            fds.set(ValueLayout.JAVA_INT, 0, quiet.fd());
            fds.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            fds.set(ValueLayout.JAVA_INT, 8, loud.fd());
            fds.set(ValueLayout.JAVA_SHORT, 12, Libc.POLLIN);
            assertEquals(0, Libc.poll(fds, 2, 10));
            loud.signal();
            assertEquals(1, Libc.poll(fds, 2, 1000));
            assertEquals(0, fds.get(ValueLayout.JAVA_SHORT, 6));
            assertEquals(Libc.POLLIN, fds.get(ValueLayout.JAVA_SHORT, 14));
        }
    }

    @Test
    void aSealedMemfdCannotShrinkOrGrowAndSaysSo() throws Exception {
        int fd = Libc.sealedMemfd("libc-sealed", 8192);
        try {
            int seals = Libc.seals(fd);
            assertEquals(Libc.F_SEAL_SHRINK | Libc.F_SEAL_GROW | Libc.F_SEAL_SEAL, seals);
            NativeCallException shrink = assertThrows(NativeCallException.class, () -> Libc.ftruncate(fd, 0));
            assertTrue(shrink.getMessage().contains("ftruncate"), shrink.getMessage());
            assertThrows(NativeCallException.class, () -> Libc.ftruncate(fd, 16384));
            assertEquals(8192, Libc.fileSize(fd));
        } finally {
            Libc.close(fd);
        }
    }

    @Test
    void aPlainMemfdIsNotSealedAgainstShrinkingAndCanShrink() throws Exception {
        int fd = Libc.memfd("libc-plain", 8192);
        try {
            // without MFD_ALLOW_SEALING the kernel sets F_SEAL_SEAL alone: no other seal can be added
            assertEquals(Libc.F_SEAL_SEAL, Libc.seals(fd));
            Libc.ftruncate(fd, 0);
            assertEquals(0, Libc.fileSize(fd));
        } finally {
            Libc.close(fd);
        }
    }

    @Test
    void setNonBlockingMakesAFullEventFdFailFastInsteadOfWaiting() throws Exception {
        int fd = Libc.eventfd(Libc.EFD_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            Libc.setNonBlocking(fd);
            assertTrue((Libc.fcntl(fd, Libc.F_GETFL, 0) & Libc.O_NONBLOCK) != 0);
            MemorySegment value = arena.allocate(8, 8);
            value.set(ValueLayout.JAVA_LONG, 0, 0xffff_ffff_ffff_fffeL);
            assertEquals(8, Libc.write(fd, value, 8), "the counter takes up to 2^64-2");
            assertEquals(-1, Libc.write(fd, value, 8), "a full non-blocking eventfd reports EAGAIN as -1");
        } finally {
            Libc.close(fd);
        }
    }

    @Test
    void twoMappingsOfOneMemfdShareTheirBytes() throws Exception {
        int fd = Libc.memfd("libc-test", 8192);
        long a = Libc.mmapShared(fd, 8192);
        long b = Libc.mmapShared(fd, 8192);
        try {
            MemorySegment sa = MemorySegment.ofAddress(a).reinterpret(8192);
            MemorySegment sb = MemorySegment.ofAddress(b).reinterpret(8192);
            sa.set(ValueLayout.JAVA_LONG, 4096, 0x1122334455667788L);
            assertEquals(0x1122334455667788L, sb.get(ValueLayout.JAVA_LONG, 4096));
        } finally {
            Libc.munmap(a, 8192);
            Libc.munmap(b, 8192);
            Libc.close(fd);
        }
    }

    @Test
    void failedCallNamesTheCallAndErrno(@TempDir Path dir) {
        String path = dir.resolve("no-such-dir").resolve("sock").toString();
        NativeCallException e = assertThrows(NativeCallException.class, () -> {
            int fd = Libc.socket();
            try {
                Libc.bind(fd, path);
            } finally {
                Libc.close(fd);
            }
        });
        assertEquals("bind", e.call());
        assertEquals(2, e.errno());
        assertTrue(e.getMessage().startsWith("bind failed: errno 2 (ENOENT)"), e.getMessage());
        assertTrue(e.getMessage().contains(path), e.getMessage());
    }

    @Test
    void closingAClosedFdIsEbadf() throws Exception {
        int fd = Libc.eventfd(0);
        Libc.close(fd);
        NativeCallException e = assertThrows(NativeCallException.class, () -> Libc.close(fd));
        assertEquals("close", e.call());
        assertEquals("EBADF", NativeCallException.errnoName(e.errno()));
    }

    @Test
    void rejectsASocketPathLongerThanSunPath(@TempDir Path dir) throws Exception {
        String path = dir.resolve("x".repeat(120)).toString();
        int fd = Libc.socket();
        try {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Libc.bind(fd, path));
            assertTrue(e.getMessage().contains("1..107 bytes"), e.getMessage());
            assertFalse(Files.exists(Path.of(path)));
        } finally {
            Libc.close(fd);
        }
    }

    @Test
    void deterministicEntropyIsAPureFunctionOfSeedAndPosition() {
        byte[] first = new byte[37];
        byte[] second = new byte[37];
        EntropySource s = EntropySource.deterministic(42);
        s.fill(first, 10);
        s.fill(first, 27);
        byte[] expected = new byte[27];
        for (int i = 0; i < 27; i++) {
            expected[i] = EntropySource.DeterministicEntropy.byteAt(42, 10 + i);
        }
        assertArrayEquals(expected, java.util.Arrays.copyOf(first, 27));
        EntropySource.deterministic(43).fill(second, 37);
        assertFalse(java.util.Arrays.equals(first, second), "another seed gives another stream");
    }
}

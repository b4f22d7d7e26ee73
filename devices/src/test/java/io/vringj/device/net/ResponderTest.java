package io.vringj.device.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The responder answers hand-built ARP and ICMP echo requests field by field, and ignores anything else. */
class ResponderTest {
    static final long OUR_MAC = 0x52_54_00_12_34_56L;
    static final int OUR_IP = 0x0A_00_02_01; // 10.0.2.1
    static final long PEER_MAC = 0x52_54_00_AB_CD_EFL;
    static final int PEER_IP = 0x0A_00_02_0F; // 10.0.2.15

    static byte[] arpRequest(int target) {
        byte[] b = new byte[42];
        NetRig.putMac(b, 0, Ethernet.BROADCAST);
        NetRig.putMac(b, 6, PEER_MAC);
        put16(b, 12, 0x0806);
        put16(b, 14, 1);
        put16(b, 16, 0x0800);
        b[18] = 6;
        b[19] = 4;
        put16(b, 20, 1);
        NetRig.putMac(b, 22, PEER_MAC);
        put32(b, 28, PEER_IP);
        // target hardware address unknown: zero
        put32(b, 38, target);
        return b;
    }

    /** An echo request from the peer, with {@code dataLength} bytes of data and right checksums. */
    static byte[] echoRequest(long dstMac, int dstIp, int dataLength, int options) {
        int ihl = 20 + 4 * options;
        int icmpLength = 8 + dataLength;
        byte[] b = new byte[14 + ihl + icmpLength];
        NetRig.putMac(b, 0, dstMac);
        NetRig.putMac(b, 6, PEER_MAC);
        put16(b, 12, 0x0800);
        b[14] = (byte) (0x40 | ihl / 4);
        b[15] = (byte) 0x10; // TOS
        put16(b, 16, ihl + icmpLength);
        put16(b, 18, 0x1c46);
        put16(b, 20, 0x4000); // DF, not a fragment
        b[22] = 64;
        b[23] = 1;
        put32(b, 26, PEER_IP);
        put32(b, 30, dstIp);
        for (int i = 0; i < 4 * options; i++) {
            b[34 + i] = 1; // NOP options
        }
        put16(b, 24, ~NetRig.referenceSum(b, 14, ihl) & 0xFFFF);
        int icmp = 14 + ihl;
        b[icmp] = 8;
        put16(b, icmp + 4, 0x0BAD);
        put16(b, icmp + 6, 0x0042);
        for (int i = 0; i < dataLength; i++) {
            b[icmp + 8 + i] = (byte) (i * 7 + 3);
        }
        put16(b, icmp + 2, ~NetRig.referenceSum(b, icmp, icmpLength) & 0xFFFF);
        return b;
    }

    static void checkArpReply(byte[] r) {
        assertEquals(42, r.length);
        assertEquals(PEER_MAC, mac(r, 0), "Ethernet destination: the asker");
        assertEquals(OUR_MAC, mac(r, 6), "Ethernet source: us");
        assertEquals(0x0806, NetRig.u16(r, 12));
        assertEquals(1, NetRig.u16(r, 14), "htype Ethernet");
        assertEquals(0x0800, NetRig.u16(r, 16), "ptype IPv4");
        assertEquals(6, r[18]);
        assertEquals(4, r[19]);
        assertEquals(2, NetRig.u16(r, 20), "oper reply");
        assertEquals(OUR_MAC, mac(r, 22), "sender hardware address: us");
        assertEquals(OUR_IP, u32(r, 28), "sender protocol address: us");
        assertEquals(PEER_MAC, mac(r, 32), "target hardware address: the asker");
        assertEquals(PEER_IP, u32(r, 38), "target protocol address: the asker");
    }

    static void checkEchoReply(byte[] request, byte[] r) {
        int ihl = (request[14] & 0xF) * 4;
        int icmpLength = NetRig.u16(request, 16) - ihl;
        assertEquals(14 + 20 + icmpLength, r.length);
        assertEquals(PEER_MAC, mac(r, 0));
        assertEquals(OUR_MAC, mac(r, 6));
        assertEquals(0x0800, NetRig.u16(r, 12));
        assertEquals(0x45, r[14] & 0xFF, "IPv4, no options");
        assertEquals(request[15], r[15], "TOS kept");
        assertEquals(20 + icmpLength, NetRig.u16(r, 16), "total length");
        assertEquals(NetRig.u16(request, 18), NetRig.u16(r, 18), "identification kept");
        assertEquals(0, NetRig.u16(r, 20), "no flags, not a fragment");
        assertEquals(64, r[22] & 0xFF, "TTL");
        assertEquals(1, r[23], "ICMP");
        assertEquals(OUR_IP, u32(r, 26), "source: us");
        assertEquals(PEER_IP, u32(r, 30), "destination: the asker");
        assertEquals(0xFFFF, NetRig.referenceSum(r, 14, 20), "IPv4 header checksum");
        byte[] header = Arrays.copyOfRange(r, 14, 34);
        header[10] = 0;
        header[11] = 0;
        assertEquals(~NetRig.referenceSum(header, 0, 20) & 0xFFFF, NetRig.u16(r, 24));
        int icmp = 34;
        assertEquals(0, r[icmp], "type echo reply");
        assertEquals(0, r[icmp + 1], "code 0");
        assertEquals(0xFFFF, NetRig.referenceSum(r, icmp, icmpLength), "ICMP checksum");
        byte[] zeroed = Arrays.copyOfRange(r, icmp, icmp + icmpLength);
        zeroed[2] = 0;
        zeroed[3] = 0;
        assertEquals(~NetRig.referenceSum(zeroed, 0, icmpLength) & 0xFFFF, NetRig.u16(r, icmp + 2));
        assertArrayEquals(Arrays.copyOfRange(request, 14 + ihl + 4, 14 + ihl + icmpLength),
            Arrays.copyOfRange(r, icmp + 4, icmp + icmpLength), "identifier, sequence and data kept");
    }

    private static long mac(byte[] b, int at) {
        long m = 0;
        for (int i = 0; i < 6; i++) {
            m = m << 8 | (b[at + i] & 0xFF);
        }
        return m;
    }

    private static int u32(byte[] b, int at) {
        return NetRig.u16(b, at) << 16 | NetRig.u16(b, at + 2);
    }

    static void put16(byte[] b, int at, int v) {
        b[at] = (byte) (v >>> 8);
        b[at + 1] = (byte) v;
    }

    static void put32(byte[] b, int at, int v) {
        put16(b, at, v >>> 16);
        put16(b, at + 2, v);
    }

    private record Run(List<byte[]> replies, Responder responder, NetQueuePair pair) {
    }

    private static Run run(byte[]... requests) throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(false, true, false), 16)) {
            NetDriver driver = rig.driver(2048, 2048);
            NetQueuePair pair = rig.pair(NetDevice.responder(OUR_MAC, OUR_IP));
            for (byte[] r : requests) {
                NetRig.send(driver, r);
            }
            driver.flush();
            NetRig.drain(pair);
            return new Run(NetRig.receiveAll(driver), (Responder) pair.handler(), pair);
        }
    }

    @Test
    void answersAnArpRequestForItsAddress() throws Exception {
        Run run = run(arpRequest(OUR_IP));
        assertEquals(1, run.replies().size());
        checkArpReply(run.replies().get(0));
        assertEquals(1, run.responder().arpReplies());
    }

    @Test
    void answersAnEchoRequestEvenOddOrWithOptions() throws Exception {
        byte[] even = echoRequest(OUR_MAC, OUR_IP, 56, 0);
        byte[] odd = echoRequest(OUR_MAC, OUR_IP, 37, 0);
        byte[] options = echoRequest(OUR_MAC, OUR_IP, 100, 2);
        byte[] empty = echoRequest(OUR_MAC, OUR_IP, 0, 0);
        Run run = run(even, odd, options, empty);
        assertEquals(4, run.replies().size());
        checkEchoReply(even, run.replies().get(0));
        checkEchoReply(odd, run.replies().get(1));
        checkEchoReply(options, run.replies().get(2));
        checkEchoReply(empty, run.replies().get(3));
        assertEquals(4, run.responder().echoReplies());
    }

    @Test
    void answersAnEchoRequestPaddedToTheEthernetMinimum() throws Exception {
        byte[] request = echoRequest(OUR_MAC, OUR_IP, 4, 0);
        byte[] padded = Arrays.copyOf(request, 60); // trailing padding is not part of the datagram
        padded[59] = 0x77;
        Run run = run(padded);
        assertEquals(1, run.replies().size());
        checkEchoReply(request, run.replies().get(0));
    }

    @Test
    void ignoresWhatIsNotARequestForIt() throws Exception {
        byte[] otherIp = arpRequest(OUR_IP + 1);
        byte[] arpReply = arpRequest(OUR_IP);
        put16(arpReply, 20, 2);
        byte[] shortArp = Arrays.copyOf(arpRequest(OUR_IP), 41);
        byte[] otherMac = echoRequest(PEER_MAC, OUR_IP, 8, 0);
        byte[] otherDestination = echoRequest(OUR_MAC, OUR_IP + 1, 8, 0);
        byte[] badIpChecksum = echoRequest(OUR_MAC, OUR_IP, 8, 0);
        badIpChecksum[24] ^= 1;
        byte[] badIcmpChecksum = echoRequest(OUR_MAC, OUR_IP, 8, 0);
        badIcmpChecksum[36] ^= 1;
        byte[] fragment = echoRequest(OUR_MAC, OUR_IP, 8, 0);
        put16(fragment, 20, 0x2000); // more fragments
        put16(fragment, 24, 0);
        put16(fragment, 24, ~NetRig.referenceSum(fragment, 14, 20) & 0xFFFF);
        byte[] truncated = echoRequest(OUR_MAC, OUR_IP, 64, 0);
        truncated = Arrays.copyOf(truncated, truncated.length - 1); // total length says one byte more
        byte[] reply = echoRequest(OUR_MAC, OUR_IP, 8, 0);
        reply[34] = 0;
        put16(reply, 36, 0);
        put16(reply, 36, ~NetRig.referenceSum(reply, 34, 16) & 0xFFFF);
        byte[] ipv6 = NetRig.frame(80, 3);
        put16(ipv6, 12, 0x86DD);
        Run run = run(otherIp, arpReply, shortArp, otherMac, otherDestination, badIpChecksum, badIcmpChecksum, fragment,
            truncated, reply, ipv6);
        assertEquals(0, run.replies().size());
        assertEquals(11, run.responder().ignored());
        assertEquals(0, run.pair().statistics().totalDrops());
    }

    @Test
    void answersAnEchoRequestScatteredOverOddDescriptors() throws Exception {
        try (NetRig rig = new NetRig(NetRig.features(true, false, false), 16)) {
            NetDriver driver = rig.driver(NetDriver.MIN_RX_BUFFER_WITHOUT_MERGE, 2048);
            NetQueuePair pair = rig.pair(NetDevice.responder(OUR_MAC, OUR_IP));
            byte[] request = echoRequest(OUR_MAC, OUR_IP, 301, 1);
            byte[] payload = NetRig.withHeader(request);
            // the header split 5 + 7, the frame in odd-length pieces: checksums across odd boundaries
            int rest = payload.length - 5 - 7 - 13 - 1 - 31;
            rig.rawTx(payload, new int[] {5, 7, 13, 1, 31, rest}, new int[0]);
            NetRig.drain(pair);
            List<byte[]> replies = NetRig.receiveAll(driver);
            assertEquals(1, replies.size());
            checkEchoReply(request, replies.get(0));
        }
    }

    @Test
    void rejectsAMulticastOrOversizedMac() {
        assertThrows(IllegalArgumentException.class, () -> new Responder(0x01_00_5E_00_00_01L, OUR_IP));
        assertThrows(IllegalArgumentException.class, () -> new Responder(1L << 48, OUR_IP));
        assertThrows(IllegalArgumentException.class, () -> new Responder(0, OUR_IP));
    }

    @Test
    void parsesMacAndIpv4Text() {
        assertEquals(OUR_MAC, Responder.parseMac("52:54:00:12:34:56"));
        assertEquals(OUR_IP, Responder.parseIpv4("10.0.2.1"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Responder.parseIpv4("10.0.2.256"));
        assertTrue(e.getMessage().contains("'256'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Responder.parseMac("52:54:00:12:34"));
        assertThrows(IllegalArgumentException.class, () -> Responder.parseMac("52:54:00:12:34:zz"));
    }
}

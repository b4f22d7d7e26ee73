package io.vringj.device.net;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The {@code responder} mode: one IPv4 host with one MAC address that answers ARP requests for
 * its address [RFC 826] and ICMP echo requests sent to it [RFC 792], so a guest can
 * {@code ping} the JVM. Everything else is ignored and counted.
 *
 * <p>A request is answered only if it is well formed: an ARP request for IPv4 over Ethernet to
 * the broadcast or our MAC; an unfragmented IPv4 datagram to our MAC and address with a right
 * header checksum, carrying an ICMP echo request with a right checksum. The echo reply keeps the
 * identifier, sequence number and data, and has a fresh IPv4 header (no options, TTL 64) with
 * both checksums computed [RFC 1071]. Reads the request in place and writes the reply straight
 * into rx buffers; allocation-free.
 */
public final class Responder implements FrameHandler {
    /** TTL of the replies. */
    static final int TTL = 64;

    private static final VarHandle ARP_REPLIES;
    private static final VarHandle ECHO_REPLIES;
    private static final VarHandle IGNORED;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            ARP_REPLIES = lookup.findVarHandle(Responder.class, "arpReplies", long.class);
            ECHO_REPLIES = lookup.findVarHandle(Responder.class, "echoReplies", long.class);
            IGNORED = lookup.findVarHandle(Responder.class, "ignored", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final long mac;
    private final int address;
    private long arpReplies;
    private long echoReplies;
    private long ignored;

    /**
     * @param mac our MAC address in the low 48 bits, unicast (first octet's low bit clear), not 0
     * @param address our IPv4 address, big-endian in an int (10.0.0.1 is {@code 0x0A000001})
     * @throws IllegalArgumentException if the MAC is not a unicast 48-bit address
     */
    public Responder(long mac, int address) {
        this.mac = checkMac(mac);
        this.address = address;
    }

    /**
     * @param mac a MAC address in the low 48 bits
     * @return {@code mac}
     * @throws IllegalArgumentException if it is not a unicast 48-bit address (first octet's low bit clear, not 0)
     */
    static long checkMac(long mac) {
        if ((mac >>> 48) != 0 || mac == 0 || ((mac >>> 40) & 1) != 0) {
            throw new IllegalArgumentException("MAC 0x" + Long.toHexString(mac) + " is not a unicast 48-bit address "
                + "(low 48 bits, first octet's low bit clear, not zero)");
        }
        return mac;
    }

    /**
     * Parses {@code aa:bb:cc:dd:ee:ff}.
     *
     * @param text the MAC address
     * @return it in the low 48 bits
     * @throws IllegalArgumentException if malformed
     */
    public static long parseMac(String text) {
        String[] parts = text.split(":", -1);
        if (parts.length != 6) {
            throw new IllegalArgumentException("MAC address '" + text + "' must be six hex octets separated by ':'");
        }
        long mac = 0;
        for (String part : parts) {
            if (part.isEmpty() || part.length() > 2) {
                throw new IllegalArgumentException("MAC address '" + text + "' has octet '" + part + "'; each is 1-2 hex digits");
            }
            try {
                mac = mac << 8 | Integer.parseInt(part, 16);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("MAC address '" + text + "' has octet '" + part + "', not hex", e);
            }
        }
        return mac;
    }

    /**
     * Parses a dotted-quad IPv4 address.
     *
     * @param text e.g. {@code 10.0.0.1}
     * @return it as a big-endian int
     * @throws IllegalArgumentException if malformed
     */
    public static int parseIpv4(String text) {
        String[] parts = text.split("\\.", -1);
        if (parts.length != 4) {
            throw new IllegalArgumentException("IPv4 address '" + text + "' must be four decimal octets separated by '.'");
        }
        int address = 0;
        for (String part : parts) {
            int octet;
            try {
                octet = part.length() > 3 ? -1 : Integer.parseInt(part);
            } catch (NumberFormatException e) {
                octet = -1;
            }
            if (octet < 0 || octet > 255) {
                throw new IllegalArgumentException("IPv4 address '" + text + "' has octet '" + part + "'; each is 0..255");
            }
            address = address << 8 | octet;
        }
        return address;
    }

    @Override
    public void onFrame(Frame frame, RxPort rx) {
        int type = frame.getShort(Ethernet.TYPE);
        boolean answered = type == Ethernet.TYPE_ARP ? arp(frame, rx) : type == Ethernet.TYPE_IPV4 && echo(frame, rx);
        if (!answered) {
            // release: pairs with the acquire in ignored(); only this worker writes
            IGNORED.setRelease(this, ignored + 1);
        }
    }

    /** Answers an ARP request for our address; false if it is not one. */
    private boolean arp(Frame frame, RxPort rx) {
        if (frame.length() < Ethernet.ARP_FRAME_LENGTH) {
            return false;
        }
        long destination = frame.getMac(Ethernet.DESTINATION);
        if (destination != Ethernet.BROADCAST && destination != mac
            || frame.getShort(Ethernet.ARP_HTYPE) != 1 || frame.getShort(Ethernet.ARP_PTYPE) != Ethernet.TYPE_IPV4
            || frame.getByte(Ethernet.ARP_HLEN) != 6 || frame.getByte(Ethernet.ARP_PLEN) != 4
            || frame.getShort(Ethernet.ARP_OPER) != Ethernet.ARP_REQUEST || frame.getInt(Ethernet.ARP_TPA) != address) {
            return false;
        }
        long senderMac = frame.getMac(Ethernet.ARP_SHA);
        int senderAddress = frame.getInt(Ethernet.ARP_SPA);
        if (rx.begin(Ethernet.ARP_FRAME_LENGTH)) {
            rx.putMac(Ethernet.DESTINATION, senderMac);
            rx.putMac(Ethernet.SOURCE, mac);
            rx.putShort(Ethernet.TYPE, Ethernet.TYPE_ARP);
            rx.putShort(Ethernet.ARP_HTYPE, 1);
            rx.putShort(Ethernet.ARP_PTYPE, Ethernet.TYPE_IPV4);
            rx.putByte(Ethernet.ARP_HLEN, 6);
            rx.putByte(Ethernet.ARP_PLEN, 4);
            rx.putShort(Ethernet.ARP_OPER, Ethernet.ARP_REPLY);
            rx.putMac(Ethernet.ARP_SHA, mac);
            rx.putInt(Ethernet.ARP_SPA, address);
            rx.putMac(Ethernet.ARP_THA, senderMac);
            rx.putInt(Ethernet.ARP_TPA, senderAddress);
            rx.commit();
            // release: pairs with the acquire in arpReplies(); only this worker writes
            ARP_REPLIES.setRelease(this, arpReplies + 1);
        }
        return true;
    }

    /** Answers an ICMP echo request to us; false if it is not one. */
    private boolean echo(Frame frame, RxPort rx) {
        long length = frame.length();
        if (length < Ethernet.PAYLOAD + Ethernet.IP_HEADER_LENGTH + Ethernet.ICMP_ECHO_HEADER
            || frame.getMac(Ethernet.DESTINATION) != mac) {
            return false;
        }
        int versionIhl = frame.getByte(Ethernet.IP_VERSION_IHL);
        int ihl = (versionIhl & 0xF) * 4;
        int total = frame.getShort(Ethernet.IP_TOTAL_LENGTH);
        if (versionIhl >>> 4 != 4 || ihl < Ethernet.IP_HEADER_LENGTH || total < ihl + Ethernet.ICMP_ECHO_HEADER
            || Ethernet.PAYLOAD + total > length
            || frame.getByte(Ethernet.IP_PROTOCOL) != Ethernet.PROTOCOL_ICMP
            || frame.getInt(Ethernet.IP_DESTINATION) != address
            || (frame.getShort(Ethernet.IP_FLAGS_FRAGMENT) & Ethernet.IP_MF_OFFSET_MASK) != 0
            || frame.onesComplementSum(Ethernet.PAYLOAD, ihl) != 0xFFFF) {
            return false;
        }
        int icmp = Ethernet.PAYLOAD + ihl;
        int icmpLength = total - ihl;
        if (frame.getByte(icmp + Ethernet.ICMP_TYPE) != Ethernet.ICMP_ECHO_REQUEST || frame.getByte(icmp + 1) != 0
            || frame.onesComplementSum(icmp, icmpLength) != 0xFFFF) {
            return false;
        }
        int tos = frame.getByte(Ethernet.PAYLOAD + 1);
        int id = frame.getShort(Ethernet.IP_ID);
        int peer = frame.getInt(Ethernet.IP_SOURCE);
        long peerMac = frame.getMac(Ethernet.SOURCE);
        int replyTotal = Ethernet.IP_HEADER_LENGTH + icmpLength;
        int replyIcmp = Ethernet.PAYLOAD + Ethernet.IP_HEADER_LENGTH;
        if (rx.begin(Ethernet.PAYLOAD + replyTotal)) {
            rx.putMac(Ethernet.DESTINATION, peerMac);
            rx.putMac(Ethernet.SOURCE, mac);
            rx.putShort(Ethernet.TYPE, Ethernet.TYPE_IPV4);
            rx.putByte(Ethernet.IP_VERSION_IHL, 0x45);
            rx.putByte(Ethernet.PAYLOAD + 1, tos);
            rx.putShort(Ethernet.IP_TOTAL_LENGTH, replyTotal);
            rx.putShort(Ethernet.IP_ID, id);
            rx.putShort(Ethernet.IP_FLAGS_FRAGMENT, 0);
            rx.putByte(Ethernet.IP_TTL, TTL);
            rx.putByte(Ethernet.IP_PROTOCOL, Ethernet.PROTOCOL_ICMP);
            rx.putShort(Ethernet.IP_CHECKSUM, ipv4HeaderChecksum(tos, replyTotal, id, address, peer));
            rx.putInt(Ethernet.IP_SOURCE, address);
            rx.putInt(Ethernet.IP_DESTINATION, peer);
            // identifier, sequence and data as they came; type and code 0 add nothing to the sum
            rx.copyFrom(replyIcmp, frame, icmp, icmpLength);
            rx.putShort(replyIcmp + Ethernet.ICMP_TYPE, Ethernet.ICMP_ECHO_REPLY << 8);
            int rest = frame.onesComplementSum(icmp + Ethernet.ICMP_CHECKSUM + 2, icmpLength - Ethernet.ICMP_CHECKSUM - 2);
            rx.putShort(replyIcmp + Ethernet.ICMP_CHECKSUM, ~rest & 0xFFFF);
            rx.commit();
            // release: pairs with the acquire in echoReplies(); only this worker writes
            ECHO_REPLIES.setRelease(this, echoReplies + 1);
        }
        return true;
    }

    /** The checksum of the 20-byte header the reply carries (no options, flags 0, TTL {@link #TTL}, ICMP). */
    static int ipv4HeaderChecksum(int tos, int total, int id, int source, int destination) {
        long sum = (0x45 << 8 | tos) + total + id + (TTL << 8 | Ethernet.PROTOCOL_ICMP)
            + (source >>> 16) + (source & 0xFFFF) + (destination >>> 16) + (destination & 0xFFFF);
        return ~Frame.fold(sum) & 0xFFFF;
    }

    /** @return ARP replies sent */
    public long arpReplies() {
        // acquire: pairs with the release in arp()
        return (long) ARP_REPLIES.getAcquire(this);
    }

    /** @return ICMP echo replies sent */
    public long echoReplies() {
        // acquire: pairs with the release in echo()
        return (long) ECHO_REPLIES.getAcquire(this);
    }

    /** @return frames that were neither an ARP request for us nor an echo request to us */
    public long ignored() {
        // acquire: pairs with the release in onFrame
        return (long) IGNORED.getAcquire(this);
    }

    @Override
    public String summary() {
        return "responder: " + arpReplies() + " ARP replies, " + echoReplies() + " echo replies, " + ignored()
            + " frames ignored";
    }
}

package io.vringj.device.net;

/**
 * Offsets and constants of the Ethernet, ARP, IPv4 and ICMP headers the responder reads and
 * writes [IEEE 802.3, RFC 826, RFC 791, RFC 792]. Offsets are from the start of the Ethernet
 * frame, for an IPv4 header without options where noted.
 *
 * <pre>
 *   0      6      12    14
 *   ┌──────┬──────┬─────┬─────────────────── payload
 *   │ dst  │ src  │type │ ARP (28 bytes) or IPv4 (20+ bytes) → ICMP (8+ bytes)
 *   └──────┴──────┴─────┴───────────────────
 * </pre>
 */
public final class Ethernet {
    /** Destination MAC. */
    public static final int DESTINATION = 0;
    /** Source MAC. */
    public static final int SOURCE = 6;
    /** EtherType (big-endian). */
    public static final int TYPE = 12;
    /** First byte after the Ethernet header. */
    public static final int PAYLOAD = 14;
    /** EtherType of IPv4. */
    public static final int TYPE_IPV4 = 0x0800;
    /** EtherType of ARP. */
    public static final int TYPE_ARP = 0x0806;
    /** The broadcast MAC address. */
    public static final long BROADCAST = 0xFFFF_FFFF_FFFFL;

    // --- ARP for IPv4 over Ethernet [RFC 826], from the frame start ---
    /** ARP hardware type (1 = Ethernet). */
    public static final int ARP_HTYPE = PAYLOAD;
    /** ARP protocol type (0x0800). */
    public static final int ARP_PTYPE = PAYLOAD + 2;
    /** ARP hardware address length (6). */
    public static final int ARP_HLEN = PAYLOAD + 4;
    /** ARP protocol address length (4). */
    public static final int ARP_PLEN = PAYLOAD + 5;
    /** ARP operation: 1 request, 2 reply. */
    public static final int ARP_OPER = PAYLOAD + 6;
    /** Sender hardware address. */
    public static final int ARP_SHA = PAYLOAD + 8;
    /** Sender protocol address. */
    public static final int ARP_SPA = PAYLOAD + 14;
    /** Target hardware address. */
    public static final int ARP_THA = PAYLOAD + 18;
    /** Target protocol address. */
    public static final int ARP_TPA = PAYLOAD + 24;
    /** Length of an ARP frame for IPv4 over Ethernet. */
    public static final int ARP_FRAME_LENGTH = PAYLOAD + 28;
    /** ARP request. */
    public static final int ARP_REQUEST = 1;
    /** ARP reply. */
    public static final int ARP_REPLY = 2;

    // --- IPv4 [RFC 791], from the frame start ---
    /** Version (high nibble) and header length in 32-bit words (low nibble). */
    public static final int IP_VERSION_IHL = PAYLOAD;
    /** Total length of the datagram (big-endian). */
    public static final int IP_TOTAL_LENGTH = PAYLOAD + 2;
    /** Identification. */
    public static final int IP_ID = PAYLOAD + 4;
    /** Flags (3 bits) and fragment offset (13 bits). */
    public static final int IP_FLAGS_FRAGMENT = PAYLOAD + 6;
    /** Time to live. */
    public static final int IP_TTL = PAYLOAD + 8;
    /** Protocol (1 = ICMP). */
    public static final int IP_PROTOCOL = PAYLOAD + 9;
    /** Header checksum. */
    public static final int IP_CHECKSUM = PAYLOAD + 10;
    /** Source address. */
    public static final int IP_SOURCE = PAYLOAD + 12;
    /** Destination address. */
    public static final int IP_DESTINATION = PAYLOAD + 16;
    /** Length of an IPv4 header without options. */
    public static final int IP_HEADER_LENGTH = 20;
    /** IPv4 protocol number of ICMP. */
    public static final int PROTOCOL_ICMP = 1;
    /** The "more fragments" flag and fragment offset bits of {@link #IP_FLAGS_FRAGMENT}. */
    public static final int IP_MF_OFFSET_MASK = 0x3FFF;

    // --- ICMP [RFC 792], from the ICMP message start ---
    /** ICMP type. */
    public static final int ICMP_TYPE = 0;
    /** ICMP checksum. */
    public static final int ICMP_CHECKSUM = 2;
    /** Bytes of the ICMP echo header (type, code, checksum, identifier, sequence). */
    public static final int ICMP_ECHO_HEADER = 8;
    /** ICMP echo request. */
    public static final int ICMP_ECHO_REQUEST = 8;
    /** ICMP echo reply. */
    public static final int ICMP_ECHO_REPLY = 0;

    private Ethernet() {
    }
}

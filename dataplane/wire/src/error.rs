//! The one vocabulary of "what was wrong with these bytes".
//!
//! Every parser in this crate reports through [`WireError`] so that the data
//! plane can count drops by reason with a single table: the variants are
//! fieldless and [`WireError::index`] maps each to a dense counter slot.

/// Why a frame (or a header being emitted) was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[repr(u8)]
pub enum WireError {
    /// Shorter than an Ethernet header (or its 802.1Q tag).
    #[error("truncated Ethernet header")]
    TruncatedEthernet,
    /// An 802.1ad / QinQ outer tag or a second 802.1Q tag: palisade's ENIs are
    /// single-tagged at most, so stacked tags are refused rather than guessed.
    #[error("stacked VLAN tags (QinQ) are not supported")]
    StackedVlan,
    /// An EtherType other than IPv4, IPv6 or ARP.
    #[error("unsupported EtherType")]
    UnsupportedEtherType,
    /// Shorter than an Ethernet/IPv4 ARP packet.
    #[error("truncated ARP packet")]
    TruncatedArp,
    /// ARP for a hardware or protocol type other than Ethernet/IPv4.
    #[error("ARP for other than Ethernet/IPv4")]
    UnsupportedArp,
    /// Shorter than the IPv4 header or than its total length.
    #[error("truncated IPv4 packet")]
    TruncatedIpv4,
    /// Version field of an IPv4 EtherType frame is not 4.
    #[error("IPv4 header with a version other than 4")]
    Ipv4BadVersion,
    /// IHL below 5 words.
    #[error("IPv4 header length below 20 bytes")]
    Ipv4BadHeaderLength,
    /// Total length below the header length.
    #[error("IPv4 total length below the header length")]
    Ipv4BadTotalLength,
    /// The IPv4 header checksum does not verify.
    #[error("bad IPv4 header checksum")]
    Ipv4BadChecksum,
    /// A fragment that would reassemble past 65535 bytes (ping of death).
    #[error("IPv4 fragment extends past 65535 bytes")]
    Ipv4BadFragment,
    /// Shorter than the IPv6 header or than its payload length.
    #[error("truncated IPv6 packet")]
    TruncatedIpv6,
    /// Version field of an IPv6 EtherType frame is not 6.
    #[error("IPv6 header with a version other than 6")]
    Ipv6BadVersion,
    /// An extension header runs past the end of the payload.
    #[error("truncated IPv6 extension header")]
    TruncatedIpv6Extension,
    /// More extension headers than [`crate::ipv6::MAX_EXTENSION_HEADERS`].
    #[error("IPv6 extension header chain too long")]
    Ipv6ExtensionChainTooLong,
    /// A hop-by-hop options header that is not the first (RFC 8200 §4.1).
    #[error("IPv6 hop-by-hop header not first in the chain")]
    Ipv6MisplacedHopByHop,
    /// Shorter than a TCP header or its data offset.
    #[error("truncated TCP header")]
    TruncatedTcp,
    /// TCP data offset below 5 words.
    #[error("TCP data offset below 20 bytes")]
    TcpBadDataOffset,
    /// A TCP option whose length is impossible or runs past the header.
    #[error("malformed TCP option")]
    TcpBadOption,
    /// Shorter than a UDP header or its length field.
    #[error("truncated UDP datagram")]
    TruncatedUdp,
    /// UDP length field below 8.
    #[error("UDP length below 8 bytes")]
    UdpBadLength,
    /// Shorter than an ICMPv4 header.
    #[error("truncated ICMPv4 message")]
    TruncatedIcmpv4,
    /// Shorter than an ICMPv6 header or the fixed part of its type.
    #[error("truncated ICMPv6 message")]
    TruncatedIcmpv6,
    /// An ICMP error whose quoted packet has no usable IP header and ports.
    #[error("ICMP error quotes no usable packet")]
    BadQuotedPacket,
    /// A neighbour discovery option of length zero or running past the end.
    #[error("malformed neighbour discovery option")]
    BadNdOption,
    /// A neighbour discovery message with a nonzero code or a multicast target.
    #[error("invalid neighbour discovery message")]
    BadNdMessage,
    /// An upper-layer checksum that does not verify.
    #[error("bad upper-layer checksum")]
    BadChecksum,
    /// The output buffer is too small for what is being emitted.
    #[error("buffer too small to emit into")]
    BufferTooSmall,
    /// A value that cannot be represented on the wire (e.g. a payload too long
    /// for a 16-bit length field, a fragment offset not a multiple of 8).
    #[error("value not representable on the wire")]
    Unrepresentable,
}

impl WireError {
    /// Number of variants: the size of a per-reason counter array.
    pub const COUNT: usize = WireError::Unrepresentable as usize + 1;

    /// Dense index in `0..COUNT`, for per-reason drop counters.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

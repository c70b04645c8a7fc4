//! IPv6 headers (RFC 8200) and the extension-header chain.
//!
//! Classification needs the *final* upper-layer protocol and its offset,
//! which for IPv6 means walking hop-by-hop, routing, destination-options and
//! fragment headers. The walk is bounded by [`MAX_EXTENSION_HEADERS`] so a
//! crafted chain cannot make one packet expensive. AH (51) and ESP (50) end
//! the walk and are reported as the upper-layer protocol: ESP is opaque, and
//! a security group can only match AH by its protocol number anyway.

use core::net::Ipv6Addr;

use crate::WireError;

mod field {
    use core::ops::Range;
    pub const VERSION_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LENGTH: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SOURCE: Range<usize> = 8..24;
    pub const DESTINATION: Range<usize> = 24..40;
}

/// Byte offset of the hop limit, for in-place edits.
pub const HOP_LIMIT_OFFSET: usize = field::HOP_LIMIT;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// The most extension headers walked before a packet is refused. Real
/// traffic carries at most two or three; RFC 7112 wants the whole chain in
/// the first fragment, and eight headers is generous for any legitimate use.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Next-header values of the extension headers walked here, and the ones
/// that end a chain.
pub mod next_header {
    /// Hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// No next header: nothing follows.
    pub const NO_NEXT_HEADER: u8 = 59;
    /// Destination options.
    pub const DESTINATION_OPTIONS: u8 = 60;
}

/// A checked view of an IPv6 packet: the fixed header and the payload length
/// are within the buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps untrusted bytes: version and payload length are validated.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let data = buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(WireError::TruncatedIpv6);
        }
        let packet = Packet { buffer };
        if packet.version() != 6 {
            return Err(WireError::Ipv6BadVersion);
        }
        if packet.buffer.as_ref().len() < HEADER_LEN + usize::from(packet.payload_len()) {
            return Err(WireError::TruncatedIpv6);
        }
        Ok(packet)
    }

    /// Version field (6 for a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let b = &self.buffer.as_ref()[field::VERSION_TC_FLOW];
        (b[0] << 4) | (b[1] >> 4)
    }

    /// Flow label.
    #[inline]
    pub fn flow_label(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VERSION_TC_FLOW];
        u32::from_be_bytes([0, b[1] & 0x0f, b[2], b[3]])
    }

    /// Payload length (everything after the fixed header).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::PAYLOAD_LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Next header of the fixed header (the first of the chain).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), field::SOURCE.start)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), field::DESTINATION.start)
    }

    /// The payload (extension headers included) up to the payload length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }
}

/// Reads 16 bytes at `at` as an address; the caller guarantees the bounds.
#[inline]
pub(crate) fn addr_at(data: &[u8], at: usize) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&data[at..at + 16]);
    Ipv6Addr::from(octets)
}

/// The fragment header's description of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Fragment {
    /// Identification (32 bits in IPv6).
    pub ident: u32,
    /// Offset of this fragment's data in bytes.
    pub offset: u16,
    /// The M flag.
    pub more: bool,
}

/// Where the extension-header chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The upper-layer protocol (or 59 for no next header, or the next header
    /// of a non-first fragment, whose payload is not a header).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the walked bytes.
    pub offset: usize,
    /// The fragment header, when there is one.
    pub fragment: Option<Ipv6Fragment>,
}

/// Walks the extension headers of `payload` (the bytes after the fixed
/// header) starting with `first_next_header`.
///
/// The walk stops at the first non-extension header, at "no next header",
/// or after the fragment header of a non-first fragment (whose remaining
/// bytes are data, not headers). Never reads out of bounds.
pub fn walk_extension_headers(
    first_next_header: u8,
    payload: &[u8],
) -> Result<UpperLayer, WireError> {
    let mut protocol = first_next_header;
    let mut offset = 0usize;
    let mut fragment = None;
    for index in 0..=MAX_EXTENSION_HEADERS {
        match protocol {
            next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DESTINATION_OPTIONS => {
                if protocol == next_header::HOP_BY_HOP && index != 0 {
                    return Err(WireError::Ipv6MisplacedHopByHop);
                }
                let header = payload
                    .get(offset..offset + 2)
                    .ok_or(WireError::TruncatedIpv6Extension)?;
                let len = (usize::from(header[1]) + 1) * 8;
                if payload.len() < offset + len {
                    return Err(WireError::TruncatedIpv6Extension);
                }
                protocol = header[0];
                offset += len;
            }
            next_header::FRAGMENT => {
                let header = payload
                    .get(offset..offset + 8)
                    .ok_or(WireError::TruncatedIpv6Extension)?;
                let offset_flags = u16::from_be_bytes([header[2], header[3]]);
                let info = Ipv6Fragment {
                    ident: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
                    offset: offset_flags & 0xfff8,
                    more: offset_flags & 1 != 0,
                };
                protocol = header[0];
                offset += 8;
                fragment = Some(info);
                if info.offset != 0 {
                    return Ok(UpperLayer {
                        protocol,
                        offset,
                        fragment,
                    });
                }
            }
            _ => {
                return Ok(UpperLayer {
                    protocol,
                    offset,
                    fragment,
                });
            }
        }
    }
    Err(WireError::Ipv6ExtensionChainTooLong)
}

/// The meaning of the fixed IPv6 header (extension headers are walked by
/// [`walk_extension_headers`], not represented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header of the fixed header.
    pub next_header: u8,
    /// Payload length.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Reads a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Ipv6Repr {
        Ipv6Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        }
    }

    /// Length of the header this emits.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 40-byte fixed header at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let payload_len =
            u16::try_from(self.payload_len).map_err(|_| WireError::Unrepresentable)?;
        if self.flow_label > 0xfffff {
            return Err(WireError::Unrepresentable);
        }
        let header = buf.get_mut(..HEADER_LEN).ok_or(WireError::BufferTooSmall)?;
        let first_word = (6u32 << 28) | (u32::from(self.traffic_class) << 20) | self.flow_label;
        header[field::VERSION_TC_FLOW].copy_from_slice(&first_word.to_be_bytes());
        header[field::PAYLOAD_LENGTH].copy_from_slice(&payload_len.to_be_bytes());
        header[field::NEXT_HEADER] = self.next_header;
        header[field::HOP_LIMIT] = self.hop_limit;
        header[field::SOURCE].copy_from_slice(&self.src.octets());
        header[field::DESTINATION].copy_from_slice(&self.dst.octets());
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2001:db8::1 -> 2001:db8::2, hop-by-hop (PadN) then a fragment header
    /// (first fragment, M set, id 0xdeadbeef) then 8 bytes of UDP header.
    fn chained_packet() -> Vec<u8> {
        let mut bytes = vec![
            0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00,
            0x40, // ver, len 24, NH hop-by-hop, HL 64
        ];
        bytes.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        bytes.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        bytes.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]); // HBH: NH frag, PadN(4)
        bytes.extend_from_slice(&[17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]); // frag: NH UDP, M
        bytes.extend_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
        bytes
    }

    #[test]
    fn parses_fixed_header() {
        let bytes = chained_packet();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let repr = Ipv6Repr::parse(&packet);
        assert_eq!(repr.src, "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(repr.dst, "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(repr.next_header, next_header::HOP_BY_HOP);
        assert_eq!(repr.payload_len, 24);
        assert_eq!(repr.hop_limit, 64);
    }

    #[test]
    fn walks_hop_by_hop_and_fragment() {
        let bytes = chained_packet();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let upper = walk_extension_headers(packet.next_header(), packet.payload()).unwrap();
        assert_eq!(
            upper,
            UpperLayer {
                protocol: 17,
                offset: 16,
                fragment: Some(Ipv6Fragment {
                    ident: 0xdeadbeef,
                    offset: 0,
                    more: true
                }),
            }
        );
    }

    #[test]
    fn non_first_fragment_stops_the_walk() {
        // Fragment at offset 1480 whose "next header" claims hop-by-hop: the
        // data after it must not be walked.
        let frag = [0u8, 0, 0x05, 0xc8, 0, 0, 0, 7, 0xff, 0xff];
        let upper = walk_extension_headers(next_header::FRAGMENT, &frag).unwrap();
        assert_eq!(upper.protocol, 0);
        assert_eq!(upper.offset, 8);
        assert_eq!(
            upper.fragment,
            Some(Ipv6Fragment {
                ident: 7,
                offset: 1480,
                more: false
            })
        );
    }

    #[test]
    fn chain_bound_and_order_are_enforced() {
        // Nine destination-options headers, each pointing at the next.
        let mut chain = Vec::new();
        for _ in 0..9 {
            chain.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        assert_eq!(
            walk_extension_headers(60, &chain),
            Err(WireError::Ipv6ExtensionChainTooLong)
        );
        // Eight are fine (the last says TCP).
        let mut ok = chain[..64].to_vec();
        ok[56] = 6;
        assert_eq!(walk_extension_headers(60, &ok).unwrap().offset, 64);
        // Hop-by-hop after a destination-options header is refused.
        let misplaced = [0u8, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0];
        assert_eq!(
            walk_extension_headers(60, &misplaced),
            Err(WireError::Ipv6MisplacedHopByHop)
        );
    }

    #[test]
    fn no_next_header_ends_the_chain() {
        let upper = walk_extension_headers(next_header::NO_NEXT_HEADER, &[]).unwrap();
        assert_eq!(
            upper,
            UpperLayer {
                protocol: 59,
                offset: 0,
                fragment: None
            }
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = chained_packet();
        for len in 0..bytes.len() {
            assert!(Packet::new_checked(&bytes[..len]).is_err(), "len {len}");
        }
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let payload = packet.payload();
        for len in 0..16 {
            assert_eq!(
                walk_extension_headers(0, &payload[..len]),
                Err(WireError::TruncatedIpv6Extension),
                "len {len}"
            );
        }
    }

    #[test]
    fn rejects_bad_version() {
        let mut bytes = chained_packet();
        bytes[0] = 0x40;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::Ipv6BadVersion
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip(
            src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), next_header in any::<u8>(),
            payload_len in 0usize..100, hop_limit in any::<u8>(), traffic_class in any::<u8>(),
            flow_label in 0u32..0x100000,
        ) {
            let repr = Ipv6Repr {
                src: src.into(), dst: dst.into(), next_header, payload_len, hop_limit,
                traffic_class, flow_label,
            };
            let mut buf = vec![0u8; 40 + payload_len];
            prop_assert_eq!(repr.emit(&mut buf), Ok(40));
            prop_assert_eq!(Ipv6Repr::parse(&Packet::new_checked(&buf[..]).unwrap()), repr);
        }

        #[test]
        fn walk_never_panics(first in any::<u8>(), bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(upper) = walk_extension_headers(first, &bytes) {
                prop_assert!(upper.offset <= bytes.len());
            }
        }
    }
}

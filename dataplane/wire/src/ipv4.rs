//! IPv4 headers (RFC 791), options included, fragments described.
//!
//! The fast path checks the header here once ([`Packet::new_checked`] plus
//! [`Packet::verify_checksum`]), reads addresses, protocol, TTL and fragment
//! fields for classification, and later patches TTL and checksum in place
//! (see [`crate::edit`]). Options are bounded by IHL and skipped: palisade
//! neither honours nor strips them, like a VPC router.

use core::net::Ipv4Addr;

use crate::WireError;
use crate::checksum;

mod field {
    use core::ops::Range;
    pub const VERSION_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LENGTH: Range<usize> = 2..4;
    pub const IDENTIFICATION: Range<usize> = 4..6;
    pub const FLAGS_FRAGMENT_OFFSET: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SOURCE: Range<usize> = 12..16;
    pub const DESTINATION: Range<usize> = 16..20;
}

/// Byte offset of the TTL field, for in-place edits.
pub const TTL_OFFSET: usize = field::TTL;
/// Byte offset of the header checksum field, for in-place edits.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// The largest datagram a fragment may reassemble into.
pub const MAX_DATAGRAM_LEN: usize = 65535;

const FLAG_DONT_FRAGMENT: u16 = 0x4000;
const FLAG_MORE_FRAGMENTS: u16 = 0x2000;
const FRAGMENT_OFFSET_MASK: u16 = 0x1fff;

/// A checked view of an IPv4 packet: header length and total length are
/// within the buffer (Ethernet padding after the total length is allowed).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps untrusted bytes: version, IHL and total length are validated
    /// against the buffer. The checksum is not: see [`Packet::verify_checksum`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let data = buffer.as_ref();
        if data.len() < MIN_HEADER_LEN {
            return Err(WireError::TruncatedIpv4);
        }
        let packet = Packet { buffer };
        if packet.version() != 4 {
            return Err(WireError::Ipv4BadVersion);
        }
        let header_len = packet.header_len();
        if header_len < MIN_HEADER_LEN {
            return Err(WireError::Ipv4BadHeaderLength);
        }
        let total_len = usize::from(packet.total_len());
        let available = packet.buffer.as_ref().len();
        if available < header_len {
            return Err(WireError::TruncatedIpv4);
        }
        if total_len < header_len {
            return Err(WireError::Ipv4BadTotalLength);
        }
        if available < total_len {
            return Err(WireError::TruncatedIpv4);
        }
        Ok(packet)
    }

    fn u16_at(&self, at: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[at];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Version field (4 for a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_IHL] >> 4
    }

    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VERSION_IHL] & 0x0f) * 4
    }

    /// DSCP and ECN bits.
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length of the datagram (fragment), header included.
    #[inline]
    pub fn total_len(&self) -> u16 {
        self.u16_at(field::TOTAL_LENGTH)
    }

    /// Identification (groups the fragments of one datagram).
    #[inline]
    pub fn ident(&self) -> u16 {
        self.u16_at(field::IDENTIFICATION)
    }

    /// The DF flag.
    #[inline]
    pub fn dont_fragment(&self) -> bool {
        self.u16_at(field::FLAGS_FRAGMENT_OFFSET) & FLAG_DONT_FRAGMENT != 0
    }

    /// The MF flag.
    #[inline]
    pub fn more_fragments(&self) -> bool {
        self.u16_at(field::FLAGS_FRAGMENT_OFFSET) & FLAG_MORE_FRAGMENTS != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn fragment_offset(&self) -> u16 {
        (self.u16_at(field::FLAGS_FRAGMENT_OFFSET) & FRAGMENT_OFFSET_MASK) * 8
    }

    /// Whether this packet is a fragment (first, middle or last).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.fragment_offset() != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Upper-layer protocol number.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SOURCE];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DESTINATION];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The options between the fixed header and the payload.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// Whether the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(&self.buffer.as_ref()[..self.header_len()])) == 0xffff
    }

    /// The payload up to the total length (Ethernet padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the TTL without touching the checksum.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Recomputes the header checksum over the header, options included.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let value = checksum::checksum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(value);
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// The meaning of an IPv4 header. Options are not represented: parsing skips
/// them and emitting writes none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Upper-layer protocol number.
    pub protocol: u8,
    /// Length of the payload (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP and ECN bits.
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// The DF flag.
    pub dont_fragment: bool,
    /// The MF flag.
    pub more_fragments: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub fragment_offset: u16,
}

impl Ipv4Repr {
    /// Reads a checked packet, verifying the header checksum.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Ipv4Repr, WireError> {
        if !packet.verify_checksum() {
            return Err(WireError::Ipv4BadChecksum);
        }
        Ok(Ipv4Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            dscp_ecn: packet.dscp_ecn(),
            ident: packet.ident(),
            dont_fragment: packet.dont_fragment(),
            more_fragments: packet.more_fragments(),
            fragment_offset: packet.fragment_offset(),
        })
    }

    /// Length of the header this emits.
    pub const fn header_len(&self) -> usize {
        MIN_HEADER_LEN
    }

    /// Writes a 20-byte header with a correct checksum at the start of `buf`;
    /// returns its length. The payload is the caller's.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let total_len = u16::try_from(MIN_HEADER_LEN + self.payload_len)
            .map_err(|_| WireError::Unrepresentable)?;
        if self.fragment_offset % 8 != 0 {
            return Err(WireError::Unrepresentable);
        }
        let header = buf
            .get_mut(..MIN_HEADER_LEN)
            .ok_or(WireError::BufferTooSmall)?;
        header[field::VERSION_IHL] = 0x45;
        header[field::DSCP_ECN] = self.dscp_ecn;
        header[field::TOTAL_LENGTH].copy_from_slice(&total_len.to_be_bytes());
        header[field::IDENTIFICATION].copy_from_slice(&self.ident.to_be_bytes());
        let mut flags = self.fragment_offset / 8;
        if self.dont_fragment {
            flags |= FLAG_DONT_FRAGMENT;
        }
        if self.more_fragments {
            flags |= FLAG_MORE_FRAGMENTS;
        }
        header[field::FLAGS_FRAGMENT_OFFSET].copy_from_slice(&flags.to_be_bytes());
        header[field::TTL] = self.ttl;
        header[field::PROTOCOL] = self.protocol;
        header[field::CHECKSUM].copy_from_slice(&[0, 0]);
        header[field::SOURCE].copy_from_slice(&self.src.octets());
        header[field::DESTINATION].copy_from_slice(&self.dst.octets());
        let value = checksum::checksum(header);
        header[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
        Ok(MIN_HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // 192.168.0.1 -> 192.168.0.199, UDP, DF, TTL 64, total length 0x73,
    // checksum 0xb861; the payload is made of zeros.
    fn classic_packet() -> [u8; 0x73] {
        let mut bytes = [0u8; 0x73];
        bytes[..20].copy_from_slice(&[
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ]);
        bytes
    }

    fn classic_repr() -> Ipv4Repr {
        Ipv4Repr {
            src: Ipv4Addr::new(192, 168, 0, 1),
            dst: Ipv4Addr::new(192, 168, 0, 199),
            protocol: 17,
            payload_len: 0x73 - 20,
            ttl: 64,
            dscp_ecn: 0,
            ident: 0,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
        }
    }

    #[test]
    fn parses_known_header() {
        let bytes = classic_packet();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum());
        assert!(!packet.is_fragment());
        assert_eq!(Ipv4Repr::parse(&packet), Ok(classic_repr()));
        assert_eq!(packet.payload().len(), 0x73 - 20);
    }

    #[test]
    fn emits_known_header() {
        let mut buf = [0u8; 20];
        assert_eq!(classic_repr().emit(&mut buf), Ok(20));
        assert_eq!(buf[..], classic_packet()[..20]);
    }

    #[test]
    fn bad_checksum_is_reported() {
        let mut bytes = classic_packet();
        bytes[11] ^= 1;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&packet), Err(WireError::Ipv4BadChecksum));
    }

    #[test]
    fn rejects_bad_version_ihl_and_total_length() {
        let mut bytes = classic_packet();
        bytes[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::Ipv4BadVersion
        );
        bytes[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::Ipv4BadHeaderLength
        );
        bytes[0] = 0x45;
        bytes[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::Ipv4BadTotalLength
        );
        bytes[2..4].copy_from_slice(&0x74u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::TruncatedIpv4
        );
    }

    #[test]
    fn header_with_options_and_padding() {
        // IHL 6: one 4-byte option (NOP NOP NOP EOL), 4 payload bytes, then 2
        // bytes of Ethernet padding beyond the total length.
        let mut bytes = [0u8; 30];
        bytes[..24].copy_from_slice(&[
            0x46, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x20, 0x00, 0x05, 0x06, 0x00, 0x00, 10, 0, 0, 1,
            10, 0, 0, 2, 0x01, 0x01, 0x01, 0x00,
        ]);
        bytes[24..28].copy_from_slice(&[1, 2, 3, 4]);
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.options(), &[1, 1, 1, 0]);
        assert_eq!(packet.payload(), &[1, 2, 3, 4]);
        assert!(packet.more_fragments() && packet.is_fragment());
        let repr = Ipv4Repr::parse(&packet).unwrap();
        assert_eq!(repr.payload_len, 4);
        assert_eq!(repr.ident, 0x1234);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = classic_packet();
        for len in 0..bytes.len() {
            assert!(Packet::new_checked(&bytes[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn emit_refuses_unrepresentable() {
        let mut buf = [0u8; 20];
        let long = Ipv4Repr {
            payload_len: 65516,
            ..classic_repr()
        };
        assert_eq!(long.emit(&mut buf), Err(WireError::Unrepresentable));
        let odd = Ipv4Repr {
            fragment_offset: 12,
            ..classic_repr()
        };
        assert_eq!(odd.emit(&mut buf), Err(WireError::Unrepresentable));
        assert_eq!(
            classic_repr().emit(&mut buf[..19]),
            Err(WireError::BufferTooSmall)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip(
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), protocol in any::<u8>(),
            payload_len in 0usize..200, ttl in any::<u8>(), dscp_ecn in any::<u8>(),
            ident in any::<u16>(), dont_fragment in any::<bool>(), more_fragments in any::<bool>(),
            fragment_blocks in 0u16..0x2000,
        ) {
            let repr = Ipv4Repr {
                src: src.into(), dst: dst.into(), protocol, payload_len, ttl, dscp_ecn, ident,
                dont_fragment, more_fragments, fragment_offset: fragment_blocks * 8,
            };
            let mut buf = vec![0u8; 20 + payload_len];
            prop_assert_eq!(repr.emit(&mut buf), Ok(20));
            let packet = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&packet), Ok(repr));
        }
    }
}

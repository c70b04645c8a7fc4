//! UDP headers (RFC 768): ports for classification, length bounded by the
//! IP payload. A zero checksum means "none" over IPv4 and is invalid over
//! IPv6 (RFC 8200 §8.1); [`Packet::verify_checksum`] applies that rule.

use core::net::IpAddr;

use crate::WireError;
use crate::checksum;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of the header.
pub const HEADER_LEN: usize = 8;
/// Protocol number of UDP.
pub const PROTOCOL: u8 = 17;

/// A checked view of a UDP datagram: the length field is at least 8 and
/// within the buffer (bytes past it are IP-level padding and ignored).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps untrusted bytes (the IP payload).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let data = buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(WireError::TruncatedUdp);
        }
        let packet = Packet { buffer };
        let len = usize::from(packet.len());
        if len < HEADER_LEN {
            return Err(WireError::UdpBadLength);
        }
        if packet.buffer.as_ref().len() < len {
            return Err(WireError::TruncatedUdp);
        }
        Ok(packet)
    }

    fn u16_at(&self, at: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[at];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }

    /// Length field (header and data).
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        self.u16_at(field::LENGTH)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// The datagram data, up to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Whether the checksum verifies between `src` and `dst`: a zero checksum
    /// passes over IPv4 (checksum not computed) and fails over IPv6.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4();
        }
        let len = self.len();
        let data = &self.buffer.as_ref()[..usize::from(len)];
        checksum::fold(
            checksum::pseudo_header(src, dst, PROTOCOL, u32::from(len)) + checksum::sum(data),
        ) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Recomputes the checksum between `src` and `dst`; a computed zero is
    /// sent as 0xffff, since zero means "no checksum".
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        let len = self.len();
        let data = &mut self.buffer.as_mut()[..usize::from(len)];
        data[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let sum = checksum::pseudo_header(src, dst, PROTOCOL, u32::from(len)) + checksum::sum(data);
        let value = match !checksum::fold(sum) {
            0 => 0xffff,
            v => v,
        };
        data[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }
}

/// The meaning of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of the data after the header.
    pub payload_len: usize,
}

impl UdpRepr {
    /// Reads a checked datagram.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> UdpRepr {
        UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        }
    }

    /// Writes the header with checksum zero: call [`Packet::fill_checksum`]
    /// once the data is in.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len =
            u16::try_from(HEADER_LEN + self.payload_len).map_err(|_| WireError::Unrepresentable)?;
        let header = buf.get_mut(..HEADER_LEN).ok_or(WireError::BufferTooSmall)?;
        header[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        header[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        header[field::LENGTH].copy_from_slice(&len.to_be_bytes());
        header[field::CHECKSUM].copy_from_slice(&[0, 0]);
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1));

    // DNS-ish query 192.168.1.10:53000 -> 192.168.1.1:53, 4 data bytes,
    // checksum 0x0f9f computed independently of this crate (Python, RFC 1071).
    const DATAGRAM: [u8; 12] = [
        0xcf, 0x08, 0x00, 0x35, 0x00, 0x0c, 0x0f, 0x9f, 0xde, 0xad, 0xbe, 0xef,
    ];

    #[test]
    fn parses_known_datagram() {
        let packet = Packet::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&packet),
            UdpRepr {
                src_port: 53000,
                dst_port: 53,
                payload_len: 4
            }
        );
        assert!(packet.verify_checksum(SRC, DST));
        assert!(!packet.verify_checksum(DST, DST));
        assert_eq!(packet.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn zero_checksum_is_none_for_ipv4_only() {
        let mut bytes = DATAGRAM;
        bytes[6] = 0;
        bytes[7] = 0;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum(SRC, DST));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert!(!packet.verify_checksum(v6, v6));
    }

    #[test]
    fn length_is_checked() {
        let mut bytes = DATAGRAM;
        bytes[5] = 7;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::UdpBadLength
        );
        bytes[5] = 13;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::TruncatedUdp
        );
        for len in 0..DATAGRAM.len() {
            assert_eq!(
                Packet::new_checked(&DATAGRAM[..len]).unwrap_err(),
                WireError::TruncatedUdp
            );
        }
        // Padding past the length is not payload.
        let mut padded = [0u8; 14];
        padded[..12].copy_from_slice(&DATAGRAM);
        assert_eq!(Packet::new_checked(&padded[..]).unwrap().payload().len(), 4);
    }

    #[test]
    fn fill_checksum_reproduces_the_known_value() {
        let mut bytes = DATAGRAM;
        bytes[6] = 0;
        bytes[7] = 0;
        Packet::new_checked(&mut bytes[..])
            .unwrap()
            .fill_checksum(SRC, DST);
        assert_eq!(bytes, DATAGRAM);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip(
            src_port in any::<u16>(), dst_port in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..40),
            v6 in any::<bool>(), a in any::<[u8; 16]>(), b in any::<[u8; 16]>(),
        ) {
            let (src, dst) = if v6 {
                (IpAddr::V6(a.into()), IpAddr::V6(b.into()))
            } else {
                (IpAddr::V4([a[0], a[1], a[2], a[3]].into()), IpAddr::V4([b[0], b[1], b[2], b[3]].into()))
            };
            let repr = UdpRepr { src_port, dst_port, payload_len: payload.len() };
            let mut buf = vec![0u8; 8 + payload.len()];
            prop_assert_eq!(repr.emit(&mut buf), Ok(8));
            buf[8..].copy_from_slice(&payload);
            let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
            packet.fill_checksum(src, dst);
            prop_assert!(packet.checksum() != 0);
            prop_assert!(packet.verify_checksum(src, dst));
            prop_assert_eq!(UdpRepr::parse(&packet), repr);
        }
    }
}

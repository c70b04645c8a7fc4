//! TCP headers (RFC 9293): ports and flags for classification and the
//! connection-tracking state machine, options bounded by the data offset.
//!
//! Checksums are not verified on the fast path (routers do not); the
//! pseudo-header verification here serves tests, the fuzz target and tools.

use core::net::IpAddr;

use crate::WireError;
use crate::checksum;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUMBER: Range<usize> = 4..8;
    pub const ACK_NUMBER: Range<usize> = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Protocol number of TCP.
pub const PROTOCOL: u8 = 6;

/// The eight TCP flag bits (the NS/AE bit is not tracked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronise sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgement field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// Whether every bit of `other` is set.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

/// A checked view of a TCP segment: the data offset is at least 5 and the
/// whole header, options included, is in the buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps untrusted bytes (the IP payload, so its length is the segment's).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let data = buffer.as_ref();
        if data.len() < MIN_HEADER_LEN {
            return Err(WireError::TruncatedTcp);
        }
        let packet = Packet { buffer };
        let header_len = packet.header_len();
        if header_len < MIN_HEADER_LEN {
            return Err(WireError::TcpBadDataOffset);
        }
        if packet.buffer.as_ref().len() < header_len {
            return Err(WireError::TruncatedTcp);
        }
        Ok(packet)
    }

    fn u16_at(&self, at: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[at];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn u32_at(&self, at: core::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[at];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
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

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        self.u32_at(field::SEQ_NUMBER)
    }

    /// Acknowledgement number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        self.u32_at(field::ACK_NUMBER)
    }

    /// Header length in bytes (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The flag bits.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Receive window.
    #[inline]
    pub fn window(&self) -> u16 {
        self.u16_at(field::WINDOW)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        self.u16_at(field::URGENT)
    }

    /// The option bytes between the fixed header and the data.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// The segment data.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Whether the checksum verifies for this segment between `src` and `dst`.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let data = self.buffer.as_ref();
        let Ok(len) = u32::try_from(data.len()) else {
            return false;
        };
        checksum::fold(checksum::pseudo_header(src, dst, PROTOCOL, len) + checksum::sum(data))
            == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Recomputes the checksum for this segment between `src` and `dst`.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        let data = self.buffer.as_mut();
        data[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let len = data.len() as u32;
        let value =
            !checksum::fold(checksum::pseudo_header(src, dst, PROTOCOL, len) + checksum::sum(data));
        data[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }
}

/// One TCP option, as found in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// No-operation (padding between options).
    NoOperation,
    /// Maximum segment size.
    MaxSegmentSize(u16),
    /// Window scale shift.
    WindowScale(u8),
    /// SACK permitted.
    SackPermitted,
    /// Any other option: its kind and data.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data after the kind and length bytes.
        data: &'a [u8],
    },
}

/// Iterates over the options of a header, stopping at end-of-list. Yields an
/// error (once, then stops) for an option whose length is impossible.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    /// Iterates over `options` (see [`Packet::options`]).
    pub fn new(options: &'a [u8]) -> TcpOptions<'a> {
        TcpOptions { rest: options }
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after_kind) = self.rest.split_first()?;
        match kind {
            0 => {
                self.rest = &[];
                None
            }
            1 => {
                self.rest = after_kind;
                Some(Ok(TcpOption::NoOperation))
            }
            _ => {
                let length = after_kind.first().map(|&l| usize::from(l));
                let Some(length) = length.filter(|&l| l >= 2 && l <= self.rest.len()) else {
                    self.rest = &[];
                    return Some(Err(WireError::TcpBadOption));
                };
                let data = &self.rest[2..length];
                self.rest = &self.rest[length..];
                let option = match (kind, data) {
                    (2, &[a, b]) => TcpOption::MaxSegmentSize(u16::from_be_bytes([a, b])),
                    (3, &[shift]) => TcpOption::WindowScale(shift),
                    (4, &[]) => TcpOption::SackPermitted,
                    (2..=4, _) => return Some(Err(WireError::TcpBadOption)),
                    _ => TcpOption::Unknown { kind, data },
                };
                Some(Ok(option))
            }
        }
    }
}

/// The meaning of a TCP header, with the options a connection set-up uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgement number.
    pub ack_number: u32,
    /// Flag bits.
    pub flags: TcpFlags,
    /// Receive window.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// The MSS option.
    pub max_segment_size: Option<u16>,
    /// The window-scale option.
    pub window_scale: Option<u8>,
    /// The SACK-permitted option.
    pub sack_permitted: bool,
}

impl TcpRepr {
    /// Reads a checked segment; malformed options are an error, unknown ones
    /// are skipped.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<TcpRepr, WireError> {
        let mut repr = TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window(),
            urgent: packet.urgent(),
            max_segment_size: None,
            window_scale: None,
            sack_permitted: false,
        };
        for option in TcpOptions::new(packet.options()) {
            match option? {
                TcpOption::MaxSegmentSize(mss) => repr.max_segment_size = Some(mss),
                TcpOption::WindowScale(shift) => repr.window_scale = Some(shift),
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(repr)
    }

    /// Length of the header this emits, options padded to 4 bytes.
    pub const fn header_len(&self) -> usize {
        let mut options: usize = 0;
        if self.max_segment_size.is_some() {
            options += 4;
        }
        if self.window_scale.is_some() {
            options += 3;
        }
        if self.sack_permitted {
            options += 2;
        }
        MIN_HEADER_LEN + options.div_ceil(4) * 4
    }

    /// Writes the header at the start of `buf`, checksum zero: call
    /// [`Packet::fill_checksum`] over the whole segment once the data is in.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let header_len = self.header_len();
        let header = buf.get_mut(..header_len).ok_or(WireError::BufferTooSmall)?;
        header[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        header[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        header[field::SEQ_NUMBER].copy_from_slice(&self.seq_number.to_be_bytes());
        header[field::ACK_NUMBER].copy_from_slice(&self.ack_number.to_be_bytes());
        header[field::DATA_OFFSET] = ((header_len / 4) as u8) << 4;
        header[field::FLAGS] = self.flags.0;
        header[field::WINDOW].copy_from_slice(&self.window.to_be_bytes());
        header[field::CHECKSUM].copy_from_slice(&[0, 0]);
        header[field::URGENT].copy_from_slice(&self.urgent.to_be_bytes());
        let options = &mut header[MIN_HEADER_LEN..];
        let mut at = 0;
        if let Some(mss) = self.max_segment_size {
            let [hi, lo] = mss.to_be_bytes();
            options[at..at + 4].copy_from_slice(&[2, 4, hi, lo]);
            at += 4;
        }
        if let Some(shift) = self.window_scale {
            options[at..at + 3].copy_from_slice(&[3, 3, shift]);
            at += 3;
        }
        if self.sack_permitted {
            options[at..at + 2].copy_from_slice(&[4, 2]);
            at += 2;
        }
        options[at..].fill(0); // end of option list, then padding
        Ok(header_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    // SYN 10.0.0.1:40000 -> 10.0.0.2:80, seq 1, window 64240, options MSS
    // 1460, NOP, window scale 7, SACK permitted + NOP NOP; checksum 0xc38c
    // computed independently of this crate (Python, RFC 1071).
    const SYN: [u8; 32] = [
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x02, 0xfa,
        0xf0, 0xc3, 0x8c, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07, 0x04, 0x02,
        0x01, 0x01,
    ];

    #[test]
    fn parses_known_syn() {
        let packet = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!(packet.header_len(), 32);
        assert!(packet.flags().contains(TcpFlags::SYN));
        assert!(!packet.flags().contains(TcpFlags::ACK));
        assert!(packet.verify_checksum(SRC, DST));
        assert!(!packet.verify_checksum(SRC, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3))));
        let repr = TcpRepr::parse(&packet).unwrap();
        assert_eq!(repr.src_port, 40000);
        assert_eq!(repr.dst_port, 80);
        assert_eq!(repr.seq_number, 1);
        assert_eq!(repr.window, 64240);
        assert_eq!(repr.max_segment_size, Some(1460));
        assert_eq!(repr.window_scale, Some(7));
        assert!(repr.sack_permitted);
    }

    #[test]
    fn fill_checksum_reproduces_the_known_value() {
        let mut bytes = SYN;
        bytes[16] = 0;
        bytes[17] = 0;
        Packet::new_checked(&mut bytes[..])
            .unwrap()
            .fill_checksum(SRC, DST);
        assert_eq!(bytes, SYN);
    }

    #[test]
    fn rejects_bad_offset_and_truncation() {
        let mut bytes = SYN;
        bytes[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::TcpBadDataOffset
        );
        for len in 0..SYN.len() {
            assert_eq!(
                Packet::new_checked(&SYN[..len]).unwrap_err(),
                WireError::TruncatedTcp
            );
        }
    }

    #[test]
    fn malformed_options_are_errors() {
        // Zero-length option, option running past the end, MSS of length 3.
        for options in [&[8u8, 0, 0, 0][..], &[8, 10, 0, 0], &[2, 3, 5, 0], &[5]] {
            let mut it = TcpOptions::new(options);
            assert_eq!(it.next(), Some(Err(WireError::TcpBadOption)), "{options:?}");
        }
        let mut it = TcpOptions::new(&[1, 8, 4, 0xaa, 0xbb, 0, 9, 9]);
        assert_eq!(it.next(), Some(Ok(TcpOption::NoOperation)));
        assert_eq!(
            it.next(),
            Some(Ok(TcpOption::Unknown {
                kind: 8,
                data: &[0xaa, 0xbb]
            }))
        );
        assert_eq!(it.next(), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip(
            src_port in any::<u16>(), dst_port in any::<u16>(), seq_number in any::<u32>(),
            ack_number in any::<u32>(), flags in any::<u8>(), window in any::<u16>(),
            urgent in any::<u16>(), max_segment_size in any::<Option<u16>>(),
            window_scale in any::<Option<u8>>(), sack_permitted in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let repr = TcpRepr {
                src_port, dst_port, seq_number, ack_number, flags: TcpFlags(flags), window,
                urgent, max_segment_size, window_scale, sack_permitted,
            };
            let mut buf = vec![0u8; repr.header_len() + payload.len()];
            let header_len = repr.emit(&mut buf).unwrap();
            buf[header_len..].copy_from_slice(&payload);
            let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
            packet.fill_checksum(SRC, DST);
            prop_assert!(packet.verify_checksum(SRC, DST));
            prop_assert_eq!(packet.payload(), &payload[..]);
            prop_assert_eq!(TcpRepr::parse(&packet), Ok(repr));
        }
    }
}

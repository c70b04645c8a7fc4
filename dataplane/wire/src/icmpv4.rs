//! ICMPv4 (RFC 792): echo for ping flows, and the error messages that quote
//! the packet that caused them — palisade admits those as related traffic of
//! the quoted packet's flow (SEMANTICS.md), so their quote is parsed by
//! [`crate::frame`].

use crate::WireError;
use crate::checksum;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQ: Range<usize> = 6..8;
    pub const POINTER: usize = 4;
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
}

/// Length of the header (type, code, checksum and the 4-byte rest).
pub const HEADER_LEN: usize = 8;
/// Protocol number of ICMPv4.
pub const PROTOCOL: u8 = 1;

/// The message types palisade distinguishes.
pub mod message {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable (quotes a packet).
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded (quotes a packet).
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem (quotes a packet).
    pub const PARAMETER_PROBLEM: u8 = 12;
}

/// Whether a message of type `ty` is an error that quotes the offending packet.
#[inline]
pub const fn is_error(ty: u8) -> bool {
    matches!(
        ty,
        message::DEST_UNREACHABLE | message::TIME_EXCEEDED | message::PARAMETER_PROBLEM
    )
}

/// A checked view of an ICMPv4 message: at least the 8-byte header.
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
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::TruncatedIcmpv4);
        }
        Ok(Packet { buffer })
    }

    fn u16_at(&self, at: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[at];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Echo identifier (meaningful for echo request/reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        self.u16_at(field::ECHO_IDENT)
    }

    /// Echo sequence number (meaningful for echo request/reply).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        self.u16_at(field::ECHO_SEQ)
    }

    /// The data after the header: echo data, or the quoted packet of an error.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum (over the whole message) verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Recomputes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        let data = self.buffer.as_mut();
        data[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let value = checksum::checksum(data);
        data[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }
}

/// The meaning of an ICMPv4 header; data (echo payload or quoted packet)
/// is carried separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
    },
    /// Destination unreachable; code 4 (fragmentation needed) carries the MTU.
    DestUnreachable {
        /// Code (0 net, 1 host, 3 port, 4 fragmentation needed, 13 prohibited, …).
        code: u8,
        /// Next-hop MTU (zero unless code 4).
        next_hop_mtu: u16,
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code (0 TTL in transit, 1 reassembly).
        code: u8,
    },
    /// Parameter problem.
    ParameterProblem {
        /// Code.
        code: u8,
        /// Offset of the offending octet in the quoted header.
        pointer: u8,
    },
    /// Any other message, by type and code.
    Other {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
    },
}

impl Icmpv4Repr {
    /// Reads a checked message.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Icmpv4Repr {
        let code = packet.msg_code();
        match packet.msg_type() {
            message::ECHO_REQUEST => Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
            },
            message::ECHO_REPLY => Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
            },
            message::DEST_UNREACHABLE => Icmpv4Repr::DestUnreachable {
                code,
                next_hop_mtu: packet.u16_at(field::NEXT_HOP_MTU),
            },
            message::TIME_EXCEEDED => Icmpv4Repr::TimeExceeded { code },
            message::PARAMETER_PROBLEM => Icmpv4Repr::ParameterProblem {
                code,
                pointer: packet.buffer.as_ref()[field::POINTER],
            },
            ty => Icmpv4Repr::Other { ty, code },
        }
    }

    /// Writes header and `data` into `buf` with a correct checksum; returns
    /// the message length.
    pub fn emit(&self, data: &[u8], buf: &mut [u8]) -> Result<usize, WireError> {
        let len = HEADER_LEN + data.len();
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let (ty, code, rest) = match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no } => (
                message::ECHO_REQUEST,
                0,
                (u32::from(ident) << 16) | u32::from(seq_no),
            ),
            Icmpv4Repr::EchoReply { ident, seq_no } => (
                message::ECHO_REPLY,
                0,
                (u32::from(ident) << 16) | u32::from(seq_no),
            ),
            Icmpv4Repr::DestUnreachable { code, next_hop_mtu } => {
                (message::DEST_UNREACHABLE, code, u32::from(next_hop_mtu))
            }
            Icmpv4Repr::TimeExceeded { code } => (message::TIME_EXCEEDED, code, 0),
            Icmpv4Repr::ParameterProblem { code, pointer } => {
                (message::PARAMETER_PROBLEM, code, u32::from(pointer) << 24)
            }
            Icmpv4Repr::Other { ty, code } => (ty, code, 0),
        };
        out[field::TYPE] = ty;
        out[field::CODE] = code;
        out[4..8].copy_from_slice(&rest.to_be_bytes());
        out[HEADER_LEN..].copy_from_slice(data);
        Packet::new_unchecked(out).fill_checksum();
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Echo request id 0x1234 seq 1 with "abcd"; checksum 0x2104 computed
    // independently of this crate (Python, RFC 1071).
    const ECHO: [u8; 12] = [
        8, 0, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn parses_known_echo() {
        let packet = Packet::new_checked(&ECHO[..]).unwrap();
        assert!(packet.verify_checksum());
        assert_eq!(
            Icmpv4Repr::parse(&packet),
            Icmpv4Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1
            }
        );
        assert_eq!(packet.data(), b"abcd");
        let mut buf = [0u8; 12];
        assert_eq!(
            Icmpv4Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1
            }
            .emit(b"abcd", &mut buf),
            Ok(12)
        );
        assert_eq!(buf, ECHO);
    }

    #[test]
    fn truncation_and_short_buffer() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&ECHO[..len]).unwrap_err(),
                WireError::TruncatedIcmpv4
            );
        }
        let mut buf = [0u8; 11];
        assert_eq!(
            Icmpv4Repr::TimeExceeded { code: 0 }.emit(b"abcd", &mut buf),
            Err(WireError::BufferTooSmall)
        );
    }

    fn any_repr() -> impl Strategy<Value = Icmpv4Repr> {
        prop_oneof![
            (any::<u16>(), any::<u16>())
                .prop_map(|(ident, seq_no)| Icmpv4Repr::EchoRequest { ident, seq_no }),
            (any::<u16>(), any::<u16>())
                .prop_map(|(ident, seq_no)| Icmpv4Repr::EchoReply { ident, seq_no }),
            (any::<u8>(), any::<u16>()).prop_map(|(code, next_hop_mtu)| {
                Icmpv4Repr::DestUnreachable { code, next_hop_mtu }
            }),
            any::<u8>().prop_map(|code| Icmpv4Repr::TimeExceeded { code }),
            (any::<u8>(), any::<u8>())
                .prop_map(|(code, pointer)| Icmpv4Repr::ParameterProblem { code, pointer }),
            (any::<u8>(), any::<u8>())
                .prop_filter("not a known type", |(ty, _)| !matches!(
                    *ty,
                    0 | 3 | 8 | 11 | 12
                ))
                .prop_map(|(ty, code)| Icmpv4Repr::Other { ty, code }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip(repr in any_repr(), data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut buf = vec![0u8; 8 + data.len()];
            prop_assert_eq!(repr.emit(&data, &mut buf), Ok(buf.len()));
            let packet = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(packet.verify_checksum());
            prop_assert_eq!(Icmpv4Repr::parse(&packet), repr);
            prop_assert_eq!(packet.data(), &data[..]);
        }
    }
}

//! ICMPv6 (RFC 4443) and the neighbour-discovery messages (RFC 4861) the
//! router answers for subnet gateway addresses.
//!
//! Errors (destination unreachable, packet too big, time exceeded, parameter
//! problem) quote the offending packet and are admitted as related traffic;
//! neighbour solicitations for a gateway address are answered with
//! [`crate::edit::build_neighbor_advertisement`]. The hop-limit-255 rule of
//! RFC 4861 §7.1 is the responder's to check (it sees the hop limit in
//! [`crate::FrameInfo`]); code and target are checked here.

use core::net::{IpAddr, Ipv6Addr};

use crate::WireError;
use crate::checksum;
use crate::ethernet::MacAddr;
use crate::ipv6::addr_at;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQ: Range<usize> = 6..8;
    pub const MTU_OR_POINTER: Range<usize> = 4..8;
    pub const NA_FLAGS: usize = 4;
    pub const ND_TARGET: usize = 8;
    pub const ND_OPTIONS: usize = 24;
}

/// Length of the header (type, code, checksum and the 4-byte rest).
pub const HEADER_LEN: usize = 8;
/// Length of a neighbour solicitation or advertisement before its options.
pub const ND_FIXED_LEN: usize = 24;
/// Protocol (next header) number of ICMPv6.
pub const PROTOCOL: u8 = 58;

/// The message types palisade distinguishes.
pub mod message {
    /// Destination unreachable (quotes a packet).
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big (quotes a packet).
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded (quotes a packet).
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem (quotes a packet).
    pub const PARAMETER_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbour solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbour advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// Whether a message of type `ty` is an error that quotes the offending packet.
#[inline]
pub const fn is_error(ty: u8) -> bool {
    matches!(ty, 1..=4)
}

const ND_OPTION_SOURCE_LLADDR: u8 = 1;
const ND_OPTION_TARGET_LLADDR: u8 = 2;

/// Neighbour-advertisement flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NdFlags {
    /// The sender is a router.
    pub router: bool,
    /// The advertisement answers a solicitation.
    pub solicited: bool,
    /// Override an existing cache entry.
    pub override_: bool,
}

impl NdFlags {
    fn from_byte(b: u8) -> NdFlags {
        NdFlags {
            router: b & 0x80 != 0,
            solicited: b & 0x40 != 0,
            override_: b & 0x20 != 0,
        }
    }

    fn to_byte(self) -> u8 {
        (u8::from(self.router) << 7)
            | (u8::from(self.solicited) << 6)
            | (u8::from(self.override_) << 5)
    }
}

/// A checked view of an ICMPv6 message: at least the 8-byte header, and the
/// 24-byte fixed part for neighbour solicitations and advertisements.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps untrusted bytes (the upper-layer payload).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let data = buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(WireError::TruncatedIcmpv6);
        }
        let is_nd = matches!(
            data[field::TYPE],
            message::NEIGHBOR_SOLICIT | message::NEIGHBOR_ADVERT
        );
        if is_nd && data.len() < ND_FIXED_LEN {
            return Err(WireError::TruncatedIcmpv6);
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

    /// The 32 bits after the checksum: MTU of packet-too-big, pointer of
    /// parameter-problem.
    #[inline]
    pub fn mtu_or_pointer(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::MTU_OR_POINTER];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Target address of a neighbour solicitation or advertisement.
    #[inline]
    pub fn nd_target(&self) -> Option<Ipv6Addr> {
        matches!(
            self.msg_type(),
            message::NEIGHBOR_SOLICIT | message::NEIGHBOR_ADVERT
        )
        .then(|| addr_at(self.buffer.as_ref(), field::ND_TARGET))
    }

    /// The data after the 8-byte header: echo data or the quoted packet.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum verifies between `src` and `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        let Ok(len) = u32::try_from(data.len()) else {
            return false;
        };
        let pseudo = checksum::pseudo_header(IpAddr::V6(src), IpAddr::V6(dst), PROTOCOL, len);
        checksum::fold(pseudo + checksum::sum(data)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Recomputes the checksum between `src` and `dst`.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let data = self.buffer.as_mut();
        data[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let pseudo = checksum::pseudo_header(
            IpAddr::V6(src),
            IpAddr::V6(dst),
            PROTOCOL,
            data.len() as u32,
        );
        let value = !checksum::fold(pseudo + checksum::sum(data));
        data[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }
}

/// Finds the link-layer address option of `kind` among ND options, checking
/// every option's length on the way (RFC 4861 §4.6: zero length is invalid).
fn find_lladdr_option(mut options: &[u8], kind: u8) -> Result<Option<MacAddr>, WireError> {
    let mut found = None;
    while !options.is_empty() {
        let len = usize::from(*options.get(1).ok_or(WireError::BadNdOption)?) * 8;
        if len == 0 || len > options.len() {
            return Err(WireError::BadNdOption);
        }
        if options[0] == kind && found.is_none() {
            found = Some(MacAddr::from_bytes(&options[2..len]).ok_or(WireError::BadNdOption)?);
        }
        options = &options[len..];
    }
    Ok(found)
}

/// The meaning of an ICMPv6 message; echo data and quoted packets are
/// carried separately, ND options are represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Repr {
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
    /// Destination unreachable.
    DestUnreachable {
        /// Code (0 no route, 1 prohibited, 3 address, 4 port, …).
        code: u8,
    },
    /// Packet too big: the path-MTU signal that must reach the sender.
    PacketTooBig {
        /// The MTU of the next hop.
        mtu: u32,
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code (0 hop limit, 1 reassembly).
        code: u8,
    },
    /// Parameter problem.
    ParameterProblem {
        /// Code.
        code: u8,
        /// Offset of the offending octet in the quoted packet.
        pointer: u32,
    },
    /// Neighbour solicitation.
    NeighborSolicit {
        /// The address being resolved.
        target: Ipv6Addr,
        /// The solicitor's MAC (absent in duplicate-address detection).
        source_lladdr: Option<MacAddr>,
    },
    /// Neighbour advertisement.
    NeighborAdvert {
        /// R, S and O flags.
        flags: NdFlags,
        /// The address being advertised.
        target: Ipv6Addr,
        /// The advertised MAC.
        target_lladdr: Option<MacAddr>,
    },
    /// Any other message, by type and code.
    Other {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
    },
}

impl Icmpv6Repr {
    /// Reads a checked message. Neighbour-discovery messages with a nonzero
    /// code, a multicast target or malformed options are refused.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Icmpv6Repr, WireError> {
        let code = packet.msg_code();
        let repr = match packet.msg_type() {
            message::ECHO_REQUEST => Icmpv6Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
            },
            message::ECHO_REPLY => Icmpv6Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
            },
            message::DEST_UNREACHABLE => Icmpv6Repr::DestUnreachable { code },
            message::PACKET_TOO_BIG => Icmpv6Repr::PacketTooBig {
                mtu: packet.mtu_or_pointer(),
            },
            message::TIME_EXCEEDED => Icmpv6Repr::TimeExceeded { code },
            message::PARAMETER_PROBLEM => Icmpv6Repr::ParameterProblem {
                code,
                pointer: packet.mtu_or_pointer(),
            },
            ty @ (message::NEIGHBOR_SOLICIT | message::NEIGHBOR_ADVERT) => {
                let data = packet.buffer.as_ref();
                let target = addr_at(data, field::ND_TARGET);
                if code != 0 || target.is_multicast() {
                    return Err(WireError::BadNdMessage);
                }
                let options = &data[field::ND_OPTIONS..];
                if ty == message::NEIGHBOR_SOLICIT {
                    let source_lladdr = find_lladdr_option(options, ND_OPTION_SOURCE_LLADDR)?;
                    Icmpv6Repr::NeighborSolicit {
                        target,
                        source_lladdr,
                    }
                } else {
                    let flags = NdFlags::from_byte(data[field::NA_FLAGS]);
                    let target_lladdr = find_lladdr_option(options, ND_OPTION_TARGET_LLADDR)?;
                    Icmpv6Repr::NeighborAdvert {
                        flags,
                        target,
                        target_lladdr,
                    }
                }
            }
            ty => Icmpv6Repr::Other { ty, code },
        };
        Ok(repr)
    }

    /// Length of the message this emits with `data_len` bytes of data (data
    /// is ignored for neighbour-discovery messages).
    pub const fn message_len(&self, data_len: usize) -> usize {
        match self {
            Icmpv6Repr::NeighborSolicit {
                source_lladdr: lladdr,
                ..
            }
            | Icmpv6Repr::NeighborAdvert {
                target_lladdr: lladdr,
                ..
            } => ND_FIXED_LEN + if lladdr.is_some() { 8 } else { 0 },
            _ => HEADER_LEN + data_len,
        }
    }

    /// Writes the whole message (header, then `data` or the ND body) into
    /// `buf` with a correct checksum for `src` → `dst`; returns its length.
    pub fn emit(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        data: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, WireError> {
        let len = self.message_len(data.len());
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let (ty, code, rest) = match *self {
            Icmpv6Repr::EchoRequest { ident, seq_no } => (
                message::ECHO_REQUEST,
                0,
                (u32::from(ident) << 16) | u32::from(seq_no),
            ),
            Icmpv6Repr::EchoReply { ident, seq_no } => (
                message::ECHO_REPLY,
                0,
                (u32::from(ident) << 16) | u32::from(seq_no),
            ),
            Icmpv6Repr::DestUnreachable { code } => (message::DEST_UNREACHABLE, code, 0),
            Icmpv6Repr::PacketTooBig { mtu } => (message::PACKET_TOO_BIG, 0, mtu),
            Icmpv6Repr::TimeExceeded { code } => (message::TIME_EXCEEDED, code, 0),
            Icmpv6Repr::ParameterProblem { code, pointer } => {
                (message::PARAMETER_PROBLEM, code, pointer)
            }
            Icmpv6Repr::NeighborSolicit { .. } => (message::NEIGHBOR_SOLICIT, 0, 0),
            Icmpv6Repr::NeighborAdvert { flags, .. } => (
                message::NEIGHBOR_ADVERT,
                0,
                u32::from(flags.to_byte()) << 24,
            ),
            Icmpv6Repr::Other { ty, code } => (ty, code, 0),
        };
        out[field::TYPE] = ty;
        out[field::CODE] = code;
        out[field::MTU_OR_POINTER].copy_from_slice(&rest.to_be_bytes());
        match *self {
            Icmpv6Repr::NeighborSolicit {
                target,
                source_lladdr: lladdr,
            }
            | Icmpv6Repr::NeighborAdvert {
                target,
                target_lladdr: lladdr,
                ..
            } => {
                out[field::ND_TARGET..field::ND_OPTIONS].copy_from_slice(&target.octets());
                if let Some(mac) = lladdr {
                    let kind = if ty == message::NEIGHBOR_SOLICIT {
                        ND_OPTION_SOURCE_LLADDR
                    } else {
                        ND_OPTION_TARGET_LLADDR
                    };
                    out[field::ND_OPTIONS..field::ND_OPTIONS + 2].copy_from_slice(&[kind, 1]);
                    out[field::ND_OPTIONS + 2..field::ND_OPTIONS + 8].copy_from_slice(&mac.0);
                }
            }
            _ => out[HEADER_LEN..].copy_from_slice(data),
        }
        Packet::new_unchecked(out).fill_checksum(src, dst);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    // Neighbour solicitation fe80::1 -> ff02::1:ff00:2 for target
    // 2001:db8::2 with source link-layer address 02:00:00:00:00:01;
    // checksum 0x4b5f computed independently of this crate (Python, RFC 1071).
    const SOLICIT: [u8; 32] = [
        135, 0, 0x4b, 0x5f, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        1, 1, 2, 0, 0, 0, 0, 1,
    ];

    #[test]
    fn parses_known_solicitation() {
        let packet = Packet::new_checked(&SOLICIT[..]).unwrap();
        assert!(packet.verify_checksum(addr("fe80::1"), addr("ff02::1:ff00:2")));
        assert!(!packet.verify_checksum(addr("fe80::2"), addr("ff02::1:ff00:2")));
        assert_eq!(packet.nd_target(), Some(addr("2001:db8::2")));
        assert_eq!(
            Icmpv6Repr::parse(&packet),
            Ok(Icmpv6Repr::NeighborSolicit {
                target: addr("2001:db8::2"),
                source_lladdr: Some(MacAddr([2, 0, 0, 0, 0, 1])),
            })
        );
        let mut buf = [0u8; 32];
        let repr = Icmpv6Repr::parse(&packet).unwrap();
        assert_eq!(
            repr.emit(addr("fe80::1"), addr("ff02::1:ff00:2"), &[], &mut buf),
            Ok(32)
        );
        assert_eq!(buf, SOLICIT);
    }

    #[test]
    fn refuses_bad_nd() {
        let mut zero_len_option = SOLICIT;
        zero_len_option[25] = 0;
        let packet = Packet::new_checked(&zero_len_option[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&packet), Err(WireError::BadNdOption));
        let mut long_option = SOLICIT;
        long_option[25] = 2;
        let packet = Packet::new_checked(&long_option[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&packet), Err(WireError::BadNdOption));
        let mut code = SOLICIT;
        code[1] = 1;
        assert_eq!(
            Icmpv6Repr::parse(&Packet::new_checked(&code[..]).unwrap()),
            Err(WireError::BadNdMessage)
        );
        let mut multicast_target = SOLICIT;
        multicast_target[8] = 0xff;
        let packet = Packet::new_checked(&multicast_target[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&packet), Err(WireError::BadNdMessage));
    }

    #[test]
    fn every_truncation_is_an_error_or_drops_options() {
        for len in 0..ND_FIXED_LEN {
            assert_eq!(
                Packet::new_checked(&SOLICIT[..len]).unwrap_err(),
                WireError::TruncatedIcmpv6
            );
        }
        for len in ND_FIXED_LEN + 1..SOLICIT.len() {
            let packet = Packet::new_checked(&SOLICIT[..len]).unwrap();
            assert_eq!(
                Icmpv6Repr::parse(&packet),
                Err(WireError::BadNdOption),
                "len {len}"
            );
        }
        let packet = Packet::new_checked(&SOLICIT[..ND_FIXED_LEN]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&packet),
            Ok(Icmpv6Repr::NeighborSolicit {
                target: addr("2001:db8::2"),
                source_lladdr: None
            })
        );
    }

    fn any_repr() -> impl Strategy<Value = Icmpv6Repr> {
        let unicast = any::<[u8; 16]>().prop_map(|mut o| {
            o[0] = 0x20;
            Ipv6Addr::from(o)
        });
        let mac = proptest::option::of(any::<[u8; 6]>().prop_map(MacAddr));
        prop_oneof![
            (any::<u16>(), any::<u16>())
                .prop_map(|(ident, seq_no)| Icmpv6Repr::EchoRequest { ident, seq_no }),
            (any::<u16>(), any::<u16>())
                .prop_map(|(ident, seq_no)| Icmpv6Repr::EchoReply { ident, seq_no }),
            any::<u8>().prop_map(|code| Icmpv6Repr::DestUnreachable { code }),
            any::<u32>().prop_map(|mtu| Icmpv6Repr::PacketTooBig { mtu }),
            any::<u8>().prop_map(|code| Icmpv6Repr::TimeExceeded { code }),
            (any::<u8>(), any::<u32>())
                .prop_map(|(code, pointer)| Icmpv6Repr::ParameterProblem { code, pointer }),
            (unicast.clone(), mac.clone()).prop_map(|(target, source_lladdr)| {
                Icmpv6Repr::NeighborSolicit {
                    target,
                    source_lladdr,
                }
            }),
            (any::<[bool; 3]>(), unicast, mac).prop_map(
                |([router, solicited, override_], target, target_lladdr)| {
                    Icmpv6Repr::NeighborAdvert {
                        flags: NdFlags {
                            router,
                            solicited,
                            override_,
                        },
                        target,
                        target_lladdr,
                    }
                }
            ),
            (any::<u8>(), any::<u8>())
                .prop_filter("not a known type", |(ty, _)| !matches!(
                    *ty,
                    1..=4 | 128 | 129 | 135 | 136
                ))
                .prop_map(|(ty, code)| Icmpv6Repr::Other { ty, code }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip(repr in any_repr(), data in proptest::collection::vec(any::<u8>(), 0..40),
                      src in any::<[u8; 16]>(), dst in any::<[u8; 16]>()) {
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let mut buf = vec![0u8; repr.message_len(data.len())];
            prop_assert_eq!(repr.emit(src, dst, &data, &mut buf), Ok(buf.len()));
            let packet = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(packet.verify_checksum(src, dst));
            prop_assert_eq!(Icmpv6Repr::parse(&packet), Ok(repr));
        }
    }
}

//! The fast-path summary of a received frame: everything steps 3–7 of the
//! packet path need (ENI lookup key, addresses, 5-tuple, TCP flags, fragment
//! and ICMP-error facts) in one small `Copy` struct, found by a single
//! bounds-checked pass over the headers.
//!
//! It verifies what a router must (the IPv4 header checksum, every length)
//! and nothing it need not (L4 checksums: see the `verify_*` functions in the
//! protocol modules). No allocation, no panic on any input.

use core::net::{IpAddr, Ipv6Addr};

use crate::arp::{self, ArpRepr};
use crate::ethernet::{self, MacAddr, ethertype};
use crate::ipv6::{self, walk_extension_headers};
use crate::{WireError, icmpv4, icmpv6, ipv4, tcp, udp};

/// What one parse of a frame found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Destination MAC address.
    pub dst_mac: MacAddr,
    /// Source MAC address: with `vlan` and the port, the source-ENI key.
    pub src_mac: MacAddr,
    /// VLAN ID of the 802.1Q tag, if any.
    pub vlan: Option<u16>,
    /// Offset of the ARP or IP header.
    pub l3_offset: u16,
    /// Offset of the upper-layer header (or of a non-first fragment's data);
    /// for ARP, the end of the ARP packet.
    pub l4_offset: u16,
    /// What the L3 header says.
    pub l3: L3Info,
}

// Two cache lines at most: the pipeline keeps one per packet of a
// burst. The size is dominated by four IPv6 addresses (outer and quoted), so a
// compact address type would not buy a smaller struct.
const _: () = assert!(size_of::<FrameInfo>() <= 128);

/// The L3 protocol and what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3Info {
    /// An Ethernet/IPv4 ARP packet.
    Arp(ArpRepr),
    /// An IPv4 packet.
    Ipv4(IpInfo),
    /// An IPv6 packet.
    Ipv6(IpInfo),
}

/// The IP-level facts of a packet, shared by both versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpInfo {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol, after any IPv6 extension headers.
    pub protocol: u8,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// Fragment facts, when this packet is a fragment (IPv6: whenever a
    /// fragment header is present, even an atomic one).
    pub fragment: Option<FragmentInfo>,
    /// What the upper-layer header says.
    pub l4: L4Info,
}

/// Where a fragment sits in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentInfo {
    /// Identification (IPv4's 16 bits widened).
    pub id: u32,
    /// Offset of this fragment's data in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
}

/// The upper-layer facts of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Info {
    /// A TCP segment.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Flag bits (see [`crate::tcp::TcpFlags`]).
        flags: u8,
    },
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// An ICMPv4 message that is not an error.
    Icmp {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
        /// Identifier of an echo request or reply.
        echo_id: Option<u16>,
    },
    /// An ICMPv6 message that is not an error.
    Icmpv6 {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
        /// Identifier of an echo request or reply.
        echo_id: Option<u16>,
        /// Target of a neighbour solicitation or advertisement.
        nd_target: Option<Ipv6Addr>,
    },
    /// An ICMPv4 or ICMPv6 error quoting the packet that caused it.
    IcmpError {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
        /// The quoted packet's flow, seen from its sender.
        quoted: QuotedPacket,
    },
    /// Any other protocol (or ICMP over the wrong IP version).
    Other,
    /// A non-first fragment: no upper-layer header in this packet.
    NotFirstFragment,
}

/// The flow of the packet an ICMP error quotes, as that packet was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedPacket {
    /// Source of the quoted packet (the receiver of the error, normally).
    pub src: IpAddr,
    /// Destination of the quoted packet.
    pub dst: IpAddr,
    /// Upper-layer protocol of the quoted packet.
    pub protocol: u8,
    /// Source port; for a quoted echo request/reply, its identifier; zero
    /// for other protocols and for a quoted non-first fragment.
    pub src_port: u16,
    /// Destination port; for a quoted echo request/reply, its identifier;
    /// zero for other protocols and for a quoted non-first fragment.
    pub dst_port: u16,
}

/// Parses a whole frame into the fast-path summary.
///
/// The IPv4 header checksum is verified; upper-layer checksums are not.
///
/// Most frames a router sees are plain IPv4 TCP or UDP (no IP options, not
/// fragments, at most one VLAN tag). Those are read by
/// [`parse_plain_ipv4`], straight from fixed offsets with the same checks;
/// everything else, including every frame the plain reader would refuse,
/// goes through the layer-by-layer views, which also name the error. The
/// two give the same result on every input (a property test checks it).
#[inline]
pub fn parse_frame(frame: &[u8]) -> Result<FrameInfo, WireError> {
    match parse_plain_ipv4(frame) {
        Some(plain) => Ok(plain.frame_info()),
        None => parse_frame_layered(frame),
    }
}

/// A plain IPv4 TCP or UDP frame, as [`parse_plain_ipv4`] reads it: the
/// facts the established-flow fast path needs, in 32 bytes, with the
/// addresses as they sit on the wire (no `IpAddr` to build and match on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainIpv4 {
    /// Destination MAC address.
    pub dst_mac: [u8; 6],
    /// Source MAC address.
    pub src_mac: [u8; 6],
    /// VLAN ID of the 802.1Q tag, if any.
    pub vlan: Option<u16>,
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Offset of the IPv4 header: 14, or 18 behind a tag.
    pub l3_offset: u8,
    /// [`tcp::PROTOCOL`] or [`udp::PROTOCOL`].
    pub protocol: u8,
    /// TTL.
    pub ttl: u8,
    /// TCP flags (zero for UDP).
    pub tcp_flags: u8,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl PlainIpv4 {
    /// The same facts as the general summary [`parse_frame`] returns.
    #[must_use]
    pub fn frame_info(&self) -> FrameInfo {
        let l4 = if self.protocol == tcp::PROTOCOL {
            L4Info::Tcp {
                src_port: self.src_port,
                dst_port: self.dst_port,
                flags: self.tcp_flags,
            }
        } else {
            L4Info::Udp {
                src_port: self.src_port,
                dst_port: self.dst_port,
            }
        };
        FrameInfo {
            dst_mac: MacAddr(self.dst_mac),
            src_mac: MacAddr(self.src_mac),
            vlan: self.vlan,
            l3_offset: u16::from(self.l3_offset),
            l4_offset: u16::from(self.l3_offset) + ipv4::MIN_HEADER_LEN as u16,
            l3: L3Info::Ipv4(IpInfo {
                src: IpAddr::from(self.src),
                dst: IpAddr::from(self.dst),
                protocol: self.protocol,
                ttl: self.ttl,
                fragment: None,
                l4,
            }),
        }
    }
}

/// Reads a plain IPv4 TCP/UDP frame (Ethernet with at most one 802.1Q tag,
/// a 20-byte IPv4 header with a valid checksum, not a fragment, a TCP or
/// UDP header that fits) straight from fixed offsets, or returns `None` for
/// any other frame. Accepts exactly the frames of this shape that the
/// layered parse accepts, with the same result (a property test checks it):
/// the fast path's parse, most of what a router sees.
#[inline]
#[must_use]
pub fn parse_plain_ipv4(frame: &[u8]) -> Option<PlainIpv4> {
    let eth: &[u8; ethernet::HEADER_LEN] = frame.first_chunk()?;
    let (l3_offset, vlan) = match u16::from_be_bytes([eth[12], eth[13]]) {
        ethertype::IPV4 => (ethernet::HEADER_LEN, None),
        ethertype::VLAN => {
            let tag: &[u8; 4] = frame.get(ethernet::HEADER_LEN..)?.first_chunk()?;
            if u16::from_be_bytes([tag[2], tag[3]]) != ethertype::IPV4 {
                return None;
            }
            let vid = u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff;
            (ethernet::HEADER_LEN + 4, Some(vid))
        }
        _ => return None,
    };
    let packet = frame.get(l3_offset..)?;
    let ip: &[u8; ipv4::MIN_HEADER_LEN] = packet.first_chunk()?;
    // Version 4, header length 5 words: no options.
    if ip[0] != 0x45 {
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if total_len < ipv4::MIN_HEADER_LEN || total_len > packet.len() {
        return None;
    }
    // More-fragments flag or a fragment offset: a fragment.
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return None;
    }
    if header_sum_v4(ip) != 0xffff {
        return None;
    }
    let payload = packet.get(ipv4::MIN_HEADER_LEN..total_len)?;
    let protocol = ip[9];
    let (ports, tcp_flags): (&[u8; 4], u8) = match protocol {
        tcp::PROTOCOL => {
            let header: &[u8; tcp::MIN_HEADER_LEN] = payload.first_chunk()?;
            let header_len = usize::from(header[12] >> 4) * 4;
            if header_len < tcp::MIN_HEADER_LEN || header_len > payload.len() {
                return None;
            }
            (header.first_chunk()?, header[13])
        }
        udp::PROTOCOL => {
            let header: &[u8; udp::HEADER_LEN] = payload.first_chunk()?;
            let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
            if len < udp::HEADER_LEN || len > payload.len() {
                return None;
            }
            (header.first_chunk()?, 0)
        }
        _ => return None,
    };
    let [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5, ..] = *eth;
    Some(PlainIpv4 {
        dst_mac: [d0, d1, d2, d3, d4, d5],
        src_mac: [s0, s1, s2, s3, s4, s5],
        vlan,
        src: [ip[12], ip[13], ip[14], ip[15]],
        dst: [ip[16], ip[17], ip[18], ip[19]],
        l3_offset: l3_offset as u8,
        protocol,
        ttl: ip[8],
        tcp_flags,
        src_port: u16::from_be_bytes([ports[0], ports[1]]),
        dst_port: u16::from_be_bytes([ports[2], ports[3]]),
    })
}

/// The folded ones'-complement sum of a 20-byte IPv4 header, as five
/// 32-bit words (RFC 1071 §2(B): the sum is byte-order and word-size
/// independent once folded): 0xffff when its checksum is right.
///
/// The words are read in the machine's order (no byte swaps): the folded
/// sum is then the byte-swapped network-order one, and 0xffff reads the
/// same either way. The fold is a fixed four steps, without a loop: five
/// 32-bit words sum to under 2^35.
#[inline]
fn header_sum_v4(ip: &[u8; ipv4::MIN_HEADER_LEN]) -> u16 {
    let word = |i: usize| u64::from(u32::from_le_bytes([ip[i], ip[i + 1], ip[i + 2], ip[i + 3]]));
    let sum = word(0) + word(4) + word(8) + word(12) + word(16);
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// [`parse_frame`] layer by layer through the checked views: every frame,
/// and the error naming what is wrong with a bad one. A caller that has
/// already tried [`parse_plain_ipv4`] calls this for the frames it declined
/// rather than [`parse_frame`], which would try it again.
pub fn parse_frame_layered(frame: &[u8]) -> Result<FrameInfo, WireError> {
    let eth = ethernet::Frame::new_checked(frame)?;
    let l3_offset = eth.header_len();
    let payload = eth.payload();
    let (l3, l4_from_l3) = match eth.ethertype() {
        ethertype::IPV4 => parse_ipv4(payload)?,
        ethertype::IPV6 => parse_ipv6(payload)?,
        ethertype::ARP => {
            let packet = arp::Packet::new_checked(payload)?;
            (L3Info::Arp(ArpRepr::parse(&packet)), arp::PACKET_LEN)
        }
        _ => return Err(WireError::UnsupportedEtherType),
    };
    Ok(FrameInfo {
        dst_mac: eth.dst_addr(),
        src_mac: eth.src_addr(),
        vlan: eth.vlan_id(),
        l3_offset: l3_offset as u16,
        // At most 18 + 65535 + 40; a frame cannot be that long on any port
        // palisade drives, and the IP lengths checked above bound it anyway.
        l4_offset: (l3_offset + l4_from_l3) as u16,
        l3,
    })
}

#[inline]
fn parse_ipv4(bytes: &[u8]) -> Result<(L3Info, usize), WireError> {
    let packet = ipv4::Packet::new_checked(bytes)?;
    if !packet.verify_checksum() {
        return Err(WireError::Ipv4BadChecksum);
    }
    let header_len = packet.header_len();
    let payload = packet.payload();
    let fragment = packet.is_fragment().then(|| FragmentInfo {
        id: u32::from(packet.ident()),
        offset: packet.fragment_offset(),
        more: packet.more_fragments(),
    });
    if let Some(f) = fragment
        && usize::from(f.offset) + payload.len() > ipv4::MAX_DATAGRAM_LEN
    {
        return Err(WireError::Ipv4BadFragment);
    }
    let protocol = packet.protocol();
    let l4 = match fragment {
        Some(f) if f.offset != 0 => L4Info::NotFirstFragment,
        _ => parse_l4(protocol, payload, false)?,
    };
    let info = IpInfo {
        src: IpAddr::V4(packet.src_addr()),
        dst: IpAddr::V4(packet.dst_addr()),
        protocol,
        ttl: packet.ttl(),
        fragment,
        l4,
    };
    Ok((L3Info::Ipv4(info), header_len))
}

#[inline]
fn parse_ipv6(bytes: &[u8]) -> Result<(L3Info, usize), WireError> {
    let packet = ipv6::Packet::new_checked(bytes)?;
    let payload = packet.payload();
    let upper = walk_extension_headers(packet.next_header(), payload)?;
    let fragment = upper.fragment.map(|f| FragmentInfo {
        id: f.ident,
        offset: f.offset,
        more: f.more,
    });
    let l4 = match fragment {
        Some(f) if f.offset != 0 => L4Info::NotFirstFragment,
        _ => parse_l4(upper.protocol, &payload[upper.offset..], true)?,
    };
    let info = IpInfo {
        src: IpAddr::V6(packet.src_addr()),
        dst: IpAddr::V6(packet.dst_addr()),
        protocol: upper.protocol,
        ttl: packet.hop_limit(),
        fragment,
        l4,
    };
    Ok((L3Info::Ipv6(info), ipv6::HEADER_LEN + upper.offset))
}

#[inline]
fn parse_l4(protocol: u8, bytes: &[u8], is_ipv6: bool) -> Result<L4Info, WireError> {
    Ok(match (protocol, is_ipv6) {
        (tcp::PROTOCOL, _) => {
            let segment = tcp::Packet::new_checked(bytes)?;
            L4Info::Tcp {
                src_port: segment.src_port(),
                dst_port: segment.dst_port(),
                flags: segment.flags().0,
            }
        }
        (udp::PROTOCOL, _) => {
            let datagram = udp::Packet::new_checked(bytes)?;
            L4Info::Udp {
                src_port: datagram.src_port(),
                dst_port: datagram.dst_port(),
            }
        }
        (icmpv4::PROTOCOL, false) => {
            let message = icmpv4::Packet::new_checked(bytes)?;
            let (ty, code) = (message.msg_type(), message.msg_code());
            if icmpv4::is_error(ty) {
                L4Info::IcmpError {
                    ty,
                    code,
                    quoted: parse_quoted(message.data(), false)?,
                }
            } else {
                let echo_id = matches!(
                    ty,
                    icmpv4::message::ECHO_REQUEST | icmpv4::message::ECHO_REPLY
                )
                .then(|| message.echo_ident());
                L4Info::Icmp { ty, code, echo_id }
            }
        }
        (icmpv6::PROTOCOL, true) => {
            let message = icmpv6::Packet::new_checked(bytes)?;
            let (ty, code) = (message.msg_type(), message.msg_code());
            if icmpv6::is_error(ty) {
                L4Info::IcmpError {
                    ty,
                    code,
                    quoted: parse_quoted(message.data(), true)?,
                }
            } else {
                let echo_id = matches!(
                    ty,
                    icmpv6::message::ECHO_REQUEST | icmpv6::message::ECHO_REPLY
                )
                .then(|| message.echo_ident());
                L4Info::Icmpv6 {
                    ty,
                    code,
                    echo_id,
                    nd_target: message.nd_target(),
                }
            }
        }
        _ => L4Info::Other,
    })
}

/// Parses the packet an ICMP error quotes, leniently: the quote is usually
/// cut short (RFC 792 promises the IP header and 8 bytes), so lengths in the
/// quoted header are not checked against what is present and its checksum is
/// not verified. What must be present is the IP header (and extension
/// headers) and, for TCP, UDP and ICMP echo, the first 4 bytes carrying ports
/// or the identifier; otherwise the quote names no flow and is refused.
pub fn parse_quoted(bytes: &[u8], is_ipv6: bool) -> Result<QuotedPacket, WireError> {
    let (src, dst, protocol, l4, non_first_fragment) = if is_ipv6 {
        if bytes.len() < ipv6::HEADER_LEN || bytes[0] >> 4 != 6 {
            return Err(WireError::BadQuotedPacket);
        }
        let header = ipv6::Packet::new_unchecked(bytes);
        let rest = &bytes[ipv6::HEADER_LEN..];
        let upper = walk_extension_headers(header.next_header(), rest)
            .map_err(|_| WireError::BadQuotedPacket)?;
        let non_first = upper.fragment.is_some_and(|f| f.offset != 0);
        (
            IpAddr::V6(header.src_addr()),
            IpAddr::V6(header.dst_addr()),
            upper.protocol,
            &rest[upper.offset..],
            non_first,
        )
    } else {
        if bytes.len() < ipv4::MIN_HEADER_LEN || bytes[0] >> 4 != 4 {
            return Err(WireError::BadQuotedPacket);
        }
        let header = ipv4::Packet::new_unchecked(bytes);
        let header_len = header.header_len();
        if header_len < ipv4::MIN_HEADER_LEN || bytes.len() < header_len {
            return Err(WireError::BadQuotedPacket);
        }
        let non_first = header.fragment_offset() != 0;
        (
            IpAddr::V4(header.src_addr()),
            IpAddr::V4(header.dst_addr()),
            header.protocol(),
            &bytes[header_len..],
            non_first,
        )
    };
    let mut quoted = QuotedPacket {
        src,
        dst,
        protocol,
        src_port: 0,
        dst_port: 0,
    };
    if non_first_fragment {
        return Ok(quoted);
    }
    let u16_at = |at: usize| -> Result<u16, WireError> {
        l4.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(WireError::BadQuotedPacket)
    };
    match (protocol, is_ipv6) {
        (tcp::PROTOCOL | udp::PROTOCOL, _) => {
            quoted.src_port = u16_at(0)?;
            quoted.dst_port = u16_at(2)?;
        }
        (icmpv4::PROTOCOL, false) | (icmpv6::PROTOCOL, true) => {
            let ty = *l4.first().ok_or(WireError::BadQuotedPacket)?;
            let is_echo = if is_ipv6 {
                matches!(
                    ty,
                    icmpv6::message::ECHO_REQUEST | icmpv6::message::ECHO_REPLY
                )
            } else {
                matches!(
                    ty,
                    icmpv4::message::ECHO_REQUEST | icmpv4::message::ECHO_REPLY
                )
            };
            if is_echo {
                let ident = u16_at(4)?;
                quoted.src_port = ident;
                quoted.dst_port = ident;
            }
        }
        _ => {}
    }
    Ok(quoted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{IpRepr, Ipv6Extensions, PacketBuilder, TransportRepr};
    use crate::ethernet::EthernetRepr;
    use crate::icmpv4::Icmpv4Repr;
    use crate::icmpv6::Icmpv6Repr;
    use crate::ipv4::Ipv4Repr;
    use crate::ipv6::{Ipv6Fragment, Ipv6Repr};
    use crate::tcp::{TcpFlags, TcpRepr};
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    proptest! {
        /// The plain reader's header check agrees with the checksum module:
        /// a header with its checksum filled in passes, and any header
        /// passes exactly when its network-order sum folds to 0xffff.
        #[test]
        fn the_header_sum_agrees_with_the_checksum_module(
            mut header in any::<[u8; 20]>(),
            fill in any::<bool>(),
        ) {
            if fill {
                header[10..12].fill(0);
                let c = crate::checksum::checksum(&header);
                header[10..12].copy_from_slice(&c.to_be_bytes());
                prop_assert_eq!(header_sum_v4(&header), 0xffff);
            }
            let reference = crate::checksum::fold(crate::checksum::sum(&header));
            prop_assert_eq!(header_sum_v4(&header) == 0xffff, reference == 0xffff);
        }
    }

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    // A captured-style IPv4/TCP SYN: 02:..:01 -> 02:..:02, 10.0.0.1:40000 ->
    // 10.0.0.2:80, TTL 64, DF, id 0x1c46, MSS/NOP/WS/SACK-permitted options.
    // IP checksum 0x0a7c and TCP checksum 0xc38c computed independently of
    // this crate (Python, RFC 1071).
    const SYN_FRAME: [u8; 66] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08,
        0x00, // eth
        0x45, 0x00, 0x00, 0x34, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x0a, 0x7c, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, // ipv4
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x02, 0xfa,
        0xf0, 0xc3, 0x8c, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07, 0x04, 0x02,
        0x01, 0x01, // tcp
    ];

    fn v4(src: [u8; 4], dst: [u8; 4]) -> Ipv4Repr {
        Ipv4Repr {
            src: src.into(),
            dst: dst.into(),
            protocol: 0,
            payload_len: 0,
            ttl: 64,
            dscp_ecn: 0,
            ident: 7,
            dont_fragment: false,
            more_fragments: false,
            fragment_offset: 0,
        }
    }

    fn v6(src: u16, dst: u16) -> Ipv6Repr {
        Ipv6Repr {
            src: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, src),
            dst: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, dst),
            next_header: 0,
            payload_len: 0,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
    }

    fn build(
        vlan: Option<u16>,
        ip: IpRepr,
        ext: Ipv6Extensions,
        transport: TransportRepr,
        payload: &[u8],
    ) -> Vec<u8> {
        let builder = PacketBuilder {
            ethernet: EthernetRepr {
                dst: B,
                src: A,
                vlan,
                ethertype: 0,
            },
            ip,
            ipv6_extensions: ext,
            transport,
        };
        let mut out = vec![0u8; builder.frame_len(payload.len())];
        assert_eq!(builder.emit(payload, &mut out), Ok(out.len()));
        out
    }

    fn ip_info(info: &FrameInfo) -> IpInfo {
        match info.l3 {
            L3Info::Ipv4(ip) | L3Info::Ipv6(ip) => ip,
            L3Info::Arp(_) => panic!("not IP"),
        }
    }

    #[test]
    fn parses_known_syn_frame() {
        let info = parse_frame(&SYN_FRAME).unwrap();
        assert_eq!(info.dst_mac, B);
        assert_eq!(info.src_mac, A);
        assert_eq!(info.vlan, None);
        assert_eq!((info.l3_offset, info.l4_offset), (14, 34));
        assert_eq!(
            info.l3,
            L3Info::Ipv4(IpInfo {
                src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                protocol: 6,
                ttl: 64,
                fragment: None,
                l4: L4Info::Tcp {
                    src_port: 40000,
                    dst_port: 80,
                    flags: TcpFlags::SYN.0
                },
            })
        );
        let mut bad = SYN_FRAME;
        bad[24] ^= 0xff;
        assert_eq!(parse_frame(&bad), Err(WireError::Ipv4BadChecksum));
    }

    #[test]
    fn builder_reproduces_the_known_syn() {
        let syn = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq_number: 1,
            ack_number: 0,
            flags: TcpFlags::SYN,
            window: 64240,
            urgent: 0,
            max_segment_size: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
        };
        let ip = Ipv4Repr {
            ident: 0x1c46,
            dont_fragment: true,
            ..v4([10, 0, 0, 1], [10, 0, 0, 2])
        };
        let built = build(
            None,
            IpRepr::Ipv4(ip),
            Ipv6Extensions::default(),
            TransportRepr::Tcp(syn),
            &[],
        );
        // Our emitter orders options MSS, WS, SACK-permitted and pads with
        // EOL; the capture has NOPs. Compare all but the option bytes, then
        // the meaning.
        assert_eq!(built.len(), SYN_FRAME.len());
        assert_eq!(built[..50], SYN_FRAME[..50]);
        assert_eq!(
            parse_frame(&built).unwrap(),
            parse_frame(&SYN_FRAME).unwrap()
        );
    }

    #[test]
    fn every_truncation_of_every_kind_is_an_error() {
        for frame in sample_frames() {
            assert!(parse_frame(&frame).is_ok());
            for len in 0..frame.len() {
                assert!(
                    parse_frame(&frame[..len]).is_err(),
                    "len {len} of {frame:02x?}"
                );
            }
        }
    }

    fn sample_frames() -> Vec<Vec<u8>> {
        let tcp = TransportRepr::Tcp(TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq_number: 3,
            ack_number: 4,
            flags: TcpFlags::ACK,
            window: 5,
            urgent: 0,
            max_segment_size: None,
            window_scale: None,
            sack_permitted: false,
        });
        let udp = TransportRepr::Udp {
            src_port: 5353,
            dst_port: 53,
        };
        let ext = Ipv6Extensions {
            destination_options: true,
            fragment: None,
        };
        let none = Ipv6Extensions::default();
        let quote4 = build(
            None,
            IpRepr::Ipv4(v4([10, 0, 0, 2], [8, 8, 8, 8])),
            none,
            udp,
            b"query",
        );
        let quote6 = build(None, IpRepr::Ipv6(v6(2, 9)), ext, tcp, b"");
        vec![
            SYN_FRAME.to_vec(),
            build(
                Some(7),
                IpRepr::Ipv4(v4([1, 2, 3, 4], [5, 6, 7, 8])),
                none,
                udp,
                b"hello",
            ),
            build(None, IpRepr::Ipv6(v6(1, 2)), ext, tcp, b"data"),
            build(
                None,
                IpRepr::Ipv4(v4([10, 0, 0, 1], [10, 0, 0, 2])),
                none,
                TransportRepr::Icmpv4(Icmpv4Repr::DestUnreachable {
                    code: 3,
                    next_hop_mtu: 0,
                }),
                &quote4[14..14 + 28],
            ),
            build(
                Some(3),
                IpRepr::Ipv6(v6(1, 2)),
                none,
                TransportRepr::Icmpv6(Icmpv6Repr::PacketTooBig { mtu: 1280 }),
                &quote6[14..14 + 48 + 8],
            ),
            build(
                None,
                IpRepr::Ipv6(v6(1, 2)),
                none,
                TransportRepr::Icmpv6(Icmpv6Repr::NeighborSolicit {
                    target: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
                    source_lladdr: Some(A),
                }),
                &[],
            ),
        ]
    }

    #[test]
    fn icmp_errors_name_the_quoted_flow() {
        let frames = sample_frames();
        let v4_error = ip_info(&parse_frame(&frames[3]).unwrap());
        assert_eq!(
            v4_error.l4,
            L4Info::IcmpError {
                ty: 3,
                code: 3,
                quoted: QuotedPacket {
                    src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                    dst: IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
                    protocol: 17,
                    src_port: 5353,
                    dst_port: 53,
                },
            }
        );
        let v6_error = parse_frame(&frames[4]).unwrap();
        assert_eq!(v6_error.vlan, Some(3));
        let L4Info::IcmpError { ty: 2, quoted, .. } = ip_info(&v6_error).l4 else {
            panic!("not an error")
        };
        assert_eq!(
            (quoted.protocol, quoted.src_port, quoted.dst_port),
            (6, 1, 2)
        );
        assert_eq!(
            quoted.dst,
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9))
        );
        // A quote cut inside the ports is refused; one cut after them is fine.
        let cut = &frames[3][..14 + 20 + 8 + 20 + 3];
        let mut cut = cut.to_vec();
        fix_ipv4_lengths(&mut cut);
        assert_eq!(parse_frame(&cut), Err(WireError::BadQuotedPacket));
    }

    /// Makes a truncated IPv4 frame consistent again (total length, IP checksum).
    fn fix_ipv4_lengths(frame: &mut [u8]) {
        let total = (frame.len() - 14) as u16;
        frame[16..18].copy_from_slice(&total.to_be_bytes());
        let mut packet = crate::ipv4::Packet::new_unchecked(&mut frame[14..]);
        packet.fill_checksum();
    }

    #[test]
    fn echo_and_nd_facts() {
        let echo = build(
            None,
            IpRepr::Ipv4(v4([10, 0, 0, 1], [10, 0, 0, 2])),
            Ipv6Extensions::default(),
            TransportRepr::Icmpv4(Icmpv4Repr::EchoRequest {
                ident: 0xbeef,
                seq_no: 1,
            }),
            b"ping",
        );
        assert_eq!(
            ip_info(&parse_frame(&echo).unwrap()).l4,
            L4Info::Icmp {
                ty: 8,
                code: 0,
                echo_id: Some(0xbeef)
            }
        );
        let ns = parse_frame(&sample_frames()[5]).unwrap();
        assert_eq!(
            ip_info(&ns).l4,
            L4Info::Icmpv6 {
                ty: 135,
                code: 0,
                echo_id: None,
                nd_target: Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            }
        );
    }

    #[test]
    fn fragments() {
        let udp = TransportRepr::Udp {
            src_port: 1,
            dst_port: 2,
        };
        let first = build(
            None,
            IpRepr::Ipv4(Ipv4Repr {
                more_fragments: true,
                ident: 99,
                ..v4([1, 1, 1, 1], [2, 2, 2, 2])
            }),
            Ipv6Extensions::default(),
            udp,
            &[0; 16],
        );
        let info = ip_info(&parse_frame(&first).unwrap());
        assert_eq!(
            info.fragment,
            Some(FragmentInfo {
                id: 99,
                offset: 0,
                more: true
            })
        );
        assert_eq!(
            info.l4,
            L4Info::Udp {
                src_port: 1,
                dst_port: 2
            }
        );
        let later = build(
            None,
            IpRepr::Ipv4(Ipv4Repr {
                fragment_offset: 1480,
                ident: 99,
                ..v4([1, 1, 1, 1], [2, 2, 2, 2])
            }),
            Ipv6Extensions::default(),
            TransportRepr::Raw { protocol: 17 },
            &[0xff; 3],
        );
        let info = ip_info(&parse_frame(&later).unwrap());
        assert_eq!(
            info.fragment,
            Some(FragmentInfo {
                id: 99,
                offset: 1480,
                more: false
            })
        );
        assert_eq!((info.protocol, info.l4), (17, L4Info::NotFirstFragment));
        let overflow = build(
            None,
            IpRepr::Ipv4(Ipv4Repr {
                fragment_offset: 65528,
                ..v4([1, 1, 1, 1], [2, 2, 2, 2])
            }),
            Ipv6Extensions::default(),
            TransportRepr::Raw { protocol: 17 },
            &[0; 8],
        );
        assert_eq!(parse_frame(&overflow), Err(WireError::Ipv4BadFragment));
        let v6_later = build(
            None,
            IpRepr::Ipv6(v6(1, 2)),
            Ipv6Extensions {
                destination_options: true,
                fragment: Some(Ipv6Fragment {
                    ident: 0xabcdef,
                    offset: 8,
                    more: true,
                }),
            },
            TransportRepr::Raw { protocol: 6 },
            &[0; 3],
        );
        let info = parse_frame(&v6_later).unwrap();
        assert_eq!(info.l4_offset, 14 + 40 + 16);
        let ip = ip_info(&info);
        assert_eq!(
            ip.fragment,
            Some(FragmentInfo {
                id: 0xabcdef,
                offset: 8,
                more: true
            })
        );
        assert_eq!((ip.protocol, ip.l4), (6, L4Info::NotFirstFragment));
    }

    #[test]
    fn rejects_unknown_ethertype_and_wrong_version() {
        let mut frame = SYN_FRAME;
        frame[12..14].copy_from_slice(&[0x88, 0xcc]); // LLDP
        assert_eq!(parse_frame(&frame), Err(WireError::UnsupportedEtherType));
        frame[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(parse_frame(&frame), Err(WireError::Ipv6BadVersion));
        assert_eq!(
            parse_frame(&frame[..14 + 39]),
            Err(WireError::TruncatedIpv6)
        );
    }

    #[test]
    fn agrees_with_etherparse_on_the_samples() {
        for frame in sample_frames() {
            let ours = parse_frame(&frame).unwrap();
            let theirs = etherparse::SlicedPacket::from_ethernet(&frame).unwrap();
            let ports = match theirs.transport {
                Some(etherparse::TransportSlice::Tcp(t)) => {
                    Some((t.source_port(), t.destination_port()))
                }
                Some(etherparse::TransportSlice::Udp(u)) => {
                    Some((u.source_port(), u.destination_port()))
                }
                _ => None,
            };
            let our_ports = match ip_info(&ours).l4 {
                L4Info::Tcp {
                    src_port, dst_port, ..
                }
                | L4Info::Udp { src_port, dst_port } => Some((src_port, dst_port)),
                _ => None,
            };
            assert_eq!(our_ports, ports);
        }
    }

    #[test]
    fn the_known_syn_takes_the_plain_path() {
        assert_eq!(
            parse_plain_ipv4(&SYN_FRAME).map(|p| Ok(p.frame_info())),
            Some(parse_frame_layered(&SYN_FRAME))
        );
    }

    /// A plain IPv4 frame (TCP or UDP, maybe tagged), then damaged: bytes
    /// overwritten anywhere in the headers, perhaps the IPv4 checksum made
    /// right again (so the damage reaches the length and offset checks behind
    /// it), perhaps truncated.
    fn damaged_plain_frame() -> impl Strategy<Value = (Vec<u8>, bool)> {
        (
            proptest::option::of(0u16..4096),
            any::<bool>(),
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<(u16, u16, u8)>(),
            proptest::collection::vec(any::<u8>(), 0..24),
            proptest::collection::vec((0usize..64, any::<u8>()), 0..3),
            any::<bool>(),
            proptest::option::of(0usize..80),
        )
            .prop_map(
                |(vlan, is_tcp, src, dst, (sport, dport, flags), payload, edits, fix, cut)| {
                    let transport = if is_tcp {
                        TransportRepr::Tcp(TcpRepr {
                            src_port: sport,
                            dst_port: dport,
                            seq_number: 0,
                            ack_number: 0,
                            flags: TcpFlags(flags),
                            window: 0,
                            urgent: 0,
                            max_segment_size: None,
                            window_scale: None,
                            sack_permitted: false,
                        })
                    } else {
                        TransportRepr::Udp {
                            src_port: sport,
                            dst_port: dport,
                        }
                    };
                    let mut frame = build(
                        vlan,
                        IpRepr::Ipv4(v4(src, dst)),
                        Ipv6Extensions::default(),
                        transport,
                        &payload,
                    );
                    let pristine = edits.is_empty() && cut.is_none();
                    for (at, byte) in edits {
                        if let Some(b) = frame.get_mut(at) {
                            *b = byte;
                        }
                    }
                    let l3 = if vlan.is_some() { 18 } else { 14 };
                    if fix && frame.len() >= l3 + 20 {
                        frame[l3 + 10..l3 + 12].fill(0);
                        let sum = crate::checksum::checksum(&frame[l3..l3 + 20]);
                        frame[l3 + 10..l3 + 12].copy_from_slice(&sum.to_be_bytes());
                    }
                    if let Some(len) = cut {
                        frame.truncate(len);
                    }
                    (frame, pristine)
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The plain reader and the layered parse agree on every frame the
        /// plain reader accepts, and it accepts every undamaged plain frame
        /// (so the fast path is really taken).
        #[test]
        fn plain_reader_agrees_with_the_layered_parse((frame, pristine) in damaged_plain_frame()) {
            let layered = parse_frame_layered(&frame);
            match parse_plain_ipv4(&frame) {
                Some(fast) => prop_assert_eq!(Ok(fast.frame_info()), layered),
                None => prop_assert!(!pristine, "undamaged plain frame refused: {:?}", layered),
            }
            prop_assert_eq!(parse_frame(&frame), layered);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Differential: random well-formed frames, ours against etherparse
        /// (an independent implementation) on addresses, protocol, ports, VLAN.
        #[test]
        fn differential_against_etherparse(
            vlan in proptest::option::of(0u16..4096), is_v6 in any::<bool>(), ext in any::<bool>(),
            is_tcp in any::<bool>(), src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
            src_port in any::<u16>(), dst_port in any::<u16>(), flags in any::<u8>(), ttl in 1u8..=255,
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let ip = if is_v6 {
                IpRepr::Ipv6(Ipv6Repr { src: src.into(), dst: dst.into(), hop_limit: ttl, ..v6(0, 0) })
            } else {
                IpRepr::Ipv4(Ipv4Repr {
                    src: [src[0], src[1], src[2], src[3]].into(), dst: [dst[0], dst[1], dst[2], dst[3]].into(),
                    ttl, ..v4([0; 4], [0; 4])
                })
            };
            let transport = if is_tcp {
                TransportRepr::Tcp(TcpRepr {
                    src_port, dst_port, seq_number: 0, ack_number: 0, flags: TcpFlags(flags), window: 0,
                    urgent: 0, max_segment_size: None, window_scale: None, sack_permitted: false,
                })
            } else {
                TransportRepr::Udp { src_port, dst_port }
            };
            let frame = build(vlan, ip, Ipv6Extensions { destination_options: ext, fragment: None }, transport, &payload);
            let ours = parse_frame(&frame).unwrap();
            let theirs = etherparse::SlicedPacket::from_ethernet(&frame).unwrap();
            let their_vlan = match theirs.vlan() {
                Some(etherparse::VlanSlice::SingleVlan(v)) => Some(v.vlan_identifier().value()),
                _ => None,
            };
            prop_assert_eq!(ours.vlan, their_vlan);
            let (their_src, their_dst, their_ttl) = match &theirs.net {
                Some(etherparse::NetSlice::Ipv4(h)) => (IpAddr::V4(h.header().source_addr()), IpAddr::V4(h.header().destination_addr()), h.header().ttl()),
                Some(etherparse::NetSlice::Ipv6(h)) => (IpAddr::V6(h.header().source_addr()), IpAddr::V6(h.header().destination_addr()), h.header().hop_limit()),
                _ => panic!("etherparse found no IP"),
            };
            let ip = ip_info(&ours);
            prop_assert_eq!((ip.src, ip.dst, ip.ttl), (their_src, their_dst, their_ttl));
            let (their_l4, their_payload_offset) = match &theirs.transport {
                Some(etherparse::TransportSlice::Tcp(t)) => (L4Info::Tcp { src_port: t.source_port(), dst_port: t.destination_port(), flags: t.slice()[13] }, t.slice().as_ptr()),
                Some(etherparse::TransportSlice::Udp(u)) => (L4Info::Udp { src_port: u.source_port(), dst_port: u.destination_port() }, u.slice().as_ptr()),
                _ => panic!("etherparse found no TCP/UDP"),
            };
            prop_assert_eq!(ip.l4, their_l4);
            prop_assert_eq!(usize::from(ours.l4_offset), their_payload_offset as usize - frame.as_ptr() as usize);
        }

        #[test]
        fn never_panics_on_mutated_frames(index in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let frames = sample_frames();
            let mut frame = frames[index.index(frames.len())].clone();
            let at = at.index(frame.len());
            frame[at] = byte;
            let cut = cut.index(frame.len() + 1);
            let _ = parse_frame(&frame[..cut]);
        }
    }
}

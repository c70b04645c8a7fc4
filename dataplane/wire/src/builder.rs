//! Emitting whole frames from Reprs: tests, the fuzz seed corpus, the
//! traffic generator and pcap golden tests make their packets here, so every
//! length and checksum in a made packet is right by construction.

use core::net::IpAddr;

use crate::WireError;
use crate::ethernet::{EthernetRepr, ethertype};
use crate::icmpv4::{self, Icmpv4Repr};
use crate::icmpv6::{self, Icmpv6Repr};
use crate::ipv4::Ipv4Repr;
use crate::ipv6::{Ipv6Fragment, Ipv6Repr, next_header};
use crate::tcp::{self, TcpRepr};
use crate::udp;

/// The IP header of a frame being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRepr {
    /// IPv4; `protocol` and `payload_len` are overwritten by the builder.
    Ipv4(Ipv4Repr),
    /// IPv6; `next_header` and `payload_len` are overwritten by the builder.
    Ipv6(Ipv6Repr),
}

/// The upper layer of a frame being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportRepr {
    /// TCP; the payload is the segment data.
    Tcp(TcpRepr),
    /// UDP with these ports; the payload is the datagram data.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// ICMPv4; the payload is echo data or the quoted packet.
    Icmpv4(Icmpv4Repr),
    /// ICMPv6; the payload is echo data or the quoted packet.
    Icmpv6(Icmpv6Repr),
    /// Any protocol: the payload is written as it is.
    Raw {
        /// Protocol number.
        protocol: u8,
    },
}

/// Extension headers the builder can put between an IPv6 header and the
/// upper layer (ignored for IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ipv6Extensions {
    /// An 8-byte destination-options header (one PadN option).
    pub destination_options: bool,
    /// A fragment header with these fields.
    pub fragment: Option<Ipv6Fragment>,
}

impl Ipv6Extensions {
    const fn len(&self) -> usize {
        (if self.destination_options { 8 } else { 0 }) + if self.fragment.is_some() { 8 } else { 0 }
    }
}

/// A whole Ethernet / IP / upper-layer frame to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketBuilder {
    /// Ethernet header; the EtherType is set from `ip`.
    pub ethernet: EthernetRepr,
    /// IP header.
    pub ip: IpRepr,
    /// IPv6 extension headers.
    pub ipv6_extensions: Ipv6Extensions,
    /// Upper layer.
    pub transport: TransportRepr,
}

impl PacketBuilder {
    fn transport_len(&self, payload_len: usize) -> usize {
        match self.transport {
            TransportRepr::Tcp(repr) => repr.header_len() + payload_len,
            TransportRepr::Udp { .. } => udp::HEADER_LEN + payload_len,
            TransportRepr::Icmpv4(_) => icmpv4::HEADER_LEN + payload_len,
            TransportRepr::Icmpv6(repr) => repr.message_len(payload_len),
            TransportRepr::Raw { .. } => payload_len,
        }
    }

    fn protocol(&self) -> u8 {
        match self.transport {
            TransportRepr::Tcp(_) => tcp::PROTOCOL,
            TransportRepr::Udp { .. } => udp::PROTOCOL,
            TransportRepr::Icmpv4(_) => icmpv4::PROTOCOL,
            TransportRepr::Icmpv6(_) => icmpv6::PROTOCOL,
            TransportRepr::Raw { protocol } => protocol,
        }
    }

    fn ip_header_len(&self) -> usize {
        match self.ip {
            IpRepr::Ipv4(repr) => repr.header_len(),
            IpRepr::Ipv6(repr) => repr.header_len() + self.ipv6_extensions.len(),
        }
    }

    /// Length of the frame with `payload_len` bytes of upper-layer payload.
    pub fn frame_len(&self, payload_len: usize) -> usize {
        self.ethernet.header_len() + self.ip_header_len() + self.transport_len(payload_len)
    }

    /// Writes the frame into `out`; returns its length. Lengths and
    /// checksums (IP header, TCP, UDP, ICMP, ICMPv6) are filled in.
    pub fn emit(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, WireError> {
        let frame_len = self.frame_len(payload.len());
        let out = out.get_mut(..frame_len).ok_or(WireError::BufferTooSmall)?;
        let transport_len = self.transport_len(payload.len());
        let protocol = self.protocol();
        let ethertype = match self.ip {
            IpRepr::Ipv4(_) => ethertype::IPV4,
            IpRepr::Ipv6(_) => ethertype::IPV6,
        };
        let mut at = EthernetRepr {
            ethertype,
            ..self.ethernet
        }
        .emit(out)?;
        let (src, dst) = match self.ip {
            IpRepr::Ipv4(repr) => {
                let repr = Ipv4Repr {
                    protocol,
                    payload_len: transport_len,
                    ..repr
                };
                at += repr.emit(&mut out[at..])?;
                (IpAddr::V4(repr.src), IpAddr::V4(repr.dst))
            }
            IpRepr::Ipv6(repr) => {
                let extensions = self.ipv6_extensions;
                let first = match (extensions.destination_options, extensions.fragment) {
                    (true, _) => next_header::DESTINATION_OPTIONS,
                    (false, Some(_)) => next_header::FRAGMENT,
                    (false, None) => protocol,
                };
                let payload_len = extensions.len() + transport_len;
                let repr = Ipv6Repr {
                    next_header: first,
                    payload_len,
                    ..repr
                };
                at += repr.emit(&mut out[at..])?;
                if extensions.destination_options {
                    let next = if extensions.fragment.is_some() {
                        next_header::FRAGMENT
                    } else {
                        protocol
                    };
                    out[at..at + 8].copy_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
                    at += 8;
                }
                if let Some(fragment) = extensions.fragment {
                    if fragment.offset % 8 != 0 {
                        return Err(WireError::Unrepresentable);
                    }
                    let offset_flags = fragment.offset | u16::from(fragment.more);
                    out[at] = protocol;
                    out[at + 1] = 0;
                    out[at + 2..at + 4].copy_from_slice(&offset_flags.to_be_bytes());
                    out[at + 4..at + 8].copy_from_slice(&fragment.ident.to_be_bytes());
                    at += 8;
                }
                (IpAddr::V6(repr.src), IpAddr::V6(repr.dst))
            }
        };
        let l4 = &mut out[at..];
        match self.transport {
            TransportRepr::Tcp(repr) => {
                let header_len = repr.emit(l4)?;
                l4[header_len..].copy_from_slice(payload);
                tcp::Packet::new_unchecked(&mut *l4).fill_checksum(src, dst);
            }
            TransportRepr::Udp { src_port, dst_port } => {
                let repr = udp::UdpRepr {
                    src_port,
                    dst_port,
                    payload_len: payload.len(),
                };
                repr.emit(l4)?;
                l4[udp::HEADER_LEN..].copy_from_slice(payload);
                udp::Packet::new_unchecked(&mut *l4).fill_checksum(src, dst);
            }
            TransportRepr::Icmpv4(repr) => {
                repr.emit(payload, l4)?;
            }
            TransportRepr::Icmpv6(repr) => {
                let (IpAddr::V6(src), IpAddr::V6(dst)) = (src, dst) else {
                    return Err(WireError::Unrepresentable);
                };
                repr.emit(src, dst, payload, l4)?;
            }
            TransportRepr::Raw { .. } => l4.copy_from_slice(payload),
        }
        Ok(frame_len)
    }
}

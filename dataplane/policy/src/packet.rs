//! What the policy needs to know about a packet, and which way it is going.
//!
//! The data plane's parser fills a [`PacketFields`] once per packet (for the
//! first packet of a flow, in practice) and passes it to every policy
//! question: NACL, security groups, `explain`. Keeping it a plain struct
//! keeps this crate independent of the wire crate.

use core::net::IpAddr;

use crate::spec::Protocol;

/// The header fields security groups and NACLs look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketFields {
    /// IP source.
    pub src: IpAddr,
    /// IP destination.
    pub dst: IpAddr,
    /// IP protocol number (IPv6: the upper-layer protocol after extension headers).
    pub protocol: u8,
    /// TCP/UDP source port; 0 otherwise.
    pub src_port: u16,
    /// TCP/UDP destination port; 0 otherwise. Rules and NACL entries match on this.
    pub dst_port: u16,
    /// ICMP/ICMPv6 type; 0 otherwise.
    pub icmp_type: u8,
    /// ICMP/ICMPv6 code; 0 otherwise.
    pub icmp_code: u8,
}

impl PacketFields {
    /// A TCP or UDP packet.
    pub fn l4(src: IpAddr, dst: IpAddr, protocol: u8, src_port: u16, dst_port: u16) -> Self {
        Self {
            src,
            dst,
            protocol,
            src_port,
            dst_port,
            icmp_type: 0,
            icmp_code: 0,
        }
    }

    /// An ICMP (or ICMPv6, by `protocol`) packet.
    pub fn icmp(src: IpAddr, dst: IpAddr, protocol: u8, icmp_type: u8, icmp_code: u8) -> Self {
        Self {
            src,
            dst,
            protocol,
            src_port: 0,
            dst_port: 0,
            icmp_type,
            icmp_code,
        }
    }

    /// The 16-bit value a rule's [`PortSpec`](crate::PortSpec) is compared
    /// with: the destination port for TCP/UDP, `type << 8 | code` for
    /// ICMP/ICMPv6, 0 for everything else (whose rules cover all ports).
    /// One key for all protocols lets the classifier keep a single port table.
    pub fn port_key(&self) -> u16 {
        match self.protocol {
            Protocol::TCP | Protocol::UDP => self.dst_port,
            Protocol::ICMP | Protocol::ICMPV6 => {
                u16::from(self.icmp_type) << 8 | u16::from(self.icmp_code)
            }
            _ => 0,
        }
    }
}

/// Which way a packet crosses an ENI or a subnet boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Into the ENI / subnet: the peer is the packet's source.
    Ingress,
    /// Out of the ENI / subnet: the peer is the packet's destination.
    Egress,
}

impl Direction {
    /// Both directions, in array-index order.
    pub const BOTH: [Self; 2] = [Self::Ingress, Self::Egress];

    /// 0 for ingress, 1 for egress; indexes per-direction tables.
    pub fn index(self) -> usize {
        match self {
            Self::Ingress => 0,
            Self::Egress => 1,
        }
    }

    /// The other direction.
    #[must_use]
    pub fn reverse(self) -> Self {
        match self {
            Self::Ingress => Self::Egress,
            Self::Egress => Self::Ingress,
        }
    }

    /// The address of the far end of the packet, which rule peers and NACL
    /// blocks are matched against.
    pub fn remote_addr(self, pkt: &PacketFields) -> IpAddr {
        match self {
            Self::Ingress => pkt.src,
            Self::Egress => pkt.dst,
        }
    }
}

impl core::fmt::Display for Direction {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Ingress => "ingress",
            Self::Egress => "egress",
        })
    }
}

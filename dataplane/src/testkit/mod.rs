//! Frames and worlds for tests, benchmarks, fuzz seeds and golden pcaps.
//!
//! Everything a test sends through `process()` is made here from a few
//! plain fields, so a test reads as "ENI A sends a SYN to B:80", not as a
//! byte array. Built on `palisade-wire`'s emitters: the frames are exactly
//! what a Linux host would put on the wire (checksums included).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_policy::{
    ConntrackTimeouts, EniSpec, IpCidr, Ipv4Cidr, Ipv6Cidr, NaclAction, NaclEntry, NaclId,
    NaclSpec, Peer, PolicySpec, PortSpec, Protocol, SecurityGroupSpec, SgId, SgRule, SubnetSpec,
    VpcSpec,
};
use palisade_wire::MacAddr;
use palisade_wire::arp::{ArpOperation, ArpRepr};
use palisade_wire::builder::{IpRepr, Ipv6Extensions, PacketBuilder, TransportRepr};
use palisade_wire::ethernet::{EthernetRepr, ethertype};
use palisade_wire::icmpv4::Icmpv4Repr;
use palisade_wire::icmpv6::Icmpv6Repr;
use palisade_wire::ipv4::Ipv4Repr;
use palisade_wire::ipv6::{Ipv6Fragment, Ipv6Repr};
use palisade_wire::tcp::{TcpFlags, TcpRepr};

/// The upper layer of a test frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A TCP segment with these flags (`palisade_wire::tcp::TcpFlags` bits).
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Flag bits.
        flags: u8,
    },
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// An ICMP (v4 or v6, by address family) echo request or reply.
    Echo {
        /// Identifier.
        id: u16,
        /// Reply rather than request.
        reply: bool,
    },
    /// An ICMP destination-unreachable (port unreachable) quoting `quoted`'s
    /// IP packet (a frame made by [`frame`]).
    Unreachable {
        /// The frame whose IP packet is quoted.
        quoted: Vec<u8>,
    },
    /// Another protocol, with a few bytes of payload.
    Raw {
        /// Protocol number.
        protocol: u8,
    },
}

/// A test frame: Ethernet (optionally tagged), IPv4 or IPv6, [`Payload`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// 802.1Q VLAN id.
    pub vlan: Option<u16>,
    /// Source address.
    pub src: IpAddr,
    /// Destination address (same family as `src`).
    pub dst: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// Upper layer.
    pub payload: Payload,
    /// Make this a fragment: (identification, offset in bytes, more fragments).
    pub fragment: Option<(u32, u16, bool)>,
}

impl FrameSpec {
    /// A frame with TTL 64, untagged, unfragmented.
    pub fn new(
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src: IpAddr,
        dst: IpAddr,
        payload: Payload,
    ) -> Self {
        FrameSpec {
            src_mac,
            dst_mac,
            vlan: None,
            src,
            dst,
            ttl: 64,
            payload,
            fragment: None,
        }
    }
}

/// TCP flag bits, for [`Payload::Tcp`].
pub mod worlds;

pub mod flags {
    use super::TcpFlags;
    /// SYN.
    pub const SYN: u8 = TcpFlags::SYN.0;
    /// SYN+ACK.
    pub const SYN_ACK: u8 = TcpFlags::SYN.0 | TcpFlags::ACK.0;
    /// ACK.
    pub const ACK: u8 = TcpFlags::ACK.0;
    /// FIN+ACK.
    pub const FIN_ACK: u8 = TcpFlags::FIN.0 | TcpFlags::ACK.0;
    /// RST.
    pub const RST: u8 = TcpFlags::RST.0;
}

/// Builds the frame. Panics only on a spec no test should write (mixed
/// address families), never on packet content.
pub fn frame(spec: &FrameSpec) -> Vec<u8> {
    const DATA: &[u8] = b"palisade test payload...";
    let ethernet = EthernetRepr {
        dst: MacAddr(spec.dst_mac),
        src: MacAddr(spec.src_mac),
        vlan: spec.vlan,
        ethertype: 0,
    };
    let v6 = spec.src.is_ipv6();
    let (transport, data): (TransportRepr, Vec<u8>) = match &spec.payload {
        Payload::Tcp {
            src_port,
            dst_port,
            flags,
        } => (
            TransportRepr::Tcp(TcpRepr {
                src_port: *src_port,
                dst_port: *dst_port,
                seq_number: 1000,
                ack_number: if flags & flags::ACK != 0 { 2000 } else { 0 },
                flags: TcpFlags(*flags),
                window: 64240,
                urgent: 0,
                max_segment_size: None,
                window_scale: None,
                sack_permitted: false,
            }),
            DATA.to_vec(),
        ),
        Payload::Udp { src_port, dst_port } => (
            TransportRepr::Udp {
                src_port: *src_port,
                dst_port: *dst_port,
            },
            DATA.to_vec(),
        ),
        Payload::Echo { id, reply } => {
            let t = match (v6, reply) {
                (false, false) => TransportRepr::Icmpv4(Icmpv4Repr::EchoRequest {
                    ident: *id,
                    seq_no: 1,
                }),
                (false, true) => TransportRepr::Icmpv4(Icmpv4Repr::EchoReply {
                    ident: *id,
                    seq_no: 1,
                }),
                (true, false) => TransportRepr::Icmpv6(Icmpv6Repr::EchoRequest {
                    ident: *id,
                    seq_no: 1,
                }),
                (true, true) => TransportRepr::Icmpv6(Icmpv6Repr::EchoReply {
                    ident: *id,
                    seq_no: 1,
                }),
            };
            (t, DATA.to_vec())
        }
        Payload::Unreachable { quoted } => {
            let t = if v6 {
                TransportRepr::Icmpv6(Icmpv6Repr::DestUnreachable { code: 4 })
            } else {
                TransportRepr::Icmpv4(Icmpv4Repr::DestUnreachable {
                    code: 3,
                    next_hop_mtu: 0,
                })
            };
            let l3 = ip_offset(quoted);
            let end = quoted.len().min(l3 + if v6 { 48 } else { 28 });
            (t, quoted.get(l3..end).unwrap_or_default().to_vec())
        }
        Payload::Raw { protocol } => (
            TransportRepr::Raw {
                protocol: *protocol,
            },
            DATA.to_vec(),
        ),
    };
    let (ip, ipv6_extensions) = match (spec.src, spec.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let (ident, offset, more) = spec.fragment.unwrap_or((0x1234, 0, false));
            (
                IpRepr::Ipv4(Ipv4Repr {
                    src,
                    dst,
                    protocol: 0,
                    payload_len: 0,
                    ttl: spec.ttl,
                    dscp_ecn: 0,
                    ident: ident as u16,
                    dont_fragment: spec.fragment.is_none(),
                    more_fragments: more,
                    fragment_offset: offset,
                }),
                Ipv6Extensions::default(),
            )
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => (
            IpRepr::Ipv6(Ipv6Repr {
                src,
                dst,
                next_header: 0,
                payload_len: 0,
                hop_limit: spec.ttl,
                traffic_class: 0,
                flow_label: 0,
            }),
            Ipv6Extensions {
                destination_options: false,
                fragment: spec.fragment.map(|(ident, offset, more)| Ipv6Fragment {
                    ident,
                    offset,
                    more,
                }),
            },
        ),
        _ => panic!("test frame with mixed address families"),
    };
    let builder = PacketBuilder {
        ethernet,
        ip,
        ipv6_extensions,
        transport,
    };
    let mut out = vec![0; builder.frame_len(data.len())];
    let len = builder.emit(&data, &mut out).expect("sized buffer");
    out.truncate(len);
    out
}

/// A non-first fragment of a datagram: the IP header and raw bytes, as a
/// later fragment carries them (no L4 header).
pub fn later_fragment(spec: &FrameSpec, ident: u32, offset: u16, more: bool) -> Vec<u8> {
    let protocol = match spec.payload {
        Payload::Tcp { .. } => 6,
        Payload::Udp { .. } => 17,
        Payload::Echo { .. } | Payload::Unreachable { .. } => {
            if spec.src.is_ipv6() {
                58
            } else {
                1
            }
        }
        Payload::Raw { protocol } => protocol,
    };
    frame(&FrameSpec {
        payload: Payload::Raw { protocol },
        fragment: Some((ident, offset, more)),
        ..spec.clone()
    })
}

fn ip_offset(frame: &[u8]) -> usize {
    if frame.get(12..14) == Some(&[0x81, 0x00]) {
        18
    } else {
        14
    }
}

/// An ARP request from `sender` asking for `target`.
pub fn arp_request(
    src_mac: [u8; 6],
    vlan: Option<u16>,
    sender: Ipv4Addr,
    target: Ipv4Addr,
) -> Vec<u8> {
    let eth = EthernetRepr {
        dst: MacAddr([0xff; 6]),
        src: MacAddr(src_mac),
        vlan,
        ethertype: ethertype::ARP,
    };
    let arp = ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: MacAddr(src_mac),
        sender_ip: sender,
        target_mac: MacAddr([0; 6]),
        target_ip: target,
    };
    let mut out = vec![0; 64];
    let at = eth.emit(&mut out).expect("sized buffer");
    let len = arp.emit(&mut out[at..]).expect("sized buffer");
    out.truncate(at + len);
    out
}

/// A neighbour solicitation from `sender` for `target`, to its
/// solicited-node multicast address, with the source link-layer option.
pub fn neighbor_solicitation(src_mac: [u8; 6], sender: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let builder = PacketBuilder {
        ethernet: EthernetRepr {
            dst: MacAddr::ipv6_multicast(group),
            src: MacAddr(src_mac),
            vlan: None,
            ethertype: 0,
        },
        ip: IpRepr::Ipv6(Ipv6Repr {
            src: sender,
            dst: group,
            next_header: 0,
            payload_len: 0,
            hop_limit: 255,
            traffic_class: 0,
            flow_label: 0,
        }),
        ipv6_extensions: Ipv6Extensions::default(),
        transport: TransportRepr::Icmpv6(Icmpv6Repr::NeighborSolicit {
            target,
            source_lladdr: Some(MacAddr(src_mac)),
        }),
    };
    let mut out = vec![0; builder.frame_len(0)];
    let len = builder.emit(&[], &mut out).expect("sized buffer");
    out.truncate(len);
    out
}

/// The router MAC of [`demo_spec`].
pub const ROUTER_MAC: [u8; 6] = [0x02, 0x50, 0x41, 0x4c, 0x00, 0x01];

/// The MAC of the `i`-th test ENI.
pub const fn eni_mac(i: u8) -> [u8; 6] {
    [0x02, 0x00, 0x00, 0x00, 0x00, i]
}

/// A rule: `protocol` on `ports` with `peer`.
pub fn rule(id: &str, protocol: Protocol, ports: PortSpec, peer: Peer) -> SgRule {
    SgRule {
        id: id.into(),
        protocol,
        ports,
        peer,
        description: String::new(),
    }
}

/// `a.b.c.d/len` as a rule peer.
pub fn cidr4(text: &str) -> Peer {
    Peer::Cidr4(text.parse::<Ipv4Cidr>().expect("valid CIDR"))
}

/// The demo world of the README, in one VPC `vpc-1` (10.0.0.0/16,
/// fd00::/56): subnets `subnet-a` (10.0.1.0/24) and `subnet-b`
/// (10.0.2.0/24), default ACL; ENIs
/// - `eni-a` 10.0.1.10 on port 0, groups `default`;
/// - `eni-b` 10.0.2.20 on port 1, groups `web`, `ssh`;
/// - `eni-c` 10.0.2.30 on port 2, groups `default`;
///
/// `web`: tcp/80 from anywhere and ICMP from the VPC; `ssh`: tcp/22 from
/// 10.0.1.99/32 only; `default`: all from itself. Every group has the
/// usual egress allow-all to 0.0.0.0/0 and ::/0.
pub fn demo_spec() -> PolicySpec {
    let any_v4 = cidr4("0.0.0.0/0");
    let any_v6 = Peer::Cidr6("::/0".parse::<Ipv6Cidr>().expect("valid CIDR"));
    let egress_all = vec![
        rule("sgr-e4", Protocol::All, PortSpec::Any, any_v4),
        rule("sgr-e6", Protocol::All, PortSpec::Any, any_v6),
    ];
    let group = |id: &str, ingress: Vec<SgRule>| SecurityGroupSpec {
        id: id.into(),
        vpc: "vpc-1".into(),
        ingress,
        egress: egress_all.clone(),
    };
    let subnet = |id: &str, v4: &str, v6: &str| SubnetSpec {
        id: id.into(),
        vpc: "vpc-1".into(),
        ipv4_cidr: v4.parse().expect("valid CIDR"),
        ipv6_cidr: Some(v6.parse().expect("valid CIDR")),
        nacl: "acl-default".into(),
    };
    let eni = |i: u8, subnet: &str, v4: &str, v6: &str, groups: &[&str]| EniSpec {
        id: format!("eni-{}", char::from(b'a' + i)).as_str().into(),
        subnet: subnet.into(),
        port: u16::from(i),
        vlan: None,
        mac: eni_mac(i),
        private_ips: vec![v4.parse().expect("valid IP"), v6.parse().expect("valid IP")],
        groups: groups.iter().map(|g| SgId::from(*g)).collect(),
        source_dest_check: true,
        timeouts: ConntrackTimeouts::default(),
    };
    let allow_all = |egress: bool, rule_number: u16, cidr: &str| NaclEntry {
        rule_number,
        egress,
        protocol: Protocol::All,
        cidr: cidr.parse::<IpCidr>().expect("valid CIDR"),
        ports: PortSpec::Any,
        action: NaclAction::Allow,
    };
    PolicySpec {
        router_mac: ROUTER_MAC,
        vpcs: vec![VpcSpec {
            id: "vpc-1".into(),
            ipv4_cidr: "10.0.0.0/16".parse().expect("valid CIDR"),
            ipv6_cidr: Some("fd00::/56".parse().expect("valid CIDR")),
        }],
        subnets: vec![
            subnet("subnet-a", "10.0.1.0/24", "fd00:0:0:1::/64"),
            subnet("subnet-b", "10.0.2.0/24", "fd00:0:0:2::/64"),
        ],
        security_groups: vec![
            group(
                "default",
                vec![rule(
                    "sgr-d1",
                    Protocol::All,
                    PortSpec::Any,
                    Peer::Group("default".into()),
                )],
            ),
            group(
                "web",
                vec![
                    rule(
                        "sgr-w1",
                        Protocol::Tcp,
                        PortSpec::Range { from: 80, to: 80 },
                        cidr4("0.0.0.0/0"),
                    ),
                    rule(
                        "sgr-w2",
                        Protocol::Icmp,
                        PortSpec::Icmp {
                            icmp_type: None,
                            code: None,
                        },
                        cidr4("10.0.0.0/16"),
                    ),
                ],
            ),
            group(
                "ssh",
                vec![rule(
                    "sgr-s1",
                    Protocol::Tcp,
                    PortSpec::Range { from: 22, to: 22 },
                    cidr4("10.0.1.99/32"),
                )],
            ),
        ],
        enis: vec![
            eni(0, "subnet-a", "10.0.1.10", "fd00:0:0:1::10", &["default"]),
            eni(
                1,
                "subnet-b",
                "10.0.2.20",
                "fd00:0:0:2::20",
                &["web", "ssh"],
            ),
            eni(2, "subnet-b", "10.0.2.30", "fd00:0:0:2::30", &["default"]),
        ],
        nacls: vec![NaclSpec {
            id: NaclId::from("acl-default"),
            vpc: "vpc-1".into(),
            entries: vec![
                allow_all(false, 100, "0.0.0.0/0"),
                allow_all(true, 100, "0.0.0.0/0"),
                allow_all(false, 101, "::/0"),
                allow_all(true, 101, "::/0"),
            ],
        }],
        peerings: vec![],
        prefix_lists: vec![],
        uplink: None,
    }
}

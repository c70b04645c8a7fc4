//! Writes the `wire_parse` fuzz target's seed corpus: one valid frame of each
//! kind palisade parses, made with the crate's own builder.
//!
//! `cargo run -p palisade-wire --example write_fuzz_seeds -- fuzz/corpus/wire_parse`

use std::net::{Ipv4Addr, Ipv6Addr};

use palisade_wire::arp::{ArpOperation, ArpRepr};
use palisade_wire::builder::{IpRepr, Ipv6Extensions, PacketBuilder, TransportRepr};
use palisade_wire::ethernet::{EthernetRepr, ethertype};
use palisade_wire::icmpv4::Icmpv4Repr;
use palisade_wire::icmpv6::Icmpv6Repr;
use palisade_wire::ipv4::Ipv4Repr;
use palisade_wire::ipv6::{Ipv6Fragment, Ipv6Repr};
use palisade_wire::tcp::{TcpFlags, TcpRepr};
use palisade_wire::{MacAddr, parse_frame};

const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

fn v4(more_fragments: bool, fragment_offset: u16) -> IpRepr {
    IpRepr::Ipv4(Ipv4Repr {
        src: Ipv4Addr::new(10, 0, 0, 1),
        dst: Ipv4Addr::new(10, 0, 1, 1),
        protocol: 0,
        payload_len: 0,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0x4242,
        dont_fragment: !more_fragments && fragment_offset == 0,
        more_fragments,
        fragment_offset,
    })
}

fn v6() -> IpRepr {
    IpRepr::Ipv6(Ipv6Repr {
        src: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        dst: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
        next_header: 0,
        payload_len: 0,
        hop_limit: 255,
        traffic_class: 0,
        flow_label: 0,
    })
}

fn syn() -> TransportRepr {
    TransportRepr::Tcp(TcpRepr {
        src_port: 40000,
        dst_port: 443,
        seq_number: 1,
        ack_number: 0,
        flags: TcpFlags::SYN,
        window: 64240,
        urgent: 0,
        max_segment_size: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
    })
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
    builder.emit(payload, &mut out).expect("sized by frame_len");
    out
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus/wire_parse".to_owned());
    std::fs::create_dir_all(&dir)?;
    let none = Ipv6Extensions::default();
    let udp = TransportRepr::Udp {
        src_port: 53000,
        dst_port: 53,
    };
    let quoted_v4 = build(None, v4(false, 0), none, udp, b"query");
    let quoted_v6 = build(None, v6(), none, syn(), b"");
    let mut arp = vec![0u8; 42];
    let eth = EthernetRepr {
        dst: MacAddr::BROADCAST,
        src: A,
        vlan: None,
        ethertype: ethertype::ARP,
    };
    let at = eth.emit(&mut arp).expect("fits");
    ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: A,
        sender_ip: Ipv4Addr::new(10, 0, 0, 5),
        target_mac: MacAddr([0; 6]),
        target_ip: Ipv4Addr::new(10, 0, 0, 1),
    }
    .emit(&mut arp[at..])
    .expect("fits");
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("arp_request", arp),
        ("ipv4_tcp_syn", build(None, v4(false, 0), none, syn(), b"")),
        (
            "ipv4_udp_vlan",
            build(Some(100), v4(false, 0), none, udp, b"hello"),
        ),
        (
            "ipv4_first_fragment",
            build(None, v4(true, 0), none, udp, &[7; 24]),
        ),
        (
            "ipv4_later_fragment",
            build(
                None,
                v4(false, 1480),
                none,
                TransportRepr::Raw { protocol: 17 },
                &[7; 24],
            ),
        ),
        (
            "ipv4_icmp_echo",
            build(
                None,
                v4(false, 0),
                none,
                TransportRepr::Icmpv4(Icmpv4Repr::EchoRequest {
                    ident: 7,
                    seq_no: 1,
                }),
                b"ping",
            ),
        ),
        (
            "ipv4_icmp_unreachable",
            build(
                None,
                v4(false, 0),
                none,
                TransportRepr::Icmpv4(Icmpv4Repr::DestUnreachable {
                    code: 3,
                    next_hop_mtu: 0,
                }),
                &quoted_v4[14..14 + 28],
            ),
        ),
        (
            "ipv6_tcp_destopts",
            build(
                None,
                v6(),
                Ipv6Extensions {
                    destination_options: true,
                    fragment: None,
                },
                syn(),
                b"",
            ),
        ),
        (
            "ipv6_udp_fragment_vlan",
            build(
                Some(7),
                v6(),
                Ipv6Extensions {
                    destination_options: false,
                    fragment: Some(Ipv6Fragment {
                        ident: 9,
                        offset: 0,
                        more: true,
                    }),
                },
                udp,
                &[1; 16],
            ),
        ),
        (
            "ipv6_echo",
            build(
                None,
                v6(),
                none,
                TransportRepr::Icmpv6(Icmpv6Repr::EchoRequest {
                    ident: 3,
                    seq_no: 4,
                }),
                b"ping",
            ),
        ),
        (
            "ipv6_packet_too_big",
            build(
                None,
                v6(),
                none,
                TransportRepr::Icmpv6(Icmpv6Repr::PacketTooBig { mtu: 1280 }),
                &quoted_v6[14..14 + 48],
            ),
        ),
        (
            "ipv6_neighbor_solicit",
            build(
                None,
                v6(),
                none,
                TransportRepr::Icmpv6(Icmpv6Repr::NeighborSolicit {
                    target: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
                    source_lladdr: Some(A),
                }),
                &[],
            ),
        ),
    ];
    for (name, frame) in seeds {
        parse_frame(&frame)
            .map_err(|e| std::io::Error::other(format!("seed {name} does not parse: {e}")))?;
        std::fs::write(format!("{dir}/{name}"), &frame)?;
    }
    Ok(())
}

//! `parse_frame` against etherparse on the same traffic mix: the evidence
//! behind keeping our own parser (see the crate docs).

use core::hint::black_box;
use core::net::{Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_wire::builder::{IpRepr, Ipv6Extensions, PacketBuilder, TransportRepr};
use palisade_wire::ethernet::EthernetRepr;
use palisade_wire::ipv4::Ipv4Repr;
use palisade_wire::ipv6::Ipv6Repr;
use palisade_wire::tcp::{TcpFlags, TcpRepr};
use palisade_wire::{FrameInfo, L3Info, MacAddr, decrement_ttl, parse_frame};

fn ipv4(src: [u8; 4], dst: [u8; 4]) -> IpRepr {
    IpRepr::Ipv4(Ipv4Repr {
        src: Ipv4Addr::from(src),
        dst: Ipv4Addr::from(dst),
        protocol: 0,
        payload_len: 0,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0x1234,
        dont_fragment: true,
        more_fragments: false,
        fragment_offset: 0,
    })
}

fn ipv6(last_src: u16, last_dst: u16) -> IpRepr {
    IpRepr::Ipv6(Ipv6Repr {
        src: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last_src),
        dst: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last_dst),
        next_header: 0,
        payload_len: 0,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
    })
}

fn tcp() -> TransportRepr {
    TransportRepr::Tcp(TcpRepr {
        src_port: 40000,
        dst_port: 443,
        seq_number: 1,
        ack_number: 1,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 502,
        urgent: 0,
        max_segment_size: None,
        window_scale: None,
        sack_permitted: false,
    })
}

/// The mix: IPv4/TCP, IPv4/UDP, IPv6/TCP behind a destination-options
/// header, VLAN-tagged IPv4/TCP, VLAN-tagged IPv6/UDP; 64 bytes of payload.
fn traffic_mix() -> Vec<Vec<u8>> {
    let eth = |vlan| EthernetRepr {
        dst: MacAddr([2, 0, 0, 0, 0, 2]),
        src: MacAddr([2, 0, 0, 0, 0, 1]),
        vlan,
        ethertype: 0,
    };
    let udp = TransportRepr::Udp {
        src_port: 53000,
        dst_port: 53,
    };
    let with_options = Ipv6Extensions {
        destination_options: true,
        fragment: None,
    };
    let builders = [
        PacketBuilder {
            ethernet: eth(None),
            ip: ipv4([10, 0, 0, 1], [10, 0, 1, 1]),
            ipv6_extensions: Ipv6Extensions::default(),
            transport: tcp(),
        },
        PacketBuilder {
            ethernet: eth(None),
            ip: ipv4([10, 0, 0, 1], [10, 0, 1, 1]),
            ipv6_extensions: Ipv6Extensions::default(),
            transport: udp,
        },
        PacketBuilder {
            ethernet: eth(None),
            ip: ipv6(1, 2),
            ipv6_extensions: with_options,
            transport: tcp(),
        },
        PacketBuilder {
            ethernet: eth(Some(100)),
            ip: ipv4([10, 0, 0, 1], [10, 0, 1, 1]),
            ipv6_extensions: Ipv6Extensions::default(),
            transport: tcp(),
        },
        PacketBuilder {
            ethernet: eth(Some(200)),
            ip: ipv6(1, 2),
            ipv6_extensions: Ipv6Extensions::default(),
            transport: udp,
        },
    ];
    let payload = [0x5au8; 64];
    builders
        .iter()
        .map(|b| {
            let mut frame = vec![0u8; b.frame_len(payload.len())];
            b.emit(&payload, &mut frame).expect("fits");
            frame
        })
        .collect()
}

fn bench_parse(c: &mut Criterion) {
    let frames = traffic_mix();
    let mut group = c.benchmark_group("parse_mix_of_5");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("palisade_parse_frame", |b| {
        b.iter(|| {
            for frame in &frames {
                let info = parse_frame(black_box(frame)).expect("valid");
                black_box(info);
            }
        });
    });
    group.bench_function("etherparse_sliced_from_ethernet", |b| {
        b.iter(|| {
            for frame in &frames {
                let sliced =
                    etherparse::SlicedPacket::from_ethernet(black_box(frame)).expect("valid");
                black_box(&sliced);
            }
        });
    });
    group.bench_function("etherparse_lax_sliced_from_ethernet", |b| {
        b.iter(|| {
            for frame in &frames {
                let sliced =
                    etherparse::LaxSlicedPacket::from_ethernet(black_box(frame)).expect("valid");
                black_box(&sliced);
            }
        });
    });
    group.finish();
}

fn bench_edit(c: &mut Criterion) {
    let frames = traffic_mix();
    let infos: Vec<FrameInfo> = frames
        .iter()
        .map(|f| parse_frame(f).expect("valid"))
        .collect();
    let mut group = c.benchmark_group("edit_mix_of_5");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("rewrite_macs_and_decrement_ttl", |b| {
        let mut work = frames.clone();
        b.iter(|| {
            for (frame, info) in work.iter_mut().zip(&infos) {
                palisade_wire::rewrite_macs(
                    frame,
                    MacAddr([2, 0, 0, 0, 0, 9]),
                    MacAddr([2, 0, 0, 0, 0, 8]),
                )
                .expect("long enough");
                // Put the TTL back so every iteration does the same work.
                let l3 = usize::from(info.l3_offset);
                let ttl_at = if matches!(info.l3, L3Info::Ipv4(_)) {
                    l3 + 8
                } else {
                    l3 + 7
                };
                frame[ttl_at] = 64;
                let _ = decrement_ttl(black_box(frame), info);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_edit);
criterion_main!(benches);

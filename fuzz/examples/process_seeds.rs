//! Writes the seed corpus of the `process` fuzz target: short
//! conversations in its world, encoded in its input format (see
//! `fuzz_targets/process.rs`), one file per conversation.
//!
//! Run (in `fuzz/`): `cargo run --example process_seeds -- corpus/process`.
//!
//! The world's addresses are repeated here (the target is a `no_main`
//! binary and cannot be imported): the demo ENIs a, b, c of the testkit,
//! eni-d (10.0.1.40, VLAN 5 on port 3) and the uplink (VLAN 7 on port 3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_dataplane::testkit::{
    FrameSpec, Payload, ROUTER_MAC, arp_request, eni_mac, flags, frame, later_fragment,
    neighbor_solicitation,
};

const D_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 3];
const UPLINK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xee];
/// `TIME_STEPS` indices of the target.
const STEP_0: u8 = 0;
const STEP_1S: u8 = 1;
const STEP_61S: u8 = 7;
const STEP_432001S: u8 = 15;
const GEN2: u8 = 0x10;

/// An endpoint: (port, VLAN, MAC, IPv4, IPv6).
#[derive(Clone, Copy)]
struct End(u8, Option<u16>, [u8; 6], Ipv4Addr, Ipv6Addr);

fn v6(text: &str) -> Ipv6Addr {
    text.parse().expect("valid IPv6")
}

fn a() -> End {
    End(
        0,
        None,
        eni_mac(0),
        Ipv4Addr::new(10, 0, 1, 10),
        v6("fd00:0:0:1::10"),
    )
}
fn b() -> End {
    End(
        1,
        None,
        eni_mac(1),
        Ipv4Addr::new(10, 0, 2, 20),
        v6("fd00:0:0:2::20"),
    )
}
fn c() -> End {
    End(
        2,
        None,
        eni_mac(2),
        Ipv4Addr::new(10, 0, 2, 30),
        v6("fd00:0:0:2::30"),
    )
}
fn d() -> End {
    End(
        3,
        Some(5),
        D_MAC,
        Ipv4Addr::new(10, 0, 1, 40),
        v6("fd00:0:0:1::40"),
    )
}
/// The uplink, sending as an outside host.
fn net() -> End {
    End(
        3,
        Some(7),
        UPLINK_MAC,
        Ipv4Addr::new(198, 51, 100, 7),
        v6("2001:db8::7"),
    )
}

fn spec(from: End, to: End, ipv6: bool, payload: Payload) -> FrameSpec {
    let (src, dst) = if ipv6 {
        (IpAddr::V6(from.4), IpAddr::V6(to.4))
    } else {
        (IpAddr::V4(from.3), IpAddr::V4(to.3))
    };
    FrameSpec {
        vlan: from.1,
        ..FrameSpec::new(from.2, ROUTER_MAC, src, dst, payload)
    }
}

fn tcp(from: End, to: End, sport: u16, dport: u16, f: u8) -> (u8, Vec<u8>) {
    let p = Payload::Tcp {
        src_port: sport,
        dst_port: dport,
        flags: f,
    };
    (from.0, frame(&spec(from, to, false, p)))
}

fn udp(from: End, to: End, sport: u16, dport: u16) -> (u8, Vec<u8>) {
    let p = Payload::Udp {
        src_port: sport,
        dst_port: dport,
    };
    (from.0, frame(&spec(from, to, false, p)))
}

/// Encodes bursts as the target reads them.
#[derive(Default)]
struct Input(Vec<u8>);

impl Input {
    fn burst(mut self, header: u8, frames: &[(u8, Vec<u8>)]) -> Self {
        assert!(frames.len() <= 32);
        self.0.push(header);
        self.0.push(frames.len() as u8);
        for (port, bytes) in frames {
            self.0
                .extend_from_slice(&u16::try_from(bytes.len()).expect("short").to_be_bytes());
            self.0.push(*port);
            self.0.extend_from_slice(bytes);
        }
        self
    }
}

fn seeds() -> Vec<(&'static str, Input)> {
    let (a, b, c, d, net) = (a(), b(), c(), d(), net());
    let mut seeds = Vec::new();

    seeds.push((
        "tcp_handshake_close_expire",
        Input::default()
            .burst(STEP_0, &[tcp(a, b, 40000, 80, flags::SYN)])
            .burst(
                STEP_1S,
                &[
                    tcp(b, a, 80, 40000, flags::SYN_ACK),
                    tcp(a, b, 40000, 80, flags::ACK),
                ],
            )
            .burst(
                STEP_1S,
                &[
                    tcp(a, b, 40000, 80, flags::FIN_ACK),
                    tcp(b, a, 80, 40000, flags::FIN_ACK),
                    tcp(a, b, 40000, 80, flags::ACK),
                ],
            )
            .burst(STEP_432001S, &[tcp(a, b, 40000, 80, flags::ACK)]),
    ));

    let gateway_ns = neighbor_solicitation(a.2, a.4, v6("fd00:0:0:1::1"));
    seeds.push((
        "arp_and_neighbor_discovery",
        Input::default().burst(
            STEP_0,
            &[
                (0, arp_request(a.2, None, a.3, Ipv4Addr::new(10, 0, 1, 1))),
                (0, arp_request(a.2, None, a.3, Ipv4Addr::new(10, 0, 1, 55))),
                (0, arp_request(a.2, None, a.3, a.3)),
                (3, arp_request(d.2, d.1, d.3, Ipv4Addr::new(10, 0, 1, 1))),
                (0, gateway_ns),
                (1, neighbor_solicitation(b.2, b.4, c.4)),
            ],
        ),
    ));

    let first = FrameSpec {
        fragment: Some((7, 0, true)),
        ..spec(
            a,
            c,
            false,
            Payload::Udp {
                src_port: 5000,
                dst_port: 53,
            },
        )
    };
    let first6 = FrameSpec {
        fragment: Some((9, 0, true)),
        ..spec(
            a,
            c,
            true,
            Payload::Udp {
                src_port: 5000,
                dst_port: 53,
            },
        )
    };
    seeds.push((
        "fragments",
        Input::default()
            .burst(
                STEP_0,
                &[
                    (0, frame(&first)),
                    (0, later_fragment(&first, 7, 32, false)),
                    (0, later_fragment(&first, 8, 32, false)),
                    (0, frame(&first6)),
                    (0, later_fragment(&first6, 9, 32, true)),
                ],
            )
            .burst(STEP_61S, &[(0, later_fragment(&first6, 9, 64, false))]),
    ));

    let (_, query) = udp(a, c, 5000, 53);
    let unreachable = |quoted: Vec<u8>| {
        (
            c.0,
            frame(&spec(c, a, false, Payload::Unreachable { quoted })),
        )
    };
    let (_, unrelated) = udp(a, c, 5001, 53);
    seeds.push((
        "icmp_errors",
        Input::default()
            .burst(STEP_0, &[(0, query.clone())])
            .burst(STEP_1S, &[unreachable(query), unreachable(unrelated)]),
    ));

    seeds.push((
        "vlan_and_uplink",
        Input::default().burst(
            STEP_0,
            &[
                tcp(d, a, 41000, 443, flags::SYN),
                tcp(a, d, 41001, 22, flags::SYN),
                tcp(net, b, 50000, 80, flags::SYN),
                udp(a, net, 5353, 53),
                udp(d, net, 5354, 53),
                tcp(b, net, 80, 50000, flags::SYN_ACK),
            ],
        ),
    ));

    seeds.push((
        "generations",
        Input::default()
            .burst(
                STEP_0,
                &[
                    tcp(net, b, 50001, 80, flags::SYN),
                    tcp(a, d, 41002, 8080, flags::SYN),
                    tcp(c, a, 42000, 9000, flags::SYN),
                ],
            )
            .burst(
                STEP_1S | GEN2,
                &[
                    tcp(b, net, 80, 50001, flags::SYN_ACK),
                    tcp(d, a, 8080, 41002, flags::SYN_ACK),
                    tcp(a, c, 9000, 42000, flags::SYN_ACK),
                    tcp(net, b, 50002, 80, flags::SYN),
                ],
            )
            .burst(STEP_1S, &[tcp(c, a, 42000, 9000, flags::ACK)]),
    ));

    let echo = |from: End, to: End, ipv6: bool, reply: bool| {
        (
            from.0,
            frame(&spec(from, to, ipv6, Payload::Echo { id: 77, reply })),
        )
    };
    let tcp6 = |from: End, to: End, sport, dport, f| {
        let p = Payload::Tcp {
            src_port: sport,
            dst_port: dport,
            flags: f,
        };
        (from.0, frame(&spec(from, to, true, p)))
    };
    seeds.push((
        "echo_and_ipv6",
        Input::default()
            .burst(
                STEP_0,
                &[
                    echo(a, c, false, false),
                    echo(a, c, true, false),
                    tcp6(a, b, 40000, 80, flags::SYN),
                    echo(a, b, false, false),
                ],
            )
            .burst(
                STEP_1S,
                &[
                    echo(c, a, false, true),
                    echo(c, a, true, true),
                    tcp6(b, a, 80, 40000, flags::SYN_ACK),
                    echo(b, a, false, true),
                ],
            ),
    ));

    let spoofed = FrameSpec {
        src: IpAddr::V4(c.3),
        ..spec(
            a,
            b,
            false,
            Payload::Tcp {
                src_port: 1,
                dst_port: 80,
                flags: flags::SYN,
            },
        )
    };
    let not_for_router = FrameSpec {
        dst_mac: b.2,
        ..spoofed.clone()
    };
    let ttl_one = FrameSpec {
        ttl: 1,
        ..spec(
            a,
            c,
            false,
            Payload::Udp {
                src_port: 9,
                dst_port: 9,
            },
        )
    };
    let gre = spec(a, c, false, Payload::Raw { protocol: 47 });
    let to_gateway = FrameSpec {
        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)),
        ..gre.clone()
    };
    seeds.push((
        "denied_and_malformed",
        Input::default().burst(
            STEP_0,
            &[
                tcp(a, b, 40001, 22, flags::SYN),
                (0, frame(&spoofed)),
                (0, frame(&not_for_router)),
                (1, frame(&spoofed)),
                (0, frame(&ttl_one)),
                (0, frame(&gre)),
                (0, frame(&to_gateway)),
                (0, vec![0xff; 20]),
                (0, Vec::new()),
            ],
        ),
    ));

    let syns: Vec<_> = (0..24)
        .map(|i| tcp(a, c, 30000 + i, 443, flags::SYN))
        .collect();
    seeds.push((
        "conntrack_full",
        Input::default()
            .burst(STEP_0, &syns)
            .burst(STEP_1S, &[tcp(c, a, 443, 30000, flags::SYN_ACK)]),
    ));

    let mut mixed: Vec<_> = (0..8)
        .flat_map(|i| {
            [
                tcp(a, b, 20000 + i, 80, flags::SYN),
                tcp(b, a, 80, 20000 + i, flags::SYN_ACK),
                udp(c, a, 6000 + i, 7000),
                udp(a, c, 7000, 6000 + i),
            ]
        })
        .collect();
    mixed.truncate(32);
    seeds.push((
        "burst_of_32",
        Input::default()
            .burst(STEP_0, &mixed)
            .burst(STEP_1S, &mixed),
    ));

    seeds
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "corpus/process".into());
    std::fs::create_dir_all(&dir).expect("corpus directory");
    for (name, input) in seeds() {
        let path = std::path::Path::new(&dir).join(name);
        std::fs::write(&path, &input.0).expect("write seed");
        println!("{} ({} bytes)", path.display(), input.0.len());
    }
}

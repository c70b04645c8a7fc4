//! Golden pcaps through the real data path: `palisade run` on three
//! `net_pcap` ports reads the frames this test wrote, and what it transmits
//! must be exactly the frames the reference router says, port by port, with
//! exactly the drop counters the cases below spell out.
//!
//! # The world
//!
//! VPC `golden` (10.0.0.0/16, fd00::/56), subnets `a` (10.0.1.0/24, VPC
//! default ACL) and `b` (10.0.2.0/24, ACL `b-acl`: inbound UDP 5000 denied
//! at rule 90, the rest allowed). ENIs, by pcap port:
//!
//! | port | ENI | MAC | addresses | groups |
//! | --- | --- | --- | --- | --- |
//! | p0 | a | 02:00:00:00:00:00 | 10.0.1.10, fd00:0:0:1::10 | default |
//! | p0 | b | 02:00:00:00:00:01 | 10.0.2.20, fd00:0:0:2::20 | web, ssh |
//! | p1 | c | 02:00:00:00:00:02 | 10.0.2.30, fd00:0:0:2::30 | default, internet |
//! | p2 | d | 02:00:00:00:00:03 | 10.0.1.40 | web |
//!
//! `web`: TCP 80 from 0.0.0.0/0 (IPv4 only), all ICMP from the VPC; `ssh`:
//! TCP 22 from 10.0.1.99/32 only; `default`: all from its members;
//! `internet`: TCP 443 and UDP 5000 from 198.51.100.0/24, beyond the VPC.
//!
//! The uplink (the internet gateway) is on p1 too, VLAN 100, next hop
//! 02:00:00:00:00:fe: "the internet" (198.51.100.10, 2001:db8::10 and
//! others beyond the VPC) talks to c through it, both ways, and `b-acl`
//! also denies outbound traffic to 192.0.2.0/24, so the ACL is tested on
//! that path in both directions.
//!
//! # Why the golden output does not depend on how ports interleave
//!
//! net_pcap reads each rx file at its own pace and the worker polls the
//! ports in turn, so the order *between* files is not fixed. Hence:
//! - every conversation whose verdicts depend on order (a flow and its
//!   replies, a first fragment and its later ones, an ICMP error and the
//!   flow it quotes) stays inside one file: ENIs a and b share port p0,
//!   so their whole conversations are in `in-p0.pcap`; the uplink shares
//!   p1 with c for the same reason;
//! - traffic in `in-p1.pcap` and `in-p2.pcap` only opens flows no other
//!   file touches (distinct ports and ids), so its verdicts hold whatever
//!   came before it from another file. The test checks this claim: the
//!   reference router, fed the files in three different interleavings,
//!   must give every frame the same verdict and output bytes;
//! - an output port may receive frames from several input files, so each
//!   output pcap is compared as a merge: exactly the expected number of
//!   frames, and, for each input file, the frames that came from it in
//!   exactly the expected order (all expected output frames are distinct,
//!   which the test also checks, so attribution is unambiguous).
//!
//! The run ends when palisade has processed every input frame (its
//! `palisade_worker_packets_total`, polled, bounded); counters are scraped
//! then, and `SIGTERM` stops it so the pcap PMD closes (flushes) its tx
//! files. Every port's `port_rx_packets_total` must equal its file's
//! frame count: net_pcap does not drain (discard) the rx file at start-up.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use palisade_controlplane::config::Config;
use palisade_dataplane::policy::PolicySpec;
use palisade_dataplane::reference::ReferenceRouter;
use palisade_dataplane::testkit::{
    FrameSpec, Payload, ROUTER_MAC, arp_request, eni_mac, flags, frame, later_fragment,
    neighbor_solicitation,
};
use palisade_dataplane::wire::MacAddr;
use palisade_dataplane::wire::builder::{IpRepr, Ipv6Extensions, PacketBuilder, TransportRepr};
use palisade_dataplane::wire::ethernet::EthernetRepr;
use palisade_dataplane::wire::icmpv6::{Icmpv6Repr, NdFlags};
use palisade_dataplane::wire::ipv6::Ipv6Repr;
use palisade_dataplane::{DropReason, Verdict};
use palisade_e2e::appliance::{free_local_addr, start_palisade};
use palisade_e2e::{is_root, pcap, prom};

/// The pcap ports, in profile order (so DPDK port ids 0, 1, 2).
const PORTS: [&str; 3] = ["p0", "p1", "p2"];

const A: [u8; 6] = eni_mac(0);
const B: [u8; 6] = eni_mac(1);
const C: [u8; 6] = eni_mac(2);
const D: [u8; 6] = eni_mac(3);
const A4: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 20);
const C4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 30);
const D4: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 40);
const GW_A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
const GW_B: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
const A6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 0x10);
const B6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 0x20);
const C6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 0x30);
const GW_A6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 1);
/// The uplink's next hop and its VLAN.
const UP: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const UP_VLAN: u16 = 100;
/// Hosts beyond the VPC: one the `internet` group admits, one it does
/// not, and one in the block `b-acl` denies outbound.
const NET4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const FAR4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const DENIED4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 9);
const NET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

const CONFIG: &str = r#"
[appliance]
profile = "@PROFILE@"
workers = @WORKERS@
state_dir = "@DIR@/var"
# Any free port: tests run in parallel.
api_listen = "127.0.0.1:0"
max_flows_per_worker = 4096

[[vpc]]
name = "golden"
cidr = "10.0.0.0/16"
ipv6_cidr = "fd00::/56"

[[subnet]]
name = "a"
vpc = "golden"
cidr = "10.0.1.0/24"
ipv6_cidr = "fd00:0:0:1::/64"

[[subnet]]
name = "b"
vpc = "golden"
cidr = "10.0.2.0/24"
ipv6_cidr = "fd00:0:0:2::/64"

[[network_acl]]
name = "b-acl"
vpc = "golden"
subnets = ["b"]

[[network_acl.entry]]
rule_number = 90
egress = false
protocol = "udp"
from_port = 5000
to_port = 5000
cidr = "0.0.0.0/0"
action = "deny"

[[network_acl.entry]]
rule_number = 100
egress = false
protocol = "-1"
cidr = "0.0.0.0/0"
action = "allow"

[[network_acl.entry]]
rule_number = 101
egress = false
protocol = "-1"
ipv6_cidr = "::/0"
action = "allow"

[[network_acl.entry]]
rule_number = 90
egress = true
protocol = "-1"
cidr = "192.0.2.0/24"
action = "deny"

[[network_acl.entry]]
rule_number = 100
egress = true
protocol = "-1"
cidr = "0.0.0.0/0"
action = "allow"

[[network_acl.entry]]
rule_number = 101
egress = true
protocol = "-1"
ipv6_cidr = "::/0"
action = "allow"

[[security_group]]
name = "web"
vpc = "golden"

[[security_group.ingress]]
protocol = "tcp"
from_port = 80
to_port = 80
cidr = "0.0.0.0/0"

[[security_group.ingress]]
protocol = "icmp"
cidr = "10.0.0.0/16"

[[security_group.egress]]
protocol = "-1"
cidr = "0.0.0.0/0"

[[security_group.egress]]
protocol = "-1"
ipv6_cidr = "::/0"

[[security_group]]
name = "ssh"
vpc = "golden"

[[security_group.ingress]]
protocol = "tcp"
from_port = 22
to_port = 22
cidr = "10.0.1.99/32"

[[security_group]]
name = "internet"
vpc = "golden"

[[security_group.ingress]]
protocol = "tcp"
from_port = 443
to_port = 443
cidr = "198.51.100.0/24"

[[security_group.ingress]]
protocol = "udp"
from_port = 5000
to_port = 5000
cidr = "198.51.100.0/24"

[[eni]]
name = "a"
subnet = "a"
port = "p0"
mac = "02:00:00:00:00:00"
ips = ["10.0.1.10", "fd00:0:0:1::10"]

[[eni]]
name = "b"
subnet = "b"
port = "p0"
mac = "02:00:00:00:00:01"
ips = ["10.0.2.20", "fd00:0:0:2::20"]
groups = ["web", "ssh"]

[[eni]]
name = "c"
subnet = "b"
port = "p1"
mac = "02:00:00:00:00:02"
ips = ["10.0.2.30", "fd00:0:0:2::30"]
groups = ["default", "internet"]

[[eni]]
name = "d"
subnet = "a"
port = "p2"
mac = "02:00:00:00:00:03"
ips = ["10.0.1.40"]
groups = ["web"]

[uplink]
port = "p1"
vlan = 100
mac = "02:00:00:00:00:fe"
"#;

/// One input frame and what the test expects of it, written by hand.
#[derive(Debug, Clone)]
struct Case {
    what: &'static str,
    frame: Vec<u8>,
    expect: Verdict,
}

fn case(what: &'static str, frame: Vec<u8>, expect: Verdict) -> Case {
    Case {
        what,
        frame,
        expect,
    }
}

fn to(port: u16) -> Verdict {
    Verdict::Forward { port }
}

fn drop(reason: DropReason) -> Verdict {
    Verdict::Drop(reason)
}

/// A frame from an ENI (by MAC) to the router.
fn ip(src_mac: [u8; 6], src: impl Into<IpAddr>, dst: impl Into<IpAddr>, p: Payload) -> FrameSpec {
    FrameSpec::new(src_mac, ROUTER_MAC, src.into(), dst.into(), p)
}

/// A frame from the internet: the uplink's next hop, tagged with its VLAN,
/// to the router.
fn inbound(src: impl Into<IpAddr>, dst: impl Into<IpAddr>, p: Payload) -> FrameSpec {
    FrameSpec {
        vlan: Some(UP_VLAN),
        ..FrameSpec::new(UP, ROUTER_MAC, src.into(), dst.into(), p)
    }
}

fn tcp(src_port: u16, dst_port: u16, flags: u8) -> Payload {
    Payload::Tcp {
        src_port,
        dst_port,
        flags,
    }
}

fn udp(src_port: u16, dst_port: u16) -> Payload {
    Payload::Udp { src_port, dst_port }
}

/// `spec` as the router sends it on: from the router's MAC to `dst_mac`,
/// one hop less. Built from scratch (checksums computed afresh), so it
/// checks the data path's in-place rewrite independently of the reference.
fn routed(spec: &FrameSpec, dst_mac: [u8; 6]) -> Vec<u8> {
    frame(&FrameSpec {
        src_mac: ROUTER_MAC,
        dst_mac,
        ttl: spec.ttl - 1,
        ..spec.clone()
    })
}

/// The ARP reply the router owes `asker` for `gateway`, byte by byte.
fn arp_reply_by_hand(asker: [u8; 6], asker_ip: Ipv4Addr, gateway: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&asker);
    f.extend_from_slice(&ROUTER_MAC);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4]); // Ethernet, IPv4
    f.extend_from_slice(&[0x00, 0x02]); // reply
    f.extend_from_slice(&ROUTER_MAC);
    f.extend_from_slice(&gateway.octets());
    f.extend_from_slice(&asker);
    f.extend_from_slice(&asker_ip.octets());
    // The answer is the request turned round in place: as long as the
    // request, which was padded to Ethernet's 60-byte minimum.
    f.resize(60, 0);
    f
}

/// The neighbour advertisement answering `asker`'s solicitation for the
/// gateway (router, solicited and override flags, target link-layer
/// address), built with the packet builder rather than the router's
/// in-place edit.
fn neighbor_advert_by_hand(asker: [u8; 6], asker_ip: Ipv6Addr, gateway: Ipv6Addr) -> Vec<u8> {
    let builder = PacketBuilder {
        ethernet: EthernetRepr {
            dst: MacAddr(asker),
            src: MacAddr(ROUTER_MAC),
            vlan: None,
            ethertype: 0,
        },
        ip: IpRepr::Ipv6(Ipv6Repr {
            src: gateway,
            dst: asker_ip,
            next_header: 0,
            payload_len: 0,
            hop_limit: 255,
            traffic_class: 0,
            flow_label: 0,
        }),
        ipv6_extensions: Ipv6Extensions::default(),
        transport: TransportRepr::Icmpv6(Icmpv6Repr::NeighborAdvert {
            flags: NdFlags {
                router: true,
                solicited: true,
                override_: true,
            },
            target: gateway,
            target_lladdr: Some(MacAddr(ROUTER_MAC)),
        }),
    };
    let mut out = vec![0; builder.frame_len(0)];
    let len = builder.emit(&[], &mut out).expect("sized buffer");
    out.truncate(len);
    out
}

/// The three input files. Hand expectations use port ids 0..2 (p0..p2).
fn cases() -> [Vec<Case>; 3] {
    use DropReason as R;
    let ab_syn = ip(A, A4, B4, tcp(40000, 80, flags::SYN));
    let ac_frag = FrameSpec {
        fragment: Some((0x4242, 0, true)),
        ..ip(A, A4, C4, udp(40006, 6000))
    };
    let mut bad_checksum = frame(&ip(A, A4, B4, tcp(40009, 80, flags::SYN)));
    bad_checksum[14 + 10] ^= 0xff;
    let mut lldp = Vec::new();
    lldp.extend_from_slice(&ROUTER_MAC);
    lldp.extend_from_slice(&A);
    lldp.extend_from_slice(&[0x88, 0xcc]);
    lldp.extend_from_slice(&[0u8; 46]);

    let p0 = vec![
        case(
            "a asks ARP for its gateway",
            arp_request(A, None, A4, GW_A),
            Verdict::Reply { port: 0 },
        ),
        case(
            "a solicits its IPv6 gateway",
            neighbor_solicitation(A, A6, GW_A6),
            Verdict::Reply { port: 0 },
        ),
        case("a→b:80 SYN (web allows)", frame(&ab_syn), to(0)),
        case(
            "b→a SYN-ACK (reply of a tracked flow)",
            frame(&ip(B, B4, A4, tcp(80, 40000, flags::SYN_ACK))),
            to(0),
        ),
        case(
            "a→b:80 ACK",
            frame(&ip(A, A4, B4, tcp(40000, 80, flags::ACK))),
            to(0),
        ),
        case(
            "b→a port unreachable quoting a→b:80 (related)",
            frame(&ip(
                B,
                B4,
                A4,
                Payload::Unreachable {
                    quoted: frame(&ab_syn),
                },
            )),
            to(0),
        ),
        case(
            "a→b echo request (web allows ICMP from the VPC)",
            frame(&ip(
                A,
                A4,
                B4,
                Payload::Echo {
                    id: 7,
                    reply: false,
                },
            )),
            to(0),
        ),
        case(
            "b→a echo reply",
            frame(&ip(B, B4, A4, Payload::Echo { id: 7, reply: true })),
            to(0),
        ),
        case(
            "a→b:22 SYN (ssh only from 10.0.1.99)",
            frame(&ip(A, A4, B4, tcp(40001, 22, flags::SYN))),
            drop(R::IngressDenied),
        ),
        case(
            "b→a:5555 SYN (a's default group admits only members)",
            frame(&ip(B, B4, A4, tcp(40002, 5555, flags::SYN))),
            drop(R::IngressDenied),
        ),
        case(
            "a→b:80 over IPv6 (web's rule is IPv4 only)",
            frame(&ip(A, A6, B6, tcp(40003, 80, flags::SYN))),
            drop(R::IngressDenied),
        ),
        case(
            "a→c:53 UDP over IPv6 (default to default)",
            frame(&ip(A, A6, C6, udp(40004, 53))),
            to(1),
        ),
        case(
            "a→c:5000 UDP (b-acl denies inbound UDP 5000)",
            frame(&ip(A, A4, C4, udp(40005, 5000))),
            drop(R::NaclDenied),
        ),
        case("a→c:6000 UDP, first fragment", frame(&ac_frag), to(1)),
        case(
            "a→c:6000 UDP, last fragment",
            later_fragment(&ac_frag, 0x4242, 32, false),
            to(1),
        ),
        case(
            "a→c stray later fragment (no first seen)",
            later_fragment(&ip(A, A4, C4, udp(40006, 6000)), 0x5151, 64, false),
            drop(R::FragmentUnknown),
        ),
        case(
            "b→a port unreachable quoting a→b:81, never sent",
            frame(&ip(
                B,
                B4,
                A4,
                Payload::Unreachable {
                    quoted: frame(&ip(A, A4, B4, tcp(40007, 81, flags::SYN))),
                },
            )),
            drop(R::IcmpErrorUnrelated),
        ),
        case(
            "a sends from 10.0.1.99 (not its address)",
            frame(&ip(
                A,
                Ipv4Addr::new(10, 0, 1, 99),
                B4,
                tcp(40010, 80, flags::SYN),
            )),
            drop(R::Spoofed),
        ),
        case(
            "unknown MAC on p0",
            frame(&ip(
                [2, 0, 0, 0, 0, 0x99],
                A4,
                B4,
                tcp(40011, 80, flags::SYN),
            )),
            drop(R::UnknownSource),
        ),
        case(
            "a→b addressed to b's MAC, not the router's",
            frame(&FrameSpec {
                dst_mac: B,
                ..ip(A, A4, B4, tcp(40012, 80, flags::SYN))
            }),
            drop(R::NotForRouter),
        ),
        // Well-formed, just not routed: counted apart from malformed frames.
        case("LLDP EtherType", lldp, drop(R::UnsupportedEtherType)),
        case(
            "a→b SYN cut inside the IPv4 header",
            frame(&ab_syn)[..30].to_vec(),
            drop(R::Malformed),
        ),
        case(
            "a→b SYN with a bad IPv4 header checksum",
            bad_checksum,
            drop(R::Malformed),
        ),
        case(
            "a→b:80 with TTL 1",
            frame(&FrameSpec {
                ttl: 1,
                ..ip(A, A4, B4, tcp(40008, 80, flags::SYN))
            }),
            drop(R::TtlExpired),
        ),
        case(
            "a asks ARP for an address outside its subnet",
            arp_request(A, None, A4, Ipv4Addr::new(10, 0, 9, 9)),
            drop(R::NeighborDiscoveryIgnored),
        ),
        case(
            "a pings the router",
            frame(&ip(
                A,
                A4,
                GW_A,
                Payload::Echo {
                    id: 8,
                    reply: false,
                },
            )),
            drop(R::ToRouter),
        ),
        case(
            "a→10.0.3.5 (in the VPC, no ENI: not the uplink's)",
            frame(&ip(A, A4, Ipv4Addr::new(10, 0, 3, 5), udp(40013, 9))),
            drop(R::NoRoute),
        ),
    ];
    let p1 = vec![
        case(
            "c asks ARP for its gateway",
            arp_request(C, None, C4, GW_B),
            Verdict::Reply { port: 1 },
        ),
        case(
            "c→d:80 SYN (web allows)",
            frame(&ip(C, C4, D4, tcp(41000, 80, flags::SYN))),
            to(2),
        ),
        case(
            "c→d echo request",
            frame(&ip(
                C,
                C4,
                D4,
                Payload::Echo {
                    id: 9,
                    reply: false,
                },
            )),
            to(2),
        ),
        case(
            "c→d:22 SYN (d has no ssh)",
            frame(&ip(C, C4, D4, tcp(41001, 22, flags::SYN))),
            drop(R::IngressDenied),
        ),
        case(
            "c→a:7000 UDP (default to default)",
            frame(&ip(C, C4, A4, udp(41002, 7000))),
            to(0),
        ),
        case(
            "c sends from b's address",
            frame(&ip(C, B4, A4, udp(41003, 7000))),
            drop(R::Spoofed),
        ),
        case(
            "c→a echo request over IPv6",
            frame(&ip(
                C,
                C6,
                A6,
                Payload::Echo {
                    id: 11,
                    reply: false,
                },
            )),
            to(0),
        ),
        // North-south: the internet through the uplink (VLAN 100 on p1).
        case(
            "internet→c:443 SYN (internet admits 198.51.100.0/24)",
            frame(&inbound(NET4, C4, tcp(50000, 443, flags::SYN))),
            to(1),
        ),
        case(
            "c→internet SYN-ACK, out of the uplink",
            frame(&ip(C, C4, NET4, tcp(443, 50000, flags::SYN_ACK))),
            to(1),
        ),
        case(
            "internet→c:443 ACK",
            frame(&inbound(NET4, C4, tcp(50000, 443, flags::ACK))),
            to(1),
        ),
        case(
            "c→internet:80 SYN (default egress allows all)",
            frame(&ip(C, C4, NET4, tcp(41010, 80, flags::SYN))),
            to(1),
        ),
        case(
            "internet→c SYN-ACK (reply of c's flow, no rule needed)",
            frame(&inbound(NET4, C4, tcp(80, 41010, flags::SYN_ACK))),
            to(1),
        ),
        case(
            "203.0.113.7→c:443 SYN (outside the rule's block)",
            frame(&inbound(FAR4, C4, tcp(50001, 443, flags::SYN))),
            drop(R::IngressDenied),
        ),
        case(
            "internet→c:5000 UDP (the group admits, b-acl denies inbound)",
            frame(&inbound(NET4, C4, udp(50002, 5000))),
            drop(R::NaclDenied),
        ),
        case(
            "c→192.0.2.9:80 SYN (b-acl denies outbound to 192.0.2.0/24)",
            frame(&ip(C, C4, DENIED4, tcp(41011, 80, flags::SYN))),
            drop(R::NaclDenied),
        ),
        case(
            "c→2001:db8::10:53 UDP over IPv6, out of the uplink",
            frame(&ip(C, C6, NET6, udp(41012, 53))),
            to(1),
        ),
        case(
            "2001:db8::10→c UDP reply over IPv6",
            frame(&inbound(NET6, C6, udp(53, 41012))),
            to(1),
        ),
        case(
            "2001:db8::10→c:443 over IPv6 (internet's rules are IPv4 only)",
            frame(&inbound(NET6, C6, tcp(50005, 443, flags::SYN))),
            drop(R::IngressDenied),
        ),
        case(
            "the uplink's MAC without its VLAN",
            frame(&FrameSpec {
                vlan: None,
                ..inbound(NET4, C4, tcp(50003, 443, flags::SYN))
            }),
            drop(R::UnknownSource),
        ),
        case(
            "internet→10.0.3.5 (in the VPC, no ENI)",
            frame(&inbound(NET4, Ipv4Addr::new(10, 0, 3, 5), udp(50004, 9))),
            drop(R::NoRoute),
        ),
        case(
            "the uplink asks ARP for c's gateway (gateways answer ENIs only)",
            arp_request(UP, Some(UP_VLAN), NET4, GW_B),
            drop(R::NeighborDiscoveryIgnored),
        ),
    ];
    let p2 = vec![
        case(
            "d asks ARP for its gateway",
            arp_request(D, None, D4, GW_A),
            Verdict::Reply { port: 2 },
        ),
        case(
            "d→b:80 SYN",
            frame(&ip(D, D4, B4, tcp(42000, 80, flags::SYN))),
            to(0),
        ),
        case(
            "d→c:9000 UDP (c's default group admits only members)",
            frame(&ip(D, D4, C4, udp(42001, 9000))),
            drop(R::IngressDenied),
        ),
        case("a 10-byte runt", vec![0x02; 10], drop(R::Malformed)),
        case(
            "d→b stray later fragment",
            later_fragment(&ip(D, D4, B4, tcp(42002, 80, flags::SYN)), 0x6161, 8, true),
            drop(R::FragmentUnknown),
        ),
        case(
            "unknown MAC on p2",
            frame(&ip(
                [2, 0, 0, 0, 0, 0xaa],
                D4,
                B4,
                tcp(42003, 80, flags::SYN),
            )),
            drop(R::UnknownSource),
        ),
    ];
    [p0, p1, p2]
}

/// The drop counters the cases above must produce, by hand.
const EXPECTED_DROPS: &[(DropReason, u64)] = &[
    (DropReason::Malformed, 3),
    (DropReason::UnsupportedEtherType, 1),
    (DropReason::NotForRouter, 1),
    (DropReason::UnknownSource, 3),
    (DropReason::Spoofed, 2),
    (DropReason::NeighborDiscoveryIgnored, 2),
    (DropReason::ToRouter, 1),
    (DropReason::NoRoute, 2),
    (DropReason::NaclDenied, 3),
    (DropReason::IngressDenied, 7),
    (DropReason::FragmentUnknown, 2),
    (DropReason::IcmpErrorUnrelated, 1),
    (DropReason::TtlExpired, 1),
];

/// Forwarded and answered frames, by hand.
const EXPECTED_FORWARDED: u64 = 21;
const EXPECTED_REPLIED: u64 = 4;

/// Output frames per (output port, input port), in order.
type Outputs = BTreeMap<(u16, u16), Vec<Vec<u8>>>;

/// Per (input port, index in its file): the verdict and the output frame.
type ReferenceVerdicts = BTreeMap<(u16, usize), (Verdict, Option<Vec<u8>>)>;

/// The reference router's verdict and output for every case, fed in
/// `order` (a sequence of (input port, index in its file)).
fn reference_run(
    spec: &PolicySpec,
    cases: &[Vec<Case>; 3],
    order: &[(u16, usize)],
) -> ReferenceVerdicts {
    let mut router = ReferenceRouter::new();
    order
        .iter()
        .map(|&(port, i)| {
            let c = &cases[usize::from(port)][i];
            ((port, i), router.handle(spec, port, &c.frame, 0))
        })
        .collect()
}

fn file_order(cases: &[Vec<Case>; 3], ports: [u16; 3]) -> Vec<(u16, usize)> {
    ports
        .iter()
        .flat_map(|&p| (0..cases[usize::from(p)].len()).map(move |i| (p, i)))
        .collect()
}

fn round_robin(cases: &[Vec<Case>; 3]) -> Vec<(u16, usize)> {
    let longest = cases.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| {
            (0..3u16)
                .filter(move |&p| i < cases[usize::from(p)].len())
                .map(move |p| (p, i))
        })
        .collect()
}

fn spec_of(config_text: &str) -> PolicySpec {
    // The worker count does not change the policy.
    let config_text = config_text.replace("@WORKERS@", "[1]");
    let config =
        Config::from_toml_str(&config_text, "golden.toml").expect("golden config is valid");
    config
        .to_spec(&|name| PORTS.iter().position(|p| *p == name).map(|i| i as u16))
        .expect("golden config resolves its ports")
}

/// Expected outputs: the reference router's, after checking it agrees with
/// every hand expectation in every interleaving.
fn expected_outputs(spec: &PolicySpec, cases: &[Vec<Case>; 3]) -> Outputs {
    let sequential = reference_run(spec, cases, &file_order(cases, [0, 1, 2]));
    for order in [file_order(cases, [2, 1, 0]), round_robin(cases)] {
        let other = reference_run(spec, cases, &order);
        assert_eq!(
            other, sequential,
            "the golden input depends on how ports interleave"
        );
    }
    let mut outputs = Outputs::new();
    for (&(port, i), (verdict, out)) in &sequential {
        let c = &cases[usize::from(port)][i];
        assert_eq!(
            *verdict, c.expect,
            "reference vs hand: p{port} #{i} {}",
            c.what
        );
        if let Verdict::Forward { port: out_port } | Verdict::Reply { port: out_port } = verdict {
            let bytes = match out {
                Some(bytes) => bytes.clone(),
                // The reference leaves neighbour advertisements' bytes to
                // the wire crate; the test builds the one it expects.
                None => neighbor_advert_by_hand(A, A6, GW_A6),
            };
            outputs.entry((*out_port, port)).or_default().push(bytes);
        }
    }
    outputs
}

#[test]
fn hand_expectations_agree_with_the_reference_in_any_interleaving() {
    let cases = cases();
    let spec = spec_of(
        &CONFIG
            .replace("@PROFILE@", "p.toml")
            .replace("@DIR@", "/tmp"),
    );
    let outputs = expected_outputs(&spec, &cases);
    // A few outputs spelled out without the reference.
    let ab_syn = ip(A, A4, B4, tcp(40000, 80, flags::SYN));
    assert_eq!(outputs[&(0, 0)][0], arp_reply_by_hand(A, A4, GW_A));
    assert_eq!(outputs[&(0, 0)][2], routed(&ab_syn, B));
    assert_eq!(outputs[&(1, 1)][0], arp_reply_by_hand(C, C4, GW_B));
    assert_eq!(
        outputs[&(0, 1)][0],
        routed(&ip(C, C4, A4, udp(41002, 7000)), A)
    );
    assert_eq!(
        outputs[&(1, 0)][0],
        routed(&ip(A, A6, C6, udp(40004, 53)), C)
    );
    // In from the uplink: untagged to c. Out to the uplink: tagged with
    // its VLAN, to its next hop.
    let in_syn = inbound(NET4, C4, tcp(50000, 443, flags::SYN));
    assert_eq!(
        outputs[&(1, 1)][1],
        routed(
            &FrameSpec {
                vlan: None,
                ..in_syn
            },
            C
        )
    );
    let out_syn_ack = ip(C, C4, NET4, tcp(443, 50000, flags::SYN_ACK));
    assert_eq!(
        outputs[&(1, 1)][2],
        routed(
            &FrameSpec {
                vlan: Some(UP_VLAN),
                ..out_syn_ack
            },
            UP
        )
    );
    // Every expected output frame is distinct: attribution of an output
    // frame to its input file is unambiguous.
    let mut all: Vec<&Vec<u8>> = outputs.values().flatten().collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "expected output frames repeat");
    // The hand tallies agree with the hand verdicts.
    let verdicts: Vec<Verdict> = cases.iter().flatten().map(|c| c.expect).collect();
    for reason in DropReason::ALL {
        let n = verdicts.iter().filter(|v| **v == drop(*reason)).count() as u64;
        let expected = EXPECTED_DROPS
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(0, |(_, n)| *n);
        assert_eq!(n, expected, "hand tally of {reason}");
    }
    let forwarded = verdicts
        .iter()
        .filter(|v| matches!(v, Verdict::Forward { .. }))
        .count() as u64;
    let replied = verdicts
        .iter()
        .filter(|v| matches!(v, Verdict::Reply { .. }))
        .count() as u64;
    assert_eq!((forwarded, replied), (EXPECTED_FORWARDED, EXPECTED_REPLIED));
}

/// Compares one port's transmitted frames with the expected per-input
/// sequences; returns a description of every difference.
fn compare_port(port: u16, actual: &[Vec<u8>], expected: &Outputs) -> String {
    let mut problems = String::new();
    let from: Vec<(u16, &Vec<Vec<u8>>)> = expected
        .iter()
        .filter(|((out, _), _)| *out == port)
        .map(|((_, input), frames)| (*input, frames))
        .collect();
    let total: usize = from.iter().map(|(_, f)| f.len()).sum();
    if actual.len() != total {
        let _ = writeln!(
            problems,
            "{}: {} frames transmitted, {total} expected",
            PORTS[usize::from(port)],
            actual.len()
        );
    }
    for (input, frames) in &from {
        let got: Vec<&Vec<u8>> = actual.iter().filter(|f| frames.contains(f)).collect();
        let want: Vec<&Vec<u8>> = frames.iter().collect();
        if got != want {
            let _ = writeln!(
                problems,
                "{}: frames from {} differ: got {} of {} expected, order or bytes differ",
                PORTS[usize::from(port)],
                PORTS[usize::from(*input)],
                got.len(),
                want.len()
            );
        }
    }
    let strangers = actual
        .iter()
        .filter(|f| !from.iter().any(|(_, frames)| frames.contains(f)))
        .count();
    if strangers > 0 {
        let _ = writeln!(
            problems,
            "{}: {strangers} transmitted frames match no expected frame",
            PORTS[usize::from(port)]
        );
    }
    problems
}

/// [`compare_port`] without order: the same frames, each as often.
fn compare_port_unordered(port: u16, actual: &[Vec<u8>], expected: &Outputs) -> String {
    let mut want: Vec<&Vec<u8>> = expected
        .iter()
        .filter(|((out, _), _)| *out == port)
        .flat_map(|(_, frames)| frames.iter())
        .collect();
    let mut got: Vec<&Vec<u8>> = actual.iter().collect();
    want.sort();
    got.sort();
    if got == want {
        String::new()
    } else {
        format!(
            "{}: transmitted frames differ from the expected ones ({} vs {})\n",
            PORTS[usize::from(port)],
            got.len(),
            want.len()
        )
    }
}

#[test]
fn port_comparison_catches_reordering_loss_and_strangers() {
    let expected: Outputs = [
        ((0, 0), vec![vec![1], vec![2], vec![3]]),
        ((0, 1), vec![vec![10], vec![11]]),
        ((1, 0), vec![vec![20]]),
    ]
    .into_iter()
    .collect();
    let interleaved = [vec![10], vec![1], vec![2], vec![11], vec![3]];
    assert_eq!(compare_port(0, &interleaved, &expected), "");
    let reordered = [vec![1], vec![3], vec![2], vec![10], vec![11]];
    assert!(compare_port(0, &reordered, &expected).contains("frames from p0 differ"));
    let lost = [vec![1], vec![2], vec![10], vec![11]];
    assert!(compare_port(0, &lost, &expected).contains("4 frames transmitted, 5 expected"));
    let stranger = [vec![1], vec![2], vec![3], vec![10], vec![11], vec![99]];
    assert!(compare_port(0, &stranger, &expected).contains("1 transmitted frames match no"));
    assert!(compare_port(1, &[], &expected).contains("0 frames transmitted, 1 expected"));
}

/// Removes DPDK's runtime directory for the test's file prefix, whatever
/// happens.
struct RuntimeDir(std::path::PathBuf);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_profile(dir: &Path, prefix: &str) -> std::path::PathBuf {
    let mut text = format!(
        "workers = [1]\n\n[eal]\nlcores = [0, 1]\nmain_lcore = 0\nfile_prefix = \"{prefix}\"\n\
         log_level = \"notice\"\n\n[eal.memory]\nmode = \"no-huge\"\nmemory_mb = 128\n\n\
         [mempool]\nmbufs = 4095\ncache = 64\n"
    );
    for (i, name) in PORTS.iter().enumerate() {
        let _ = write!(
            text,
            "\n[[ports]]\nname = \"{name}\"\nvdev = \"net_pcap{i},rx_pcap={rx},tx_pcap={tx}\"\n\
             rx_descriptors = 256\ntx_descriptors = 256\n",
            rx = dir.join(format!("in-{name}.pcap")).display(),
            tx = dir.join(format!("out-{name}.pcap")).display(),
        );
    }
    let path = dir.join("profile.toml");
    std::fs::write(&path, text).expect("write the profile");
    path
}

#[test]
fn pcap_ports_forward_exactly_the_golden_frames_and_count_every_drop() {
    golden_run("[1]", true);
}

/// Two workers (pinned to the machine's two cores): frames reach the worker
/// that owns their flow through the hand-off rings, so verdicts, output
/// bytes and every counter must be exactly those of one worker; only the
/// relative order of different flows' frames on an output port may change
/// (each flow's own order may not: a flow has one owner).
#[test]
fn two_workers_hand_frames_to_their_owner_and_forward_the_same_frames() {
    golden_run("[0, 1]", false);
}

fn golden_run(workers: &str, single_worker: bool) {
    if !is_root() {
        eprintln!("skip: pcap golden test needs root (DPDK's runtime directory)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("pal-golden-{}-{}", std::process::id(), workers.len());
    let _runtime = RuntimeDir(Path::new("/var/run/dpdk").join(&prefix));
    let profile = write_profile(dir.path(), &prefix);
    let config_text = CONFIG
        .replace("@WORKERS@", workers)
        .replace("@PROFILE@", &profile.display().to_string())
        .replace("@DIR@", &dir.path().display().to_string());
    let config = dir.path().join("golden.toml");
    std::fs::write(&config, &config_text).expect("write the config");

    let cases = cases();
    let expected = expected_outputs(&spec_of(&config_text), &cases);
    for (name, file) in PORTS.iter().zip(&cases) {
        let frames: Vec<Vec<u8>> = file.iter().map(|c| c.frame.clone()).collect();
        pcap::write(&dir.path().join(format!("in-{name}.pcap")), &frames).expect("write input");
    }
    let total: usize = cases.iter().map(Vec::len).sum();

    let metrics = free_local_addr();
    let mut palisade =
        start_palisade(&config, metrics, Duration::from_secs(30)).expect("palisade starts");
    // The port table: profile order must be DPDK's port order, which the
    // expectations (and the config's port names) assume.
    let stdout = palisade.stdout();
    for (id, name) in PORTS.iter().enumerate() {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().take(3).collect::<Vec<_>>()
                    == [*name, &id.to_string(), &format!("net_pcap{id}")]),
            "port {name} is not DPDK port {id}:\n{stdout}"
        );
    }

    let samples = palisade
        .wait_for(
            "to process every input frame",
            Duration::from_secs(20),
            |_| {
                let samples = prom::scrape(metrics).ok()?;
                let n = prom::sum(&samples, "palisade_worker_packets_total", &[])?;
                (n as usize >= total).then_some(samples)
            },
        )
        .expect("palisade processes the golden input");
    let count = |name: &str, filter: &[(&str, &str)]| {
        prom::sum(&samples, name, filter).unwrap_or_else(|| panic!("no sample {name} {filter:?}"))
            as u64
    };
    assert_eq!(count("palisade_worker_packets_total", &[]), total as u64);
    if !single_worker {
        // Both workers decided frames: the dispatch really split the flows
        // (and worker 1 transmitted through worker 0: pcap has one queue).
        for worker in ["0", "1"] {
            let n = count("palisade_worker_packets_total", &[("worker", worker)]);
            assert!(n > 0, "worker {worker} processed no frame");
        }
    }
    let mut problems = String::new();
    for (port, (name, file)) in PORTS.iter().zip(&cases).enumerate() {
        // Every frame of the file was received: none drained at start-up.
        let rx = count("palisade_port_rx_packets_total", &[("port", name)]);
        if rx != file.len() as u64 {
            let _ = writeln!(problems, "{name}: received {rx} of {} frames", file.len());
        }
        let tx = count("palisade_port_tx_packets_total", &[("port", name)]);
        let want: usize = expected
            .iter()
            .filter(|((out, _), _)| usize::from(*out) == port)
            .map(|(_, f)| f.len())
            .sum();
        if tx != want as u64 {
            let _ = writeln!(problems, "{name}: transmitted {tx}, expected {want}");
        }
    }
    for reason in DropReason::ALL {
        let got = count("palisade_drops_total", &[("reason", reason.label())]);
        let want = EXPECTED_DROPS
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(0, |(_, n)| *n);
        if got != want {
            let _ = writeln!(
                problems,
                "drops_total{{reason={reason}}}: {got}, expected {want}"
            );
        }
    }
    let forwarded = count("palisade_worker_forwarded_total", &[]);
    let replied = count("palisade_worker_replied_total", &[]);
    if (forwarded, replied) != (EXPECTED_FORWARDED, EXPECTED_REPLIED) {
        let _ = writeln!(
            problems,
            "forwarded {forwarded}, replied {replied}; expected {EXPECTED_FORWARDED}, {EXPECTED_REPLIED}"
        );
    }

    let finished = palisade
        .stop("TERM", Duration::from_secs(20))
        .expect("palisade stops on SIGTERM");
    // Success includes the mbuf accounting: palisade exits with an error if
    // any mbuf has not come back to its pool when the ports are closed.
    assert!(
        finished.status.success(),
        "palisade exited with {}:\n{}\n{}",
        finished.status,
        finished.stdout,
        finished.stderr
    );
    let dropped: u64 = EXPECTED_DROPS.iter().map(|(_, n)| n).sum();
    let summary = format!(
        "palisade: stopped. frames {total} forwarded {EXPECTED_FORWARDED} answered {EXPECTED_REPLIED} dropped {dropped}"
    );
    if !finished.stdout.contains(&summary) {
        let _ = writeln!(problems, "final counters lack {summary:?}");
    }
    for (reason, n) in EXPECTED_DROPS {
        let line = format!("dropped {:<24} {n}", reason.label());
        if !finished.stdout.contains(&line) {
            let _ = writeln!(problems, "final counters lack {line:?}");
        }
    }

    for (port, name) in PORTS.iter().enumerate() {
        let actual = pcap::read(&dir.path().join(format!("out-{name}.pcap")))
            .expect("palisade wrote the tx pcap");
        if single_worker {
            problems.push_str(&compare_port(port as u16, &actual, &expected));
        } else {
            problems.push_str(&compare_port_unordered(port as u16, &actual, &expected));
        }
        if port == 0 && single_worker {
            // Spelled out by hand, not taken from the reference.
            let ab_syn = routed(&ip(A, A4, B4, tcp(40000, 80, flags::SYN)), B);
            let arp = arp_reply_by_hand(A, A4, GW_A);
            let na = neighbor_advert_by_hand(A, A6, GW_A6);
            let at = |f: &Vec<u8>| actual.iter().position(|a| a == f);
            match (at(&arp), at(&na), at(&ab_syn)) {
                (Some(x), Some(y), Some(z)) if x < y && y < z => {}
                found => {
                    let _ = writeln!(
                        problems,
                        "p0: hand-made ARP reply, advertisement, routed SYN at {found:?}"
                    );
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{problems}\nstdout:\n{}\nstderr:\n{}",
        finished.stdout,
        finished.stderr
    );
}

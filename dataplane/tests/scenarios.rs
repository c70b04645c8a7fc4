//! ENIs talking through one worker, step by step (quinn's `Pair` habit):
//! each test is a short conversation on the demo world of the README, with
//! the verdict and the rewritten frame checked at every step.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_dataplane::policy::{
    NaclAction, NaclEntry, Peer, PolicySnapshot, PolicySpec, PortSpec, Protocol, SgId,
};
use palisade_dataplane::testkit::{
    self, FrameSpec, Payload, ROUTER_MAC, demo_spec, eni_mac, flags, frame,
};
use palisade_dataplane::wire::{L3Info, L4Info, parse_frame};
use palisade_dataplane::{DropReason, HeapPacket, PacketBuf, Verdict, Worker, WorkerConfig};

/// One worker, a policy and a clock.
struct Net {
    spec: PolicySpec,
    snapshot: PolicySnapshot,
    worker: Worker,
    now: u32,
}

impl Net {
    fn new(spec: PolicySpec) -> Self {
        Self::with_config(
            spec,
            WorkerConfig {
                max_flows: 1024,
                ..WorkerConfig::default()
            },
        )
    }

    fn with_config(spec: PolicySpec, config: WorkerConfig) -> Self {
        let snapshot = PolicySnapshot::compile(&spec, 1).expect("demo spec compiles");
        Net {
            spec,
            snapshot,
            worker: Worker::new(config).expect("worker"),
            now: 1000,
        }
    }

    /// Sends one frame into `port`; returns the verdict and the frame as it
    /// left.
    fn send(&mut self, port: u16, bytes: &[u8]) -> (Verdict, Vec<u8>) {
        let mut burst = [HeapPacket::new(port, bytes)];
        let mut verdicts = [Verdict::Drop(DropReason::Malformed)];
        self.worker
            .process(&mut burst, self.now, &self.snapshot, &mut verdicts);
        let [pkt] = burst;
        (verdicts[0], pkt.into_frame())
    }

    fn verdict(&mut self, port: u16, bytes: &[u8]) -> Verdict {
        self.send(port, bytes).0
    }

    /// Publishes a changed spec as the next generation.
    fn change(&mut self, edit: impl FnOnce(&mut PolicySpec)) {
        edit(&mut self.spec);
        let next = self.snapshot.generation() + 1;
        self.snapshot = PolicySnapshot::compile(&self.spec, next).expect("changed spec compiles");
    }
}

const A: u8 = 0;
const B: u8 = 1;
const C: u8 = 2;

fn ip(i: u8) -> IpAddr {
    [
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, 10)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 2, 20)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 2, 30)),
    ][usize::from(i)]
}

fn ip6(i: u8) -> IpAddr {
    [
        "fd00:0:0:1::10".parse().unwrap(),
        "fd00:0:0:2::20".parse().unwrap(),
        "fd00:0:0:2::30".parse().unwrap(),
    ][usize::from(i)]
}

fn tcp(from: u8, to: u8, sport: u16, dport: u16, f: u8) -> Vec<u8> {
    frame(&tcp_spec(from, to, sport, dport, f))
}

fn tcp_spec(from: u8, to: u8, sport: u16, dport: u16, f: u8) -> FrameSpec {
    FrameSpec::new(
        eni_mac(from),
        ROUTER_MAC,
        ip(from),
        ip(to),
        Payload::Tcp {
            src_port: sport,
            dst_port: dport,
            flags: f,
        },
    )
}

fn fwd(to: u8) -> Verdict {
    Verdict::Forward {
        port: u16::from(to),
    }
}

#[test]
fn allowed_connection_is_forwarded_rewritten_and_replies_pass_statefully() {
    let mut net = Net::new(demo_spec());
    let syn = tcp(A, B, 40000, 80, flags::SYN);
    let (verdict, out) = net.send(0, &syn);
    assert_eq!(verdict, fwd(B));
    // L2 rewritten toward B, TTL decremented, checksum still valid.
    assert_eq!(&out[..6], &eni_mac(B));
    assert_eq!(&out[6..12], &ROUTER_MAC);
    let info = parse_frame(&out).expect("forwarded frame parses (checksum included)");
    let L3Info::Ipv4(ipinfo) = info.l3 else {
        panic!("IPv4 expected")
    };
    assert_eq!(ipinfo.ttl, 63);
    assert_eq!(&out[12..], {
        let mut expected = syn[12..].to_vec();
        expected[14 + 8 - 12] = 63;
        // Only TTL and checksum may differ.
        expected[14 + 10 - 12..14 + 12 - 12].copy_from_slice(&out[24..26]);
        expected
    });
    // B's groups have no inbound rule for A's replies, and need none.
    assert_eq!(
        net.verdict(1, &tcp(B, A, 80, 40000, flags::SYN_ACK)),
        fwd(A)
    );
    assert_eq!(net.verdict(0, &tcp(A, B, 40000, 80, flags::ACK)), fwd(B));
    assert_eq!(net.worker.counters().new_flows, 1);
    assert_eq!(net.worker.counters().flow_hits, 2);
}

#[test]
fn denied_connection_is_dropped_silently_and_counted() {
    let mut net = Net::new(demo_spec());
    // ssh is open only to 10.0.1.99/32.
    assert_eq!(
        net.verdict(0, &tcp(A, B, 40001, 22, flags::SYN)),
        Verdict::Drop(DropReason::IngressDenied)
    );
    // An unsolicited packet from B to A: A's default group admits only
    // members of default.
    assert_eq!(
        net.verdict(1, &tcp(B, A, 80, 40002, flags::SYN)),
        Verdict::Drop(DropReason::IngressDenied)
    );
    assert_eq!(net.worker.counters().dropped(DropReason::IngressDenied), 2);
    // Counted per group: A's default group let the first SYN out, B's web
    // and ssh groups both refused it in; B's web group (the first of its
    // set to allow) let the second out, A's default group refused it in.
    let group = |id: &str| net.snapshot.group_by_id(&SgId::from(id)).unwrap().index();
    let allowed = net.worker.group_allowed();
    let denied = net.worker.group_denied();
    assert_eq!(allowed[group("default")], 1);
    assert_eq!(allowed[group("web")], 1);
    assert_eq!(denied[group("web")], 1);
    assert_eq!(denied[group("ssh")], 1);
    assert_eq!(denied[group("default")], 1);
    assert_eq!(net.worker.flows().len(), 0);
}

#[test]
fn default_group_members_talk_to_each_other() {
    let mut net = Net::new(demo_spec());
    let udp = |from: u8, to: u8| {
        frame(&FrameSpec::new(
            eni_mac(from),
            ROUTER_MAC,
            ip(from),
            ip(to),
            Payload::Udp {
                src_port: 5000,
                dst_port: 6000,
            },
        ))
    };
    assert_eq!(net.verdict(0, &udp(A, C)), fwd(C));
    assert_eq!(net.verdict(2, &udp(C, A)), fwd(A));
}

#[test]
fn icmp_follows_its_rule_and_echo_replies_are_tracked_by_identifier() {
    let mut net = Net::new(demo_spec());
    let echo = |from: u8, to: u8, id: u16, reply: bool| {
        frame(&FrameSpec::new(
            eni_mac(from),
            ROUTER_MAC,
            ip(from),
            ip(to),
            Payload::Echo { id, reply },
        ))
    };
    // web allows ICMP from the VPC.
    assert_eq!(net.verdict(0, &echo(A, B, 7, false)), fwd(B));
    assert_eq!(net.verdict(1, &echo(B, A, 7, true)), fwd(A));
    // A reply with another identifier is no reply at all.
    assert_eq!(
        net.verdict(1, &echo(B, A, 8, true)),
        Verdict::Drop(DropReason::IngressDenied)
    );
}

#[test]
fn spoofed_unknown_and_malformed_frames_are_dropped_with_their_reason() {
    let mut net = Net::new(demo_spec());
    let mut spoofed = tcp_spec(A, B, 1, 80, flags::SYN);
    spoofed.src = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 11));
    assert_eq!(
        net.verdict(0, &frame(&spoofed)),
        Verdict::Drop(DropReason::Spoofed)
    );
    let mut stranger = tcp_spec(A, B, 1, 80, flags::SYN);
    stranger.src_mac = [2, 9, 9, 9, 9, 9];
    assert_eq!(
        net.verdict(0, &frame(&stranger)),
        Verdict::Drop(DropReason::UnknownSource)
    );
    // The right MAC on the wrong port is a stranger too.
    assert_eq!(
        net.verdict(1, &tcp(A, B, 1, 80, flags::SYN)),
        Verdict::Drop(DropReason::UnknownSource)
    );
    let good = tcp(A, B, 1, 80, flags::SYN);
    for cut in [0, 13, 20, 33] {
        assert_eq!(
            net.verdict(0, &good[..cut]),
            Verdict::Drop(DropReason::Malformed)
        );
    }
    let mut not_for_us = tcp_spec(A, B, 1, 80, flags::SYN);
    not_for_us.dst_mac = eni_mac(B);
    assert_eq!(
        net.verdict(0, &frame(&not_for_us)),
        Verdict::Drop(DropReason::NotForRouter)
    );
    let mut lldp = Vec::new();
    lldp.extend_from_slice(&ROUTER_MAC);
    lldp.extend_from_slice(&eni_mac(A));
    lldp.extend_from_slice(&[0x88, 0xcc]);
    lldp.extend_from_slice(&[0u8; 46]);
    assert_eq!(
        net.verdict(0, &lldp),
        Verdict::Drop(DropReason::UnsupportedEtherType)
    );
    let c = net.worker.counters();
    assert_eq!(c.dropped_total(), 9);
    assert_eq!(c.forwarded, 0);
}

#[test]
fn arp_for_the_subnet_is_answered_by_the_router() {
    let mut net = Net::new(demo_spec());
    let Some(IpAddr::V4(a)) = Some(ip(A)) else {
        unreachable!()
    };
    for target in [Ipv4Addr::new(10, 0, 1, 1), Ipv4Addr::new(10, 0, 1, 77)] {
        let (verdict, out) = net.send(0, &testkit::arp_request(eni_mac(A), None, a, target));
        assert_eq!(verdict, Verdict::Reply { port: 0 });
        let info = parse_frame(&out).expect("reply parses");
        let L3Info::Arp(reply) = info.l3 else {
            panic!("ARP reply expected")
        };
        assert_eq!(reply.sender_mac.0, ROUTER_MAC);
        assert_eq!(reply.sender_ip, target);
        assert_eq!(reply.target_ip, a);
        assert_eq!(info.dst_mac.0, eni_mac(A));
    }
    // Outside the subnet, or its own address (duplicate detection): silence.
    for target in [Ipv4Addr::new(10, 0, 2, 1), a] {
        assert_eq!(
            net.verdict(0, &testkit::arp_request(eni_mac(A), None, a, target)),
            Verdict::Drop(DropReason::NeighborDiscoveryIgnored)
        );
    }
}

#[test]
fn neighbor_solicitation_for_the_gateway_is_answered() {
    let mut net = Net::new(demo_spec());
    let sender: Ipv6Addr = "fd00:0:0:1::10".parse().unwrap();
    let gateway: Ipv6Addr = "fd00:0:0:1::1".parse().unwrap();
    let (verdict, out) = net.send(
        0,
        &testkit::neighbor_solicitation(eni_mac(A), sender, gateway),
    );
    assert_eq!(verdict, Verdict::Reply { port: 0 });
    let info = parse_frame(&out).expect("advertisement parses");
    let L3Info::Ipv6(ipinfo) = info.l3 else {
        panic!("IPv6 expected")
    };
    assert!(matches!(
        ipinfo.l4,
        L4Info::Icmpv6 { ty: 136, nd_target: Some(t), .. } if t == gateway
    ));
    assert_eq!(info.src_mac.0, ROUTER_MAC);
}

#[test]
fn ipv6_connections_are_routed_and_tracked() {
    let mut net = Net::new(demo_spec());
    let tcp6 = |from: u8, to: u8, sport: u16, dport: u16, f: u8| {
        frame(&FrameSpec::new(
            eni_mac(from),
            ROUTER_MAC,
            ip6(from),
            ip6(to),
            Payload::Tcp {
                src_port: sport,
                dst_port: dport,
                flags: f,
            },
        ))
    };
    // web's tcp/80 rule is for 0.0.0.0/0: IPv4 only.
    assert_eq!(
        net.verdict(0, &tcp6(A, B, 40000, 80, flags::SYN)),
        Verdict::Drop(DropReason::IngressDenied)
    );
    // A and C share the default group, which admits its members by group.
    let (verdict, out) = net.send(0, &tcp6(A, C, 40000, 22, flags::SYN));
    assert_eq!(verdict, fwd(C));
    let L3Info::Ipv6(info) = parse_frame(&out).unwrap().l3 else {
        panic!("IPv6 expected")
    };
    assert_eq!(info.ttl, 63);
    assert_eq!(
        net.verdict(2, &tcp6(C, A, 22, 40000, flags::SYN_ACK)),
        fwd(A)
    );
    assert_eq!(net.worker.flows().len(), 1);
}

#[test]
fn removing_a_rule_keeps_tracked_connections_but_blocks_new_ones() {
    let mut net = Net::new(demo_spec());
    assert_eq!(net.verdict(0, &tcp(A, B, 40000, 80, flags::SYN)), fwd(B));
    assert_eq!(
        net.verdict(1, &tcp(B, A, 80, 40000, flags::SYN_ACK)),
        fwd(A)
    );
    net.change(|spec| {
        let web = spec
            .security_groups
            .iter_mut()
            .find(|g| g.id == SgId::from("web"))
            .unwrap();
        web.ingress.retain(|r| r.id.as_str() != "sgr-w1");
    });
    assert_eq!(net.verdict(0, &tcp(A, B, 40000, 80, flags::ACK)), fwd(B));
    assert_eq!(net.verdict(1, &tcp(B, A, 80, 40000, flags::ACK)), fwd(A));
    assert_eq!(
        net.verdict(0, &tcp(A, B, 40001, 80, flags::SYN)),
        Verdict::Drop(DropReason::IngressDenied)
    );
    assert_eq!(net.worker.counters().revalidations, 1);
}

#[test]
fn untracked_flows_stop_at_once_when_their_rule_goes() {
    // Give A a group whose rules make its side untracked (all TCP from and
    // to anywhere); B's web group (tcp/80 from 0.0.0.0/0, all out) is
    // untracked too. The flow then lives by the rules alone.
    let mut spec = demo_spec();
    spec.security_groups
        .push(palisade_dataplane::policy::SecurityGroupSpec {
            id: "open".into(),
            vpc: "vpc-1".into(),
            ingress: vec![testkit::rule(
                "sgr-o1",
                Protocol::Tcp,
                PortSpec::Range { from: 0, to: 65535 },
                testkit::cidr4("0.0.0.0/0"),
            )],
            egress: vec![testkit::rule(
                "sgr-o2",
                Protocol::All,
                PortSpec::Any,
                testkit::cidr4("0.0.0.0/0"),
            )],
        });
    spec.enis[0].groups = vec!["open".into()];
    let mut net = Net::new(spec);
    assert_eq!(net.verdict(0, &tcp(A, B, 40000, 80, flags::SYN)), fwd(B));
    assert_eq!(
        net.verdict(1, &tcp(B, A, 80, 40000, flags::SYN_ACK)),
        fwd(A)
    );
    assert_eq!(net.worker.flows().len(), 0, "untracked: no flow entry");
    assert_eq!(net.worker.counters().untracked, 2);
    net.change(|spec| {
        let web = spec
            .security_groups
            .iter_mut()
            .find(|g| g.id == SgId::from("web"))
            .unwrap();
        web.ingress.retain(|r| r.id.as_str() != "sgr-w1");
    });
    assert_eq!(
        net.verdict(0, &tcp(A, B, 40000, 80, flags::ACK)),
        Verdict::Drop(DropReason::IngressDenied)
    );
}

#[test]
fn a_nacl_deny_cuts_an_established_connection_at_once() {
    let mut net = Net::new(demo_spec());
    assert_eq!(net.verdict(0, &tcp(A, B, 40000, 80, flags::SYN)), fwd(B));
    assert_eq!(
        net.verdict(1, &tcp(B, A, 80, 40000, flags::SYN_ACK)),
        fwd(A)
    );
    net.change(|spec| {
        spec.nacls[0].entries.push(NaclEntry {
            rule_number: 10,
            egress: false,
            protocol: Protocol::All,
            cidr: "10.0.1.10/32".parse().unwrap(),
            ports: PortSpec::Any,
            action: NaclAction::Deny,
        });
    });
    // A → B enters subnet-b from 10.0.1.10: denied inbound.
    assert_eq!(
        net.verdict(0, &tcp(A, B, 40000, 80, flags::ACK)),
        Verdict::Drop(DropReason::NaclDenied)
    );
    // B → A leaves subnet-b and enters subnet-a: the deny names A's source
    // address, so the reply direction passes the ACLs; it is the flow's
    // own state that carries it.
    assert_eq!(net.verdict(1, &tcp(B, A, 80, 40000, flags::ACK)), fwd(A));
    net.change(|spec| {
        spec.nacls[0].entries.retain(|e| e.rule_number != 10);
    });
    assert_eq!(net.verdict(0, &tcp(A, B, 40000, 80, flags::ACK)), fwd(B));
}

#[test]
fn within_one_subnet_nacls_do_not_apply() {
    let mut spec = demo_spec();
    spec.nacls[0].entries.push(NaclEntry {
        rule_number: 1,
        egress: false,
        protocol: Protocol::All,
        cidr: "0.0.0.0/0".parse().unwrap(),
        ports: PortSpec::Any,
        action: NaclAction::Deny,
    });
    // B and C share subnet-b; default group lets C reach A only, so give B
    // default too for this test.
    spec.enis[1].groups.push("default".into());
    let mut net = Net::new(spec);
    let udp = frame(&FrameSpec::new(
        eni_mac(C),
        ROUTER_MAC,
        ip(C),
        ip(B),
        Payload::Udp {
            src_port: 1,
            dst_port: 2,
        },
    ));
    assert_eq!(net.verdict(2, &udp), fwd(B));
    assert_eq!(
        net.verdict(0, &tcp(A, B, 40000, 80, flags::SYN)),
        Verdict::Drop(DropReason::NaclDenied)
    );
}

#[test]
fn a_full_table_refuses_new_flows_and_keeps_the_old() {
    let mut net = Net::with_config(
        demo_spec(),
        WorkerConfig {
            max_flows: 16,
            ..WorkerConfig::default()
        },
    );
    let capacity = net.worker.flows().capacity();
    let mut admitted = 0;
    let mut refused = 0;
    for port in 0..(capacity as u16 + 8) {
        match net.verdict(0, &tcp(A, B, 20000 + port, 80, flags::SYN)) {
            Verdict::Forward { .. } => admitted += 1,
            Verdict::Drop(DropReason::ConntrackFull) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(admitted, capacity);
    assert_eq!(refused, 8);
    assert_eq!(net.worker.flows().available(), 0);
    // Every admitted flow still works.
    for port in 0..capacity as u16 {
        assert_eq!(
            net.verdict(1, &tcp(B, A, 80, 20000 + port, flags::SYN_ACK)),
            fwd(A)
        );
    }
    assert_eq!(net.worker.counters().dropped(DropReason::ConntrackFull), 8);
}

#[test]
fn flows_expire_after_their_idle_timeout() {
    let mut net = Net::new(demo_spec());
    let udp = |from: u8, to: u8, sport: u16, dport: u16| {
        frame(&FrameSpec::new(
            eni_mac(from),
            ROUTER_MAC,
            ip(from),
            ip(to),
            Payload::Udp {
                src_port: sport,
                dst_port: dport,
            },
        ))
    };
    // A (default) may send to C (default); C's unsolicited reply would be
    // allowed too (default admits members), so use B (web): UDP from A to B
    // is denied inbound... Use A → C and check the entry disappears.
    assert_eq!(net.verdict(0, &udp(A, C, 1000, 2000)), fwd(C));
    assert_eq!(net.worker.flows().len(), 1);
    net.now += 29;
    assert_eq!(net.verdict(2, &udp(C, A, 2000, 1000)), fwd(A));
    // Now a stream: 180 s idle.
    net.now += 179;
    assert_eq!(net.verdict(0, &udp(A, C, 1000, 2000)), fwd(C));
    assert_eq!(net.worker.counters().flow_hits, 2);
    net.now += 181;
    assert_eq!(net.verdict(0, &udp(A, C, 1000, 2000)), fwd(C));
    assert_eq!(net.worker.counters().new_flows, 2, "expired, then new");
}

#[test]
fn later_fragments_follow_the_first() {
    let mut net = Net::new(demo_spec());
    let mut first = tcp_spec(A, B, 40000, 80, flags::SYN);
    first.fragment = Some((77, 0, true));
    assert_eq!(net.verdict(0, &frame(&first)), fwd(B));
    let later = testkit::later_fragment(&first, 77, 48, false);
    assert_eq!(net.verdict(0, &later), fwd(B));
    // A later fragment of a datagram never seen.
    let stray = testkit::later_fragment(&first, 78, 48, false);
    assert_eq!(
        net.verdict(0, &stray),
        Verdict::Drop(DropReason::FragmentUnknown)
    );
    // A denied first fragment binds its followers too.
    let mut denied = tcp_spec(A, B, 40000, 22, flags::SYN);
    denied.fragment = Some((79, 0, true));
    assert_eq!(
        net.verdict(0, &frame(&denied)),
        Verdict::Drop(DropReason::IngressDenied)
    );
    assert_eq!(
        net.verdict(0, &testkit::later_fragment(&denied, 79, 48, false)),
        Verdict::Drop(DropReason::FragmentUnknown)
    );
}

#[test]
fn icmp_errors_pass_only_for_tracked_flows() {
    let mut net = Net::new(demo_spec());
    let syn = tcp(A, B, 40000, 80, flags::SYN);
    assert_eq!(net.verdict(0, &syn), fwd(B));
    // B answers A's SYN with port unreachable: related, allowed.
    let error = |quoted: Vec<u8>| {
        frame(&FrameSpec::new(
            eni_mac(B),
            ROUTER_MAC,
            ip(B),
            ip(A),
            Payload::Unreachable { quoted },
        ))
    };
    assert_eq!(net.verdict(1, &error(syn)), fwd(A));
    assert_eq!(net.worker.counters().related, 1);
    // Quoting a packet of no flow: dropped.
    assert_eq!(
        net.verdict(1, &error(tcp(A, B, 40009, 80, flags::SYN))),
        Verdict::Drop(DropReason::IcmpErrorUnrelated)
    );
}

#[test]
fn ttl_of_one_is_not_forwarded() {
    let mut net = Net::new(demo_spec());
    let mut spec = tcp_spec(A, B, 40000, 80, flags::SYN);
    spec.ttl = 1;
    assert_eq!(
        net.verdict(0, &frame(&spec)),
        Verdict::Drop(DropReason::TtlExpired)
    );
}

#[test]
fn vlan_tags_are_rewritten_for_the_output_eni() {
    let mut spec = demo_spec();
    spec.enis[0].vlan = Some(100);
    spec.enis[1].vlan = Some(200);
    let mut net = Net::new(spec);
    let mut syn = tcp_spec(A, B, 40000, 80, flags::SYN);
    syn.vlan = Some(100);
    let (verdict, out) = net.send(0, &frame(&syn));
    assert_eq!(verdict, fwd(B));
    assert_eq!(parse_frame(&out).unwrap().vlan, Some(200));
    // Tagged to untagged and back.
    let mut to_c = tcp_spec(A, C, 40000, 22, flags::SYN);
    to_c.vlan = Some(100);
    // default (A) → default (C): allowed; C is untagged.
    let (verdict, out) = net.send(0, &frame(&to_c));
    assert_eq!(verdict, fwd(C));
    assert_eq!(parse_frame(&out).unwrap().vlan, None);
    assert_eq!(out.len(), frame(&to_c).len() - 4);
    let (verdict, out) = net.send(2, &tcp(C, A, 22, 40000, flags::SYN_ACK));
    assert_eq!(verdict, fwd(A));
    assert_eq!(parse_frame(&out).unwrap().vlan, Some(100));
}

#[test]
fn traffic_to_the_router_itself_is_dropped() {
    let mut net = Net::new(demo_spec());
    let mut to_gw = tcp_spec(A, B, 40000, 80, flags::SYN);
    to_gw.dst = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1));
    assert_eq!(
        net.verdict(0, &frame(&to_gw)),
        Verdict::Drop(DropReason::ToRouter)
    );
    let mut nowhere = tcp_spec(A, B, 40000, 80, flags::SYN);
    nowhere.dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(
        net.verdict(0, &frame(&nowhere)),
        Verdict::Drop(DropReason::NoRoute)
    );
}

#[test]
fn security_group_peer_rules_admit_members_only() {
    let mut spec = demo_spec();
    // B's ssh group: tcp/22 from members of default (A and C).
    let ssh = spec
        .security_groups
        .iter_mut()
        .find(|g| g.id == SgId::from("ssh"))
        .unwrap();
    ssh.ingress = vec![testkit::rule(
        "sgr-s2",
        Protocol::Tcp,
        PortSpec::Range { from: 22, to: 22 },
        Peer::Group("default".into()),
    )];
    spec.enis[2].groups = vec!["web".into()];
    let mut net = Net::new(spec);
    assert_eq!(net.verdict(0, &tcp(A, B, 40000, 22, flags::SYN)), fwd(B));
    // C is no longer a member of default.
    assert_eq!(
        net.verdict(2, &tcp(C, B, 40000, 22, flags::SYN)),
        Verdict::Drop(DropReason::IngressDenied)
    );
}

#[test]
fn a_burst_of_mixed_frames_gets_one_verdict_each_in_order() {
    let mut net = Net::new(demo_spec());
    let frames = [
        (0, tcp(A, B, 1, 80, flags::SYN)),
        (0, tcp(A, B, 1, 22, flags::SYN)),
        (0, vec![0u8; 10]),
        (1, tcp(B, A, 80, 1, flags::SYN_ACK)),
    ];
    let mut burst: Vec<HeapPacket> = frames
        .iter()
        .map(|(port, f)| HeapPacket::new(*port, f))
        .collect();
    let mut verdicts = vec![Verdict::Drop(DropReason::Malformed); burst.len()];
    net.worker
        .process(&mut burst, net.now, &net.snapshot, &mut verdicts);
    assert_eq!(
        verdicts,
        [
            fwd(B),
            Verdict::Drop(DropReason::IngressDenied),
            Verdict::Drop(DropReason::Malformed),
            fwd(A),
        ]
    );
    assert_eq!(burst[0].data()[..6], eni_mac(B));
}

/// An established connection is found from its addresses and ports alone
/// (the established lane), but another ENI cannot continue it: a segment
/// with the connection's addresses from C is still a spoof, and A's MAC on
/// C's port still a stranger.
#[test]
fn another_sender_cannot_continue_an_established_connection() {
    let mut net = Net::new(demo_spec());
    assert_eq!(net.verdict(0, &tcp(A, B, 40000, 80, flags::SYN)), fwd(B));
    assert_eq!(
        net.verdict(1, &tcp(B, A, 80, 40000, flags::SYN_ACK)),
        fwd(A)
    );
    assert_eq!(net.verdict(0, &tcp(A, B, 40000, 80, flags::ACK)), fwd(B));
    assert_eq!(net.verdict(1, &tcp(B, A, 80, 40000, flags::ACK)), fwd(A));
    // C, whose source check is on, sends as A.
    let mut from_c = tcp_spec(A, B, 40000, 80, flags::ACK);
    from_c.src_mac = eni_mac(C);
    assert_eq!(
        net.verdict(2, &frame(&from_c)),
        Verdict::Drop(DropReason::Spoofed)
    );
    // A's own frame on C's port.
    assert_eq!(
        net.verdict(2, &tcp(A, B, 40000, 80, flags::ACK)),
        Verdict::Drop(DropReason::UnknownSource)
    );
    // B's reply sent as if from C.
    let mut reply_from_c = tcp_spec(B, A, 80, 40000, flags::ACK);
    reply_from_c.src_mac = eni_mac(C);
    assert_eq!(
        net.verdict(2, &frame(&reply_from_c)),
        Verdict::Drop(DropReason::Spoofed)
    );
    // The connection itself goes on.
    assert_eq!(net.verdict(0, &tcp(A, B, 40000, 80, flags::ACK)), fwd(B));
    assert_eq!(net.verdict(1, &tcp(B, A, 80, 40000, flags::ACK)), fwd(A));
    let c = net.worker.counters();
    assert_eq!((c.new_flows, c.flow_hits), (1, 5));
}

/// A sender without the source check may open a connection from an
/// address it does not own; the replies go where that address routes,
/// not back to the sender, every time (the established lane keeps a
/// direction's receiver only when routing gave the one the flow caches).
#[test]
fn replies_go_where_their_address_routes_not_to_the_sender() {
    let mut spec = demo_spec();
    spec.enis[usize::from(A)].source_dest_check = false;
    let mut net = Net::new(spec);
    let as_c = |f| {
        let mut s = tcp_spec(A, B, 40000, 80, f);
        s.src = ip(C);
        frame(&s)
    };
    assert_eq!(net.verdict(0, &as_c(flags::SYN)), fwd(B));
    for f in [flags::SYN_ACK, flags::ACK, flags::ACK] {
        assert_eq!(net.verdict(1, &tcp(B, C, 80, 40000, f)), fwd(C));
        assert_eq!(net.verdict(0, &as_c(flags::ACK)), fwd(B));
    }
}

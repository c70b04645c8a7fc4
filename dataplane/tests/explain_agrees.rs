//! `explain` against the data plane, on random worlds: for random first
//! packets, the verdict the policy explainer gives ([`PolicySnapshot::explain`],
//! what `palisade explain` and `palisade replay` print) must be the verdict
//! `Worker::process` gives the same packet as a frame, and the NACL entries
//! and security-group rules it names must be the ones the plain reference
//! evaluator (`palisade_policy::reference`, SEMANTICS.md as loops over the
//! spec) finds deciding. The world generator is the differential test's
//! (`differential.rs`), copied: that file is a test binary of its own.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_dataplane::policy::reference::{self, RefRoute};
use palisade_dataplane::policy::{
    ConntrackTimeouts, DenyReason, Direction, EniSpec, ExplainedRoute, IpCidr, NaclAction,
    NaclEntry, NaclSpec, Outcome, PacketFields, Peer, PeeringSpec, PolicySnapshot, PolicySpec,
    PortSpec, PrefixListSpec, Protocol, SecurityGroupSpec, SgRule, SubnetSpec, UplinkSpec, VpcSpec,
};
use palisade_dataplane::testkit::{FrameSpec, Payload, ROUTER_MAC, flags, frame};
use palisade_dataplane::{DropReason, HeapPacket, Verdict, Worker, WorkerConfig};

/// A tiny deterministic generator for the world (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const VPCS: u8 = 2;
const SUBNETS_PER_VPC: u8 = 2;
const UPLINK_MAC: [u8; 6] = [0x02, 0xee, 0, 0, 0, 1];
const EXTERNAL_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

fn v4(vpc: u8, subnet: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, vpc, subnet, host)
}

fn v6(vpc: u8, subnet: u8, host: u8) -> Ipv6Addr {
    Ipv6Addr::new(
        0xfd00 | u16::from(vpc),
        0,
        0,
        u16::from(subnet),
        0,
        0,
        0,
        u16::from(host),
    )
}

fn mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, i as u8]
}

fn random_ports(rng: &mut Rng, protocol: Protocol) -> PortSpec {
    match protocol {
        Protocol::Tcp | Protocol::Udp => {
            let (from, to) =
                *rng.pick(&[(80, 80), (0, 65535), (1000, 2000), (22, 22), (40000, 40010)]);
            PortSpec::Range { from, to }
        }
        Protocol::Icmp | Protocol::Icmpv6 => {
            let (icmp_type, code) = *rng.pick(&[
                (None, None),
                (Some(8), None),
                (Some(0), None),
                (Some(3), Some(3)),
                (Some(128), None),
                (Some(8), Some(0)),
            ]);
            PortSpec::Icmp { icmp_type, code }
        }
        _ => PortSpec::Any,
    }
}

fn random_protocol(rng: &mut Rng) -> Protocol {
    *rng.pick(&[
        Protocol::All,
        Protocol::Tcp,
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Icmp,
        Protocol::Icmpv6,
        Protocol::Number(47),
    ])
}

fn random_peer(rng: &mut Rng, groups: &[(String, u8)]) -> Peer {
    match rng.below(9) {
        0 => Peer::Cidr4("0.0.0.0/0".parse().unwrap()),
        1 => Peer::Cidr6("::/0".parse().unwrap()),
        2 => Peer::Cidr4(format!("10.{}.0.0/16", 1 + rng.below(2)).parse().unwrap()),
        3 => Peer::Cidr4(
            format!(
                "10.{}.{}.{}/32",
                1 + rng.below(2),
                1 + rng.below(2),
                10 + rng.below(6)
            )
            .parse()
            .unwrap(),
        ),
        4 => Peer::Cidr6(format!("fd0{}::/16", 1 + rng.below(2)).parse().unwrap()),
        5 => Peer::PrefixList("pl-1".into()),
        _ => Peer::Group(rng.pick(groups).0.as_str().into()),
    }
}

fn random_rule(rng: &mut Rng, id: &str, groups: &[(String, u8)]) -> SgRule {
    let protocol = random_protocol(rng);
    SgRule {
        id: id.into(),
        protocol,
        ports: random_ports(rng, protocol),
        peer: random_peer(rng, groups),
        description: String::new(),
    }
}

fn random_nacl_entries(rng: &mut Rng) -> Vec<NaclEntry> {
    let mut entries = Vec::new();
    let mut numbers: Vec<u16> = (1..=40).map(|n| n * 5).collect();
    for _ in 0..rng.below(6) {
        let at = rng.below(numbers.len() as u64) as usize;
        let rule_number = numbers.swap_remove(at);
        let protocol = *rng.pick(&[Protocol::All, Protocol::Tcp, Protocol::Udp, Protocol::Icmp]);
        let cidr: IpCidr = rng
            .pick(&[
                "0.0.0.0/0",
                "::/0",
                "10.1.1.0/24",
                "10.2.0.0/16",
                "10.1.2.12/32",
                "fd01::/16",
            ])
            .parse()
            .unwrap();
        entries.push(NaclEntry {
            rule_number,
            egress: rng.chance(50),
            protocol,
            cidr,
            ports: random_ports(rng, protocol),
            action: if rng.chance(60) {
                NaclAction::Allow
            } else {
                NaclAction::Deny
            },
        });
    }
    entries
}

fn allow_all_nacl(id: &str, vpc: &str) -> NaclSpec {
    let entry = |rule_number, egress, cidr: &str| NaclEntry {
        rule_number,
        egress,
        protocol: Protocol::All,
        cidr: cidr.parse().unwrap(),
        ports: PortSpec::Any,
        action: NaclAction::Allow,
    };
    NaclSpec {
        id: id.into(),
        vpc: vpc.into(),
        entries: vec![
            entry(100, false, "0.0.0.0/0"),
            entry(100, true, "0.0.0.0/0"),
            entry(101, false, "::/0"),
            entry(101, true, "::/0"),
        ],
    }
}

/// A random, valid world.
fn world(seed: u64) -> PolicySpec {
    let mut rng = Rng(seed);
    let mut spec = PolicySpec {
        router_mac: ROUTER_MAC,
        ..PolicySpec::default()
    };
    for v in 1..=VPCS {
        let vpc = format!("vpc-{v}");
        spec.vpcs.push(VpcSpec {
            id: vpc.as_str().into(),
            ipv4_cidr: format!("10.{v}.0.0/16").parse().unwrap(),
            ipv6_cidr: Some(format!("fd0{v}::/56").parse().unwrap()),
        });
        spec.nacls
            .push(allow_all_nacl(&format!("acl-default-{v}"), &vpc));
        spec.nacls.push(NaclSpec {
            id: format!("acl-custom-{v}").as_str().into(),
            vpc: vpc.as_str().into(),
            entries: random_nacl_entries(&mut rng),
        });
        for s in 1..=SUBNETS_PER_VPC {
            spec.subnets.push(SubnetSpec {
                id: format!("subnet-{v}{s}").as_str().into(),
                vpc: vpc.as_str().into(),
                ipv4_cidr: format!("10.{v}.{s}.0/24").parse().unwrap(),
                ipv6_cidr: Some(format!("fd0{v}:0:0:{s}::/64").parse().unwrap()),
                nacl: if rng.chance(60) {
                    format!("acl-default-{v}")
                } else {
                    format!("acl-custom-{v}")
                }
                .as_str()
                .into(),
            });
        }
    }
    if rng.chance(70) {
        spec.peerings.push(PeeringSpec {
            id: "pcx-1".into(),
            vpc_a: "vpc-1".into(),
            vpc_b: "vpc-2".into(),
            active: rng.chance(80),
        });
    }
    spec.prefix_lists.push(PrefixListSpec {
        id: "pl-1".into(),
        cidrs: vec![
            "10.1.1.0/24".parse().unwrap(),
            "10.2.0.0/16".parse().unwrap(),
        ],
    });
    let groups: Vec<(String, u8)> = (1..=VPCS)
        .flat_map(|v| (0..2).map(move |g| (format!("sg-{v}{g}"), v)))
        .collect();
    for (n, (id, v)) in groups.iter().enumerate() {
        let rules = |dir: &str, count: u64, rng: &mut Rng| {
            (0..count)
                .map(|i| random_rule(rng, &format!("sgr-{n}{dir}{i}"), &groups))
                .collect::<Vec<_>>()
        };
        let ingress_count = 1 + rng.below(4);
        let ingress = rules("i", ingress_count, &mut rng);
        let egress = if rng.chance(50) {
            vec![
                SgRule {
                    id: format!("sgr-{n}e4").as_str().into(),
                    protocol: Protocol::All,
                    ports: PortSpec::Any,
                    peer: Peer::Cidr4("0.0.0.0/0".parse().unwrap()),
                    description: String::new(),
                },
                SgRule {
                    id: format!("sgr-{n}e6").as_str().into(),
                    protocol: Protocol::All,
                    ports: PortSpec::Any,
                    peer: Peer::Cidr6("::/0".parse().unwrap()),
                    description: String::new(),
                },
            ]
        } else {
            let count = rng.below(4);
            rules("e", count, &mut rng)
        };
        spec.security_groups.push(SecurityGroupSpec {
            id: id.as_str().into(),
            vpc: format!("vpc-{v}").as_str().into(),
            ingress,
            egress,
        });
    }
    let enis = 4 + rng.below(3) as usize;
    for i in 0..enis {
        let v = 1 + (i % 2) as u8;
        let s = 1 + rng.below(u64::from(SUBNETS_PER_VPC)) as u8;
        let host = 10 + i as u8;
        let own: Vec<&(String, u8)> = groups.iter().filter(|(_, gv)| *gv == v).collect();
        let mut eni_groups = vec![own[rng.below(own.len() as u64) as usize].0.as_str().into()];
        if rng.chance(30) {
            let other = own[rng.below(own.len() as u64) as usize].0.as_str().into();
            if !eni_groups.contains(&other) {
                eni_groups.push(other);
            }
        }
        spec.enis.push(EniSpec {
            id: format!("eni-{i}").as_str().into(),
            subnet: format!("subnet-{v}{s}").as_str().into(),
            port: (i % 3) as u16,
            vlan: if rng.chance(25) {
                Some(100 + rng.below(3) as u16)
            } else {
                None
            },
            mac: mac(i),
            private_ips: vec![IpAddr::V4(v4(v, s, host)), IpAddr::V6(v6(v, s, host))],
            groups: eni_groups,
            source_dest_check: rng.chance(85),
            timeouts: ConntrackTimeouts {
                tcp_established: *rng.pick(&[432_000, 60, 3600]),
                udp_stream: *rng.pick(&[180, 60]),
                udp: *rng.pick(&[30, 60]),
            },
        });
    }
    if rng.chance(50) {
        spec.uplink = Some(UplinkSpec {
            port: 3,
            vlan: None,
            mac: UPLINK_MAC,
        });
    }
    spec
}

/// The data plane's counter for a policy deny (as `palisade explain` maps it).
fn drop_reason(reason: DenyReason) -> DropReason {
    match reason {
        DenyReason::UnknownSource => DropReason::UnknownSource,
        DenyReason::SourceNotOwned => DropReason::Spoofed,
        DenyReason::NoRoute => DropReason::NoRoute,
        DenyReason::NaclEgress | DenyReason::NaclIngress => DropReason::NaclDenied,
        DenyReason::SecurityGroupEgress => DropReason::EgressDenied,
        DenyReason::SecurityGroupIngress => DropReason::IngressDenied,
    }
}

/// A random first packet: who sends it (an ENI index, or `None` for the
/// uplink), its fields and the payload to build its frame.
fn random_packet(rng: &mut Rng, spec: &PolicySpec) -> (Option<usize>, PacketFields, Payload) {
    let from_uplink = spec.uplink.is_some() && rng.chance(20);
    let ipv6 = rng.chance(30);
    let pick_addr = |e: &EniSpec| {
        *e.private_ips
            .iter()
            .find(|a| a.is_ipv6() == ipv6)
            .expect("every ENI has both families")
    };
    let sender = (!from_uplink).then(|| rng.below(spec.enis.len() as u64) as usize);
    let external = if ipv6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7))
    } else {
        IpAddr::V4(EXTERNAL_V4)
    };
    let src = match sender {
        // Mostly its own address; sometimes another's (the source check).
        Some(i) if rng.chance(90) => pick_addr(&spec.enis[i]),
        Some(_) => {
            let other = rng.pick(&spec.enis).clone();
            pick_addr(&other)
        }
        None => external,
    };
    let dst = match rng.below(10) {
        0 => external,
        1 => {
            // A subnet's router address, or an address nobody owns.
            let (v, s) = (1 + rng.below(2) as u8, 1 + rng.below(2) as u8);
            let host = *rng.pick(&[1, 250]);
            if ipv6 {
                IpAddr::V6(v6(v, s, host))
            } else {
                IpAddr::V4(v4(v, s, host))
            }
        }
        _ => {
            let other = rng.pick(&spec.enis).clone();
            pick_addr(&other)
        }
    };
    let (fields, payload) = match rng.below(4) {
        0 | 1 => {
            let (sp, dp) = (
                40000 + rng.below(10) as u16,
                *rng.pick(&[22, 80, 443, 1500, 53]),
            );
            if rng.chance(50) {
                (
                    PacketFields::l4(src, dst, 6, sp, dp),
                    Payload::Tcp {
                        src_port: sp,
                        dst_port: dp,
                        flags: flags::SYN,
                    },
                )
            } else {
                (
                    PacketFields::l4(src, dst, 17, sp, dp),
                    Payload::Udp {
                        src_port: sp,
                        dst_port: dp,
                    },
                )
            }
        }
        2 => {
            let (protocol, ty) = if ipv6 { (58, 128) } else { (1, 8) };
            (
                PacketFields::icmp(src, dst, protocol, ty, 0),
                Payload::Echo {
                    id: 7,
                    reply: false,
                },
            )
        }
        _ => {
            let protocol = *rng.pick(&[47, 50, 132]);
            (
                PacketFields::l4(src, dst, protocol, 0, 0),
                Payload::Raw { protocol },
            )
        }
    };
    (sender, fields, payload)
}

/// One packet: explain and `process()` agree, and the named rules are the
/// reference's. Returns the outcome, for coverage.
fn check_packet(spec: &PolicySpec, snapshot: &PolicySnapshot, rng: &mut Rng) -> Outcome {
    let (sender, fields, payload) = random_packet(rng, spec);
    let (src_mac, vlan, port) = if let Some(i) = sender {
        (spec.enis[i].mac, spec.enis[i].vlan, spec.enis[i].port)
    } else {
        let up = spec.uplink.expect("uplink");
        (up.mac, up.vlan, up.port)
    };
    let explained = match sender {
        Some(i) => {
            let idx = snapshot.eni_by_id(&spec.enis[i].id).expect("eni compiled");
            snapshot.explain(idx, &fields)
        }
        None => snapshot.explain_from_uplink(&fields),
    };

    // The data plane, on a fresh flow table: this is a first packet.
    let mut worker = Worker::new(WorkerConfig {
        max_flows: 64,
        ..WorkerConfig::default()
    })
    .expect("worker");
    let mut spec_frame = FrameSpec::new(src_mac, ROUTER_MAC, fields.src, fields.dst, payload);
    spec_frame.vlan = vlan;
    let mut burst = [HeapPacket::new(port, &frame(&spec_frame))];
    let mut verdicts = [Verdict::Drop(DropReason::Malformed)];
    worker.process(&mut burst, 0, snapshot, &mut verdicts);
    let expected = match (&explained.outcome, &explained.route) {
        (Outcome::Allowed { .. }, ExplainedRoute::Eni(id)) => Verdict::Forward {
            port: spec.enis.iter().find(|e| &e.id == id).expect("eni").port,
        },
        (Outcome::Allowed { .. }, ExplainedRoute::Uplink) => Verdict::Forward {
            port: spec.uplink.expect("uplink").port,
        },
        (Outcome::Allowed { .. }, route) => panic!("allowed toward {route:?}"),
        (Outcome::ToRouter, _) => Verdict::Drop(DropReason::ToRouter),
        (Outcome::Denied(r), _) => Verdict::Drop(drop_reason(*r)),
    };
    assert_eq!(
        verdicts[0], expected,
        "process() and explain disagree on {fields:?} from {sender:?}:\n{explained}"
    );

    // The named entries and rules are the plain reference's.
    let step_rule = |s: Option<&palisade_dataplane::policy::SgStep>| s.and_then(|s| s.rule.clone());
    let step_allows =
        |s: Option<&palisade_dataplane::policy::SgStep>| s.map(|s| !s.allowing.is_empty());
    match sender {
        Some(i) => {
            let r = reference::decide(spec, &spec.enis[i].id, &fields);
            assert_eq!(
                explained.nacl_egress.as_ref().map(|n| n.decision),
                r.nacl_egress,
                "egress NACL entry of {fields:?}:\n{explained}"
            );
            assert_eq!(
                explained.nacl_ingress.as_ref().map(|n| n.decision),
                r.nacl_ingress,
                "ingress NACL entry of {fields:?}:\n{explained}"
            );
            assert_eq!(
                step_rule(explained.egress.as_ref()),
                r.egress.as_ref().and_then(|m| m.rule.clone()),
                "egress rule of {fields:?}:\n{explained}"
            );
            assert_eq!(
                step_rule(explained.ingress.as_ref()),
                r.ingress.as_ref().and_then(|m| m.rule.clone()),
                "ingress rule of {fields:?}:\n{explained}"
            );
            assert_eq!(
                step_allows(explained.egress.as_ref()),
                r.egress.as_ref().map(|m| m.groups != 0)
            );
            assert_eq!(
                step_allows(explained.ingress.as_ref()),
                r.ingress.as_ref().map(|m| m.groups != 0)
            );
            assert_eq!(
                matches!(explained.outcome, Outcome::Allowed { tracked: false }),
                r.untracked,
                "tracking of {fields:?}:\n{explained}"
            );
        }
        None => {
            if let RefRoute::Eni(dst) = reference::route_from_uplink(spec, fields.dst) {
                let to = spec.enis.iter().find(|e| e.id == dst).expect("eni");
                let nacl = reference::nacl_decide(spec, &to.subnet, Direction::Ingress, &fields);
                let sg = reference::sg_match(spec, &dst, Direction::Ingress, &fields, None);
                assert_eq!(
                    explained.nacl_ingress.as_ref().map(|n| n.decision),
                    Some(nacl)
                );
                assert_eq!(step_rule(explained.ingress.as_ref()), sg.rule);
                assert_eq!(
                    step_allows(explained.ingress.as_ref()),
                    Some(sg.groups != 0)
                );
            } else {
                assert_eq!(explained.outcome, Outcome::Denied(DenyReason::NoRoute));
            }
        }
    }
    explained.outcome
}

#[test]
fn explain_agrees_with_process_and_the_reference() {
    let mut seen = std::collections::HashSet::new();
    for seed in 0..300 {
        let spec = world(seed);
        let snapshot = PolicySnapshot::compile(&spec, 1).expect("world compiles");
        let mut rng = Rng(seed ^ 0x5eed);
        for _ in 0..40 {
            let outcome = check_packet(&spec, &snapshot, &mut rng);
            seen.insert(format!("{outcome:?}"));
        }
    }
    // The cases covered every kind of answer, not only one.
    for wanted in [
        "Allowed { tracked: true }",
        "ToRouter",
        "Denied(SourceNotOwned)",
        "Denied(NoRoute)",
        "Denied(NaclEgress)",
        "Denied(SecurityGroupEgress)",
        "Denied(NaclIngress)",
        "Denied(SecurityGroupIngress)",
    ] {
        assert!(seen.contains(wanted), "no case gave {wanted}; saw {seen:?}");
    }
}

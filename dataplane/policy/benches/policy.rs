//! Policy benches: full compile of a large world, new-flow classification on
//! 1,000-rule ENIs, one-rule incremental apply, and the per-packet lookups.
//!
//! The world: one VPC (10.0.0.0/16 + IPv6), 50 subnets, 2,500 groups with 60
//! ingress + 60 egress rules each (tcp/udp ports and ranges, icmp type/code,
//! all-traffic, other protocols; IPv4/IPv6 CIDRs of all lengths, prefix
//! lists, group peers), 10,000 ENIs drawing their 1–5 groups from 2,000
//! "roles" (so ~2,000 distinct SG sets), and two ENIs with 16 groups × ~62
//! rules = 1,000 rules per direction.
//!
//! `classify/*_peered`: what `process()`'s new-flow bench sees. ENIs 2 and 3
//! carry the same 16 extra groups (60 + 60 rules each) whose group-peer rules
//! name each other, so each packet's remote ENI is a member of all 16
//! referenced groups (the two ENIs above draw peers among 2,500 groups and
//! hardly ever meet one).
//!
//! Run: `cargo bench -p palisade-policy --bench policy`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_policy::{
    ChangeHint, ConntrackTimeouts, Direction, EniIdx, EniSpec, IpCidr, Ipv4Cidr, Ipv6Cidr,
    NaclAction, NaclEntry, NaclSpec, PacketFields, Peer, PolicySnapshot, PolicySpec, PortSpec,
    PrefixListSpec, Protocol, Remote, SecurityGroupSpec, SgId, SgRule, SgSetIdx, SubnetSpec,
    UplinkSpec, VpcSpec,
};

const GROUPS: usize = 2_500;
const RULES_PER_DIRECTION: usize = 60;
const ENIS: usize = 10_000;
const ROLES: usize = 2_000;
const SUBNETS: usize = 50;
const BIG_GROUPS: usize = 16;
/// ENIs 2 and 3 carry these groups, all of them.
const PEERED_GROUPS: usize = 16;

fn peered_group(g: usize) -> SgId {
    format!("sg-peer-{g:02}").as_str().into()
}

/// splitmix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn eni_v4(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, (i % SUBNETS + 1) as u8, (10 + i / SUBNETS) as u8)
}

fn eni_v6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(
        0xfd00,
        0,
        0,
        (i % SUBNETS + 1) as u16,
        0,
        0,
        0,
        (10 + i / SUBNETS) as u16,
    )
}

fn random_rule(rng: &mut Rng, id: &str) -> SgRule {
    let (protocol, ports) = match rng.below(20) {
        0..=8 => {
            let from =
                [22, 80, 443, 3306, 5432, 6379, 8080, 9000][rng.below(8)] + rng.below(50) as u16;
            let to = if rng.below(3) == 0 {
                from + rng.below(2000) as u16
            } else {
                from
            };
            (Protocol::Tcp, PortSpec::Range { from, to })
        }
        9..=12 => {
            let from = [53, 123, 161, 514, 4789][rng.below(5)] + rng.below(20) as u16;
            (
                Protocol::Udp,
                PortSpec::Range {
                    from,
                    to: from + rng.below(4) as u16,
                },
            )
        }
        13 | 14 => (
            Protocol::Icmp,
            PortSpec::Icmp {
                icmp_type: Some([0, 3, 8, 11][rng.below(4)]),
                code: if rng.below(2) == 0 {
                    None
                } else {
                    Some(rng.below(5) as u8)
                },
            },
        ),
        15 => (Protocol::Icmpv6, PortSpec::Any),
        16 => (Protocol::Number(47), PortSpec::Any),
        _ => (Protocol::All, PortSpec::Any),
    };
    let peer = match rng.below(10) {
        0..=3 => Peer::Cidr4(Ipv4Cidr::truncating(
            Ipv4Addr::from(rng.next() as u32 & 0x0aff_ffff | 0x0a00_0000),
            16 + rng.below(17) as u8,
        )),
        4 => Peer::Cidr4(Ipv4Cidr::truncating(
            Ipv4Addr::from(rng.next() as u32),
            8 + rng.below(25) as u8,
        )),
        5 => Peer::Cidr6(Ipv6Cidr::truncating(
            Ipv6Addr::from(u128::from(rng.next()) | 0xfd00 << 112),
            48 + rng.below(81) as u8,
        )),
        6 => Peer::PrefixList(format!("pl-{}", rng.below(4)).as_str().into()),
        _ => Peer::Group(format!("sg-{:05}", rng.below(GROUPS)).as_str().into()),
    };
    SgRule {
        id: id.into(),
        protocol,
        ports,
        peer,
        description: String::new(),
    }
}

fn big_world() -> PolicySpec {
    let mut rng = Rng(42);
    let mut spec = PolicySpec {
        router_mac: [2, 0, 0, 0, 0, 0xfe],
        vpcs: vec![VpcSpec {
            id: "vpc-big".into(),
            ipv4_cidr: "10.0.0.0/16".parse().unwrap(),
            ipv6_cidr: Some("fd00::/48".parse().unwrap()),
        }],
        uplink: Some(UplinkSpec {
            port: 1,
            vlan: None,
            mac: [2, 0, 0, 0, 0, 0x99],
        }),
        ..PolicySpec::default()
    };
    let mut allow_all = Vec::new();
    for (n, egress, cidr) in [
        (100, false, "0.0.0.0/0"),
        (100, true, "0.0.0.0/0"),
        (101, false, "::/0"),
        (101, true, "::/0"),
    ] {
        allow_all.push(NaclEntry {
            rule_number: n,
            egress,
            protocol: Protocol::All,
            cidr: cidr.parse().unwrap(),
            ports: PortSpec::Any,
            action: NaclAction::Allow,
        });
    }
    let mut twenty = allow_all.clone();
    for n in 1..=18 {
        twenty.push(NaclEntry {
            rule_number: n * 5,
            egress: n % 2 == 0,
            protocol: Protocol::Tcp,
            cidr: IpCidr::V4(Ipv4Cidr::truncating(
                Ipv4Addr::new(192, 168, n as u8, 0),
                24,
            )),
            ports: PortSpec::Range { from: 1, to: 1023 },
            action: NaclAction::Deny,
        });
    }
    spec.nacls.push(NaclSpec {
        id: "acl-default".into(),
        vpc: "vpc-big".into(),
        entries: allow_all,
    });
    spec.nacls.push(NaclSpec {
        id: "acl-twenty".into(),
        vpc: "vpc-big".into(),
        entries: twenty,
    });
    for s in 1..=SUBNETS {
        spec.subnets.push(SubnetSpec {
            id: format!("subnet-{s:03}").as_str().into(),
            vpc: "vpc-big".into(),
            ipv4_cidr: Ipv4Cidr::new(Ipv4Addr::new(10, 0, s as u8, 0), 24).unwrap(),
            ipv6_cidr: Some(
                Ipv6Cidr::new(Ipv6Addr::new(0xfd00, 0, 0, s as u16, 0, 0, 0, 0), 64).unwrap(),
            ),
            nacl: if s % 2 == 0 {
                "acl-twenty".into()
            } else {
                "acl-default".into()
            },
        });
    }
    for l in 0..4 {
        spec.prefix_lists.push(PrefixListSpec {
            id: format!("pl-{l}").as_str().into(),
            cidrs: (0..10)
                .map(|_| {
                    IpCidr::V4(Ipv4Cidr::truncating(
                        Ipv4Addr::from(rng.next() as u32),
                        12 + rng.below(21) as u8,
                    ))
                })
                .collect(),
        });
    }
    for g in 0..GROUPS {
        let mut rules = |dir: &str| {
            (0..RULES_PER_DIRECTION)
                .map(|r| random_rule(&mut rng, &format!("sgr-{g:05}{dir}{r:02}")))
                .collect::<Vec<_>>()
        };
        let ingress = rules("i");
        let mut egress = rules("e");
        // Most groups keep the default "all traffic to anywhere" egress rule.
        if g % 4 != 0 {
            egress[0] = SgRule {
                id: format!("sgr-{g:05}e00").as_str().into(),
                protocol: Protocol::All,
                ports: PortSpec::Any,
                peer: Peer::Cidr4(Ipv4Cidr::ANY),
                description: String::new(),
            };
        }
        spec.security_groups.push(SecurityGroupSpec {
            id: format!("sg-{g:05}").as_str().into(),
            vpc: "vpc-big".into(),
            ingress,
            egress,
        });
    }
    // Their own generator, so that the 2,500 groups above stay as they were.
    let mut peered_rng = Rng(43);
    for g in 0..PEERED_GROUPS {
        let mut rules = |dir: &str| {
            (0..RULES_PER_DIRECTION)
                .map(|r| {
                    let mut rule = random_rule(&mut peered_rng, &format!("sgr-p{g:02}{dir}{r:02}"));
                    if matches!(rule.peer, Peer::Group(_)) {
                        rule.peer = Peer::Group(peered_group(peered_rng.below(PEERED_GROUPS)));
                    }
                    rule
                })
                .collect::<Vec<_>>()
        };
        let ingress = rules("i");
        let egress = rules("e");
        spec.security_groups.push(SecurityGroupSpec {
            id: peered_group(g),
            vpc: "vpc-big".into(),
            ingress,
            egress,
        });
    }
    let roles: Vec<Vec<SgId>> = (0..ROLES)
        .map(|_| {
            let mut groups: Vec<SgId> = (0..=rng.below(5))
                .map(|_| format!("sg-{:05}", rng.below(GROUPS)).as_str().into())
                .collect();
            groups.sort();
            groups.dedup();
            groups
        })
        .collect();
    for i in 0..ENIS {
        let groups = if i < 2 {
            // The two 1,000-rule ENIs: 16 groups each, disjoint.
            (0..BIG_GROUPS)
                .map(|g| {
                    format!("sg-{:05}", 100 + i * BIG_GROUPS + g)
                        .as_str()
                        .into()
                })
                .collect()
        } else {
            let role = roles[rng.below(ROLES)].clone();
            if i < 4 {
                (0..PEERED_GROUPS).map(peered_group).collect()
            } else {
                role
            }
        };
        spec.enis.push(EniSpec {
            id: format!("eni-{i:05}").as_str().into(),
            subnet: format!("subnet-{:03}", i % SUBNETS + 1).as_str().into(),
            port: 0,
            vlan: Some((i / 4000) as u16 + 1),
            mac: [2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8],
            private_ips: vec![IpAddr::V4(eni_v4(i)), IpAddr::V6(eni_v6(i))],
            groups,
            source_dest_check: true,
            timeouts: ConntrackTimeouts::default(),
        });
    }
    spec
}

/// New-flow packets between ENI 0 and ENI 1 (both 1,000 rules), with
/// protocols, ports and ICMP types drawn from what the rules name, half of
/// them with remote = another ENI (for group peers) — here the addresses of
/// ENI 0 and ENI 1 themselves, which is what a routed packet carries.
fn flow_packets(rng: &mut Rng, n: usize, from: usize, to: usize) -> Vec<PacketFields> {
    (0..n)
        .map(|_| {
            let (src, dst) = if rng.below(4) == 0 {
                (IpAddr::V6(eni_v6(from)), IpAddr::V6(eni_v6(to)))
            } else {
                (IpAddr::V4(eni_v4(from)), IpAddr::V4(eni_v4(to)))
            };
            match rng.below(10) {
                0..=5 => {
                    let port = [22, 80, 443, 3306, 5432, 6379, 8080, 9000][rng.below(8)]
                        + rng.below(60) as u16;
                    PacketFields::l4(src, dst, 6, 40000, port)
                }
                6 | 7 => PacketFields::l4(
                    src,
                    dst,
                    17,
                    40000,
                    [53, 123, 161, 514, 4789][rng.below(5)] + rng.below(25) as u16,
                ),
                8 => PacketFields::icmp(
                    src,
                    dst,
                    if src.is_ipv4() { 1 } else { 58 },
                    [0, 3, 8, 11][rng.below(4)],
                    rng.below(5) as u8,
                ),
                _ => PacketFields::l4(src, dst, 47, 0, 0),
            }
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let spec = big_world();
    let snap = PolicySnapshot::compile(&spec, 1).unwrap();
    let heap: usize = (0..snap.sg_set_count())
        .flat_map(|s| Direction::BOTH.map(|d| (s, d)))
        .filter_map(|(s, d)| {
            snap.enis()
                .iter()
                .find(|e| e.sg_set.index() == s)
                .and_then(|e| snap.classifier(e.sg_set, d))
        })
        .map(palisade_policy::SetClassifier::heap_bytes)
        .sum();
    let sender = snap.eni_by_id(&"eni-00000".into()).unwrap();
    let receiver = snap.eni_by_id(&"eni-00001".into()).unwrap();
    let (set_a, set_b) = (snap.eni(sender).sg_set, snap.eni(receiver).sg_set);
    eprintln!(
        "world: {} groups, {} ENIs, {} distinct SG sets, classifier heap {} MiB; big ENIs: {} egress / {} ingress rules",
        spec.security_groups.len(),
        spec.enis.len(),
        snap.sg_set_count(),
        heap >> 20,
        snap.classifier(set_a, Direction::Egress)
            .unwrap()
            .rule_count(),
        snap.classifier(set_b, Direction::Ingress)
            .unwrap()
            .rule_count(),
    );

    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_function("full_2500_groups_x120_rules_10000_enis", |bench| {
        bench.iter_with_large_drop(|| PolicySnapshot::compile(black_box(&spec), 2).unwrap());
    });
    // One rule of one of the 1,000-rule ENI's groups changes.
    let mut changed = spec.clone();
    changed.security_groups[100].ingress[7].protocol = Protocol::Tcp;
    changed.security_groups[100].ingress[7].ports = PortSpec::Range { from: 1, to: 2 };
    let hint = ChangeHint::groups([&changed.security_groups[100].id]);
    let mut changed_small = spec.clone();
    changed_small.security_groups[2000].ingress[7].protocol = Protocol::Tcp;
    changed_small.security_groups[2000].ingress[7].ports = PortSpec::Range { from: 1, to: 2 };
    let hint_small = ChangeHint::groups([&changed_small.security_groups[2000].id]);
    group.sample_size(50);
    group.bench_function("apply_one_rule_in_a_1000_rule_set", |bench| {
        bench.iter_with_large_drop(|| snap.apply(black_box(&changed), &hint, 2).unwrap());
    });
    group.bench_function("apply_one_rule_typical_group", |bench| {
        bench.iter_with_large_drop(|| {
            snap.apply(black_box(&changed_small), &hint_small, 2)
                .unwrap()
        });
    });
    group.finish();

    let mut rng = Rng(7);
    let packets = flow_packets(&mut rng, 1024, 0, 1);
    let allowed = packets
        .iter()
        .filter(|p| {
            snap.classify(set_a, Direction::Egress, p, Remote::Eni(receiver))
                .allowed()
                && snap
                    .classify(set_b, Direction::Ingress, p, Remote::Eni(sender))
                    .allowed()
        })
        .count();
    eprintln!(
        "flow packets allowed both ways: {allowed} / {}",
        packets.len()
    );
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(packets.len() as u64));
    group.bench_function("egress_plus_ingress_1000_rules", |bench| {
        bench.iter(|| both_ways(&snap, &packets, (sender, set_a), (receiver, set_b)));
    });
    let peered_sender = snap.eni_by_id(&"eni-00002".into()).unwrap();
    let peered_receiver = snap.eni_by_id(&"eni-00003".into()).unwrap();
    let peered_set = snap.eni(peered_sender).sg_set;
    assert_eq!(peered_set, snap.eni(peered_receiver).sg_set);
    let peered_packets = flow_packets(&mut Rng(8), 1024, 2, 3);
    group.bench_function("egress_plus_ingress_1000_rules_peered", |bench| {
        bench.iter(|| {
            both_ways(
                &snap,
                &peered_packets,
                (peered_sender, peered_set),
                (peered_receiver, peered_set),
            )
        });
    });
    group.bench_function("decide_1000_rules", |bench| {
        bench.iter(|| {
            let mut allowed = 0u32;
            for p in &packets {
                allowed += u32::from(snap.decide(sender, black_box(p)).untracked);
            }
            allowed
        });
    });
    // Typical ENIs: random pairs of the 10,000, packets between their addresses.
    let pairs: Vec<(
        palisade_policy::EniIdx,
        palisade_policy::EniIdx,
        PacketFields,
    )> = (0..1024)
        .map(|_| {
            let (s, d) = (2 + rng.below(ENIS - 2), 2 + rng.below(ENIS - 2));
            let mut p = packets[rng.below(packets.len())];
            if p.src.is_ipv4() {
                (p.src, p.dst) = (IpAddr::V4(eni_v4(s)), IpAddr::V4(eni_v4(d)));
            } else {
                (p.src, p.dst) = (IpAddr::V6(eni_v6(s)), IpAddr::V6(eni_v6(d)));
            }
            let idx = |i: usize| snap.eni_by_id(&spec.enis[i].id).unwrap();
            (idx(s), idx(d), p)
        })
        .collect();
    group.bench_function("egress_plus_ingress_typical_enis", |bench| {
        bench.iter(|| {
            let mut allowed = 0u32;
            for &(s, d, ref p) in &pairs {
                let e = snap.classify(
                    snap.eni(s).sg_set,
                    Direction::Egress,
                    black_box(p),
                    Remote::Eni(d),
                );
                let i = snap.classify(
                    snap.eni(d).sg_set,
                    Direction::Ingress,
                    black_box(p),
                    Remote::Eni(s),
                );
                allowed += u32::from(e.allowed() && i.allowed());
            }
            allowed
        });
    });
    group.finish();

    let mut group = c.benchmark_group("lookup");
    let keys: Vec<(u16, Option<u16>, [u8; 6], IpAddr)> = (0..1024)
        .map(|_| {
            let e = &spec.enis[rng.below(ENIS)];
            (e.port, e.vlan, e.mac, e.private_ips[rng.below(2)])
        })
        .collect();
    group.throughput(Throughput::Elements(keys.len() as u64));
    group.bench_function("eni_by_l2", |bench| {
        bench.iter(|| {
            keys.iter()
                .filter(|k| snap.eni_by_l2(k.0, k.1, black_box(k.2)).is_some())
                .count()
        });
    });
    let vpc = snap.eni(sender).vpc;
    group.bench_function("route", |bench| {
        bench.iter(|| {
            keys.iter()
                .filter(|k| {
                    matches!(
                        snap.route(vpc, black_box(k.3)),
                        palisade_policy::Route::Eni(_)
                    )
                })
                .count()
        });
    });
    group.finish();
}

/// Classifies every packet as the sender's egress and the receiver's
/// ingress see it; how many both allow.
fn both_ways(
    snap: &PolicySnapshot,
    packets: &[PacketFields],
    (sender, sender_set): (EniIdx, SgSetIdx),
    (receiver, receiver_set): (EniIdx, SgSetIdx),
) -> u32 {
    let mut allowed = 0u32;
    for p in packets {
        let e = snap.classify(
            sender_set,
            Direction::Egress,
            black_box(p),
            Remote::Eni(receiver),
        );
        let i = snap.classify(
            receiver_set,
            Direction::Ingress,
            black_box(p),
            Remote::Eni(sender),
        );
        allowed += u32::from(e.allowed() && i.allowed());
    }
    allowed
}

criterion_group!(policy, benches);
criterion_main!(policy);

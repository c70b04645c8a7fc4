//! Scenario tests of the snapshot, and the differential property tests that
//! hold the compiled snapshot (full and incremental) to the reference
//! evaluator over random VPC worlds.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::reference::{self, RefRoute, RefSgMatch};
use crate::*;

// ---------------------------------------------------------------------------
// A small hand-written world.

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn rule(id: &str, protocol: Protocol, ports: PortSpec, peer: Peer) -> SgRule {
    SgRule {
        id: id.into(),
        protocol,
        ports,
        peer,
        description: String::new(),
    }
}

fn tcp_ports(from: u16, to: u16) -> PortSpec {
    PortSpec::Range { from, to }
}

fn cidr4(text: &str) -> Peer {
    Peer::Cidr4(text.parse().unwrap())
}

fn allow_all_nacl(id: &str, vpc: &str) -> NaclSpec {
    let entry = |egress, cidr: &str| NaclEntry {
        rule_number: if cidr.contains(':') { 101 } else { 100 },
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
            entry(false, "0.0.0.0/0"),
            entry(true, "0.0.0.0/0"),
            entry(false, "::/0"),
            entry(true, "::/0"),
        ],
    }
}

fn eni(id: &str, subnet: &str, mac_last: u8, ips: &[&str], groups: &[&str]) -> EniSpec {
    EniSpec {
        id: id.into(),
        subnet: subnet.into(),
        port: 0,
        vlan: Some(10),
        mac: [2, 0, 0, 0, 0, mac_last],
        private_ips: ips.iter().map(|s| ip(s)).collect(),
        groups: groups.iter().map(|&g| g.into()).collect(),
        source_dest_check: true,
        timeouts: ConntrackTimeouts::default(),
    }
}

/// Two VPCs peered (`pcx-1`), a third whose peering is inactive.
/// vpc-a: subnet-a1 (web, app), subnet-a2 (db). vpc-b: subnet-b1 (peer).
fn world() -> PolicySpec {
    PolicySpec {
        router_mac: [2, 0, 0, 0, 0, 0xfe],
        vpcs: vec![
            VpcSpec {
                id: "vpc-a".into(),
                ipv4_cidr: "10.0.0.0/16".parse().unwrap(),
                ipv6_cidr: Some("fd00:a::/48".parse().unwrap()),
            },
            VpcSpec {
                id: "vpc-b".into(),
                ipv4_cidr: "10.1.0.0/16".parse().unwrap(),
                ipv6_cidr: None,
            },
            VpcSpec {
                id: "vpc-c".into(),
                ipv4_cidr: "10.2.0.0/16".parse().unwrap(),
                ipv6_cidr: None,
            },
        ],
        subnets: vec![
            SubnetSpec {
                id: "subnet-a1".into(),
                vpc: "vpc-a".into(),
                ipv4_cidr: "10.0.1.0/24".parse().unwrap(),
                ipv6_cidr: Some("fd00:a:0:1::/64".parse().unwrap()),
                nacl: "acl-a".into(),
            },
            SubnetSpec {
                id: "subnet-a2".into(),
                vpc: "vpc-a".into(),
                ipv4_cidr: "10.0.2.0/24".parse().unwrap(),
                ipv6_cidr: None,
                nacl: "acl-a-db".into(),
            },
            SubnetSpec {
                id: "subnet-b1".into(),
                vpc: "vpc-b".into(),
                ipv4_cidr: "10.1.1.0/24".parse().unwrap(),
                ipv6_cidr: None,
                nacl: "acl-b".into(),
            },
            SubnetSpec {
                id: "subnet-c1".into(),
                vpc: "vpc-c".into(),
                ipv4_cidr: "10.2.1.0/24".parse().unwrap(),
                ipv6_cidr: None,
                nacl: "acl-c".into(),
            },
        ],
        security_groups: vec![
            SecurityGroupSpec {
                id: "sg-web".into(),
                vpc: "vpc-a".into(),
                ingress: vec![
                    rule(
                        "sgr-web-https",
                        Protocol::Tcp,
                        tcp_ports(443, 443),
                        cidr4("0.0.0.0/0"),
                    ),
                    rule(
                        "sgr-web-ping",
                        Protocol::Icmp,
                        PortSpec::Icmp {
                            icmp_type: Some(8),
                            code: None,
                        },
                        cidr4("10.0.0.0/8"),
                    ),
                ],
                egress: vec![rule(
                    "sgr-web-out",
                    Protocol::All,
                    PortSpec::Any,
                    cidr4("0.0.0.0/0"),
                )],
            },
            SecurityGroupSpec {
                id: "sg-db".into(),
                vpc: "vpc-a".into(),
                ingress: vec![
                    rule(
                        "sgr-db-from-web",
                        Protocol::Tcp,
                        tcp_ports(5432, 5432),
                        Peer::Group("sg-web".into()),
                    ),
                    rule(
                        "sgr-db-from-peer",
                        Protocol::Tcp,
                        tcp_ports(5432, 5432),
                        Peer::Group("sg-peer".into()),
                    ),
                    rule(
                        "sgr-db-from-c",
                        Protocol::Tcp,
                        tcp_ports(5432, 5432),
                        Peer::Group("sg-c".into()),
                    ),
                ],
                egress: vec![],
            },
            SecurityGroupSpec {
                id: "sg-peer".into(),
                vpc: "vpc-b".into(),
                ingress: vec![],
                egress: vec![rule(
                    "sgr-peer-out",
                    Protocol::Tcp,
                    tcp_ports(0, 65535),
                    cidr4("0.0.0.0/0"),
                )],
            },
            SecurityGroupSpec {
                id: "sg-c".into(),
                vpc: "vpc-c".into(),
                ingress: vec![],
                egress: vec![rule(
                    "sgr-c-out",
                    Protocol::All,
                    PortSpec::Any,
                    cidr4("0.0.0.0/0"),
                )],
            },
        ],
        enis: vec![
            eni(
                "eni-web",
                "subnet-a1",
                1,
                &["10.0.1.10", "fd00:a:0:1::10"],
                &["sg-web"],
            ),
            eni("eni-app", "subnet-a1", 2, &["10.0.1.11"], &["sg-web"]),
            eni("eni-db", "subnet-a2", 3, &["10.0.2.10"], &["sg-db"]),
            eni("eni-peer", "subnet-b1", 4, &["10.1.1.10"], &["sg-peer"]),
            eni("eni-c", "subnet-c1", 5, &["10.2.1.10"], &["sg-c"]),
        ],
        nacls: vec![
            allow_all_nacl("acl-a", "vpc-a"),
            NaclSpec {
                entries: vec![
                    NaclEntry {
                        rule_number: 50,
                        egress: false,
                        protocol: Protocol::Tcp,
                        cidr: "10.0.1.11/32".parse().unwrap(),
                        ports: tcp_ports(0, 65535),
                        action: NaclAction::Deny,
                    },
                    NaclEntry {
                        rule_number: 100,
                        egress: false,
                        protocol: Protocol::All,
                        cidr: "0.0.0.0/0".parse().unwrap(),
                        ports: PortSpec::Any,
                        action: NaclAction::Allow,
                    },
                    NaclEntry {
                        rule_number: 100,
                        egress: true,
                        protocol: Protocol::All,
                        cidr: "0.0.0.0/0".parse().unwrap(),
                        ports: PortSpec::Any,
                        action: NaclAction::Allow,
                    },
                ],
                ..allow_all_nacl("acl-a-db", "vpc-a")
            },
            allow_all_nacl("acl-b", "vpc-b"),
            allow_all_nacl("acl-c", "vpc-c"),
        ],
        peerings: vec![
            PeeringSpec {
                id: "pcx-1".into(),
                vpc_a: "vpc-a".into(),
                vpc_b: "vpc-b".into(),
                active: true,
            },
            PeeringSpec {
                id: "pcx-2".into(),
                vpc_a: "vpc-a".into(),
                vpc_b: "vpc-c".into(),
                active: false,
            },
        ],
        prefix_lists: vec![],
        uplink: Some(UplinkSpec {
            port: 1,
            vlan: None,
            mac: [2, 0, 0, 0, 0, 0x99],
        }),
    }
}

fn tcp(src: &str, dst: &str, dport: u16) -> PacketFields {
    PacketFields::l4(ip(src), ip(dst), 6, 40000, dport)
}

fn idx(snap: &PolicySnapshot, id: &str) -> EniIdx {
    snap.eni_by_id(&id.into()).unwrap()
}

#[test]
fn l2_lookup_finds_enis_by_port_vlan_and_mac() {
    let snap = PolicySnapshot::compile(&world(), 1).unwrap();
    let web = idx(&snap, "eni-web");
    assert_eq!(snap.eni_by_l2(0, Some(10), [2, 0, 0, 0, 0, 1]), Some(web));
    assert_eq!(snap.eni_by_l2(0, None, [2, 0, 0, 0, 0, 1]), None);
    assert_eq!(snap.eni_by_l2(1, Some(10), [2, 0, 0, 0, 0, 1]), None);
    assert_eq!(snap.eni_by_l2(0, Some(11), [2, 0, 0, 0, 0, 1]), None);
    let e = snap.eni(web);
    assert!(e.owns_ip(ip("fd00:a:0:1::10")));
    assert!(!e.owns_ip(ip("10.0.1.11")));
    assert_eq!(e.timeouts, ConntrackTimeouts::default());
    let subnet = snap.subnet(e.subnet);
    assert_eq!(subnet.gateway_v4, Ipv4Addr::new(10, 0, 1, 1));
    assert_eq!(subnet.gateway_v6, Some("fd00:a:0:1::1".parse().unwrap()));
    assert_eq!(snap.generation(), 1);
}

#[test]
fn routes_within_vpc_to_peers_gateway_and_uplink() {
    let snap = PolicySnapshot::compile(&world(), 1).unwrap();
    let a = snap.vpc_by_id(&"vpc-a".into()).unwrap();
    let a1 = snap.subnet_by_id(&"subnet-a1".into()).unwrap();
    assert_eq!(
        snap.route(a, ip("10.0.2.10")),
        Route::Eni(idx(&snap, "eni-db"))
    );
    assert_eq!(snap.route(a, ip("10.0.1.1")), Route::Gateway(a1));
    assert_eq!(snap.route(a, ip("fd00:a:0:1::1")), Route::Gateway(a1));
    assert_eq!(
        snap.route(a, ip("10.0.9.9")),
        Route::Unreachable,
        "in the VPC, no owner"
    );
    assert_eq!(
        snap.route(a, ip("10.1.1.10")),
        Route::Eni(idx(&snap, "eni-peer"))
    );
    assert_eq!(
        snap.route(a, ip("10.1.1.1")),
        Route::Unreachable,
        "a peer's router is not ours"
    );
    // vpc-c's peering is inactive: its addresses are "outside", hence uplink.
    assert_eq!(snap.route(a, ip("10.2.1.10")), Route::Uplink);
    assert_eq!(snap.route(a, ip("8.8.8.8")), Route::Uplink);
    assert_eq!(
        snap.route_from_uplink(ip("10.0.1.10")),
        Route::Eni(idx(&snap, "eni-web"))
    );
    assert_eq!(snap.route_from_uplink(ip("10.0.1.1")), Route::Unreachable);

    let mut no_uplink = world();
    no_uplink.uplink = None;
    let snap = PolicySnapshot::compile(&no_uplink, 1).unwrap();
    assert_eq!(snap.route(a, ip("8.8.8.8")), Route::Unreachable);
}

#[test]
fn group_peers_match_members_in_same_or_peered_vpc_and_stale_ones_nothing() {
    let snap = PolicySnapshot::compile(&world(), 1).unwrap();
    let (web, app, db, peer) = (
        idx(&snap, "eni-web"),
        idx(&snap, "eni-app"),
        idx(&snap, "eni-db"),
        idx(&snap, "eni-peer"),
    );
    let db_set = snap.eni(db).sg_set;

    let m = snap.classify(
        db_set,
        Direction::Ingress,
        &tcp("10.0.1.10", "10.0.2.10", 5432),
        Remote::Eni(web),
    );
    assert_eq!(m.groups, 1);
    assert_eq!(snap.rule_id(m.rule.unwrap()).unwrap(), "sgr-db-from-web");
    // Same address, but not presented as the member ENI: no group match.
    let m = snap.classify(
        db_set,
        Direction::Ingress,
        &tcp("10.0.1.10", "10.0.2.10", 5432),
        Remote::External,
    );
    assert_eq!(m.groups, 0);
    // The member ENI, but sending from an address it does not own.
    let m = snap.classify(
        db_set,
        Direction::Ingress,
        &tcp("10.0.1.99", "10.0.2.10", 5432),
        Remote::Eni(web),
    );
    assert_eq!(m.groups, 0);
    // Peered VPC's group: live.
    let m = snap.classify(
        db_set,
        Direction::Ingress,
        &tcp("10.1.1.10", "10.0.2.10", 5432),
        Remote::Eni(peer),
    );
    assert_eq!(snap.rule_id(m.rule.unwrap()).unwrap(), "sgr-db-from-peer");
    // Wrong port.
    let m = snap.classify(
        db_set,
        Direction::Ingress,
        &tcp("10.0.1.11", "10.0.2.10", 5433),
        Remote::Eni(app),
    );
    assert_eq!(m.groups, 0);

    // The whole flow from eni-peer to eni-db crosses both NACLs and passes.
    let d = snap.decide(peer, &tcp("10.1.1.10", "10.0.2.10", 5432));
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(d.nacl_egress.is_some() && d.nacl_ingress.is_some());
    assert!(
        !d.untracked,
        "db's ingress rule is a group peer, not 0.0.0.0/0"
    );

    // eni-c's VPC is not actively peered: the route does not even reach db,
    // and the reference to sg-c is stale — even fed its member directly.
    let c = idx(&snap, "eni-c");
    let m = snap.classify(
        db_set,
        Direction::Ingress,
        &tcp("10.2.1.10", "10.0.2.10", 5432),
        Remote::Eni(c),
    );
    assert_eq!(m.groups, 0);
}

#[test]
fn nacls_apply_only_across_subnets_and_first_match_decides() {
    let snap = PolicySnapshot::compile(&world(), 1).unwrap();
    let (web, app, db) = (
        idx(&snap, "eni-web"),
        idx(&snap, "eni-app"),
        idx(&snap, "eni-db"),
    );
    assert_eq!(snap.nacl_path(web, Route::Eni(app)), NaclPath::default());
    let path = snap.nacl_path(web, Route::Eni(db));
    assert_eq!(path.egress, Some(snap.eni(web).subnet));
    assert_eq!(path.ingress, Some(snap.eni(db).subnet));
    // acl-a-db entry 50 denies TCP from eni-app before entry 100 allows.
    let d = snap.decide(app, &tcp("10.0.1.11", "10.0.2.10", 5432));
    assert_eq!(d.verdict, Verdict::Deny(DenyReason::NaclIngress));
    assert_eq!(
        d.nacl_ingress,
        Some(NaclDecision {
            allow: false,
            rule_number: 50
        })
    );
    let d = snap.decide(web, &tcp("10.0.1.10", "10.0.2.10", 5432));
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(
        d.nacl_ingress,
        Some(NaclDecision {
            allow: true,
            rule_number: 100
        })
    );
    // acl-a-db has no IPv6 entries: IPv6 falls to the catch-all 32768.
    let db_subnet = snap.eni(db).subnet;
    let v6 = tcp("fd00:a:0:1::10", "fd00:a:0:2::10", 1);
    assert_eq!(
        snap.nacl_decide(db_subnet, Direction::Ingress, &v6),
        NaclDecision {
            allow: false,
            rule_number: CATCH_ALL_V6
        }
    );
}

#[test]
fn untracked_needs_any_peer_and_open_reverse_direction() {
    let mut spec = world();
    let snap = PolicySnapshot::compile(&spec, 1).unwrap();
    // Ingress on web allowed by 0.0.0.0/0 :443; web's egress allows all to
    // 0.0.0.0/0 → untracked; from the uplink that is the only side.
    let inbound = tcp("8.8.8.8", "10.0.1.10", 443);
    let d = snap.decide_from_uplink(&inbound, SgDetail::Rules);
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(d.untracked);
    // ICMP is always tracked, even allowed from anywhere.
    spec.security_groups[0].ingress[1].peer = cidr4("0.0.0.0/0");
    let snap = PolicySnapshot::compile(&spec, 2).unwrap();
    let ping = PacketFields::icmp(ip("8.8.8.8"), ip("10.0.1.10"), 1, 8, 0);
    let d = snap.decide_from_uplink(&ping, SgDetail::Rules);
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(!d.untracked);
    // Narrow the egress rule: the reverse direction no longer allows all.
    spec.security_groups[0].egress[0] = rule(
        "sgr-web-out",
        Protocol::Tcp,
        tcp_ports(1024, 65535),
        cidr4("0.0.0.0/0"),
    );
    let snap = PolicySnapshot::compile(&spec, 3).unwrap();
    let d = snap.decide_from_uplink(&inbound, SgDetail::Rules);
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(!d.untracked);
}

#[test]
fn source_dest_check_and_gateway_traffic() {
    let mut spec = world();
    let snap = PolicySnapshot::compile(&spec, 1).unwrap();
    let web = idx(&snap, "eni-web");
    let spoofed = tcp("10.0.1.77", "8.8.8.8", 80);
    assert_eq!(
        snap.decide(web, &spoofed).verdict,
        Verdict::Deny(DenyReason::SourceNotOwned)
    );
    assert_eq!(
        snap.decide(web, &tcp("10.0.1.10", "10.0.1.1", 53)).verdict,
        Verdict::ToRouter
    );
    assert_eq!(
        snap.decide(web, &tcp("10.0.1.10", "10.0.7.7", 53)).verdict,
        Verdict::Deny(DenyReason::NoRoute)
    );
    spec.enis[0].source_dest_check = false;
    let snap = PolicySnapshot::compile(&spec, 2).unwrap();
    assert_eq!(snap.decide(web, &spoofed).verdict, Verdict::Allow);
}

#[test]
fn explain_names_entries_rules_and_reasons() {
    let snap = PolicySnapshot::compile(&world(), 1).unwrap();
    let (web, app) = (idx(&snap, "eni-web"), idx(&snap, "eni-app"));
    let e = snap.explain(web, &tcp("10.0.1.10", "10.0.2.10", 5432));
    assert_eq!(e.outcome, Outcome::Allowed { tracked: true });
    assert_eq!(
        e.ingress.as_ref().unwrap().rule.as_ref().unwrap().as_str(),
        "sgr-db-from-web"
    );
    assert_eq!(
        e.egress.as_ref().unwrap().allowing,
        vec![SgId::from("sg-web")]
    );
    let text = e.to_string();
    assert!(text.contains("rule sgr-db-from-web"), "{text}");
    assert!(text.contains("acl-a-db entry 100 allows"), "{text}");
    assert!(text.contains("ALLOW (tracked)"), "{text}");

    let e = snap.explain(app, &tcp("10.0.1.11", "10.0.2.10", 5432));
    assert_eq!(e.outcome, Outcome::Denied(DenyReason::NaclIngress));
    assert!(e.to_string().contains("acl-a-db entry 50 denies"), "{e}");

    let e = snap.explain(web, &tcp("10.0.1.10", "10.0.1.11", 22));
    assert_eq!(e.outcome, Outcome::Denied(DenyReason::SecurityGroupIngress));
    let text = e.to_string();
    assert!(
        text.contains("no ingress rule of groups [sg-web] allows"),
        "{text}"
    );
    assert!(!text.contains("entry"), "same subnet: no NACL: {text}");
}

#[test]
fn compile_rejects_inconsistent_specs() {
    let err = |f: &dyn Fn(&mut PolicySpec)| {
        let mut spec = world();
        f(&mut spec);
        PolicySnapshot::compile(&spec, 1).unwrap_err()
    };
    assert!(matches!(
        err(&|s| s.enis[1].mac = s.enis[0].mac),
        CompileError::DuplicateL2 { .. }
    ));
    assert!(matches!(
        err(&|s| s.uplink = Some(UplinkSpec {
            port: 0,
            vlan: Some(10),
            mac: s.enis[2].mac
        })),
        CompileError::DuplicateL2 { .. }
    ));
    assert!(matches!(
        err(&|s| s.enis[0].private_ips.push(ip("10.0.2.50"))),
        CompileError::InvalidEniAddress { .. }
    ));
    assert!(matches!(
        err(&|s| s.enis[0].private_ips.push(ip("10.0.1.1"))),
        CompileError::InvalidEniAddress { .. }
    ));
    assert!(matches!(
        err(&|s| s.enis[1].private_ips.push(ip("10.0.1.10"))),
        CompileError::DuplicateAddress { .. }
    ));
    assert!(matches!(
        err(&|s| s.enis[0].groups.push("sg-nope".into())),
        CompileError::UnknownReference { .. }
    ));
    assert!(matches!(
        err(&|s| s.enis[0].groups.push("sg-peer".into())),
        CompileError::WrongVpc { .. }
    ));
    assert!(matches!(
        err(&|s| s.enis[0].groups.push("sg-web".into())),
        CompileError::InvalidGroups { .. }
    ));
    assert!(matches!(
        err(&|s| s.enis[0].subnet = "subnet-x".into()),
        CompileError::UnknownReference { .. }
    ));
    assert!(matches!(
        err(&|s| s.enis[0].timeouts.udp = 5),
        CompileError::InvalidTimeouts(_)
    ));
    assert!(matches!(
        err(&|s| s.enis[0].vlan = Some(4096)),
        CompileError::InvalidVlan { .. }
    ));
    assert!(matches!(
        err(&|s| s.subnets[1].nacl = "acl-b".into()),
        CompileError::WrongVpc { .. }
    ));
    assert!(matches!(
        err(&|s| s.subnets[1].ipv4_cidr = "10.0.1.128/25".parse().unwrap()),
        CompileError::OverlappingSubnets { .. }
    ));
    assert!(matches!(
        err(&|s| s.subnets[1].ipv4_cidr = "10.9.0.0/24".parse().unwrap()),
        CompileError::InvalidSubnet { .. }
    ));
    assert!(matches!(
        err(&|s| s.security_groups[0].ingress[0].ports = PortSpec::Any),
        CompileError::InvalidRule { .. }
    ));
    assert!(matches!(
        err(&|s| s.security_groups[0].ingress[0].peer = Peer::PrefixList("pl-x".into())),
        CompileError::UnknownReference { .. }
    ));
    assert!(matches!(
        err(&|s| s.security_groups[1].id = "sg-web".into()),
        CompileError::DuplicateId { .. }
    ));
    assert!(matches!(
        err(&|s| s.peerings[0].vpc_b = "vpc-a".into()),
        CompileError::SelfPeering(_)
    ));
    assert!(matches!(
        err(&|s| s.nacls[0].entries[0].rule_number = 0),
        CompileError::Nacl(_)
    ));
}

#[test]
fn spec_round_trips_through_serde_shaped_text() {
    // The CIDR types serialise as text; check the textual form parses back.
    let spec = world();
    for v in &spec.vpcs {
        assert_eq!(
            v.ipv4_cidr.to_string().parse::<Ipv4Cidr>().unwrap(),
            v.ipv4_cidr
        );
    }
}

// ---------------------------------------------------------------------------
// Random worlds.

/// splitmix64: a tiny deterministic generator, so one proptest `u64` seed
/// reproduces a whole world.
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
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const PORTS: [u16; 9] = [0, 22, 53, 80, 443, 1024, 3000, 5432, 65535];
const ICMP_TYPES: [u8; 5] = [0, 3, 8, 11, 128];
const ICMP_CODES: [u8; 3] = [0, 1, 4];

fn v4_of(vpc: usize, subnet: usize, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, vpc as u8, subnet as u8, host)
}

fn v6_of(vpc: usize, subnet: usize, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0, vpc as u16, subnet as u16, 0, 0, 0, host)
}

/// Addresses that matter: every ENI address, gateways, VPC space nobody
/// owns, outside space.
fn address_pool(spec: &PolicySpec) -> Vec<IpAddr> {
    let mut pool: Vec<IpAddr> = spec
        .enis
        .iter()
        .flat_map(|e| e.private_ips.iter().copied())
        .collect();
    for s in &spec.subnets {
        pool.push(IpAddr::V4(Ipv4Addr::from(
            u32::from(s.ipv4_cidr.network()) + 1,
        )));
        pool.push(IpAddr::V4(Ipv4Addr::from(
            u32::from(s.ipv4_cidr.network()) + 200,
        )));
        if let Some(c) = s.ipv6_cidr {
            pool.push(IpAddr::V6(Ipv6Addr::from(u128::from(c.network()) + 1)));
            pool.push(IpAddr::V6(Ipv6Addr::from(u128::from(c.network()) + 200)));
        }
    }
    pool.extend([
        ip("8.8.8.8"),
        ip("192.0.2.1"),
        ip("10.9.0.1"),
        ip("2001:db8::1"),
        ip("fd00:0:9::1"),
    ]);
    pool
}

fn random_ports(rng: &mut Rng, protocol: Protocol) -> PortSpec {
    match protocol.port_kind() {
        PortKind::Ports => {
            if rng.chance(15) {
                PortSpec::Range { from: 0, to: 65535 }
            } else {
                let a = *rng.pick(&PORTS);
                let b = *rng.pick(&PORTS);
                PortSpec::Range {
                    from: a.min(b),
                    to: a.max(b),
                }
            }
        }
        PortKind::IcmpTypeCode => {
            if rng.chance(20) {
                PortSpec::Any
            } else if rng.chance(25) {
                PortSpec::Icmp {
                    icmp_type: None,
                    code: None,
                }
            } else {
                PortSpec::Icmp {
                    icmp_type: Some(*rng.pick(&ICMP_TYPES)),
                    code: if rng.chance(50) {
                        None
                    } else {
                        Some(*rng.pick(&ICMP_CODES))
                    },
                }
            }
        }
        // Whatever is given is ignored: give anything, even nonsense.
        PortKind::Ignored => match rng.below(3) {
            0 => PortSpec::Any,
            1 => PortSpec::Range { from: 9, to: 3 },
            _ => PortSpec::Icmp {
                icmp_type: None,
                code: Some(1),
            },
        },
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
        Protocol::Number(6),
        Protocol::Number(17),
        Protocol::Number(1),
        Protocol::Number(47),
        Protocol::Number(58),
    ])
}

fn random_cidr(rng: &mut Rng, pool: &[IpAddr], v4: bool) -> IpCidr {
    let candidates: Vec<IpAddr> = pool.iter().copied().filter(|a| a.is_ipv4() == v4).collect();
    let addr = *rng.pick(&candidates);
    match addr {
        IpAddr::V4(a) => {
            let len = if rng.chance(15) {
                0
            } else {
                rng.below(33) as u8
            };
            IpCidr::V4(Ipv4Cidr::truncating(a, len))
        }
        IpAddr::V6(a) => {
            let len = if rng.chance(15) {
                0
            } else {
                rng.below(129) as u8
            };
            IpCidr::V6(Ipv6Cidr::truncating(a, len))
        }
    }
}

fn random_rule(
    rng: &mut Rng,
    id: &str,
    pool: &[IpAddr],
    group_ids: &[SgId],
    lists: usize,
) -> SgRule {
    if rng.chance(15) {
        // Wide open rules, so that the untracked case comes up often.
        let protocol = *rng.pick(&[Protocol::All, Protocol::Tcp, Protocol::Udp]);
        return SgRule {
            id: id.into(),
            protocol,
            ports: PortSpec::Range { from: 0, to: 65535 },
            peer: if rng.chance(60) {
                Peer::Cidr4(Ipv4Cidr::ANY)
            } else {
                Peer::Cidr6(Ipv6Cidr::ANY)
            },
            description: String::new(),
        };
    }
    let protocol = random_protocol(rng);
    let ports = random_ports(rng, protocol);
    let peer = match rng.below(10) {
        0..=3 => match random_cidr(rng, pool, true) {
            IpCidr::V4(c) => Peer::Cidr4(c),
            IpCidr::V6(c) => Peer::Cidr6(c),
        },
        4 | 5 => match random_cidr(rng, pool, false) {
            IpCidr::V4(c) => Peer::Cidr4(c),
            IpCidr::V6(c) => Peer::Cidr6(c),
        },
        6 if lists > 0 => Peer::PrefixList(format!("pl-{}", rng.below(lists)).as_str().into()),
        _ => Peer::Group(rng.pick(group_ids).clone()),
    };
    SgRule {
        id: id.into(),
        protocol,
        ports,
        peer,
        description: String::new(),
    }
}

fn random_rules(
    rng: &mut Rng,
    prefix: &str,
    pool: &[IpAddr],
    group_ids: &[SgId],
    lists: usize,
) -> Vec<SgRule> {
    let n = rng.below(6);
    (0..n)
        .map(|i| {
            let id = format!("sgr-{prefix}-{i}-{:x}", rng.next() % 4096);
            random_rule(rng, &id, pool, group_ids, lists)
        })
        .collect()
}

fn random_nacl_entries(rng: &mut Rng, pool: &[IpAddr]) -> Vec<NaclEntry> {
    let mut entries = Vec::new();
    for egress in [false, true] {
        let mut numbers: Vec<u16> = (0..rng.below(6))
            .map(|_| *rng.pick(&[1, 5, 10, 50, 100, 101, 200, 32766]))
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        for rule_number in numbers {
            let protocol = random_protocol(rng);
            let v4 = rng.chance(70);
            entries.push(NaclEntry {
                rule_number,
                egress,
                protocol,
                cidr: random_cidr(rng, pool, v4),
                ports: random_ports(rng, protocol),
                action: if rng.chance(60) {
                    NaclAction::Allow
                } else {
                    NaclAction::Deny
                },
            });
        }
        if rng.chance(70) {
            for (rule_number, cidr) in [(32000, "0.0.0.0/0"), (32001, "::/0")] {
                entries.push(NaclEntry {
                    rule_number,
                    egress,
                    protocol: Protocol::All,
                    cidr: cidr.parse().unwrap(),
                    ports: PortSpec::Any,
                    action: NaclAction::Allow,
                });
            }
        }
    }
    entries
}

/// A random but valid world: 2–3 VPCs (some with IPv6), random peerings
/// (active or not), two subnets each, NACLs, prefix lists, six groups whose
/// rules reference groups of any VPC (live or stale), 4–9 ENIs.
fn random_world(seed: u64) -> PolicySpec {
    let mut rng = Rng(seed);
    let vpc_count = 2 + rng.below(2);
    let mut spec = PolicySpec {
        router_mac: [2, 0, 0, 0, 0, 0xfe],
        uplink: rng.chance(70).then_some(UplinkSpec {
            port: 9,
            vlan: None,
            mac: [2, 0, 0, 0, 0, 0x99],
        }),
        ..PolicySpec::default()
    };
    for v in 0..vpc_count {
        spec.vpcs.push(VpcSpec {
            id: format!("vpc-{v}").as_str().into(),
            ipv4_cidr: Ipv4Cidr::new(v4_of(v, 0, 0), 16).unwrap(),
            ipv6_cidr: rng
                .chance(60)
                .then(|| Ipv6Cidr::new(v6_of(v, 0, 0), 48).unwrap()),
        });
    }
    for a in 0..vpc_count {
        for b in a + 1..vpc_count {
            if rng.chance(60) {
                spec.peerings.push(PeeringSpec {
                    id: format!("pcx-{a}{b}").as_str().into(),
                    vpc_a: spec.vpcs[a].id.clone(),
                    vpc_b: spec.vpcs[b].id.clone(),
                    active: rng.chance(60),
                });
            }
        }
    }
    for v in 0..vpc_count {
        for s in 1..=2 {
            spec.subnets.push(SubnetSpec {
                id: format!("subnet-{v}{s}").as_str().into(),
                vpc: spec.vpcs[v].id.clone(),
                ipv4_cidr: Ipv4Cidr::new(v4_of(v, s, 0), 24).unwrap(),
                ipv6_cidr: (spec.vpcs[v].ipv6_cidr.is_some() && rng.chance(80))
                    .then(|| Ipv6Cidr::new(v6_of(v, s, 0), 64).unwrap()),
                nacl: format!("acl-{v}{}", rng.below(2)).as_str().into(),
            });
        }
    }
    let group_ids: Vec<SgId> = (0..6).map(|g| format!("sg-{g}").as_str().into()).collect();
    let group_vpcs: Vec<usize> = (0..6).map(|_| rng.below(vpc_count)).collect();
    for i in 0..4 + rng.below(6) {
        let subnet = rng.below(spec.subnets.len());
        let (v, s) = (subnet / 2, subnet % 2 + 1);
        let mut ips = vec![IpAddr::V4(v4_of(v, s, 10 + i as u8))];
        if spec.subnets[subnet].ipv6_cidr.is_some() && rng.chance(70) {
            ips.push(IpAddr::V6(v6_of(v, s, 10 + i as u16)));
        }
        let mine: Vec<&SgId> = group_ids
            .iter()
            .zip(&group_vpcs)
            .filter(|(_, gv)| **gv == v)
            .map(|(g, _)| g)
            .collect();
        let mut groups = Vec::new();
        for g in mine {
            if rng.chance(50) {
                groups.push(g.clone());
            }
        }
        spec.enis.push(EniSpec {
            id: format!("eni-{i}").as_str().into(),
            subnet: spec.subnets[subnet].id.clone(),
            port: rng.below(2) as u16,
            vlan: rng.chance(50).then_some(rng.below(3) as u16),
            mac: [2, 0, 0, 0, 1, i as u8],
            private_ips: ips,
            groups,
            source_dest_check: rng.chance(80),
            timeouts: ConntrackTimeouts::default(),
        });
    }
    let pool = address_pool(&spec);
    for l in 0..2 {
        let cidrs = (0..=rng.below(3)).map(|_| {
            let v4 = rng.chance(60);
            random_cidr(&mut rng, &pool, v4)
        });
        spec.prefix_lists.push(PrefixListSpec {
            id: format!("pl-{l}").as_str().into(),
            cidrs: cidrs.collect(),
        });
    }
    for (g, id) in group_ids.iter().enumerate() {
        spec.security_groups.push(SecurityGroupSpec {
            id: id.clone(),
            vpc: spec.vpcs[group_vpcs[g]].id.clone(),
            ingress: random_rules(&mut rng, &format!("{g}i"), &pool, &group_ids, 2),
            egress: random_rules(&mut rng, &format!("{g}e"), &pool, &group_ids, 2),
        });
    }
    for v in 0..vpc_count {
        for n in 0..2 {
            spec.nacls.push(NaclSpec {
                id: format!("acl-{v}{n}").as_str().into(),
                vpc: spec.vpcs[v].id.clone(),
                entries: random_nacl_entries(&mut rng, &pool),
            });
        }
    }
    spec
}

fn random_packets(rng: &mut Rng, spec: &PolicySpec, count: usize) -> Vec<(EniId, PacketFields)> {
    let pool = address_pool(spec);
    (0..count)
        .map(|_| {
            let e = rng.pick(&spec.enis);
            let has_v6 = e.private_ips.iter().any(IpAddr::is_ipv6);
            let v4 = rng.chance(if has_v6 { 60 } else { 90 });
            let of_family: Vec<IpAddr> =
                pool.iter().copied().filter(|a| a.is_ipv4() == v4).collect();
            let own: Vec<IpAddr> = e
                .private_ips
                .iter()
                .copied()
                .filter(|a| a.is_ipv4() == v4)
                .collect();
            let src = if !own.is_empty() && rng.chance(85) {
                *rng.pick(&own)
            } else {
                *rng.pick(&of_family)
            };
            let dst = *rng.pick(&of_family);
            let protocol = *rng.pick(&[6, 6, 17, 1, 58, 47, 0]);
            let mut pkt =
                PacketFields::l4(src, dst, protocol, *rng.pick(&PORTS), *rng.pick(&PORTS));
            if rng.chance(20) {
                pkt.dst_port = rng.next() as u16;
            }
            if protocol == 1 || protocol == 58 {
                pkt = PacketFields::icmp(
                    src,
                    dst,
                    protocol,
                    *rng.pick(&ICMP_TYPES),
                    *rng.pick(&ICMP_CODES),
                );
            }
            (e.id.clone(), pkt)
        })
        .collect()
}

fn to_ref_match(snap: &PolicySnapshot, m: SgMatch) -> RefSgMatch {
    RefSgMatch {
        groups: m.groups,
        rule: m.rule.and_then(|r| snap.rule_id(r)).map(SgRuleId::from),
        untracked: m.untracked,
    }
}

fn to_ref_route(snap: &PolicySnapshot, r: Route) -> RefRoute {
    match r {
        Route::Eni(e) => RefRoute::Eni(snap.eni(e).id.clone()),
        Route::Gateway(s) => RefRoute::Gateway(snap.subnet(s).id.clone()),
        Route::Uplink => RefRoute::Uplink,
        Route::Unreachable => RefRoute::Unreachable,
    }
}

/// Every question the snapshot answers, asked of both the snapshot and the
/// reference evaluator.
fn agree_with_reference(
    spec: &PolicySpec,
    snap: &PolicySnapshot,
    packets: &[(EniId, PacketFields)],
) -> Result<(), TestCaseError> {
    for (src, pkt) in packets {
        let s = snap.eni_by_id(src).unwrap();
        // Routes from every VPC.
        for v in &spec.vpcs {
            let vi = snap.vpc_by_id(&v.id).unwrap();
            prop_assert_eq!(
                to_ref_route(snap, snap.route(vi, pkt.dst)),
                reference::route(spec, &v.id, pkt.dst),
                "route from {} to {}",
                v.id,
                pkt.dst
            );
        }
        prop_assert_eq!(
            to_ref_route(snap, snap.route_from_uplink(pkt.dst)),
            reference::route_from_uplink(spec, pkt.dst)
        );
        // Every subnet's NACL, both directions.
        for sub in &spec.subnets {
            let si = snap.subnet_by_id(&sub.id).unwrap();
            for dir in Direction::BOTH {
                prop_assert_eq!(
                    snap.nacl_decide(si, dir, pkt),
                    reference::nacl_decide(spec, &sub.id, dir, pkt),
                    "nacl {} {}",
                    sub.id,
                    dir
                );
            }
        }
        // Every ENI's groups, both directions, against every possible remote.
        for e in &spec.enis {
            let ei = snap.eni_by_id(&e.id).unwrap();
            let set = snap.eni(ei).sg_set;
            for dir in Direction::BOTH {
                let got = snap.classify(set, dir, pkt, Remote::External);
                prop_assert_eq!(
                    to_ref_match(snap, got),
                    reference::sg_match(spec, &e.id, dir, pkt, None),
                    "{} {} external {:?}",
                    e.id,
                    dir,
                    pkt
                );
                for r in &spec.enis {
                    let ri = snap.eni_by_id(&r.id).unwrap();
                    let got = snap.classify(set, dir, pkt, Remote::Eni(ri));
                    let want = reference::sg_match(spec, &e.id, dir, pkt, Some(&r.id));
                    prop_assert_eq!(
                        to_ref_match(snap, got),
                        want,
                        "{} {} remote {} {:?}",
                        e.id,
                        dir,
                        r.id,
                        pkt
                    );
                }
            }
        }
        // The whole new-flow decision, and the same given the route.
        let want = reference::decide(spec, src, pkt);
        let route = snap.route(snap.eni(s).vpc, pkt.dst);
        let routed = snap.decide_routed(s, route, pkt, SgDetail::Rules);
        // Without rules: the same decision, bar each side's rule.
        let groups_only = snap.decide_routed(s, route, pkt, SgDetail::Groups);
        let unnamed = |m: Option<SgMatch>| m.map(|m| SgMatch { rule: None, ..m });
        prop_assert_eq!(
            groups_only,
            FlowDecision {
                egress: unnamed(routed.egress),
                ingress: unnamed(routed.ingress),
                ..routed
            }
        );
        for d in [snap.decide(s, pkt), routed] {
            prop_assert_eq!(to_ref_route(snap, d.route), want.route.clone());
            prop_assert_eq!(d.nacl_egress, want.nacl_egress);
            prop_assert_eq!(d.nacl_ingress, want.nacl_ingress);
            prop_assert_eq!(d.egress.map(|m| to_ref_match(snap, m)), want.egress.clone());
            prop_assert_eq!(
                d.ingress.map(|m| to_ref_match(snap, m)),
                want.ingress.clone()
            );
            prop_assert_eq!(
                d.verdict == Verdict::Allow,
                want.denied.is_none() && !want.to_router,
                "{:?} vs {:?}",
                d,
                want
            );
            prop_assert_eq!(
                d.verdict == Verdict::ToRouter,
                want.to_router && want.denied.is_none()
            );
            prop_assert_eq!(d.untracked, want.untracked);
        }
    }
    Ok(())
}

/// Same answers from two snapshots (full vs incremental compile).
fn agree_with_each_other(
    spec: &PolicySpec,
    a: &PolicySnapshot,
    b: &PolicySnapshot,
    packets: &[(EniId, PacketFields)],
) -> Result<(), TestCaseError> {
    for (src, pkt) in packets {
        let s = a.eni_by_id(src).unwrap();
        prop_assert_eq!(a.decide(s, pkt), b.decide(s, pkt));
        for sub in &spec.subnets {
            let si = a.subnet_by_id(&sub.id).unwrap();
            for dir in Direction::BOTH {
                prop_assert_eq!(a.nacl_decide(si, dir, pkt), b.nacl_decide(si, dir, pkt));
            }
        }
        for (i, e) in a.enis().iter().enumerate() {
            for dir in Direction::BOTH {
                for remote in [Remote::External, Remote::Eni(s)] {
                    prop_assert_eq!(
                        a.classify(e.sg_set, dir, pkt, remote),
                        b.classify(b.enis()[i].sg_set, dir, pkt, remote)
                    );
                }
            }
        }
    }
    Ok(())
}

/// One random change and the hint that describes it.
fn random_change(rng: &mut Rng, spec: &mut PolicySpec) -> ChangeHint {
    let pool = address_pool(spec);
    let group_ids: Vec<SgId> = spec.security_groups.iter().map(|g| g.id.clone()).collect();
    match rng.below(10) {
        0..=4 => {
            let g = rng.below(spec.security_groups.len());
            let id = spec.security_groups[g].id.clone();
            let rule_id = format!("sgr-new-{:x}", rng.next() % 65536);
            let new_rule = random_rule(rng, &rule_id, &pool, &group_ids, spec.prefix_lists.len());
            let group = &mut spec.security_groups[g];
            let rules = if rng.chance(50) {
                &mut group.ingress
            } else {
                &mut group.egress
            };
            if !rules.is_empty() && rng.chance(40) {
                rules.remove(rng.below(rules.len()));
            } else if !rules.is_empty() && rng.chance(50) {
                let i = rng.below(rules.len());
                rules[i] = new_rule;
            } else {
                rules.push(new_rule);
            }
            ChangeHint::groups([&id])
        }
        5 | 6 => {
            let n = rng.below(spec.nacls.len());
            spec.nacls[n].entries = random_nacl_entries(rng, &pool);
            ChangeHint {
                nacls: vec![spec.nacls[n].id.clone()],
                ..ChangeHint::default()
            }
        }
        7 => {
            let l = rng.below(spec.prefix_lists.len());
            let v4 = rng.chance(50);
            let cidr = random_cidr(rng, &pool, v4);
            spec.prefix_lists[l].cidrs = vec![cidr];
            ChangeHint {
                prefix_lists: vec![spec.prefix_lists[l].id.clone()],
                ..ChangeHint::default()
            }
        }
        _ => {
            // A topology change: detach or attach a group on an ENI.
            let e = rng.below(spec.enis.len());
            let eni = &mut spec.enis[e];
            if eni.groups.pop().is_none() {
                let vpc = &spec
                    .subnets
                    .iter()
                    .find(|s| s.id == eni.subnet)
                    .unwrap()
                    .vpc;
                if let Some(g) = spec.security_groups.iter().find(|g| &g.vpc == vpc) {
                    eni.groups.push(g.id.clone());
                }
            }
            ChangeHint::everything()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn compiled_snapshot_agrees_with_reference(seed: u64) {
        let spec = random_world(seed);
        let snap = PolicySnapshot::compile(&spec, 1).unwrap();
        let mut rng = Rng(seed ^ 0xabcdef);
        let packets = random_packets(&mut rng, &spec, 40);
        agree_with_reference(&spec, &snap, &packets)?;
    }

    /// The packed packet-path record says what the full ENI says: VPC,
    /// port, VLAN, MAC, timeouts, and the source check for its own
    /// addresses, the other ENIs' and a few random ones.
    #[test]
    fn eni_paths_agree_with_their_enis(seed: u64) {
        let mut spec = random_world(seed);
        // Some ENIs with a second IPv4 address, some with IPv6 listed
        // first, some with IPv6 alone.
        for (i, eni) in spec.enis.iter_mut().enumerate() {
            if i % 2 == 1 {
                if let Some(IpAddr::V4(a)) = eni.private_ips.first().copied() {
                    let [w, x, y, z] = a.octets();
                    eni.private_ips.push(IpAddr::V4(Ipv4Addr::new(w, x, y, z + 100)));
                }
            }
            if i % 3 == 0 {
                eni.private_ips.rotate_left(1);
            }
            if i % 5 == 4 && eni.private_ips.iter().any(IpAddr::is_ipv6) {
                // IPv6 only.
                eni.private_ips.retain(IpAddr::is_ipv6);
            }
        }
        let snap = PolicySnapshot::compile(&spec, 1).unwrap();
        let mut rng = Rng(seed ^ 0x5eed);
        let mut candidates: Vec<Ipv4Addr> = spec
            .enis
            .iter()
            .flat_map(|e| e.private_ips.iter())
            .filter_map(|ip| match ip {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect();
        candidates.extend((0..8).map(|_| Ipv4Addr::from(rng.next() as u32)));
        candidates.push(Ipv4Addr::UNSPECIFIED);
        for spec_eni in &spec.enis {
            let e = snap.eni_by_id(&spec_eni.id).unwrap();
            let eni = snap.eni(e);
            let path = *snap.eni_path(e).unwrap();
            prop_assert_eq!(&eni.id, &spec_eni.id);
            prop_assert_eq!(path.vpc, eni.vpc);
            prop_assert_eq!(path.port, eni.port);
            prop_assert_eq!(path.vlan(), eni.vlan);
            prop_assert_eq!(path.mac, eni.mac);
            prop_assert_eq!(path.timeouts, eni.timeouts);
            for &a in &candidates {
                let expected = !eni.source_dest_check || eni.owns_ip(IpAddr::V4(a));
                prop_assert_eq!(
                    path.may_send_from_v4(u32::from(a), || Some(eni)),
                    expected,
                    "{} sending from {}", eni.id, a
                );
            }
        }
    }

    #[test]
    fn incremental_apply_agrees_with_full_compile(seed: u64) {
        let mut spec = random_world(seed);
        let mut snap = PolicySnapshot::compile(&spec, 1).unwrap();
        let mut rng = Rng(seed ^ 0x1234);
        for generation in 2..8 {
            let hint = random_change(&mut rng, &mut spec);
            let next = snap.apply(&spec, &hint, generation).unwrap();
            let full = PolicySnapshot::compile(&spec, generation).unwrap();
            prop_assert_eq!(next.generation(), generation);
            let packets = random_packets(&mut rng, &spec, 15);
            agree_with_each_other(&spec, &next, &full, &packets)?;
            agree_with_reference(&spec, &next, &packets)?;
            snap = next;
        }
    }
}

#[test]
fn apply_shares_what_a_rule_change_does_not_touch() {
    let mut spec = world();
    let before = PolicySnapshot::compile(&spec, 1).unwrap();
    spec.security_groups[1].ingress.pop();
    let after = before
        .apply(&spec, &ChangeHint::groups([&spec.security_groups[1].id]), 2)
        .unwrap();
    let web_set = before.eni(idx(&before, "eni-web")).sg_set;
    let db_set = before.eni(idx(&before, "eni-db")).sg_set;
    assert!(
        after.shares_classifiers_with(&before, web_set),
        "sg-web's set is untouched"
    );
    assert!(
        !after.shares_classifiers_with(&before, db_set),
        "sg-db's set is rebuilt"
    );
    assert!(after.shares_topology_with(&before));
    // A hint that does not fit (a group added) falls back to a full compile.
    let mut grown = spec.clone();
    grown.security_groups.push(SecurityGroupSpec {
        id: "sg-new".into(),
        vpc: "vpc-a".into(),
        ingress: vec![],
        egress: vec![],
    });
    let full = after.apply(&grown, &ChangeHint::default(), 3).unwrap();
    assert!(!full.shares_topology_with(&after));
    assert!(full.group_by_id(&"sg-new".into()).is_some());
}

#[test]
fn apply_rebuilds_only_the_direction_whose_rules_changed() {
    let spec = world();
    let before = PolicySnapshot::compile(&spec, 1).unwrap();
    let web = idx(&before, "eni-web");
    let web_set = before.eni(web).sg_set;
    let inbound = tcp("8.8.8.8", "10.0.1.10", 443);
    let apply = |snap: &PolicySnapshot, spec: &PolicySpec, generation| {
        let next = snap
            .apply(
                spec,
                &ChangeHint::groups([&spec.security_groups[0].id]),
                generation,
            )
            .unwrap();
        let full = PolicySnapshot::compile(spec, generation).unwrap();
        for dir in Direction::BOTH {
            for pkt in [inbound, tcp("10.0.1.10", "8.8.8.8", 443)] {
                assert_eq!(
                    next.classify(web_set, dir, &pkt, Remote::External),
                    full.classify(web_set, dir, &pkt, Remote::External),
                );
            }
        }
        next
    };

    // An ingress rule of sg-web changes: egress keeps its classifier.
    let mut narrowed = spec.clone();
    narrowed.security_groups[0].ingress[1].peer = cidr4("10.0.0.0/16");
    let after = apply(&before, &narrowed, 2);
    assert!(after.shares_classifier_with(&before, web_set, Direction::Egress));
    assert!(!after.shares_classifier_with(&before, web_set, Direction::Ingress));

    // Its egress rule narrows: egress is rebuilt, and so is ingress (its
    // tables stay, but inbound :443 is no longer untracked).
    let mut closed = spec.clone();
    closed.security_groups[0].egress[0] = rule(
        "sgr-web-out",
        Protocol::Tcp,
        tcp_ports(1024, 65535),
        cidr4("0.0.0.0/0"),
    );
    let after = apply(&before, &closed, 3);
    assert!(!after.shares_classifier_with(&before, web_set, Direction::Egress));
    assert!(!after.shares_classifier_with(&before, web_set, Direction::Ingress));
    assert!(
        before
            .decide_from_uplink(&inbound, SgDetail::Rules)
            .untracked
    );
    assert!(
        !after
            .decide_from_uplink(&inbound, SgDetail::Rules)
            .untracked
    );

    // A hinted group whose rules did not change keeps both.
    let same = apply(&before, &spec, 4);
    assert!(same.shares_classifiers_with(&before, web_set));
}

/// Guards the generator: if random worlds stopped reaching these outcomes,
/// the property tests above would silently test less.
#[test]
fn random_worlds_reach_every_outcome() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..150u64 {
        let spec = random_world(seed);
        let snap = PolicySnapshot::compile(&spec, 1).unwrap();
        let mut rng = Rng(seed ^ 0xabcdef);
        for (src, pkt) in random_packets(&mut rng, &spec, 40) {
            let d = snap.decide(snap.eni_by_id(&src).unwrap(), &pkt);
            seen.insert(format!("{:?}", d.verdict));
            seen.insert(
                format!("{:?}", d.route)
                    .split('(')
                    .next()
                    .unwrap()
                    .to_owned(),
            );
            if d.untracked {
                seen.insert("untracked".to_owned());
            }
            if d.egress.is_some_and(|m| m.groups.count_ones() > 1) {
                seen.insert("several groups allow".to_owned());
            }
            if let Some(r) = d.ingress.and_then(|m| m.rule) {
                if matches!(
                    spec.security_groups[r.group.index()].ingress[r.index as usize].peer,
                    Peer::Group(_)
                ) {
                    seen.insert("group peer allows".to_owned());
                }
            }
        }
    }
    for outcome in [
        "Allow",
        "ToRouter",
        "Deny(SourceNotOwned)",
        "Deny(NoRoute)",
        "Deny(NaclEgress)",
        "Deny(SecurityGroupEgress)",
        "Deny(NaclIngress)",
        "Deny(SecurityGroupIngress)",
        "Eni",
        "Gateway",
        "Uplink",
        "Unreachable",
        "untracked",
        "several groups allow",
        "group peer allows",
    ] {
        assert!(
            seen.contains(outcome),
            "random worlds never reach {outcome}: {seen:?}"
        );
    }
}

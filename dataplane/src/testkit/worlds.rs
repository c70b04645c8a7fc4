//! Random VPC worlds for differential tests: two VPCs, maybe peered;
//! subnets with default or random ACLs; groups with random rules of every
//! kind (all protocols, port ranges, ICMP type/code, IPv4/IPv6 CIDRs, prefix
//! lists, group peers in the same or the other VPC); ENIs with VLANs,
//! several groups, source/dest check on or off; maybe an uplink. Shared by
//! the tests that hold the data plane against the reference (`process()`,
//! `explain`), so they judge the same worlds. Deterministic: a world is its
//! seed.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::policy::{
    ConntrackTimeouts, EniSpec, IpCidr, NaclAction, NaclEntry, NaclSpec, Peer, PeeringSpec,
    PolicySpec, PortSpec, PrefixListSpec, Protocol, SecurityGroupSpec, SgRule, SubnetSpec,
    UplinkSpec, VpcSpec,
};

use super::ROUTER_MAC;

/// A tiny deterministic generator for the world (splitmix64).
#[derive(Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub const VPCS: u8 = 2;
pub const SUBNETS_PER_VPC: u8 = 2;
pub const UPLINK_MAC: [u8; 6] = [0x02, 0xee, 0, 0, 0, 1];
pub const EXTERNAL_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

pub fn v4(vpc: u8, subnet: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, vpc, subnet, host)
}

pub fn v6(vpc: u8, subnet: u8, host: u8) -> Ipv6Addr {
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

pub fn mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, i as u8]
}

pub fn random_ports(rng: &mut Rng, protocol: Protocol) -> PortSpec {
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

pub fn random_protocol(rng: &mut Rng) -> Protocol {
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

pub fn random_peer(rng: &mut Rng, groups: &[(String, u8)]) -> Peer {
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

pub fn random_rule(rng: &mut Rng, id: &str, groups: &[(String, u8)]) -> SgRule {
    let protocol = random_protocol(rng);
    SgRule {
        id: id.into(),
        protocol,
        ports: random_ports(rng, protocol),
        peer: random_peer(rng, groups),
        description: String::new(),
    }
}

pub fn random_nacl_entries(rng: &mut Rng) -> Vec<NaclEntry> {
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

pub fn allow_all_nacl(id: &str, vpc: &str) -> NaclSpec {
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
pub fn world(seed: u64) -> PolicySpec {
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

//! The reference evaluator: SEMANTICS.md as plain loops over the spec.
//!
//! Nothing here is compiled, indexed or fast. Each function reads the
//! [`PolicySpec`] directly and answers one question the way a reader of
//! SEMANTICS.md would by hand. The compiled snapshot is tested against it
//! (property tests in this crate), and the data plane's tests can use it as
//! their oracle too. Answers are by id, not by index.
//!
//! Panics on ids that are not in the spec: callers pass ids they took from it.

use core::net::IpAddr;

use crate::nacl::{CATCH_ALL_V4, CATCH_ALL_V6, NaclDecision};
use crate::packet::{Direction, PacketFields};
use crate::spec::{
    EniId, EniSpec, NaclAction, Peer, PolicySpec, PortSpec, Protocol, SecurityGroupSpec, SgRule,
    SgRuleId, SubnetId, SubnetSpec, VpcId,
};

/// Where an address goes, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefRoute {
    /// To this ENI.
    Eni(EniId),
    /// To the router's address of this subnet.
    Gateway(SubnetId),
    /// Out of the uplink.
    Uplink,
    /// Nowhere.
    Unreachable,
}

/// A security-group answer, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSgMatch {
    /// Bit *i*: the *i*-th attached group (in spec order) allows.
    pub groups: u32,
    /// The first matching rule of the first allowing group.
    pub rule: Option<SgRuleId>,
    /// The side is untracked.
    pub untracked: bool,
}

fn vpc_contains(spec: &PolicySpec, vpc: &VpcId, addr: IpAddr) -> bool {
    let v = spec
        .vpcs
        .iter()
        .find(|v| &v.id == vpc)
        .expect("vpc in spec");
    match addr {
        IpAddr::V4(a) => v.ipv4_cidr.contains(a),
        IpAddr::V6(a) => v.ipv6_cidr.is_some_and(|c| c.contains(a)),
    }
}

fn subnet<'a>(spec: &'a PolicySpec, id: &SubnetId) -> &'a SubnetSpec {
    spec.subnets
        .iter()
        .find(|s| &s.id == id)
        .expect("subnet in spec")
}

fn eni<'a>(spec: &'a PolicySpec, id: &EniId) -> &'a EniSpec {
    spec.enis.iter().find(|e| &e.id == id).expect("eni in spec")
}

fn eni_vpc<'a>(spec: &'a PolicySpec, e: &EniSpec) -> &'a VpcId {
    &subnet(spec, &e.subnet).vpc
}

fn is_gateway(s: &SubnetSpec, addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => u32::from(a) == u32::from(s.ipv4_cidr.network()) + 1,
        IpAddr::V6(a) => s
            .ipv6_cidr
            .is_some_and(|c| u128::from(a) == u128::from(c.network()) + 1),
    }
}

/// Whether two VPCs are the same or joined by an active peering.
pub fn live(spec: &PolicySpec, a: &VpcId, b: &VpcId) -> bool {
    a == b
        || spec.peerings.iter().any(|p| {
            p.active && ((&p.vpc_a == a && &p.vpc_b == b) || (&p.vpc_a == b && &p.vpc_b == a))
        })
}

/// The active peers of a VPC, in peering order.
fn peers<'a>(spec: &'a PolicySpec, vpc: &VpcId) -> Vec<&'a VpcId> {
    let mut out: Vec<&VpcId> = Vec::new();
    for p in spec.peerings.iter().filter(|p| p.active) {
        let other = if &p.vpc_a == vpc {
            &p.vpc_b
        } else if &p.vpc_b == vpc {
            &p.vpc_a
        } else {
            continue;
        };
        if !out.contains(&other) {
            out.push(other);
        }
    }
    out
}

fn owner_in_vpc(spec: &PolicySpec, vpc: &VpcId, dst: IpAddr) -> Option<EniId> {
    spec.enis
        .iter()
        .find(|e| eni_vpc(spec, e) == vpc && e.private_ips.contains(&dst))
        .map(|e| e.id.clone())
}

/// Where `dst` goes from inside `vpc`.
pub fn route(spec: &PolicySpec, vpc: &VpcId, dst: IpAddr) -> RefRoute {
    if vpc_contains(spec, vpc, dst) {
        if let Some(s) = spec
            .subnets
            .iter()
            .find(|s| &s.vpc == vpc && is_gateway(s, dst))
        {
            return RefRoute::Gateway(s.id.clone());
        }
        return owner_in_vpc(spec, vpc, dst).map_or(RefRoute::Unreachable, RefRoute::Eni);
    }
    for peer in peers(spec, vpc) {
        if vpc_contains(spec, peer, dst) {
            return owner_in_vpc(spec, peer, dst).map_or(RefRoute::Unreachable, RefRoute::Eni);
        }
    }
    if spec.uplink.is_some() {
        RefRoute::Uplink
    } else {
        RefRoute::Unreachable
    }
}

/// Where a packet from the uplink for `dst` goes: the only ENI owning it.
pub fn route_from_uplink(spec: &PolicySpec, dst: IpAddr) -> RefRoute {
    if spec.uplink.is_none() {
        return RefRoute::Unreachable;
    }
    let owners: Vec<&EniSpec> = spec
        .enis
        .iter()
        .filter(|e| e.private_ips.contains(&dst))
        .collect();
    match owners.as_slice() {
        [only] => RefRoute::Eni(only.id.clone()),
        _ => RefRoute::Unreachable,
    }
}

/// Whether a rule's (or entry's) protocol and ports accept the packet.
fn proto_and_ports_match(protocol: Protocol, ports: PortSpec, pkt: &PacketFields) -> bool {
    let wanted = match protocol {
        Protocol::All => None,
        Protocol::Tcp => Some(6),
        Protocol::Udp => Some(17),
        Protocol::Icmp => Some(1),
        Protocol::Icmpv6 => Some(58),
        Protocol::Number(n) => Some(n),
    };
    if let Some(n) = wanted {
        if pkt.protocol != n {
            return false;
        }
    }
    match wanted {
        Some(6 | 17) => match ports {
            PortSpec::Range { from, to } => from <= pkt.dst_port && pkt.dst_port <= to,
            _ => false,
        },
        Some(1 | 58) => match ports {
            PortSpec::Icmp { icmp_type, code } => {
                icmp_type.is_none_or(|t| t == pkt.icmp_type)
                    && code.is_none_or(|c| c == pkt.icmp_code)
            }
            _ => true,
        },
        // -1 and other protocols: all ports.
        _ => true,
    }
}

/// The NACL decision at `subnet`'s boundary.
pub fn nacl_decide(
    spec: &PolicySpec,
    subnet_id: &SubnetId,
    dir: Direction,
    pkt: &PacketFields,
) -> NaclDecision {
    let s = subnet(spec, subnet_id);
    let acl = spec
        .nacls
        .iter()
        .find(|n| n.id == s.nacl)
        .expect("nacl in spec");
    let addr = match dir {
        Direction::Ingress => pkt.src,
        Direction::Egress => pkt.dst,
    };
    let mut entries: Vec<_> = acl
        .entries
        .iter()
        .filter(|e| e.egress == (dir == Direction::Egress))
        .collect();
    entries.sort_by_key(|e| e.rule_number);
    for e in entries {
        if e.cidr.contains(addr) && proto_and_ports_match(e.protocol, e.ports, pkt) {
            return NaclDecision {
                allow: e.action == NaclAction::Allow,
                rule_number: e.rule_number,
            };
        }
    }
    NaclDecision {
        allow: false,
        rule_number: if addr.is_ipv4() {
            CATCH_ALL_V4
        } else {
            CATCH_ALL_V6
        },
    }
}

/// The groups attached to an ENI, in spec order (the bit order).
pub fn attached_groups<'a>(spec: &'a PolicySpec, e: &EniSpec) -> Vec<&'a SecurityGroupSpec> {
    spec.security_groups
        .iter()
        .filter(|g| e.groups.contains(&g.id))
        .collect()
}

/// Whether a rule of `owner` matches the remote end.
fn peer_matches(
    spec: &PolicySpec,
    owner: &SecurityGroupSpec,
    rule: &SgRule,
    addr: IpAddr,
    remote: Option<&EniSpec>,
) -> bool {
    match &rule.peer {
        Peer::Cidr4(c) => matches!(addr, IpAddr::V4(a) if c.contains(a)),
        Peer::Cidr6(c) => matches!(addr, IpAddr::V6(a) if c.contains(a)),
        Peer::PrefixList(id) => spec
            .prefix_lists
            .iter()
            .find(|p| &p.id == id)
            .expect("prefix list in spec")
            .cidrs
            .iter()
            .any(|c| c.contains(addr)),
        Peer::Group(id) => {
            let group = spec
                .security_groups
                .iter()
                .find(|g| &g.id == id)
                .expect("group in spec");
            // A reference to a group of a VPC that is not (or no longer)
            // peered is stale and matches nothing.
            live(spec, &owner.vpc, &group.vpc)
                && remote.is_some_and(|r| r.groups.contains(id) && r.private_ips.contains(&addr))
        }
    }
}

fn rule_is_any(rule: &SgRule, v4: bool) -> bool {
    match rule.peer {
        Peer::Cidr4(c) => v4 && c.prefix_len() == 0,
        Peer::Cidr6(c) => !v4 && c.prefix_len() == 0,
        _ => false,
    }
}

fn rule_allows_all_ports_of(rule: &SgRule, proto: u8) -> bool {
    match rule.protocol {
        Protocol::All => true,
        p => {
            let n = match p {
                Protocol::Tcp => 6,
                Protocol::Udp => 17,
                Protocol::Number(n) => n,
                _ => return false,
            };
            n == proto
                && (n == 6 || n == 17)
                && rule.ports == PortSpec::Range { from: 0, to: 65535 }
        }
    }
}

/// The security-group answer for ENI `eni_id` in `dir`, with `remote` the ENI
/// at the other end (None: external).
pub fn sg_match(
    spec: &PolicySpec,
    eni_id: &EniId,
    dir: Direction,
    pkt: &PacketFields,
    remote: Option<&EniId>,
) -> RefSgMatch {
    let e = eni(spec, eni_id);
    let remote = remote.map(|id| eni(spec, id));
    let addr = match dir {
        Direction::Ingress => pkt.src,
        Direction::Egress => pkt.dst,
    };
    let rules_of = |g: &'_ SecurityGroupSpec, d: Direction| -> Vec<SgRule> {
        match d {
            Direction::Ingress => g.ingress.clone(),
            Direction::Egress => g.egress.clone(),
        }
    };
    let mut result = RefSgMatch {
        groups: 0,
        rule: None,
        untracked: false,
    };
    let mut allowed_by_any_cidr = false;
    for (bit, g) in attached_groups(spec, e).into_iter().enumerate() {
        for rule in rules_of(g, dir) {
            if proto_and_ports_match(rule.protocol, rule.ports, pkt)
                && peer_matches(spec, g, &rule, addr, remote)
            {
                result.groups |= 1 << bit;
                if result.rule.is_none() {
                    result.rule = Some(rule.id.clone());
                }
                allowed_by_any_cidr |= rule_is_any(&rule, addr.is_ipv4());
            }
        }
    }
    let reverse_open = attached_groups(spec, e).into_iter().any(|g| {
        rules_of(g, dir.reverse())
            .iter()
            .any(|r| rule_is_any(r, addr.is_ipv4()) && rule_allows_all_ports_of(r, pkt.protocol))
    });
    result.untracked =
        (pkt.protocol == 6 || pkt.protocol == 17) && allowed_by_any_cidr && reverse_open;
    result
}

/// Everything about the first packet of a flow from ENI `src`, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefDecision {
    /// Where it goes.
    pub route: RefRoute,
    /// `None`: allowed; `Some(reason)`: the first failing check.
    pub denied: Option<&'static str>,
    /// Whether it is for the router itself.
    pub to_router: bool,
    /// Source subnet ACL, outbound.
    pub nacl_egress: Option<NaclDecision>,
    /// Sender's groups.
    pub egress: Option<RefSgMatch>,
    /// Destination subnet ACL, inbound.
    pub nacl_ingress: Option<NaclDecision>,
    /// Receiver's groups.
    pub ingress: Option<RefSgMatch>,
    /// Allowed and untracked on every side.
    pub untracked: bool,
}

/// The verdict for the first packet of a flow sent by `src`.
pub fn decide(spec: &PolicySpec, src: &EniId, pkt: &PacketFields) -> RefDecision {
    let from = eni(spec, src);
    let r = route(spec, eni_vpc(spec, from), pkt.dst);
    let mut d = RefDecision {
        route: r.clone(),
        denied: None,
        to_router: false,
        nacl_egress: None,
        egress: None,
        nacl_ingress: None,
        ingress: None,
        untracked: false,
    };
    match &r {
        RefRoute::Eni(dst) => {
            let to = eni(spec, dst);
            if to.subnet != from.subnet {
                d.nacl_egress = Some(nacl_decide(spec, &from.subnet, Direction::Egress, pkt));
                d.nacl_ingress = Some(nacl_decide(spec, &to.subnet, Direction::Ingress, pkt));
            }
            d.egress = Some(sg_match(spec, src, Direction::Egress, pkt, Some(dst)));
            d.ingress = Some(sg_match(spec, dst, Direction::Ingress, pkt, Some(src)));
        }
        RefRoute::Uplink => {
            d.nacl_egress = Some(nacl_decide(spec, &from.subnet, Direction::Egress, pkt));
            d.egress = Some(sg_match(spec, src, Direction::Egress, pkt, None));
        }
        RefRoute::Gateway(_) | RefRoute::Unreachable => {}
    }
    d.denied = if from.source_dest_check && !from.private_ips.contains(&pkt.src) {
        Some("source not owned")
    } else if r == RefRoute::Unreachable {
        Some("no route")
    } else if matches!(r, RefRoute::Gateway(_)) {
        d.to_router = true;
        None
    } else if d.nacl_egress.is_some_and(|n| !n.allow) {
        Some("nacl egress")
    } else if d.egress.as_ref().is_some_and(|m| m.groups == 0) {
        Some("sg egress")
    } else if d.nacl_ingress.is_some_and(|n| !n.allow) {
        Some("nacl ingress")
    } else if d.ingress.as_ref().is_some_and(|m| m.groups == 0) {
        Some("sg ingress")
    } else {
        None
    };
    d.untracked = d.denied.is_none()
        && !d.to_router
        && d.egress.as_ref().is_none_or(|m| m.untracked)
        && d.ingress.as_ref().is_none_or(|m| m.untracked);
    d
}

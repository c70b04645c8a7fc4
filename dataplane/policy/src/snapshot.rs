//! The compiled, immutable policy snapshot the data plane reads per packet.
//!
//! The control plane compiles a [`PolicySpec`] into a [`PolicySnapshot`] and
//! publishes it through a [`PolicyCell`](crate::PolicyCell). Worker cores
//! then ask it, per packet or per new flow:
//!
//! 1. which ENI sent this frame — [`PolicySnapshot::eni_by_l2`] (step 3);
//! 2. where the destination is — [`PolicySnapshot::route`] (step 5), and the
//!    subnet / gateway facts to answer ARP and NDP — [`PolicySnapshot::subnet`];
//! 3. for a new flow, the NACL boundaries it crosses —
//!    [`PolicySnapshot::nacl_path`] and [`PolicySnapshot::nacl_decide`] — and
//!    the security groups of both ends — [`PolicySnapshot::classify`] (step 7);
//!    or all of it at once with [`PolicySnapshot::decide`].
//!
//! Every per-packet method takes `&self`, allocates nothing, takes no lock and
//! cannot panic on any packet: indices out of range answer "unknown" / deny.
//!
//! Everything is addressed by dense indices ([`EniIdx`], [`SgSetIdx`], …)
//! that are only meaningful within the snapshot (and the snapshots
//! [`PolicySnapshot::apply`] derives from it); flows that cache them must
//! re-resolve when the generation changes.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::chunked::ChunkedVec;
use crate::cidr::{Ipv4Cidr, Ipv6Cidr};
use crate::classifier::{
    CacheScratch, FieldTables, GroupPart, MAX_GROUPS_PER_ENI, PrefixRanges, RemoteMatch,
    RemotePeers, ResolvedRule, SetClassifier, SetMembership, SetsByGroup, SgDetail, SgMatch,
    TableScratch, port_key_range, reverse_open,
};
use crate::exact::ExactTable;
use crate::hash::FastMap;
use crate::nacl::{CompiledNacl, NaclDecision, NaclError};
use crate::packet::{Direction, PacketFields};
use crate::spec::{
    ConntrackTimeouts, EniId, NaclId, Peer, PolicySpec, PrefixListId, PrefixListSpec,
    SecurityGroupSpec, SgId, SgRuleId, SubnetId, UplinkSpec, VpcId,
};

macro_rules! index_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl $name {
            /// The position in the snapshot's table.
            pub fn index(self) -> usize {
                self.0 as usize
            }

            fn new(i: usize) -> Self {
                Self(i as u32)
            }

            #[cfg(test)]
            #[allow(dead_code)]
            pub(crate) fn for_test(i: usize) -> Self {
                Self::new(i)
            }
        }
    };
}

index_type!(
    /// A VPC of the snapshot (its position in the spec's `vpcs`).
    VpcIdx
);
index_type!(
    /// A subnet of the snapshot (its position in the spec's `subnets`).
    SubnetIdx
);
index_type!(
    /// An ENI of the snapshot (its position in the spec's `enis`).
    EniIdx
);
index_type!(
    /// A security group (its position in the spec's `security_groups`).
    SgIdx
);
index_type!(
    /// A distinct set of attached groups, shared by every ENI that has it.
    SgSetIdx
);
index_type!(
    /// A network ACL (its position in the spec's `nacls`).
    NaclIdx
);

/// Names one rule for logs and counters: resolve the `sgr-…` id with
/// [`PolicySnapshot::rule_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleRef {
    /// Its group.
    pub group: SgIdx,
    /// Inbound or outbound rule list.
    pub direction: Direction,
    /// Its position in that list.
    pub index: u32,
}

/// Where a destination address goes from inside a VPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// To this ENI (same VPC, or an actively peered one).
    Eni(EniIdx),
    /// To the VPC router itself: the gateway address (base + 1) of this subnet.
    Gateway(SubnetIdx),
    /// Out of the uplink: outside the VPC and its active peers.
    Uplink,
    /// Nowhere: inside the VPC (or a peer) but no ENI owns it, or outside and
    /// there is no uplink.
    Unreachable,
}

/// The other end of a packet, as security-group peers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Remote {
    /// An ENI of the same or a peered VPC. Its groups match group-peer rules
    /// when it owns the packet's remote address.
    Eni(EniIdx),
    /// Anything beyond the uplink: only CIDR and prefix-list peers match.
    External,
}

/// A VPC, compiled.
#[derive(Debug, Clone)]
pub struct Vpc {
    /// Its id.
    pub id: VpcId,
    /// Its IPv4 block.
    pub ipv4_cidr: Ipv4Cidr,
    /// Its IPv6 block, if any.
    pub ipv6_cidr: Option<Ipv6Cidr>,
    /// The VPCs it is actively peered with, in the spec's peering order.
    pub peers: Box<[VpcIdx]>,
}

impl Vpc {
    /// Whether `addr` is in one of its blocks.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.ipv4_cidr.contains(a),
            IpAddr::V6(a) => self.ipv6_cidr.is_some_and(|c| c.contains(a)),
        }
    }
}

/// A subnet, compiled: what ARP / NDP answering needs.
#[derive(Debug, Clone)]
pub struct Subnet {
    /// Its id.
    pub id: SubnetId,
    /// Its VPC.
    pub vpc: VpcIdx,
    /// Its IPv4 block.
    pub ipv4_cidr: Ipv4Cidr,
    /// Its IPv6 block, if any.
    pub ipv6_cidr: Option<Ipv6Cidr>,
    /// Its network ACL.
    pub nacl: NaclIdx,
    /// The router's IPv4 address in it (base + 1), answered from `router_mac`.
    pub gateway_v4: Ipv4Addr,
    /// The router's IPv6 address in it (base + 1), if it has IPv6.
    pub gateway_v6: Option<Ipv6Addr>,
}

impl Subnet {
    /// Whether `addr` is in one of its blocks (for proxy-ARP / NDP).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.ipv4_cidr.contains(a),
            IpAddr::V6(a) => self.ipv6_cidr.is_some_and(|c| c.contains(a)),
        }
    }

    /// Whether `addr` is the router's address in this subnet.
    pub fn is_gateway(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => a == self.gateway_v4,
            IpAddr::V6(a) => self.gateway_v6 == Some(a),
        }
    }
}

/// A network interface, compiled.
#[derive(Debug, Clone)]
pub struct Eni {
    /// Its id.
    pub id: EniId,
    /// Its VPC.
    pub vpc: VpcIdx,
    /// Its subnet.
    pub subnet: SubnetIdx,
    /// Its port.
    pub port: u16,
    /// Its VLAN.
    pub vlan: Option<u16>,
    /// Its MAC, the destination of frames the router sends it.
    pub mac: [u8; 6],
    /// Its private addresses.
    pub private_ips: Box<[IpAddr]>,
    /// Its set of attached groups: the classifier to run for it.
    pub sg_set: SgSetIdx,
    /// Drop its packets whose source it does not own.
    pub source_dest_check: bool,
    /// Its idle timeouts.
    pub timeouts: ConntrackTimeouts,
}

impl Eni {
    /// Whether `addr` is one of its private addresses (a handful: a scan).
    #[inline]
    pub fn owns_ip(&self, addr: IpAddr) -> bool {
        self.private_ips.contains(&addr)
    }
}

/// What the packet path reads of an ENI, packed in 32 bytes (two to a
/// cache line) in an array of its own beside [`Eni`].
///
/// [`Eni`] is about 90 bytes and keeps its addresses behind a pointer, so
/// a packet's source check, route scope, timeouts and rewrite used to touch
/// three or four lines per ENI; a burst from many ENIs waited on them.
/// This record answers all of those from one line. Built with the topology
/// (only a full compile changes it); `tests` hold it to [`Eni`] for every
/// ENI of random specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(32))]
pub struct EniPath {
    /// Its VPC.
    pub vpc: VpcIdx,
    /// Its first private IPv4 address as a big-endian `u32` (see
    /// [`Self::HAS_V4`]): the one nearly every packet it sends carries.
    first_v4: u32,
    /// Its idle timeouts.
    pub timeouts: ConntrackTimeouts,
    /// Its port.
    pub port: u16,
    /// Its VLAN, [`Self::NO_VLAN`] for none.
    vlan: u16,
    /// Its MAC.
    pub mac: [u8; 6],
    /// [`Self::CHECKS_SOURCE`], [`Self::HAS_V4`], [`Self::MORE_V4`].
    flags: u8,
}

const _: () = assert!(size_of::<EniPath>() == 32);

impl EniPath {
    const NO_VLAN: u16 = u16::MAX;
    /// The source/destination check is on.
    const CHECKS_SOURCE: u8 = 1 << 0;
    /// It has IPv4 addresses besides `first_v4`.
    const MORE_V4: u8 = 1 << 1;
    /// It has an IPv4 address at all (`first_v4` is one).
    const HAS_V4: u8 = 1 << 2;

    fn new(eni: &Eni) -> Self {
        let mut v4 = eni.private_ips.iter().filter_map(|ip| match ip {
            IpAddr::V4(a) => Some(u32::from(*a)),
            IpAddr::V6(_) => None,
        });
        let first = v4.next();
        let more_v4 = v4.next().is_some();
        EniPath {
            vpc: eni.vpc,
            first_v4: first.unwrap_or(0),
            timeouts: eni.timeouts,
            port: eni.port,
            vlan: eni.vlan.unwrap_or(Self::NO_VLAN),
            mac: eni.mac,
            flags: if eni.source_dest_check {
                Self::CHECKS_SOURCE
            } else {
                0
            } | if more_v4 { Self::MORE_V4 } else { 0 }
                | if first.is_some() { Self::HAS_V4 } else { 0 },
        }
    }

    /// Its VLAN.
    #[inline]
    pub fn vlan(&self) -> Option<u16> {
        (self.vlan != Self::NO_VLAN).then_some(self.vlan)
    }

    /// Whether a packet it sends from the IPv4 address `src` (big-endian
    /// `u32`) passes the source/destination check: the check is off, or
    /// the address is its own. `eni` gives the full record, read only for an
    /// ENI with several IPv4 addresses whose first one is not `src`, and
    /// only then fetched.
    #[inline]
    pub fn may_send_from_v4<'a>(&self, src: u32, eni: impl FnOnce() -> Option<&'a Eni>) -> bool {
        self.flags & Self::CHECKS_SOURCE == 0
            || (src == self.first_v4 && self.flags & Self::HAS_V4 != 0)
            || (self.flags & Self::MORE_V4 != 0
                && eni().is_some_and(|e| e.owns_ip(IpAddr::V4(Ipv4Addr::from(src)))))
    }
}

/// Which subnet boundaries a packet crosses: the NACL checks to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NaclPath {
    /// Check the egress entries of this subnet's ACL (the source subnet).
    pub egress: Option<SubnetIdx>,
    /// Check the ingress entries of this subnet's ACL (the destination subnet).
    pub ingress: Option<SubnetIdx>,
}

/// The verdict on the first packet of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Forward it (and track the flow unless [`FlowDecision::untracked`]).
    Allow,
    /// It is for the VPC router itself (gateway address): the data plane
    /// answers it (ARP, NDP, echo) or drops it; **palisade**: security
    /// groups and NACLs do not apply, as for AWS's VPC router services.
    ToRouter,
    /// Drop it silently.
    Deny(DenyReason),
}

/// Why a new flow is dropped; the first failing check in packet-path order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The source ENI index is not in this snapshot.
    UnknownSource,
    /// Source/destination check: the sender does not own the source address.
    SourceNotOwned,
    /// [`Route::Unreachable`].
    NoRoute,
    /// The source subnet's ACL denies it outbound.
    NaclEgress,
    /// No group of the sender allows it outbound.
    SecurityGroupEgress,
    /// The destination subnet's ACL denies it inbound.
    NaclIngress,
    /// No group of the receiver allows it inbound.
    SecurityGroupIngress,
}

/// Everything the policy says about the first packet of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowDecision {
    /// Where it goes.
    pub route: Route,
    /// What to do with it.
    pub verdict: Verdict,
    /// The source subnet's ACL, outbound, when the packet leaves its subnet.
    pub nacl_egress: Option<NaclDecision>,
    /// The sender's groups, outbound (absent for packets from the uplink).
    pub egress: Option<SgMatch>,
    /// The destination subnet's ACL, inbound, when it enters another subnet.
    pub nacl_ingress: Option<NaclDecision>,
    /// The receiver's groups, inbound (absent toward the uplink).
    pub ingress: Option<SgMatch>,
    /// Allowed and untracked on every ENI side it crosses: do not insert a
    /// flow, re-decide every packet (cheaply, through the classifiers).
    pub untracked: bool,
}

/// What changed between the spec of a snapshot and a new spec, so that
/// [`PolicySnapshot::apply`] recompiles only that.
///
/// The hint must name every change. `apply` checks what it can in time
/// proportional to the hint (router MAC and uplink unchanged; as many
/// groups, ACLs and prefix lists as before; each hinted object still at its
/// old position in the same VPC) and falls back to a full compile when that
/// fails. Any other change (VPCs, subnets, ENIs and their group attachments,
/// peerings, adding, removing or reordering objects) must set `everything`:
/// an incomplete hint gives a snapshot that answers for the old spec there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeHint {
    /// Groups whose ingress or egress rules changed.
    pub security_groups: Vec<SgId>,
    /// ACLs whose entries changed.
    pub nacls: Vec<NaclId>,
    /// Prefix lists whose blocks changed.
    pub prefix_lists: Vec<PrefixListId>,
    /// Something else changed: compile from scratch.
    pub everything: bool,
}

impl ChangeHint {
    /// A hint that forces a full compile.
    pub fn everything() -> Self {
        Self {
            everything: true,
            ..Self::default()
        }
    }

    /// The rules of these groups changed.
    pub fn groups<'a>(ids: impl IntoIterator<Item = &'a SgId>) -> Self {
        Self {
            security_groups: ids.into_iter().cloned().collect(),
            ..Self::default()
        }
    }
}

/// Why a spec cannot be compiled. Each names the object at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// Two objects of one kind share an id.
    #[error("duplicate {kind} id {id}")]
    DuplicateId {
        /// "vpc", "subnet", …
        kind: &'static str,
        /// The id.
        id: String,
    },
    /// An object names another that does not exist.
    #[error("{referrer} refers to unknown {kind} {id}")]
    UnknownReference {
        /// The object holding the reference.
        referrer: String,
        /// The kind of object referred to.
        kind: &'static str,
        /// The missing id.
        id: String,
    },
    /// A subnet block is not inside its VPC's, is too small to hold the
    /// router address and a host, or has IPv6 in a VPC without.
    #[error("subnet {subnet}: {reason}")]
    InvalidSubnet {
        /// The subnet.
        subnet: SubnetId,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two subnets of one VPC overlap.
    #[error("subnets {first} and {second} overlap")]
    OverlappingSubnets {
        /// One.
        first: SubnetId,
        /// The other.
        second: SubnetId,
    },
    /// An object is used from a VPC other than its own (a subnet's ACL, an
    /// ENI's group).
    #[error("{referrer} uses {id}, which belongs to another VPC")]
    WrongVpc {
        /// The user.
        referrer: String,
        /// The object of another VPC.
        id: String,
    },
    /// A peering joins a VPC to itself.
    #[error("peering {0} joins a VPC to itself")]
    SelfPeering(String),
    /// An ENI address is outside its subnet or is the subnet's gateway.
    #[error("ENI {eni}: address {ip} is {reason}")]
    InvalidEniAddress {
        /// The ENI.
        eni: EniId,
        /// The address.
        ip: IpAddr,
        /// "outside its subnet" / "the subnet's gateway".
        reason: &'static str,
    },
    /// Two ENIs of one VPC own one address.
    #[error("address {ip} is owned by both {first} and {second}")]
    DuplicateAddress {
        /// The address.
        ip: IpAddr,
        /// One owner.
        first: EniId,
        /// The other.
        second: EniId,
    },
    /// Two ENIs (or an ENI and the uplink) share (port, vlan, mac): frames
    /// could not be attributed.
    #[error("{first} and {second} share port {port} vlan {vlan:?} mac {mac:02x?}")]
    DuplicateL2 {
        /// The port.
        port: u16,
        /// The VLAN.
        vlan: Option<u16>,
        /// The MAC.
        mac: [u8; 6],
        /// One user.
        first: String,
        /// The other.
        second: String,
    },
    /// A VLAN id above 4095.
    #[error("{owner}: VLAN {vlan} is not a 12-bit VLAN id")]
    InvalidVlan {
        /// The ENI or "uplink".
        owner: String,
        /// The value.
        vlan: u16,
    },
    /// An ENI has a group twice or more than 16 groups.
    #[error("ENI {eni}: {reason}")]
    InvalidGroups {
        /// The ENI.
        eni: EniId,
        /// What is wrong.
        reason: &'static str,
    },
    /// Timeouts outside the ranges of SEMANTICS.md.
    #[error("ENI {0}: conntrack timeouts outside their allowed ranges")]
    InvalidTimeouts(EniId),
    /// A rule's ports do not fit its protocol.
    #[error("security group {group}, rule {rule}: {reason}")]
    InvalidRule {
        /// The group.
        group: SgId,
        /// The rule.
        rule: SgRuleId,
        /// What is wrong.
        reason: &'static str,
    },
    /// A network ACL is invalid.
    #[error(transparent)]
    Nacl(#[from] NaclError),
}

/// Where an address inside a VPC leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Eni(EniIdx),
    Gateway(SubnetIdx),
}

/// Marks a gateway in [`Target::encode`]d values.
const GATEWAY_BIT: u32 = 1 << 31;

impl Target {
    /// The target as one `u32` for an [`ExactTable`] (indices stay far
    /// below 2^31: the spec holds at most a few hundred thousand objects).
    fn encode(self) -> u32 {
        match self {
            Target::Eni(e) => e.0,
            Target::Gateway(s) => s.0 | GATEWAY_BIT,
        }
    }

    fn decode(value: u32) -> Self {
        if value & GATEWAY_BIT == 0 {
            Target::Eni(EniIdx(value))
        } else {
            Target::Gateway(SubnetIdx(value & !GATEWAY_BIT))
        }
    }
}

/// The key of an IPv4 route target: its VPC and address.
fn v4_target_key(vpc: u32, addr: u32) -> u64 {
    u64::from(vpc) << 32 | u64::from(addr)
}

/// A group with its rules resolved. Shared between snapshots until the
/// group's rules (or a prefix list it uses) change.
#[derive(Debug)]
struct CompiledGroup {
    id: SgId,
    vpc: VpcIdx,
    /// `[ingress, egress]` rule ids, for logs.
    rule_ids: [RuleIds; 2],
    /// `[ingress, egress]` compiled tables, ready to merge into sets.
    parts: [GroupPart; 2],
    /// `[ingress, egress]` rule counts.
    rule_counts: [usize; 2],
    /// `[ingress, egress]` resolved rules: an apply compares them to tell
    /// which direction of a hinted group really changed.
    rules: [Box<[ResolvedRule]>; 2],
    /// Prefix lists its rules name (indices into the prefix list table).
    prefix_lists: Box<[usize]>,
}

/// The `sgr-…` ids of one rule list, in one allocation (a full compile
/// would otherwise make 300,000 small ones).
#[derive(Debug)]
struct RuleIds {
    text: String,
    ends: Box<[u32]>,
}

impl RuleIds {
    fn new(rules: &[crate::spec::SgRule]) -> Self {
        let mut text = String::with_capacity(rules.iter().map(|r| r.id.0.len()).sum());
        let ends = rules
            .iter()
            .map(|r| {
                text.push_str(&r.id.0);
                text.len() as u32
            })
            .collect();
        Self { text, ends }
    }

    fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..end)
    }
}

/// Everything that only a full compile changes.
#[derive(Debug, Default)]
struct Topology {
    vpcs: Box<[Vpc]>,
    subnets: Box<[Subnet]>,
    enis: Box<[Eni]>,
    /// `enis`' packet-path records, by the same index.
    eni_paths: Box<[EniPath]>,
    nacl_ids: Box<[NaclId]>,
    prefix_list_ids: Box<[PrefixListId]>,
    group_vpc: Box<[VpcIdx]>,
    /// (port, vlan, mac) packed by [`l2_key`].
    l2: FastMap<u128, EniIdx>,
    /// `l2`, frozen for the per-packet lookup.
    l2_table: ExactTable<u128>,
    targets_v4: FastMap<(u32, u32), Target>,
    /// `targets_v4` keyed by [`v4_target_key`], values by [`Target::encode`]:
    /// the per-packet route lookup.
    targets_v4_table: ExactTable<u64>,
    targets_v6: FastMap<(u32, u128), Target>,
    /// Address → ENI across all VPCs, for traffic from the uplink; `None`
    /// when VPCs overlap and the address is ambiguous.
    uplink_targets: FastMap<IpAddr, Option<EniIdx>>,
    /// Members of each SG set, sorted by [`SgIdx`] (the bit order).
    sets: Box<[Box<[SgIdx]>]>,
    /// The sets each group is a member of.
    sets_by_group: SetsByGroup,
    vpc_index: FastMap<VpcId, VpcIdx>,
    subnet_index: FastMap<SubnetId, SubnetIdx>,
    eni_index: FastMap<EniId, EniIdx>,
    group_index: FastMap<SgId, SgIdx>,
    nacl_index: FastMap<NaclId, NaclIdx>,
    prefix_list_index: FastMap<PrefixListId, usize>,
    /// Unordered pairs of actively peered VPCs, both orders present.
    live_pairs: std::collections::HashSet<
        (VpcIdx, VpcIdx),
        core::hash::BuildHasherDefault<crate::hash::FastHasher>,
    >,
}

/// The compiled policy. Immutable; cheap to share; see the module docs.
#[derive(Debug, Clone)]
pub struct PolicySnapshot {
    generation: u64,
    router_mac: [u8; 6],
    uplink: Option<UplinkSpec>,
    topology: Arc<Topology>,
    groups: ChunkedVec<Arc<CompiledGroup>>,
    prefix_lists: Arc<[PrefixRanges]>,
    /// Per SG set, `[ingress, egress]`.
    classifiers: ChunkedVec<[Arc<SetClassifier>; 2]>,
    nacls: Arc<[Arc<CompiledNacl>]>,
}

#[inline]
fn l2_key(port: u16, vlan: Option<u16>, mac: [u8; 6]) -> u128 {
    let mut m = [0u8; 8];
    m[2..].copy_from_slice(&mac);
    let vlan = vlan.map_or(0, |v| u128::from(v) + 1);
    u128::from(port) << 80 | vlan << 64 | u128::from(u64::from_be_bytes(m))
}

fn index_ids<K: Clone + Eq + core::hash::Hash + fmt::Display, I>(
    kind: &'static str,
    ids: impl Iterator<Item = K>,
    make: impl Fn(usize) -> I,
) -> Result<FastMap<K, I>, CompileError> {
    let mut map = FastMap::default();
    for (i, id) in ids.enumerate() {
        if map.insert(id.clone(), make(i)).is_some() {
            return Err(CompileError::DuplicateId {
                kind,
                id: id.to_string(),
            });
        }
    }
    Ok(map)
}

fn unknown(
    referrer: &impl fmt::Display,
    kind: &'static str,
    id: &impl fmt::Display,
) -> CompileError {
    CompileError::UnknownReference {
        referrer: referrer.to_string(),
        kind,
        id: id.to_string(),
    }
}

fn prefix_ranges(list: &PrefixListSpec) -> PrefixRanges {
    let mut ranges = PrefixRanges::default();
    for cidr in &list.cidrs {
        match cidr {
            crate::cidr::IpCidr::V4(c) => ranges.v4.push(c.range()),
            crate::cidr::IpCidr::V6(c) => ranges.v6.push(c.range()),
        }
    }
    ranges
}

/// The compiled group a [`PolicySnapshot::apply`] recompiles, and the
/// prefix lists that changed with it: a direction whose resolved rules are
/// equal and name none of them keeps its old tables.
struct Previous<'a> {
    group: &'a CompiledGroup,
    changed_lists: &'a [usize],
}

impl Previous<'_> {
    /// The old tables of direction `dir`, if `rules` would build the same.
    fn tables_for(&self, dir: usize, rules: &[ResolvedRule]) -> Option<Arc<FieldTables>> {
        let same = *self.group.rules[dir] == *rules
            && !rules.iter().any(|r| {
                matches!(r.remote, RemoteMatch::PrefixList(l) if self.changed_lists.contains(&l))
            });
        same.then(|| Arc::clone(&self.group.parts[dir].tables))
    }
}

/// Resolves one group's rules against the topology and builds its tables
/// (or takes them from `previous` where they cannot have changed).
/// `scratch` is reused from one group to the next.
fn compile_group(
    spec: &SecurityGroupSpec,
    index: SgIdx,
    topology: &Topology,
    prefix_ranges: &[PrefixRanges],
    previous: Option<&Previous<'_>>,
    scratch: &mut TableScratch,
) -> Result<CompiledGroup, CompileError> {
    let vpc = *topology
        .vpc_index
        .get(&spec.vpc)
        .ok_or_else(|| unknown(&spec.id, "vpc", &spec.vpc))?;
    let mut prefix_lists = Vec::new();
    let mut resolve = |rules: &[crate::spec::SgRule]| {
        rules
            .iter()
            .map(|rule| {
                let key_range = port_key_range(rule.protocol, rule.ports).map_err(|reason| {
                    CompileError::InvalidRule {
                        group: spec.id.clone(),
                        rule: rule.id.clone(),
                        reason,
                    }
                })?;
                let remote = match &rule.peer {
                    Peer::Cidr4(c) => {
                        let (a, b) = c.range();
                        RemoteMatch::V4(a, b)
                    }
                    Peer::Cidr6(c) => {
                        let (a, b) = c.range();
                        RemoteMatch::V6(a, b)
                    }
                    Peer::PrefixList(id) => {
                        let list = *topology
                            .prefix_list_index
                            .get(id)
                            .ok_or_else(|| unknown(&rule.id, "prefix list", id))?;
                        prefix_lists.push(list);
                        RemoteMatch::PrefixList(list)
                    }
                    Peer::Group(id) => {
                        let peer = *topology
                            .group_index
                            .get(id)
                            .ok_or_else(|| unknown(&rule.id, "security group", id))?;
                        let peer_vpc = topology.group_vpc[peer.index()];
                        if peer_vpc == vpc || topology.live_pairs.contains(&(vpc, peer_vpc)) {
                            RemoteMatch::Group(peer)
                        } else {
                            RemoteMatch::Nothing
                        }
                    }
                };
                Ok::<_, CompileError>(ResolvedRule {
                    protocol: rule.protocol.number(),
                    key_range,
                    remote,
                })
            })
            // Sized up front: collecting into a `Result` cannot size itself.
            .try_fold(Vec::with_capacity(rules.len()), |mut out, rule| {
                out.push(rule?);
                Ok::<_, CompileError>(out)
            })
    };
    let ingress = resolve(&spec.ingress)?;
    let egress = resolve(&spec.egress)?;
    prefix_lists.sort_unstable();
    prefix_lists.dedup();
    let mut part = |dir: Direction, rules: &[ResolvedRule], other: &[ResolvedRule]| GroupPart {
        group: index,
        tables: previous
            .and_then(|p| p.tables_for(dir.index(), rules))
            .unwrap_or_else(|| Arc::new(FieldTables::build_with(rules, prefix_ranges, scratch))),
        reverse_open: reverse_open(other),
    };
    let parts = [
        part(Direction::Ingress, &ingress, &egress),
        part(Direction::Egress, &egress, &ingress),
    ];
    Ok(CompiledGroup {
        id: spec.id.clone(),
        vpc,
        rule_ids: [RuleIds::new(&spec.ingress), RuleIds::new(&spec.egress)],
        parts,
        rule_counts: [ingress.len(), egress.len()],
        rules: [ingress.into_boxed_slice(), egress.into_boxed_slice()],
        prefix_lists: prefix_lists.into_boxed_slice(),
    })
}

/// What an apply changed in one direction of a group, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum DirectionChange {
    None,
    /// Only whether its other direction allows all replies.
    ReverseOpen,
    /// Its rules (or a prefix list they name).
    Tables,
}

/// The parts of a set's members in one direction, in bit order.
fn set_parts(
    members: &[SgIdx],
    groups: &ChunkedVec<Arc<CompiledGroup>>,
    dir: Direction,
) -> Vec<GroupPart> {
    members
        .iter()
        .map(|g| groups[g.index()].parts[dir.index()].clone())
        .collect()
}

/// Builds one direction's classifier of one SG set from its groups' parts.
/// `scratch` is reused from one build to the next.
fn compile_set_direction(
    members: &[SgIdx],
    groups: &ChunkedVec<Arc<CompiledGroup>>,
    dir: Direction,
    topology: &Topology,
    scratch: &mut CacheScratch,
) -> Arc<SetClassifier> {
    let rule_count = members
        .iter()
        .map(|g| groups[g.index()].rule_counts[dir.index()])
        .sum();
    Arc::new(SetClassifier::build(
        dir,
        &set_parts(members, groups, dir),
        rule_count,
        topology.membership(),
        scratch,
    ))
}

/// Builds both directions' classifiers of one SG set.
fn compile_set(
    members: &[SgIdx],
    groups: &ChunkedVec<Arc<CompiledGroup>>,
    topology: &Topology,
    scratch: &mut CacheScratch,
) -> [Arc<SetClassifier>; 2] {
    Direction::BOTH.map(|dir| compile_set_direction(members, groups, dir, topology, scratch))
}

impl Topology {
    fn membership(&self) -> SetMembership<'_> {
        SetMembership {
            sets: &self.sets,
            sets_by_group: &self.sets_by_group,
        }
    }
}

impl PolicySnapshot {
    /// Compiles a whole spec. See [`CompileError`] for what is rejected.
    pub fn compile(spec: &PolicySpec, generation: u64) -> Result<Self, CompileError> {
        let mut topo = Topology {
            vpc_index: index_ids("vpc", spec.vpcs.iter().map(|v| v.id.clone()), VpcIdx::new)?,
            subnet_index: index_ids(
                "subnet",
                spec.subnets.iter().map(|s| s.id.clone()),
                SubnetIdx::new,
            )?,
            eni_index: index_ids("eni", spec.enis.iter().map(|e| e.id.clone()), EniIdx::new)?,
            group_index: index_ids(
                "security group",
                spec.security_groups.iter().map(|g| g.id.clone()),
                SgIdx::new,
            )?,
            nacl_index: index_ids(
                "network acl",
                spec.nacls.iter().map(|n| n.id.clone()),
                NaclIdx::new,
            )?,
            prefix_list_index: index_ids(
                "prefix list",
                spec.prefix_lists.iter().map(|p| p.id.clone()),
                |i| i,
            )?,
            nacl_ids: spec.nacls.iter().map(|n| n.id.clone()).collect(),
            prefix_list_ids: spec.prefix_lists.iter().map(|p| p.id.clone()).collect(),
            ..Topology::default()
        };
        let vpc_of = |referrer: &dyn fmt::Display, id: &VpcId, topo: &Topology| {
            topo.vpc_index
                .get(id)
                .copied()
                .ok_or_else(|| unknown(&referrer.to_string(), "vpc", id))
        };

        // Peerings.
        let mut peers: Vec<Vec<VpcIdx>> = vec![Vec::new(); spec.vpcs.len()];
        for p in &spec.peerings {
            let a = vpc_of(&p.id, &p.vpc_a, &topo)?;
            let b = vpc_of(&p.id, &p.vpc_b, &topo)?;
            if a == b {
                return Err(CompileError::SelfPeering(p.id.to_string()));
            }
            if p.active {
                topo.live_pairs.insert((a, b));
                topo.live_pairs.insert((b, a));
                if !peers[a.index()].contains(&b) {
                    peers[a.index()].push(b);
                }
                if !peers[b.index()].contains(&a) {
                    peers[b.index()].push(a);
                }
            }
        }
        topo.vpcs = spec
            .vpcs
            .iter()
            .zip(peers)
            .map(|(v, peers)| Vpc {
                id: v.id.clone(),
                ipv4_cidr: v.ipv4_cidr,
                ipv6_cidr: v.ipv6_cidr,
                peers: peers.into_boxed_slice(),
            })
            .collect();

        // Network ACLs.
        let mut nacl_vpc = Vec::with_capacity(spec.nacls.len());
        let mut nacls = Vec::with_capacity(spec.nacls.len());
        for n in &spec.nacls {
            nacl_vpc.push(vpc_of(&n.id, &n.vpc, &topo)?);
            nacls.push(Arc::new(CompiledNacl::compile(n)?));
        }

        // Subnets.
        let mut subnets = Vec::with_capacity(spec.subnets.len());
        for s in &spec.subnets {
            let vpc = vpc_of(&s.id, &s.vpc, &topo)?;
            let v = &topo.vpcs[vpc.index()];
            let invalid = |reason| CompileError::InvalidSubnet {
                subnet: s.id.clone(),
                reason,
            };
            if !v.ipv4_cidr.contains_cidr(&s.ipv4_cidr) {
                return Err(invalid("IPv4 block is outside the VPC's"));
            }
            if s.ipv4_cidr.prefix_len() > 30 {
                return Err(invalid("IPv4 block is smaller than /30"));
            }
            if let Some(c6) = s.ipv6_cidr {
                if !v.ipv6_cidr.is_some_and(|v6| v6.contains_cidr(&c6)) {
                    return Err(invalid("IPv6 block is outside the VPC's"));
                }
                if c6.prefix_len() > 126 {
                    return Err(invalid("IPv6 block is smaller than /126"));
                }
            }
            let nacl = *topo
                .nacl_index
                .get(&s.nacl)
                .ok_or_else(|| unknown(&s.id, "network acl", &s.nacl))?;
            if nacl_vpc[nacl.index()] != vpc {
                return Err(CompileError::WrongVpc {
                    referrer: s.id.to_string(),
                    id: s.nacl.to_string(),
                });
            }
            subnets.push(Subnet {
                id: s.id.clone(),
                vpc,
                ipv4_cidr: s.ipv4_cidr,
                ipv6_cidr: s.ipv6_cidr,
                nacl,
                gateway_v4: Ipv4Addr::from(u32::from(s.ipv4_cidr.network()) + 1),
                gateway_v6: s
                    .ipv6_cidr
                    .map(|c| Ipv6Addr::from(u128::from(c.network()) + 1)),
            });
        }
        check_subnet_overlap(&subnets)?;
        for (i, s) in subnets.iter().enumerate() {
            let target = Target::Gateway(SubnetIdx::new(i));
            topo.targets_v4
                .insert((s.vpc.0, u32::from(s.gateway_v4)), target);
            if let Some(g6) = s.gateway_v6 {
                topo.targets_v6.insert((s.vpc.0, u128::from(g6)), target);
            }
        }
        topo.subnets = subnets.into_boxed_slice();

        // Groups: first their VPCs (group peers need them), then their rules.
        topo.group_vpc = spec
            .security_groups
            .iter()
            .map(|g| vpc_of(&g.id, &g.vpc, &topo))
            .collect::<Result<_, _>>()?;

        // ENIs and SG sets.
        let mut set_index: FastMap<Vec<SgIdx>, SgSetIdx> = FastMap::default();
        let mut sets: Vec<Box<[SgIdx]>> = Vec::new();
        let mut enis = Vec::with_capacity(spec.enis.len());
        for (i, e) in spec.enis.iter().enumerate() {
            let idx = EniIdx::new(i);
            let subnet_idx = *topo
                .subnet_index
                .get(&e.subnet)
                .ok_or_else(|| unknown(&e.id, "subnet", &e.subnet))?;
            let subnet = &topo.subnets[subnet_idx.index()];
            let vpc = subnet.vpc;
            if let Some(vlan) = e.vlan.filter(|&v| v > 4095) {
                return Err(CompileError::InvalidVlan {
                    owner: e.id.to_string(),
                    vlan,
                });
            }
            if !e.timeouts.is_valid() {
                return Err(CompileError::InvalidTimeouts(e.id.clone()));
            }
            for &ip in &e.private_ips {
                let bad = |reason| CompileError::InvalidEniAddress {
                    eni: e.id.clone(),
                    ip,
                    reason,
                };
                if !subnet.contains(ip) {
                    return Err(bad("outside its subnet"));
                }
                if subnet.is_gateway(ip) {
                    return Err(bad("the subnet's gateway"));
                }
                let previous = match ip {
                    IpAddr::V4(a) => topo
                        .targets_v4
                        .insert((vpc.0, u32::from(a)), Target::Eni(idx)),
                    IpAddr::V6(a) => topo
                        .targets_v6
                        .insert((vpc.0, u128::from(a)), Target::Eni(idx)),
                };
                if let Some(Target::Eni(other)) = previous {
                    if other != idx {
                        return Err(CompileError::DuplicateAddress {
                            ip,
                            first: spec.enis[other.index()].id.clone(),
                            second: e.id.clone(),
                        });
                    }
                }
                topo.uplink_targets
                    .entry(ip)
                    .and_modify(|owner| {
                        if *owner != Some(idx) {
                            *owner = None;
                        }
                    })
                    .or_insert(Some(idx));
            }
            if let Some(previous) = topo.l2.insert(l2_key(e.port, e.vlan, e.mac), idx) {
                return Err(CompileError::DuplicateL2 {
                    port: e.port,
                    vlan: e.vlan,
                    mac: e.mac,
                    first: spec.enis[previous.index()].id.to_string(),
                    second: e.id.to_string(),
                });
            }
            let mut members = Vec::with_capacity(e.groups.len());
            for g in &e.groups {
                let sg = *topo
                    .group_index
                    .get(g)
                    .ok_or_else(|| unknown(&e.id, "security group", g))?;
                if topo.group_vpc[sg.index()] != vpc {
                    return Err(CompileError::WrongVpc {
                        referrer: e.id.to_string(),
                        id: g.to_string(),
                    });
                }
                members.push(sg);
            }
            members.sort_unstable();
            let before = members.len();
            members.dedup();
            if members.len() != before {
                return Err(CompileError::InvalidGroups {
                    eni: e.id.clone(),
                    reason: "a group is attached twice",
                });
            }
            if members.len() > MAX_GROUPS_PER_ENI {
                return Err(CompileError::InvalidGroups {
                    eni: e.id.clone(),
                    reason: "more than 16 groups attached",
                });
            }
            let sg_set = *set_index.entry(members).or_insert_with_key(|members| {
                sets.push(members.clone().into_boxed_slice());
                SgSetIdx::new(sets.len() - 1)
            });
            enis.push(Eni {
                id: e.id.clone(),
                vpc,
                subnet: subnet_idx,
                port: e.port,
                vlan: e.vlan,
                mac: e.mac,
                private_ips: e.private_ips.clone().into_boxed_slice(),
                sg_set,
                source_dest_check: e.source_dest_check,
                timeouts: e.timeouts,
            });
        }
        if let Some(up) = &spec.uplink {
            if let Some(vlan) = up.vlan.filter(|&v| v > 4095) {
                return Err(CompileError::InvalidVlan {
                    owner: "uplink".to_owned(),
                    vlan,
                });
            }
            if let Some(previous) = topo.l2.get(&l2_key(up.port, up.vlan, up.mac)) {
                return Err(CompileError::DuplicateL2 {
                    port: up.port,
                    vlan: up.vlan,
                    mac: up.mac,
                    first: spec.enis[previous.index()].id.to_string(),
                    second: "uplink".to_owned(),
                });
            }
        }
        topo.eni_paths = enis.iter().map(EniPath::new).collect();
        topo.enis = enis.into_boxed_slice();
        topo.l2_table = ExactTable::build(topo.l2.iter().map(|(&k, e)| (k, e.0)));
        topo.targets_v4_table = ExactTable::build(
            topo.targets_v4
                .iter()
                .map(|(&(vpc, a), t)| (v4_target_key(vpc, a), t.encode())),
        );
        let mut sets_by_group: Vec<Vec<SgSetIdx>> = vec![Vec::new(); spec.security_groups.len()];
        for (s, members) in sets.iter().enumerate() {
            for g in members {
                sets_by_group[g.index()].push(SgSetIdx::new(s));
            }
        }
        topo.sets_by_group = SetsByGroup::new(&sets_by_group);
        topo.sets = sets.into_boxed_slice();

        let prefix_lists: Arc<[PrefixRanges]> =
            spec.prefix_lists.iter().map(prefix_ranges).collect();
        let mut table_scratch = TableScratch::default();
        let groups = ChunkedVec::from_vec(
            spec.security_groups
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    compile_group(
                        g,
                        SgIdx::new(i),
                        &topo,
                        &prefix_lists,
                        None,
                        &mut table_scratch,
                    )
                    .map(Arc::new)
                })
                .collect::<Result<Vec<_>, _>>()?,
        );
        let mut scratch = CacheScratch::default();
        let classifiers = ChunkedVec::from_vec(
            topo.sets
                .iter()
                .map(|members| compile_set(members, &groups, &topo, &mut scratch))
                .collect(),
        );

        Ok(Self {
            generation,
            router_mac: spec.router_mac,
            uplink: spec.uplink,
            topology: Arc::new(topo),
            groups,
            prefix_lists,
            classifiers,
            nacls: nacls.into(),
        })
    }

    /// Derives the snapshot of `spec` from this one, recompiling only what
    /// `hint` names: the changed groups and every SG set containing them (or
    /// using a changed prefix list), and the changed ACLs. Everything else is
    /// shared with `self`. Answers exactly as `compile(spec, generation)`
    /// would, provided the hint is complete (see [`ChangeHint`]).
    pub fn apply(
        &self,
        spec: &PolicySpec,
        hint: &ChangeHint,
        generation: u64,
    ) -> Result<Self, CompileError> {
        if hint.everything || !self.hint_fits(spec, hint) {
            return Self::compile(spec, generation);
        }
        let topo = &self.topology;

        let mut prefix_lists = Arc::clone(&self.prefix_lists);
        let mut changed_groups: Vec<SgIdx> = Vec::new();
        for id in &hint.security_groups {
            changed_groups.push(topo.group_index[id]);
        }
        let changed_lists: Vec<usize> = hint
            .prefix_lists
            .iter()
            .map(|id| topo.prefix_list_index[id])
            .collect();
        if !changed_lists.is_empty() {
            prefix_lists = spec.prefix_lists.iter().map(prefix_ranges).collect();
            for (i, g) in self.groups.iter().enumerate() {
                if g.prefix_lists.iter().any(|p| changed_lists.contains(p)) {
                    changed_groups.push(SgIdx::new(i));
                }
            }
        }
        changed_groups.sort_unstable();
        changed_groups.dedup();

        // Per changed group and direction: whether its tables changed (the
        // sets' tables must be merged again) or only its other direction's
        // "allows all replies" facts (the sets' tables are kept).
        let mut recompiled = Vec::with_capacity(changed_groups.len());
        let mut table_scratch = TableScratch::default();
        let mut changes: Vec<(SgIdx, [DirectionChange; 2])> =
            Vec::with_capacity(changed_groups.len());
        for &g in &changed_groups {
            let old = &self.groups[g.index()];
            let previous = Previous {
                group: old,
                changed_lists: &changed_lists,
            };
            let group = compile_group(
                &spec.security_groups[g.index()],
                g,
                topo,
                &prefix_lists,
                Some(&previous),
                &mut table_scratch,
            )?;
            let change = [0, 1].map(|d| {
                let (new, old) = (&group.parts[d], &old.parts[d]);
                if !Arc::ptr_eq(&new.tables, &old.tables) {
                    DirectionChange::Tables
                } else if new.reverse_open != old.reverse_open {
                    DirectionChange::ReverseOpen
                } else {
                    DirectionChange::None
                }
            });
            changes.push((g, change));
            recompiled.push((g.index(), Arc::new(group)));
        }
        let groups = self.groups.with_replaced(recompiled);

        let mut nacls: Vec<Arc<CompiledNacl>> = self.nacls.to_vec();
        for id in &hint.nacls {
            let n = topo.nacl_index[id];
            nacls[n.index()] = Arc::new(CompiledNacl::compile(&spec.nacls[n.index()])?);
        }

        // Per affected set, the strongest change of its changed members, per
        // direction.
        let mut affected: Vec<(SgSetIdx, [DirectionChange; 2])> = changes
            .iter()
            .flat_map(|&(g, change)| topo.sets_by_group.of(g).iter().map(move |&s| (s, change)))
            .collect();
        affected.sort_unstable_by_key(|&(s, _)| s);
        affected.dedup_by(|(s, change), (kept_s, kept)| {
            if s != kept_s {
                return false;
            }
            for (k, c) in kept.iter_mut().zip(*change) {
                *k = (*k).max(c);
            }
            true
        });
        let mut scratch = CacheScratch::default();
        let classifiers = self.classifiers.with_replaced(
            affected
                .into_iter()
                .filter(|(_, change)| change.iter().any(|&c| c != DirectionChange::None))
                .map(|(s, change)| {
                    let old = &self.classifiers[s.index()];
                    let members = &topo.sets[s.index()];
                    let pair = Direction::BOTH.map(|dir| {
                        let old = &old[dir.index()];
                        match change[dir.index()] {
                            DirectionChange::None => Arc::clone(old),
                            DirectionChange::ReverseOpen => {
                                Arc::new(old.with_reverse_open(&set_parts(members, &groups, dir)))
                            }
                            DirectionChange::Tables => {
                                compile_set_direction(members, &groups, dir, topo, &mut scratch)
                            }
                        }
                    });
                    (s.index(), pair)
                })
                .collect(),
        );

        Ok(Self {
            generation,
            router_mac: self.router_mac,
            uplink: self.uplink,
            topology: Arc::clone(&self.topology),
            groups,
            prefix_lists,
            classifiers,
            nacls: nacls.into(),
        })
    }

    /// Whether `hint` can describe the difference between `self` and `spec`
    /// as far as cheap checks can tell.
    fn hint_fits(&self, spec: &PolicySpec, hint: &ChangeHint) -> bool {
        // Only O(hint) checks: comparing all 2,500 group ids costs more
        // (cache misses over the whole spec) than the rest of an apply.
        let topo = &self.topology;
        spec.router_mac == self.router_mac
            && spec.uplink == self.uplink
            && spec.security_groups.len() == self.groups.len()
            && spec.nacls.len() == topo.nacl_ids.len()
            && spec.prefix_lists.len() == topo.prefix_list_ids.len()
            && hint.security_groups.iter().all(|id| {
                topo.group_index.get(id).is_some_and(|g| {
                    let s = &spec.security_groups[g.index()];
                    s.id == *id && topo.vpc_index.get(&s.vpc) == Some(&self.groups[g.index()].vpc)
                })
            })
            && hint.nacls.iter().all(|id| {
                topo.nacl_index
                    .get(id)
                    .is_some_and(|n| spec.nacls[n.index()].id == *id)
            })
            && hint.prefix_lists.iter().all(|id| {
                topo.prefix_list_index
                    .get(id)
                    .is_some_and(|&p| spec.prefix_lists[p].id == *id)
            })
    }

    /// Whether both snapshots hold the very same classifiers for `set`.
    #[cfg(test)]
    pub(crate) fn shares_classifiers_with(&self, other: &Self, set: SgSetIdx) -> bool {
        let (a, b) = (
            &self.classifiers[set.index()],
            &other.classifiers[set.index()],
        );
        Arc::ptr_eq(&a[0], &b[0]) && Arc::ptr_eq(&a[1], &b[1])
    }

    /// Whether both snapshots hold the very same classifier for `set` in `dir`.
    #[cfg(test)]
    pub(crate) fn shares_classifier_with(
        &self,
        other: &Self,
        set: SgSetIdx,
        dir: Direction,
    ) -> bool {
        Arc::ptr_eq(
            &self.classifiers[set.index()][dir.index()],
            &other.classifiers[set.index()][dir.index()],
        )
    }

    /// Whether both snapshots share one topology (ENIs, routes, sets).
    #[cfg(test)]
    pub(crate) fn shares_topology_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.topology, &other.topology)
    }

    /// The generation this snapshot was published as.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The router's MAC, for ARP/NDP answers and as the source of forwarded frames.
    pub fn router_mac(&self) -> [u8; 6] {
        self.router_mac
    }

    /// The uplink, if configured.
    pub fn uplink(&self) -> Option<&UplinkSpec> {
        self.uplink.as_ref()
    }

    /// The ENI that sends frames from `mac` on (`port`, `vlan`). One hash lookup.
    #[inline]
    pub fn eni_by_l2(&self, port: u16, vlan: Option<u16>, mac: [u8; 6]) -> Option<EniIdx> {
        self.topology
            .l2_table
            .get(l2_key(port, vlan, mac))
            .map(EniIdx)
    }

    /// An ENI. Panics only on an index not from this snapshot; see [`Self::get_eni`].
    pub fn eni(&self, eni: EniIdx) -> &Eni {
        &self.topology.enis[eni.index()]
    }

    /// The ENI at `index` in this snapshot's table (an index a flow cached
    /// from [`EniIdx::index`] under this snapshot's generation), or `None`
    /// past its end.
    #[inline(always)]
    pub fn eni_by_index(&self, index: u32) -> Option<EniIdx> {
        ((index as usize) < self.topology.eni_paths.len()).then_some(EniIdx(index))
    }

    /// An ENI's packet-path record (see [`EniPath`]), or `None` for an index
    /// from another snapshot's topology.
    #[inline(always)]
    pub fn eni_path(&self, eni: EniIdx) -> Option<&EniPath> {
        self.topology.eni_paths.get(eni.index())
    }

    /// An ENI, or `None` for an index from another snapshot's topology.
    #[inline]
    pub fn get_eni(&self, eni: EniIdx) -> Option<&Eni> {
        self.topology.enis.get(eni.index())
    }

    /// A subnet.
    pub fn subnet(&self, subnet: SubnetIdx) -> &Subnet {
        &self.topology.subnets[subnet.index()]
    }

    /// A VPC.
    pub fn vpc(&self, vpc: VpcIdx) -> &Vpc {
        &self.topology.vpcs[vpc.index()]
    }

    /// All ENIs, by index.
    pub fn enis(&self) -> &[Eni] {
        &self.topology.enis
    }

    /// All subnets, by index.
    pub fn subnets(&self) -> &[Subnet] {
        &self.topology.subnets
    }

    /// All VPCs, by index.
    pub fn vpcs(&self) -> &[Vpc] {
        &self.topology.vpcs
    }

    /// Number of distinct SG sets (= classifier pairs).
    pub fn sg_set_count(&self) -> usize {
        self.topology.sets.len()
    }

    /// The groups of a set, in bit order (bit *i* of a match = `groups[i]`).
    pub fn sg_set_groups(&self, set: SgSetIdx) -> &[SgIdx] {
        self.topology.sets.get(set.index()).map_or(&[], |s| &**s)
    }

    /// The set of groups at `index` in this snapshot's table (an index the
    /// data plane cached from [`SgSetIdx::index`] under this snapshot's
    /// generation), or `None` past its end.
    #[inline(always)]
    pub fn sg_set_by_index(&self, index: u32) -> Option<SgSetIdx> {
        ((index as usize) < self.topology.sets.len()).then_some(SgSetIdx(index))
    }

    /// The classifier of one set and direction (for sizing reports).
    pub fn classifier(&self, set: SgSetIdx, dir: Direction) -> Option<&SetClassifier> {
        self.classifiers.get(set.index()).map(|c| &*c[dir.index()])
    }

    /// A group's id.
    pub fn group_id(&self, group: SgIdx) -> &SgId {
        &self.groups[group.index()].id
    }

    /// Every group's id, in index order ([`SgIdx::index`]): what per-group
    /// counters kept by index are labelled with.
    pub fn group_ids(&self) -> impl Iterator<Item = &SgId> + '_ {
        self.groups.iter().map(|g| &g.id)
    }

    /// The `sgr-…` id of a rule.
    pub fn rule_id(&self, rule: RuleRef) -> Option<&str> {
        self.groups.get(rule.group.index())?.rule_ids[rule.direction.index()]
            .get(rule.index as usize)
    }

    /// A network ACL's id.
    pub fn nacl_id(&self, nacl: NaclIdx) -> &NaclId {
        self.nacls[nacl.index()].id()
    }

    /// Looks up an ENI by id (control-plane and test convenience).
    pub fn eni_by_id(&self, id: &EniId) -> Option<EniIdx> {
        self.topology.eni_index.get(id).copied()
    }

    /// Looks up a VPC by id.
    pub fn vpc_by_id(&self, id: &VpcId) -> Option<VpcIdx> {
        self.topology.vpc_index.get(id).copied()
    }

    /// Looks up a subnet by id.
    pub fn subnet_by_id(&self, id: &SubnetId) -> Option<SubnetIdx> {
        self.topology.subnet_index.get(id).copied()
    }

    /// Looks up a group by id.
    pub fn group_by_id(&self, id: &SgId) -> Option<SgIdx> {
        self.topology.group_index.get(id).copied()
    }

    fn target(&self, vpc: VpcIdx, dst: IpAddr) -> Option<Target> {
        match dst {
            IpAddr::V4(a) => self
                .topology
                .targets_v4_table
                .get(v4_target_key(vpc.0, u32::from(a)))
                .map(Target::decode),
            IpAddr::V6(a) => self
                .topology
                .targets_v6
                .get(&(vpc.0, u128::from(a)))
                .copied(),
        }
    }

    /// Where `dst` goes from inside `vpc`: the VPC's own blocks first (an ENI,
    /// the gateway of one of its subnets, or nothing), then each actively
    /// peered VPC's blocks in peering order (only ENIs: another VPC's router
    /// is not reachable), then the uplink.
    #[inline(always)]
    pub fn route(&self, vpc: VpcIdx, dst: IpAddr) -> Route {
        // Most packets go to an ENI of their own VPC: one lookup answers
        // them, inlined into the packet path. A target exists only for an
        // address of one of the VPC's subnets, so inside its blocks, which
        // is what the full walk would have found first.
        if let IpAddr::V4(a) = dst {
            if let Some(value) = self
                .topology
                .targets_v4_table
                .get(v4_target_key(vpc.0, u32::from(a)))
            {
                return match Target::decode(value) {
                    Target::Eni(e) => Route::Eni(e),
                    Target::Gateway(s) => Route::Gateway(s),
                };
            }
        }
        self.route_walk(vpc, dst)
    }

    /// [`Self::route`] by the VPC's blocks, its peers and the uplink.
    #[inline(never)]
    fn route_walk(&self, vpc: VpcIdx, dst: IpAddr) -> Route {
        let Some(v) = self.topology.vpcs.get(vpc.index()) else {
            return Route::Unreachable;
        };
        if v.contains(dst) {
            return match self.target(vpc, dst) {
                Some(Target::Eni(e)) => Route::Eni(e),
                Some(Target::Gateway(s)) => Route::Gateway(s),
                None => Route::Unreachable,
            };
        }
        for &peer in &v.peers {
            if self
                .topology
                .vpcs
                .get(peer.index())
                .is_some_and(|p| p.contains(dst))
            {
                return match self.target(peer, dst) {
                    Some(Target::Eni(e)) => Route::Eni(e),
                    _ => Route::Unreachable,
                };
            }
        }
        if self.uplink.is_some() {
            Route::Uplink
        } else {
            Route::Unreachable
        }
    }

    /// Where a packet arriving on the uplink for `dst` goes: the ENI owning
    /// `dst` if exactly one does (in any VPC), else nowhere.
    #[inline]
    pub fn route_from_uplink(&self, dst: IpAddr) -> Route {
        if self.uplink.is_none() {
            return Route::Unreachable;
        }
        match self.topology.uplink_targets.get(&dst) {
            Some(Some(e)) => Route::Eni(*e),
            _ => Route::Unreachable,
        }
    }

    /// The ACL checks a packet from `src` taking `route` needs: egress of the
    /// source subnet and ingress of the destination subnet when they differ;
    /// none within one subnet; only egress toward the uplink; none toward
    /// the gateway (it is inside the subnet).
    #[inline]
    pub fn nacl_path(&self, src: EniIdx, route: Route) -> NaclPath {
        let Some(from) = self.get_eni(src) else {
            return NaclPath::default();
        };
        match route {
            Route::Eni(dst) => match self.get_eni(dst) {
                Some(to) if to.subnet != from.subnet => NaclPath {
                    egress: Some(from.subnet),
                    ingress: Some(to.subnet),
                },
                _ => NaclPath::default(),
            },
            Route::Uplink => NaclPath {
                egress: Some(from.subnet),
                ingress: None,
            },
            Route::Gateway(_) | Route::Unreachable => NaclPath::default(),
        }
    }

    /// The ACL checks for a packet from the uplink to `dst`: ingress of its subnet.
    pub fn nacl_path_from_uplink(&self, dst: EniIdx) -> NaclPath {
        NaclPath {
            egress: None,
            ingress: self.get_eni(dst).map(|e| e.subnet),
        }
    }

    /// The subnet ACL's first-match decision for a packet crossing its
    /// boundary in `dir`. An unknown subnet denies (catch-all).
    #[inline]
    pub fn nacl_decide(
        &self,
        subnet: SubnetIdx,
        dir: Direction,
        pkt: &PacketFields,
    ) -> NaclDecision {
        let nacl = self
            .topology
            .subnets
            .get(subnet.index())
            .and_then(|s| self.nacls.get(s.nacl.index()));
        match nacl {
            Some(n) => n.decide(dir, pkt),
            None => NaclDecision {
                allow: false,
                rule_number: if pkt.src.is_ipv4() {
                    crate::nacl::CATCH_ALL_V4
                } else {
                    crate::nacl::CATCH_ALL_V6
                },
            },
        }
    }

    /// Runs an SG set's classifier: egress on the sender's set with the
    /// receiver as `remote`, ingress on the receiver's set with the sender as
    /// `remote`. An unknown set matches nothing.
    #[inline]
    pub fn classify(
        &self,
        set: SgSetIdx,
        dir: Direction,
        pkt: &PacketFields,
        remote: Remote,
    ) -> SgMatch {
        let remote = match remote {
            Remote::Eni(r) => match self.get_eni(r) {
                Some(e) if e.owns_ip(dir.remote_addr(pkt)) => self.peers_of(e),
                _ => RemotePeers::default(),
            },
            Remote::External => RemotePeers::default(),
        };
        self.classify_with(set, dir, pkt, remote, SgDetail::Rules)
    }

    /// [`Self::classify`] with the remote's peers already found. Inlined,
    /// so a constant `detail` compiles without the other detail's code.
    #[inline]
    fn classify_with(
        &self,
        set: SgSetIdx,
        dir: Direction,
        pkt: &PacketFields,
        remote: RemotePeers<'_>,
        detail: SgDetail,
    ) -> SgMatch {
        let Some(pair) = self.classifiers.get(set.index()) else {
            return SgMatch::default();
        };
        pair[dir.index()].classify(pkt, remote, detail)
    }

    /// The remote end an ENI is as group-peer rules see it.
    #[inline]
    fn peers_of(&self, eni: &Eni) -> RemotePeers<'_> {
        RemotePeers {
            set: Some(eni.sg_set),
            groups: self.sg_set_groups(eni.sg_set),
        }
    }

    /// Decides the first packet of a flow sent by ENI `src`: source check,
    /// route, NACLs on the boundaries crossed, egress SGs of `src`, ingress
    /// SGs of the destination ENI. Every applicable check is evaluated (for
    /// `explain`); the verdict is the first failure in that order.
    /// Allocation-free.
    pub fn decide(&self, src: EniIdx, pkt: &PacketFields) -> FlowDecision {
        let Some(from) = self.get_eni(src) else {
            return FlowDecision::unknown_source();
        };
        self.decide_with::<true>(src, from, self.route(from.vpc, pkt.dst), pkt)
    }

    /// [`decide`](Self::decide) for a caller that has already looked up the
    /// route (the data plane does, to find the destination before deciding):
    /// `route` must be `self.route(self.eni(src).vpc, pkt.dst)` of this same
    /// snapshot, and then the answer is `decide`'s. Saves the second route
    /// lookup (a hash probe) per new flow. With [`SgDetail::Groups`], each
    /// side's [`SgMatch::rule`] is `None` and the rest is the same.
    /// Allocation-free.
    #[inline]
    pub fn decide_routed(
        &self,
        src: EniIdx,
        route: Route,
        pkt: &PacketFields,
        detail: SgDetail,
    ) -> FlowDecision {
        let Some(from) = self.get_eni(src) else {
            return FlowDecision::unknown_source();
        };
        match detail {
            SgDetail::Groups => self.decide_with::<false>(src, from, route, pkt),
            SgDetail::Rules => self.decide_with::<true>(src, from, route, pkt),
        }
    }

    fn decide_with<const RULES: bool>(
        &self,
        src: EniIdx,
        from: &Eni,
        route: Route,
        pkt: &PacketFields,
    ) -> FlowDecision {
        // A constant, so that each instance compiles without the other
        // detail's code.
        let detail = if RULES {
            SgDetail::Rules
        } else {
            SgDetail::Groups
        };
        let mut d = FlowDecision {
            route,
            ..FlowDecision::unknown_source()
        };
        let remote = match d.route {
            Route::Eni(dst) => Some(Remote::Eni(dst)),
            Route::Uplink => Some(Remote::External),
            Route::Gateway(_) | Route::Unreachable => None,
        };
        // Whether `src` owns the source address: the source check, and
        // whether the receiver's group-peer rules see `src` as the remote.
        let owns_src = from.owns_ip(pkt.src);
        if let Some(remote) = remote {
            let path = self.nacl_path(src, d.route);
            d.nacl_egress = path
                .egress
                .map(|s| self.nacl_decide(s, Direction::Egress, pkt));
            // `classify` with `remote`, less its ownership test: the route
            // (of this snapshot, `decide_routed`'s contract) went to the
            // ENI owning the destination address, or to the uplink.
            let to = match remote {
                Remote::Eni(dst) => self.get_eni(dst),
                Remote::External => None,
            };
            let receiver = to.map_or_else(RemotePeers::default, |to| self.peers_of(to));
            d.egress =
                Some(self.classify_with(from.sg_set, Direction::Egress, pkt, receiver, detail));
            d.nacl_ingress = path
                .ingress
                .map(|s| self.nacl_decide(s, Direction::Ingress, pkt));
            if let Some(to) = to {
                let sender = if owns_src {
                    self.peers_of(from)
                } else {
                    RemotePeers::default()
                };
                d.ingress =
                    Some(self.classify_with(to.sg_set, Direction::Ingress, pkt, sender, detail));
            }
        }
        d.verdict = if from.source_dest_check && !owns_src {
            Verdict::Deny(DenyReason::SourceNotOwned)
        } else {
            match d.route {
                Route::Unreachable => Verdict::Deny(DenyReason::NoRoute),
                Route::Gateway(_) => Verdict::ToRouter,
                Route::Eni(_) | Route::Uplink => d.checks_verdict(),
            }
        };
        d.untracked = d.verdict == Verdict::Allow
            && d.egress.is_none_or(|m| m.untracked)
            && d.ingress.is_none_or(|m| m.untracked);
        d
    }

    /// Decides the first packet of a flow arriving from the uplink: route to
    /// the owning ENI, its subnet's ingress ACL, its ingress SGs with an
    /// external remote. [`SgDetail`] as for [`Self::decide_routed`].
    pub fn decide_from_uplink(&self, pkt: &PacketFields, detail: SgDetail) -> FlowDecision {
        let mut d = FlowDecision {
            route: self.route_from_uplink(pkt.dst),
            verdict: Verdict::Deny(DenyReason::NoRoute),
            nacl_egress: None,
            egress: None,
            nacl_ingress: None,
            ingress: None,
            untracked: false,
        };
        if let Route::Eni(dst) = d.route {
            let to = self.eni(dst);
            d.nacl_ingress = Some(self.nacl_decide(to.subnet, Direction::Ingress, pkt));
            let external = RemotePeers::default();
            d.ingress =
                Some(self.classify_with(to.sg_set, Direction::Ingress, pkt, external, detail));
            d.verdict = d.checks_verdict();
            d.untracked = d.verdict == Verdict::Allow && d.ingress.is_some_and(|m| m.untracked);
        }
        d
    }
}

impl FlowDecision {
    /// Nothing decided: the source ENI is not in the snapshot.
    fn unknown_source() -> Self {
        Self {
            route: Route::Unreachable,
            verdict: Verdict::Deny(DenyReason::UnknownSource),
            nacl_egress: None,
            egress: None,
            nacl_ingress: None,
            ingress: None,
            untracked: false,
        }
    }

    /// The verdict from the NACL and SG checks, in packet-path order.
    fn checks_verdict(&self) -> Verdict {
        if self.nacl_egress.is_some_and(|n| !n.allow) {
            Verdict::Deny(DenyReason::NaclEgress)
        } else if self.egress.is_some_and(|m| !m.allowed()) {
            Verdict::Deny(DenyReason::SecurityGroupEgress)
        } else if self.nacl_ingress.is_some_and(|n| !n.allow) {
            Verdict::Deny(DenyReason::NaclIngress)
        } else if self.ingress.is_some_and(|m| !m.allowed()) {
            Verdict::Deny(DenyReason::SecurityGroupIngress)
        } else {
            Verdict::Allow
        }
    }
}

fn check_subnet_overlap(subnets: &[Subnet]) -> Result<(), CompileError> {
    let mut v4: Vec<(VpcIdx, u32, u32, usize)> = subnets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (a, b) = s.ipv4_cidr.range();
            (s.vpc, a, b, i)
        })
        .collect();
    v4.sort_unstable();
    let mut v6: Vec<(VpcIdx, u128, u128, usize)> = subnets
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let (a, b) = s.ipv6_cidr?.range();
            Some((s.vpc, a, b, i))
        })
        .collect();
    v6.sort_unstable();
    let overlap = |i: usize, j: usize| CompileError::OverlappingSubnets {
        first: subnets[i].id.clone(),
        second: subnets[j].id.clone(),
    };
    // Blocks are CIDRs: two overlap only if one contains the other, so in
    // sorted order an overlap shows up between neighbours.
    for w in v4.windows(2) {
        if w[0].0 == w[1].0 && w[1].1 <= w[0].2 {
            return Err(overlap(w[0].3, w[1].3));
        }
    }
    for w in v6.windows(2) {
        if w[0].0 == w[1].0 && w[1].1 <= w[0].2 {
            return Err(overlap(w[0].3, w[1].3));
        }
    }
    Ok(())
}

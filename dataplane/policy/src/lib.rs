//! The compiled security-group and network-ACL policy of palisade:
//! immutable snapshots, per-SG-set classifiers, lock-free publication.
//!
//! This crate sits between the control plane and the packet path. The
//! control plane describes the VPC world as a plain [`PolicySpec`] and
//! compiles it ([`PolicySnapshot::compile`], or [`PolicySnapshot::apply`] for
//! a small change) into a [`PolicySnapshot`], which it publishes through a
//! [`PolicyCell`]. Worker cores load the snapshot once per burst, each
//! through its [`PolicyReader`], and ask it,
//! without allocating or locking:
//!
//! | packet-path step (DESIGN.md) | call |
//! | --- | --- |
//! | 3. source ENI, source/dest check | [`PolicySnapshot::eni_by_l2`], [`Eni::owns_ip`] |
//! | 4. ARP / NDP for the gateway | [`PolicySnapshot::subnet`] ([`Subnet::gateway_v4`], [`Subnet::contains`]), [`PolicySnapshot::router_mac`] |
//! | 5. route | [`PolicySnapshot::route`] ([`PolicySnapshot::route_from_uplink`] for uplink traffic) |
//! | 7. new flow: NACLs and SGs | [`PolicySnapshot::decide`] — or piecewise: [`PolicySnapshot::nacl_path`] + [`PolicySnapshot::nacl_decide`], [`PolicySnapshot::classify`] |
//!
//! For a new flow from ENI `a` to ENI `b` the data plane makes (or
//! [`decide`](PolicySnapshot::decide) makes for it): egress NACL of `a`'s
//! subnet and ingress NACL of `b`'s subnet if the subnets differ;
//! `classify(a.sg_set, Egress, pkt, Remote::Eni(b))` and
//! `classify(b.sg_set, Ingress, pkt, Remote::Eni(a))`. The flow is allowed if
//! every check allows; it is untracked if every SG side crossed reports
//! [`SgMatch::untracked`]. Toward the uplink only `a`'s side exists
//! (`Remote::External`); from the uplink only `b`'s.
//!
//! [`reference`](mod@reference) answers the same questions by plain loops over the spec; the
//! property tests of this crate hold the snapshot to it.

mod cell;
mod chunked;
mod cidr;
mod classifier;
mod exact;
mod explain;
mod hash;
mod nacl;
mod packet;
pub mod reference;
mod snapshot;
mod spec;

#[cfg(test)]
mod tests;

pub use cell::{PolicyCell, PolicyReader, PublishError, ReadersLagging, SnapshotGuard};
pub use cidr::{CidrError, IpCidr, Ipv4Cidr, Ipv6Cidr};
pub use classifier::{MAX_GROUPS_PER_ENI, SetClassifier, SgDetail, SgMatch};
pub use explain::{Decision, ExplainedRoute, NaclStep, Outcome, SgStep, deny_text};
pub use nacl::{
    CATCH_ALL_V4, CATCH_ALL_V6, CompiledNacl, MAX_NACL_RULE_NUMBER, NaclDecision, NaclError,
};
pub use packet::{Direction, PacketFields};
pub use snapshot::{
    ChangeHint, CompileError, DenyReason, Eni, EniIdx, EniPath, FlowDecision, NaclIdx, NaclPath,
    PolicySnapshot, Remote, Route, RuleRef, SgIdx, SgSetIdx, Subnet, SubnetIdx, Verdict, Vpc,
    VpcIdx,
};
pub use spec::{
    ConntrackTimeouts, EniId, EniSpec, NaclAction, NaclEntry, NaclId, NaclSpec, Peer, PeeringId,
    PeeringSpec, PolicySpec, PortKind, PortSpec, PrefixListId, PrefixListSpec, Protocol,
    SecurityGroupSpec, SgId, SgRule, SgRuleId, SubnetId, SubnetSpec, UplinkSpec, VpcId, VpcSpec,
};

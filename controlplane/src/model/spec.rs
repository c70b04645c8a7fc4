//! The data plane's view of the model: the [`PolicySpec`] it compiles.
//!
//! A full [`Model::to_spec`] clones every group's rules and every ENI —
//! with 2,500 groups × 50 rules and 10,000 ENIs that is ~100 ms, far more
//! than the store write or the incremental compile of one change. So the
//! control plane keeps a [`LiveSpec`] beside the model and, for a change
//! that only touches some groups' rules, ACLs' entries or prefix lists'
//! blocks, rebuilds just those entries with the same per-object builders
//! `to_spec` uses (one code path, so a patched spec cannot drift from a
//! fresh one).

use std::collections::HashMap;

use palisade_policy::{
    ChangeHint, EniSpec, NaclSpec, PeeringSpec, PolicySpec, PrefixListSpec, SecurityGroupSpec,
    SubnetSpec, VpcSpec,
};

use super::{Model, NetworkAcl, PeeringState, PrefixList, SecurityGroup};

fn group_spec(g: &SecurityGroup) -> SecurityGroupSpec {
    SecurityGroupSpec {
        id: g.id.clone(),
        vpc: g.vpc.clone(),
        ingress: g.ingress.clone(),
        egress: g.egress.clone(),
    }
}

fn nacl_spec(a: &NetworkAcl) -> NaclSpec {
    NaclSpec {
        id: a.id.clone(),
        vpc: a.vpc.clone(),
        entries: a.entries.clone(),
    }
}

fn prefix_list_spec(p: &PrefixList) -> PrefixListSpec {
    PrefixListSpec {
        id: p.id.clone(),
        cidrs: p.cidrs.clone(),
    }
}

impl Model {
    /// The data plane's view. Port names the caller cannot resolve give port
    /// 0 so a missing port never hides the rest of the policy; stale group
    /// references stay in the spec and match nothing there (the compiler
    /// treats groups of un-peered VPCs as stale). The uplink is appliance
    /// configuration, not the model's: it is left out here and carried by
    /// the control plane (`service::compile_model`).
    pub fn to_spec(&self, port_id: &dyn Fn(&str) -> Option<u16>) -> PolicySpec {
        PolicySpec {
            router_mac: self.router_mac,
            vpcs: self
                .vpcs
                .values()
                .map(|v| VpcSpec {
                    id: v.id.clone(),
                    ipv4_cidr: v.cidr,
                    ipv6_cidr: v.ipv6_cidr,
                })
                .collect(),
            subnets: self
                .subnets
                .values()
                .map(|s| SubnetSpec {
                    id: s.id.clone(),
                    vpc: s.vpc.clone(),
                    ipv4_cidr: s.cidr,
                    ipv6_cidr: s.ipv6_cidr,
                    nacl: s.network_acl.clone(),
                })
                .collect(),
            security_groups: self
                .group_order
                .iter()
                .filter_map(|id| self.security_groups.get(id))
                .map(group_spec)
                .collect(),
            enis: self
                .eni_order
                .iter()
                .filter_map(|id| self.enis.get(id))
                .map(|e| EniSpec {
                    id: e.id.clone(),
                    subnet: e.subnet.clone(),
                    port: port_id(&e.port).unwrap_or_default(),
                    vlan: e.vlan,
                    mac: e.mac,
                    private_ips: e.private_ips.clone(),
                    groups: e.groups.clone(),
                    source_dest_check: e.source_dest_check,
                    timeouts: e.timeouts,
                })
                .collect(),
            nacls: self.network_acls.values().map(nacl_spec).collect(),
            peerings: self
                .peerings
                .values()
                .filter(|p| p.state != PeeringState::Deleted)
                .map(|p| PeeringSpec {
                    id: p.id.clone(),
                    vpc_a: p.requester.clone(),
                    vpc_b: p.accepter.clone(),
                    active: p.state == PeeringState::Active,
                })
                .collect(),
            prefix_lists: self.prefix_lists.values().map(prefix_list_spec).collect(),
            uplink: None,
        }
    }

    /// The entry [`Model::to_spec`] gives group `id`, if it exists.
    pub fn security_group_spec(&self, id: &str) -> Option<SecurityGroupSpec> {
        self.security_groups.get(id).map(group_spec)
    }

    /// The entry [`Model::to_spec`] gives network ACL `id`, if it exists.
    pub fn network_acl_spec(&self, id: &str) -> Option<NaclSpec> {
        self.network_acls.get(id).map(nacl_spec)
    }

    /// The entry [`Model::to_spec`] gives prefix list `id`, if it exists.
    pub fn prefix_list_spec(&self, id: &str) -> Option<PrefixListSpec> {
        self.prefix_lists.get(id).map(prefix_list_spec)
    }
}

/// How [`LiveSpec::update`] brought the spec up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecUpdate {
    /// Only the hinted entries were rebuilt: the hint still describes the
    /// difference from the previous spec.
    Patched,
    /// Rebuilt in full (the hint said so, or named an entry the spec does
    /// not hold): whatever compiles it must compile from scratch too.
    Rebuilt,
}

/// The model's [`PolicySpec`], kept beside it so a change costs the
/// entries it touched instead of a whole [`Model::to_spec`].
///
/// It is only as current as the hints it is given: every change to the
/// model must be followed by [`LiveSpec::update`] with a hint that names
/// everything the change touched (the same completeness rule
/// [`ChangeHint`] already sets for the incremental compile).
#[derive(Debug, Clone)]
pub struct LiveSpec {
    spec: PolicySpec,
    /// Where each group sits in `spec.security_groups`. ACLs and prefix
    /// lists need no index: the spec lists them in id order, so they are
    /// found by binary search.
    group_positions: HashMap<String, usize>,
}

impl From<PolicySpec> for LiveSpec {
    fn from(spec: PolicySpec) -> Self {
        let group_positions = spec
            .security_groups
            .iter()
            .enumerate()
            .map(|(at, g)| (g.id.0.clone(), at))
            .collect();
        Self {
            spec,
            group_positions,
        }
    }
}

impl LiveSpec {
    /// The spec of `model`, ports resolved through `port_id`.
    pub fn new(model: &Model, port_id: &dyn Fn(&str) -> Option<u16>) -> Self {
        model.to_spec(port_id).into()
    }

    /// The current spec.
    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }

    /// Brings the spec up to `model` after a change that touched what
    /// `hint` names. Rebuilds in full when the hint says `everything` or
    /// names an object the spec or the model does not hold (so a wrong
    /// hint about *which* objects exist costs time, not correctness; a
    /// hint that names too few objects is still the caller's bug).
    pub fn update(
        &mut self,
        model: &Model,
        hint: &ChangeHint,
        port_id: &dyn Fn(&str) -> Option<u16>,
    ) -> SpecUpdate {
        if !hint.everything && self.patch(model, hint) {
            SpecUpdate::Patched
        } else {
            // The uplink is the appliance's, not the model's: it stays.
            let uplink = self.spec.uplink.take();
            *self = Self::new(model, port_id);
            self.spec.uplink = uplink;
            SpecUpdate::Rebuilt
        }
    }

    /// Rebuilds the hinted entries in place; false when one is missing
    /// (the entries before it may already be replaced: the caller rebuilds
    /// everything then).
    fn patch(&mut self, model: &Model, hint: &ChangeHint) -> bool {
        for id in &hint.security_groups {
            let Some(&at) = self.group_positions.get(&id.0) else {
                return false;
            };
            match model.security_group_spec(&id.0) {
                Some(entry) if self.spec.security_groups[at].id == *id => {
                    self.spec.security_groups[at] = entry;
                }
                _ => return false,
            }
        }
        for id in &hint.nacls {
            let found = self.spec.nacls.binary_search_by(|n| n.id.0.cmp(&id.0));
            match (found, model.network_acl_spec(&id.0)) {
                (Ok(at), Some(entry)) => self.spec.nacls[at] = entry,
                _ => return false,
            }
        }
        for id in &hint.prefix_lists {
            let found = self
                .spec
                .prefix_lists
                .binary_search_by(|p| p.id.0.cmp(&id.0));
            match (found, model.prefix_list_spec(&id.0)) {
                (Ok(at), Some(entry)) => self.spec.prefix_lists[at] = entry,
                _ => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use palisade_policy::{NaclId, PrefixListId, SgId};

    use super::*;
    use crate::model::tests::CountingIds;
    use crate::model::{Op, Outcome, Quotas};

    fn no_ports(_: &str) -> Option<u16> {
        None
    }

    fn created(outcome: Outcome) -> String {
        match outcome {
            Outcome::Created(ids) => ids[0].clone(),
            Outcome::Done => panic!("expected a created object"),
        }
    }

    /// A model with one VPC (its default group and ACL) and one prefix
    /// list.
    fn world() -> (Model, CountingIds, String, String, String) {
        let mut model = Model::new(Quotas::default(), [2, 0, 0, 0, 0, 1]);
        let mut ids = CountingIds::default();
        let vpc = created(
            model
                .apply(
                    &Op::CreateVpc {
                        cidr: "10.0.0.0/16".into(),
                        ipv6_cidr: None,
                    },
                    &mut ids,
                )
                .unwrap(),
        );
        let list = created(
            model
                .apply(
                    &Op::CreatePrefixList {
                        name: "pl".into(),
                        max_entries: 4,
                        cidrs: vec!["172.16.0.0/12".into()],
                    },
                    &mut ids,
                )
                .unwrap(),
        );
        let (group, acl) = {
            let v = &model.vpcs[&vpc];
            (v.default_group.0.clone(), v.default_network_acl.0.clone())
        };
        (model, ids, group, acl, list)
    }

    #[test]
    fn per_object_entries_are_the_ones_to_spec_lists() {
        let (model, _, group, acl, list) = world();
        let full = model.to_spec(&no_ports);
        assert_eq!(
            model.security_group_spec(&group).as_ref(),
            full.security_groups.iter().find(|g| g.id.0 == group)
        );
        assert_eq!(
            model.network_acl_spec(&acl).as_ref(),
            full.nacls.iter().find(|n| n.id.0 == acl)
        );
        assert_eq!(
            model.prefix_list_spec(&list).as_ref(),
            full.prefix_lists.iter().find(|p| p.id.0 == list)
        );
        assert_eq!(model.security_group_spec("sg-00000000000000bad"), None);
    }

    #[test]
    fn a_hinted_change_is_patched_and_an_unknown_id_rebuilds() {
        let (mut model, mut ids, group, _, _) = world();
        let mut live = LiveSpec::new(&model, &no_ports);
        model
            .apply(
                &Op::Authorize {
                    group: group.clone(),
                    egress: false,
                    permissions: vec![crate::model::Permission {
                        protocol: "tcp".into(),
                        from_port: Some(22),
                        to_port: Some(22),
                        peer: crate::model::PeerRequest::Cidr("192.0.2.0/24".into()),
                        description: String::new(),
                    }],
                },
                &mut ids,
            )
            .unwrap();
        let hint = ChangeHint::groups([&SgId(group.clone())]);
        assert_eq!(live.update(&model, &hint, &no_ports), SpecUpdate::Patched);
        assert_eq!(live.spec(), &model.to_spec(&no_ports));

        // A group created behind the spec's back: a hint naming it cannot
        // be patched in, so the spec is rebuilt (and says so).
        let vpc = model.vpcs.keys().next().unwrap().clone();
        let new_group = created(
            model
                .apply(
                    &Op::CreateSecurityGroup {
                        vpc,
                        name: "late".into(),
                        description: String::new(),
                    },
                    &mut ids,
                )
                .unwrap(),
        );
        let hint = ChangeHint::groups([&SgId(new_group)]);
        assert_eq!(live.update(&model, &hint, &no_ports), SpecUpdate::Rebuilt);
        assert_eq!(live.spec(), &model.to_spec(&no_ports));
        for unknown in [
            ChangeHint {
                nacls: vec![NaclId("acl-00000000000000bad".into())],
                ..ChangeHint::default()
            },
            ChangeHint {
                prefix_lists: vec![PrefixListId("pl-00000000000000bad".into())],
                ..ChangeHint::default()
            },
        ] {
            assert_eq!(
                live.update(&model, &unknown, &no_ports),
                SpecUpdate::Rebuilt
            );
        }
        assert_eq!(
            live.update(&model, &ChangeHint::everything(), &no_ports),
            SpecUpdate::Rebuilt
        );
    }
}

//! From a validated [`Config`] to the [`Model`] it describes: the one way
//! a file's objects reach the data plane (through [`Model::to_spec`]) and
//! the store (as its seed). It lives with the configuration so that the
//! model does not depend on the file format.

use std::collections::BTreeMap;

use super::Config;
use crate::model::{
    IdSource, Model, NetworkAcl, NetworkInterface, ObjectKind, Op, Peering, PeeringState,
    PrefixList, SecurityGroup, Subnet, SubnetAttributes, Vpc, VpcAttributes, availability_zones,
    object_id,
};

impl Model {
    /// The model a validated configuration describes, ids included (they
    /// are the config's stable hashed ids, so a seeded store keeps the
    /// names a user's scripts already know).
    pub fn from_config(config: &Config) -> Self {
        let mut model = Self::new(config.quotas, config.appliance.router_mac);
        for v in &config.vpcs {
            model.vpcs.insert(
                v.id.0.clone(),
                Vpc {
                    id: v.id.clone(),
                    cidr: v.cidr,
                    ipv6_cidr: v.ipv6_cidr,
                    default_group: v.default_group.clone(),
                    default_network_acl: v.default_network_acl.clone(),
                    attributes: VpcAttributes::default(),
                    ipv6_amazon: false,
                    is_default: false,
                },
            );
        }
        for s in &config.subnets {
            model.subnets.insert(
                s.id.0.clone(),
                Subnet {
                    id: s.id.clone(),
                    vpc: s.vpc.clone(),
                    cidr: s.cidr,
                    ipv6_cidr: s.ipv6_cidr,
                    network_acl: s.network_acl.clone(),
                    network_acl_association: None,
                    attributes: SubnetAttributes::default(),
                    availability_zone: None,
                    default_for_az: false,
                },
            );
        }
        for g in &config.security_groups {
            model.group_order.push(g.id.0.clone());
            model.security_groups.insert(
                g.id.0.clone(),
                SecurityGroup {
                    id: g.id.clone(),
                    vpc: g.vpc.clone(),
                    name: g.name.clone(),
                    description: g.description.clone(),
                    is_default: g.is_default,
                    ingress: g.ingress.clone(),
                    egress: g.egress.clone(),
                },
            );
        }
        for e in &config.enis {
            model.eni_order.push(e.id.0.clone());
            model.enis.insert(
                e.id.0.clone(),
                NetworkInterface {
                    id: e.id.clone(),
                    subnet: e.subnet.clone(),
                    mac: e.mac,
                    private_ips: e.private_ips.clone(),
                    groups: e.groups.clone(),
                    source_dest_check: e.source_dest_check,
                    timeouts: e.timeouts,
                    port: e.port.clone(),
                    vlan: e.vlan,
                    description: String::new(),
                },
            );
        }
        for a in &config.network_acls {
            model.network_acls.insert(
                a.id.0.clone(),
                NetworkAcl {
                    id: a.id.clone(),
                    vpc: a.vpc.clone(),
                    is_default: a.is_default,
                    entries: a.entries.clone(),
                },
            );
        }
        for p in &config.peerings {
            model.peerings.insert(
                p.id.0.clone(),
                Peering {
                    id: p.id.clone(),
                    requester: p.vpc_a.clone(),
                    accepter: p.vpc_b.clone(),
                    state: if p.active {
                        PeeringState::Active
                    } else {
                        PeeringState::PendingAcceptance
                    },
                },
            );
        }
        for p in &config.prefix_lists {
            model.prefix_lists.insert(
                p.id.0.clone(),
                PrefixList {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    cidrs: p.cidrs.clone(),
                    max_entries: p.max_entries,
                    ipv6: p.cidrs.first().is_some_and(|c| !c.is_v4()),
                    version: 1,
                    descriptions: BTreeMap::new(),
                },
            );
        }
        if config.appliance.default_vpc {
            let zones = availability_zones(&config.appliance.region)
                .into_iter()
                .map(|z| z.name)
                .collect();
            // A fresh model has no default VPC and the region has at most
            // six zones: the op cannot be refused.
            let _ = model.apply(&Op::CreateDefaultVpc { zones }, &mut DefaultVpcIds(0));
        }
        model
    }
}

/// Ids for the default VPC's objects, derived like the file's objects'
/// (docs/CONFIG.md, "Ids") from keys no name can spell (names contain no
/// `/`): `/default-vpc/N` for the N-th id drawn, from 1. The same file
/// thus always gives the same default VPC.
struct DefaultVpcIds(usize);

impl IdSource for DefaultVpcIds {
    fn fresh_id(&mut self, kind: ObjectKind) -> String {
        self.0 += 1;
        object_id(kind, &format!("/default-vpc/{}", self.0))
    }
}

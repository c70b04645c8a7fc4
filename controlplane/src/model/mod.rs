//! The control plane's object model: VPCs, subnets, security groups and
//! their rules, network interfaces, network ACLs, peerings, prefix lists and
//! tags, with every invariant of SEMANTICS.md enforced on each change.
//!
//! This is where a change is judged before anything reaches the packet
//! path: the EC2 API turns a request into an [`Op`], [`Model::apply`]
//! accepts or refuses it with AWS's error code, the store makes it durable,
//! and [`Model::to_spec`] (or the [`LiveSpec`] patched per change) hands
//! the data plane the [`PolicySpec`](palisade_policy::PolicySpec) it
//! compiles into the next snapshot.
//!
//! The model is deterministic: the only input besides the op is the source
//! of fresh ids (`sg-` + 17 random hex for API-created objects). The store
//! records the ids an op drew, so replaying its journal rebuilds exactly the
//! same model.

mod derived;
mod diff;
mod error;
mod fields;
pub(crate) mod ids;
#[cfg(test)]
mod ipv6_tests;
mod network_acl;
mod network_interface;
mod op;
#[cfg(test)]
mod ops_tests;
mod peering;
mod prefix_list;
mod quotas;
mod security_group;
mod spec;
mod subnet;
mod tags;
#[cfg(test)]
pub(crate) mod tests;
mod vpc;
mod zones;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use derived::{
    initial_network_acl_association_id, main_route_table_association_id, route_table_id,
};
pub use diff::ModelDiff;
pub use error::{ApiError, Ec2ErrorCode};
pub use fields::MAX_TEXT;
pub use ids::{ObjectKind, is_aws_shaped, object_id};
pub(crate) use network_acl::default_acl_entries;
pub use network_acl::{NaclEntryRequest, NetworkAcl};
pub use network_interface::{EniChange, NetworkInterface, NewNetworkInterface};
pub use op::{Op, Outcome};
pub use peering::{Peering, PeeringState};
pub use prefix_list::{PREFIX_LIST_MAX_ENTRIES, PrefixList, PrefixListEntryRequest};
pub use quotas::Quotas;
pub use security_group::{PeerRequest, Permission, SecurityGroup};
pub use spec::{LiveSpec, SpecUpdate};
pub use subnet::{
    SUBNET_IPV6_PREFIX_RANGE, Subnet, SubnetAttribute, SubnetAttributes, SubnetOptions,
    blocks_overlap, is_reserved, is_subnet_ipv6_prefix,
};
pub use tags::TagToDelete;
pub use vpc::{
    AMAZON_IPV6_PREFIX, DEFAULT_GROUP_DESCRIPTION, DEFAULT_NAME, DEFAULT_VPC_CIDR,
    DEFAULT_VPC_MAX_ZONES, IPV4_PREFIX_RANGE, Ipv6Request, VPC_IPV6_PREFIX_RANGE, Vpc,
    VpcAttribute, VpcAttributes, is_vpc_ipv6_prefix, next_free_ipv6_block,
};
pub use zones::{Zone, availability_zones};

/// Where fresh ids come from: random in the API, replayed from the journal
/// when the store loads.
pub trait IdSource {
    /// A fresh id of `kind`, AWS-shaped (`sg-0123456789abcdef0`).
    fn fresh_id(&mut self, kind: ObjectKind) -> String;
}

/// Random AWS-shaped ids from the standard library's per-process random
/// hash keys (no extra dependency; ids need uniqueness, not secrecy).
#[derive(Debug, Default)]
pub struct RandomIds {
    counter: u64,
}

impl IdSource for RandomIds {
    fn fresh_id(&mut self, kind: ObjectKind) -> String {
        use std::hash::{BuildHasher, Hasher};
        self.counter += 1;
        let mut bits = 0u128;
        for half in 0..2u64 {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(self.counter);
            hasher.write_u64(half);
            bits = (bits << 64) | u128::from(hasher.finish());
        }
        format!("{}-{:017x}", kind.prefix(), bits & ((1u128 << 68) - 1))
    }
}

/// The whole control-plane state, in memory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Model {
    /// The limits every change is checked against. Configuration, not
    /// state: never persisted, set by whoever opens the store.
    #[serde(skip)]
    pub quotas: Quotas,
    /// The router MAC the spec carries.
    pub router_mac: [u8; 6],
    /// VPCs by id.
    pub vpcs: BTreeMap<String, Vpc>,
    /// Subnets by id.
    pub subnets: BTreeMap<String, Subnet>,
    /// Groups by id, in creation order in `group_order`.
    pub security_groups: BTreeMap<String, SecurityGroup>,
    /// Group ids in creation order: the order of SG bitmap bits.
    pub group_order: Vec<String>,
    /// ENIs by id.
    pub enis: BTreeMap<String, NetworkInterface>,
    /// ENI ids in creation order.
    pub eni_order: Vec<String>,
    /// ACLs by id.
    pub network_acls: BTreeMap<String, NetworkAcl>,
    /// Peerings by id.
    pub peerings: BTreeMap<String, Peering>,
    /// Prefix lists by id.
    pub prefix_lists: BTreeMap<String, PrefixList>,
    /// Resource id → key → value.
    pub tags: BTreeMap<String, BTreeMap<String, String>>,
}

impl Model {
    /// An empty model with these quotas.
    pub fn new(quotas: Quotas, router_mac: [u8; 6]) -> Self {
        Self {
            quotas,
            router_mac,
            ..Self::default()
        }
    }

    /// Applies one change, all or nothing: on error the model is unchanged.
    /// Each op's rules live in its resource's file.
    pub fn apply(&mut self, op: &Op, ids: &mut dyn IdSource) -> Result<Outcome, ApiError> {
        match op {
            Op::CreateVpc { cidr, ipv6_cidr } => self.create_vpc(
                cidr,
                ipv6_cidr.clone().map(Ipv6Request::Block).as_ref(),
                ids,
            ),
            Op::CreateVpcWithIpv6 { cidr, ipv6 } => self.create_vpc(cidr, Some(ipv6), ids),
            Op::CreateDefaultVpc { zones } => self.create_default_vpc(zones, ids),
            Op::AssociateVpcIpv6CidrBlock { vpc, ipv6 } => self.associate_vpc_ipv6(vpc, ipv6),
            Op::DisassociateVpcIpv6CidrBlock { vpc } => self.disassociate_vpc_ipv6(vpc),
            Op::CreateSubnetWithOptions { vpc, cidr, options } => {
                self.create_subnet(vpc, cidr, options, ids)
            }
            Op::AssociateSubnetIpv6CidrBlock { subnet, cidr } => {
                self.associate_subnet_ipv6(subnet, cidr)
            }
            Op::DisassociateSubnetIpv6CidrBlock { subnet } => self.disassociate_subnet_ipv6(subnet),
            Op::ModifySubnetAttribute {
                subnet,
                attribute,
                value,
            } => self.modify_subnet_attribute(subnet, *attribute, *value),
            Op::DeleteVpc { vpc } => self.delete_vpc(vpc),
            Op::ModifyVpcAttribute {
                vpc,
                attribute,
                value,
            } => self.modify_vpc_attribute(vpc, *attribute, *value),
            Op::CreateSubnet { vpc, cidr } => {
                self.create_subnet(vpc, cidr, &SubnetOptions::default(), ids)
            }
            Op::DeleteSubnet { subnet } => self.delete_subnet(subnet),
            Op::CreateSecurityGroup {
                vpc,
                name,
                description,
            } => self.create_security_group(vpc, name, description, ids),
            Op::DeleteSecurityGroup { group } => self.delete_security_group(group),
            Op::Authorize {
                group,
                egress,
                permissions,
            } => self.authorize(group, *egress, permissions, ids),
            Op::Revoke {
                group,
                egress,
                permissions,
            } => self.revoke(group, *egress, permissions),
            Op::RevokeRuleIds {
                group,
                egress,
                rule_ids,
            } => self.revoke_rule_ids(group, *egress, rule_ids),
            Op::ModifySecurityGroupRules { group, rules } => {
                self.modify_security_group_rules(group, rules)
            }
            Op::UpdateRuleDescriptions {
                group,
                egress,
                by_permission,
                by_id,
            } => self.update_rule_descriptions(group, *egress, by_permission, by_id),
            Op::CreateNetworkInterface {
                subnet,
                mac,
                private_ips,
                groups,
                port,
                vlan,
            } => self.insert_network_interface(
                &NewNetworkInterface {
                    subnet: subnet.clone(),
                    mac: *mac,
                    private_ips: private_ips.clone(),
                    groups: groups.clone(),
                    port: port.clone(),
                    vlan: *vlan,
                    description: String::new(),
                    timeouts: None,
                },
                ids,
            ),
            Op::CreateNetworkInterfaceV2 { interface } => {
                self.create_network_interface(interface, ids)
            }
            Op::DeleteNetworkInterface { eni } => self.delete_network_interface(eni),
            Op::ModifyNetworkInterface { eni, change } => {
                self.modify_network_interface(eni, change)
            }
            Op::SetNetworkInterfaceDescription { eni, description } => {
                self.set_network_interface_description(eni, description)
            }
            Op::CreateNetworkAcl { vpc } => self.create_network_acl(vpc, ids),
            Op::PutNetworkAclEntry {
                acl,
                replace,
                entry,
            } => self.put_network_acl_entry(acl, *replace, entry),
            Op::DeleteNetworkAclEntry {
                acl,
                rule_number,
                egress,
            } => self.delete_network_acl_entry(acl, *rule_number, *egress),
            Op::AssociateNetworkAcl { subnet, acl } => self.associate_network_acl(subnet, acl),
            Op::DeleteNetworkAcl { acl } => self.delete_network_acl(acl),
            Op::ReplaceNetworkAclAssociation { association, acl } => {
                self.replace_network_acl_association(association, acl)
            }
            Op::RequestPeering { vpc, peer_vpc } => self.request_peering(vpc, peer_vpc, ids),
            Op::AcceptPeering { peering } => self.accept_peering(peering),
            Op::DeletePeering { peering } => self.delete_peering(peering),
            Op::CreatePrefixList {
                name,
                max_entries,
                cidrs,
            } => self.create_prefix_list(name, *max_entries, cidrs, ids),
            Op::ModifyPrefixList {
                prefix_list,
                add,
                remove,
            } => self.modify_prefix_list(prefix_list, add, remove),
            Op::CreateManagedPrefixList {
                name,
                max_entries,
                ipv6,
                entries,
            } => self.create_managed_prefix_list(name, *max_entries, *ipv6, entries, ids),
            Op::ModifyManagedPrefixList {
                prefix_list,
                current_version,
                name,
                max_entries,
                add,
                remove,
            } => self.modify_managed_prefix_list(
                prefix_list,
                *current_version,
                name.as_deref(),
                *max_entries,
                add,
                remove,
            ),
            Op::DeletePrefixList { prefix_list } => self.delete_prefix_list(prefix_list),
            Op::CreateTags { resources, tags } => self.create_tags(resources, tags),
            Op::DeleteTags { resources, keys } => {
                self.delete_tags(resources, keys);
                Ok(Outcome::Done)
            }
            Op::DeleteTagsMatching { resources, tags } => {
                self.delete_tags_matching(resources, tags)
            }
        }
    }
}

//! Network ACLs: numbered entries per direction, the default ACL's
//! allow-all entries, and which ACL each subnet is associated with.

use palisade_policy::{
    IpCidr, Ipv4Cidr, Ipv6Cidr, NaclAction, NaclEntry, NaclId, PortSpec, Protocol, VpcId,
};
use serde::{Deserialize, Serialize};

use super::derived::next_network_acl_association_id;
use super::fields::{not_found, parse_cidr, parse_ports, parse_protocol};
use super::{ApiError, Ec2ErrorCode, IdSource, Model, ObjectKind, Outcome, Subnet};

/// A network ACL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAcl {
    /// Its id.
    pub id: NaclId,
    /// Its VPC.
    pub vpc: VpcId,
    /// Whether it is the VPC's default ACL (allow all).
    pub is_default: bool,
    /// Its numbered entries, both directions.
    pub entries: Vec<NaclEntry>,
}

/// A NACL entry as the API receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NaclEntryRequest {
    /// 1..=32766.
    pub rule_number: u16,
    /// Direction.
    pub egress: bool,
    /// Protocol text.
    pub protocol: String,
    /// Block text.
    pub cidr: String,
    /// From port / ICMP type.
    pub from_port: Option<i32>,
    /// To port / ICMP code.
    pub to_port: Option<i32>,
    /// Allow (true) or deny.
    pub allow: bool,
}

impl Model {
    pub(super) fn acl(&self, id: &str) -> Result<&NetworkAcl, ApiError> {
        self.network_acls
            .get(id)
            .ok_or_else(|| not_found(Ec2ErrorCode::InvalidNetworkAclIdNotFound, "networkAcl", id))
    }

    /// CreateNetworkAcl: a custom ACL, deny-all until entries are added.
    pub(super) fn create_network_acl(
        &mut self,
        vpc: &str,
        ids: &mut dyn IdSource,
    ) -> Result<Outcome, ApiError> {
        self.vpc(vpc)?;
        let count = self
            .network_acls
            .values()
            .filter(|a| a.vpc.as_str() == vpc)
            .count();
        if count >= self.quotas.network_acls_per_vpc {
            return Err(ApiError::new(
                Ec2ErrorCode::NetworkAclLimitExceeded,
                "You have reached the limit on network ACLs per VPC.",
            ));
        }
        let id = NaclId(ids.fresh_id(ObjectKind::NetworkAcl));
        self.network_acls.insert(
            id.0.clone(),
            NetworkAcl {
                id: id.clone(),
                vpc: VpcId(vpc.to_owned()),
                is_default: false,
                entries: Vec::new(),
            },
        );
        Ok(Outcome::Created(vec![id.0]))
    }

    /// CreateNetworkAclEntry, or ReplaceNetworkAclEntry when `replace`.
    pub(super) fn put_network_acl_entry(
        &mut self,
        acl: &str,
        replace: bool,
        entry: &NaclEntryRequest,
    ) -> Result<Outcome, ApiError> {
        let target = self.acl(acl)?;
        if !(1..=32766).contains(&entry.rule_number) {
            return Err(ApiError::invalid_value(format!(
                "Rule number {} is out of range 1-32766",
                entry.rule_number
            )));
        }
        let protocol = parse_protocol(&entry.protocol)?;
        let new_entry = NaclEntry {
            rule_number: entry.rule_number,
            egress: entry.egress,
            protocol,
            cidr: parse_cidr(&entry.cidr)?,
            ports: parse_ports(protocol, entry.from_port, entry.to_port)?,
            action: if entry.allow {
                NaclAction::Allow
            } else {
                NaclAction::Deny
            },
        };
        let mut entries = target.entries.clone();
        let existing = entries
            .iter()
            .position(|e| e.rule_number == entry.rule_number && e.egress == entry.egress);
        match (existing, replace) {
            (Some(_), false) => {
                return Err(ApiError::new(
                    Ec2ErrorCode::NetworkAclEntryAlreadyExists,
                    format!(
                        "The network acl entry identified by {} already exists.",
                        entry.rule_number
                    ),
                ));
            }
            (None, true) => {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidNetworkAclEntryNotFound,
                    format!(
                        "The network acl entry identified by {} does not exist.",
                        entry.rule_number
                    ),
                ));
            }
            (Some(at), true) => entries[at] = new_entry,
            (None, false) => entries.push(new_entry),
        }
        let same_direction = entries
            .iter()
            .filter(|e| e.egress == entry.egress && e.cidr.is_v4() == new_entry_is_v4(&entry.cidr))
            .count();
        if same_direction > self.quotas.rules_per_network_acl {
            return Err(ApiError::new(
                Ec2ErrorCode::NetworkAclEntryLimitExceeded,
                "You have reached the limit on entries per network ACL.",
            ));
        }
        if let Some(target) = self.network_acls.get_mut(acl) {
            target.entries = entries;
        }
        Ok(Outcome::Done)
    }

    /// DeleteNetworkAclEntry.
    pub(super) fn delete_network_acl_entry(
        &mut self,
        acl: &str,
        rule_number: u16,
        egress: bool,
    ) -> Result<Outcome, ApiError> {
        let target = self.acl(acl)?;
        if !target
            .entries
            .iter()
            .any(|e| e.rule_number == rule_number && e.egress == egress)
        {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidNetworkAclEntryNotFound,
                format!("The network acl entry identified by {rule_number} does not exist."),
            ));
        }
        if let Some(target) = self.network_acls.get_mut(acl) {
            target
                .entries
                .retain(|e| !(e.rule_number == rule_number && e.egress == egress));
        }
        Ok(Outcome::Done)
    }

    /// ReplaceNetworkAclAssociation by subnet: the subnet moves to `acl`.
    pub(super) fn associate_network_acl(
        &mut self,
        subnet: &str,
        acl: &str,
    ) -> Result<Outcome, ApiError> {
        let home = self.subnet(subnet)?;
        let target = self.acl(acl)?;
        if target.vpc != home.vpc {
            return Err(ApiError::invalid_value(format!(
                "Network ACL {acl} and subnet {subnet} belong to different VPCs"
            )));
        }
        self.move_subnet_to_acl(subnet, acl);
        Ok(Outcome::Done)
    }

    /// DeleteNetworkAcl: never the default ACL, nor one a subnet uses.
    pub(super) fn delete_network_acl(&mut self, acl: &str) -> Result<Outcome, ApiError> {
        let target = self.acl(acl)?;
        if target.is_default {
            return Err(ApiError::invalid_value(format!(
                "cannot delete default network ACL {acl}"
            )));
        }
        if self.subnets.values().any(|s| s.network_acl.as_str() == acl) {
            return Err(ApiError::new(
                Ec2ErrorCode::DependencyViolation,
                format!("The networkAcl '{acl}' has dependencies and cannot be deleted."),
            ));
        }
        self.network_acls.remove(acl);
        self.tags.remove(acl);
        Ok(Outcome::Done)
    }

    /// ReplaceNetworkAclAssociation by association id; the outcome names the new one.
    pub(super) fn replace_network_acl_association(
        &mut self,
        association: &str,
        acl: &str,
    ) -> Result<Outcome, ApiError> {
        let subnet = self
            .subnets
            .values()
            .find(|s| s.network_acl_association_id() == *association)
            .ok_or_else(|| {
                ApiError::new(
                    Ec2ErrorCode::InvalidAssociationIdNotFound,
                    format!("The association ID '{association}' does not exist"),
                )
            })?;
        let target = self.acl(acl)?;
        if target.vpc != subnet.vpc {
            return Err(ApiError::invalid_value(format!(
                "Network ACL {acl} and subnet {} belong to different VPCs",
                subnet.id
            )));
        }
        let subnet = subnet.id.0.clone();
        self.move_subnet_to_acl(&subnet, acl);
        let new_id = self
            .subnets
            .get(&subnet)
            .map(Subnet::network_acl_association_id)
            .unwrap_or_default();
        Ok(Outcome::Created(vec![new_id]))
    }

    /// `subnet` now uses `acl`, under a new association id.
    fn move_subnet_to_acl(&mut self, subnet: &str, acl: &str) {
        if let Some(home) = self.subnets.get_mut(subnet) {
            let previous = home.network_acl_association_id();
            home.network_acl = NaclId(acl.to_owned());
            home.network_acl_association = Some(next_network_acl_association_id(&previous, acl));
        }
    }
}

fn new_entry_is_v4(text: &str) -> bool {
    !text.contains(':')
}

/// Rule number of the default ACL's IPv4 allow-all entries.
const DEFAULT_ACL_RULE_V4: u16 = 100;
/// Rule number of its IPv6 allow-all entries (when the VPC has IPv6).
const DEFAULT_ACL_RULE_V6: u16 = 101;

/// The default ACL's allow-all entries (rule 100 for IPv4, 101 for IPv6,
/// each direction, each family the VPC has); the `*` denies are implicit
/// in the data plane. The configuration's default ACLs take these too.
pub(crate) fn default_acl_entries(ipv6: bool) -> Vec<NaclEntry> {
    let mut cidrs = vec![(DEFAULT_ACL_RULE_V4, IpCidr::V4(Ipv4Cidr::ANY))];
    if ipv6 {
        cidrs.push((DEFAULT_ACL_RULE_V6, IpCidr::V6(Ipv6Cidr::ANY)));
    }
    let mut entries = Vec::new();
    for egress in [false, true] {
        for (rule_number, cidr) in &cidrs {
            entries.push(NaclEntry {
                rule_number: *rule_number,
                egress,
                protocol: Protocol::All,
                cidr: *cidr,
                ports: PortSpec::Any,
                action: NaclAction::Allow,
            });
        }
    }
    entries
}

//! Security groups and their rules: names, rule fields, duplicates, the
//! per-group and per-interface rule quotas, and the references between
//! groups (same VPC or an active peering).

use palisade_policy::{
    IpCidr, Ipv4Cidr, Ipv6Cidr, Peer, PortSpec, PrefixListId, Protocol, SgId, SgRule, SgRuleId,
    VpcId,
};
use serde::{Deserialize, Serialize};

use super::fields::{MAX_TEXT, parse_cidr, parse_ports, parse_protocol};
use super::{ApiError, Ec2ErrorCode, IdSource, Model, ObjectKind, Outcome, is_aws_shaped};

/// A security group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// Its id.
    pub id: SgId,
    /// Its VPC.
    pub vpc: VpcId,
    /// Its name, unique in the VPC.
    pub name: String,
    /// `GroupDescription`.
    pub description: String,
    /// Whether it is the VPC's `default` group.
    pub is_default: bool,
    /// Inbound rules.
    pub ingress: Vec<SgRule>,
    /// Outbound rules.
    pub egress: Vec<SgRule>,
}

impl SecurityGroup {
    /// The rules of one direction: outbound when `egress`.
    pub fn rules(&self, egress: bool) -> &[SgRule] {
        if egress { &self.egress } else { &self.ingress }
    }
}

/// The peer of a permission as a client spells it; CIDRs stay text until
/// validated so that host bits are refused the way AWS refuses them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRequest {
    /// `CidrIp` / `CidrIpv6`.
    Cidr(String),
    /// `PrefixListId`.
    PrefixList(String),
    /// `UserIdGroupPairs.GroupId`.
    Group(String),
}

/// One `IpPermission` with one peer, as the API receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// `IpProtocol`: `tcp`, `udp`, `icmp`, `icmpv6`, a number or `-1`.
    pub protocol: String,
    /// `FromPort` (or ICMP type; -1 for all).
    pub from_port: Option<i32>,
    /// `ToPort` (or ICMP code; -1 for all).
    pub to_port: Option<i32>,
    /// The peer.
    pub peer: PeerRequest,
    /// The rule's description.
    pub description: String,
}

/// A rule's peer as AWS's messages spell it.
fn peer_text(peer: &Peer) -> String {
    match peer {
        Peer::Cidr4(c) => c.to_string(),
        Peer::Cidr6(c) => c.to_string(),
        Peer::PrefixList(id) => id.to_string(),
        Peer::Group(id) => id.to_string(),
    }
}

/// A rule's ports as AWS's messages spell them (empty when all).
fn port_text(ports: PortSpec) -> String {
    match ports {
        PortSpec::Any => String::new(),
        PortSpec::Range { from, to } => format!(", from port: {from}, to port: {to}"),
        PortSpec::Icmp { icmp_type, code } => format!(
            ", type: {}, code: {}",
            icmp_type.map_or(-1, i32::from),
            code.map_or(-1, i32::from)
        ),
    }
}

fn check_group_id(text: &str) -> Result<(), ApiError> {
    if is_aws_shaped(ObjectKind::SecurityGroup, text) {
        Ok(())
    } else {
        Err(ApiError::new(
            Ec2ErrorCode::InvalidGroupIdMalformed,
            format!("Invalid id: \"{text}\" (expecting \"sg-...\")"),
        ))
    }
}

/// Whether two rules are the same rule in AWS's sense (description aside).
fn same_rule(a: &SgRule, b: &SgRule) -> bool {
    a.protocol.number() == b.protocol.number() && a.ports == b.ports && a.peer == b.peer
}

impl Model {
    pub(super) fn group(&self, id: &str) -> Result<&SecurityGroup, ApiError> {
        check_group_id(id)?;
        self.security_groups.get(id).ok_or_else(|| {
            ApiError::new(
                Ec2ErrorCode::InvalidGroupNotFound,
                format!("The security group '{id}' does not exist"),
            )
        })
    }

    /// A permission turned into a rule of `group` (without its id).
    fn rule_of(&self, group: &SecurityGroup, permission: &Permission) -> Result<SgRule, ApiError> {
        let protocol = parse_protocol(&permission.protocol)?;
        let ports = parse_ports(protocol, permission.from_port, permission.to_port)?;
        if permission.description.chars().count() > MAX_TEXT {
            return Err(ApiError::invalid_value(
                "Description must be at most 255 characters",
            ));
        }
        let peer = match &permission.peer {
            PeerRequest::Cidr(text) => match parse_cidr(text)? {
                IpCidr::V4(c) => Peer::Cidr4(c),
                IpCidr::V6(c) => Peer::Cidr6(c),
            },
            PeerRequest::PrefixList(id) => {
                self.prefix_list(id)?;
                Peer::PrefixList(PrefixListId(id.clone()))
            }
            PeerRequest::Group(id) => {
                let peer = self.group(id)?;
                if !self.reachable(&group.vpc, &peer.vpc) {
                    return Err(ApiError::new(
                        Ec2ErrorCode::InvalidGroupNotFound,
                        format!(
                            "The security group '{id}' is not in this VPC or an actively peered one"
                        ),
                    ));
                }
                Peer::Group(SgId(id.clone()))
            }
        };
        Ok(SgRule {
            id: SgRuleId(String::new()),
            protocol,
            ports,
            peer,
            description: permission.description.clone(),
        })
    }

    /// What `rule` counts as against the per-group quota, and which family
    /// (IPv4 and IPv6 rules are counted separately).
    pub(super) fn rule_weight(&self, rule: &SgRule) -> (usize, bool) {
        match &rule.peer {
            Peer::Cidr6(_) => (1, true),
            Peer::PrefixList(id) => (
                self.prefix_lists
                    .get(id.as_str())
                    .map_or(1, |p| p.max_entries),
                false,
            ),
            Peer::Cidr4(_) | Peer::Group(_) => (1, false),
        }
    }

    /// What one direction's rules count as against the per-group quota:
    /// the larger family's weighed sum (`weigh` gives a rule's weight and
    /// whether it is IPv6).
    pub(super) fn rule_count(rules: &[SgRule], weigh: impl Fn(&SgRule) -> (usize, bool)) -> usize {
        let (mut v4, mut v6) = (0, 0);
        for rule in rules {
            let (weight, is_v6) = weigh(rule);
            if is_v6 {
                v6 += weight;
            } else {
                v4 += weight;
            }
        }
        v4.max(v6)
    }

    fn check_rule_quota(&self, rules: &[SgRule]) -> Result<(), ApiError> {
        if Self::rule_count(rules, |rule| self.rule_weight(rule)) > self.quotas.rules_per_group {
            return Err(ApiError::new(
                Ec2ErrorCode::RulesPerSecurityGroupLimitExceeded,
                "The maximum number of rules per security group has been reached.",
            ));
        }
        Ok(())
    }

    pub(super) fn new_group(
        &mut self,
        ids: &mut dyn IdSource,
        vpc: &VpcId,
        name: &str,
        description: &str,
        is_default: bool,
    ) -> SgId {
        let id = SgId(ids.fresh_id(ObjectKind::SecurityGroup));
        let mut egress = vec![SgRule {
            id: SgRuleId(ids.fresh_id(ObjectKind::SecurityGroupRule)),
            protocol: Protocol::All,
            ports: PortSpec::Any,
            peer: Peer::Cidr4(Ipv4Cidr::ANY),
            description: String::new(),
        }];
        let mut ingress = Vec::new();
        if is_default {
            ingress.push(SgRule {
                id: SgRuleId(ids.fresh_id(ObjectKind::SecurityGroupRule)),
                protocol: Protocol::All,
                ports: PortSpec::Any,
                peer: Peer::Group(id.clone()),
                description: String::new(),
            });
            if self
                .vpcs
                .get(vpc.as_str())
                .is_some_and(|v| v.ipv6_cidr.is_some())
            {
                egress.push(SgRule {
                    id: SgRuleId(ids.fresh_id(ObjectKind::SecurityGroupRule)),
                    protocol: Protocol::All,
                    ports: PortSpec::Any,
                    peer: Peer::Cidr6(Ipv6Cidr::ANY),
                    description: String::new(),
                });
            }
        }
        self.security_groups.insert(
            id.0.clone(),
            SecurityGroup {
                id: id.clone(),
                vpc: vpc.clone(),
                name: name.to_owned(),
                description: description.to_owned(),
                is_default,
                ingress,
                egress,
            },
        );
        self.group_order.push(id.0.clone());
        id
    }

    /// CreateSecurityGroup: a unique name in the VPC, within its quota.
    pub(super) fn create_security_group(
        &mut self,
        vpc: &str,
        name: &str,
        description: &str,
        ids: &mut dyn IdSource,
    ) -> Result<Outcome, ApiError> {
        self.vpc(vpc)?;
        if name.is_empty() || name.chars().count() > MAX_TEXT || name.starts_with("sg-") {
            return Err(ApiError::invalid_value(format!(
                "Invalid security group name '{name}': at most 255 characters, not starting with sg-"
            )));
        }
        if description.chars().count() > MAX_TEXT {
            return Err(ApiError::invalid_value(
                "GroupDescription must be at most 255 characters",
            ));
        }
        let in_vpc = self
            .security_groups
            .values()
            .filter(|g| g.vpc.as_str() == vpc);
        let mut count = 0;
        for group in in_vpc {
            if group.name == *name {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidGroupDuplicate,
                    format!("The security group '{name}' already exists for VPC '{vpc}'"),
                ));
            }
            count += 1;
        }
        if count >= self.quotas.groups_per_vpc {
            return Err(ApiError::new(
                Ec2ErrorCode::SecurityGroupLimitExceeded,
                "You have exceeded the number of VPC security groups allowed per VPC.",
            ));
        }
        let id = self.new_group(ids, &VpcId(vpc.to_owned()), name, description, false);
        Ok(Outcome::Created(vec![id.0]))
    }

    /// DeleteSecurityGroup: never the default group, nor one in use.
    pub(super) fn delete_security_group(&mut self, group: &str) -> Result<Outcome, ApiError> {
        let target = self.group(group)?;
        if target.is_default {
            return Err(ApiError::new(
                Ec2ErrorCode::CannotDelete,
                format!(
                    "the specified group: \"{group}\" name: \"default\" cannot be deleted by a user"
                ),
            ));
        }
        let attached = self
            .enis
            .values()
            .any(|e| e.groups.iter().any(|g| g.as_str() == group));
        let referenced = self.security_groups.values().any(|g| {
            g.id.as_str() != group
                && g.ingress
                    .iter()
                    .chain(&g.egress)
                    .any(|r| matches!(&r.peer, Peer::Group(p) if p.as_str() == group))
        });
        if attached || referenced {
            return Err(ApiError::new(
                Ec2ErrorCode::DependencyViolation,
                format!("resource {group} has a dependent object"),
            ));
        }
        self.remove_group_tags(group);
        self.security_groups.remove(group);
        self.group_order.retain(|g| g != group);
        Ok(Outcome::Done)
    }

    /// AuthorizeSecurityGroupIngress / Egress: all the rules or none.
    pub(super) fn authorize(
        &mut self,
        group: &str,
        egress: bool,
        permissions: &[Permission],
        ids: &mut dyn IdSource,
    ) -> Result<Outcome, ApiError> {
        let target = self.group(group)?;
        let mut rules = target.rules(egress).to_vec();
        let mut created = Vec::new();
        for permission in permissions {
            let mut rule = self.rule_of(target, permission)?;
            if rules.iter().any(|r| same_rule(r, &rule)) {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidPermissionDuplicate,
                    format!(
                        "the specified rule \"peer: {}, {}{}, ALLOW\" already exists",
                        peer_text(&rule.peer),
                        permission.protocol.to_ascii_uppercase(),
                        port_text(rule.ports)
                    ),
                ));
            }
            rule.id = SgRuleId(ids.fresh_id(ObjectKind::SecurityGroupRule));
            created.push(rule.id.0.clone());
            rules.push(rule);
        }
        self.check_rule_quota(&rules)?;
        self.check_eni_quota_for_group(group, egress, rules.len())?;
        self.set_rules(group, egress, rules);
        Ok(Outcome::Created(created))
    }

    /// RevokeSecurityGroupIngress / Egress by permission.
    pub(super) fn revoke(
        &mut self,
        group: &str,
        egress: bool,
        permissions: &[Permission],
    ) -> Result<Outcome, ApiError> {
        let target = self.group(group)?;
        let mut rules = target.rules(egress).to_vec();
        for permission in permissions {
            let rule = self.rule_of(target, permission)?;
            let before = rules.len();
            rules.retain(|r| !same_rule(r, &rule));
            if rules.len() == before {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidPermissionNotFound,
                    "The specified rule does not exist in this security group.",
                ));
            }
        }
        self.set_rules(group, egress, rules);
        Ok(Outcome::Done)
    }

    /// RevokeSecurityGroupIngress / Egress by rule id.
    pub(super) fn revoke_rule_ids(
        &mut self,
        group: &str,
        egress: bool,
        rule_ids: &[String],
    ) -> Result<Outcome, ApiError> {
        let target = self.group(group)?;
        let mut rules = target.rules(egress).to_vec();
        for id in rule_ids {
            let before = rules.len();
            rules.retain(|r| r.id.as_str() != id);
            if rules.len() == before {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidSecurityGroupRuleIdNotFound,
                    format!("The security group rule ID '{id}' does not exist"),
                ));
            }
        }
        self.set_rules(group, egress, rules);
        Ok(Outcome::Done)
    }

    /// ModifySecurityGroupRules: each rule keeps its id.
    pub(super) fn modify_security_group_rules(
        &mut self,
        group: &str,
        rules: &[(String, Permission)],
    ) -> Result<Outcome, ApiError> {
        let target = self.group(group)?;
        let mut ingress = target.ingress.clone();
        let mut egress = target.egress.clone();
        for (id, permission) in rules {
            let mut rule = self.rule_of(target, permission)?;
            rule.id = SgRuleId(id.clone());
            let slot = ingress
                .iter_mut()
                .chain(egress.iter_mut())
                .find(|r| r.id.as_str() == id)
                .ok_or_else(|| {
                    ApiError::new(
                        Ec2ErrorCode::InvalidSecurityGroupRuleIdNotFound,
                        format!("The security group rule ID '{id}' does not exist"),
                    )
                })?;
            *slot = rule;
        }
        for list in [&ingress, &egress] {
            for (i, a) in list.iter().enumerate() {
                if list[..i].iter().any(|b| same_rule(a, b)) {
                    return Err(ApiError::new(
                        Ec2ErrorCode::InvalidPermissionDuplicate,
                        "the modified rule duplicates an existing rule",
                    ));
                }
            }
            self.check_rule_quota(list)?;
        }
        self.set_rules(group, false, ingress);
        self.set_rules(group, true, egress);
        Ok(Outcome::Done)
    }

    /// UpdateSecurityGroupRuleDescriptionsIngress / Egress.
    pub(super) fn update_rule_descriptions(
        &mut self,
        group: &str,
        egress: bool,
        by_permission: &[Permission],
        by_id: &[(String, String)],
    ) -> Result<Outcome, ApiError> {
        let target = self.group(group)?;
        let mut rules = target.rules(egress).to_vec();
        for permission in by_permission {
            let wanted = self.rule_of(target, permission)?;
            let rule = rules
                .iter_mut()
                .find(|r| same_rule(r, &wanted))
                .ok_or_else(|| {
                    ApiError::new(
                        Ec2ErrorCode::InvalidPermissionNotFound,
                        "The specified rule does not exist in this security group.",
                    )
                })?;
            rule.description = wanted.description;
        }
        for (id, description) in by_id {
            if description.chars().count() > MAX_TEXT {
                return Err(ApiError::invalid_value(
                    "Description must be at most 255 characters",
                ));
            }
            let rule = rules
                .iter_mut()
                .find(|r| r.id.as_str() == id)
                .ok_or_else(|| {
                    ApiError::new(
                        Ec2ErrorCode::InvalidSecurityGroupRuleIdNotFound,
                        format!("The security group rule ID '{id}' does not exist"),
                    )
                })?;
            rule.description.clone_from(description);
        }
        self.set_rules(group, egress, rules);
        Ok(Outcome::Done)
    }

    /// Growing a group must keep every ENI it is attached to within
    /// `rules_per_eni`.
    fn check_eni_quota_for_group(
        &self,
        group: &str,
        egress: bool,
        new_len: usize,
    ) -> Result<(), ApiError> {
        for eni in self.enis.values() {
            if !eni.groups.iter().any(|g| g.as_str() == group) {
                continue;
            }
            let total: usize = eni
                .groups
                .iter()
                .filter_map(|g| self.security_groups.get(g.as_str()))
                .map(|g| {
                    if g.id.as_str() == group {
                        new_len
                    } else {
                        g.rules(egress).len()
                    }
                })
                .sum();
            if total > self.quotas.rules_per_eni {
                return Err(ApiError::new(
                    Ec2ErrorCode::RulesPerSecurityGroupLimitExceeded,
                    format!(
                        "The rules of network interface {} would exceed its limit",
                        eni.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Replaces one direction's rules; the tags of rules that are gone go
    /// with them, so a revoked rule's id cannot be tagged or listed again.
    fn set_rules(&mut self, group: &str, egress: bool, rules: Vec<SgRule>) {
        if let Some(target) = self.security_groups.get_mut(group) {
            let slot = if egress {
                &mut target.egress
            } else {
                &mut target.ingress
            };
            for old in slot.iter() {
                if !rules.iter().any(|r| r.id == old.id) {
                    self.tags.remove(old.id.as_str());
                }
            }
            *slot = rules;
        }
    }

    /// Drops the tags of a group that is being deleted and of its rules.
    pub(super) fn remove_group_tags(&mut self, group: &str) {
        if let Some(target) = self.security_groups.get(group) {
            for rule in target.ingress.iter().chain(&target.egress) {
                self.tags.remove(rule.id.as_str());
            }
        }
        self.tags.remove(group);
    }
}

//! `[[security_group]]` and its rules: the default group, rule fields,
//! duplicates, peers and the per-group quota.

use std::collections::BTreeMap;

use palisade_policy::{
    Ipv4Cidr, Ipv6Cidr, Peer, PortKind, PortSpec, Protocol, SgId, SgRule, SgRuleId,
};

use super::{Checker, RuleCounts};
use crate::config::raw::{RawGroup, RawRule};
use crate::config::{DEFAULT_NAME, SecurityGroup};
use crate::model::Ec2ErrorCode;
use crate::model::ids::{ObjectKind, object_id, rule_key, scoped_key};
use crate::model::{DEFAULT_GROUP_DESCRIPTION, MAX_TEXT};

impl Checker {
    pub(super) fn security_groups(&mut self, raws: &[RawGroup]) -> Vec<SecurityGroup> {
        let mut seen: Vec<BTreeMap<String, String>> = vec![BTreeMap::new(); self.vpcs.len()];
        let mut declared: Vec<Vec<(usize, &RawGroup)>> = vec![Vec::new(); self.vpcs.len()];
        for vpc in 0..self.vpcs.len() {
            self.group_names.insert((vpc, DEFAULT_NAME.to_owned()));
        }
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("security_group[{index}]");
            if !self.name(&format!("{key}.name"), &raw.name) {
                continue;
            }
            if raw.name.starts_with("sg-") {
                self.report(
                    format!("{key}.name"),
                    format!(
                        "{:?}: group names cannot start with \"sg-\" ({code})",
                        raw.name,
                        code = Ec2ErrorCode::InvalidParameterValue
                    ),
                );
                continue;
            }
            let Some(vpc) = self.vpc_ref(&format!("{key}.vpc"), &raw.vpc) else {
                continue;
            };
            if self
                .unique(&mut seen[vpc], &key, &raw.name, "security group")
                .is_none()
            {
                continue;
            }
            self.group_names.insert((vpc, raw.name.clone()));
            declared[vpc].push((index, raw));
        }
        let mut out = Vec::new();
        for (vpc, declared) in declared.into_iter().enumerate() {
            let vpc_name = self.vpcs[vpc].name.clone();
            let overrides_default = declared.iter().any(|(_, r)| r.name == DEFAULT_NAME);
            if !overrides_default {
                out.push(self.default_group(vpc, None));
            }
            let count = declared.len() + usize::from(!overrides_default);
            if count > self.quotas.groups_per_vpc {
                let message = format!(
                    "VPC {vpc_name:?} has {count} security groups (the default one included); the quota is {} ({code})",
                    self.quotas.groups_per_vpc,
                    code = Ec2ErrorCode::SecurityGroupLimitExceeded
                );
                self.report("security_group", message);
            }
            for (index, raw) in declared {
                let key = format!("security_group[{index}]");
                let description = raw.description.clone();
                if let Some(d) = &description {
                    if d.chars().count() > MAX_TEXT {
                        self.report(
                            format!("{key}.description"),
                            format!("is longer than {MAX_TEXT} characters"),
                        );
                    }
                }
                if raw.name == DEFAULT_NAME {
                    let group = self.default_group(vpc, Some((&key, raw)));
                    out.push(group);
                    continue;
                }
                let id =
                    SgId(self.assign(ObjectKind::SecurityGroup, &scoped_key(&vpc_name, &raw.name)));
                let ingress = match &raw.ingress {
                    Some(rules) => self.rules(&key, vpc, &raw.name, false, rules),
                    // A new group has no inbound rules ...
                    None => Vec::new(),
                };
                let egress = match &raw.egress {
                    Some(rules) => self.rules(&key, vpc, &raw.name, true, rules),
                    // ... and one outbound rule allowing all traffic to 0.0.0.0/0.
                    None => vec![self.generated_rule(
                        vpc,
                        &raw.name,
                        true,
                        0,
                        Peer::Cidr4(Ipv4Cidr::ANY),
                    )],
                };
                let counts = [count_rules(self, &ingress), count_rules(self, &egress)];
                self.check_group_quota(&key, counts);
                self.group_counts.insert(id.clone(), counts);
                out.push(SecurityGroup {
                    name: raw.name.clone(),
                    id,
                    vpc: self.vpcs[vpc].id.clone(),
                    description: description.unwrap_or_else(|| raw.name.clone()),
                    is_default: false,
                    ingress,
                    egress,
                });
            }
        }
        out
    }

    /// The VPC's default group: inbound all from itself, outbound all to
    /// 0.0.0.0/0 (and ::/0 with IPv6) — or, if the file declares `default`,
    /// its written rules, each direction falling back to those defaults
    /// when the key is absent.
    pub(super) fn default_group(
        &mut self,
        vpc: usize,
        declared: Option<(&str, &RawGroup)>,
    ) -> SecurityGroup {
        let vpc_name = self.vpcs[vpc].name.clone();
        let id = SgId(self.assign(
            ObjectKind::SecurityGroup,
            &scoped_key(&vpc_name, DEFAULT_NAME),
        ));
        let written = |egress: bool| {
            declared.and_then(|(key, raw)| {
                let rules = if egress { &raw.egress } else { &raw.ingress };
                rules.as_ref().map(|rules| (key, rules))
            })
        };
        let ingress = match written(false) {
            Some((key, rules)) => self.rules(key, vpc, DEFAULT_NAME, false, rules),
            None => vec![self.generated_rule(vpc, DEFAULT_NAME, false, 0, Peer::Group(id.clone()))],
        };
        let egress = if let Some((key, rules)) = written(true) {
            self.rules(key, vpc, DEFAULT_NAME, true, rules)
        } else {
            let mut rules =
                vec![self.generated_rule(vpc, DEFAULT_NAME, true, 0, Peer::Cidr4(Ipv4Cidr::ANY))];
            if self.vpcs[vpc].ipv6.is_some() {
                rules.push(self.generated_rule(
                    vpc,
                    DEFAULT_NAME,
                    true,
                    1,
                    Peer::Cidr6(Ipv6Cidr::ANY),
                ));
            }
            rules
        };
        let counts = [count_rules(self, &ingress), count_rules(self, &egress)];
        if let Some((key, _)) = declared {
            self.check_group_quota(key, counts);
        }
        self.group_counts.insert(id.clone(), counts);
        let description = declared
            .and_then(|(_, raw)| raw.description.clone())
            .unwrap_or_else(|| DEFAULT_GROUP_DESCRIPTION.to_owned());
        SecurityGroup {
            name: DEFAULT_NAME.to_owned(),
            id,
            vpc: self.vpcs[vpc].id.clone(),
            description,
            is_default: true,
            ingress,
            egress,
        }
    }

    /// An allow-all rule AWS creates by itself.
    pub(super) fn generated_rule(
        &mut self,
        vpc: usize,
        group: &str,
        egress: bool,
        position: usize,
        peer: Peer,
    ) -> SgRule {
        let vpc_name = self.vpcs[vpc].name.clone();
        SgRule {
            id: SgRuleId(self.assign(
                ObjectKind::SecurityGroupRule,
                &rule_key(&vpc_name, group, egress, position),
            )),
            protocol: Protocol::All,
            ports: PortSpec::Any,
            peer,
            description: String::new(),
        }
    }

    pub(super) fn check_group_quota(&mut self, key: &str, counts: RuleCounts) {
        for (egress, per_family) in counts.iter().enumerate() {
            for (v6, &count) in per_family.iter().enumerate() {
                if count > self.quotas.rules_per_group {
                    let direction = if egress == 1 { "egress" } else { "ingress" };
                    let message = format!(
                        "{count} {} {direction} rules (a prefix list counts as its max_entries); the quota is {} ({code})",
                        if v6 == 1 { "IPv6" } else { "IPv4" },
                        self.quotas.rules_per_group,
                        code = Ec2ErrorCode::RulesPerSecurityGroupLimitExceeded
                    );
                    self.report(format!("{key}.{direction}"), message);
                }
            }
        }
    }

    pub(super) fn rules(
        &mut self,
        group_key: &str,
        vpc: usize,
        group: &str,
        egress: bool,
        raws: &[RawRule],
    ) -> Vec<SgRule> {
        let direction = if egress { "egress" } else { "ingress" };
        let vpc_name = self.vpcs[vpc].name.clone();
        let mut out: Vec<(usize, SgRule)> = Vec::new();
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("{group_key}.{direction}[{index}]");
            let protocol = self.protocol(&format!("{key}.protocol"), &raw.protocol);
            let ports = protocol.and_then(|p| match p.port_kind() {
                PortKind::Ports => self.port_range(&key, p, raw.from_port, raw.to_port),
                PortKind::IcmpTypeCode => {
                    self.icmp_type_code(&key, ("from_port", "to_port"), raw.from_port, raw.to_port)
                }
                // -1 and other protocols cover every port whatever is written.
                PortKind::Ignored => Some(PortSpec::Any),
            });
            let peer = self.peer(&key, vpc, raw);
            if let Some(d) = &raw.description {
                if d.chars().count() > MAX_TEXT {
                    self.report(
                        format!("{key}.description"),
                        format!("is longer than {MAX_TEXT} characters"),
                    );
                }
            }
            let (Some(protocol), Some(ports), Some(peer)) = (protocol, ports, peer) else {
                continue;
            };
            if let Some((first, _)) = out
                .iter()
                .find(|(_, r)| r.protocol == protocol && r.ports == ports && r.peer == peer)
            {
                self.report(
                    key.clone(),
                    format!(
                        "the same permission as {direction}[{first}] ({code})",
                        code = Ec2ErrorCode::InvalidPermissionDuplicate
                    ),
                );
                continue;
            }
            let id = SgRuleId(self.assign(
                ObjectKind::SecurityGroupRule,
                &rule_key(&vpc_name, group, egress, index),
            ));
            out.push((
                index,
                SgRule {
                    id,
                    protocol,
                    ports,
                    peer,
                    description: raw.description.clone().unwrap_or_default(),
                },
            ));
        }
        out.into_iter().map(|(_, rule)| rule).collect()
    }

    pub(super) fn peer(&mut self, key: &str, vpc: usize, raw: &RawRule) -> Option<Peer> {
        let given = [
            raw.cidr.is_some(),
            raw.ipv6_cidr.is_some(),
            raw.prefix_list.is_some(),
            raw.group.is_some(),
        ]
        .into_iter()
        .filter(|&g| g)
        .count();
        if given != 1 {
            self.report(
                key,
                format!(
                    "needs exactly one peer (cidr, ipv6_cidr, prefix_list or group), got {given}"
                ),
            );
            return None;
        }
        if let Some(text) = &raw.cidr {
            return self.cidr_v4(&format!("{key}.cidr"), text).map(Peer::Cidr4);
        }
        if let Some(text) = &raw.ipv6_cidr {
            return self
                .cidr_v6(&format!("{key}.ipv6_cidr"), text)
                .map(Peer::Cidr6);
        }
        if let Some(name) = &raw.prefix_list {
            let found = self.prefix_lists.get(name).map(|p| p.id.clone());
            if found.is_none() {
                self.report(
                    format!("{key}.prefix_list"),
                    format!("no prefix list named {name:?}"),
                );
            }
            return found.map(Peer::PrefixList);
        }
        let text = raw.group.as_deref().unwrap_or_default();
        self.group_ref(&format!("{key}.group"), vpc, text, true)
            .map(Peer::Group)
    }

    /// Resolves `name` (a group of VPC `vpc`) or `vpc-name/name` (a group
    /// of a peered VPC, when `allow_peered`).
    pub(super) fn group_ref(
        &mut self,
        key: &str,
        vpc: usize,
        text: &str,
        allow_peered: bool,
    ) -> Option<SgId> {
        let (target_vpc, name) = match text.split_once('/') {
            Some((vpc_name, name)) => (self.vpc_ref(key, vpc_name)?, name),
            None => (vpc, text),
        };
        let target_vpc_name = self.vpcs[target_vpc].name.clone();
        if !self.group_names.contains(&(target_vpc, name.to_owned())) {
            self.report(
                key,
                format!(
                    "no security group named {name:?} in VPC {target_vpc_name:?} ({code})",
                    code = Ec2ErrorCode::InvalidGroupNotFound
                ),
            );
            return None;
        }
        if target_vpc != vpc {
            let own = self.vpcs[vpc].name.clone();
            if !allow_peered {
                self.report(
                    key,
                    format!("group {text:?} belongs to VPC {target_vpc_name:?}, not to {own:?}"),
                );
                return None;
            }
            if !self.peered.contains(&(vpc, target_vpc)) {
                self.report(
                    key,
                    format!("VPC {own:?} is not peered with {target_vpc_name:?}; add a [[peering]] to reference its groups"),
                );
                return None;
            }
        }
        Some(SgId(object_id(
            ObjectKind::SecurityGroup,
            &scoped_key(&target_vpc_name, name),
        )))
    }
}

/// Quota counts of a rule list per family: a CIDR counts toward its
/// family, a prefix list as its `max_entries` toward its family, a group
/// reference as one toward both (**palisade**: a group's members may have
/// addresses of either family).
pub(super) fn count_rules(checker: &Checker, rules: &[SgRule]) -> [usize; 2] {
    let mut counts = [0usize; 2];
    for rule in rules {
        match &rule.peer {
            Peer::Cidr4(_) => counts[0] += 1,
            Peer::Cidr6(_) => counts[1] += 1,
            Peer::Group(_) => {
                counts[0] += 1;
                counts[1] += 1;
            }
            Peer::PrefixList(id) => {
                if let Some(p) = checker.prefix_lists.values().find(|p| &p.id == id) {
                    counts[usize::from(!p.is_v4)] += p.max_entries;
                }
            }
        }
    }
    counts
}

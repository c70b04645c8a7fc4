//! `[[network_acl]]`: entries, their quota, and the subnets each ACL
//! names.

use std::collections::BTreeMap;

use palisade_policy::{IpCidr, NaclAction, NaclEntry, NaclId, PortKind, PortSpec, Protocol};

use super::{AclAssociations, Checker};
use crate::config::raw::{self, RawAcl, RawAclAction, RawAclEntry};
use crate::config::{DEFAULT_NAME, NetworkAcl};
use crate::model::Ec2ErrorCode;
use crate::model::default_acl_entries;
use crate::model::ids::{ObjectKind, scoped_key};

impl Checker {
    /// Builds every VPC's default ACL (or its declared replacement) and the
    /// custom ACLs; returns them and, per subnet name, the ACL named by an
    /// ACL's `subnets` list (with the key that named it).
    pub(super) fn network_acls(
        &mut self,
        raws: &[RawAcl],
        subnets: &[raw::RawSubnet],
    ) -> (Vec<NetworkAcl>, AclAssociations) {
        let mut seen: Vec<BTreeMap<String, String>> = vec![BTreeMap::new(); self.vpcs.len()];
        let mut declared: Vec<Vec<(usize, &RawAcl)>> = vec![Vec::new(); self.vpcs.len()];
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("network_acl[{index}]");
            if !self.name(&format!("{key}.name"), &raw.name) {
                continue;
            }
            let Some(vpc) = self.vpc_ref(&format!("{key}.vpc"), &raw.vpc) else {
                continue;
            };
            if self
                .unique(&mut seen[vpc], &key, &raw.name, "network ACL")
                .is_none()
            {
                continue;
            }
            declared[vpc].push((index, raw));
        }
        let subnet_vpc: BTreeMap<&str, &str> = subnets
            .iter()
            .map(|s| (s.name.as_str(), s.vpc.as_str()))
            .collect();
        let mut out = Vec::new();
        let mut acl_of_subnet = AclAssociations::new();
        for (vpc, declared) in declared.into_iter().enumerate() {
            let vpc_name = self.vpcs[vpc].name.clone();
            let has_ipv6 = self.vpcs[vpc].ipv6.is_some();
            let overrides_default = declared.iter().any(|(_, r)| r.name == DEFAULT_NAME);
            if !overrides_default {
                out.push(NetworkAcl {
                    name: DEFAULT_NAME.to_owned(),
                    id: NaclId(
                        self.assign(ObjectKind::NetworkAcl, &scoped_key(&vpc_name, DEFAULT_NAME)),
                    ),
                    vpc: self.vpcs[vpc].id.clone(),
                    is_default: true,
                    entries: default_acl_entries(has_ipv6),
                });
            }
            let count = declared.len() + usize::from(!overrides_default);
            if count > self.quotas.network_acls_per_vpc {
                let message = format!(
                    "VPC {vpc_name:?} has {count} network ACLs (the default one included); the quota is {}",
                    self.quotas.network_acls_per_vpc
                );
                self.report("network_acl", message);
            }
            for (index, raw) in declared {
                let key = format!("network_acl[{index}]");
                let is_default = raw.name == DEFAULT_NAME;
                let id =
                    NaclId(self.assign(ObjectKind::NetworkAcl, &scoped_key(&vpc_name, &raw.name)));
                let entries = match &raw.entry {
                    Some(entries) => self.acl_entries(&key, entries),
                    None if is_default => default_acl_entries(has_ipv6),
                    // A new custom ACL denies everything until entries are added.
                    None => Vec::new(),
                };
                for (i, subnet) in raw.subnets.iter().enumerate() {
                    let subnet_key = format!("{key}.subnets[{i}]");
                    match subnet_vpc.get(subnet.as_str()) {
                        None => self.report(
                            subnet_key,
                            format!("no subnet named {subnet:?} ({code})", code = Ec2ErrorCode::InvalidSubnetIdNotFound),
                        ),
                        Some(v) if *v != vpc_name => self.report(
                            subnet_key,
                            format!(
                                "subnet {subnet:?} is in VPC {v:?}, not in this ACL's VPC {vpc_name:?}"
                            ),
                        ),
                        Some(_) => {
                            if let Some((_, _, first)) = acl_of_subnet.get(subnet) {
                                let message = format!(
                                    "subnet {subnet:?} is already associated by {first}; a subnet has exactly one network ACL"
                                );
                                self.report(subnet_key, message);
                            } else {
                                acl_of_subnet
                                    .insert(subnet.clone(), (id.clone(), vpc, subnet_key));
                            }
                        }
                    }
                }
                out.push(NetworkAcl {
                    name: raw.name.clone(),
                    id,
                    vpc: self.vpcs[vpc].id.clone(),
                    is_default,
                    entries,
                });
            }
        }
        (out, acl_of_subnet)
    }

    pub(super) fn acl_entries(&mut self, key: &str, raws: &[RawAclEntry]) -> Vec<NaclEntry> {
        let mut out = Vec::new();
        let mut numbers: BTreeMap<(bool, u16), usize> = BTreeMap::new();
        // [egress][family] counts for the quota.
        let mut counts = [[0usize; 2]; 2];
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("{key}.entry[{index}]");
            let rule_number = match u16::try_from(raw.rule_number) {
                Ok(n) if (1..=palisade_policy::MAX_NACL_RULE_NUMBER).contains(&n) => Some(n),
                _ => {
                    self.report(
                        format!("{key}.rule_number"),
                        format!(
                            "rule number {} is outside 1..32766 (32767 and 32768 are the catch-all `*` entries)",
                            raw.rule_number
                        ),
                    );
                    None
                }
            };
            if let Some(n) = rule_number {
                if let Some(first) = numbers.insert((raw.egress, n), index) {
                    let direction = if raw.egress { "egress" } else { "ingress" };
                    self.report(
                        format!("{key}.rule_number"),
                        format!(
                            "rule number {n} is already used by {direction} entry[{first}] ({code})", code = Ec2ErrorCode::NetworkAclEntryAlreadyExists),
                    );
                }
            }
            let protocol = self.protocol(&format!("{key}.protocol"), &raw.protocol);
            let cidr = match (&raw.cidr, &raw.ipv6_cidr) {
                (Some(c), None) => self.cidr_v4(&format!("{key}.cidr"), c).map(IpCidr::V4),
                (None, Some(c)) => self.cidr_v6(&format!("{key}.ipv6_cidr"), c).map(IpCidr::V6),
                _ => {
                    self.report(key.clone(), "needs exactly one of cidr and ipv6_cidr");
                    None
                }
            };
            let ports = protocol.and_then(|p| self.acl_ports(&key, p, raw));
            let (Some(rule_number), Some(protocol), Some(cidr), Some(ports)) =
                (rule_number, protocol, cidr, ports)
            else {
                continue;
            };
            counts[usize::from(raw.egress)][usize::from(!cidr.is_v4())] += 1;
            out.push(NaclEntry {
                rule_number,
                egress: raw.egress,
                protocol,
                cidr,
                ports,
                action: match raw.action {
                    RawAclAction::Allow => NaclAction::Allow,
                    RawAclAction::Deny => NaclAction::Deny,
                },
            });
        }
        for (egress, per_family) in counts.iter().enumerate() {
            for (v6, &count) in per_family.iter().enumerate() {
                if count > self.quotas.rules_per_network_acl {
                    let message = format!(
                        "{count} {} {} entries; the quota is {} per direction and family",
                        if v6 == 1 { "IPv6" } else { "IPv4" },
                        if egress == 1 { "egress" } else { "ingress" },
                        self.quotas.rules_per_network_acl
                    );
                    self.report(format!("{key}.entry"), message);
                }
            }
        }
        out
    }

    pub(super) fn acl_ports(
        &mut self,
        key: &str,
        protocol: Protocol,
        raw: &RawAclEntry,
    ) -> Option<PortSpec> {
        let has_ports = raw.from_port.is_some() || raw.to_port.is_some();
        let has_icmp = raw.icmp_type.is_some() || raw.icmp_code.is_some();
        match protocol.port_kind() {
            PortKind::Ports => {
                if has_icmp {
                    let field = if raw.icmp_type.is_some() {
                        "icmp_type"
                    } else {
                        "icmp_code"
                    };
                    self.report(
                        format!("{key}.{field}"),
                        "applies to icmp and icmpv6 entries only",
                    );
                }
                self.port_range(key, protocol, raw.from_port, raw.to_port)
            }
            PortKind::IcmpTypeCode => {
                if has_ports {
                    let field = if raw.from_port.is_some() {
                        "from_port"
                    } else {
                        "to_port"
                    };
                    self.report(
                        format!("{key}.{field}"),
                        "an ICMP entry takes icmp_type and icmp_code, not ports",
                    );
                }
                self.icmp_type_code(
                    key,
                    ("icmp_type", "icmp_code"),
                    raw.icmp_type,
                    raw.icmp_code,
                )
            }
            PortKind::Ignored => Some(PortSpec::Any),
        }
    }
}

//! From raw TOML to a [`Config`]: every semantic rule of the format, with
//! AWS's defaults applied on the way.
//!
//! Each check names the EC2 rule it mirrors (SEMANTICS.md) and, where EC2
//! has one, the error code a user would have seen from the API, so a
//! mistake in the file reads like the mistake it would be in AWS. The
//! checker reports and carries on: an object with a bad field is left out
//! of the result but its name stays known, so one typo does not cascade
//! into a page of "unknown reference" problems.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use palisade_config_check::{Problem, locate_and_order};
use palisade_policy::{
    CidrError, ConntrackTimeouts, EniId, IpCidr, Ipv4Cidr, Ipv6Cidr, NaclAction, NaclEntry, NaclId,
    Peer, PeeringId, PortKind, PortSpec, PrefixListId, Protocol, SgId, SgRule, SgRuleId, SubnetId,
    VpcId,
};

use super::error::ConfigError;
use super::raw::{
    self, RawAcl, RawAclAction, RawAclEntry, RawAppliance, RawConfig, RawEni, RawGroup,
    RawProtocol, RawQuotas, RawRule,
};
use super::{
    ApplianceSettings, BUILTIN_PROFILES, Config, DEFAULT_NAME, NetworkAcl, NetworkInterface,
    Peering, PrefixList, ProfileRef, Quotas, SecurityGroup, Subnet, Uplink, Vpc,
};
use crate::model::ids::{ObjectKind, object_id, rule_key, scoped_key};
use crate::model::{
    DEFAULT_GROUP_DESCRIPTION, IPV4_PREFIX_RANGE, MAX_TEXT, default_acl_entries,
    is_subnet_ipv6_prefix, is_vpc_ipv6_prefix,
};

pub(crate) fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    if let Err(syntax) = palisade_config_check::check_syntax(text) {
        return Err(ConfigError::Syntax {
            origin: origin.to_owned(),
            line: syntax.line,
            column: syntax.column,
            message: syntax.message,
        });
    }
    let invalid = |problems: Vec<Problem>| ConfigError::Invalid {
        origin: origin.to_owned(),
        problems,
    };
    let raw = raw::deserialize(text).map_err(|problem| invalid(vec![problem]))?;
    let mut checker = Checker::default();
    let mut config = checker.config(raw);
    if checker.problems.is_empty() {
        origin.clone_into(&mut config.origin);
        text.clone_into(&mut config.source);
        config.ids = checker.ids;
        Ok(config)
    } else {
        Err(invalid(locate_and_order(text, checker.problems)))
    }
}

/// What later checks need to know about a VPC.
struct VpcInfo {
    name: String,
    id: VpcId,
    cidr: Option<Ipv4Cidr>,
    ipv6: Option<Ipv6Cidr>,
}

/// What later checks need to know about a subnet.
struct SubnetInfo {
    vpc: usize,
    cidr: Option<Ipv4Cidr>,
    ipv6: Option<Ipv6Cidr>,
}

/// A prefix list as rules see it.
struct PrefixInfo {
    id: PrefixListId,
    is_v4: bool,
    max_entries: usize,
}

/// Per subnet name, the ACL whose `subnets` list names it: its id, VPC and
/// the key that named it.
type AclAssociations = BTreeMap<String, (NaclId, usize, String)>;

/// Rules of one group per `[direction][family]`, as quotas count them.
type RuleCounts = [[usize; 2]; 2];

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
    quotas: Quotas,
    ids: BTreeMap<(ObjectKind, String), String>,
    /// id → key, to catch the (2^-68) hash collision.
    id_owners: BTreeMap<String, String>,
    vpcs: Vec<VpcInfo>,
    vpc_index: BTreeMap<String, usize>,
    prefix_lists: BTreeMap<String, PrefixInfo>,
    /// Peered VPC pairs (both orders), whatever the peering's state.
    peered: BTreeSet<(usize, usize)>,
    /// `(vpc, group name)` of every group, defaults included.
    group_names: BTreeSet<(usize, String)>,
    /// Quota counts per group id.
    group_counts: BTreeMap<SgId, RuleCounts>,
}

impl Checker {
    fn report(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(key, message));
    }

    /// Derives (and remembers) the id of an object.
    fn assign(&mut self, kind: ObjectKind, key: &str) -> String {
        let id = object_id(kind, key);
        if let Some(owner) = self.id_owners.get(&id) {
            if owner != key {
                let message = format!(
                    "the derived id {id} collides with that of {owner:?}; rename one of them"
                );
                self.report("", message);
            }
        } else {
            self.id_owners.insert(id.clone(), key.to_owned());
        }
        self.ids.insert((kind, key.to_owned()), id.clone());
        id
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let appliance = self.appliance(raw.appliance);
        self.quotas = self.quotas(&raw.quotas);
        let vpcs = self.vpcs(&raw.vpc);
        let prefix_lists = self.prefix_lists(&raw.prefix_list);
        let peerings = self.peerings(&raw.peering);
        let (network_acls, acl_of_subnet) = self.network_acls(&raw.network_acl, &raw.subnet);
        let (subnets, subnet_infos) = self.subnets(&raw.subnet, &acl_of_subnet);
        let security_groups = self.security_groups(&raw.security_group);
        let enis = self.enis(&raw.eni, &subnet_infos);
        let uplink = raw.uplink.as_ref().and_then(|up| {
            let vlan = up.vlan.and_then(|v| self.vlan("uplink.vlan", v));
            let mac = self.mac("uplink.mac", &up.mac);
            self.nonempty("uplink.port", &up.port);
            Some(Uplink {
                port: up.port.clone(),
                vlan,
                mac: mac?,
            })
        });
        self.l2_collisions(&raw.eni, &enis, uplink.as_ref(), appliance.router_mac);
        Config {
            appliance,
            quotas: self.quotas,
            vpcs,
            subnets,
            security_groups,
            enis,
            network_acls,
            peerings,
            prefix_lists,
            uplink,
            origin: String::new(),
            source: String::new(),
            ids: BTreeMap::new(),
        }
    }

    fn appliance(&mut self, raw: RawAppliance) -> ApplianceSettings {
        let defaults = ApplianceSettings::default();
        let profile = if let Some(name) = raw.profile.strip_prefix("builtin:") {
            if !BUILTIN_PROFILES.contains(&name) {
                self.report(
                    "appliance.profile",
                    format!(
                        "no built-in profile {name:?}; built-in profiles: {}",
                        BUILTIN_PROFILES.join(", ")
                    ),
                );
            }
            ProfileRef::Builtin(name.to_owned())
        } else {
            self.nonempty("appliance.profile", &raw.profile);
            ProfileRef::Path(PathBuf::from(&raw.profile))
        };
        if let Some(workers) = &raw.workers {
            if workers.is_empty() {
                self.report("appliance.workers", "must list at least one core, e.g. [1]");
            }
            let mut seen = BTreeSet::new();
            for (index, core) in workers.iter().enumerate() {
                if !seen.insert(core) {
                    self.report(
                        format!("appliance.workers[{index}]"),
                        format!("core {core} is listed twice"),
                    );
                }
            }
        }
        self.nonempty("appliance.state_dir", &raw.state_dir);
        let mut address = |key: &str, text: &str, default| {
            text.parse().unwrap_or_else(|_| {
                self.report(
                    key,
                    format!("{text:?} is not an ADDRESS:PORT, e.g. \"127.0.0.1:8080\""),
                );
                default
            })
        };
        let api_listen = address("appliance.api_listen", &raw.api_listen, defaults.api_listen);
        let metrics_listen = address(
            "appliance.metrics_listen",
            &raw.metrics_listen,
            defaults.metrics_listen,
        );
        if raw.max_flows_per_worker == 0 {
            self.report(
                "appliance.max_flows_per_worker",
                "must be at least 1; a worker with no flow table drops every new flow",
            );
        }
        let router_mac = self
            .mac("appliance.router_mac", &raw.router_mac)
            .unwrap_or(defaults.router_mac);
        if raw.account_id.len() != 12 || !raw.account_id.bytes().all(|b| b.is_ascii_digit()) {
            self.report(
                "appliance.account_id",
                format!("{:?} is not an AWS account id (12 digits)", raw.account_id),
            );
        }
        let access_key = match (raw.access_key_id, raw.secret_access_key) {
            (Some(id), Some(secret)) => {
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    self.report(
                        "appliance.access_key_id",
                        "must be letters and digits, e.g. \"AKIAIOSFODNN7EXAMPLE\"",
                    );
                }
                if secret.is_empty() || secret.bytes().any(|b| !b.is_ascii_graphic()) {
                    self.report(
                        "appliance.secret_access_key",
                        "must be non-empty printable ASCII without spaces",
                    );
                }
                Some((id, secret))
            }
            (None, None) => None,
            (Some(_), None) => {
                self.report(
                    "appliance.secret_access_key",
                    "is required when access_key_id is set (both or neither)",
                );
                None
            }
            (None, Some(_)) => {
                self.report(
                    "appliance.access_key_id",
                    "is required when secret_access_key is set (both or neither)",
                );
                None
            }
        };
        ApplianceSettings {
            access_key,
            profile,
            workers: raw.workers,
            state_dir: PathBuf::from(raw.state_dir),
            api_listen,
            metrics_listen,
            max_flows_per_worker: raw.max_flows_per_worker,
            router_mac,
            account_id: raw.account_id,
        }
    }

    fn quotas(&mut self, raw: &RawQuotas) -> Quotas {
        let defaults = Quotas::default();
        let mut quota = |key: &str, value: Option<usize>, default: usize, max: usize| {
            let value = value.unwrap_or(default);
            if value == 0 || value > max {
                self.report(
                    format!("quotas.{key}"),
                    format!("must be between 1 and {max}, got {value}"),
                );
            }
            value
        };
        Quotas {
            rules_per_group: quota(
                "rules_per_group",
                raw.rules_per_group,
                defaults.rules_per_group,
                Quotas::MAX_RULES,
            ),
            groups_per_eni: quota(
                "groups_per_eni",
                raw.groups_per_eni,
                defaults.groups_per_eni,
                Quotas::MAX_GROUPS_PER_ENI,
            ),
            rules_per_eni: quota(
                "rules_per_eni",
                raw.rules_per_eni,
                defaults.rules_per_eni,
                Quotas::MAX_RULES,
            ),
            groups_per_vpc: quota(
                "groups_per_vpc",
                raw.groups_per_vpc,
                defaults.groups_per_vpc,
                usize::MAX,
            ),
            network_acls_per_vpc: quota(
                "network_acls_per_vpc",
                raw.network_acls_per_vpc,
                defaults.network_acls_per_vpc,
                usize::MAX,
            ),
            rules_per_network_acl: quota(
                "rules_per_network_acl",
                raw.rules_per_network_acl,
                defaults.rules_per_network_acl,
                Quotas::MAX_NACL_RULES,
            ),
        }
    }

    // ----- names and values -----

    fn nonempty(&mut self, key: &str, text: &str) {
        if text.trim().is_empty() {
            self.report(key, "must not be empty");
        }
    }

    /// Checks an object name; `false` if it cannot be used as one.
    fn name(&mut self, key: &str, name: &str) -> bool {
        if name.is_empty() {
            self.report(key, "must not be empty");
            false
        } else if name.chars().count() > MAX_TEXT {
            self.report(key, format!("is longer than {MAX_TEXT} characters"));
            false
        } else if name.contains('/') {
            self.report(
                key,
                format!(
                    "{name:?} contains '/', which separates a VPC's name from a group's in references"
                ),
            );
            false
        } else {
            true
        }
    }

    /// Reports the second and later uses of a name within one scope.
    fn unique<'a>(
        &mut self,
        seen: &mut BTreeMap<String, String>,
        key: &str,
        name: &'a str,
        kind: &str,
    ) -> Option<&'a str> {
        if let Some(first) = seen.get(name) {
            let message = format!("duplicate {kind} name {name:?}, first used at {first}");
            self.report(format!("{key}.name"), message);
            None
        } else {
            seen.insert(name.to_owned(), key.to_owned());
            Some(name)
        }
    }

    fn cidr_v4(&mut self, key: &str, text: &str) -> Option<Ipv4Cidr> {
        if text.contains(':') {
            self.report(
                key,
                format!("{text:?} is an IPv6 block; write it as ipv6_cidr"),
            );
            return None;
        }
        text.parse::<Ipv4Cidr>()
            .map_err(|error| self.report(key, cidr_message(text, &error)))
            .ok()
    }

    fn cidr_v6(&mut self, key: &str, text: &str) -> Option<Ipv6Cidr> {
        if !text.contains(':') {
            self.report(key, format!("{text:?} is an IPv4 block; write it as cidr"));
            return None;
        }
        text.parse::<Ipv6Cidr>()
            .map_err(|error| self.report(key, cidr_message(text, &error)))
            .ok()
    }

    fn mac(&mut self, key: &str, text: &str) -> Option<[u8; 6]> {
        let Some(mac) = parse_mac(text) else {
            self.report(
                key,
                format!("{text:?} is not a MAC address (six hex pairs: \"02:00:00:00:00:01\")"),
            );
            return None;
        };
        if mac[0] & 1 != 0 {
            self.report(
                key,
                format!("{text} is a multicast address; it must be unicast"),
            );
            return None;
        }
        if mac == [0; 6] {
            self.report(key, "00:00:00:00:00:00 is not a usable address");
            return None;
        }
        Some(mac)
    }

    fn vlan(&mut self, key: &str, vlan: i64) -> Option<u16> {
        match u16::try_from(vlan) {
            Ok(v) if (1..=4094).contains(&v) => Some(v),
            _ => {
                self.report(
                    key,
                    format!(
                        "VLAN {vlan} is outside 1..4094 (0 is priority tagging, 4095 is reserved)"
                    ),
                );
                None
            }
        }
    }

    fn protocol(&mut self, key: &str, raw: &RawProtocol) -> Option<Protocol> {
        let parsed = match raw {
            RawProtocol::Text(text) => match text.as_str() {
                "tcp" => Some(Protocol::Tcp),
                "udp" => Some(Protocol::Udp),
                "icmp" => Some(Protocol::Icmp),
                "icmpv6" => Some(Protocol::Icmpv6),
                "-1" | "all" => Some(Protocol::All),
                other => other.parse::<i64>().ok().and_then(protocol_number),
            },
            RawProtocol::Number(number) => protocol_number(*number),
        };
        if parsed.is_none() {
            let shown = match raw {
                RawProtocol::Text(text) => format!("{text:?}"),
                RawProtocol::Number(number) => number.to_string(),
            };
            self.report(
                key,
                format!(
                    "unknown protocol {shown}; expected \"tcp\", \"udp\", \"icmp\", \"icmpv6\", \"-1\" (all) or a number 0..255"
                ),
            );
        }
        parsed
    }

    /// Reads a `from_port`/`to_port` pair for tcp/udp: both required, each
    /// 0..65535, from <= to.
    fn port_range(
        &mut self,
        key: &str,
        protocol: Protocol,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Option<PortSpec> {
        let name = protocol_name(protocol);
        let (Some(from), Some(to)) = (from, to) else {
            let missing = if from.is_none() {
                "from_port"
            } else {
                "to_port"
            };
            self.report(
                format!("{key}.{missing}"),
                format!("{name} needs from_port and to_port"),
            );
            return None;
        };
        let mut port = |field: &str, value: i64| {
            let port = u16::try_from(value).ok();
            if port.is_none() {
                self.report(
                    format!("{key}.{field}"),
                    format!("port {value} is outside 0..65535"),
                );
            }
            port
        };
        let (from, to) = (port("from_port", from)?, port("to_port", to)?);
        if from > to {
            self.report(
                format!("{key}.from_port"),
                format!("from_port {from} is above to_port {to}"),
            );
            return None;
        }
        Some(PortSpec::Range { from, to })
    }

    /// Reads an ICMP type/code pair written under `type_key`/`code_key`:
    /// both or neither (all), each -1 (all) or 0..255, a type of -1 only
    /// with a code of -1.
    fn icmp_type_code(
        &mut self,
        key: &str,
        (type_key, code_key): (&str, &str),
        icmp_type: Option<i64>,
        code: Option<i64>,
    ) -> Option<PortSpec> {
        let all = PortSpec::Icmp {
            icmp_type: None,
            code: None,
        };
        let (icmp_type, code) = match (icmp_type, code) {
            (None, None) => return Some(all),
            (Some(t), Some(c)) => (t, c),
            (t, _) => {
                let missing = if t.is_none() { type_key } else { code_key };
                self.report(
                    format!("{key}.{missing}"),
                    format!(
                        "give both {type_key} (ICMP type) and {code_key} (ICMP code), -1 for all, or neither"
                    ),
                );
                return None;
            }
        };
        let mut field = |field: &str, value: i64| -> Option<Option<u8>> {
            if value == -1 {
                Some(None)
            } else if let Ok(v) = u8::try_from(value) {
                Some(Some(v))
            } else {
                self.report(
                    format!("{key}.{field}"),
                    format!("{value} is not -1 (all) or an ICMP value 0..255"),
                );
                None
            }
        };
        let (icmp_type, code) = (field(type_key, icmp_type)?, field(code_key, code)?);
        if icmp_type.is_none() && code.is_some() {
            self.report(
                format!("{key}.{code_key}"),
                format!("an ICMP type of -1 (all types) needs a {code_key} of -1 (all codes)"),
            );
            return None;
        }
        Some(PortSpec::Icmp { icmp_type, code })
    }

    // ----- objects -----

    fn vpcs(&mut self, raws: &[raw::RawVpc]) -> Vec<Vpc> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("vpc[{index}]");
            if !self.name(&format!("{key}.name"), &raw.name)
                || self.unique(&mut seen, &key, &raw.name, "VPC").is_none()
            {
                continue;
            }
            let cidr = self.cidr_v4(&format!("{key}.cidr"), &raw.cidr);
            if let Some(c) = cidr {
                if !IPV4_PREFIX_RANGE.contains(&c.prefix_len()) {
                    self.report(
                        format!("{key}.cidr"),
                        format!("{c}: a VPC's IPv4 block must be between /16 and /28"),
                    );
                }
            }
            let ipv6 = raw
                .ipv6_cidr
                .as_ref()
                .and_then(|t| self.cidr_v6(&format!("{key}.ipv6_cidr"), t));
            if let Some(c) = ipv6 {
                let len = c.prefix_len();
                if !is_vpc_ipv6_prefix(len) {
                    self.report(
                        format!("{key}.ipv6_cidr"),
                        format!("{c}: a VPC's IPv6 block must be /44 to /60 in steps of 4"),
                    );
                }
            }
            let id = VpcId(self.assign(ObjectKind::Vpc, &raw.name));
            let default_group = SgId(self.assign(
                ObjectKind::SecurityGroup,
                &scoped_key(&raw.name, DEFAULT_NAME),
            ));
            let default_network_acl =
                NaclId(self.assign(ObjectKind::NetworkAcl, &scoped_key(&raw.name, DEFAULT_NAME)));
            self.vpc_index.insert(raw.name.clone(), self.vpcs.len());
            self.vpcs.push(VpcInfo {
                name: raw.name.clone(),
                id: id.clone(),
                cidr,
                ipv6,
            });
            if let Some(cidr) = cidr {
                out.push(Vpc {
                    name: raw.name.clone(),
                    id,
                    cidr,
                    ipv6_cidr: ipv6,
                    default_group,
                    default_network_acl,
                });
            }
        }
        out
    }

    fn vpc_ref(&mut self, key: &str, name: &str) -> Option<usize> {
        let found = self.vpc_index.get(name).copied();
        if found.is_none() {
            self.report(
                key,
                format!("no VPC named {name:?} (InvalidVpcID.NotFound)"),
            );
        }
        found
    }

    fn prefix_lists(&mut self, raws: &[raw::RawPrefixList]) -> Vec<PrefixList> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("prefix_list[{index}]");
            if !self.name(&format!("{key}.name"), &raw.name)
                || self
                    .unique(&mut seen, &key, &raw.name, "prefix list")
                    .is_none()
            {
                continue;
            }
            let mut cidrs = Vec::new();
            let mut families = BTreeSet::new();
            for (i, text) in raw.cidrs.iter().enumerate() {
                let entry_key = format!("{key}.cidrs[{i}]");
                match text.parse::<IpCidr>() {
                    Ok(c) => {
                        if cidrs.contains(&c) {
                            self.report(entry_key, format!("{c} is listed twice"));
                        } else {
                            families.insert(c.is_v4());
                            cidrs.push(c);
                        }
                    }
                    Err(error) => self.report(entry_key, cidr_message(text, &error)),
                }
            }
            if families.len() > 1 {
                self.report(
                    format!("{key}.cidrs"),
                    "mixes IPv4 and IPv6 blocks; a prefix list has one address family",
                );
            }
            let max_entries = match usize::try_from(raw.max_entries) {
                Ok(n) if n >= 1 => n,
                _ => {
                    self.report(
                        format!("{key}.max_entries"),
                        format!("must be at least 1, got {}", raw.max_entries),
                    );
                    continue;
                }
            };
            if cidrs.len() > max_entries {
                self.report(
                    format!("{key}.max_entries"),
                    format!(
                        "the list has {} entries, more than its max_entries {max_entries}",
                        cidrs.len()
                    ),
                );
            }
            let id = PrefixListId(self.assign(ObjectKind::PrefixList, &raw.name));
            self.prefix_lists.insert(
                raw.name.clone(),
                PrefixInfo {
                    id: id.clone(),
                    is_v4: !families.contains(&false),
                    max_entries,
                },
            );
            out.push(PrefixList {
                name: raw.name.clone(),
                id,
                cidrs,
                max_entries,
            });
        }
        out
    }

    fn peerings(&mut self, raws: &[raw::RawPeering]) -> Vec<Peering> {
        let mut seen = BTreeMap::new();
        let mut pairs = BTreeMap::new();
        let mut out = Vec::new();
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("peering[{index}]");
            if !self.name(&format!("{key}.name"), &raw.name)
                || self.unique(&mut seen, &key, &raw.name, "peering").is_none()
            {
                continue;
            }
            let [a, b] = raw.vpcs.as_slice() else {
                self.report(
                    format!("{key}.vpcs"),
                    format!("must name exactly two VPCs, got {}", raw.vpcs.len()),
                );
                continue;
            };
            let a_index = self.vpc_ref(&format!("{key}.vpcs[0]"), a);
            let b_index = self.vpc_ref(&format!("{key}.vpcs[1]"), b);
            let (Some(a_index), Some(b_index)) = (a_index, b_index) else {
                continue;
            };
            if a_index == b_index {
                self.report(format!("{key}.vpcs"), "a VPC cannot be peered with itself");
                continue;
            }
            let pair = (a_index.min(b_index), a_index.max(b_index));
            if let Some(first) = pairs.insert(pair, key.clone()) {
                self.report(
                    format!("{key}.vpcs"),
                    format!("VPCs {a:?} and {b:?} are already peered by {first}"),
                );
                continue;
            }
            self.peered.insert((a_index, b_index));
            self.peered.insert((b_index, a_index));
            out.push(Peering {
                name: raw.name.clone(),
                id: PeeringId(self.assign(ObjectKind::Peering, &raw.name)),
                vpc_a: self.vpcs[a_index].id.clone(),
                vpc_b: self.vpcs[b_index].id.clone(),
                active: raw.active,
            });
        }
        out
    }

    /// Builds every VPC's default ACL (or its declared replacement) and the
    /// custom ACLs; returns them and, per subnet name, the ACL named by an
    /// ACL's `subnets` list (with the key that named it).
    fn network_acls(
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
                            format!("no subnet named {subnet:?} (InvalidSubnetID.NotFound)"),
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

    fn acl_entries(&mut self, key: &str, raws: &[RawAclEntry]) -> Vec<NaclEntry> {
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
                            "rule number {n} is already used by {direction} entry[{first}] (NetworkAclEntryAlreadyExists)"
                        ),
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

    fn acl_ports(&mut self, key: &str, protocol: Protocol, raw: &RawAclEntry) -> Option<PortSpec> {
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

    fn subnets(
        &mut self,
        raws: &[raw::RawSubnet],
        acl_of_subnet: &AclAssociations,
    ) -> (Vec<Subnet>, BTreeMap<String, SubnetInfo>) {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        let mut infos: BTreeMap<String, SubnetInfo> = BTreeMap::new();
        // Per VPC: (key, block) of each subnet, for the overlap check.
        let mut blocks: BTreeMap<usize, Vec<(String, IpCidr)>> = BTreeMap::new();
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("subnet[{index}]");
            if !self.name(&format!("{key}.name"), &raw.name)
                || self.unique(&mut seen, &key, &raw.name, "subnet").is_none()
            {
                continue;
            }
            let Some(vpc) = self.vpc_ref(&format!("{key}.vpc"), &raw.vpc) else {
                continue;
            };
            let vpc_cidr = self.vpcs[vpc].cidr;
            let vpc_ipv6 = self.vpcs[vpc].ipv6;
            let cidr = self.cidr_v4(&format!("{key}.cidr"), &raw.cidr);
            if let Some(c) = cidr {
                if !IPV4_PREFIX_RANGE.contains(&c.prefix_len()) {
                    self.report(
                        format!("{key}.cidr"),
                        format!("{c}: a subnet's IPv4 block must be between /16 and /28"),
                    );
                }
                if let Some(v) = vpc_cidr.filter(|v| !v.contains_cidr(&c)) {
                    self.report(
                        format!("{key}.cidr"),
                        format!(
                            "The CIDR '{c}' is invalid: it is not within VPC {:?}'s {v} (InvalidSubnet.Range)",
                            raw.vpc
                        ),
                    );
                }
            }
            let ipv6 = raw
                .ipv6_cidr
                .as_ref()
                .and_then(|t| self.cidr_v6(&format!("{key}.ipv6_cidr"), t));
            if let Some(c) = ipv6 {
                let len = c.prefix_len();
                if !is_subnet_ipv6_prefix(len) {
                    self.report(
                        format!("{key}.ipv6_cidr"),
                        format!("{c}: a subnet's IPv6 block must be /44 to /64 in steps of 4"),
                    );
                }
                match vpc_ipv6 {
                    None if self.vpcs[vpc].cidr.is_some() => self.report(
                        format!("{key}.ipv6_cidr"),
                        format!("VPC {:?} has no IPv6 block (ipv6_cidr)", raw.vpc),
                    ),
                    Some(v) if !v.contains_cidr(&c) => self.report(
                        format!("{key}.ipv6_cidr"),
                        format!(
                            "The CIDR '{c}' is invalid: it is not within VPC {:?}'s {v} (InvalidSubnet.Range)",
                            raw.vpc
                        ),
                    ),
                    _ => {}
                }
            }
            for block in cidr.map(IpCidr::V4).into_iter().chain(ipv6.map(IpCidr::V6)) {
                let field = if block.is_v4() { "cidr" } else { "ipv6_cidr" };
                let others = blocks.entry(vpc).or_default();
                if let Some((other, other_block)) =
                    others.iter().find(|(_, b)| blocks_overlap(*b, block))
                {
                    let message = format!(
                        "{block} overlaps {other}'s {other_block} in the same VPC (InvalidSubnet.Conflict)"
                    );
                    self.report(format!("{key}.{field}"), message);
                } else {
                    others.push((key.clone(), block));
                }
            }
            let vpc_name = self.vpcs[vpc].name.clone();
            let by_acl_list = acl_of_subnet.get(&raw.name);
            let network_acl = match (&raw.network_acl, by_acl_list) {
                (Some(name), listed) => {
                    let scoped = scoped_key(&vpc_name, name);
                    let found = self.ids.get(&(ObjectKind::NetworkAcl, scoped)).cloned();
                    match (found, listed) {
                        (None, _) => {
                            self.report(
                                format!("{key}.network_acl"),
                                format!("no network ACL named {name:?} in VPC {vpc_name:?}"),
                            );
                            None
                        }
                        (Some(id), Some((listed_id, _, listed_key))) if listed_id.0 != id => {
                            self.report(
                                format!("{key}.network_acl"),
                                format!(
                                    "{listed_key} associates this subnet with another ACL; a subnet has exactly one network ACL"
                                ),
                            );
                            None
                        }
                        (Some(id), _) => Some(NaclId(id)),
                    }
                }
                (None, Some((id, _, _))) => Some(id.clone()),
                (None, None) => Some(NaclId(object_id(
                    ObjectKind::NetworkAcl,
                    &scoped_key(&vpc_name, DEFAULT_NAME),
                ))),
            };
            let id = SubnetId(self.assign(ObjectKind::Subnet, &raw.name));
            infos.insert(raw.name.clone(), SubnetInfo { vpc, cidr, ipv6 });
            if let (Some(cidr), Some(network_acl)) = (cidr, network_acl) {
                out.push(Subnet {
                    name: raw.name.clone(),
                    id,
                    vpc: self.vpcs[vpc].id.clone(),
                    cidr,
                    ipv6_cidr: ipv6,
                    network_acl,
                });
            }
        }
        (out, infos)
    }

    fn security_groups(&mut self, raws: &[RawGroup]) -> Vec<SecurityGroup> {
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
                        "{:?}: group names cannot start with \"sg-\" (InvalidParameterValue)",
                        raw.name
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
                    "VPC {vpc_name:?} has {count} security groups (the default one included); the quota is {} (SecurityGroupLimitExceeded)",
                    self.quotas.groups_per_vpc
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
    fn default_group(&mut self, vpc: usize, declared: Option<(&str, &RawGroup)>) -> SecurityGroup {
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
    fn generated_rule(
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

    fn check_group_quota(&mut self, key: &str, counts: RuleCounts) {
        for (egress, per_family) in counts.iter().enumerate() {
            for (v6, &count) in per_family.iter().enumerate() {
                if count > self.quotas.rules_per_group {
                    let direction = if egress == 1 { "egress" } else { "ingress" };
                    let message = format!(
                        "{count} {} {direction} rules (a prefix list counts as its max_entries); the quota is {} (RulesPerSecurityGroupLimitExceeded)",
                        if v6 == 1 { "IPv6" } else { "IPv4" },
                        self.quotas.rules_per_group
                    );
                    self.report(format!("{key}.{direction}"), message);
                }
            }
        }
    }

    fn rules(
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
                        "the same permission as {direction}[{first}] (InvalidPermission.Duplicate)"
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

    fn peer(&mut self, key: &str, vpc: usize, raw: &RawRule) -> Option<Peer> {
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
    fn group_ref(&mut self, key: &str, vpc: usize, text: &str, allow_peered: bool) -> Option<SgId> {
        let (target_vpc, name) = match text.split_once('/') {
            Some((vpc_name, name)) => (self.vpc_ref(key, vpc_name)?, name),
            None => (vpc, text),
        };
        let target_vpc_name = self.vpcs[target_vpc].name.clone();
        if !self.group_names.contains(&(target_vpc, name.to_owned())) {
            self.report(
                key,
                format!("no security group named {name:?} in VPC {target_vpc_name:?} (InvalidGroup.NotFound)"),
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

    fn enis(
        &mut self,
        raws: &[RawEni],
        subnets: &BTreeMap<String, SubnetInfo>,
    ) -> Vec<NetworkInterface> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        // (vpc, address) → the key of the ENI address that owns it.
        let mut owners: BTreeMap<(usize, IpAddr), String> = BTreeMap::new();
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("eni[{index}]");
            let named = self.name(&format!("{key}.name"), &raw.name)
                && self
                    .unique(&mut seen, &key, &raw.name, "network interface")
                    .is_some();
            self.nonempty(&format!("{key}.port"), &raw.port);
            let vlan = raw.vlan.and_then(|v| self.vlan(&format!("{key}.vlan"), v));
            let vlan_ok = raw.vlan.is_none() || vlan.is_some();
            let mac = self.mac(&format!("{key}.mac"), &raw.mac);
            let Some(subnet) = subnets.get(&raw.subnet) else {
                self.report(
                    format!("{key}.subnet"),
                    format!(
                        "no subnet named {:?} (InvalidSubnetID.NotFound)",
                        raw.subnet
                    ),
                );
                continue;
            };
            let vpc = subnet.vpc;
            let private_ips = self.eni_ips(&key, raw, subnet, &mut owners);
            let groups = self.eni_groups(&key, vpc, raw.groups.as_deref());
            let timeouts = self.timeouts(&key, raw);
            let (true, Some(mac), Some(private_ips), Some(groups), Some(timeouts), true) =
                (named, mac, private_ips, groups, timeouts, vlan_ok)
            else {
                continue;
            };
            out.push(NetworkInterface {
                name: raw.name.clone(),
                id: EniId(self.assign(ObjectKind::NetworkInterface, &raw.name)),
                subnet: SubnetId(object_id(ObjectKind::Subnet, &raw.subnet)),
                port: raw.port.clone(),
                vlan,
                mac,
                private_ips,
                groups,
                source_dest_check: raw.source_dest_check,
                timeouts,
            });
        }
        out
    }

    fn eni_ips(
        &mut self,
        key: &str,
        raw: &RawEni,
        subnet: &SubnetInfo,
        owners: &mut BTreeMap<(usize, IpAddr), String>,
    ) -> Option<Vec<IpAddr>> {
        let mut ok = true;
        let mut ips = Vec::new();
        for (i, text) in raw.ips.iter().enumerate() {
            let ip_key = format!("{key}.ips[{i}]");
            let Ok(ip) = text.parse::<IpAddr>() else {
                self.report(ip_key, format!("{text:?} is not an IP address"));
                ok = false;
                continue;
            };
            let block = match ip {
                IpAddr::V4(_) => subnet.cidr.map(IpCidr::V4),
                IpAddr::V6(_) => subnet.ipv6.map(IpCidr::V6),
            };
            let Some(block) = block else {
                if ip.is_ipv6() && subnet.cidr.is_some() {
                    self.report(
                        ip_key,
                        format!("{ip} is IPv6 but subnet {:?} has no ipv6_cidr", raw.subnet),
                    );
                }
                ok = false;
                continue;
            };
            if !block.contains(ip) {
                self.report(
                    ip_key,
                    format!(
                        "{ip} is not in subnet {:?}'s {block} (InvalidParameterValue)",
                        raw.subnet
                    ),
                );
                ok = false;
                continue;
            }
            if is_reserved(block, ip) {
                self.report(
                    ip_key,
                    format!(
                        "{ip} is reserved by AWS: the first four addresses and the last one of {block} cannot be assigned"
                    ),
                );
                ok = false;
                continue;
            }
            if let Some(first) = owners.get(&(subnet.vpc, ip)) {
                self.report(
                    ip_key,
                    format!("{ip} is already assigned at {first} (InvalidIPAddress.InUse)"),
                );
                ok = false;
                continue;
            }
            owners.insert((subnet.vpc, ip), ip_key);
            ips.push(ip);
        }
        if ok && !ips.iter().any(IpAddr::is_ipv4) {
            self.report(
                format!("{key}.ips"),
                "needs an IPv4 address: every ENI has a primary private IPv4 address",
            );
            ok = false;
        }
        ok.then_some(ips)
    }

    fn eni_groups(
        &mut self,
        key: &str,
        vpc: usize,
        written: Option<&[String]>,
    ) -> Option<Vec<SgId>> {
        let Some(written) = written else {
            // An ENI created without a group gets the VPC's default group.
            return Some(vec![SgId(object_id(
                ObjectKind::SecurityGroup,
                &scoped_key(&self.vpcs[vpc].name, DEFAULT_NAME),
            ))]);
        };
        if written.is_empty() {
            self.report(
                format!("{key}.groups"),
                "an ENI needs at least one group; leave the key out for the VPC's default group",
            );
            return None;
        }
        if written.len() > self.quotas.groups_per_eni {
            self.report(
                format!("{key}.groups"),
                format!(
                    "{} groups; the quota is {} per ENI (SecurityGroupsPerInterfaceLimitExceeded)",
                    written.len(),
                    self.quotas.groups_per_eni
                ),
            );
        }
        let mut ok = true;
        let mut groups: Vec<SgId> = Vec::new();
        for (i, name) in written.iter().enumerate() {
            let group_key = format!("{key}.groups[{i}]");
            match self.group_ref(&group_key, vpc, name, false) {
                Some(id) if groups.contains(&id) => {
                    self.report(group_key, format!("group {name:?} is listed twice"));
                    ok = false;
                }
                Some(id) => groups.push(id),
                None => ok = false,
            }
        }
        // Every rule of every attached group is in the ENI's classifier.
        for (egress, direction) in ["ingress", "egress"].iter().enumerate() {
            for (v6, family) in ["IPv4", "IPv6"].iter().enumerate() {
                let total: usize = groups
                    .iter()
                    .filter_map(|g| self.group_counts.get(g))
                    .map(|counts| counts[egress][v6])
                    .sum();
                if total > self.quotas.rules_per_eni {
                    let message = format!(
                        "its groups have {total} {family} {direction} rules together; the quota is {} per ENI",
                        self.quotas.rules_per_eni
                    );
                    self.report(format!("{key}.groups"), message);
                    ok = false;
                }
            }
        }
        ok.then_some(groups)
    }

    fn timeouts(&mut self, key: &str, raw: &RawEni) -> Option<ConntrackTimeouts> {
        let defaults = ConntrackTimeouts::default();
        let mut ok = true;
        let mut field = |name: &str,
                         aws: &str,
                         value: Option<i64>,
                         default: u32,
                         range: core::ops::RangeInclusive<u32>| {
            let Some(value) = value else { return default };
            match u32::try_from(value) {
                Ok(v) if range.contains(&v) => v,
                _ => {
                    self.report(
                        format!("{key}.conntrack.{name}"),
                        format!(
                            "{value} s is outside {}..{} s ({aws})",
                            range.start(),
                            range.end()
                        ),
                    );
                    ok = false;
                    default
                }
            }
        };
        let c = &raw.conntrack;
        let timeouts = ConntrackTimeouts {
            tcp_established: field(
                "tcp_established",
                "TcpEstablishedTimeout",
                c.tcp_established,
                defaults.tcp_established,
                ConntrackTimeouts::TCP_ESTABLISHED_RANGE,
            ),
            udp_stream: field(
                "udp_stream",
                "UdpStreamTimeout",
                c.udp_stream,
                defaults.udp_stream,
                ConntrackTimeouts::UDP_STREAM_RANGE,
            ),
            udp: field(
                "udp",
                "UdpTimeout",
                c.udp,
                defaults.udp,
                ConntrackTimeouts::UDP_RANGE,
            ),
        };
        ok.then_some(timeouts)
    }

    /// Frames are attributed to an ENI by (port, vlan, source MAC): two
    /// users of one triple, or an ENI using the router's own MAC, would
    /// make that ambiguous.
    fn l2_collisions(
        &mut self,
        raws: &[RawEni],
        enis: &[NetworkInterface],
        uplink: Option<&Uplink>,
        router_mac: [u8; 6],
    ) {
        let mut users: BTreeMap<(String, Option<u16>, [u8; 6]), String> = BTreeMap::new();
        let by_name: BTreeMap<&str, &NetworkInterface> =
            enis.iter().map(|e| (e.name.as_str(), e)).collect();
        for (index, raw) in raws.iter().enumerate() {
            let Some(eni) = by_name.get(raw.name.as_str()) else {
                continue;
            };
            let key = format!("eni[{index}].mac");
            if eni.mac == router_mac {
                self.report(
                    key.clone(),
                    "is the router's MAC (appliance.router_mac); ENIs need their own",
                );
            }
            let triple = (eni.port.clone(), eni.vlan, eni.mac);
            if let Some(first) = users.get(&triple) {
                let message = format!(
                    "{} on port {:?} vlan {} is already used by {first}",
                    format_mac(eni.mac),
                    eni.port,
                    show_vlan(eni.vlan)
                );
                self.report(key, message);
            } else {
                users.insert(triple, format!("eni[{index}]"));
            }
        }
        if let Some(up) = uplink {
            if let Some(first) = users.get(&(up.port.clone(), up.vlan, up.mac)) {
                let message = format!(
                    "{} on port {:?} vlan {} is already used by {first}; the uplink's next hop needs its own",
                    format_mac(up.mac),
                    up.port,
                    show_vlan(up.vlan)
                );
                self.report("uplink.mac", message);
            }
        }
    }
}

/// Quota counts of a rule list per family: a CIDR counts toward its
/// family, a prefix list as its `max_entries` toward its family, a group
/// reference as one toward both (**palisade**: a group's members may have
/// addresses of either family).
fn count_rules(checker: &Checker, rules: &[SgRule]) -> [usize; 2] {
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

fn protocol_number(number: i64) -> Option<Protocol> {
    if number == -1 {
        return Some(Protocol::All);
    }
    let n = u8::try_from(number).ok()?;
    // 6, 17, 1 and 58 mean the named protocols; one spelling per protocol
    // keeps duplicate detection and rule comparison honest.
    Some(match n {
        Protocol::TCP => Protocol::Tcp,
        Protocol::UDP => Protocol::Udp,
        Protocol::ICMP => Protocol::Icmp,
        Protocol::ICMPV6 => Protocol::Icmpv6,
        other => Protocol::Number(other),
    })
}

fn protocol_name(protocol: Protocol) -> String {
    match protocol {
        Protocol::All => "-1".to_owned(),
        Protocol::Tcp => "tcp".to_owned(),
        Protocol::Udp => "udp".to_owned(),
        Protocol::Icmp => "icmp".to_owned(),
        Protocol::Icmpv6 => "icmpv6".to_owned(),
        Protocol::Number(n) => format!("protocol {n}"),
    }
}

/// EC2's wording ("The CIDR '…' is invalid"), with the reason and, for host
/// bits, the block the user probably meant.
fn cidr_message(text: &str, error: &CidrError) -> String {
    let hint = match error {
        CidrError::HostBitsSet(_) => suggest_network(text)
            .map(|block| format!(" (did you mean {block}?)"))
            .unwrap_or_default(),
        _ => String::new(),
    };
    format!("The CIDR '{text}' is invalid: {error}{hint}")
}

/// The network block of `ADDRESS/LENGTH`, host bits cleared.
fn suggest_network(text: &str) -> Option<String> {
    let (addr, len) = text.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    Some(match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Ipv4Cidr::truncating(a, len).to_string(),
        IpAddr::V6(a) => Ipv6Cidr::truncating(a, len).to_string(),
    })
}

fn blocks_overlap(a: IpCidr, b: IpCidr) -> bool {
    match (a, b) {
        (IpCidr::V4(a), IpCidr::V4(b)) => a.contains_cidr(&b) || b.contains_cidr(&a),
        (IpCidr::V6(a), IpCidr::V6(b)) => a.contains_cidr(&b) || b.contains_cidr(&a),
        _ => false,
    }
}

/// AWS reserves the first four addresses (network, router, DNS, future
/// use) and the last one of every subnet block, IPv4 and IPv6 alike.
fn is_reserved(block: IpCidr, ip: IpAddr) -> bool {
    let (offset, last) = match (block, ip) {
        (IpCidr::V4(c), IpAddr::V4(a)) => {
            let (first, last) = c.range();
            (
                u128::from(u32::from(a).wrapping_sub(first)),
                u128::from(last.wrapping_sub(first)),
            )
        }
        (IpCidr::V6(c), IpAddr::V6(a)) => {
            let (first, last) = c.range();
            (u128::from(a).wrapping_sub(first), last.wrapping_sub(first))
        }
        _ => return false,
    };
    offset < 4 || offset == last
}

/// `aa:bb:cc:dd:ee:ff`, hex digits of either case.
pub(crate) fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for octet in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *octet = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

pub(crate) fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|octet| format!("{octet:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn show_vlan(vlan: Option<u16>) -> String {
    vlan.map_or_else(|| "untagged".to_owned(), |v| v.to_string())
}

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
use std::path::PathBuf;

use palisade_config_check::{Problem, locate_and_order};
use palisade_policy::{Ipv4Cidr, Ipv6Cidr, NaclId, PrefixListId, SgId, VpcId};

use super::error::ConfigError;
use super::raw::{self, RawAppliance, RawConfig, RawQuotas};
use super::{ApplianceSettings, BUILTIN_PROFILES, Config, ProfileRef, Quotas, Uplink};
mod fields;
mod network_acl;
mod network_interface;
mod prefix_list;
mod security_group;
mod subnet;
mod vpc;

use crate::model::ids::{ObjectKind, object_id};

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
        let region_ok = raw.region.split('-').count() >= 3
            && raw
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            self.report(
                "appliance.region",
                format!(
                    "{:?} is not an AWS region name, e.g. \"us-east-1\"",
                    raw.region
                ),
            );
        }
        let ipv6_pool = match raw.ipv6_pool.parse::<palisade_policy::Ipv6Cidr>() {
            Ok(pool) if pool.prefix_len() <= crate::model::AMAZON_IPV6_PREFIX => pool,
            Ok(pool) => {
                self.report(
                    "appliance.ipv6_pool",
                    format!("{pool} is smaller than the /56 each VPC takes from it"),
                );
                defaults.ipv6_pool
            }
            Err(_) => {
                self.report(
                    "appliance.ipv6_pool",
                    format!(
                        "{:?} is not a canonical IPv6 block, e.g. \"2600:1f00::/40\"",
                        raw.ipv6_pool
                    ),
                );
                defaults.ipv6_pool
            }
        };
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
            region: raw.region,
            ipv6_pool,
            default_vpc: raw.default_vpc,
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
}

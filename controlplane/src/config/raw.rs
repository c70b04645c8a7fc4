//! The configuration exactly as written in TOML, before any semantic check.
//!
//! These structs mirror the file one to one with `deny_unknown_fields`, so
//! serde catches misspelt keys and wrong types; `validate` then checks the
//! meaning and builds the public [`Config`](super::Config). Values whose
//! checks have EC2 wording (CIDRs, MACs, ports that may be `-1`) are kept
//! as text or wide integers here so that `validate` can word the message.
//! Serde's own messages are rewritten for someone editing a TOML file by
//! `palisade-config-check`, the same rewriting as `palisade-dpdk-config`'s
//! (whose profile format this one follows), with this format's
//! [`WORDING`].

use std::fmt;

use palisade_config_check::{Problem, Wording};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Defaults of the `[appliance]` table: one place, used by serde and quoted
/// by `docs/CONFIG.md`.
pub(crate) mod default {
    pub const PROFILE: &str = "builtin:tap-demo";
    pub const STATE_DIR: &str = "./var";
    pub const API_LISTEN: &str = "127.0.0.1:8080";
    pub const METRICS_LISTEN: &str = "127.0.0.1:9400";
    pub const MAX_FLOWS_PER_WORKER: usize = 1 << 20;
    /// Locally administered (bit 1 of the first octet), unicast; "PAL" in
    /// octets 2..5.
    pub const ROUTER_MAC: &str = "02:50:41:4c:00:01";
    /// The account id AWS's documentation uses in examples.
    pub const ACCOUNT_ID: &str = "123456789012";
    /// The region whose availability zones the API answers with.
    pub const REGION: &str = "us-east-1";
    /// The IPv6 pool standing in for Amazon's (`AmazonProvidedIpv6CidrBlock`
    /// takes the next free /56): a /40 of the range AWS itself allocates
    /// from, so blocks look like AWS's.
    pub const IPV6_POOL: &str = "2600:1f00::/40";

    pub fn profile() -> String {
        PROFILE.to_owned()
    }
    pub fn state_dir() -> String {
        STATE_DIR.to_owned()
    }
    pub fn api_listen() -> String {
        API_LISTEN.to_owned()
    }
    pub fn metrics_listen() -> String {
        METRICS_LISTEN.to_owned()
    }
    pub fn max_flows_per_worker() -> usize {
        MAX_FLOWS_PER_WORKER
    }
    pub fn router_mac() -> String {
        ROUTER_MAC.to_owned()
    }
    pub fn account_id() -> String {
        ACCOUNT_ID.to_owned()
    }
    pub fn region() -> String {
        REGION.to_owned()
    }
    pub fn ipv6_pool() -> String {
        IPV6_POOL.to_owned()
    }
    pub fn yes() -> bool {
        true
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub appliance: RawAppliance,
    #[serde(default)]
    pub quotas: RawQuotas,
    #[serde(default)]
    pub vpc: Vec<RawVpc>,
    #[serde(default)]
    pub subnet: Vec<RawSubnet>,
    #[serde(default)]
    pub security_group: Vec<RawGroup>,
    #[serde(default)]
    pub eni: Vec<RawEni>,
    #[serde(default)]
    pub network_acl: Vec<RawAcl>,
    #[serde(default)]
    pub peering: Vec<RawPeering>,
    #[serde(default)]
    pub prefix_list: Vec<RawPrefixList>,
    pub uplink: Option<RawUplink>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAppliance {
    #[serde(default = "default::profile")]
    pub profile: String,
    pub workers: Option<Vec<usize>>,
    #[serde(default = "default::state_dir")]
    pub state_dir: String,
    #[serde(default = "default::api_listen")]
    pub api_listen: String,
    #[serde(default = "default::metrics_listen")]
    pub metrics_listen: String,
    #[serde(default = "default::max_flows_per_worker")]
    pub max_flows_per_worker: usize,
    #[serde(default = "default::router_mac")]
    pub router_mac: String,
    #[serde(default = "default::account_id")]
    pub account_id: String,
    #[serde(default = "default::region")]
    pub region: String,
    #[serde(default = "default::ipv6_pool")]
    pub ipv6_pool: String,
    #[serde(default = "default::yes")]
    pub default_vpc: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl Default for RawAppliance {
    fn default() -> Self {
        Self {
            profile: default::profile(),
            workers: None,
            state_dir: default::state_dir(),
            api_listen: default::api_listen(),
            metrics_listen: default::metrics_listen(),
            max_flows_per_worker: default::max_flows_per_worker(),
            router_mac: default::router_mac(),
            account_id: default::account_id(),
            region: default::region(),
            ipv6_pool: default::ipv6_pool(),
            default_vpc: true,
            access_key_id: None,
            secret_access_key: None,
        }
    }
}

/// Every quota is optional; absent ones take SEMANTICS.md's defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuotas {
    pub rules_per_group: Option<usize>,
    pub groups_per_eni: Option<usize>,
    pub rules_per_eni: Option<usize>,
    pub groups_per_vpc: Option<usize>,
    pub network_acls_per_vpc: Option<usize>,
    pub rules_per_network_acl: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVpc {
    pub name: String,
    pub cidr: String,
    pub ipv6_cidr: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubnet {
    pub name: String,
    pub vpc: String,
    pub cidr: String,
    pub ipv6_cidr: Option<String>,
    pub network_acl: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroup {
    pub name: String,
    pub vpc: String,
    pub description: Option<String>,
    /// `None` (key absent) means the group's default rules; `Some(empty)`
    /// (`ingress = []`) means none.
    pub ingress: Option<Vec<RawRule>>,
    /// As `ingress`.
    pub egress: Option<Vec<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub protocol: RawProtocol,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub cidr: Option<String>,
    pub ipv6_cidr: Option<String>,
    pub prefix_list: Option<String>,
    pub group: Option<String>,
    pub description: Option<String>,
}

/// `IpProtocol` as written: a name, `"-1"`, or a number (bare or quoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawProtocol {
    Text(String),
    Number(i64),
}

impl<'de> Deserialize<'de> for RawProtocol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProtocolVisitor;
        impl Visitor<'_> for ProtocolVisitor {
            type Value = RawProtocol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a protocol")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<RawProtocol, E> {
                Ok(RawProtocol::Number(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<RawProtocol, E> {
                Ok(RawProtocol::Number(
                    i64::try_from(value).unwrap_or(i64::MAX),
                ))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<RawProtocol, E> {
                Ok(RawProtocol::Text(value.to_owned()))
            }
        }
        deserializer.deserialize_any(ProtocolVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEni {
    pub name: String,
    pub subnet: String,
    pub port: String,
    pub vlan: Option<i64>,
    pub mac: String,
    pub ips: Vec<String>,
    pub groups: Option<Vec<String>>,
    #[serde(default = "default::yes")]
    pub source_dest_check: bool,
    #[serde(default)]
    pub conntrack: RawConntrack,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConntrack {
    pub tcp_established: Option<i64>,
    pub udp_stream: Option<i64>,
    pub udp: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAcl {
    pub name: String,
    pub vpc: String,
    #[serde(default)]
    pub subnets: Vec<String>,
    /// `None` means the ACL's default entries (allow all for the VPC's
    /// `default` ACL, none for a custom one).
    pub entry: Option<Vec<RawAclEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAclEntry {
    pub rule_number: i64,
    pub egress: bool,
    pub protocol: RawProtocol,
    pub cidr: Option<String>,
    pub ipv6_cidr: Option<String>,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub icmp_type: Option<i64>,
    pub icmp_code: Option<i64>,
    pub action: RawAclAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawAclAction {
    Allow,
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPeering {
    pub name: String,
    pub vpcs: Vec<String>,
    #[serde(default = "default::yes")]
    pub active: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrefixList {
    pub name: String,
    pub cidrs: Vec<String>,
    pub max_entries: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUplink {
    pub port: String,
    pub vlan: Option<i64>,
    pub mac: String,
}

/// How serde's messages about a configuration are worded.
const WORDING: Wording = Wording {
    // `RawProtocol`'s `expecting`.
    type_words: &[(
        "a protocol",
        "a protocol name (\"tcp\", \"udp\", \"icmp\", \"icmpv6\", \"-1\") or number",
    )],
    // Every top-level key is a table (or an array of tables).
    top_level_keys: &[],
};

/// Deserializes `text` (already known to be valid TOML) into the raw
/// configuration, or describes the first shape error at its key path.
pub(crate) fn deserialize(text: &str) -> Result<RawConfig, Problem> {
    palisade_config_check::deserialize(text, &WORDING)
}

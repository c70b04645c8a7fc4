//! The appliance's declarative configuration file: VPCs, subnets, security
//! groups, ENIs, network ACLs, peerings and prefix lists, with the
//! appliance's own settings, validated and turned into a [`PolicySpec`](palisade_policy::PolicySpec).
//!
//! This is where the packet path's policy starts when the appliance boots:
//! `palisade run --config FILE` loads a [`Config`] (or [`Config::demo`]
//! without `--config`), resolves the ENIs' port names against the DPDK
//! profile's ports with [`Config::to_spec`], and hands the spec to
//! `PolicySnapshot::compile`, whose snapshot the workers then read per
//! burst. Later the control plane's store takes over and this file only
//! seeds it, so objects are modelled the way EC2 models them
//! (SEMANTICS.md): every VPC has a `default` security group and a default
//! network ACL, a new group gets the allow-all egress rule, an ENI without
//! groups gets its VPC's default group, and every object gets an
//! AWS-shaped id derived from its name ([`ids`](self::object_id)).
//!
//! Validation collects every problem with its key path and line
//! (`demo.toml:42: security_group[1].ingress[0].from_port: tcp needs
//! from_port and to_port`), the way `palisade-dpdk-config` reports profile
//! mistakes. `docs/CONFIG.md` documents the format key by key.

mod error;
mod from_config;
mod raw;
mod spec;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use palisade_policy::{
    ConntrackTimeouts, EniId, IpCidr, Ipv4Cidr, Ipv6Cidr, NaclEntry, NaclId, PeeringId,
    PrefixListId, SgId, SgRule, SubnetId, VpcId,
};

pub use crate::model::{ObjectKind, Quotas, is_aws_shaped, object_id};
pub use error::ConfigError;
pub use palisade_config_check::Problem;

/// The configuration compiled into the binary: the demo world of
/// `dataplane/src/testkit.rs` on the TAP ports of the built-in tap-demo
/// profile.
pub const DEMO_TOML: &str = include_str!("../../../appliance/demo.toml");

/// The DPDK profiles compiled into the appliance, usable as
/// `profile = "builtin:NAME"`.
pub const BUILTIN_PROFILES: &[&str] = &["tap-demo"];

pub use crate::model::DEFAULT_NAME;

/// A validated configuration: the EC2 objects with AWS's defaults already
/// materialised (each VPC's default group and ACL, default egress rules,
/// default group attachments) and ids assigned, plus the appliance's own
/// settings. Only ENI and uplink port *names* remain to be resolved, by
/// [`Config::to_spec`], because port ids exist only once DPDK has probed
/// the profile's devices.
#[derive(Debug, Clone)]
pub struct Config {
    /// How the appliance itself runs.
    pub appliance: ApplianceSettings,
    /// The limits objects were checked against.
    pub quotas: Quotas,
    /// VPCs in file order.
    pub vpcs: Vec<Vpc>,
    /// Subnets in file order.
    pub subnets: Vec<Subnet>,
    /// Per VPC (in VPC order): its default group, then its declared groups
    /// in file order. This is the order of the bits of SG-set bitmaps.
    pub security_groups: Vec<SecurityGroup>,
    /// Network interfaces in file order (`eni[i]` is `enis[i]`).
    pub enis: Vec<NetworkInterface>,
    /// Per VPC: its default ACL, then its declared custom ACLs.
    pub network_acls: Vec<NetworkAcl>,
    /// Peerings in file order.
    pub peerings: Vec<Peering>,
    /// Prefix lists in file order.
    pub prefix_lists: Vec<PrefixList>,
    /// The way out of every VPC, if configured.
    pub uplink: Option<Uplink>,
    /// The label errors name.
    origin: String,
    /// The text, kept so that late problems (unknown port names) get lines.
    source: String,
    /// `(kind, key)` → id for [`Config::id_of`].
    ids: BTreeMap<(ObjectKind, String), String>,
}

/// Where the appliance's DPDK profile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileRef {
    /// A profile file, relative to the working directory unless absolute.
    Path(PathBuf),
    /// A profile compiled into the appliance (`builtin:tap-demo`).
    Builtin(String),
}

/// The `[appliance]` table: how the appliance runs, as opposed to what it
/// enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplianceSettings {
    /// The DPDK profile giving the EAL options and the ports ENIs name.
    pub profile: ProfileRef,
    /// Worker cores, overriding the profile's `workers` when set.
    pub workers: Option<Vec<usize>>,
    /// Where the store (SQLite) keeps its files.
    pub state_dir: PathBuf,
    /// The EC2 Query API's listening address.
    pub api_listen: SocketAddr,
    /// The Prometheus endpoint's listening address.
    pub metrics_listen: SocketAddr,
    /// Flow-table capacity of each worker; new flows beyond it are dropped
    /// and counted, like AWS's conntrack allowance.
    pub max_flows_per_worker: usize,
    /// The MAC the router answers ARP/NDP with and sends from.
    pub router_mac: [u8; 6],
    /// The 12-digit account that owns every object (`OwnerId` in the API).
    pub account_id: String,
    /// The region the API answers for: its availability zones name
    /// subnets (`region`, default `us-east-1`).
    pub region: String,
    /// The IPv6 pool standing in for Amazon's (`ipv6_pool`, a /56 or
    /// larger block; default `2600:1f00::/40`).
    pub ipv6_pool: Ipv6Cidr,
    /// Whether the world has the account's default VPC (`default_vpc`,
    /// default true, as every AWS account has one): 172.31.0.0/16 with a
    /// default /20 subnet per zone of `region`, added beside the file's
    /// VPCs when the store is seeded.
    pub default_vpc: bool,
    /// The access key pair the EC2 API accepts, when the file sets one
    /// (`access_key_id` and `secret_access_key`, both or neither).
    pub access_key: Option<(String, String)>,
}

impl Default for ApplianceSettings {
    fn default() -> Self {
        let parse = |text: &str| text.parse().expect("default address is valid");
        Self {
            profile: ProfileRef::Builtin("tap-demo".to_owned()),
            workers: None,
            state_dir: PathBuf::from(raw::default::STATE_DIR),
            api_listen: parse(raw::default::API_LISTEN),
            metrics_listen: parse(raw::default::METRICS_LISTEN),
            max_flows_per_worker: raw::default::MAX_FLOWS_PER_WORKER,
            router_mac: [0x02, 0x50, 0x41, 0x4c, 0x00, 0x01],
            account_id: raw::default::ACCOUNT_ID.to_owned(),
            region: raw::default::REGION.to_owned(),
            ipv6_pool: raw::default::IPV6_POOL
                .parse()
                .expect("default pool is valid"),
            default_vpc: true,
            access_key: None,
        }
    }
}

/// A VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    /// Its name in the file.
    pub name: String,
    /// Its id.
    pub id: VpcId,
    /// Its primary IPv4 block, /16 to /28.
    pub cidr: Ipv4Cidr,
    /// Its IPv6 block, if any.
    pub ipv6_cidr: Option<Ipv6Cidr>,
    /// Its `default` security group.
    pub default_group: SgId,
    /// Its default network ACL.
    pub default_network_acl: NaclId,
}

/// A subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// Its name in the file.
    pub name: String,
    /// Its id.
    pub id: SubnetId,
    /// Its VPC.
    pub vpc: VpcId,
    /// Its IPv4 block, inside the VPC's.
    pub cidr: Ipv4Cidr,
    /// Its IPv6 block, inside the VPC's, if any.
    pub ipv6_cidr: Option<Ipv6Cidr>,
    /// Its one network ACL.
    pub network_acl: NaclId,
}

/// A security group with its rules, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    /// Its name, unique in its VPC.
    pub name: String,
    /// Its id.
    pub id: SgId,
    /// Its VPC.
    pub vpc: VpcId,
    /// `GroupDescription`.
    pub description: String,
    /// Whether this is the VPC's `default` group.
    pub is_default: bool,
    /// Inbound rules.
    pub ingress: Vec<SgRule>,
    /// Outbound rules.
    pub egress: Vec<SgRule>,
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInterface {
    /// Its name in the file.
    pub name: String,
    /// Its id.
    pub id: EniId,
    /// Its subnet.
    pub subnet: SubnetId,
    /// The name of the DPDK profile port its traffic arrives on.
    pub port: String,
    /// Its 802.1Q VLAN, if tagged.
    pub vlan: Option<u16>,
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its private addresses; the first IPv4 one is the primary.
    pub private_ips: Vec<IpAddr>,
    /// Its groups (its VPC's default group when the file names none).
    pub groups: Vec<SgId>,
    /// Whether packets from addresses it does not own are dropped.
    pub source_dest_check: bool,
    /// Its connection-tracking idle timeouts.
    pub timeouts: ConntrackTimeouts,
}

/// A network ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAcl {
    /// Its name, unique in its VPC (`default` for the default ACL).
    pub name: String,
    /// Its id.
    pub id: NaclId,
    /// Its VPC.
    pub vpc: VpcId,
    /// Whether this is the VPC's default ACL.
    pub is_default: bool,
    /// Its entries, in file order.
    pub entries: Vec<NaclEntry>,
}

/// A VPC peering connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peering {
    /// Its name in the file.
    pub name: String,
    /// Its id.
    pub id: PeeringId,
    /// The first VPC listed.
    pub vpc_a: VpcId,
    /// The second VPC listed.
    pub vpc_b: VpcId,
    /// Whether it routes traffic and makes cross-VPC group rules match.
    pub active: bool,
}

/// A managed prefix list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixList {
    /// Its name in the file.
    pub name: String,
    /// Its id.
    pub id: PrefixListId,
    /// Its blocks, all of one family.
    pub cidrs: Vec<IpCidr>,
    /// The size a rule naming it counts as against rule quotas.
    pub max_entries: usize,
}

/// The uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    /// The name of the DPDK profile port it is on.
    pub port: String,
    /// Its VLAN, if tagged.
    pub vlan: Option<u16>,
    /// The MAC of the next hop behind it.
    pub mac: [u8; 6],
}

impl Config {
    /// Reads and validates a configuration file. Errors name the file by
    /// its file name, as a user sees it in their editor's tab.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.file_name().map_or_else(
            || path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            origin: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text, &origin)
    }

    /// Parses and validates configuration text; `origin` labels every error.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        validate::parse(text, origin)
    }

    /// The built-in demo configuration ([`DEMO_TOML`]).
    pub fn demo() -> Config {
        // The embedded file is checked by this crate's tests; a failure
        // here is a build that skipped them.
        Self::from_toml_str(DEMO_TOML, "built-in demo.toml")
            .unwrap_or_else(|error| panic!("the embedded demo configuration is invalid:\n{error}"))
    }

    /// The label errors name (a file name or what the caller passed).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The id of the object of `kind` called `name`, if the configuration
    /// has it (the defaults included). Groups and ACLs are named
    /// `vpc/name`; a bare `name` works when only one VPC has it. Rules are
    /// named `vpc/group/ingress/0` (direction and 0-based position).
    pub fn id_of(&self, kind: ObjectKind, name: &str) -> Option<&str> {
        if let Some(id) = self.ids.get(&(kind, name.to_owned())) {
            return Some(id);
        }
        if !matches!(kind, ObjectKind::SecurityGroup | ObjectKind::NetworkAcl) || name.contains('/')
        {
            return None;
        }
        let suffix = format!("/{name}");
        let mut matches = self
            .ids
            .range((kind, String::new())..)
            .take_while(|((k, _), _)| *k == kind)
            .filter(|((_, key), _)| key.ends_with(&suffix));
        match (matches.next(), matches.next()) {
            (Some((_, id)), None) => Some(id),
            _ => None,
        }
    }
}

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

mod error;
mod extended;
#[cfg(test)]
mod extended_tests;
mod spec;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

use palisade_policy::{
    ConntrackTimeouts, EniId, IpCidr, Ipv4Cidr, Ipv6Cidr, NaclAction, NaclEntry, NaclId, Peer,
    PeeringId, PortSpec, PrefixListId, Protocol, SgId, SgRule, SgRuleId, SubnetId, VpcId,
};
use serde::{Deserialize, Serialize};

use crate::config::{Config, is_aws_shaped};
pub use crate::config::{ObjectKind, Quotas};
pub use error::{ApiError, Ec2ErrorCode};
pub use extended::{
    NewNetworkInterface, PREFIX_LIST_MAX_ENTRIES, PrefixListEntryRequest, TagToDelete,
    initial_network_acl_association_id, main_route_table_association_id, route_table_id,
};
pub use spec::{LiveSpec, SpecUpdate};

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

/// A VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpc {
    /// Its id.
    pub id: VpcId,
    /// Its primary IPv4 block.
    pub cidr: Ipv4Cidr,
    /// Its IPv6 block, if any.
    pub ipv6_cidr: Option<Ipv6Cidr>,
    /// Its `default` group, created with it and never deletable.
    pub default_group: SgId,
    /// Its default network ACL, which new subnets use.
    pub default_network_acl: NaclId,
    /// What ModifyVpcAttribute set (absent in stores written before it
    /// existed: AWS's defaults).
    #[serde(default)]
    pub attributes: VpcAttributes,
}

/// The VPC attributes ModifyVpcAttribute sets. palisade serves no DNS and
/// meters no addresses, so it only keeps them: clients (Terraform) read
/// back what they wrote and plan no change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcAttributes {
    /// `enableDnsSupport`.
    pub enable_dns_support: bool,
    /// `enableDnsHostnames`: AWS allows it only with DNS support.
    pub enable_dns_hostnames: bool,
    /// `enableNetworkAddressUsageMetrics`.
    pub enable_network_address_usage_metrics: bool,
}

impl Default for VpcAttributes {
    /// AWS's values for a VPC that is not the account's default VPC.
    fn default() -> Self {
        Self {
            enable_dns_support: true,
            enable_dns_hostnames: false,
            enable_network_address_usage_metrics: false,
        }
    }
}

/// One attribute of [`VpcAttributes`], as ModifyVpcAttribute and
/// DescribeVpcAttribute name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VpcAttribute {
    /// `enableDnsSupport`.
    EnableDnsSupport,
    /// `enableDnsHostnames`.
    EnableDnsHostnames,
    /// `enableNetworkAddressUsageMetrics`.
    EnableNetworkAddressUsageMetrics,
}

impl VpcAttribute {
    /// The attribute's value in `attributes`.
    pub fn get(self, attributes: &VpcAttributes) -> bool {
        match self {
            Self::EnableDnsSupport => attributes.enable_dns_support,
            Self::EnableDnsHostnames => attributes.enable_dns_hostnames,
            Self::EnableNetworkAddressUsageMetrics => {
                attributes.enable_network_address_usage_metrics
            }
        }
    }

    fn slot(self, attributes: &mut VpcAttributes) -> &mut bool {
        match self {
            Self::EnableDnsSupport => &mut attributes.enable_dns_support,
            Self::EnableDnsHostnames => &mut attributes.enable_dns_hostnames,
            Self::EnableNetworkAddressUsageMetrics => {
                &mut attributes.enable_network_address_usage_metrics
            }
        }
    }
}

/// A subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// Its id.
    pub id: SubnetId,
    /// Its VPC.
    pub vpc: VpcId,
    /// Its IPv4 block, inside the VPC's.
    pub cidr: Ipv4Cidr,
    /// Its IPv6 block, inside the VPC's (config-seeded subnets only so
    /// far; absent in snapshots written before it existed).
    #[serde(default)]
    pub ipv6_cidr: Option<Ipv6Cidr>,
    /// Its one network ACL.
    pub network_acl: NaclId,
    /// The id of its ACL association once ReplaceNetworkAclAssociation
    /// moved it; `None` means the initial one, derived from the subnet id
    /// ([`initial_network_acl_association_id`]), so that no existing op
    /// had to draw a new id.
    #[serde(default)]
    pub network_acl_association: Option<String>,
}

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

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInterface {
    /// Its id.
    pub id: EniId,
    /// Its subnet.
    pub subnet: SubnetId,
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its private addresses, inside its subnet.
    pub private_ips: Vec<IpAddr>,
    /// Its groups, 1..=quota.
    pub groups: Vec<SgId>,
    /// Whether packets from addresses it does not own are dropped.
    pub source_dest_check: bool,
    /// Its conntrack idle timeouts.
    pub timeouts: ConntrackTimeouts,
    /// The name of the appliance port it is bound to.
    pub port: String,
    /// Its VLAN on that port.
    pub vlan: Option<u16>,
    /// `Description`, up to 255 characters.
    #[serde(default)]
    pub description: String,
}

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

/// A peering's life cycle, as DescribeVpcPeeringConnections reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeeringState {
    /// Requested, not yet accepted: routes nothing.
    PendingAcceptance,
    /// Accepted: routes, and cross-VPC group references match.
    Active,
    /// Deleted: group references across it are stale.
    Deleted,
}

/// A VPC peering connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peering {
    /// Its id.
    pub id: PeeringId,
    /// The requester.
    pub requester: VpcId,
    /// The accepter.
    pub accepter: VpcId,
    /// Where it is in its life cycle.
    pub state: PeeringState,
}

/// A managed prefix list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixList {
    /// Its id.
    pub id: PrefixListId,
    /// Its name.
    pub name: String,
    /// Its blocks.
    pub cidrs: Vec<IpCidr>,
    /// What a rule naming it counts as against rule quotas.
    pub max_entries: usize,
    /// `AddressFamily` `IPv6` (else `IPv4`); every entry is of it.
    #[serde(default)]
    pub ipv6: bool,
    /// Starts at 1, one more for each change of the entries
    /// (ModifyManagedPrefixList's `CurrentVersion` is checked against it).
    #[serde(default = "first_version")]
    pub version: u64,
    /// Entry descriptions by the entry's canonical CIDR text.
    #[serde(default)]
    pub descriptions: BTreeMap<String, String>,
}

fn first_version() -> u64 {
    1
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

/// Optional ENI attribute changes (ModifyNetworkInterfaceAttribute).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EniChange {
    /// `Groups`: replaces the attached set.
    pub groups: Option<Vec<String>>,
    /// `SourceDestCheck`.
    pub source_dest_check: Option<bool>,
    /// `ConnectionTrackingSpecification`: tcp established, udp stream, udp.
    pub timeouts: Option<(u32, u32, u32)>,
}

/// A change to the model, one EC2 action. Serializable: the store journals
/// these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// CreateVpc, with its default group and ACL.
    CreateVpc {
        /// IPv4 block.
        cidr: String,
        /// IPv6 block.
        ipv6_cidr: Option<String>,
    },
    /// DeleteVpc.
    DeleteVpc {
        /// The VPC.
        vpc: String,
    },
    /// CreateSubnet.
    CreateSubnet {
        /// The VPC.
        vpc: String,
        /// Its block.
        cidr: String,
    },
    /// CreateSecurityGroup.
    CreateSecurityGroup {
        /// The VPC.
        vpc: String,
        /// `GroupName`.
        name: String,
        /// `GroupDescription`.
        description: String,
    },
    /// DeleteSecurityGroup.
    DeleteSecurityGroup {
        /// The group.
        group: String,
    },
    /// AuthorizeSecurityGroupIngress / Egress.
    Authorize {
        /// The group.
        group: String,
        /// Outbound when set.
        egress: bool,
        /// The rules to add, all or none.
        permissions: Vec<Permission>,
    },
    /// RevokeSecurityGroupIngress / Egress by permission.
    Revoke {
        /// The group.
        group: String,
        /// Outbound when set.
        egress: bool,
        /// The rules to remove, all or none.
        permissions: Vec<Permission>,
    },
    /// RevokeSecurityGroupIngress / Egress with `SecurityGroupRuleIds`.
    RevokeRuleIds {
        /// The group.
        group: String,
        /// Outbound when set.
        egress: bool,
        /// The rules to remove.
        rule_ids: Vec<String>,
    },
    /// ModifySecurityGroupRules: each rule keeps its id, takes a new body.
    ModifySecurityGroupRules {
        /// The group.
        group: String,
        /// Rule id → replacement.
        rules: Vec<(String, Permission)>,
    },
    /// CreateNetworkInterface.
    CreateNetworkInterface {
        /// The subnet.
        subnet: String,
        /// MAC.
        mac: [u8; 6],
        /// Private addresses.
        private_ips: Vec<IpAddr>,
        /// Groups; empty means the VPC's default group.
        groups: Vec<String>,
        /// Appliance port name.
        port: String,
        /// VLAN.
        vlan: Option<u16>,
    },
    /// DeleteNetworkInterface.
    DeleteNetworkInterface {
        /// The ENI.
        eni: String,
    },
    /// ModifyNetworkInterfaceAttribute.
    ModifyNetworkInterface {
        /// The ENI.
        eni: String,
        /// What changes.
        change: EniChange,
    },
    /// CreateNetworkAcl: a custom ACL, deny-all until entries are added.
    CreateNetworkAcl {
        /// The VPC.
        vpc: String,
    },
    /// CreateNetworkAclEntry, or ReplaceNetworkAclEntry when `replace`.
    PutNetworkAclEntry {
        /// The ACL.
        acl: String,
        /// Create (false) or replace (true).
        replace: bool,
        /// The entry (its CIDR already parsed by the caller).
        entry: NaclEntryRequest,
    },
    /// DeleteNetworkAclEntry.
    DeleteNetworkAclEntry {
        /// The ACL.
        acl: String,
        /// Rule number.
        rule_number: u16,
        /// Direction.
        egress: bool,
    },
    /// ReplaceNetworkAclAssociation: the subnet moves to `acl`.
    AssociateNetworkAcl {
        /// The subnet.
        subnet: String,
        /// The ACL.
        acl: String,
    },
    /// CreateVpcPeeringConnection.
    RequestPeering {
        /// Requester.
        vpc: String,
        /// Accepter.
        peer_vpc: String,
    },
    /// AcceptVpcPeeringConnection.
    AcceptPeering {
        /// The peering.
        peering: String,
    },
    /// DeleteVpcPeeringConnection.
    DeletePeering {
        /// The peering.
        peering: String,
    },
    /// CreateManagedPrefixList.
    CreatePrefixList {
        /// Name.
        name: String,
        /// `MaxEntries`.
        max_entries: usize,
        /// Initial blocks.
        cidrs: Vec<String>,
    },
    /// ModifyManagedPrefixList.
    ModifyPrefixList {
        /// The list.
        prefix_list: String,
        /// Blocks to add.
        add: Vec<String>,
        /// Blocks to remove.
        remove: Vec<String>,
    },
    /// DeleteManagedPrefixList.
    DeletePrefixList {
        /// The list.
        prefix_list: String,
    },
    /// CreateTags.
    CreateTags {
        /// Resource ids.
        resources: Vec<String>,
        /// Key → value.
        tags: Vec<(String, String)>,
    },
    /// DeleteTags (by key).
    DeleteTags {
        /// Resource ids.
        resources: Vec<String>,
        /// Keys.
        keys: Vec<String>,
    },
    /// DeleteSubnet: refused while a network interface is in it.
    DeleteSubnet {
        /// The subnet.
        subnet: String,
    },
    /// UpdateSecurityGroupRuleDescriptionsIngress / Egress: new
    /// descriptions for existing rules, found by their body (the
    /// permission's description is the new one) or by rule id.
    UpdateRuleDescriptions {
        /// The group.
        group: String,
        /// Outbound when set.
        egress: bool,
        /// Rules named by protocol, ports and peer.
        by_permission: Vec<Permission>,
        /// Rule id → new description.
        by_id: Vec<(String, String)>,
    },
    /// CreateNetworkInterface with what the API's create carries beyond
    /// [`Op::CreateNetworkInterface`] (kept as it is for journals).
    CreateNetworkInterfaceV2 {
        /// The interface.
        interface: NewNetworkInterface,
    },
    /// ModifyNetworkInterfaceAttribute `Description`.
    SetNetworkInterfaceDescription {
        /// The ENI.
        eni: String,
        /// The new text.
        description: String,
    },
    /// DeleteNetworkAcl: refused for the default ACL and while a subnet
    /// uses it.
    DeleteNetworkAcl {
        /// The ACL.
        acl: String,
    },
    /// ReplaceNetworkAclAssociation by association id; the outcome names
    /// the new association id.
    ReplaceNetworkAclAssociation {
        /// The subnet's current association.
        association: String,
        /// The ACL the subnet moves to.
        acl: String,
    },
    /// CreateManagedPrefixList with its address family and descriptions.
    CreateManagedPrefixList {
        /// `PrefixListName`.
        name: String,
        /// `MaxEntries`.
        max_entries: usize,
        /// `AddressFamily` is `IPv6`.
        ipv6: bool,
        /// The initial entries.
        entries: Vec<PrefixListEntryRequest>,
    },
    /// ModifyManagedPrefixList: entries (version-checked), or the name,
    /// or the maximum size.
    ModifyManagedPrefixList {
        /// The list.
        prefix_list: String,
        /// `CurrentVersion`, when the caller gave one.
        current_version: Option<u64>,
        /// `PrefixListName`.
        name: Option<String>,
        /// `MaxEntries`.
        max_entries: Option<usize>,
        /// `RemoveEntry.N.Cidr`.
        remove: Vec<String>,
        /// `AddEntry.N` (last: TOML writes tables after plain values).
        add: Vec<PrefixListEntryRequest>,
    },
    /// DeleteTags with AWS's full semantics: a tag with a value is removed
    /// only if the value matches; no tags at all removes every tag.
    DeleteTagsMatching {
        /// Resource ids.
        resources: Vec<String>,
        /// Keys with optional values; empty means every tag.
        tags: Vec<TagToDelete>,
    },
    /// ModifyVpcAttribute: one attribute, kept (see [`VpcAttributes`]).
    ModifyVpcAttribute {
        /// The VPC.
        vpc: String,
        /// Which attribute.
        attribute: VpcAttribute,
        /// Its new value.
        value: bool,
    },
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

/// What a successful op produced: the id of the object it created, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new object (or, for Authorize, the first new rule's) id, with any
    /// further rule ids.
    Created(Vec<String>),
    /// Done; nothing new to name.
    Done,
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

fn not_found(code: Ec2ErrorCode, what: &str, id: &str) -> ApiError {
    ApiError::new(code, format!("The {what} ID '{id}' does not exist"))
}

fn parse_v4(text: &str) -> Result<Ipv4Cidr, ApiError> {
    text.parse().map_err(|_| {
        ApiError::invalid_value(format!(
            "Value ({text}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
        ))
    })
}

fn parse_cidr(text: &str) -> Result<IpCidr, ApiError> {
    text.parse().map_err(|_| {
        ApiError::invalid_value(format!(
            "CIDR block {text} is malformed or has host bits set"
        ))
    })
}

fn parse_protocol(text: &str) -> Result<Protocol, ApiError> {
    let protocol = match text.to_ascii_lowercase().as_str() {
        "-1" | "all" => Protocol::All,
        "tcp" | "6" => Protocol::Tcp,
        "udp" | "17" => Protocol::Udp,
        "icmp" | "1" => Protocol::Icmp,
        "icmpv6" | "58" => Protocol::Icmpv6,
        other => match other.parse::<u8>() {
            Ok(number) => Protocol::Number(number),
            Err(_) => {
                return Err(ApiError::invalid_value(format!(
                    "Invalid value '{text}' for IP protocol. Unknown protocol."
                )));
            }
        },
    };
    Ok(protocol)
}

/// Ports per SEMANTICS.md "Rule fields": required ranges for tcp/udp, ICMP
/// type/code with -1 for all (type -1 needs code -1), ignored otherwise.
fn parse_ports(
    protocol: Protocol,
    from: Option<i32>,
    to: Option<i32>,
) -> Result<PortSpec, ApiError> {
    match protocol.port_kind() {
        palisade_policy::PortKind::Ignored => Ok(PortSpec::Any),
        palisade_policy::PortKind::Ports => match (from, to) {
            (Some(from), Some(to))
                if (0..=65535).contains(&from) && (0..=65535).contains(&to) && from <= to =>
            {
                Ok(PortSpec::Range {
                    from: from as u16,
                    to: to as u16,
                })
            }
            (Some(-1), Some(-1)) => Ok(PortSpec::Range { from: 0, to: 65535 }),
            (None, _) | (_, None) => Err(ApiError::new(
                Ec2ErrorCode::MissingParameter,
                "The request must contain the parameter FromPort and ToPort for tcp/udp",
            )),
            (Some(from), Some(to)) => Err(ApiError::invalid_value(format!(
                "Invalid port range {from}-{to}"
            ))),
        },
        palisade_policy::PortKind::IcmpTypeCode => {
            let field = |value: Option<i32>, name: &str| match value {
                None | Some(-1) => Ok(None),
                Some(v) if (0..=255).contains(&v) => Ok(Some(v as u8)),
                Some(v) => Err(ApiError::invalid_value(format!("Invalid ICMP {name} {v}"))),
            };
            let icmp_type = field(from, "type")?;
            let code = field(to, "code")?;
            if icmp_type.is_none() && code.is_some() {
                return Err(ApiError::invalid_value(
                    "ICMP code must be -1 when the ICMP type is -1",
                ));
            }
            if protocol == Protocol::Icmp || icmp_type.is_some() {
                Ok(PortSpec::Icmp { icmp_type, code })
            } else {
                Ok(PortSpec::Any)
            }
        }
    }
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
    /// An empty model with these quotas.
    pub fn new(quotas: Quotas, router_mac: [u8; 6]) -> Self {
        Self {
            quotas,
            router_mac,
            ..Self::default()
        }
    }

    fn vpc(&self, id: &str) -> Result<&Vpc, ApiError> {
        self.vpcs
            .get(id)
            .ok_or_else(|| not_found(Ec2ErrorCode::InvalidVpcIdNotFound, "vpc", id))
    }

    fn group(&self, id: &str) -> Result<&SecurityGroup, ApiError> {
        check_group_id(id)?;
        self.security_groups.get(id).ok_or_else(|| {
            ApiError::new(
                Ec2ErrorCode::InvalidGroupNotFound,
                format!("The security group '{id}' does not exist"),
            )
        })
    }

    fn subnet(&self, id: &str) -> Result<&Subnet, ApiError> {
        self.subnets
            .get(id)
            .ok_or_else(|| not_found(Ec2ErrorCode::InvalidSubnetIdNotFound, "subnet", id))
    }

    fn eni(&self, id: &str) -> Result<&NetworkInterface, ApiError> {
        self.enis.get(id).ok_or_else(|| {
            not_found(
                Ec2ErrorCode::InvalidNetworkInterfaceIdNotFound,
                "networkInterface",
                id,
            )
        })
    }

    fn acl(&self, id: &str) -> Result<&NetworkAcl, ApiError> {
        self.network_acls
            .get(id)
            .ok_or_else(|| not_found(Ec2ErrorCode::InvalidNetworkAclIdNotFound, "networkAcl", id))
    }

    fn peering(&self, id: &str) -> Result<&Peering, ApiError> {
        self.peerings.get(id).ok_or_else(|| {
            not_found(
                Ec2ErrorCode::InvalidVpcPeeringConnectionIdNotFound,
                "vpcPeeringConnection",
                id,
            )
        })
    }

    fn prefix_list(&self, id: &str) -> Result<&PrefixList, ApiError> {
        self.prefix_lists
            .get(id)
            .ok_or_else(|| not_found(Ec2ErrorCode::InvalidPrefixListIdNotFound, "prefix list", id))
    }

    /// Whether `a` and `b` are the same VPC or actively peered.
    fn reachable(&self, a: &VpcId, b: &VpcId) -> bool {
        a == b
            || self.peerings.values().any(|p| {
                p.state == PeeringState::Active
                    && ((&p.requester == a && &p.accepter == b)
                        || (&p.requester == b && &p.accepter == a))
            })
    }

    /// A permission turned into a rule of `group` (without its id).
    fn rule_of(&self, group: &SecurityGroup, permission: &Permission) -> Result<SgRule, ApiError> {
        let protocol = parse_protocol(&permission.protocol)?;
        let ports = parse_ports(protocol, permission.from_port, permission.to_port)?;
        if permission.description.chars().count() > 255 {
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
    fn rule_weight(&self, rule: &SgRule) -> (usize, bool) {
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

    fn check_rule_quota(&self, rules: &[SgRule]) -> Result<(), ApiError> {
        let (mut v4, mut v6) = (0, 0);
        for rule in rules {
            let (weight, is_v6) = self.rule_weight(rule);
            if is_v6 {
                v6 += weight;
            } else {
                v4 += weight;
            }
        }
        if v4.max(v6) > self.quotas.rules_per_group {
            return Err(ApiError::new(
                Ec2ErrorCode::RulesPerSecurityGroupLimitExceeded,
                "The maximum number of rules per security group has been reached.",
            ));
        }
        Ok(())
    }

    fn new_group(
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

    /// Applies one change, all or nothing: on error the model is unchanged.
    #[allow(clippy::too_many_lines)]
    pub fn apply(&mut self, op: &Op, ids: &mut dyn IdSource) -> Result<Outcome, ApiError> {
        match op {
            Op::CreateVpc { cidr, ipv6_cidr } => {
                let cidr = parse_v4(cidr)?;
                if !(16..=28).contains(&cidr.prefix_len()) {
                    return Err(ApiError::new(
                        Ec2ErrorCode::InvalidVpcRange,
                        format!("The CIDR '{cidr}' is invalid."),
                    ));
                }
                let ipv6_cidr = match ipv6_cidr {
                    None => None,
                    Some(text) => match parse_cidr(text)? {
                        IpCidr::V6(c) => Some(c),
                        IpCidr::V4(_) => {
                            return Err(ApiError::invalid_value(format!(
                                "{text} is not an IPv6 block"
                            )));
                        }
                    },
                };
                let id = VpcId(ids.fresh_id(ObjectKind::Vpc));
                let acl = NaclId(ids.fresh_id(ObjectKind::NetworkAcl));
                self.network_acls.insert(
                    acl.0.clone(),
                    NetworkAcl {
                        id: acl.clone(),
                        vpc: id.clone(),
                        is_default: true,
                        entries: default_acl_entries(ipv6_cidr.is_some()),
                    },
                );
                self.vpcs.insert(
                    id.0.clone(),
                    Vpc {
                        id: id.clone(),
                        cidr,
                        ipv6_cidr,
                        default_group: SgId(String::new()),
                        default_network_acl: acl,
                        attributes: VpcAttributes::default(),
                    },
                );
                let group = self.new_group(ids, &id, "default", "default VPC security group", true);
                if let Some(vpc) = self.vpcs.get_mut(id.as_str()) {
                    vpc.default_group = group;
                }
                Ok(Outcome::Created(vec![id.0]))
            }
            Op::DeleteVpc { vpc } => {
                self.vpc(vpc)?;
                let in_use = self.subnets.values().any(|s| s.vpc.as_str() == vpc)
                    || self
                        .security_groups
                        .values()
                        .any(|g| g.vpc.as_str() == vpc && !g.is_default)
                    || self
                        .network_acls
                        .values()
                        .any(|a| a.vpc.as_str() == vpc && !a.is_default)
                    || self.peerings.values().any(|p| {
                        p.state != PeeringState::Deleted
                            && (p.requester.as_str() == vpc || p.accepter.as_str() == vpc)
                    });
                if in_use {
                    return Err(ApiError::new(
                        Ec2ErrorCode::DependencyViolation,
                        format!("The vpc '{vpc}' has dependencies and cannot be deleted."),
                    ));
                }
                let gone: Vec<String> = self
                    .security_groups
                    .values()
                    .filter(|g| g.vpc.as_str() == vpc)
                    .map(|g| g.id.0.clone())
                    .chain(
                        self.network_acls
                            .values()
                            .filter(|a| a.vpc.as_str() == vpc)
                            .map(|a| a.id.0.clone()),
                    )
                    .collect();
                for id in &gone {
                    self.remove_group_tags(id);
                    self.security_groups.remove(id);
                    self.network_acls.remove(id);
                    self.tags.remove(id);
                }
                self.group_order.retain(|g| !gone.contains(g));
                self.vpcs.remove(vpc);
                self.tags.remove(vpc);
                self.tags.remove(&route_table_id(vpc));
                Ok(Outcome::Done)
            }
            Op::CreateSubnet { vpc, cidr } => {
                let parent = self.vpc(vpc)?;
                let cidr = parse_v4(cidr)?;
                if !parent.cidr.contains_cidr(&cidr) || !(16..=28).contains(&cidr.prefix_len()) {
                    return Err(ApiError::new(
                        Ec2ErrorCode::InvalidSubnetRange,
                        format!("The CIDR '{cidr}' is invalid."),
                    ));
                }
                let overlaps = self.subnets.values().any(|s| {
                    s.vpc.as_str() == vpc
                        && (s.cidr.contains_cidr(&cidr) || cidr.contains_cidr(&s.cidr))
                });
                if overlaps {
                    return Err(ApiError::new(
                        Ec2ErrorCode::InvalidSubnetConflict,
                        format!("The CIDR '{cidr}' conflicts with another subnet"),
                    ));
                }
                let acl = parent.default_network_acl.clone();
                let id = SubnetId(ids.fresh_id(ObjectKind::Subnet));
                self.subnets.insert(
                    id.0.clone(),
                    Subnet {
                        id: id.clone(),
                        vpc: VpcId(vpc.clone()),
                        cidr,
                        ipv6_cidr: None,
                        network_acl: acl,
                        network_acl_association: None,
                    },
                );
                Ok(Outcome::Created(vec![id.0]))
            }
            Op::CreateSecurityGroup {
                vpc,
                name,
                description,
            } => {
                self.vpc(vpc)?;
                if name.is_empty() || name.chars().count() > 255 || name.starts_with("sg-") {
                    return Err(ApiError::invalid_value(format!(
                        "Invalid security group name '{name}': at most 255 characters, not starting with sg-"
                    )));
                }
                if description.chars().count() > 255 {
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
                let id = self.new_group(ids, &VpcId(vpc.clone()), name, description, false);
                Ok(Outcome::Created(vec![id.0]))
            }
            Op::DeleteSecurityGroup { group } => {
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
            Op::Authorize {
                group,
                egress,
                permissions,
            } => {
                let target = self.group(group)?;
                let mut rules = target.rules(*egress).to_vec();
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
                self.check_eni_quota_for_group(group, *egress, rules.len())?;
                self.set_rules(group, *egress, rules);
                Ok(Outcome::Created(created))
            }
            Op::Revoke {
                group,
                egress,
                permissions,
            } => {
                let target = self.group(group)?;
                let mut rules = target.rules(*egress).to_vec();
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
                self.set_rules(group, *egress, rules);
                Ok(Outcome::Done)
            }
            Op::RevokeRuleIds {
                group,
                egress,
                rule_ids,
            } => {
                let target = self.group(group)?;
                let mut rules = target.rules(*egress).to_vec();
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
                self.set_rules(group, *egress, rules);
                Ok(Outcome::Done)
            }
            Op::ModifySecurityGroupRules { group, rules } => {
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
            Op::CreateNetworkInterface {
                subnet,
                mac,
                private_ips,
                groups,
                port,
                vlan,
            } => {
                let home = self.subnet(subnet)?;
                let vpc = self.vpc(home.vpc.as_str())?;
                for ip in private_ips {
                    let inside = match ip {
                        IpAddr::V4(v4) => home.cidr.contains(*v4),
                        IpAddr::V6(v6) => vpc.ipv6_cidr.is_some_and(|c| c.contains(*v6)),
                    };
                    if !inside {
                        return Err(ApiError::invalid_value(format!(
                            "Address {ip} does not fall within the subnet's address range"
                        )));
                    }
                    if self.enis.values().any(|e| {
                        self.subnets.get(e.subnet.as_str()).map(|s| &s.vpc) == Some(&home.vpc)
                            && e.private_ips.contains(ip)
                    }) {
                        return Err(ApiError::new(
                            Ec2ErrorCode::InvalidIpAddressInUse,
                            format!("Address {ip} is in use."),
                        ));
                    }
                }
                // The data plane identifies an ENI on receive by (port, VLAN,
                // MAC); two ENIs sharing that triple could not be told apart.
                if self
                    .enis
                    .values()
                    .any(|e| e.port == *port && e.vlan == *vlan && e.mac == *mac)
                {
                    return Err(ApiError::invalid_value(format!(
                        "Another network interface on port {port} already has this MAC address"
                    )));
                }
                let groups = if groups.is_empty() {
                    vec![vpc.default_group.clone()]
                } else {
                    self.check_eni_groups(&home.vpc, groups)?
                };
                let id = EniId(ids.fresh_id(ObjectKind::NetworkInterface));
                self.enis.insert(
                    id.0.clone(),
                    NetworkInterface {
                        id: id.clone(),
                        subnet: SubnetId(subnet.clone()),
                        mac: *mac,
                        private_ips: private_ips.clone(),
                        groups,
                        source_dest_check: true,
                        timeouts: ConntrackTimeouts::default(),
                        port: port.clone(),
                        vlan: *vlan,
                        description: String::new(),
                    },
                );
                self.eni_order.push(id.0.clone());
                Ok(Outcome::Created(vec![id.0]))
            }
            Op::DeleteNetworkInterface { eni } => {
                self.eni(eni)?;
                self.enis.remove(eni);
                self.eni_order.retain(|e| e != eni);
                self.tags.remove(eni);
                Ok(Outcome::Done)
            }
            Op::ModifyNetworkInterface { eni, change } => {
                let current = self.eni(eni)?;
                let subnet = self.subnet(current.subnet.as_str())?;
                let mut updated = current.clone();
                if let Some(groups) = &change.groups {
                    updated.groups = self.check_eni_groups(&subnet.vpc, groups)?;
                }
                if let Some(check) = change.source_dest_check {
                    updated.source_dest_check = check;
                }
                if let Some((tcp_established, udp_stream, udp)) = change.timeouts {
                    let timeouts = ConntrackTimeouts {
                        tcp_established,
                        udp_stream,
                        udp,
                    };
                    if !timeouts.is_valid() {
                        return Err(ApiError::invalid_value(
                            "Connection tracking timeouts out of range (TcpEstablished 60-432000, UdpStream 60-180, Udp 30-60)",
                        ));
                    }
                    updated.timeouts = timeouts;
                }
                self.enis.insert(eni.clone(), updated);
                Ok(Outcome::Done)
            }
            Op::CreateNetworkAcl { vpc } => {
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
                        vpc: VpcId(vpc.clone()),
                        is_default: false,
                        entries: Vec::new(),
                    },
                );
                Ok(Outcome::Created(vec![id.0]))
            }
            Op::PutNetworkAclEntry {
                acl,
                replace,
                entry,
            } => {
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
                    .filter(|e| {
                        e.egress == entry.egress && e.cidr.is_v4() == new_entry_is_v4(&entry.cidr)
                    })
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
            Op::DeleteNetworkAclEntry {
                acl,
                rule_number,
                egress,
            } => {
                let target = self.acl(acl)?;
                if !target
                    .entries
                    .iter()
                    .any(|e| e.rule_number == *rule_number && e.egress == *egress)
                {
                    return Err(ApiError::new(
                        Ec2ErrorCode::InvalidNetworkAclEntryNotFound,
                        format!(
                            "The network acl entry identified by {rule_number} does not exist."
                        ),
                    ));
                }
                if let Some(target) = self.network_acls.get_mut(acl) {
                    target
                        .entries
                        .retain(|e| !(e.rule_number == *rule_number && e.egress == *egress));
                }
                Ok(Outcome::Done)
            }
            Op::AssociateNetworkAcl { subnet, acl } => {
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
            Op::RequestPeering { vpc, peer_vpc } => {
                let a = self.vpc(vpc)?;
                let b = self.vpc(peer_vpc)?;
                if a.id == b.id || a.cidr.contains_cidr(&b.cidr) || b.cidr.contains_cidr(&a.cidr) {
                    return Err(ApiError::new(
                        Ec2ErrorCode::InvalidVpcPeeringConnectionOverlap,
                        "The VPCs are the same or their CIDR blocks overlap",
                    ));
                }
                let id = PeeringId(ids.fresh_id(ObjectKind::Peering));
                self.peerings.insert(
                    id.0.clone(),
                    Peering {
                        id: id.clone(),
                        requester: VpcId(vpc.clone()),
                        accepter: VpcId(peer_vpc.clone()),
                        state: PeeringState::PendingAcceptance,
                    },
                );
                Ok(Outcome::Created(vec![id.0]))
            }
            Op::AcceptPeering { peering } => {
                if self.peering(peering)?.state != PeeringState::PendingAcceptance {
                    return Err(ApiError::new(
                        Ec2ErrorCode::InvalidStateTransition,
                        format!("The peering connection {peering} is not pending acceptance"),
                    ));
                }
                if let Some(p) = self.peerings.get_mut(peering) {
                    p.state = PeeringState::Active;
                }
                Ok(Outcome::Done)
            }
            Op::DeletePeering { peering } => {
                if self.peering(peering)?.state == PeeringState::Deleted {
                    return Err(ApiError::new(
                        Ec2ErrorCode::InvalidStateTransition,
                        format!("The peering connection {peering} is already deleted"),
                    ));
                }
                if let Some(p) = self.peerings.get_mut(peering) {
                    p.state = PeeringState::Deleted;
                }
                Ok(Outcome::Done)
            }
            Op::CreatePrefixList {
                name,
                max_entries,
                cidrs,
            } => {
                let cidrs = Self::prefix_cidrs(cidrs, *max_entries)?;
                let ipv6 = cidrs.first().is_some_and(|c| !c.is_v4());
                let id = PrefixListId(ids.fresh_id(ObjectKind::PrefixList));
                self.prefix_lists.insert(
                    id.0.clone(),
                    PrefixList {
                        id: id.clone(),
                        name: name.clone(),
                        cidrs,
                        max_entries: *max_entries,
                        ipv6,
                        version: 1,
                        descriptions: BTreeMap::new(),
                    },
                );
                Ok(Outcome::Created(vec![id.0]))
            }
            Op::ModifyPrefixList {
                prefix_list,
                add,
                remove,
            } => {
                let list = self.prefix_list(prefix_list)?;
                let remove = Self::prefix_cidrs(remove, usize::MAX)?;
                let mut cidrs: Vec<String> = list
                    .cidrs
                    .iter()
                    .filter(|c| !remove.contains(c))
                    .map(ToString::to_string)
                    .collect();
                cidrs.extend(add.iter().cloned());
                let cidrs = Self::prefix_cidrs(&cidrs, list.max_entries)?;
                if let Some(list) = self.prefix_lists.get_mut(prefix_list) {
                    list.cidrs = cidrs;
                    list.version += 1;
                }
                Ok(Outcome::Done)
            }
            Op::DeletePrefixList { prefix_list } => {
                self.prefix_list(prefix_list)?;
                let referenced = self.security_groups.values().any(|g| {
                    g.ingress.iter().chain(&g.egress).any(
                        |r| matches!(&r.peer, Peer::PrefixList(p) if p.as_str() == prefix_list),
                    )
                });
                if referenced {
                    return Err(ApiError::new(
                        Ec2ErrorCode::DependencyViolation,
                        format!("prefix list {prefix_list} is referenced by a security group rule"),
                    ));
                }
                self.prefix_lists.remove(prefix_list);
                self.tags.remove(prefix_list);
                Ok(Outcome::Done)
            }
            Op::CreateTags { resources, tags } => {
                for resource in resources {
                    if !self.exists(resource) {
                        return Err(ApiError::new(
                            Ec2ErrorCode::InvalidId,
                            format!("The ID '{resource}' is not valid"),
                        ));
                    }
                }
                for resource in resources {
                    let entry = self.tags.entry(resource.clone()).or_default();
                    for (key, value) in tags {
                        entry.insert(key.clone(), value.clone());
                    }
                }
                Ok(Outcome::Done)
            }
            Op::DeleteSubnet { subnet } => {
                self.subnet(subnet)?;
                if self.enis.values().any(|e| e.subnet.as_str() == subnet) {
                    return Err(ApiError::new(
                        Ec2ErrorCode::DependencyViolation,
                        format!("The subnet '{subnet}' has dependencies and cannot be deleted."),
                    ));
                }
                self.subnets.remove(subnet);
                self.tags.remove(subnet);
                Ok(Outcome::Done)
            }
            Op::UpdateRuleDescriptions {
                group,
                egress,
                by_permission,
                by_id,
            } => {
                let target = self.group(group)?;
                let mut rules = target.rules(*egress).to_vec();
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
                    if description.chars().count() > 255 {
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
                self.set_rules(group, *egress, rules);
                Ok(Outcome::Done)
            }
            Op::CreateNetworkInterfaceV2 { .. }
            | Op::SetNetworkInterfaceDescription { .. }
            | Op::DeleteNetworkAcl { .. }
            | Op::ReplaceNetworkAclAssociation { .. }
            | Op::CreateManagedPrefixList { .. }
            | Op::ModifyManagedPrefixList { .. }
            | Op::DeleteTagsMatching { .. }
            | Op::ModifyVpcAttribute { .. } => self.apply_extended(op, ids),
            Op::DeleteTags { resources, keys } => {
                for resource in resources {
                    if let Some(entry) = self.tags.get_mut(resource) {
                        for key in keys {
                            entry.remove(key);
                        }
                        if entry.is_empty() {
                            self.tags.remove(resource);
                        }
                    }
                }
                Ok(Outcome::Done)
            }
        }
    }

    fn exists(&self, id: &str) -> bool {
        self.vpcs.contains_key(id)
            || self.subnets.contains_key(id)
            || self.security_groups.contains_key(id)
            || self.enis.contains_key(id)
            || self.network_acls.contains_key(id)
            || self.peerings.contains_key(id)
            || self.prefix_lists.contains_key(id)
            || self.vpc_of_route_table(id).is_some()
            || (id.starts_with("sgr-") && self.rule_exists(id))
    }

    /// Rule ids are not indexed (they live inside their group), so a
    /// lookup scans: only CreateTags on an `sgr-` id needs it.
    fn rule_exists(&self, id: &str) -> bool {
        self.security_groups.values().any(|g| {
            g.ingress
                .iter()
                .chain(&g.egress)
                .any(|r| r.id.as_str() == id)
        })
    }

    fn prefix_cidrs(texts: &[String], max: usize) -> Result<Vec<IpCidr>, ApiError> {
        let mut cidrs: Vec<IpCidr> = Vec::new();
        for text in texts {
            let cidr = parse_cidr(text)?;
            if !cidrs.contains(&cidr) {
                cidrs.push(cidr);
            }
        }
        if cidrs.len() > max {
            return Err(ApiError::new(
                Ec2ErrorCode::PrefixListMaxEntriesExceeded,
                format!("The prefix list has more than its maximum of {max} entries"),
            ));
        }
        Ok(cidrs)
    }

    fn check_eni_groups(&self, vpc: &VpcId, groups: &[String]) -> Result<Vec<SgId>, ApiError> {
        let mut out: Vec<SgId> = Vec::new();
        for id in groups {
            let group = self.group(id)?;
            if &group.vpc != vpc {
                return Err(ApiError::invalid_value(format!(
                    "Security group {id} and subnet belong to different networks."
                )));
            }
            if !out.contains(&group.id) {
                out.push(group.id.clone());
            }
        }
        if out.len() > self.quotas.groups_per_eni {
            return Err(ApiError::new(
                Ec2ErrorCode::SecurityGroupsPerInterfaceLimitExceeded,
                "You have exceeded the maximum number of security groups allowed per network interface.",
            ));
        }
        let total: usize = out
            .iter()
            .filter_map(|g| self.security_groups.get(g.as_str()))
            .map(|g| g.ingress.len().max(g.egress.len()))
            .sum();
        if total > self.quotas.rules_per_eni {
            return Err(ApiError::new(
                Ec2ErrorCode::RulesPerSecurityGroupLimitExceeded,
                "The rules of this interface's groups would exceed the per-interface rule limit.",
            ));
        }
        Ok(out)
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
    fn remove_group_tags(&mut self, group: &str) {
        if let Some(target) = self.security_groups.get(group) {
            for rule in target.ingress.iter().chain(&target.egress) {
                self.tags.remove(rule.id.as_str());
            }
        }
        self.tags.remove(group);
    }

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
        model
    }
}

fn new_entry_is_v4(text: &str) -> bool {
    !text.contains(':')
}

/// The default ACL's allow-all entries (rule 100, each direction, each
/// family the VPC has); the `*` denies are implicit in the data plane.
fn default_acl_entries(ipv6: bool) -> Vec<NaclEntry> {
    let mut cidrs = vec![IpCidr::V4(Ipv4Cidr::ANY)];
    if ipv6 {
        cidrs.push(IpCidr::V6(Ipv6Cidr::ANY));
    }
    let mut entries = Vec::new();
    for egress in [false, true] {
        for (i, cidr) in cidrs.iter().enumerate() {
            entries.push(NaclEntry {
                rule_number: 100 + i as u16,
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

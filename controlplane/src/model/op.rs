//! [`Op`]: one change to the model, one EC2 action, as the API parses it
//! and the store journals it; [`Outcome`]: what an accepted op produced.
//! Each op's rules live with its resource; [`Model::apply`](super::Model::apply)
//! only dispatches.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{
    EniChange, Ipv6Request, NaclEntryRequest, NewNetworkInterface, Permission,
    PrefixListEntryRequest, SubnetAttribute, SubnetOptions, TagToDelete, VpcAttribute,
};

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
    /// ModifyVpcAttribute: one attribute, kept (see [`VpcAttributes`](super::VpcAttributes)).
    ModifyVpcAttribute {
        /// The VPC.
        vpc: String,
        /// Which attribute.
        attribute: VpcAttribute,
        /// Its new value.
        value: bool,
    },
    /// CreateVpc with `AmazonProvidedIpv6CidrBlock` (or any
    /// [`Ipv6Request`]).
    CreateVpcWithIpv6 {
        /// IPv4 block.
        cidr: String,
        /// Where the IPv6 block comes from.
        ipv6: Ipv6Request,
    },
    /// AssociateVpcCidrBlock (IPv6); the outcome names the block.
    AssociateVpcIpv6CidrBlock {
        /// The VPC.
        vpc: String,
        /// Where the block comes from.
        ipv6: Ipv6Request,
    },
    /// DisassociateVpcCidrBlock (IPv6).
    DisassociateVpcIpv6CidrBlock {
        /// The VPC.
        vpc: String,
    },
    /// CreateSubnet with its IPv6 block and zone.
    CreateSubnetWithOptions {
        /// The VPC.
        vpc: String,
        /// Its IPv4 block.
        cidr: String,
        /// The rest.
        options: SubnetOptions,
    },
    /// AssociateSubnetCidrBlock; the outcome names the block.
    AssociateSubnetIpv6CidrBlock {
        /// The subnet.
        subnet: String,
        /// Its IPv6 block.
        cidr: String,
    },
    /// DisassociateSubnetCidrBlock.
    DisassociateSubnetIpv6CidrBlock {
        /// The subnet.
        subnet: String,
    },
    /// ModifySubnetAttribute: one attribute.
    ModifySubnetAttribute {
        /// The subnet.
        subnet: String,
        /// Which attribute.
        attribute: SubnetAttribute,
        /// Its new value.
        value: bool,
    },
    /// CreateDefaultVpc: the default VPC with a default subnet per zone.
    CreateDefaultVpc {
        /// The region's zones, in order.
        zones: Vec<String>,
    },
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

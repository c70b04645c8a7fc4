//! Subnets: a block inside their VPC's, and the one network ACL each is
//! associated with.

use std::net::IpAddr;

use palisade_policy::{IpCidr, Ipv4Cidr, Ipv6Cidr, NaclId, SubnetId, VpcId};
use serde::{Deserialize, Serialize};

use super::derived::initial_network_acl_association_id;
use super::fields::{not_found, parse_cidr, parse_v4};
use super::vpc::IPV4_PREFIX_RANGE;
use super::{ApiError, Ec2ErrorCode, IdSource, Model, ObjectKind, Outcome};

/// AWS's subnet IPv6 block sizes: /44 to /64.
pub const SUBNET_IPV6_PREFIX_RANGE: core::ops::RangeInclusive<u8> = 44..=64;

/// Whether an IPv6 block of `len` bits is one AWS gives a subnet: in
/// [`SUBNET_IPV6_PREFIX_RANGE`], in steps of 4.
pub fn is_subnet_ipv6_prefix(len: u8) -> bool {
    SUBNET_IPV6_PREFIX_RANGE.contains(&len) && len % 4 == 0
}

/// Whether two blocks of one family share an address.
pub fn blocks_overlap(a: IpCidr, b: IpCidr) -> bool {
    match (a, b) {
        (IpCidr::V4(a), IpCidr::V4(b)) => a.contains_cidr(&b) || b.contains_cidr(&a),
        (IpCidr::V6(a), IpCidr::V6(b)) => a.contains_cidr(&b) || b.contains_cidr(&a),
        _ => false,
    }
}

/// AWS reserves the first four addresses (network, router, DNS, future
/// use) and the last one of every subnet block, IPv4 and IPv6 alike.
pub fn is_reserved(block: IpCidr, ip: IpAddr) -> bool {
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
    /// What ModifySubnetAttribute set.
    #[serde(default)]
    pub attributes: SubnetAttributes,
    /// Its availability zone's name; `None` (subnets created before zones
    /// existed) is the region's first zone.
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// Whether it is its zone's default subnet of the default VPC.
    #[serde(default)]
    pub default_for_az: bool,
}

/// The subnet attributes ModifySubnetAttribute sets. palisade launches no
/// instances, so it keeps them for clients to read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubnetAttributes {
    /// `MapPublicIpOnLaunch`.
    pub map_public_ip_on_launch: bool,
    /// `AssignIpv6AddressOnCreation`: AWS allows it only with an IPv6 block.
    pub assign_ipv6_address_on_creation: bool,
}

/// One attribute of [`SubnetAttributes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubnetAttribute {
    /// `MapPublicIpOnLaunch`.
    MapPublicIpOnLaunch,
    /// `AssignIpv6AddressOnCreation`.
    AssignIpv6AddressOnCreation,
}

/// What CreateSubnet asks for beyond its VPC and IPv4 block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubnetOptions {
    /// `Ipv6CidrBlock`.
    pub ipv6_cidr: Option<String>,
    /// `AvailabilityZone` (already checked against the region's zones).
    pub availability_zone: Option<String>,
    /// A default subnet (CreateDefaultVpc only).
    pub default_for_az: bool,
}

impl Subnet {
    /// Its current ACL association id (`aclassoc-…`).
    pub fn network_acl_association_id(&self) -> String {
        self.network_acl_association
            .clone()
            .unwrap_or_else(|| initial_network_acl_association_id(self.id.as_str()))
    }
}

impl Model {
    pub(super) fn subnet(&self, id: &str) -> Result<&Subnet, ApiError> {
        self.subnets
            .get(id)
            .ok_or_else(|| not_found(Ec2ErrorCode::InvalidSubnetIdNotFound, "subnet", id))
    }

    /// Checks an IPv6 block for a subnet of `vpc`: a /44../64 (steps of 4)
    /// inside the VPC's IPv6 block, overlapping no other subnet's.
    fn subnet_ipv6_block(&self, vpc: &str, text: &str) -> Result<Ipv6Cidr, ApiError> {
        let parent = self.vpc(vpc)?;
        let block = match parse_cidr(text)? {
            IpCidr::V6(c) => c,
            IpCidr::V4(_) => {
                return Err(ApiError::invalid_value(format!(
                    "{text} is not an IPv6 block"
                )));
            }
        };
        let Some(vpc_block) = parent.ipv6_cidr else {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidSubnetRange,
                format!(
                    "The IPv6 CIDR '{block}' is invalid: the vpc '{vpc}' has no IPv6 CIDR block."
                ),
            ));
        };
        if !is_subnet_ipv6_prefix(block.prefix_len()) || !vpc_block.contains_cidr(&block) {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidSubnetRange,
                format!(
                    "The IPv6 CIDR '{block}' is invalid: it must be a /64 (or /44 to /60 in steps of 4) inside {vpc_block}."
                ),
            ));
        }
        let overlaps = self.subnets.values().any(|s| {
            s.vpc.as_str() == vpc
                && s.ipv6_cidr
                    .is_some_and(|o| blocks_overlap(IpCidr::V6(o), IpCidr::V6(block)))
        });
        if overlaps {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidSubnetConflict,
                format!("The CIDR '{block}' conflicts with another subnet"),
            ));
        }
        Ok(block)
    }

    /// CreateSubnet: inside its VPC, overlapping no other subnet.
    pub(super) fn create_subnet(
        &mut self,
        vpc: &str,
        cidr: &str,
        options: &SubnetOptions,
        ids: &mut dyn IdSource,
    ) -> Result<Outcome, ApiError> {
        let ipv6_cidr = match &options.ipv6_cidr {
            Some(text) => Some(self.subnet_ipv6_block(vpc, text)?),
            None => None,
        };
        let parent = self.vpc(vpc)?;
        let cidr = parse_v4(cidr)?;
        if !parent.cidr.contains_cidr(&cidr) || !IPV4_PREFIX_RANGE.contains(&cidr.prefix_len()) {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidSubnetRange,
                format!("The CIDR '{cidr}' is invalid."),
            ));
        }
        let overlaps = self
            .subnets
            .values()
            .any(|s| s.vpc.as_str() == vpc && blocks_overlap(IpCidr::V4(s.cidr), IpCidr::V4(cidr)));
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
                vpc: VpcId(vpc.to_owned()),
                cidr,
                ipv6_cidr,
                network_acl: acl,
                network_acl_association: None,
                attributes: SubnetAttributes::default(),
                availability_zone: options.availability_zone.clone(),
                default_for_az: options.default_for_az,
            },
        );
        Ok(Outcome::Created(vec![id.0]))
    }

    /// DeleteSubnet: refused while a network interface is in it.
    pub(super) fn delete_subnet(&mut self, subnet: &str) -> Result<Outcome, ApiError> {
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

    /// AssociateSubnetCidrBlock: one IPv6 block per subnet.
    pub(super) fn associate_subnet_ipv6(
        &mut self,
        subnet: &str,
        cidr: &str,
    ) -> Result<Outcome, ApiError> {
        let target = self.subnet(subnet)?;
        if target.ipv6_cidr.is_some() {
            return Err(ApiError::new(
                Ec2ErrorCode::CidrLimitExceeded,
                format!("The subnet '{subnet}' already has an IPv6 CIDR block associated."),
            ));
        }
        let vpc = target.vpc.0.clone();
        let block = self.subnet_ipv6_block(&vpc, cidr)?;
        if let Some(target) = self.subnets.get_mut(subnet) {
            target.ipv6_cidr = Some(block);
        }
        Ok(Outcome::Created(vec![block.to_string()]))
    }

    /// DisassociateSubnetCidrBlock: refused while an interface of the
    /// subnet has an IPv6 address; turns AssignIpv6AddressOnCreation off.
    pub(super) fn disassociate_subnet_ipv6(&mut self, subnet: &str) -> Result<Outcome, ApiError> {
        if self.subnet(subnet)?.ipv6_cidr.is_none() {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidAssociationIdNotFound,
                format!("The subnet '{subnet}' has no IPv6 CIDR block association."),
            ));
        }
        let in_use = self
            .enis
            .values()
            .any(|e| e.subnet.as_str() == subnet && e.private_ips.iter().any(IpAddr::is_ipv6));
        if in_use {
            return Err(ApiError::new(
                Ec2ErrorCode::DependencyViolation,
                format!(
                    "The IPv6 CIDR block of '{subnet}' is in use by a network interface: unassign its IPv6 addresses first."
                ),
            ));
        }
        if let Some(target) = self.subnets.get_mut(subnet) {
            target.ipv6_cidr = None;
            target.attributes.assign_ipv6_address_on_creation = false;
        }
        Ok(Outcome::Done)
    }

    /// ModifySubnetAttribute.
    pub(super) fn modify_subnet_attribute(
        &mut self,
        subnet: &str,
        attribute: SubnetAttribute,
        value: bool,
    ) -> Result<Outcome, ApiError> {
        let target = self.subnet(subnet)?;
        if attribute == SubnetAttribute::AssignIpv6AddressOnCreation
            && value
            && target.ipv6_cidr.is_none()
        {
            return Err(ApiError::invalid_value(format!(
                "Invalid value 'true' for assignIpv6AddressOnCreation. Cannot set assignIpv6AddressOnCreation to true unless the subnet ({subnet}) has an IPv6 CIDR block associated with it."
            )));
        }
        if let Some(target) = self.subnets.get_mut(subnet) {
            match attribute {
                SubnetAttribute::MapPublicIpOnLaunch => {
                    target.attributes.map_public_ip_on_launch = value;
                }
                SubnetAttribute::AssignIpv6AddressOnCreation => {
                    target.attributes.assign_ipv6_address_on_creation = value;
                }
            }
        }
        Ok(Outcome::Done)
    }
}

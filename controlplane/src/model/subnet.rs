//! Subnets: a block inside their VPC's, and the one network ACL each is
//! associated with.

use std::net::IpAddr;

use palisade_policy::{IpCidr, Ipv4Cidr, Ipv6Cidr, NaclId, SubnetId, VpcId};
use serde::{Deserialize, Serialize};

use super::derived::initial_network_acl_association_id;
use super::fields::{not_found, parse_v4};
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

    /// CreateSubnet: inside its VPC, overlapping no other subnet.
    pub(super) fn create_subnet(
        &mut self,
        vpc: &str,
        cidr: &str,
        ids: &mut dyn IdSource,
    ) -> Result<Outcome, ApiError> {
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
                ipv6_cidr: None,
                network_acl: acl,
                network_acl_association: None,
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
}

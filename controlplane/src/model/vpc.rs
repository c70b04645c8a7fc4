//! VPCs: their blocks, their attributes, and the defaults each one is
//! created with (the `default` group and the default network ACL).

use palisade_policy::{IpCidr, Ipv4Cidr, Ipv6Cidr, NaclId, SgId, VpcId};
use serde::{Deserialize, Serialize};

use super::derived::route_table_id;
use super::fields::{not_found, parse_cidr, parse_v4};
use super::network_acl::default_acl_entries;
use super::{
    ApiError, Ec2ErrorCode, IdSource, Model, NetworkAcl, ObjectKind, Outcome, PeeringState,
};

/// AWS's VPC and subnet IPv4 block sizes: /16 to /28.
pub const IPV4_PREFIX_RANGE: core::ops::RangeInclusive<u8> = 16..=28;
/// AWS's VPC IPv6 block sizes: /44 to /60 (/56 when Amazon provides it).
pub const VPC_IPV6_PREFIX_RANGE: core::ops::RangeInclusive<u8> = 44..=60;
/// The name of the security group and network ACL every VPC has.
pub const DEFAULT_NAME: &str = "default";
/// The default group's `GroupDescription` in EC2.
pub const DEFAULT_GROUP_DESCRIPTION: &str = "default VPC security group";

/// Whether an IPv6 block of `len` bits is one AWS gives a VPC: in
/// [`VPC_IPV6_PREFIX_RANGE`], in steps of 4.
pub fn is_vpc_ipv6_prefix(len: u8) -> bool {
    VPC_IPV6_PREFIX_RANGE.contains(&len) && len % 4 == 0
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

impl Model {
    pub(super) fn vpc(&self, id: &str) -> Result<&Vpc, ApiError> {
        self.vpcs
            .get(id)
            .ok_or_else(|| not_found(Ec2ErrorCode::InvalidVpcIdNotFound, "vpc", id))
    }

    /// CreateVpc, with its default group and ACL.
    pub(super) fn create_vpc(
        &mut self,
        cidr: &str,
        ipv6_cidr: Option<&str>,
        ids: &mut dyn IdSource,
    ) -> Result<Outcome, ApiError> {
        let cidr = parse_v4(cidr)?;
        if !IPV4_PREFIX_RANGE.contains(&cidr.prefix_len()) {
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
        let group = self.new_group(ids, &id, DEFAULT_NAME, DEFAULT_GROUP_DESCRIPTION, true);
        if let Some(vpc) = self.vpcs.get_mut(id.as_str()) {
            vpc.default_group = group;
        }
        Ok(Outcome::Created(vec![id.0]))
    }

    /// DeleteVpc: only once nothing but its defaults is left in it.
    pub(super) fn delete_vpc(&mut self, vpc: &str) -> Result<Outcome, ApiError> {
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

    /// ModifyVpcAttribute.
    pub(super) fn modify_vpc_attribute(
        &mut self,
        vpc: &str,
        attribute: VpcAttribute,
        value: bool,
    ) -> Result<Outcome, ApiError> {
        let mut attributes = self.vpc(vpc)?.attributes;
        *attribute.slot(&mut attributes) = value;
        let enables_hostnames = attribute == VpcAttribute::EnableDnsHostnames && value;
        if enables_hostnames && !attributes.enable_dns_support {
            // AWS: "You can only enable DNS hostnames if you've
            // enabled DNS support."
            return Err(ApiError::invalid_value(
                "DNS hostnames cannot be enabled while DNS resolution (enableDnsSupport) is disabled",
            ));
        }
        if let Some(target) = self.vpcs.get_mut(vpc) {
            target.attributes = attributes;
        }
        Ok(Outcome::Done)
    }
}

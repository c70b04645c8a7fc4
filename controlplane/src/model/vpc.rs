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
    /// Whether its IPv6 block came from the appliance's pool, which stands
    /// in for Amazon's (`Ipv6Pool` `Amazon`), rather than being given.
    #[serde(default)]
    pub ipv6_amazon: bool,
    /// Whether it is the account's default VPC (`isDefault`).
    #[serde(default)]
    pub is_default: bool,
}

/// Where a VPC's IPv6 block comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ipv6Request {
    /// `Ipv6CidrBlock`: this block.
    Block(String),
    /// `AmazonProvidedIpv6CidrBlock`: the next free /56 of this pool (the
    /// appliance's `ipv6_pool`, carried in the op so that replaying the
    /// journal allocates the same block whatever the file says later).
    Amazon {
        /// The pool, an IPv6 block of /56 or larger.
        pool: String,
    },
}

/// The default VPC's block.
pub const DEFAULT_VPC_CIDR: &str = "172.31.0.0/16";
/// How many /20 default subnets fit in [`DEFAULT_VPC_CIDR`].
pub const DEFAULT_VPC_MAX_ZONES: usize = 16;

/// The size of the block AWS gives a VPC from its own pool.
pub const AMAZON_IPV6_PREFIX: u8 = 56;

/// The first /56 of `pool` that overlaps none of `taken`.
pub fn next_free_ipv6_block(pool: Ipv6Cidr, taken: &[Ipv6Cidr]) -> Result<Ipv6Cidr, ApiError> {
    let exhausted = || {
        ApiError::new(
            Ec2ErrorCode::InsufficientCidrBlocks,
            format!("There are no free /{AMAZON_IPV6_PREFIX} IPv6 blocks left in the pool {pool}."),
        )
    };
    let Some(bits) = AMAZON_IPV6_PREFIX.checked_sub(pool.prefix_len()) else {
        return Err(exhausted());
    };
    let base = u128::from(pool.network());
    for n in 0..(1u128 << bits) {
        let candidate = Ipv6Cidr::truncating(
            std::net::Ipv6Addr::from(base | (n << (128 - u32::from(AMAZON_IPV6_PREFIX)))),
            AMAZON_IPV6_PREFIX,
        );
        if !taken
            .iter()
            .any(|t| t.contains_cidr(&candidate) || candidate.contains_cidr(t))
        {
            return Ok(candidate);
        }
    }
    Err(exhausted())
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

    /// The block `request` names: the given one, or the next free /56 of
    /// the pool; and whether it is Amazon-provided.
    fn resolve_ipv6(&self, request: &Ipv6Request) -> Result<(Ipv6Cidr, bool), ApiError> {
        let parse_v6 = |text: &str| match parse_cidr(text)? {
            IpCidr::V6(c) => Ok(c),
            IpCidr::V4(_) => Err(ApiError::invalid_value(format!(
                "{text} is not an IPv6 block"
            ))),
        };
        match request {
            Ipv6Request::Block(text) => Ok((parse_v6(text)?, false)),
            Ipv6Request::Amazon { pool } => {
                let pool = parse_v6(pool)?;
                let taken: Vec<Ipv6Cidr> = self.vpcs.values().filter_map(|v| v.ipv6_cidr).collect();
                Ok((next_free_ipv6_block(pool, &taken)?, true))
            }
        }
    }

    /// CreateVpc, with its default group and ACL.
    pub(super) fn create_vpc(
        &mut self,
        cidr: &str,
        ipv6: Option<&Ipv6Request>,
        ids: &mut dyn IdSource,
    ) -> Result<Outcome, ApiError> {
        let cidr = parse_v4(cidr)?;
        if !IPV4_PREFIX_RANGE.contains(&cidr.prefix_len()) {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidVpcRange,
                format!("The CIDR '{cidr}' is invalid."),
            ));
        }
        let (ipv6_cidr, ipv6_amazon) = match ipv6 {
            None => (None, false),
            Some(request) => {
                let (block, amazon) = self.resolve_ipv6(request)?;
                (Some(block), amazon)
            }
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
                ipv6_amazon,
                is_default: false,
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

    /// AssociateVpcCidrBlock for IPv6: one block per VPC here (AWS allows
    /// more only with pools palisade does not have).
    pub(super) fn associate_vpc_ipv6(
        &mut self,
        vpc: &str,
        request: &Ipv6Request,
    ) -> Result<Outcome, ApiError> {
        if self.vpc(vpc)?.ipv6_cidr.is_some() {
            return Err(ApiError::new(
                Ec2ErrorCode::CidrLimitExceeded,
                format!("The vpc '{vpc}' already has an IPv6 CIDR block associated."),
            ));
        }
        let (block, amazon) = self.resolve_ipv6(request)?;
        if let Some(target) = self.vpcs.get_mut(vpc) {
            target.ipv6_cidr = Some(block);
            target.ipv6_amazon = amazon;
        }
        Ok(Outcome::Created(vec![block.to_string()]))
    }

    /// DisassociateVpcCidrBlock for IPv6: refused while a subnet of the
    /// VPC still has an IPv6 block (AWS: disassociate those first).
    pub(super) fn disassociate_vpc_ipv6(&mut self, vpc: &str) -> Result<Outcome, ApiError> {
        if self.vpc(vpc)?.ipv6_cidr.is_none() {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidAssociationIdNotFound,
                format!("The vpc '{vpc}' has no IPv6 CIDR block association."),
            ));
        }
        if self
            .subnets
            .values()
            .any(|s| s.vpc.as_str() == vpc && s.ipv6_cidr.is_some())
        {
            return Err(ApiError::new(
                Ec2ErrorCode::DependencyViolation,
                format!(
                    "The IPv6 CIDR block of '{vpc}' is used by a subnet: disassociate the subnets' IPv6 blocks first."
                ),
            ));
        }
        if let Some(target) = self.vpcs.get_mut(vpc) {
            target.ipv6_cidr = None;
            target.ipv6_amazon = false;
        }
        Ok(Outcome::Done)
    }

    /// CreateDefaultVpc: 172.31.0.0/16 with a default /20 subnet per zone
    /// (172.31.0.0/20, 172.31.16.0/20, …, at most 16), DNS hostnames on
    /// and public addresses mapped on launch, as AWS makes it.
    pub(super) fn create_default_vpc(
        &mut self,
        zones: &[String],
        ids: &mut dyn IdSource,
    ) -> Result<Outcome, ApiError> {
        if let Some(existing) = self.vpcs.values().find(|v| v.is_default) {
            return Err(ApiError::new(
                Ec2ErrorCode::DefaultVpcAlreadyExists,
                format!(
                    "A Default VPC already exists for this account in this region: {}.",
                    existing.id
                ),
            ));
        }
        if zones.len() > DEFAULT_VPC_MAX_ZONES {
            return Err(ApiError::invalid_value(format!(
                "A default VPC has at most {DEFAULT_VPC_MAX_ZONES} default subnets; {} zones were given.",
                zones.len()
            )));
        }
        let Outcome::Created(created) = self.create_vpc(DEFAULT_VPC_CIDR, None, ids)? else {
            return Err(ApiError::new(
                Ec2ErrorCode::InternalError,
                "CreateVpc named no VPC",
            ));
        };
        let Some(vpc) = created.into_iter().next() else {
            return Err(ApiError::new(
                Ec2ErrorCode::InternalError,
                "CreateVpc named no VPC",
            ));
        };
        if let Some(target) = self.vpcs.get_mut(&vpc) {
            target.is_default = true;
            target.attributes.enable_dns_hostnames = true;
        }
        for (n, zone) in zones.iter().enumerate() {
            let cidr = format!("172.31.{}.0/20", n * 16);
            let options = super::SubnetOptions {
                ipv6_cidr: None,
                availability_zone: Some(zone.clone()),
                default_for_az: true,
            };
            if let Outcome::Created(subnet) = self.create_subnet(&vpc, &cidr, &options, ids)? {
                for id in subnet {
                    if let Some(s) = self.subnets.get_mut(&id) {
                        s.attributes.map_public_ip_on_launch = true;
                    }
                }
            }
        }
        Ok(Outcome::Created(vec![vpc]))
    }
}

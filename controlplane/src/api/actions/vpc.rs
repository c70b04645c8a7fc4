//! VPC and subnet actions: CreateVpc, DeleteVpc, DescribeVpcs,
//! Describe/ModifyVpcAttribute, CreateSubnet, DeleteSubnet, DescribeSubnets.

use super::{apply_tags, paginate, tag_filter, tag_specifications, unknown_filter, write_tags};
use crate::api::params::missing;
use crate::api::{Context, Params, Xml};
use crate::model::Ec2ErrorCode;
use crate::model::{
    ApiError, Ipv6Request, Model, Op, Outcome, Subnet, SubnetAttribute, SubnetOptions, Vpc,
    VpcAttribute, Zone, availability_zones,
};

fn created_id(outcome: Outcome) -> Result<String, ApiError> {
    match outcome {
        Outcome::Created(ids) => ids
            .into_iter()
            .next()
            .ok_or_else(crate::api::internal_error),
        Outcome::Done => Err(crate::api::internal_error()),
    }
}

/// `vpc-0123…` → `vpc-cidr-assoc-0123…`: stable association ids without
/// storing them.
fn association_id(prefix: &str, id: &str) -> String {
    let hex = id.split_once('-').map_or(id, |(_, h)| h);
    format!("{prefix}-{hex}")
}

fn write_vpc(out: &mut Xml, cx: &Context<'_>, model: &Model, vpc: &Vpc) {
    out.leaf("vpcId", &vpc.id)
        .leaf("ownerId", cx.account_id())
        .leaf("state", "available")
        .leaf("cidrBlock", vpc.cidr)
        .leaf("dhcpOptionsId", "default")
        .leaf("instanceTenancy", "default")
        .leaf("isDefault", vpc.is_default);
    out.list("cidrBlockAssociationSet", [vpc.cidr], |x, cidr| {
        x.leaf(
            "associationId",
            association_id("vpc-cidr-assoc", vpc.id.as_str()),
        )
        .leaf("cidrBlock", cidr)
        .element("cidrBlockState", |x| {
            x.leaf("state", "associated");
        });
    });
    out.list("ipv6CidrBlockAssociationSet", vpc.ipv6_cidr, |x, cidr| {
        x.leaf(
            "associationId",
            association_id("vpc-cidr-assoc-v6", vpc.id.as_str()),
        )
        .leaf("ipv6CidrBlock", cidr)
        .element("ipv6CidrBlockState", |x| {
            x.leaf("state", "associated");
        })
        .leaf("networkBorderGroup", &cx.settings().region);
        if vpc.ipv6_amazon {
            x.leaf("ipv6Pool", "Amazon");
        }
    });
    write_tags(out, model.tags.get(vpc.id.as_str()));
}

/// Where `p` asks a VPC's IPv6 block to come from, if it asks.
fn ipv6_request(cx: &Context<'_>, p: &Params) -> Result<Option<Ipv6Request>, ApiError> {
    let amazon = p.bool("AmazonProvidedIpv6CidrBlock")? == Some(true);
    match (amazon, p.get("Ipv6CidrBlock")) {
        (true, Some(_)) => Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterCombination,
            "AmazonProvidedIpv6CidrBlock cannot be combined with Ipv6CidrBlock",
        )),
        (true, None) => Ok(Some(Ipv6Request::Amazon {
            pool: cx.settings().ipv6_pool.to_string(),
        })),
        (false, Some(block)) => Ok(Some(Ipv6Request::Block(block.to_owned()))),
        (false, None) => Ok(None),
    }
}

pub(super) fn create_vpc(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let cidr = p.required("CidrBlock")?.to_owned();
    if let Some(tenancy) = p.get("InstanceTenancy") {
        if tenancy != "default" {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!(
                    "Value ({tenancy}) for parameter instanceTenancy is invalid. palisade supports only 'default'."
                ),
            ));
        }
    }
    let tags = tag_specifications(p, "vpc")?;
    let op = match ipv6_request(cx, p)? {
        Some(ipv6) => Op::CreateVpcWithIpv6 { cidr, ipv6 },
        None => Op::CreateVpc {
            cidr,
            ipv6_cidr: None,
        },
    };
    let id = created_id(cx.apply(&op)?)?;
    apply_tags(cx, &id, tags)?;
    cx.read(|model| {
        if let Some(vpc) = model.vpcs.get(&id) {
            out.element("vpc", |x| write_vpc(x, cx, model, vpc));
        }
    })
}

pub(super) fn delete_vpc(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let vpc = p.required("VpcId")?.to_owned();
    cx.apply(&Op::DeleteVpc { vpc })?;
    out.return_true();
    Ok(())
}

fn vpc_matches(
    cx: &Context<'_>,
    model: &Model,
    vpc: &Vpc,
    filter: &crate::api::Filter,
) -> Result<bool, ApiError> {
    if let Some(m) = tag_filter(filter, model.tags.get(vpc.id.as_str())) {
        return Ok(m);
    }
    let cidr = vpc.cidr.to_string();
    Ok(match filter.name.as_str() {
        "vpc-id" => filter.matches(vpc.id.as_str()),
        "cidr" | "cidr-block-association.cidr-block" | "cidrBlock" => filter.matches(&cidr),
        "cidr-block-association.state" | "ipv6-cidr-block-association.state" => {
            filter.matches("associated")
        }
        "cidr-block-association.association-id" => {
            filter.matches(&association_id("vpc-cidr-assoc", vpc.id.as_str()))
        }
        "ipv6-cidr-block-association.ipv6-cidr-block" => vpc
            .ipv6_cidr
            .is_some_and(|c| filter.matches(&c.to_string())),
        "ipv6-cidr-block-association.association-id" => {
            vpc.ipv6_cidr.is_some()
                && filter.matches(&association_id("vpc-cidr-assoc-v6", vpc.id.as_str()))
        }
        "ipv6-cidr-block-association.ipv6-pool" => vpc.ipv6_amazon && filter.matches("Amazon"),
        "is-default" | "isDefault" => filter.matches(if vpc.is_default { "true" } else { "false" }),
        "state" => filter.matches("available"),
        "owner-id" => filter.matches(cx.account_id()),
        "dhcp-options-id" => filter.matches("default"),
        name => return Err(unknown_filter(name)),
    })
}

pub(super) fn describe_vpcs(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let ids = p.list("VpcId")?;
    super::check_paging(p, !ids.is_empty())?;
    let filters = p.filters()?;
    cx.read(|model| -> Result<(), ApiError> {
        for id in &ids {
            if !model.vpcs.contains_key(*id) {
                return Err(vpc_not_found(id));
            }
        }
        let mut selected = Vec::new();
        for vpc in model.vpcs.values() {
            if !ids.is_empty() && !ids.contains(&vpc.id.as_str()) {
                continue;
            }
            let mut keep = true;
            for filter in &filters {
                keep &= vpc_matches(cx, model, vpc, filter)?;
            }
            if keep {
                selected.push(vpc);
            }
        }
        let (page, next) = paginate(selected, p, 5, !ids.is_empty())?;
        out.list("vpcSet", page, |x, vpc| write_vpc(x, cx, model, vpc));
        out.leaf_opt("nextToken", next);
        Ok(())
    })?
}

/// The attribute names of Describe/ModifyVpcAttribute: the `Attribute`
/// value, and the structure name ModifyVpcAttribute takes.
const VPC_ATTRIBUTES: [(&str, &str, VpcAttribute); 3] = [
    (
        "enableDnsSupport",
        "EnableDnsSupport",
        VpcAttribute::EnableDnsSupport,
    ),
    (
        "enableDnsHostnames",
        "EnableDnsHostnames",
        VpcAttribute::EnableDnsHostnames,
    ),
    (
        "enableNetworkAddressUsageMetrics",
        "EnableNetworkAddressUsageMetrics",
        VpcAttribute::EnableNetworkAddressUsageMetrics,
    ),
];

fn vpc_not_found(vpc: &str) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::InvalidVpcIdNotFound,
        format!("The vpc ID '{vpc}' does not exist"),
    )
}

pub(super) fn describe_vpc_attribute(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let vpc = p.required("VpcId")?.to_owned();
    let attribute = p.required("Attribute")?;
    let Some(&(name, _, which)) = VPC_ATTRIBUTES.iter().find(|(n, _, _)| *n == attribute) else {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            format!("Value ({attribute}) for parameter attribute is invalid. Unknown attribute."),
        ));
    };
    let value = cx
        .read(|model| model.vpcs.get(&vpc).map(|v| which.get(&v.attributes)))?
        .ok_or_else(|| vpc_not_found(&vpc))?;
    out.leaf("vpcId", &vpc).element(name, |x| {
        x.leaf("value", value);
    });
    Ok(())
}

/// Keeps the attribute (palisade serves no DNS and meters nothing, see
/// [`crate::model::VpcAttributes`]); one attribute per call, as in AWS.
pub(super) fn modify_vpc_attribute(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let vpc = p.required("VpcId")?.to_owned();
    let (attribute, value) = one_boolean_attribute(
        p,
        VPC_ATTRIBUTES
            .iter()
            .map(|&(_, parameter, which)| (parameter, which)),
        "EnableDnsSupport, EnableDnsHostnames or EnableNetworkAddressUsageMetrics",
    )?;
    cx.apply(&Op::ModifyVpcAttribute {
        vpc,
        attribute,
        value,
    })?;
    out.return_true();
    Ok(())
}

fn write_subnet(out: &mut Xml, cx: &Context<'_>, model: &Model, subnet: &Subnet) {
    let size: u64 = 1u64 << (32 - u32::from(subnet.cidr.prefix_len()));
    let used = model
        .enis
        .values()
        .filter(|e| e.subnet == subnet.id)
        .map(|e| e.private_ips.iter().filter(|ip| ip.is_ipv4()).count() as u64)
        .sum::<u64>();
    // AWS reserves five addresses per subnet.
    let available = size.saturating_sub(5 + used);
    let zone = subnet_zone(cx, subnet);
    out.leaf("subnetId", &subnet.id)
        .leaf(
            "subnetArn",
            format_args!(
                "arn:aws:ec2:{}:{}:subnet/{}",
                cx.region,
                cx.account_id(),
                subnet.id
            ),
        )
        .leaf("state", "available")
        .leaf("vpcId", &subnet.vpc)
        .leaf("cidrBlock", subnet.cidr)
        .leaf("availableIpAddressCount", available)
        .leaf("availabilityZone", &zone.name)
        .leaf("availabilityZoneId", &zone.id)
        .leaf("defaultForAz", subnet.default_for_az)
        .leaf(
            "mapPublicIpOnLaunch",
            subnet.attributes.map_public_ip_on_launch,
        )
        .leaf(
            "assignIpv6AddressOnCreation",
            subnet.attributes.assign_ipv6_address_on_creation,
        )
        .leaf("ownerId", cx.account_id())
        .list(
            "ipv6CidrBlockAssociationSet",
            subnet.ipv6_cidr,
            |x, cidr| {
                x.leaf(
                    "associationId",
                    association_id("subnet-cidr-assoc", subnet.id.as_str()),
                )
                .leaf("ipv6CidrBlock", cidr)
                .element("ipv6CidrBlockState", |x| {
                    x.leaf("state", "associated");
                });
            },
        );
    write_tags(out, model.tags.get(subnet.id.as_str()));
}

/// The zone a subnet is in: its own, else the region's first.
fn subnet_zone(cx: &Context<'_>, subnet: &Subnet) -> Zone {
    let zones = availability_zones(&cx.settings().region);
    subnet
        .availability_zone
        .as_deref()
        .and_then(|name| zones.iter().find(|z| z.name == name).cloned())
        .or_else(|| zones.first().cloned())
        .unwrap_or(Zone {
            name: subnet.availability_zone.clone().unwrap_or_default(),
            id: String::new(),
        })
}

/// The zone `AvailabilityZone` or `AvailabilityZoneId` names, checked
/// against the region's.
fn requested_zone(cx: &Context<'_>, p: &Params) -> Result<Option<String>, ApiError> {
    let zones = availability_zones(&cx.settings().region);
    let names = || {
        zones
            .iter()
            .map(|z| z.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found = match (p.get("AvailabilityZone"), p.get("AvailabilityZoneId")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterCombination,
                "Only one of AvailabilityZone or AvailabilityZoneId may be given",
            ));
        }
        (Some(name), None) => (
            name,
            zones.iter().find(|z| z.name == name),
            "availabilityZone",
        ),
        (None, Some(id)) => (id, zones.iter().find(|z| z.id == id), "availabilityZoneId"),
        (None, None) => return Ok(None),
    };
    match found {
        (_, Some(zone), _) => Ok(Some(zone.name.clone())),
        (value, None, parameter) => Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            format!(
                "Value ({value}) for parameter {parameter} is invalid. Subnets can currently only be created in the following availability zones: {}.",
                names()
            ),
        )),
    }
}

pub(super) fn create_subnet(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let vpc = p.required("VpcId")?.to_owned();
    let cidr = p.required("CidrBlock")?.to_owned();
    let options = SubnetOptions {
        ipv6_cidr: p.get("Ipv6CidrBlock").map(str::to_owned),
        availability_zone: requested_zone(cx, p)?,
        default_for_az: false,
    };
    let tags = tag_specifications(p, "subnet")?;
    let id = created_id(cx.apply(&Op::CreateSubnetWithOptions { vpc, cidr, options })?)?;
    apply_tags(cx, &id, tags)?;
    cx.read(|model| {
        if let Some(subnet) = model.subnets.get(&id) {
            out.element("subnet", |x| write_subnet(x, cx, model, subnet));
        }
    })
}

pub(super) fn delete_subnet(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let subnet = p.required("SubnetId")?.to_owned();
    cx.apply(&Op::DeleteSubnet { subnet })?;
    out.return_true();
    Ok(())
}

fn subnet_matches(
    cx: &Context<'_>,
    model: &Model,
    subnet: &Subnet,
    filter: &crate::api::Filter,
) -> Result<bool, ApiError> {
    if let Some(m) = tag_filter(filter, model.tags.get(subnet.id.as_str())) {
        return Ok(m);
    }
    Ok(match filter.name.as_str() {
        "subnet-id" => filter.matches(subnet.id.as_str()),
        "vpc-id" => filter.matches(subnet.vpc.as_str()),
        "cidr-block" | "cidr" | "cidrBlock" => filter.matches(&subnet.cidr.to_string()),
        "ipv6-cidr-block-association.ipv6-cidr-block" => subnet
            .ipv6_cidr
            .is_some_and(|c| filter.matches(&c.to_string())),
        "ipv6-cidr-block-association.association-id" => {
            subnet.ipv6_cidr.is_some()
                && filter.matches(&association_id("subnet-cidr-assoc", subnet.id.as_str()))
        }
        "ipv6-cidr-block-association.state" => {
            subnet.ipv6_cidr.is_some() && filter.matches("associated")
        }
        "state" => filter.matches("available"),
        "owner-id" => filter.matches(cx.account_id()),
        "default-for-az" | "defaultForAz" => filter.matches(if subnet.default_for_az {
            "true"
        } else {
            "false"
        }),
        "availability-zone" | "availabilityZone" => filter.matches(&subnet_zone(cx, subnet).name),
        "availability-zone-id" | "availabilityZoneId" => {
            filter.matches(&subnet_zone(cx, subnet).id)
        }
        name => return Err(unknown_filter(name)),
    })
}

pub(super) fn describe_subnets(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let ids = p.list("SubnetId")?;
    super::check_paging(p, !ids.is_empty())?;
    let filters = p.filters()?;
    cx.read(|model| -> Result<(), ApiError> {
        for id in &ids {
            if !model.subnets.contains_key(*id) {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidSubnetIdNotFound,
                    format!("The subnet ID '{id}' does not exist"),
                ));
            }
        }
        let mut selected = Vec::new();
        for subnet in model.subnets.values() {
            if !ids.is_empty() && !ids.contains(&subnet.id.as_str()) {
                continue;
            }
            let mut keep = true;
            for filter in &filters {
                keep &= subnet_matches(cx, model, subnet, filter)?;
            }
            if keep {
                selected.push(subnet);
            }
        }
        let (page, next) = paginate(selected, p, 5, !ids.is_empty())?;
        out.list("subnetSet", page, |x, subnet| {
            write_subnet(x, cx, model, subnet);
        });
        out.leaf_opt("nextToken", next);
        Ok(())
    })?
}

/// AssociateVpcCidrBlock: an IPv6 block (Amazon-provided from the
/// appliance's pool, or given). Secondary IPv4 blocks are not modelled.
pub(super) fn associate_vpc_cidr_block(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let vpc = p.required("VpcId")?.to_owned();
    if p.has("CidrBlock") {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            "Secondary IPv4 CIDR blocks are not supported by palisade: a VPC has one IPv4 block",
        ));
    }
    let Some(ipv6) = ipv6_request(cx, p)? else {
        return Err(missing("AmazonProvidedIpv6CidrBlock or Ipv6CidrBlock"));
    };
    let amazon = matches!(ipv6, Ipv6Request::Amazon { .. });
    let block = created_id(cx.apply(&Op::AssociateVpcIpv6CidrBlock {
        vpc: vpc.clone(),
        ipv6,
    })?)?;
    out.element("ipv6CidrBlockAssociation", |x| {
        x.leaf("associationId", association_id("vpc-cidr-assoc-v6", &vpc))
            .leaf("ipv6CidrBlock", &block)
            .element("ipv6CidrBlockState", |x| {
                x.leaf("state", "associated");
            })
            .leaf("networkBorderGroup", &cx.settings().region);
        if amazon {
            x.leaf("ipv6Pool", "Amazon");
        }
    })
    .leaf("vpcId", &vpc);
    Ok(())
}

fn association_not_found(id: &str) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::InvalidAssociationIdNotFound,
        format!("The association ID '{id}' does not exist"),
    )
}

/// DisassociateVpcCidrBlock by the IPv6 association id.
pub(super) fn disassociate_vpc_cidr_block(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let association = p.required("AssociationId")?.to_owned();
    let found = cx.read(|model| {
        model
            .vpcs
            .values()
            .find(|v| {
                v.ipv6_cidr.is_some()
                    && association_id("vpc-cidr-assoc-v6", v.id.as_str()) == association
            })
            .and_then(|v| v.ipv6_cidr.map(|c| (v.id.0.clone(), c)))
    })?;
    let Some((vpc, block)) = found else {
        return Err(association_not_found(&association));
    };
    cx.apply(&Op::DisassociateVpcIpv6CidrBlock { vpc: vpc.clone() })?;
    out.element("ipv6CidrBlockAssociation", |x| {
        x.leaf("associationId", &association)
            .leaf("ipv6CidrBlock", block)
            .element("ipv6CidrBlockState", |x| {
                x.leaf("state", "disassociating");
            });
    })
    .leaf("vpcId", &vpc);
    Ok(())
}

/// AssociateSubnetCidrBlock: the subnet's IPv6 block.
pub(super) fn associate_subnet_cidr_block(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let subnet = p.required("SubnetId")?.to_owned();
    let cidr = p.required("Ipv6CidrBlock")?.to_owned();
    let block = created_id(cx.apply(&Op::AssociateSubnetIpv6CidrBlock {
        subnet: subnet.clone(),
        cidr,
    })?)?;
    out.element("ipv6CidrBlockAssociation", |x| {
        x.leaf(
            "associationId",
            association_id("subnet-cidr-assoc", &subnet),
        )
        .leaf("ipv6CidrBlock", &block)
        .element("ipv6CidrBlockState", |x| {
            x.leaf("state", "associated");
        });
    })
    .leaf("subnetId", &subnet);
    Ok(())
}

/// DisassociateSubnetCidrBlock by the association id.
pub(super) fn disassociate_subnet_cidr_block(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let association = p.required("AssociationId")?.to_owned();
    let found = cx.read(|model| {
        model
            .subnets
            .values()
            .find(|s| {
                s.ipv6_cidr.is_some()
                    && association_id("subnet-cidr-assoc", s.id.as_str()) == association
            })
            .and_then(|s| s.ipv6_cidr.map(|c| (s.id.0.clone(), c)))
    })?;
    let Some((subnet, block)) = found else {
        return Err(association_not_found(&association));
    };
    cx.apply(&Op::DisassociateSubnetIpv6CidrBlock {
        subnet: subnet.clone(),
    })?;
    out.element("ipv6CidrBlockAssociation", |x| {
        x.leaf("associationId", &association)
            .leaf("ipv6CidrBlock", block)
            .element("ipv6CidrBlockState", |x| {
                x.leaf("state", "disassociating");
            });
    })
    .leaf("subnetId", &subnet);
    Ok(())
}

/// ModifySubnetAttribute: `MapPublicIpOnLaunch` or
/// `AssignIpv6AddressOnCreation`, one per call as in AWS.
pub(super) fn modify_subnet_attribute(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let subnet = p.required("SubnetId")?.to_owned();
    let (attribute, value) = one_boolean_attribute(
        p,
        [
            ("MapPublicIpOnLaunch", SubnetAttribute::MapPublicIpOnLaunch),
            (
                "AssignIpv6AddressOnCreation",
                SubnetAttribute::AssignIpv6AddressOnCreation,
            ),
        ],
        "MapPublicIpOnLaunch or AssignIpv6AddressOnCreation",
    )?;
    cx.apply(&Op::ModifySubnetAttribute {
        subnet,
        attribute,
        value,
    })?;
    out.return_true();
    Ok(())
}

/// CreateDefaultVpc: refused with `DefaultVpcAlreadyExists` when there is
/// one.
pub(super) fn create_default_vpc(
    cx: &Context<'_>,
    _p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let zones = availability_zones(&cx.settings().region)
        .into_iter()
        .map(|z| z.name)
        .collect();
    let id = created_id(cx.apply(&Op::CreateDefaultVpc { zones })?)?;
    cx.read(|model| {
        if let Some(vpc) = model.vpcs.get(&id) {
            out.element("vpc", |x| write_vpc(x, cx, model, vpc));
        }
    })
}

/// DescribeAvailabilityZones: the configured region's zones, all
/// available.
pub(super) fn describe_availability_zones(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let names = p.list("ZoneName")?;
    let ids = p.list("ZoneId")?;
    let filters = p.filters()?;
    let region = cx.settings().region.clone();
    let mut selected = Vec::new();
    for zone in availability_zones(&region) {
        if !names.is_empty() && !names.contains(&zone.name.as_str()) {
            continue;
        }
        if !ids.is_empty() && !ids.contains(&zone.id.as_str()) {
            continue;
        }
        let mut keep = true;
        for filter in &filters {
            keep &= match filter.name.as_str() {
                "zone-name" => filter.matches(&zone.name),
                "zone-id" => filter.matches(&zone.id),
                // A zone's group and border group are its region here.
                "region-name" | "group-name" | "network-border-group" => filter.matches(&region),
                "state" => filter.matches("available"),
                "zone-type" => filter.matches("availability-zone"),
                "opt-in-status" => filter.matches("opt-in-not-required"),
                name => return Err(unknown_filter(name)),
            };
        }
        if keep {
            selected.push(zone);
        }
    }
    for name in names.iter().chain(ids.iter()) {
        if !selected.iter().any(|z| z.name == *name || z.id == *name) {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!("Invalid availability zone: [{name}]"),
            ));
        }
    }
    out.list("availabilityZoneInfo", selected, |x, zone| {
        x.leaf("zoneName", &zone.name)
            .leaf("zoneState", "available")
            .leaf("regionName", &region)
            .leaf("zoneId", &zone.id)
            .leaf("zoneType", "availability-zone")
            .leaf("groupName", &region)
            .leaf("networkBorderGroup", &region)
            .leaf("optInStatus", "opt-in-not-required")
            .list("messageSet", std::iter::empty::<()>(), |_, ()| {});
    });
    Ok(())
}

/// DescribeAccountAttributes: a VPC-only account, its default VPC, and
/// AWS's usual limits.
pub(super) fn describe_account_attributes(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let wanted = p.list("AttributeName")?;
    let default_vpc = cx.read(|model| {
        model
            .vpcs
            .values()
            .find(|v| v.is_default)
            .map_or_else(|| "none".to_owned(), |v| v.id.0.clone())
    })?;
    let attributes: Vec<(&str, Vec<String>)> = vec![
        ("supported-platforms", vec!["VPC".to_owned()]),
        ("default-vpc", vec![default_vpc]),
        ("max-instances", vec!["20".to_owned()]),
        (
            "vpc-max-security-groups-per-interface",
            vec!["5".to_owned()],
        ),
        ("max-elastic-ips", vec!["5".to_owned()]),
        ("vpc-max-elastic-ips", vec!["5".to_owned()]),
    ];
    for name in &wanted {
        if !attributes.iter().any(|(n, _)| n == name) {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!(
                    "Value ({name}) for parameter attributeName is invalid. Unknown attribute."
                ),
            ));
        }
    }
    let selected = attributes
        .into_iter()
        .filter(|(n, _)| wanted.is_empty() || wanted.contains(n));
    out.list("accountAttributeSet", selected, |x, (name, values)| {
        x.leaf("attributeName", name)
            .list("attributeValueSet", values, |x, value| {
                x.leaf("attributeValue", value);
            });
    });
    Ok(())
}

/// The one `NAME.Value` boolean attribute a Modify*Attribute call sets:
/// EC2 takes exactly one per call, and says which it missed or refuses two.
fn one_boolean_attribute<A: Copy>(
    p: &Params,
    attributes: impl IntoIterator<Item = (&'static str, A)>,
    names: &str,
) -> Result<(A, bool), ApiError> {
    let mut given = Vec::new();
    for (parameter, which) in attributes {
        if p.has(parameter) {
            let value_name = format!("{parameter}.Value");
            let value = p.bool(&value_name)?.ok_or_else(|| missing(&value_name))?;
            given.push((which, value));
        }
    }
    match given[..] {
        [one] => Ok(one),
        [] => Err(missing(names)),
        _ => Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterCombination,
            "Only one attribute can be modified at a time: use a separate request for each",
        )),
    }
}

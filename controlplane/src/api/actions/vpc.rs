//! VPC and subnet actions: CreateVpc, DeleteVpc, DescribeVpcs,
//! Describe/ModifyVpcAttribute, CreateSubnet, DeleteSubnet, DescribeSubnets.

use super::{apply_tags, paginate, tag_filter, tag_specifications, unknown_filter, write_tags};
use crate::api::params::missing;
use crate::api::{Context, Params, Xml};
use crate::model::Ec2ErrorCode;
use crate::model::{ApiError, Model, Op, Outcome, Subnet, Vpc, VpcAttribute};

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
        .leaf("isDefault", "false");
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
        .leaf("networkBorderGroup", cx.region);
    });
    write_tags(out, model.tags.get(vpc.id.as_str()));
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
    if p.bool("AmazonProvidedIpv6CidrBlock")? == Some(true) {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            "AmazonProvidedIpv6CidrBlock is not available: palisade has no Amazon pool; pass Ipv6CidrBlock",
        ));
    }
    let tags = tag_specifications(p, "vpc")?;
    let op = Op::CreateVpc {
        cidr,
        ipv6_cidr: p.get("Ipv6CidrBlock").map(str::to_owned),
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
        "is-default" | "isDefault" => filter.matches("false"),
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
    let mut given = Vec::new();
    for (_, parameter, which) in VPC_ATTRIBUTES {
        if p.has(parameter) {
            let value_name = format!("{parameter}.Value");
            let value = p.bool(&value_name)?.ok_or_else(|| missing(&value_name))?;
            given.push((which, value));
        }
    }
    let (attribute, value) = match given[..] {
        [one] => one,
        [] => {
            return Err(missing(
                "EnableDnsSupport, EnableDnsHostnames or EnableNetworkAddressUsageMetrics",
            ));
        }
        _ => {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterCombination,
                "Only one attribute can be modified at a time: use a separate request for each",
            ));
        }
    };
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
        .leaf("availabilityZone", format_args!("{}a", cx.region))
        .leaf("defaultForAz", "false")
        .leaf("mapPublicIpOnLaunch", "false")
        .leaf("assignIpv6AddressOnCreation", "false")
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

pub(super) fn create_subnet(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let vpc = p.required("VpcId")?.to_owned();
    let cidr = p.required("CidrBlock")?.to_owned();
    let tags = tag_specifications(p, "subnet")?;
    let id = created_id(cx.apply(&Op::CreateSubnet { vpc, cidr })?)?;
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
        "state" => filter.matches("available"),
        "owner-id" => filter.matches(cx.account_id()),
        "default-for-az" | "defaultForAz" => filter.matches("false"),
        "availability-zone" | "availabilityZone" => filter.matches(&format!("{}a", cx.region)),
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

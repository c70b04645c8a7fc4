//! VPC peering actions: CreateVpcPeeringConnection,
//! AcceptVpcPeeringConnection, DeleteVpcPeeringConnection,
//! DescribeVpcPeeringConnections, DescribeStaleSecurityGroups.
//!
//! palisade has one account and one region (the caller's), so a peering
//! always joins two VPCs of this appliance; `PeerOwnerId` and `PeerRegion`
//! are accepted only when they name those.

use palisade_policy::{Peer, SgRule};

use super::common::{created_id, port_fields, protocol_text, select};
use super::{
    apply_tags, check_paging, paginate, tag_filter, tag_specifications, unknown_filter, write_tags,
};
use crate::api::{Context, Filter, Params, Xml};
use crate::model::Ec2ErrorCode;
use crate::model::{ApiError, Model, Op, Peering, PeeringState, SecurityGroup};

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::InvalidVpcPeeringConnectionIdNotFound,
        format!("The vpcPeeringConnection ID '{id}' does not exist"),
    )
}

fn status(cx: &Context<'_>, state: PeeringState) -> (&'static str, String) {
    match state {
        PeeringState::PendingAcceptance => (
            "pending-acceptance",
            format!("Pending Acceptance by {}", cx.account_id()),
        ),
        PeeringState::Active => ("active", "Active".to_owned()),
        PeeringState::Deleted => ("deleted", format!("Deleted by {}", cx.account_id())),
    }
}

fn write_vpc_info(out: &mut Xml, tag: &str, cx: &Context<'_>, model: &Model, vpc: &str) {
    out.element(tag, |x| {
        if let Some(v) = model.vpcs.get(vpc) {
            x.leaf("cidrBlock", v.cidr);
            x.list("cidrBlockSet", [v.cidr], |x, c| {
                x.leaf("cidrBlock", c);
            });
            x.list("ipv6CidrBlockSet", v.ipv6_cidr, |x, c| {
                x.leaf("ipv6CidrBlock", c);
            });
        }
        x.leaf("ownerId", cx.account_id())
            .element("peeringOptions", |x| {
                x.leaf("allowDnsResolutionFromRemoteVpc", "false")
                    .leaf("allowEgressFromLocalClassicLinkToRemoteVpc", "false")
                    .leaf("allowEgressFromLocalVpcToRemoteClassicLink", "false");
            })
            .leaf("vpcId", vpc)
            .leaf("region", cx.region);
    });
}

fn write_peering(out: &mut Xml, cx: &Context<'_>, model: &Model, peering: &Peering) {
    write_vpc_info(out, "accepterVpcInfo", cx, model, peering.accepter.as_str());
    write_vpc_info(
        out,
        "requesterVpcInfo",
        cx,
        model,
        peering.requester.as_str(),
    );
    let (code, message) = status(cx, peering.state);
    out.element("status", |x| {
        x.leaf("code", code).leaf("message", message);
    });
    write_tags(out, model.tags.get(peering.id.as_str()));
    out.leaf("vpcPeeringConnectionId", &peering.id);
}

fn write_one(cx: &Context<'_>, id: &str, out: &mut Xml) -> Result<(), ApiError> {
    cx.read(|model| {
        if let Some(peering) = model.peerings.get(id) {
            out.element("vpcPeeringConnection", |x| {
                write_peering(x, cx, model, peering);
            });
        }
    })
}

pub(super) fn create(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let vpc = p.required("VpcId")?.to_owned();
    let peer_vpc = p.required("PeerVpcId")?.to_owned();
    if let Some(owner) = p.get("PeerOwnerId") {
        if owner != cx.account_id() {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!(
                    "Value ({owner}) for parameter peerOwnerId is invalid: palisade has the one account {}",
                    cx.account_id()
                ),
            ));
        }
    }
    if let Some(region) = p.get("PeerRegion") {
        if region != cx.region {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!(
                    "Value ({region}) for parameter peerRegion is invalid: both VPCs are on this appliance ({})",
                    cx.region
                ),
            ));
        }
    }
    let tags = tag_specifications(p, "vpc-peering-connection")?;
    let id = created_id(cx.apply(&Op::RequestPeering { vpc, peer_vpc })?)?;
    apply_tags(cx, &id, tags)?;
    write_one(cx, &id, out)
}

pub(super) fn accept(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let peering = p.required("VpcPeeringConnectionId")?.to_owned();
    cx.apply(&Op::AcceptPeering {
        peering: peering.clone(),
    })?;
    write_one(cx, &peering, out)
}

pub(super) fn delete(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let peering = p.required("VpcPeeringConnectionId")?.to_owned();
    cx.apply(&Op::DeletePeering { peering })?;
    out.return_true();
    Ok(())
}

fn vpc_info_filter(
    model: &Model,
    vpc: &str,
    field: &str,
    filter: &Filter,
    account: &str,
) -> Option<bool> {
    Some(match field {
        "vpc-id" => filter.matches(vpc),
        "owner-id" => filter.matches(account),
        "cidr-block" => model
            .vpcs
            .get(vpc)
            .is_some_and(|v| filter.matches(&v.cidr.to_string())),
        _ => return None,
    })
}

fn peering_matches(
    cx: &Context<'_>,
    model: &Model,
    peering: &Peering,
    filter: &Filter,
) -> Result<bool, ApiError> {
    if let Some(m) = tag_filter(filter, model.tags.get(peering.id.as_str())) {
        return Ok(m);
    }
    let side = |prefix: &str, vpc: &str| {
        filter
            .name
            .strip_prefix(prefix)
            .and_then(|field| vpc_info_filter(model, vpc, field, filter, cx.account_id()))
    };
    if let Some(m) = side("accepter-vpc-info.", peering.accepter.as_str())
        .or_else(|| side("requester-vpc-info.", peering.requester.as_str()))
    {
        return Ok(m);
    }
    let (code, message) = status(cx, peering.state);
    Ok(match filter.name.as_str() {
        "vpc-peering-connection-id" => filter.matches(peering.id.as_str()),
        "status-code" => filter.matches(code),
        "status-message" => filter.matches(&message),
        name => return Err(unknown_filter(name)),
    })
}

pub(super) fn describe(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let ids = p.list("VpcPeeringConnectionId")?;
    check_paging(p, !ids.is_empty())?;
    let filters = p.filters()?;
    cx.read(|model| -> Result<(), ApiError> {
        let selected = select(&model.peerings, &ids, not_found, &filters, |peering, f| {
            peering_matches(cx, model, peering, f)
        })?;
        let (page, next) = paginate(selected, p, 5, !ids.is_empty())?;
        out.list("vpcPeeringConnectionSet", page, |x, peering| {
            write_peering(x, cx, model, peering);
        });
        out.leaf_opt("nextToken", next);
        Ok(())
    })?
}

/// The latest peering between two VPCs, for naming it in a stale
/// reference.
fn peering_between<'m>(model: &'m Model, a: &str, b: &str) -> Option<&'m Peering> {
    model
        .peerings
        .values()
        .filter(|p| {
            (p.requester.as_str() == a && p.accepter.as_str() == b)
                || (p.requester.as_str() == b && p.accepter.as_str() == a)
        })
        .max_by_key(|p| p.state == PeeringState::Active)
}

/// The rules of `group` that reference a group of another VPC this one is
/// not actively peered with: they match nothing (SEMANTICS.md).
fn stale_rules<'g>(
    model: &Model,
    group: &SecurityGroup,
    rules: &'g [SgRule],
) -> Vec<(&'g SgRule, &'g str)> {
    rules
        .iter()
        .filter_map(|rule| {
            let Peer::Group(peer) = &rule.peer else {
                return None;
            };
            let peer_vpc = model
                .security_groups
                .get(peer.as_str())
                .map(|g| g.vpc.as_str());
            let live = peer_vpc.is_some_and(|v| {
                v == group.vpc.as_str()
                    || model.peerings.values().any(|p| {
                        p.state == PeeringState::Active
                            && ((p.requester.as_str() == v && p.accepter == group.vpc)
                                || (p.accepter.as_str() == v && p.requester == group.vpc))
                    })
            });
            (!live).then_some((rule, peer.as_str()))
        })
        .collect()
}

pub(super) fn describe_stale(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let vpc = p.required("VpcId")?;
    cx.read(|model| -> Result<(), ApiError> {
        if !model.vpcs.contains_key(vpc) {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidVpcIdNotFound,
                format!("The vpc ID '{vpc}' does not exist"),
            ));
        }
        let stale: Vec<&SecurityGroup> = model
            .group_order
            .iter()
            .filter_map(|id| model.security_groups.get(id))
            .filter(|g| g.vpc.as_str() == vpc)
            .filter(|g| {
                !stale_rules(model, g, &g.ingress).is_empty()
                    || !stale_rules(model, g, &g.egress).is_empty()
            })
            .collect();
        let (page, next) = paginate(stale, p, 5, false)?;
        out.list("staleSecurityGroupSet", page, |x, group| {
            x.leaf("description", &group.description)
                .leaf("groupId", &group.id)
                .leaf("groupName", &group.name);
            for (tag, rules) in [
                ("staleIpPermissions", &group.ingress),
                ("staleIpPermissionsEgress", &group.egress),
            ] {
                x.list(tag, stale_rules(model, group, rules), |x, (rule, peer)| {
                    x.leaf("ipProtocol", protocol_text(rule.protocol));
                    if let Some((from, to)) = port_fields(rule) {
                        x.leaf("fromPort", from).leaf("toPort", to);
                    }
                    x.list("groups", [peer], |x, peer| {
                        let peer_vpc = model.security_groups.get(peer).map(|g| g.vpc.as_str());
                        x.leaf("groupId", peer);
                        if let Some(peer_vpc) = peer_vpc {
                            x.leaf("userId", cx.account_id()).leaf("vpcId", peer_vpc);
                            if let Some(peering) =
                                peering_between(model, group.vpc.as_str(), peer_vpc)
                            {
                                x.leaf("vpcPeeringConnectionId", &peering.id)
                                    .leaf("peeringStatus", status(cx, peering.state).0);
                            }
                        }
                    });
                });
            }
            x.leaf("vpcId", &group.vpc);
        });
        out.leaf_opt("nextToken", next);
        Ok(())
    })?
}

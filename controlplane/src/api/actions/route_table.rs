//! DescribeRouteTables: each VPC's main route table, as the data plane
//! routes it (`PolicySnapshot::route`): the VPC's own blocks are `local`,
//! each actively peered VPC's blocks go through the peering. palisade
//! computes these routes from the model, so the table cannot be edited
//! and every subnet uses it implicitly — which AWS reports as the main
//! association only (implicitly associated subnets are not listed).

use super::common::bool_text;
use super::{check_paging, paginate, tag_filter, unknown_filter, write_tags};
use crate::api::{Context, Filter, Params, Xml};
use crate::model::Ec2ErrorCode;
use crate::model::{
    ApiError, Model, PeeringState, Vpc, main_route_table_association_id, route_table_id,
};

/// One route of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    /// The block, IPv4 or IPv6 (written to the matching member).
    destination: String,
    ipv6: bool,
    /// `None`: `local`.
    peering: Option<String>,
}

fn routes(model: &Model, vpc: &Vpc) -> Vec<Route> {
    let mut routes = vec![Route {
        destination: vpc.cidr.to_string(),
        ipv6: false,
        peering: None,
    }];
    if let Some(v6) = vpc.ipv6_cidr {
        routes.push(Route {
            destination: v6.to_string(),
            ipv6: true,
            peering: None,
        });
    }
    for peering in model.peerings.values() {
        if peering.state != PeeringState::Active {
            continue;
        }
        let other = if peering.requester == vpc.id {
            &peering.accepter
        } else if peering.accepter == vpc.id {
            &peering.requester
        } else {
            continue;
        };
        let Some(other) = model.vpcs.get(other.as_str()) else {
            continue;
        };
        routes.push(Route {
            destination: other.cidr.to_string(),
            ipv6: false,
            peering: Some(peering.id.0.clone()),
        });
        if let Some(v6) = other.ipv6_cidr {
            routes.push(Route {
                destination: v6.to_string(),
                ipv6: true,
                peering: Some(peering.id.0.clone()),
            });
        }
    }
    routes
}

fn write_table(out: &mut Xml, cx: &Context<'_>, model: &Model, vpc: &Vpc) {
    let id = route_table_id(vpc.id.as_str());
    out.leaf("routeTableId", &id)
        .leaf("vpcId", &vpc.id)
        .leaf("ownerId", cx.account_id());
    out.list("routeSet", routes(model, vpc), |x, route| {
        x.leaf(
            if route.ipv6 {
                "destinationIpv6CidrBlock"
            } else {
                "destinationCidrBlock"
            },
            &route.destination,
        );
        match &route.peering {
            None => {
                x.leaf("gatewayId", "local")
                    .leaf("origin", "CreateRouteTable");
            }
            Some(pcx) => {
                x.leaf("vpcPeeringConnectionId", pcx)
                    .leaf("origin", "CreateRoute");
            }
        }
        x.leaf("state", "active");
    });
    out.list("associationSet", [()], |x, ()| {
        x.leaf("main", "true")
            .leaf(
                "routeTableAssociationId",
                main_route_table_association_id(vpc.id.as_str()),
            )
            .leaf("routeTableId", &id)
            .element("associationState", |x| {
                x.leaf("state", "associated");
            });
    });
    out.list("propagatingVgwSet", std::iter::empty::<()>(), |_, ()| {});
    write_tags(out, model.tags.get(&id));
}

fn table_matches(
    cx: &Context<'_>,
    model: &Model,
    vpc: &Vpc,
    filter: &Filter,
) -> Result<bool, ApiError> {
    let id = route_table_id(vpc.id.as_str());
    if let Some(m) = tag_filter(filter, model.tags.get(&id)) {
        return Ok(m);
    }
    let routes = routes(model, vpc);
    let route_values = |f: &dyn Fn(&Route) -> Option<String>| {
        let values: Vec<String> = routes.iter().filter_map(f).collect();
        filter.matches_any(values.iter().map(String::as_str))
    };
    Ok(match filter.name.as_str() {
        "route-table-id" | "association.route-table-id" => filter.matches(&id),
        "vpc-id" => filter.matches(vpc.id.as_str()),
        "owner-id" => filter.matches(cx.account_id()),
        "association.main" => filter.matches(bool_text(true)),
        "association.route-table-association-id" => {
            filter.matches(&main_route_table_association_id(vpc.id.as_str()))
        }
        // Only explicit associations are listed, and palisade has none.
        "association.subnet-id" | "association.gateway-id" => false,
        "association.association-state" => filter.matches("associated"),
        "route.destination-cidr-block" => {
            route_values(&|r| (!r.ipv6).then(|| r.destination.clone()))
        }
        "route.destination-ipv6-cidr-block" => {
            route_values(&|r| r.ipv6.then(|| r.destination.clone()))
        }
        "route.gateway-id" => route_values(&|r| r.peering.is_none().then(|| "local".to_owned())),
        "route.vpc-peering-connection-id" => route_values(&|r| r.peering.clone()),
        "route.origin" => route_values(&|r| {
            Some(if r.peering.is_some() {
                "CreateRoute".to_owned()
            } else {
                "CreateRouteTable".to_owned()
            })
        }),
        "route.state" => filter.matches("active"),
        name => return Err(unknown_filter(name)),
    })
}

pub(super) fn describe(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let ids = p.list("RouteTableId")?;
    check_paging(p, !ids.is_empty())?;
    let filters = p.filters()?;
    cx.read(|model| -> Result<(), ApiError> {
        for id in &ids {
            if model.vpc_of_route_table(id).is_none() {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidRouteTableIdNotFound,
                    format!("The routeTable ID '{id}' does not exist"),
                ));
            }
        }
        let mut selected = Vec::new();
        for vpc in model.vpcs.values() {
            if !ids.is_empty() && !ids.contains(&route_table_id(vpc.id.as_str()).as_str()) {
                continue;
            }
            let mut keep = true;
            for filter in &filters {
                if !table_matches(cx, model, vpc, filter)? {
                    keep = false;
                    break;
                }
            }
            if keep {
                selected.push(vpc);
            }
        }
        let (page, next) = paginate(selected, p, 5, !ids.is_empty())?;
        out.list("routeTableSet", page, |x, vpc| {
            write_table(x, cx, model, vpc);
        });
        out.leaf_opt("nextToken", next);
        Ok(())
    })?
}

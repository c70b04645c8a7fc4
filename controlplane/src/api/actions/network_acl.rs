//! Network ACL actions: CreateNetworkAcl, DeleteNetworkAcl,
//! DescribeNetworkAcls, Create/Replace/DeleteNetworkAclEntry,
//! ReplaceNetworkAclAssociation.
//!
//! Describe shows what the data plane enforces: the stored entries plus
//! the fixed `*` deny of each direction (rule 32767 for IPv4, 32768 for
//! IPv6 when the VPC has an IPv6 block), which the data plane applies
//! implicitly after the last entry.

use palisade_policy::{IpCidr, Ipv4Cidr, Ipv6Cidr, NaclAction, NaclEntry, PortSpec, Protocol};

use super::common::{bool_text, created_id, protocol_number_text, select};
use super::{
    apply_tags, check_paging, paginate, tag_filter, tag_specifications, unknown_filter, write_tags,
};
use crate::api::{Context, Filter, Params, Xml};
use crate::model::Ec2ErrorCode;
use crate::model::{ApiError, Model, NaclEntryRequest, NetworkAcl, Op};

/// Parameters of Create/ReplaceNetworkAclEntry.
pub(super) const ENTRY_PARAMS: &[&str] = &[
    "NetworkAclId",
    "RuleNumber",
    "Protocol",
    "RuleAction",
    "Egress",
    "CidrBlock",
    "Ipv6CidrBlock",
    "Icmp",
    "PortRange",
];

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::InvalidNetworkAclIdNotFound,
        format!("The networkAcl ID '{id}' does not exist"),
    )
}

pub(super) fn create(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let vpc = p.required("VpcId")?.to_owned();
    let tags = tag_specifications(p, "network-acl")?;
    let id = created_id(cx.apply(&Op::CreateNetworkAcl { vpc })?)?;
    apply_tags(cx, &id, tags)?;
    cx.read(|model| {
        if let Some(acl) = model.network_acls.get(&id) {
            out.element("networkAcl", |x| write_acl(x, cx, model, acl));
        }
    })
}

pub(super) fn delete(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let acl = p.required("NetworkAclId")?.to_owned();
    cx.apply(&Op::DeleteNetworkAcl { acl })?;
    out.return_true();
    Ok(())
}

/// The entry a Create/ReplaceNetworkAclEntry request describes.
fn entry_request(p: &Params) -> Result<NaclEntryRequest, ApiError> {
    let number = p
        .int("RuleNumber")?
        .ok_or_else(|| crate::api::params::missing("RuleNumber"))?;
    let rule_number = u16::try_from(number)
        .ok()
        .filter(|n| (1..=32766).contains(n))
        .ok_or_else(|| {
            ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!("Value ({number}) for parameter ruleNumber is invalid. Expecting 1-32766."),
            )
        })?;
    let egress = p
        .bool("Egress")?
        .ok_or_else(|| crate::api::params::missing("Egress"))?;
    let protocol = p.required("Protocol")?.to_owned();
    let allow = match p.required("RuleAction")?.to_ascii_lowercase().as_str() {
        "allow" => true,
        "deny" => false,
        other => {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!(
                    "Value ({other}) for parameter ruleAction is invalid. Expecting allow or deny."
                ),
            ));
        }
    };
    let cidr = match (p.get("CidrBlock"), p.get("Ipv6CidrBlock")) {
        (Some(v4), None) => {
            if v4.contains(':') {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidParameterValue,
                    format!("Value ({v4}) for parameter cidrBlock is invalid. This is not a valid IPv4 CIDR block."),
                ));
            }
            v4
        }
        (None, Some(v6)) => {
            if !v6.contains(':') {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidParameterValue,
                    format!("Value ({v6}) for parameter ipv6CidrBlock is invalid. This is not a valid IPv6 CIDR block."),
                ));
            }
            v6
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterCombination,
                "Only one of CidrBlock and Ipv6CidrBlock may be given",
            ));
        }
        (None, None) => {
            return Err(ApiError::new(
                Ec2ErrorCode::MissingParameter,
                "Either CidrBlock or Ipv6CidrBlock must be given",
            ));
        }
    }
    .to_owned();
    // tcp/udp take PortRange, icmp/icmpv6 take Icmp (type/code); the model
    // checks the combination against the protocol.
    let (from_port, to_port) = if p.has("Icmp") {
        (p.int("Icmp.Type")?, p.int("Icmp.Code")?)
    } else {
        (p.int("PortRange.From")?, p.int("PortRange.To")?)
    };
    Ok(NaclEntryRequest {
        rule_number,
        egress,
        protocol,
        cidr,
        from_port,
        to_port,
        allow,
    })
}

fn put_entry(cx: &Context<'_>, p: &Params, out: &mut Xml, replace: bool) -> Result<(), ApiError> {
    let acl = p.required("NetworkAclId")?.to_owned();
    let entry = entry_request(p)?;
    cx.apply(&Op::PutNetworkAclEntry {
        acl,
        replace,
        entry,
    })?;
    out.return_true();
    Ok(())
}

pub(super) fn create_entry(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    put_entry(cx, p, out, false)
}

pub(super) fn replace_entry(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    put_entry(cx, p, out, true)
}

pub(super) fn delete_entry(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let acl = p.required("NetworkAclId")?.to_owned();
    let number = p
        .int("RuleNumber")?
        .ok_or_else(|| crate::api::params::missing("RuleNumber"))?;
    let egress = p
        .bool("Egress")?
        .ok_or_else(|| crate::api::params::missing("Egress"))?;
    let rule_number = u16::try_from(number)
        .ok()
        .filter(|n| (1..=32766).contains(n))
        .ok_or_else(|| {
            ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!("Value ({number}) for parameter ruleNumber is invalid. Expecting 1-32766."),
            )
        })?;
    cx.apply(&Op::DeleteNetworkAclEntry {
        acl,
        rule_number,
        egress,
    })?;
    out.return_true();
    Ok(())
}

pub(super) fn replace_association(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let association = p.required("AssociationId")?.to_owned();
    let acl = p.required("NetworkAclId")?.to_owned();
    let new_id = created_id(cx.apply(&Op::ReplaceNetworkAclAssociation { association, acl })?)?;
    out.leaf("newAssociationId", new_id);
    Ok(())
}

/// The entries as Describe shows them: stored ones, then the `*` denies.
fn shown_entries(model: &Model, acl: &NetworkAcl) -> Vec<NaclEntry> {
    let mut entries = acl.entries.clone();
    entries.sort_by_key(|e| (e.egress, e.rule_number));
    let ipv6 = model
        .vpcs
        .get(acl.vpc.as_str())
        .is_some_and(|v| v.ipv6_cidr.is_some());
    for egress in [true, false] {
        let mut catch_all = vec![(32767, IpCidr::V4(Ipv4Cidr::ANY))];
        if ipv6 {
            catch_all.push((32768, IpCidr::V6(Ipv6Cidr::ANY)));
        }
        for (rule_number, cidr) in catch_all {
            entries.push(NaclEntry {
                rule_number,
                egress,
                protocol: Protocol::All,
                cidr,
                ports: PortSpec::Any,
                action: NaclAction::Deny,
            });
        }
    }
    entries
}

fn write_entry(out: &mut Xml, entry: &NaclEntry) {
    match entry.cidr {
        IpCidr::V4(c) => out.leaf("cidrBlock", c),
        IpCidr::V6(c) => out.leaf("ipv6CidrBlock", c),
    };
    out.leaf("egress", bool_text(entry.egress));
    match entry.ports {
        PortSpec::Range { from, to } if entry.protocol != Protocol::All => {
            out.element("portRange", |x| {
                x.leaf("from", from).leaf("to", to);
            });
        }
        PortSpec::Icmp { icmp_type, code } => {
            out.element("icmpTypeCode", |x| {
                x.leaf("code", code.map_or(-1, i32::from))
                    .leaf("type", icmp_type.map_or(-1, i32::from));
            });
        }
        _ => {}
    }
    out.leaf("protocol", protocol_number_text(entry.protocol))
        .leaf(
            "ruleAction",
            match entry.action {
                NaclAction::Allow => "allow",
                NaclAction::Deny => "deny",
            },
        )
        .leaf("ruleNumber", entry.rule_number);
}

fn write_acl(out: &mut Xml, cx: &Context<'_>, model: &Model, acl: &NetworkAcl) {
    out.leaf("networkAclId", &acl.id)
        .leaf("vpcId", &acl.vpc)
        .leaf("default", bool_text(acl.is_default))
        .leaf("ownerId", cx.account_id());
    out.list("entrySet", shown_entries(model, acl), |x, e| {
        write_entry(x, &e);
    });
    out.list(
        "associationSet",
        model.subnets.values().filter(|s| s.network_acl == acl.id),
        |x, s| {
            x.leaf("networkAclAssociationId", s.network_acl_association_id())
                .leaf("networkAclId", &acl.id)
                .leaf("subnetId", &s.id);
        },
    );
    write_tags(out, model.tags.get(acl.id.as_str()));
}

/// `entry.*` filters over every shown entry; `None` for other names.
fn entry_filter(field: &str, filter: &Filter, entries: &[NaclEntry]) -> Option<bool> {
    let values: Vec<String> = entries
        .iter()
        .filter_map(|e| {
            Some(match field {
                "cidr" => match e.cidr {
                    IpCidr::V4(c) => c.to_string(),
                    IpCidr::V6(_) => return None,
                },
                "ipv6-cidr" => match e.cidr {
                    IpCidr::V6(c) => c.to_string(),
                    IpCidr::V4(_) => return None,
                },
                "egress" => bool_text(e.egress).to_owned(),
                "protocol" => protocol_number_text(e.protocol),
                "rule-action" => match e.action {
                    NaclAction::Allow => "allow".to_owned(),
                    NaclAction::Deny => "deny".to_owned(),
                },
                "rule-number" => e.rule_number.to_string(),
                "port-range.from" | "port-range.to" => match e.ports {
                    PortSpec::Range { from, to } => {
                        if field.ends_with("from") { from } else { to }.to_string()
                    }
                    _ => return None,
                },
                "icmp.type" | "icmp.code" => match e.ports {
                    PortSpec::Icmp { icmp_type, code } => {
                        let v = if field.ends_with("type") {
                            icmp_type
                        } else {
                            code
                        };
                        v.map_or(-1, i32::from).to_string()
                    }
                    _ => return None,
                },
                _ => return None,
            })
        })
        .collect();
    let known = [
        "cidr",
        "ipv6-cidr",
        "egress",
        "protocol",
        "rule-action",
        "rule-number",
        "port-range.from",
        "port-range.to",
        "icmp.type",
        "icmp.code",
    ];
    known
        .contains(&field)
        .then(|| filter.matches_any(values.iter().map(String::as_str)))
}

fn acl_matches(
    cx: &Context<'_>,
    model: &Model,
    acl: &NetworkAcl,
    filter: &Filter,
) -> Result<bool, ApiError> {
    if let Some(m) = tag_filter(filter, model.tags.get(acl.id.as_str())) {
        return Ok(m);
    }
    if let Some(field) = filter.name.strip_prefix("entry.") {
        return entry_filter(field, filter, &shown_entries(model, acl))
            .ok_or_else(|| unknown_filter(&filter.name));
    }
    let subnets = || model.subnets.values().filter(|s| s.network_acl == acl.id);
    Ok(match filter.name.as_str() {
        "network-acl-id" | "association.network-acl-id" => {
            filter.matches(acl.id.as_str())
                && (filter.name == "network-acl-id" || subnets().next().is_some())
        }
        "vpc-id" => filter.matches(acl.vpc.as_str()),
        "default" => filter.matches(bool_text(acl.is_default)),
        "owner-id" => filter.matches(cx.account_id()),
        "association.subnet-id" => filter.matches_any(subnets().map(|s| s.id.as_str())),
        "association.association-id" => {
            let ids: Vec<String> = subnets()
                .map(crate::model::Subnet::network_acl_association_id)
                .collect();
            filter.matches_any(ids.iter().map(String::as_str))
        }
        name => return Err(unknown_filter(name)),
    })
}

pub(super) fn describe(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let ids = p.list("NetworkAclId")?;
    check_paging(p, !ids.is_empty())?;
    let filters = p.filters()?;
    cx.read(|model| -> Result<(), ApiError> {
        let selected = select(&model.network_acls, &ids, not_found, &filters, |acl, f| {
            acl_matches(cx, model, acl, f)
        })?;
        let (page, next) = paginate(selected, p, 5, !ids.is_empty())?;
        out.list("networkAclSet", page, |x, acl| write_acl(x, cx, model, acl));
        out.leaf_opt("nextToken", next);
        Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_requests_take_aws_query_names() {
        let p = Params::parse(
            "NetworkAclId=acl-1&RuleNumber=110&Protocol=6&RuleAction=ALLOW&Egress=false\
             &CidrBlock=10.0.0.0%2F8&PortRange.From=80&PortRange.To=443",
        )
        .unwrap();
        let e = entry_request(&p).unwrap();
        assert_eq!(
            e,
            NaclEntryRequest {
                rule_number: 110,
                egress: false,
                protocol: "6".into(),
                cidr: "10.0.0.0/8".into(),
                from_port: Some(80),
                to_port: Some(443),
                allow: true,
            }
        );
        let icmp = Params::parse(
            "RuleNumber=1&Protocol=1&RuleAction=deny&Egress=true&Ipv6CidrBlock=%3A%3A%2F0\
             &Icmp.Type=8&Icmp.Code=-1",
        )
        .unwrap();
        let e = entry_request(&icmp).unwrap();
        assert_eq!(
            (e.from_port, e.to_port, e.allow, e.egress),
            (Some(8), Some(-1), false, true)
        );
        assert_eq!(e.cidr, "::/0");
    }

    #[test]
    fn entry_request_refusals() {
        let base = "RuleNumber=100&Protocol=-1&RuleAction=allow&Egress=false";
        let code = |extra: &str| {
            entry_request(&Params::parse(&format!("{base}&{extra}")).unwrap())
                .unwrap_err()
                .code
        };
        assert_eq!(code(""), "MissingParameter");
        assert_eq!(
            code("CidrBlock=10.0.0.0%2F8&Ipv6CidrBlock=%3A%3A%2F0"),
            "InvalidParameterCombination"
        );
        assert_eq!(code("CidrBlock=%3A%3A%2F0"), "InvalidParameterValue");
        assert_eq!(code("Ipv6CidrBlock=10.0.0.0%2F8"), "InvalidParameterValue");
        let with = |text: &str| Params::parse(text).unwrap();
        for bad in [
            "RuleNumber=0&Protocol=-1&RuleAction=allow&Egress=false&CidrBlock=0.0.0.0%2F0",
            "RuleNumber=32767&Protocol=-1&RuleAction=allow&Egress=false&CidrBlock=0.0.0.0%2F0",
            "RuleNumber=1&Protocol=-1&RuleAction=permit&Egress=false&CidrBlock=0.0.0.0%2F0",
            "RuleNumber=1&Protocol=-1&RuleAction=allow&Egress=maybe&CidrBlock=0.0.0.0%2F0",
        ] {
            assert_eq!(
                entry_request(&with(bad)).unwrap_err().code,
                "InvalidParameterValue",
                "{bad}"
            );
        }
        assert_eq!(
            entry_request(&with(
                "Protocol=-1&RuleAction=allow&Egress=false&CidrBlock=0.0.0.0%2F0"
            ))
            .unwrap_err()
            .code,
            "MissingParameter"
        );
    }
}

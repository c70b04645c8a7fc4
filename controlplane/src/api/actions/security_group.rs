//! Security-group actions: create, delete, describe (with AWS's filters),
//! authorize / revoke in both directions (by permission and by rule id),
//! DescribeSecurityGroupRules, ModifySecurityGroupRules and the rule
//! description updates.

use palisade_policy::{Peer, SgRule};

use super::common::{port_fields, protocol_text};
use super::{apply_tags, paginate, tag_filter, tag_specifications, unknown_filter, write_tags};
use crate::api::params::missing;
use crate::api::{Context, Filter, Params, Xml};
use crate::model::Ec2ErrorCode;
use crate::model::{ApiError, Model, Op, Outcome, PeerRequest, Permission, SecurityGroup};

/// Parameters of Authorize*: the permission list, or (ingress, legacy)
/// one permission spelled at the top level; tags for the new rules.
pub(super) const AUTHORIZE_PARAMS: &[&str] = &[
    "TagSpecification",
    "GroupId",
    "GroupName",
    "IpPermissions",
    "IpProtocol",
    "FromPort",
    "ToPort",
    "CidrIp",
    "SourceSecurityGroupName",
    "SourceSecurityGroupOwnerId",
];

/// Parameters of Revoke*: Authorize's, plus rule ids.
pub(super) const REVOKE_PARAMS: &[&str] = &[
    "GroupId",
    "GroupName",
    "IpPermissions",
    "IpProtocol",
    "FromPort",
    "ToPort",
    "CidrIp",
    "SourceSecurityGroupName",
    "SourceSecurityGroupOwnerId",
    "SecurityGroupRuleId",
];

/// Parameters of UpdateSecurityGroupRuleDescriptions*.
pub(super) const DESCRIPTION_PARAMS: &[&str] = &[
    "GroupId",
    "GroupName",
    "IpPermissions",
    "SecurityGroupRuleDescription",
];

fn group_not_found(id: &str) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::InvalidGroupNotFound,
        format!("The security group '{id}' does not exist"),
    )
}

fn malformed_group_id(id: &str) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::InvalidGroupIdMalformed,
        format!("Invalid id: \"{id}\" (expecting \"sg-...\")"),
    )
}

/// The group a request names with `GroupId`, or with `GroupName` when
/// the name is unique across VPCs (AWS resolves names in the default VPC;
/// palisade has none, so an ambiguous name must be given as an id).
fn target_group(cx: &Context<'_>, p: &Params) -> Result<String, ApiError> {
    if let Some(id) = p.get("GroupId") {
        if p.get("GroupName").is_some() {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterCombination,
                "GroupId and GroupName cannot both be given",
            ));
        }
        return Ok(id.to_owned());
    }
    let Some(name) = p.get("GroupName") else {
        return Err(missing("GroupId"));
    };
    group_by_name(cx, name)
}

fn group_by_name(cx: &Context<'_>, name: &str) -> Result<String, ApiError> {
    let found: Vec<String> = cx.read(|model| {
        model
            .security_groups
            .values()
            .filter(|g| g.name == name)
            .map(|g| g.id.0.clone())
            .collect()
    })?;
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ApiError::new(
            Ec2ErrorCode::InvalidGroupNotFound,
            format!("The security group '{name}' does not exist"),
        )),
        _ => Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            format!("The security group name '{name}' is used in more than one VPC; use GroupId"),
        )),
    }
}

/// One `IpPermission` structure → one [`Permission`] per peer it lists.
fn parse_permission(
    cx: &Context<'_>,
    member: &Params,
    index: usize,
) -> Result<Vec<Permission>, ApiError> {
    let protocol = member
        .get("IpProtocol")
        .ok_or_else(|| missing(&format!("IpPermissions.{index}.IpProtocol")))?
        .to_owned();
    let from_port = member.int("FromPort")?;
    let to_port = member.int("ToPort")?;
    let make = |peer: PeerRequest, description: Option<&str>| Permission {
        protocol: protocol.clone(),
        from_port,
        to_port,
        peer,
        description: description.unwrap_or_default().to_owned(),
    };
    let mut out = Vec::new();
    for range in member.members("IpRanges")? {
        let cidr = range.required("CidrIp")?;
        if cidr.contains(':') {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!("CIDR block {cidr} is malformed: CidrIp takes IPv4 blocks"),
            ));
        }
        out.push(make(
            PeerRequest::Cidr(cidr.to_owned()),
            range.get("Description"),
        ));
    }
    for range in member.members("Ipv6Ranges")? {
        let cidr = range.required("CidrIpv6")?;
        if !cidr.contains(':') {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!("CIDR block {cidr} is malformed: CidrIpv6 takes IPv6 blocks"),
            ));
        }
        out.push(make(
            PeerRequest::Cidr(cidr.to_owned()),
            range.get("Description"),
        ));
    }
    for list in member.members("PrefixListIds")? {
        let id = list.required("PrefixListId")?;
        out.push(make(
            PeerRequest::PrefixList(id.to_owned()),
            list.get("Description"),
        ));
    }
    for pair in member.members("Groups")? {
        let id = match (pair.get("GroupId"), pair.get("GroupName")) {
            (Some(id), _) => id.to_owned(),
            (None, Some(name)) => group_by_name(cx, name)?,
            (None, None) => return Err(missing("GroupId")),
        };
        out.push(make(PeerRequest::Group(id), pair.get("Description")));
    }
    if out.is_empty() {
        return Err(ApiError::new(
            Ec2ErrorCode::MissingParameter,
            format!(
                "IpPermissions.{index} must name a source or destination: IpRanges, Ipv6Ranges, PrefixListIds or Groups"
            ),
        ));
    }
    Ok(out)
}

/// The permissions of a request: `IpPermissions.N`, or the legacy
/// top-level form (`IpProtocol`, `FromPort`, `ToPort`, `CidrIp` /
/// `SourceSecurityGroupName`).
fn permissions(cx: &Context<'_>, p: &Params) -> Result<Vec<Permission>, ApiError> {
    let legacy = [
        "IpProtocol",
        "FromPort",
        "ToPort",
        "CidrIp",
        "SourceSecurityGroupName",
    ]
    .iter()
    .any(|n| p.get(n).is_some());
    let members = p.members("IpPermissions")?;
    if legacy && !members.is_empty() {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterCombination,
            "The parameter 'ipPermissions' may not be used in combination with 'ipProtocol', 'fromPort', 'toPort', 'cidrIp' or 'sourceSecurityGroupName'",
        ));
    }
    if legacy {
        let peer = match (p.get("CidrIp"), p.get("SourceSecurityGroupName")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidParameterCombination,
                    "CidrIp and SourceSecurityGroupName cannot both be given",
                ));
            }
            (Some(cidr), None) => PeerRequest::Cidr(cidr.to_owned()),
            (None, Some(name)) => PeerRequest::Group(group_by_name(cx, name)?),
            (None, None) => return Err(missing("CidrIp")),
        };
        let protocol = p.get("IpProtocol").unwrap_or("-1").to_owned();
        return Ok(vec![Permission {
            protocol,
            from_port: p.int("FromPort")?,
            to_port: p.int("ToPort")?,
            peer,
            description: String::new(),
        }]);
    }
    if members.is_empty() {
        return Err(missing("IpPermissions"));
    }
    let mut out = Vec::new();
    for (i, member) in members.iter().enumerate() {
        out.extend(parse_permission(cx, member, i + 1)?);
    }
    Ok(out)
}

fn group_arn(cx: &Context<'_>, id: &str) -> String {
    format!(
        "arn:aws:ec2:{}:{}:security-group/{id}",
        cx.region,
        cx.account_id()
    )
}

pub(super) fn create(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let name = p.required("GroupName")?.to_owned();
    let description = p.required("GroupDescription")?.to_owned();
    // Without VpcId, AWS puts the group in the account's default VPC.
    let vpc = match p.get("VpcId") {
        Some(vpc) => vpc.to_owned(),
        None => cx
            .read(|model| {
                model
                    .vpcs
                    .values()
                    .find(|v| v.is_default)
                    .map(|v| v.id.0.clone())
            })?
            .ok_or_else(|| {
                ApiError::new(
                    Ec2ErrorCode::VpcIdNotSpecified,
                    "No default VPC for this user: VpcId is required",
                )
            })?,
    };
    let tags = tag_specifications(p, "security-group")?;
    let outcome = cx.apply(&Op::CreateSecurityGroup {
        vpc,
        name,
        description,
    })?;
    let Outcome::Created(ids) = outcome else {
        return Err(crate::api::internal_error());
    };
    let id = ids
        .into_iter()
        .next()
        .ok_or_else(crate::api::internal_error)?;
    apply_tags(cx, &id, tags)?;
    out.return_true()
        .leaf("groupId", &id)
        .leaf("securityGroupArn", group_arn(cx, &id));
    cx.read(|model| write_tags(out, model.tags.get(&id)))
}

pub(super) fn delete(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let group = target_group(cx, p)?;
    cx.apply(&Op::DeleteSecurityGroup {
        group: group.clone(),
    })?;
    out.return_true().leaf("groupId", &group);
    Ok(())
}

/// Rules with the same protocol and ports, grouped into one
/// `IpPermission` as DescribeSecurityGroups reports them.
fn write_permissions(out: &mut Xml, tag: &str, account: &str, rules: &[SgRule]) {
    type Permission<'r> = (String, Option<(i32, i32)>, Vec<&'r SgRule>);
    let mut groups: Vec<Permission<'_>> = Vec::new();
    for rule in rules {
        let key = (protocol_text(rule.protocol), port_fields(rule));
        match groups
            .iter_mut()
            .find(|(p, r, _)| *p == key.0 && *r == key.1)
        {
            Some((_, _, members)) => members.push(rule),
            None => groups.push((key.0, key.1, vec![rule])),
        }
    }
    out.list(tag, groups, |x, (protocol, ports, members)| {
        x.leaf("ipProtocol", &protocol);
        if let Some((from, to)) = ports {
            x.leaf("fromPort", from).leaf("toPort", to);
        }
        // One list per kind of peer, in AWS's order, each rule in the list
        // of its peer's kind.
        for list in ["groups", "ipRanges", "ipv6Ranges", "prefixListIds"] {
            x.list(
                list,
                members.iter().filter(|r| peer_list(&r.peer) == list),
                |x, r| {
                    match &r.peer {
                        Peer::Group(g) => x.leaf("userId", account).leaf("groupId", g),
                        Peer::Cidr4(c) => x.leaf("cidrIp", c),
                        Peer::Cidr6(c) => x.leaf("cidrIpv6", c),
                        Peer::PrefixList(id) => x.leaf("prefixListId", id),
                    };
                    if !r.description.is_empty() {
                        x.leaf("description", &r.description);
                    }
                },
            );
        }
    });
}

/// The `IpPermission` list a rule with this peer is reported in.
fn peer_list(peer: &Peer) -> &'static str {
    match peer {
        Peer::Group(_) => "groups",
        Peer::Cidr4(_) => "ipRanges",
        Peer::Cidr6(_) => "ipv6Ranges",
        Peer::PrefixList(_) => "prefixListIds",
    }
}

fn write_group(out: &mut Xml, cx: &Context<'_>, model: &Model, group: &SecurityGroup) {
    out.leaf("ownerId", cx.account_id())
        .leaf("groupId", &group.id)
        .leaf("groupName", &group.name)
        .leaf("groupDescription", &group.description)
        .leaf("vpcId", &group.vpc)
        .leaf("securityGroupArn", group_arn(cx, group.id.as_str()));
    write_permissions(out, "ipPermissions", cx.account_id(), &group.ingress);
    write_permissions(out, "ipPermissionsEgress", cx.account_id(), &group.egress);
    write_tags(out, model.tags.get(group.id.as_str()));
}

/// Whether any rule of `rules` satisfies the `ip-permission.*` filter
/// `field`; `None` for an unknown field.
fn rule_filter(field: &str, filter: &Filter, rules: &[SgRule], model: &Model) -> Option<bool> {
    let any = |f: &dyn Fn(&SgRule) -> bool| rules.iter().any(f);
    Some(match field {
        "cidr" => any(&|r| matches!(&r.peer, Peer::Cidr4(c) if filter.matches(&c.to_string()))),
        "ipv6-cidr" => {
            any(&|r| matches!(&r.peer, Peer::Cidr6(c) if filter.matches(&c.to_string())))
        }
        "prefix-list-id" => {
            any(&|r| matches!(&r.peer, Peer::PrefixList(p) if filter.matches(p.as_str())))
        }
        "group-id" => any(&|r| matches!(&r.peer, Peer::Group(g) if filter.matches(g.as_str()))),
        "group-name" => any(&|r| {
            matches!(&r.peer, Peer::Group(g) if model
                .security_groups
                .get(g.as_str())
                .is_some_and(|peer| filter.matches(&peer.name)))
        }),
        "protocol" => any(&|r| {
            let text = protocol_text(r.protocol);
            filter.matches(&text)
                || r.protocol
                    .number()
                    .is_some_and(|n| filter.matches(&n.to_string()))
        }),
        "from-port" => {
            any(&|r| port_fields(r).is_some_and(|(f, _)| filter.matches(&f.to_string())))
        }
        "to-port" => any(&|r| port_fields(r).is_some_and(|(_, t)| filter.matches(&t.to_string()))),
        "description" => any(&|r| filter.matches(&r.description)),
        _ => return None,
    })
}

fn group_matches(
    cx: &Context<'_>,
    model: &Model,
    group: &SecurityGroup,
    filter: &Filter,
) -> Result<bool, ApiError> {
    if let Some(m) = tag_filter(filter, model.tags.get(group.id.as_str())) {
        return Ok(m);
    }
    let name = filter.name.as_str();
    if let Some(field) = name.strip_prefix("egress.ip-permission.") {
        return rule_filter(field, filter, &group.egress, model)
            .ok_or_else(|| unknown_filter(name));
    }
    if let Some(field) = name.strip_prefix("ip-permission.") {
        return rule_filter(field, filter, &group.ingress, model)
            .ok_or_else(|| unknown_filter(name));
    }
    Ok(match name {
        "group-id" => filter.matches(group.id.as_str()),
        "group-name" => filter.matches(&group.name),
        "description" => filter.matches(&group.description),
        "vpc-id" => filter.matches(group.vpc.as_str()),
        "owner-id" => filter.matches(cx.account_id()),
        _ => return Err(unknown_filter(name)),
    })
}

pub(super) fn describe(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let ids = p.list("GroupId")?;
    let names = p.list("GroupName")?;
    super::check_paging(p, !ids.is_empty() || !names.is_empty())?;
    let filters = p.filters()?;
    for id in &ids {
        if !crate::config::is_aws_shaped(crate::config::ObjectKind::SecurityGroup, id) {
            return Err(malformed_group_id(id));
        }
    }
    cx.read(|model| -> Result<(), ApiError> {
        for id in &ids {
            if !model.security_groups.contains_key(*id) {
                return Err(group_not_found(id));
            }
        }
        for name in &names {
            if !model.security_groups.values().any(|g| g.name == *name) {
                return Err(group_not_found(name));
            }
        }
        let mut selected = Vec::new();
        // Named ids are looked up, not searched for (Terraform reads one
        // group at a time); otherwise every group, in creation order.
        let candidates: Box<dyn Iterator<Item = &String>> = if ids.is_empty() {
            Box::new(model.group_order.iter())
        } else {
            let mut named: Vec<&String> = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some((key, _)) = model.security_groups.get_key_value(*id) {
                    if !named.contains(&key) {
                        named.push(key);
                    }
                }
            }
            Box::new(named.into_iter())
        };
        for id in candidates {
            let Some(group) = model.security_groups.get(id) else {
                continue;
            };
            if !names.is_empty() && !names.contains(&group.name.as_str()) {
                continue;
            }
            let mut keep = true;
            for filter in &filters {
                keep &= group_matches(cx, model, group, filter)?;
            }
            if keep {
                selected.push(group);
            }
        }
        let explicit = !ids.is_empty() || !names.is_empty();
        let (page, next) = paginate(selected, p, 5, explicit)?;
        out.list("securityGroupInfo", page, |x, g| {
            write_group(x, cx, model, g);
        });
        out.leaf_opt("nextToken", next);
        Ok(())
    })?
}

/// One `SecurityGroupRule` as DescribeSecurityGroupRules and Authorize
/// report it.
fn write_rule(
    out: &mut Xml,
    cx: &Context<'_>,
    model: &Model,
    group: &SecurityGroup,
    rule: &SgRule,
    egress: bool,
) {
    out.leaf("securityGroupRuleId", &rule.id)
        .leaf("groupId", &group.id)
        .leaf("groupOwnerId", cx.account_id())
        .leaf("isEgress", egress)
        .leaf("ipProtocol", protocol_text(rule.protocol));
    let (from, to) = port_fields(rule).unwrap_or((-1, -1));
    out.leaf("fromPort", from).leaf("toPort", to);
    match &rule.peer {
        Peer::Cidr4(c) => {
            out.leaf("cidrIpv4", c);
        }
        Peer::Cidr6(c) => {
            out.leaf("cidrIpv6", c);
        }
        Peer::PrefixList(id) => {
            out.leaf("prefixListId", id);
        }
        Peer::Group(g) => {
            out.element("referencedGroupInfo", |x| {
                x.leaf("groupId", g).leaf("userId", cx.account_id());
                if let Some(peer) = model.security_groups.get(g.as_str()) {
                    if peer.vpc != group.vpc {
                        x.leaf("vpcId", &peer.vpc);
                    }
                }
            });
        }
    }
    if !rule.description.is_empty() {
        out.leaf("description", &rule.description);
    }
    out.leaf(
        "securityGroupRuleArn",
        format_args!(
            "arn:aws:ec2:{}:{}:security-group-rule/{}",
            cx.region,
            cx.account_id(),
            rule.id
        ),
    );
    write_tags(out, model.tags.get(rule.id.as_str()));
}

fn authorize(cx: &Context<'_>, p: &Params, out: &mut Xml, egress: bool) -> Result<(), ApiError> {
    if egress && (p.get("CidrIp").is_some() || p.get("SourceSecurityGroupName").is_some()) {
        // AWS's egress call has no legacy form.
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterCombination,
            "AuthorizeSecurityGroupEgress takes IpPermissions only",
        ));
    }
    let group = target_group(cx, p)?;
    let permissions = permissions(cx, p)?;
    // Validated before the rules exist, so a bad tag refuses the whole call.
    let tags = tag_specifications(p, "security-group-rule")?;
    let outcome = cx.apply(&Op::Authorize {
        group: group.clone(),
        egress,
        permissions,
    })?;
    let created = match outcome {
        Outcome::Created(ids) => ids,
        Outcome::Done => Vec::new(),
    };
    if !tags.is_empty() && !created.is_empty() {
        // Every rule the call created gets the tags, as in AWS.
        cx.apply(&Op::CreateTags {
            resources: created.clone(),
            tags,
        })?;
    }
    out.return_true();
    cx.read(|model| {
        let Some(g) = model.security_groups.get(&group) else {
            return;
        };
        let rules = if egress { &g.egress } else { &g.ingress };
        out.list(
            "securityGroupRuleSet",
            rules
                .iter()
                .filter(|r| created.iter().any(|id| id == r.id.as_str())),
            |x, r| write_rule(x, cx, model, g, r, egress),
        );
    })
}

pub(super) fn authorize_ingress(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    authorize(cx, p, out, false)
}

pub(super) fn authorize_egress(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    authorize(cx, p, out, true)
}

fn rules_of(cx: &Context<'_>, group: &str, egress: bool) -> Result<Vec<SgRule>, ApiError> {
    cx.read(|model| {
        model
            .security_groups
            .get(group)
            .map(|g| g.rules(egress).to_vec())
    })?
    .ok_or_else(|| group_not_found(group))
}

fn revoke(cx: &Context<'_>, p: &Params, out: &mut Xml, egress: bool) -> Result<(), ApiError> {
    let group = target_group(cx, p)?;
    let rule_ids: Vec<String> = p
        .list("SecurityGroupRuleId")?
        .into_iter()
        .map(str::to_owned)
        .collect();
    let by_permission = p.has("IpPermissions")
        || [
            "IpProtocol",
            "FromPort",
            "ToPort",
            "CidrIp",
            "SourceSecurityGroupName",
        ]
        .iter()
        .any(|n| p.get(n).is_some());
    let op = match (rule_ids.is_empty(), by_permission) {
        (false, true) => {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterCombination,
                "SecurityGroupRuleIds cannot be combined with IpPermissions",
            ));
        }
        (false, false) => Op::RevokeRuleIds {
            group: group.clone(),
            egress,
            rule_ids,
        },
        (true, _) => Op::Revoke {
            group: group.clone(),
            egress,
            permissions: permissions(cx, p)?,
        },
    };
    // The rules the revoke removes, for `revokedSecurityGroupRuleSet`:
    // read before and after (the op itself reports only success).
    let before = if cx.dry_run_requested() {
        Vec::new()
    } else {
        rules_of(cx, &group, egress).unwrap_or_default()
    };
    cx.apply(&op)?;
    let after = rules_of(cx, &group, egress).unwrap_or_default();
    out.return_true();
    out.list(
        "revokedSecurityGroupRuleSet",
        before
            .iter()
            .filter(|r| !after.iter().any(|a| a.id == r.id)),
        |x, r| {
            x.leaf("securityGroupRuleId", &r.id)
                .leaf("groupId", &group)
                .leaf("isEgress", egress)
                .leaf("ipProtocol", protocol_text(r.protocol));
            let (from, to) = port_fields(r).unwrap_or((-1, -1));
            x.leaf("fromPort", from).leaf("toPort", to);
            match &r.peer {
                Peer::Cidr4(c) => x.leaf("cidrIpv4", c),
                Peer::Cidr6(c) => x.leaf("cidrIpv6", c),
                Peer::PrefixList(id) => x.leaf("prefixListId", id),
                Peer::Group(g) => x.leaf("referencedGroupId", g),
            };
            if !r.description.is_empty() {
                x.leaf("description", &r.description);
            }
        },
    );
    Ok(())
}

pub(super) fn revoke_ingress(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    revoke(cx, p, out, false)
}

pub(super) fn revoke_egress(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    revoke(cx, p, out, true)
}

pub(super) fn describe_rules(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let ids = p.list("SecurityGroupRuleId")?;
    super::check_paging(p, !ids.is_empty())?;
    let filters = p.filters()?;
    for filter in &filters {
        let known = matches!(filter.name.as_str(), "group-id" | "security-group-rule-id")
            || filter.name.starts_with("tag:")
            || matches!(filter.name.as_str(), "tag-key" | "tag-value");
        if !known {
            return Err(unknown_filter(&filter.name));
        }
    }
    cx.read(|model| -> Result<(), ApiError> {
        let mut all: Vec<(&SecurityGroup, &SgRule, bool)> = Vec::new();
        for id in &model.group_order {
            let Some(g) = model.security_groups.get(id) else {
                continue;
            };
            all.extend(g.ingress.iter().map(|r| (g, r, false)));
            all.extend(g.egress.iter().map(|r| (g, r, true)));
        }
        for id in &ids {
            if !all.iter().any(|(_, r, _)| r.id.as_str() == *id) {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidSecurityGroupRuleIdNotFound,
                    format!("The security group rule ID '{id}' does not exist"),
                ));
            }
        }
        let selected: Vec<_> = all
            .into_iter()
            .filter(|(g, r, _)| {
                (ids.is_empty() || ids.contains(&r.id.as_str()))
                    && filters.iter().all(|f| match f.name.as_str() {
                        "group-id" => f.matches(g.id.as_str()),
                        "security-group-rule-id" => f.matches(r.id.as_str()),
                        _ => tag_filter(f, model.tags.get(r.id.as_str())).unwrap_or(false),
                    })
            })
            .collect();
        let (page, next) = paginate(selected, p, 5, !ids.is_empty())?;
        out.list("securityGroupRuleSet", page, |x, (g, r, egress)| {
            write_rule(x, cx, model, g, r, egress);
        });
        out.leaf_opt("nextToken", next);
        Ok(())
    })?
}

pub(super) fn modify_rules(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let group = p.required("GroupId")?.to_owned();
    let updates = p.members("SecurityGroupRule")?;
    if updates.is_empty() {
        return Err(missing("SecurityGroupRule"));
    }
    let mut rules = Vec::with_capacity(updates.len());
    for (i, update) in updates.iter().enumerate() {
        let id = update.required("SecurityGroupRuleId")?.to_owned();
        let body = update
            .structure("SecurityGroupRule")
            .ok_or_else(|| missing(&format!("SecurityGroupRule.{}.SecurityGroupRule", i + 1)))?;
        let peers: Vec<PeerRequest> = [
            body.get("CidrIpv4")
                .map(|c| PeerRequest::Cidr(c.to_owned())),
            body.get("CidrIpv6")
                .map(|c| PeerRequest::Cidr(c.to_owned())),
            body.get("PrefixListId")
                .map(|c| PeerRequest::PrefixList(c.to_owned())),
            body.get("ReferencedGroupId")
                .map(|c| PeerRequest::Group(c.to_owned())),
        ]
        .into_iter()
        .flatten()
        .collect();
        let peer = match <[PeerRequest; 1]>::try_from(peers) {
            Ok([peer]) => peer,
            Err(peers) if peers.is_empty() => {
                return Err(missing(
                    "CidrIpv4, CidrIpv6, PrefixListId or ReferencedGroupId",
                ));
            }
            Err(_) => {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidParameterCombination,
                    "A security group rule has exactly one of CidrIpv4, CidrIpv6, PrefixListId and ReferencedGroupId",
                ));
            }
        };
        rules.push((
            id,
            Permission {
                protocol: body.required("IpProtocol")?.to_owned(),
                from_port: body.int("FromPort")?,
                to_port: body.int("ToPort")?,
                peer,
                description: body.get("Description").unwrap_or_default().to_owned(),
            },
        ));
    }
    cx.apply(&Op::ModifySecurityGroupRules { group, rules })?;
    out.return_true();
    Ok(())
}

fn update_descriptions(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
    egress: bool,
) -> Result<(), ApiError> {
    let group = target_group(cx, p)?;
    let mut by_id = Vec::new();
    for item in p.members("SecurityGroupRuleDescription")? {
        by_id.push((
            item.required("SecurityGroupRuleId")?.to_owned(),
            item.get("Description").unwrap_or_default().to_owned(),
        ));
    }
    let by_permission = if p.has("IpPermissions") {
        permissions(cx, p)?
    } else {
        Vec::new()
    };
    if by_id.is_empty() && by_permission.is_empty() {
        return Err(missing("IpPermissions"));
    }
    cx.apply(&Op::UpdateRuleDescriptions {
        group,
        egress,
        by_permission,
        by_id,
    })?;
    out.return_true();
    Ok(())
}

pub(super) fn update_descriptions_ingress(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    update_descriptions(cx, p, out, false)
}

pub(super) fn update_descriptions_egress(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    update_descriptions(cx, p, out, true)
}

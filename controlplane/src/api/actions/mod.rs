//! The EC2 actions: a registry from action name to handler, and the
//! helpers handlers share (pagination, tags, filters).
//!
//! # Adding an action
//!
//! 1. Write the handler in the module of its resource (`vpc.rs`,
//!    `security_group.rs`, or a new one declared below):
//!
//!    ```text
//!    pub(super) fn delete_thing(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
//!        let id = p.required("ThingId")?;          // MissingParameter if absent
//!        cx.apply(&Op::DeleteThing { thing: id.to_owned() })?; // DryRun is enforced here
//!        out.return_true();
//!        Ok(())
//!    }
//!    ```
//!
//!    - Read parameters with [`Params`]: `required`, `get`, `int`, `bool`
//!      (AWS's `InvalidParameterValue` on a bad value), `list("GroupId")`
//!      for `GroupId.N`, `members("IpPermissions")` for lists of structures
//!      (each member is a `Params` with the `IpPermissions.N.` prefix
//!      removed), `structure("X")` for a single nested structure,
//!      `filters()` for `Filter.N.Name/Value.M`. The query names are
//!      botocore's: the member's `locationName` capitalised
//!      (`UserIdGroupPairs` travels as `Groups.N`), see
//!      `botocore/data/ec2/2016-11-15/service-2.json`.
//!    - Change state only through `cx.apply(&op)`: one [`Op`] is one
//!      durable transaction, published to the data plane before `apply`
//!      returns. Build the whole op first, so that a bad parameter fails
//!      before anything is written; under `DryRun` `apply` returns
//!      `DryRunOperation` instead of writing.
//!    - Read state with `cx.read(|model| …)`, which returns what the
//!      closure computed; keep the closure short (it holds the store lock).
//!    - Write the response body with [`Xml`] using botocore's
//!      `locationName`s (`groupId`, `ipPermissionsEgress`, lists as
//!      `<xxxSet><item>…</item></xxxSet>`). The dispatcher adds the
//!      `<ActionResponse xmlns=…><requestId>` envelope and turns an
//!      `Err(ApiError)` into AWS's error document with the right status.
//! 2. Add one line to [`ACTIONS`]: name, whether it mutates (a
//!    non-mutating action answers `DryRun` with `DryRunOperation` at once),
//!    the top-level parameter names it accepts (anything else is
//!    `UnknownParameter`; `Action`, `Version`, `DryRun` are implicit), and
//!    the handler.
//! 3. Filters: collect `p.filters()?`, then keep the objects for which
//!    every filter matches ([`Filter::matches`] does AWS's `*`/`?`
//!    wildcards; [`tag_filter`] answers `tag:Key`, `tag-key`, `tag-value`).
//!    An unknown filter name is `InvalidParameterValue` (see
//!    [`unknown_filter`]). Page with [`paginate`] where AWS has
//!    `MaxResults`/`NextToken`.
//! 4. Test it in `tests/api/` with boto3 and the AWS CLI (fixtures `ec2`,
//!    `aws`, `palisade` in `tests/api/conftest.py`), errors included.

mod common;
mod network_acl;
mod network_interface;
mod peering;
mod prefix_list;
mod route_table;
mod security_group;
mod tags;
mod vpc;

use std::collections::BTreeMap;

use super::Context;
use super::params::{Filter, Params};
use super::xml::Xml;
use crate::model::ApiError;
use crate::model::Ec2ErrorCode;

/// A handler: parameters in, response body out.
pub type Handler = fn(&Context<'_>, &Params, &mut Xml) -> Result<(), ApiError>;

/// One registered action.
#[derive(Debug)]
pub struct Action {
    /// The `Action=` name.
    pub name: &'static str,
    /// Whether it changes state (decides how `DryRun` is answered).
    pub mutates: bool,
    /// The top-level parameter names it accepts (the part before the
    /// first `.`), besides `Action`, `Version` and `DryRun`.
    pub params: &'static [&'static str],
    /// The handler.
    pub handler: Handler,
}

const TAGS: &str = "TagSpecification";
const PAGING: [&str; 2] = ["MaxResults", "NextToken"];

/// Every EC2 action the endpoint serves.
pub static ACTIONS: &[Action] = &[
    Action {
        name: "CreateVpc",
        mutates: true,
        params: &[
            "CidrBlock",
            "Ipv6CidrBlock",
            "AmazonProvidedIpv6CidrBlock",
            "InstanceTenancy",
            TAGS,
        ],
        handler: vpc::create_vpc,
    },
    Action {
        name: "DeleteVpc",
        mutates: true,
        params: &["VpcId"],
        handler: vpc::delete_vpc,
    },
    Action {
        name: "DescribeVpcs",
        mutates: false,
        params: &["VpcId", "Filter", PAGING[0], PAGING[1]],
        handler: vpc::describe_vpcs,
    },
    Action {
        name: "DescribeVpcAttribute",
        mutates: false,
        params: &["VpcId", "Attribute"],
        handler: vpc::describe_vpc_attribute,
    },
    Action {
        name: "ModifyVpcAttribute",
        mutates: true,
        params: &[
            "VpcId",
            "EnableDnsSupport",
            "EnableDnsHostnames",
            "EnableNetworkAddressUsageMetrics",
        ],
        handler: vpc::modify_vpc_attribute,
    },
    Action {
        name: "CreateSubnet",
        mutates: true,
        params: &[
            "VpcId",
            "CidrBlock",
            "Ipv6CidrBlock",
            "AvailabilityZone",
            "AvailabilityZoneId",
            TAGS,
        ],
        handler: vpc::create_subnet,
    },
    Action {
        name: "AssociateVpcCidrBlock",
        mutates: true,
        params: &[
            "VpcId",
            "AmazonProvidedIpv6CidrBlock",
            "Ipv6CidrBlock",
            "CidrBlock",
            "Ipv6CidrBlockNetworkBorderGroup",
        ],
        handler: vpc::associate_vpc_cidr_block,
    },
    Action {
        name: "DisassociateVpcCidrBlock",
        mutates: true,
        params: &["AssociationId"],
        handler: vpc::disassociate_vpc_cidr_block,
    },
    Action {
        name: "AssociateSubnetCidrBlock",
        mutates: true,
        params: &["SubnetId", "Ipv6CidrBlock"],
        handler: vpc::associate_subnet_cidr_block,
    },
    Action {
        name: "DisassociateSubnetCidrBlock",
        mutates: true,
        params: &["AssociationId"],
        handler: vpc::disassociate_subnet_cidr_block,
    },
    Action {
        name: "ModifySubnetAttribute",
        mutates: true,
        params: &[
            "SubnetId",
            "MapPublicIpOnLaunch",
            "AssignIpv6AddressOnCreation",
        ],
        handler: vpc::modify_subnet_attribute,
    },
    Action {
        name: "CreateDefaultVpc",
        mutates: true,
        params: &[],
        handler: vpc::create_default_vpc,
    },
    Action {
        name: "DescribeAvailabilityZones",
        mutates: false,
        params: &["ZoneName", "ZoneId", "Filter", "AllAvailabilityZones"],
        handler: vpc::describe_availability_zones,
    },
    Action {
        name: "DescribeAccountAttributes",
        mutates: false,
        params: &["AttributeName"],
        handler: vpc::describe_account_attributes,
    },
    Action {
        name: "DeleteSubnet",
        mutates: true,
        params: &["SubnetId"],
        handler: vpc::delete_subnet,
    },
    Action {
        name: "DescribeSubnets",
        mutates: false,
        params: &["SubnetId", "Filter", PAGING[0], PAGING[1]],
        handler: vpc::describe_subnets,
    },
    Action {
        name: "CreateSecurityGroup",
        mutates: true,
        params: &["GroupName", "GroupDescription", "VpcId", TAGS],
        handler: security_group::create,
    },
    Action {
        name: "DeleteSecurityGroup",
        mutates: true,
        params: &["GroupId", "GroupName"],
        handler: security_group::delete,
    },
    Action {
        name: "DescribeSecurityGroups",
        mutates: false,
        params: &["GroupId", "GroupName", "Filter", PAGING[0], PAGING[1]],
        handler: security_group::describe,
    },
    Action {
        name: "AuthorizeSecurityGroupIngress",
        mutates: true,
        params: security_group::AUTHORIZE_PARAMS,
        handler: security_group::authorize_ingress,
    },
    Action {
        name: "AuthorizeSecurityGroupEgress",
        mutates: true,
        params: security_group::AUTHORIZE_PARAMS,
        handler: security_group::authorize_egress,
    },
    Action {
        name: "RevokeSecurityGroupIngress",
        mutates: true,
        params: security_group::REVOKE_PARAMS,
        handler: security_group::revoke_ingress,
    },
    Action {
        name: "RevokeSecurityGroupEgress",
        mutates: true,
        params: security_group::REVOKE_PARAMS,
        handler: security_group::revoke_egress,
    },
    Action {
        name: "DescribeSecurityGroupRules",
        mutates: false,
        params: &["SecurityGroupRuleId", "Filter", PAGING[0], PAGING[1]],
        handler: security_group::describe_rules,
    },
    Action {
        name: "ModifySecurityGroupRules",
        mutates: true,
        params: &["GroupId", "SecurityGroupRule"],
        handler: security_group::modify_rules,
    },
    Action {
        name: "UpdateSecurityGroupRuleDescriptionsIngress",
        mutates: true,
        params: security_group::DESCRIPTION_PARAMS,
        handler: security_group::update_descriptions_ingress,
    },
    Action {
        name: "UpdateSecurityGroupRuleDescriptionsEgress",
        mutates: true,
        params: security_group::DESCRIPTION_PARAMS,
        handler: security_group::update_descriptions_egress,
    },
    Action {
        name: "CreateNetworkInterface",
        mutates: true,
        params: network_interface::CREATE_PARAMS,
        handler: network_interface::create,
    },
    Action {
        name: "DeleteNetworkInterface",
        mutates: true,
        params: &["NetworkInterfaceId"],
        handler: network_interface::delete,
    },
    Action {
        name: "DescribeNetworkInterfaces",
        mutates: false,
        params: &["NetworkInterfaceId", "Filter", PAGING[0], PAGING[1]],
        handler: network_interface::describe,
    },
    Action {
        name: "DescribeNetworkInterfaceAttribute",
        mutates: false,
        params: &["NetworkInterfaceId", "Attribute"],
        handler: network_interface::describe_attribute,
    },
    Action {
        name: "ModifyNetworkInterfaceAttribute",
        mutates: true,
        params: network_interface::MODIFY_PARAMS,
        handler: network_interface::modify_attribute,
    },
    Action {
        name: "CreateNetworkAcl",
        mutates: true,
        params: &["VpcId", TAGS, "ClientToken"],
        handler: network_acl::create,
    },
    Action {
        name: "DeleteNetworkAcl",
        mutates: true,
        params: &["NetworkAclId"],
        handler: network_acl::delete,
    },
    Action {
        name: "DescribeNetworkAcls",
        mutates: false,
        params: &["NetworkAclId", "Filter", PAGING[0], PAGING[1]],
        handler: network_acl::describe,
    },
    Action {
        name: "CreateNetworkAclEntry",
        mutates: true,
        params: network_acl::ENTRY_PARAMS,
        handler: network_acl::create_entry,
    },
    Action {
        name: "ReplaceNetworkAclEntry",
        mutates: true,
        params: network_acl::ENTRY_PARAMS,
        handler: network_acl::replace_entry,
    },
    Action {
        name: "DeleteNetworkAclEntry",
        mutates: true,
        params: &["NetworkAclId", "RuleNumber", "Egress"],
        handler: network_acl::delete_entry,
    },
    Action {
        name: "ReplaceNetworkAclAssociation",
        mutates: true,
        params: &["AssociationId", "NetworkAclId"],
        handler: network_acl::replace_association,
    },
    Action {
        name: "CreateManagedPrefixList",
        mutates: true,
        params: &[
            "PrefixListName",
            "Entry",
            "MaxEntries",
            "AddressFamily",
            TAGS,
            "ClientToken",
        ],
        handler: prefix_list::create,
    },
    Action {
        name: "DescribeManagedPrefixLists",
        mutates: false,
        params: &["PrefixListId", "Filter", PAGING[0], PAGING[1]],
        handler: prefix_list::describe,
    },
    Action {
        name: "GetManagedPrefixListEntries",
        mutates: false,
        params: &["PrefixListId", "TargetVersion", PAGING[0], PAGING[1]],
        handler: prefix_list::get_entries,
    },
    Action {
        name: "ModifyManagedPrefixList",
        mutates: true,
        params: &[
            "PrefixListId",
            "CurrentVersion",
            "PrefixListName",
            "AddEntry",
            "RemoveEntry",
            "MaxEntries",
        ],
        handler: prefix_list::modify,
    },
    Action {
        name: "DeleteManagedPrefixList",
        mutates: true,
        params: &["PrefixListId"],
        handler: prefix_list::delete,
    },
    Action {
        name: "CreateVpcPeeringConnection",
        mutates: true,
        params: &["VpcId", "PeerVpcId", "PeerOwnerId", "PeerRegion", TAGS],
        handler: peering::create,
    },
    Action {
        name: "AcceptVpcPeeringConnection",
        mutates: true,
        params: &["VpcPeeringConnectionId"],
        handler: peering::accept,
    },
    Action {
        name: "DeleteVpcPeeringConnection",
        mutates: true,
        params: &["VpcPeeringConnectionId"],
        handler: peering::delete,
    },
    Action {
        name: "DescribeVpcPeeringConnections",
        mutates: false,
        params: &["VpcPeeringConnectionId", "Filter", PAGING[0], PAGING[1]],
        handler: peering::describe,
    },
    Action {
        name: "DescribeStaleSecurityGroups",
        mutates: false,
        params: &["VpcId", PAGING[0], PAGING[1]],
        handler: peering::describe_stale,
    },
    Action {
        name: "DescribeRouteTables",
        mutates: false,
        params: &["RouteTableId", "Filter", PAGING[0], PAGING[1]],
        handler: route_table::describe,
    },
    Action {
        name: "CreateTags",
        mutates: true,
        params: &["ResourceId", "Tag"],
        handler: tags::create,
    },
    Action {
        name: "DeleteTags",
        mutates: true,
        params: &["ResourceId", "Tag"],
        handler: tags::delete,
    },
    Action {
        name: "DescribeTags",
        mutates: false,
        params: &["Filter", PAGING[0], PAGING[1]],
        handler: tags::describe,
    },
];

/// AWS's answer to a filter name the action does not know.
pub fn unknown_filter(name: &str) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::InvalidParameterValue,
        format!("The filter '{name}' is invalid"),
    )
}

/// `tag:Key`, `tag-key` and `tag-value` against an object's tags; `None`
/// when `filter` is not a tag filter.
pub fn tag_filter(filter: &Filter, tags: Option<&BTreeMap<String, String>>) -> Option<bool> {
    let empty = BTreeMap::new();
    let tags = tags.unwrap_or(&empty);
    if let Some(key) = filter.name.strip_prefix("tag:") {
        return Some(tags.get(key).is_some_and(|v| filter.matches(v)));
    }
    match filter.name.as_str() {
        "tag-key" => Some(filter.matches_any(tags.keys().map(String::as_str))),
        "tag-value" => Some(filter.matches_any(tags.values().map(String::as_str))),
        _ => None,
    }
}

/// `<tagSet>` as AWS writes it (omitted when there are no tags).
pub fn write_tags(out: &mut Xml, tags: Option<&BTreeMap<String, String>>) {
    if let Some(tags) = tags.filter(|t| !t.is_empty()) {
        out.list("tagSet", tags, |x, (k, v)| {
            x.leaf("key", k).leaf("value", v);
        });
    }
}

/// The tags of `TagSpecification.N` for `resource_type` (`vpc`,
/// `subnet`, `security-group`), validated as CreateTags would.
pub fn tag_specifications(
    params: &Params,
    resource_type: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut tags = Vec::new();
    for spec in params.members(TAGS)? {
        let kind = spec.get("ResourceType").unwrap_or(resource_type);
        if kind != resource_type {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!("'{kind}' is not a valid taggable resource type for this operation."),
            ));
        }
        for tag in spec.members("Tag")? {
            let key = tag.required("Key")?;
            let value = tag.get("Value").unwrap_or_default();
            check_tag(key, value)?;
            tags.push((key.to_owned(), value.to_owned()));
        }
    }
    Ok(tags)
}

/// AWS's tag rules: key 1..=127 characters, not `aws:`; value ≤ 255.
pub fn check_tag(key: &str, value: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.chars().count() > 127 {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            format!("Tag key '{key}' must be 1 to 127 characters long"),
        ));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            "Tag keys starting with 'aws:' are reserved for internal use",
        ));
    }
    if value.chars().count() > 255 {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            format!("Tag value for key '{key}' must be at most 255 characters long"),
        ));
    }
    Ok(())
}

/// Applies the tags a Create* carried to the object it created. A second
/// op (tags are their own journal entry); the tags were validated before
/// the object was created, so this can fail only if the object vanished
/// in between.
pub fn apply_tags(cx: &Context<'_>, id: &str, tags: Vec<(String, String)>) -> Result<(), ApiError> {
    if tags.is_empty() {
        return Ok(());
    }
    cx.apply(&crate::model::Op::CreateTags {
        resources: vec![id.to_owned()],
        tags,
    })
    .map(|_| ())
}

/// AWS refuses `MaxResults` together with explicit ids, before looking
/// the ids up: call this first in a Describe handler.
pub fn check_paging(params: &Params, explicit_ids: bool) -> Result<(), ApiError> {
    if params.get("MaxResults").is_some() && explicit_ids {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterCombination,
            "The parameter MaxResults cannot be used with the ids parameter",
        ));
    }
    Ok(())
}

/// One page of `items` per `MaxResults` (`min..=1000`) / `NextToken`,
/// and the token of the next page. `explicit_ids` tells whether the
/// request named ids, which AWS does not allow together with
/// `MaxResults`.
pub fn paginate<T>(
    items: Vec<T>,
    params: &Params,
    min: i32,
    explicit_ids: bool,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    check_paging(params, explicit_ids)?;
    let max = params.int("MaxResults")?;
    let start = match params.get("NextToken") {
        None => 0,
        Some(token) => token
            .strip_prefix("palisade-")
            .and_then(|t| t.parse::<usize>().ok())
            .filter(|&n| n <= items.len())
            .ok_or_else(|| {
                ApiError::new(
                    Ec2ErrorCode::InvalidPaginationToken,
                    format!("Invalid NextToken '{token}'"),
                )
            })?,
    };
    let Some(max) = max else {
        return Ok((items.into_iter().skip(start).collect(), None));
    };
    if !(min..=1000).contains(&max) {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            format!(
                "Value ({max}) for parameter maxResults is invalid. Expecting a value between {min} and 1000."
            ),
        ));
    }
    let max = max as usize;
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let next = (start + max < total).then(|| format!("palisade-{}", start + max));
    Ok((page, next))
}

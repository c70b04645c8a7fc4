//! Managed prefix list actions: CreateManagedPrefixList,
//! DescribeManagedPrefixLists, GetManagedPrefixListEntries,
//! ModifyManagedPrefixList, DeleteManagedPrefixList.
//!
//! Changes apply at once (palisade has no asynchronous state), so a list is
//! `create-complete` at version 1 and `modify-complete` after that; the
//! version counts entry changes and is what `CurrentVersion` is checked
//! against. Past versions are not kept: `TargetVersion` may only name the
//! current one.

use super::common::{created_id, select};
use super::{
    apply_tags, check_paging, paginate, tag_filter, tag_specifications, unknown_filter, write_tags,
};
use crate::api::{Context, Filter, Params, Xml};
use crate::model::Ec2ErrorCode;
use crate::model::{ApiError, Model, Op, PrefixList, PrefixListEntryRequest};

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::InvalidPrefixListIdNotFound,
        format!("The prefix list ID '{id}' does not exist"),
    )
}

fn entries(p: &Params, prefix: &str) -> Result<Vec<PrefixListEntryRequest>, ApiError> {
    p.members(prefix)?
        .into_iter()
        .map(|m| {
            Ok(PrefixListEntryRequest {
                cidr: m.required("Cidr")?.to_owned(),
                description: m.get("Description").unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

fn max_entries(p: &Params) -> Result<Option<usize>, ApiError> {
    p.int("MaxEntries")?
        .map(|n| {
            usize::try_from(n).map_err(|_| {
                ApiError::new(
                    Ec2ErrorCode::InvalidParameterValue,
                    format!("Value ({n}) for parameter MaxEntries is invalid. Expecting a value between 1 and 1000."),
                )
            })
        })
        .transpose()
}

fn version(p: &Params, name: &str) -> Result<Option<u64>, ApiError> {
    p.get(name)
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                ApiError::new(
                    Ec2ErrorCode::InvalidParameterValue,
                    format!(
                        "Value ({v}) for parameter {name} is invalid. Expected a version number."
                    ),
                )
            })
        })
        .transpose()
}

pub(super) fn create(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let name = p.required("PrefixListName")?.to_owned();
    let max_entries = max_entries(p)?.ok_or_else(|| crate::api::params::missing("MaxEntries"))?;
    let ipv6 = match p.required("AddressFamily")? {
        "IPv4" => false,
        "IPv6" => true,
        other => {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!(
                    "Value ({other}) for parameter AddressFamily is invalid. Expecting IPv4 or IPv6."
                ),
            ));
        }
    };
    let entries = entries(p, "Entry")?;
    let tags = tag_specifications(p, "prefix-list")?;
    let id = created_id(cx.apply(&Op::CreateManagedPrefixList {
        name,
        max_entries,
        ipv6,
        entries,
    })?)?;
    apply_tags(cx, &id, tags)?;
    write_one(cx, &id, out, None)
}

/// `<prefixList>` of `id`, with `state` overriding the computed one.
fn write_one(
    cx: &Context<'_>,
    id: &str,
    out: &mut Xml,
    state: Option<&str>,
) -> Result<(), ApiError> {
    cx.read(|model| {
        if let Some(list) = model.prefix_lists.get(id) {
            out.element("prefixList", |x| write_list(x, cx, model, list, state));
        }
    })
}

fn write_list(
    out: &mut Xml,
    cx: &Context<'_>,
    model: &Model,
    list: &PrefixList,
    state: Option<&str>,
) {
    let computed = if list.version > 1 {
        "modify-complete"
    } else {
        "create-complete"
    };
    out.leaf("prefixListId", &list.id)
        .leaf("addressFamily", if list.ipv6 { "IPv6" } else { "IPv4" })
        .leaf("state", state.unwrap_or(computed))
        .leaf(
            "prefixListArn",
            format_args!(
                "arn:aws:ec2:{}:{}:prefix-list/{}",
                cx.region,
                cx.account_id(),
                list.id
            ),
        )
        .leaf("prefixListName", &list.name)
        .leaf("maxEntries", list.max_entries)
        .leaf("version", list.version)
        .leaf("ownerId", cx.account_id());
    write_tags(out, model.tags.get(list.id.as_str()));
}

fn list_matches(
    cx: &Context<'_>,
    model: &Model,
    list: &PrefixList,
    filter: &Filter,
) -> Result<bool, ApiError> {
    if let Some(m) = tag_filter(filter, model.tags.get(list.id.as_str())) {
        return Ok(m);
    }
    Ok(match filter.name.as_str() {
        "prefix-list-id" => filter.matches(list.id.as_str()),
        "prefix-list-name" => filter.matches(&list.name),
        "owner-id" => filter.matches(cx.account_id()),
        name => return Err(unknown_filter(name)),
    })
}

pub(super) fn describe(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let ids = p.list("PrefixListId")?;
    check_paging(p, !ids.is_empty())?;
    let filters = p.filters()?;
    cx.read(|model| -> Result<(), ApiError> {
        let selected = select(&model.prefix_lists, &ids, not_found, &filters, |list, f| {
            list_matches(cx, model, list, f)
        })?;
        let (page, next) = paginate(selected, p, 1, !ids.is_empty())?;
        out.list("prefixListSet", page, |x, list| {
            write_list(x, cx, model, list, None);
        });
        out.leaf_opt("nextToken", next);
        Ok(())
    })?
}

pub(super) fn get_entries(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let id = p.required("PrefixListId")?;
    let target = version(p, "TargetVersion")?;
    cx.read(|model| -> Result<(), ApiError> {
        let list = model.prefix_lists.get(id).ok_or_else(|| not_found(id))?;
        if target.is_some_and(|v| v != list.version) {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!(
                    "Version {} of prefix list {id} is not available: palisade keeps only the current version ({})",
                    target.unwrap_or_default(),
                    list.version
                ),
            ));
        }
        let (page, next) = paginate(list.cidrs.iter().collect(), p, 1, false)?;
        out.list("entrySet", page, |x, cidr| {
            let text = cidr.to_string();
            x.leaf("cidr", &text)
                .leaf_opt("description", list.descriptions.get(&text));
        });
        out.leaf_opt("nextToken", next);
        Ok(())
    })?
}

pub(super) fn modify(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let prefix_list = p.required("PrefixListId")?.to_owned();
    let remove = p
        .members("RemoveEntry")?
        .into_iter()
        .map(|m| m.required("Cidr").map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    let op = Op::ModifyManagedPrefixList {
        prefix_list: prefix_list.clone(),
        current_version: version(p, "CurrentVersion")?,
        name: p.get("PrefixListName").map(str::to_owned),
        max_entries: max_entries(p)?,
        remove,
        add: entries(p, "AddEntry")?,
    };
    cx.apply(&op)?;
    write_one(cx, &prefix_list, out, None)
}

pub(super) fn delete(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let prefix_list = p.required("PrefixListId")?.to_owned();
    // The answer describes the list as it goes, so it is written before
    // the list is gone; a refusal discards it with the rest of the body.
    write_one(cx, &prefix_list, out, Some("delete-complete"))?;
    cx.apply(&Op::DeletePrefixList { prefix_list })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_numbers_parse_with_aws_names() {
        let p = Params::parse(
            "AddEntry.2.Cidr=10.1.0.0%2F16&AddEntry.1.Cidr=10.0.0.0%2F16&AddEntry.1.Description=a\
             &MaxEntries=10&CurrentVersion=3",
        )
        .unwrap();
        let e = entries(&p, "AddEntry").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].cidr.as_str(), e[0].description.as_str()),
            ("10.0.0.0/16", "a")
        );
        assert_eq!(
            (e[1].cidr.as_str(), e[1].description.as_str()),
            ("10.1.0.0/16", "")
        );
        assert_eq!(max_entries(&p).unwrap(), Some(10));
        assert_eq!(version(&p, "CurrentVersion").unwrap(), Some(3));
        let bad = Params::parse("MaxEntries=-1&CurrentVersion=x&AddEntry.1.Description=d").unwrap();
        assert_eq!(max_entries(&bad).unwrap_err().code, "InvalidParameterValue");
        assert_eq!(
            version(&bad, "CurrentVersion").unwrap_err().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            entries(&bad, "AddEntry").unwrap_err().code,
            "MissingParameter"
        );
    }
}

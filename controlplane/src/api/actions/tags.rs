//! Tag actions: CreateTags, DeleteTags, DescribeTags.
//!
//! Keys starting with `palisade:` are palisade's (a network interface's
//! port binding, see `network_interface.rs`): DescribeTags reports them,
//! CreateTags and DeleteTags refuse them, as AWS does for `aws:`.

use std::collections::BTreeMap;

use super::network_interface::{RESERVED_PREFIX, eni_tags};
use super::{check_tag, paginate};
use crate::api::{Context, Filter, Params, Xml};
use crate::model::Ec2ErrorCode;
use crate::model::{ApiError, Model, Op, TagToDelete};

/// AWS's limit of tags per resource.
const TAGS_PER_RESOURCE: usize = 50;

/// The `resourceType` AWS reports for an id, by its prefix.
fn resource_type(id: &str) -> &'static str {
    match id.split_once('-').map_or("", |(prefix, _)| prefix) {
        "vpc" => "vpc",
        "subnet" => "subnet",
        "sg" => "security-group",
        "sgr" => "security-group-rule",
        "eni" => "network-interface",
        "acl" => "network-acl",
        "pcx" => "vpc-peering-connection",
        "pl" => "prefix-list",
        "rtb" => "route-table",
        _ => "unknown",
    }
}

fn refuse_reserved(key: &str) -> Result<(), ApiError> {
    if key.to_ascii_lowercase().starts_with(RESERVED_PREFIX) {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            format!(
                "Tag keys starting with '{RESERVED_PREFIX}' are palisade's: a network interface's binding is set when it is created"
            ),
        ));
    }
    Ok(())
}

fn resources(p: &Params) -> Result<Vec<String>, ApiError> {
    let resources: Vec<String> = p
        .list("ResourceId")?
        .into_iter()
        .map(str::to_owned)
        .collect();
    if resources.is_empty() {
        return Err(crate::api::params::missing("ResourceId"));
    }
    Ok(resources)
}

pub(super) fn create(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let resources = resources(p)?;
    let mut tags = Vec::new();
    for tag in p.members("Tag")? {
        let key = tag.required("Key")?;
        let value = tag.get("Value").unwrap_or_default();
        check_tag(key, value)?;
        refuse_reserved(key)?;
        tags.push((key.to_owned(), value.to_owned()));
    }
    if tags.is_empty() {
        return Err(crate::api::params::missing("Tag"));
    }
    let over_limit = cx.read(|model| {
        resources
            .iter()
            .find(|r| {
                let mut keys: Vec<&str> = model
                    .tags
                    .get(r.as_str())
                    .map(|t| t.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                keys.extend(tags.iter().map(|(k, _)| k.as_str()));
                keys.sort_unstable();
                keys.dedup();
                keys.len() > TAGS_PER_RESOURCE
            })
            .cloned()
    })?;
    if let Some(resource) = over_limit {
        return Err(ApiError::new(
            Ec2ErrorCode::TagLimitExceeded,
            format!("The resource {resource} would have more than {TAGS_PER_RESOURCE} tags"),
        ));
    }
    cx.apply(&Op::CreateTags { resources, tags })?;
    out.return_true();
    Ok(())
}

pub(super) fn delete(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let resources = resources(p)?;
    let mut tags = Vec::new();
    for tag in p.members("Tag")? {
        let key = tag.required("Key")?;
        refuse_reserved(key)?;
        tags.push(TagToDelete {
            key: key.to_owned(),
            value: tag.get("Value").map(str::to_owned),
        });
    }
    cx.apply(&Op::DeleteTagsMatching { resources, tags })?;
    out.return_true();
    Ok(())
}

/// Every (resource, tags) pair clients can see, by resource id.
fn all_tags(model: &Model) -> BTreeMap<&str, BTreeMap<String, String>> {
    let mut all: BTreeMap<&str, BTreeMap<String, String>> = model
        .tags
        .iter()
        .map(|(id, tags)| (id.as_str(), tags.clone()))
        .collect();
    for eni in model.enis.values() {
        all.insert(eni.id.as_str(), eni_tags(model, eni));
    }
    all
}

fn tag_matches(
    resource: &str,
    tags: &BTreeMap<String, String>,
    key: &str,
    value: &str,
    filter: &Filter,
) -> Result<bool, ApiError> {
    if let Some(wanted) = filter.name.strip_prefix("tag:") {
        return Ok(tags.get(wanted).is_some_and(|v| filter.matches(v)));
    }
    Ok(match filter.name.as_str() {
        "key" => filter.matches(key),
        "value" => filter.matches(value),
        "resource-id" => filter.matches(resource),
        "resource-type" => filter.matches(resource_type(resource)),
        name => return Err(super::unknown_filter(name)),
    })
}

pub(super) fn describe(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let filters = p.filters()?;
    cx.read(|model| -> Result<(), ApiError> {
        let all = all_tags(model);
        let mut selected = Vec::new();
        for (resource, tags) in &all {
            for (key, value) in tags {
                let mut keep = true;
                for filter in &filters {
                    if !tag_matches(resource, tags, key, value, filter)? {
                        keep = false;
                        break;
                    }
                }
                if keep {
                    selected.push((*resource, key, value));
                }
            }
        }
        let (page, next) = paginate(selected, p, 5, false)?;
        out.list("tagSet", page, |x, (resource, key, value)| {
            x.leaf("resourceId", resource)
                .leaf("resourceType", resource_type(resource))
                .leaf("key", key)
                .leaf("value", value);
        });
        out.leaf_opt("nextToken", next);
        Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types_follow_id_prefixes() {
        for (id, kind) in [
            ("vpc-0123456789abcdef0", "vpc"),
            ("subnet-0123456789abcdef0", "subnet"),
            ("sg-0123456789abcdef0", "security-group"),
            ("eni-0123456789abcdef0", "network-interface"),
            ("acl-0123456789abcdef0", "network-acl"),
            ("pcx-0123456789abcdef0", "vpc-peering-connection"),
            ("pl-0123456789abcdef0", "prefix-list"),
            ("rtb-0123456789abcdef0", "route-table"),
            ("nope", "unknown"),
        ] {
            assert_eq!(resource_type(id), kind, "{id}");
        }
    }

    #[test]
    fn palisade_keys_are_reserved_in_any_case() {
        assert_eq!(
            refuse_reserved("palisade:port").unwrap_err().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            refuse_reserved("Palisade:x").unwrap_err().code,
            "InvalidParameterValue"
        );
        assert!(refuse_reserved("palisade").is_ok());
        assert!(refuse_reserved("Name").is_ok());
    }
}

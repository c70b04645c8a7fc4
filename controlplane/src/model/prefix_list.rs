//! Managed prefix lists: one family, a maximum size that rules count
//! against their quotas, versions, and entry descriptions.

use std::collections::BTreeMap;

use palisade_policy::{IpCidr, Peer, PrefixListId};
use serde::{Deserialize, Serialize};

use super::fields::{MAX_TEXT, check_description, not_found, parse_cidr};
use super::{ApiError, Ec2ErrorCode, IdSource, Model, ObjectKind, Outcome};

/// A managed prefix list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixList {
    /// Its id.
    pub id: PrefixListId,
    /// Its name.
    pub name: String,
    /// Its blocks.
    pub cidrs: Vec<IpCidr>,
    /// What a rule naming it counts as against rule quotas.
    pub max_entries: usize,
    /// `AddressFamily` `IPv6` (else `IPv4`); every entry is of it.
    #[serde(default)]
    pub ipv6: bool,
    /// Starts at 1, one more for each change of the entries
    /// (ModifyManagedPrefixList's `CurrentVersion` is checked against it).
    #[serde(default = "first_version")]
    pub version: u64,
    /// Entry descriptions by the entry's canonical CIDR text.
    #[serde(default)]
    pub descriptions: BTreeMap<String, String>,
}

fn first_version() -> u64 {
    1
}

/// One `Entry.N` / `AddEntry.N` of a prefix list request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixListEntryRequest {
    /// `Cidr`, as sent.
    pub cidr: String,
    /// `Description`.
    pub description: String,
}

/// The largest `MaxEntries` AWS allows for a customer-managed list.
pub const PREFIX_LIST_MAX_ENTRIES: usize = 1000;

fn check_prefix_list_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().count() > MAX_TEXT {
        return Err(ApiError::invalid_value(
            "The prefix list name must be 1 to 255 characters long",
        ));
    }
    if name.to_ascii_lowercase().starts_with("com.amazonaws") {
        return Err(ApiError::invalid_value(
            "Prefix list names starting with 'com.amazonaws' are reserved",
        ));
    }
    Ok(())
}

fn check_max_entries(max: usize) -> Result<(), ApiError> {
    if (1..=PREFIX_LIST_MAX_ENTRIES).contains(&max) {
        Ok(())
    } else {
        Err(ApiError::invalid_value(format!(
            "Value ({max}) for parameter MaxEntries is invalid. Expecting a value between 1 and {PREFIX_LIST_MAX_ENTRIES}."
        )))
    }
}

fn too_many_entries(max: usize) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::PrefixListMaxEntriesExceeded,
        format!("The prefix list would have more than its maximum of {max} entries"),
    )
}

/// A prefix list entry's block, of the list's family.
fn entry_cidr(text: &str, ipv6: bool) -> Result<IpCidr, ApiError> {
    let cidr = parse_cidr(text)?;
    if cidr.is_v4() == ipv6 {
        return Err(ApiError::invalid_value(format!(
            "The CIDR {text} does not match the prefix list's address family ({})",
            if ipv6 { "IPv6" } else { "IPv4" }
        )));
    }
    Ok(cidr)
}

impl Model {
    pub(super) fn prefix_list(&self, id: &str) -> Result<&PrefixList, ApiError> {
        self.prefix_lists
            .get(id)
            .ok_or_else(|| not_found(Ec2ErrorCode::InvalidPrefixListIdNotFound, "prefix list", id))
    }

    fn prefix_cidrs(texts: &[String], max: usize) -> Result<Vec<IpCidr>, ApiError> {
        let mut cidrs: Vec<IpCidr> = Vec::new();
        for text in texts {
            let cidr = parse_cidr(text)?;
            if !cidrs.contains(&cidr) {
                cidrs.push(cidr);
            }
        }
        if cidrs.len() > max {
            return Err(ApiError::new(
                Ec2ErrorCode::PrefixListMaxEntriesExceeded,
                format!("The prefix list has more than its maximum of {max} entries"),
            ));
        }
        Ok(cidrs)
    }

    /// The first CreateManagedPrefixList op (kept for journals): blocks without descriptions.
    pub(super) fn create_prefix_list(
        &mut self,
        name: &str,
        max_entries: usize,
        cidrs: &[String],
        ids: &mut dyn IdSource,
    ) -> Result<Outcome, ApiError> {
        let cidrs = Self::prefix_cidrs(cidrs, max_entries)?;
        let ipv6 = cidrs.first().is_some_and(|c| !c.is_v4());
        let id = PrefixListId(ids.fresh_id(ObjectKind::PrefixList));
        self.prefix_lists.insert(
            id.0.clone(),
            PrefixList {
                id: id.clone(),
                name: name.to_owned(),
                cidrs,
                max_entries,
                ipv6,
                version: 1,
                descriptions: BTreeMap::new(),
            },
        );
        Ok(Outcome::Created(vec![id.0]))
    }

    /// The first ModifyManagedPrefixList op (kept for journals): blocks added and removed.
    pub(super) fn modify_prefix_list(
        &mut self,
        prefix_list: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<Outcome, ApiError> {
        let list = self.prefix_list(prefix_list)?;
        let remove = Self::prefix_cidrs(remove, usize::MAX)?;
        let mut cidrs: Vec<String> = list
            .cidrs
            .iter()
            .filter(|c| !remove.contains(c))
            .map(ToString::to_string)
            .collect();
        cidrs.extend(add.iter().cloned());
        let cidrs = Self::prefix_cidrs(&cidrs, list.max_entries)?;
        if let Some(list) = self.prefix_lists.get_mut(prefix_list) {
            list.cidrs = cidrs;
            list.version += 1;
        }
        Ok(Outcome::Done)
    }

    pub(super) fn create_managed_prefix_list(
        &mut self,
        name: &str,
        max_entries: usize,
        ipv6: bool,
        entries: &[PrefixListEntryRequest],
        ids: &mut dyn IdSource,
    ) -> Result<Outcome, ApiError> {
        check_prefix_list_name(name)?;
        check_max_entries(max_entries)?;
        let mut cidrs: Vec<IpCidr> = Vec::new();
        let mut descriptions = BTreeMap::new();
        for entry in entries {
            let cidr = entry_cidr(&entry.cidr, ipv6)?;
            check_description(&entry.description, "prefix list entry")?;
            if cidrs.contains(&cidr) {
                return Err(ApiError::invalid_value(format!(
                    "The CIDR {cidr} is given more than once"
                )));
            }
            cidrs.push(cidr);
            if !entry.description.is_empty() {
                descriptions.insert(cidr.to_string(), entry.description.clone());
            }
        }
        if cidrs.len() > max_entries {
            return Err(too_many_entries(max_entries));
        }
        let id = PrefixListId(ids.fresh_id(ObjectKind::PrefixList));
        self.prefix_lists.insert(
            id.0.clone(),
            PrefixList {
                id: id.clone(),
                name: name.to_owned(),
                cidrs,
                max_entries,
                ipv6,
                version: 1,
                descriptions,
            },
        );
        Ok(Outcome::Created(vec![id.0]))
    }

    pub(super) fn modify_managed_prefix_list(
        &mut self,
        id: &str,
        current_version: Option<u64>,
        name: Option<&str>,
        max_entries: Option<usize>,
        add: &[PrefixListEntryRequest],
        remove: &[String],
    ) -> Result<Outcome, ApiError> {
        let list = self.prefix_list(id)?;
        if current_version.is_some_and(|v| v != list.version) {
            return Err(ApiError::new(
                Ec2ErrorCode::PrefixListVersionMismatch,
                "The prefix list has the incorrect version number.",
            ));
        }
        let changes_entries = !add.is_empty() || !remove.is_empty();
        if max_entries.is_some() && changes_entries {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterCombination,
                "You cannot modify the entries and the maximum number of entries of a prefix list at the same time.",
            ));
        }
        if let Some(name) = name {
            check_prefix_list_name(name)?;
        }
        let mut cidrs = list.cidrs.clone();
        let mut descriptions = list.descriptions.clone();
        for text in remove {
            let cidr = parse_cidr(text)?;
            let Some(at) = cidrs.iter().position(|c| *c == cidr) else {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidPrefixListModification,
                    format!("The prefix list entry {cidr} does not exist."),
                ));
            };
            cidrs.remove(at);
            descriptions.remove(&cidr.to_string());
        }
        for entry in add {
            let cidr = entry_cidr(&entry.cidr, list.ipv6)?;
            check_description(&entry.description, "prefix list entry")?;
            // Adding a block the list has only updates its description.
            if !cidrs.contains(&cidr) {
                cidrs.push(cidr);
            }
            if entry.description.is_empty() {
                descriptions.remove(&cidr.to_string());
            } else {
                descriptions.insert(cidr.to_string(), entry.description.clone());
            }
        }
        let max = max_entries.unwrap_or(list.max_entries);
        check_max_entries(max)?;
        if cidrs.len() > max {
            return Err(too_many_entries(max));
        }
        if max_entries.is_some() {
            self.check_groups_with_list_size(id, max)?;
        }
        if let Some(list) = self.prefix_lists.get_mut(id) {
            if changes_entries {
                list.cidrs = cidrs;
                list.descriptions = descriptions;
                list.version += 1;
            }
            if let Some(name) = name {
                name.clone_into(&mut list.name);
            }
            list.max_entries = max;
        }
        Ok(Outcome::Done)
    }

    /// DeleteManagedPrefixList: refused while a rule names it.
    pub(super) fn delete_prefix_list(&mut self, prefix_list: &str) -> Result<Outcome, ApiError> {
        self.prefix_list(prefix_list)?;
        let referenced = self.security_groups.values().any(|g| {
            g.ingress
                .iter()
                .chain(&g.egress)
                .any(|r| matches!(&r.peer, Peer::PrefixList(p) if p.as_str() == prefix_list))
        });
        if referenced {
            return Err(ApiError::new(
                Ec2ErrorCode::DependencyViolation,
                format!("prefix list {prefix_list} is referenced by a security group rule"),
            ));
        }
        self.prefix_lists.remove(prefix_list);
        self.tags.remove(prefix_list);
        Ok(Outcome::Done)
    }

    /// A rule naming a prefix list counts as its maximum size: a larger
    /// maximum must keep every group that names the list within its rule
    /// quota.
    fn check_groups_with_list_size(&self, id: &str, max: usize) -> Result<(), ApiError> {
        for group in self.security_groups.values() {
            for rules in [&group.ingress, &group.egress] {
                if !rules
                    .iter()
                    .any(|r| matches!(&r.peer, Peer::PrefixList(p) if p.as_str() == id))
                {
                    continue;
                }
                let count = Self::rule_count(rules, |rule| match &rule.peer {
                    Peer::PrefixList(p) if p.as_str() == id => (max, false),
                    _ => self.rule_weight(rule),
                });
                if count > self.quotas.rules_per_group {
                    return Err(ApiError::new(
                        Ec2ErrorCode::RulesPerSecurityGroupLimitExceeded,
                        format!(
                            "Security group {} references the prefix list: with {max} entries it would exceed the rules-per-group limit",
                            group.id
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

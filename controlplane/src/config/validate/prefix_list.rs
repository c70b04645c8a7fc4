//! `[[prefix_list]]`: one family, within its `max_entries`.

use std::collections::{BTreeMap, BTreeSet};

use palisade_policy::{IpCidr, PrefixListId};

use super::fields::cidr_message;
use super::{Checker, PrefixInfo};
use crate::config::PrefixList;
use crate::config::raw;
use crate::model::ids::ObjectKind;

impl Checker {
    pub(super) fn prefix_lists(&mut self, raws: &[raw::RawPrefixList]) -> Vec<PrefixList> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("prefix_list[{index}]");
            if !self.name(&format!("{key}.name"), &raw.name)
                || self
                    .unique(&mut seen, &key, &raw.name, "prefix list")
                    .is_none()
            {
                continue;
            }
            let mut cidrs = Vec::new();
            let mut families = BTreeSet::new();
            for (i, text) in raw.cidrs.iter().enumerate() {
                let entry_key = format!("{key}.cidrs[{i}]");
                match text.parse::<IpCidr>() {
                    Ok(c) => {
                        if cidrs.contains(&c) {
                            self.report(entry_key, format!("{c} is listed twice"));
                        } else {
                            families.insert(c.is_v4());
                            cidrs.push(c);
                        }
                    }
                    Err(error) => self.report(entry_key, cidr_message(text, &error)),
                }
            }
            if families.len() > 1 {
                self.report(
                    format!("{key}.cidrs"),
                    "mixes IPv4 and IPv6 blocks; a prefix list has one address family",
                );
            }
            let max_entries = match usize::try_from(raw.max_entries) {
                Ok(n) if n >= 1 => n,
                _ => {
                    self.report(
                        format!("{key}.max_entries"),
                        format!("must be at least 1, got {}", raw.max_entries),
                    );
                    continue;
                }
            };
            if cidrs.len() > max_entries {
                self.report(
                    format!("{key}.max_entries"),
                    format!(
                        "the list has {} entries, more than its max_entries {max_entries}",
                        cidrs.len()
                    ),
                );
            }
            let id = PrefixListId(self.assign(ObjectKind::PrefixList, &raw.name));
            self.prefix_lists.insert(
                raw.name.clone(),
                PrefixInfo {
                    id: id.clone(),
                    is_v4: !families.contains(&false),
                    max_entries,
                },
            );
            out.push(PrefixList {
                name: raw.name.clone(),
                id,
                cidrs,
                max_entries,
            });
        }
        out
    }
}

//! What differs between two models, object by object: how the
//! configuration file and a non-empty store disagree at start-up, said
//! instead of quietly running the store's world.
//!
//! Objects are matched by id. A file's ids are derived from its names, and
//! a store seeded from the file keeps them, so an object the file still
//! describes and nobody changed through the API compares equal.

use core::fmt;
use std::collections::BTreeMap;

use super::Model;

/// Most objects listed per side; the rest are counted.
const MAX_LISTED: usize = 20;

/// The objects of two models that differ: [`Model::diff`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelDiff {
    /// Objects only the first model (the file) has, as `kind id`.
    pub only_in_first: Vec<String>,
    /// Objects only the second model (the store) has.
    pub only_in_second: Vec<String>,
    /// Objects both have, with different contents.
    pub differing: Vec<String>,
}

impl ModelDiff {
    /// Whether the two models hold the same objects.
    pub fn is_empty(&self) -> bool {
        self.only_in_first.is_empty() && self.only_in_second.is_empty() && self.differing.is_empty()
    }

    /// Compares one kind of object, keyed by id.
    fn compare<T: PartialEq>(
        &mut self,
        kind: &str,
        first: &BTreeMap<String, T>,
        second: &BTreeMap<String, T>,
        label: impl Fn(&T) -> String,
    ) {
        for (id, a) in first {
            match second.get(id) {
                None => self.only_in_first.push(format!("{kind} {id}{}", label(a))),
                Some(b) if a != b => self.differing.push(format!("{kind} {id}{}", label(a))),
                Some(_) => {}
            }
        }
        for (id, b) in second {
            if !first.contains_key(id) {
                self.only_in_second.push(format!("{kind} {id}{}", label(b)));
            }
        }
    }
}

/// No label beyond the id.
fn unlabelled<T>(_: &T) -> String {
    String::new()
}

impl Model {
    /// The objects in which `self` (typically the configuration file's
    /// model) and `other` (the store's) differ. Quotas, the router MAC and
    /// creation order are settings, not objects, and are not compared.
    pub fn diff(&self, other: &Model) -> ModelDiff {
        let mut diff = ModelDiff::default();
        diff.compare("VPC", &self.vpcs, &other.vpcs, |v| format!(" ({})", v.cidr));
        diff.compare("subnet", &self.subnets, &other.subnets, |s| {
            format!(" ({})", s.cidr)
        });
        diff.compare(
            "security group",
            &self.security_groups,
            &other.security_groups,
            |g| format!(" ({:?})", g.name),
        );
        diff.compare("network interface", &self.enis, &other.enis, |e| {
            format!(" (port {})", e.port)
        });
        diff.compare(
            "network ACL",
            &self.network_acls,
            &other.network_acls,
            unlabelled,
        );
        diff.compare("peering", &self.peerings, &other.peerings, unlabelled);
        diff.compare(
            "prefix list",
            &self.prefix_lists,
            &other.prefix_lists,
            |p| format!(" ({:?})", p.name),
        );
        diff.compare("tags of", &self.tags, &other.tags, unlabelled);
        diff
    }
}

/// One line per object, grouped by side, at most `MAX_LISTED` a side.
impl fmt::Display for ModelDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no object differs");
        }
        let sides = [
            ("only in the file", &self.only_in_first),
            ("only in the store", &self.only_in_second),
            ("differing", &self.differing),
        ];
        let mut first_line = true;
        for (title, objects) in sides {
            if objects.is_empty() {
                continue;
            }
            if !first_line {
                writeln!(f)?;
            }
            first_line = false;
            write!(f, "  {title} ({}):", objects.len())?;
            for object in objects.iter().take(MAX_LISTED) {
                write!(f, "\n    {object}")?;
            }
            if objects.len() > MAX_LISTED {
                write!(f, "\n    … and {} more", objects.len() - MAX_LISTED)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::model::tests::CountingIds;
    use crate::model::{Model, Op, Outcome};

    #[test]
    fn a_store_seeded_from_the_file_matches_and_api_changes_are_named() {
        let file = Model::from_config(&Config::demo());
        let mut store = file.clone();
        assert!(file.diff(&store).is_empty());
        assert_eq!(file.diff(&store).to_string(), "no object differs");

        let mut ids = CountingIds::default();
        let vpc = file.vpcs.keys().next().expect("the demo has a VPC").clone();
        let Ok(Outcome::Created(created)) = store.apply(
            &Op::CreateSecurityGroup {
                vpc,
                name: "added".into(),
                description: "by the API".into(),
            },
            &mut ids,
        ) else {
            panic!("the group is created");
        };
        let eni = file
            .enis
            .keys()
            .next()
            .expect("the demo has an ENI")
            .clone();
        store
            .apply(&Op::DeleteNetworkInterface { eni: eni.clone() }, &mut ids)
            .expect("the ENI is deleted");
        let group = file
            .security_groups
            .values()
            .find(|g| !g.is_default)
            .expect("the demo declares a group")
            .id
            .0
            .clone();
        store
            .apply(
                &Op::DeleteSecurityGroup {
                    group: group.clone(),
                },
                &mut ids,
            )
            .ok();
        if let Some(g) = store.security_groups.get_mut(&group) {
            g.description = "edited".into();
        }

        let diff = file.diff(&store);
        assert_eq!(
            diff.only_in_second,
            [format!("security group {} (\"added\")", created[0])]
        );
        assert!(
            diff.only_in_first.iter().any(|o| o.contains(&eni)),
            "{diff}"
        );
        assert!(
            diff.only_in_first
                .iter()
                .chain(&diff.differing)
                .any(|o| o.contains(&group)),
            "{diff}"
        );
        let text = diff.to_string();
        assert!(text.contains("only in the file"), "{text}");
        assert!(text.contains("only in the store (1):"), "{text}");
    }
}

//! Tags: key → value per resource id, on every object the model has
//! (rules and route tables included).

use serde::{Deserialize, Serialize};

use super::{ApiError, Ec2ErrorCode, Model, Outcome};

/// One `Tag.N` of DeleteTags: the key, and the value it must have to be
/// removed (`None`: whatever it is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagToDelete {
    /// `Key`.
    pub key: String,
    /// `Value`, when given.
    pub value: Option<String>,
}

impl Model {
    /// CreateTags: every resource must exist.
    pub(super) fn create_tags(
        &mut self,
        resources: &[String],
        tags: &[(String, String)],
    ) -> Result<Outcome, ApiError> {
        self.check_taggable(resources)?;
        for resource in resources {
            let entry = self.tags.entry(resource.clone()).or_default();
            for (key, value) in tags {
                entry.insert(key.clone(), value.clone());
            }
        }
        Ok(Outcome::Done)
    }

    /// The first DeleteTags op (kept for journals): by key; it cannot fail.
    pub(super) fn delete_tags(&mut self, resources: &[String], keys: &[String]) {
        for resource in resources {
            if let Some(entry) = self.tags.get_mut(resource) {
                for key in keys {
                    entry.remove(key);
                }
                if entry.is_empty() {
                    self.tags.remove(resource);
                }
            }
        }
    }

    /// DeleteTags with AWS's full semantics: a tag with a value goes only if the value matches; no tags at all removes every tag.
    pub(super) fn delete_tags_matching(
        &mut self,
        resources: &[String],
        tags: &[TagToDelete],
    ) -> Result<Outcome, ApiError> {
        self.check_taggable(resources)?;
        for resource in resources {
            let Some(entry) = self.tags.get_mut(resource) else {
                continue;
            };
            if tags.is_empty() {
                entry.clear();
            }
            for tag in tags {
                let matches = match &tag.value {
                    None => true,
                    Some(value) => entry.get(&tag.key) == Some(value),
                };
                if matches {
                    entry.remove(&tag.key);
                }
            }
            if entry.is_empty() {
                self.tags.remove(resource);
            }
        }
        Ok(Outcome::Done)
    }

    /// Tags go only on objects that exist.
    fn check_taggable(&self, resources: &[String]) -> Result<(), ApiError> {
        for resource in resources {
            if !self.exists(resource) {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidId,
                    format!("The ID '{resource}' is not valid"),
                ));
            }
        }
        Ok(())
    }

    fn exists(&self, id: &str) -> bool {
        self.vpcs.contains_key(id)
            || self.subnets.contains_key(id)
            || self.security_groups.contains_key(id)
            || self.enis.contains_key(id)
            || self.network_acls.contains_key(id)
            || self.peerings.contains_key(id)
            || self.prefix_lists.contains_key(id)
            || self.vpc_of_route_table(id).is_some()
            || (id.starts_with("sgr-") && self.rule_exists(id))
    }

    /// Rule ids are not indexed (they live inside their group), so a
    /// lookup scans: only CreateTags on an `sgr-` id needs it.
    fn rule_exists(&self, id: &str) -> bool {
        self.security_groups.values().any(|g| {
            g.ingress
                .iter()
                .chain(&g.egress)
                .any(|r| r.id.as_str() == id)
        })
    }
}

//! The ids palisade derives instead of storing.
//!
//! [`Op`](super::Op) variants never change once written: the store's
//! journal holds them, and replaying a journal must draw the same ids and
//! reach the same model. That is why the objects AWS names but palisade
//! never creates explicitly — a VPC's main route table, its main
//! association, a subnet's first ACL association — get ids *derived* from
//! the id of the object they belong to: stable, AWS-shaped, and no existing
//! op had to draw one more id.

use super::ids::{ObjectKind, object_id};
use super::{Model, Vpc};

/// An AWS-shaped id `prefix-` + 17 hex digits, a hash of `prefix` and
/// `key` (the config's FNV-1a id scheme, so the same key always gives the
/// same id).
fn derived_id(prefix: &str, key: &str) -> String {
    let hashed = object_id(ObjectKind::Vpc, &format!("derived/{prefix}/{key}"));
    let hex = hashed.split_once('-').map_or("", |(_, hex)| hex);
    format!("{prefix}-{hex}")
}

/// The id of `vpc`'s main route table (`rtb-…`). palisade routes every
/// VPC by one table it computes (local blocks, active peerings), so the
/// table has no life of its own to draw an id for.
pub fn route_table_id(vpc: &str) -> String {
    derived_id("rtb", vpc)
}

/// The id of the association that makes [`route_table_id`] `vpc`'s main
/// table (`rtbassoc-…`).
pub fn main_route_table_association_id(vpc: &str) -> String {
    derived_id("rtbassoc", vpc)
}

/// The id of the ACL association a subnet is created with (`aclassoc-…`).
pub fn initial_network_acl_association_id(subnet: &str) -> String {
    derived_id("aclassoc", subnet)
}

/// The association id after `previous` was replaced by one to `acl`: a
/// hash chain, so each replacement yields a new id (AWS returns a new
/// `NewAssociationId` every time) while replay stays deterministic.
pub(super) fn next_network_acl_association_id(previous: &str, acl: &str) -> String {
    derived_id("aclassoc", &format!("{previous}>{acl}"))
}

impl Model {
    /// The VPC whose main route table has id `id`.
    pub fn vpc_of_route_table(&self, id: &str) -> Option<&Vpc> {
        if !id.starts_with("rtb-") {
            return None;
        }
        self.vpcs
            .values()
            .find(|v| route_table_id(v.id.as_str()) == id)
    }
}

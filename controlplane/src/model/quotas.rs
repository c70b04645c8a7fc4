//! The limits every change is checked against (SEMANTICS.md's quotas),
//! set by the configuration's `[quotas]` table and never persisted.

/// The quotas of SEMANTICS.md, adjustable in `[quotas]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Rules per group per direction, IPv4 and IPv6 counted separately
    /// (60; at most 1000).
    pub rules_per_group: usize,
    /// Groups per ENI (5; at most 16, the classifier's bitmap width).
    pub groups_per_eni: usize,
    /// Rules of all of an ENI's groups per direction and family (1000;
    /// AWS's "groups per ENI × rules per group").
    pub rules_per_eni: usize,
    /// Security groups per VPC, the default one included (2500).
    pub groups_per_vpc: usize,
    /// Network ACLs per VPC, the default one included (200).
    pub network_acls_per_vpc: usize,
    /// Entries per network ACL per direction and family (20; at most 40).
    pub rules_per_network_acl: usize,
}

impl Quotas {
    /// AWS's upper bound on `rules_per_group` and `rules_per_eni`.
    pub const MAX_RULES: usize = 1000;
    /// Upper bound on `groups_per_eni` (AWS's, and the classifier's).
    pub const MAX_GROUPS_PER_ENI: usize = 16;
    /// AWS's upper bound on `rules_per_network_acl`.
    pub const MAX_NACL_RULES: usize = 40;
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            rules_per_group: 60,
            groups_per_eni: 5,
            rules_per_eni: 1000,
            groups_per_vpc: 2500,
            network_acls_per_vpc: 200,
            rules_per_network_acl: 20,
        }
    }
}

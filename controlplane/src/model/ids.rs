//! Stable, AWS-shaped ids for objects the configuration names.
//!
//! A configuration refers to objects by name; the policy, the flow logs,
//! `explain` and (later) the EC2 API refer to them by id. The ids must look
//! like EC2's (`sg-` + 17 lowercase hex digits) so that AWS tooling accepts
//! them, and must be the same every time the same file is loaded, so that
//! a restart does not rename every object under a user's scripts. They are
//! therefore a hash of the object's kind and name, nothing else:
//!
//! `id = prefix + "-" + hex17(fnv1a_128(prefix + "\0" + key) mod 2^68)`
//!
//! where FNV-1a is the 128-bit variant (offset basis
//! `0x6c62272e07bb014262b821756295c58d`, prime `2^88 + 0x13b`) over the
//! UTF-8 bytes, and `hex17` writes the low 68 bits as 17 lowercase hex
//! digits. The key is the object's name, except for objects whose names are
//! scoped to a VPC (security groups and network ACLs: every VPC has one
//! called `default`), whose key is `vpc-name/name`, and rules, whose key is
//! `vpc-name/group-name/ingress/0` (direction and 0-based position).
//! Collisions (2^-68 per pair) are checked for and reported, never assumed
//! away.

use core::fmt;

/// The kinds of objects that get an id, with their EC2 prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// `vpc-…`
    Vpc,
    /// `subnet-…`
    Subnet,
    /// `sg-…`, keyed `vpc/name`.
    SecurityGroup,
    /// `sgr-…`, keyed `vpc/group/direction/position`.
    SecurityGroupRule,
    /// `eni-…`
    NetworkInterface,
    /// `acl-…`, keyed `vpc/name`.
    NetworkAcl,
    /// `pcx-…`
    Peering,
    /// `pl-…`
    PrefixList,
}

impl ObjectKind {
    /// Every kind, for tests and listings.
    pub const ALL: [Self; 8] = [
        Self::Vpc,
        Self::Subnet,
        Self::SecurityGroup,
        Self::SecurityGroupRule,
        Self::NetworkInterface,
        Self::NetworkAcl,
        Self::Peering,
        Self::PrefixList,
    ];

    /// The EC2 id prefix, without the dash.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Vpc => "vpc",
            Self::Subnet => "subnet",
            Self::SecurityGroup => "sg",
            Self::SecurityGroupRule => "sgr",
            Self::NetworkInterface => "eni",
            Self::NetworkAcl => "acl",
            Self::Peering => "pcx",
            Self::PrefixList => "pl",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Vpc => "VPC",
            Self::Subnet => "subnet",
            Self::SecurityGroup => "security group",
            Self::SecurityGroupRule => "security group rule",
            Self::NetworkInterface => "network interface",
            Self::NetworkAcl => "network ACL",
            Self::Peering => "peering",
            Self::PrefixList => "prefix list",
        })
    }
}

const FNV128_OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const FNV128_PRIME: u128 = (1 << 88) | 0x13b;
/// EC2's long ids carry 17 hex digits: 68 bits.
const ID_BITS: u32 = 68;

fn fnv1a_128(parts: &[&[u8]]) -> u128 {
    let mut hash = FNV128_OFFSET;
    for part in parts {
        for &byte in *part {
            hash ^= u128::from(byte);
            hash = hash.wrapping_mul(FNV128_PRIME);
        }
    }
    hash
}

/// The id of the object of `kind` with `key` (see the module docs for
/// which key each kind uses).
pub fn object_id(kind: ObjectKind, key: &str) -> String {
    let prefix = kind.prefix();
    let hash = fnv1a_128(&[prefix.as_bytes(), b"\0", key.as_bytes()]);
    let low = hash & ((1u128 << ID_BITS) - 1);
    format!("{prefix}-{low:017x}")
}

/// The key of an object whose name is scoped to a VPC.
pub(crate) fn scoped_key(vpc: &str, name: &str) -> String {
    format!("{vpc}/{name}")
}

/// The key of a security group rule.
pub(crate) fn rule_key(vpc: &str, group: &str, egress: bool, position: usize) -> String {
    let direction = if egress { "egress" } else { "ingress" };
    format!("{vpc}/{group}/{direction}/{position}")
}

/// Whether `text` has the shape of an id of `kind`: the prefix, a dash and
/// exactly 17 lowercase hex digits (`^sg-[0-9a-f]{17}$`).
pub fn is_aws_shaped(kind: ObjectKind, text: &str) -> bool {
    text.strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            hex.len() == 17
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_128_matches_published_vectors() {
        // The FNV reference test vectors (draft-eastlake-fnv): "" and "a".
        assert_eq!(fnv1a_128(&[]), FNV128_OFFSET);
        assert_eq!(
            fnv1a_128(&[b"a"]),
            0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964_u128
        );
    }

    #[test]
    fn ids_are_aws_shaped_and_depend_on_kind_and_key() {
        for kind in ObjectKind::ALL {
            let id = object_id(kind, "main");
            assert!(is_aws_shaped(kind, &id), "{id}");
            assert_eq!(id, object_id(kind, "main"), "deterministic");
            assert_ne!(id, object_id(kind, "main2"));
        }
        assert_ne!(
            object_id(ObjectKind::Vpc, "x")[4..],
            object_id(ObjectKind::Subnet, "x")[7..],
            "the kind is hashed too, not only the prefix changed"
        );
        assert!(!is_aws_shaped(
            ObjectKind::SecurityGroup,
            "sg-0123456789abcdef"
        ));
        assert!(!is_aws_shaped(
            ObjectKind::SecurityGroup,
            "sg-0123456789ABCDEF0"
        ));
        assert!(!is_aws_shaped(
            ObjectKind::SecurityGroup,
            "sgr-0123456789abcdef0"
        ));
        assert!(is_aws_shaped(
            ObjectKind::SecurityGroup,
            "sg-0123456789abcdef0"
        ));
    }
}

//! Compiled network ACLs: the stateless check at subnet boundaries.
//!
//! Step 7 of the packet path (DESIGN.md) asks the NACL of the source subnet
//! (egress) and of the destination subnet (ingress) whenever a packet leaves
//! or enters a subnet; because the answer depends only on the packet's
//! fields and the snapshot, the data plane may cache it per flow and
//! generation. An ACL holds at most 40 entries per direction (SEMANTICS.md
//! quota), so a first-match scan of entries pre-sorted by rule number, split
//! by direction and address family, is both the obvious and a fast design:
//! a handful of integer compares per entry, no allocation.

use core::net::IpAddr;

use crate::cidr::IpCidr;
use crate::classifier::port_key_range;
use crate::packet::{Direction, PacketFields};
use crate::spec::{NaclAction, NaclId, NaclSpec};

/// Highest rule number a user entry may have.
pub const MAX_NACL_RULE_NUMBER: u16 = 32766;
/// The number reported when the IPv4 catch-all `*` entry denies.
pub const CATCH_ALL_V4: u16 = 32767;
/// The number reported when the IPv6 catch-all `*` entry denies.
pub const CATCH_ALL_V6: u16 = 32768;

/// The outcome of one NACL check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NaclDecision {
    /// Whether the packet may cross this boundary.
    pub allow: bool,
    /// The deciding entry; [`CATCH_ALL_V4`] / [`CATCH_ALL_V6`] for the catch-all.
    pub rule_number: u16,
}

/// Why a NACL could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NaclError {
    /// Rule numbers must be 1..=32766.
    #[error("network ACL {nacl}: rule number {rule_number} is outside 1..=32766")]
    RuleNumberOutOfRange {
        /// The ACL.
        nacl: NaclId,
        /// The offending number.
        rule_number: u16,
    },
    /// Two entries of one direction share a number.
    #[error("network ACL {nacl}: rule number {rule_number} appears twice in one direction")]
    DuplicateRuleNumber {
        /// The ACL.
        nacl: NaclId,
        /// The repeated number.
        rule_number: u16,
    },
    /// The ports do not fit the protocol.
    #[error("network ACL {nacl}: entry {rule_number}: {reason}")]
    InvalidPorts {
        /// The ACL.
        nacl: NaclId,
        /// The entry.
        rule_number: u16,
        /// What is wrong.
        reason: &'static str,
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    rule_number: u16,
    protocol: Option<u8>,
    key_range: (u16, u16),
    /// Address range, IPv4 addresses widened to `u128`.
    addr_range: (u128, u128),
    allow: bool,
}

/// One NACL, compiled: entries per `[direction][family]`, sorted by number.
#[derive(Debug, Clone)]
pub struct CompiledNacl {
    id: NaclId,
    entries: [[Box<[Entry]>; 2]; 2],
}

impl CompiledNacl {
    /// Compiles one ACL.
    pub fn compile(spec: &NaclSpec) -> Result<Self, NaclError> {
        let mut lists: [[Vec<Entry>; 2]; 2] = Default::default();
        for e in &spec.entries {
            if e.rule_number == 0 || e.rule_number > MAX_NACL_RULE_NUMBER {
                return Err(NaclError::RuleNumberOutOfRange {
                    nacl: spec.id.clone(),
                    rule_number: e.rule_number,
                });
            }
            let key_range =
                port_key_range(e.protocol, e.ports).map_err(|reason| NaclError::InvalidPorts {
                    nacl: spec.id.clone(),
                    rule_number: e.rule_number,
                    reason,
                })?;
            let (family, addr_range) = match e.cidr {
                IpCidr::V4(c) => {
                    let (a, b) = c.range();
                    (0, (u128::from(a), u128::from(b)))
                }
                IpCidr::V6(c) => (1, c.range()),
            };
            let dir = if e.egress {
                Direction::Egress
            } else {
                Direction::Ingress
            };
            lists[dir.index()][family].push(Entry {
                rule_number: e.rule_number,
                protocol: e.protocol.number(),
                key_range,
                addr_range,
                allow: e.action == NaclAction::Allow,
            });
        }
        for dir in &mut lists {
            // Rule numbers are unique per direction across both families.
            let mut numbers: Vec<u16> = dir.iter().flatten().map(|e| e.rule_number).collect();
            numbers.sort_unstable();
            if let Some(w) = numbers.windows(2).find(|w| w[0] == w[1]) {
                return Err(NaclError::DuplicateRuleNumber {
                    nacl: spec.id.clone(),
                    rule_number: w[0],
                });
            }
            for family in dir.iter_mut() {
                family.sort_unstable_by_key(|e| e.rule_number);
            }
        }
        let [[i4, i6], [e4, e6]] = lists;
        Ok(Self {
            id: spec.id.clone(),
            entries: [
                [i4.into_boxed_slice(), i6.into_boxed_slice()],
                [e4.into_boxed_slice(), e6.into_boxed_slice()],
            ],
        })
    }

    /// Its id.
    pub fn id(&self) -> &NaclId {
        &self.id
    }

    /// First-match decision for a packet crossing the boundary in `dir`.
    #[inline]
    pub fn decide(&self, dir: Direction, pkt: &PacketFields) -> NaclDecision {
        let (family, addr, catch_all) = match dir.remote_addr(pkt) {
            IpAddr::V4(a) => (0, u128::from(u32::from(a)), CATCH_ALL_V4),
            IpAddr::V6(a) => (1, u128::from(a), CATCH_ALL_V6),
        };
        let key = pkt.port_key();
        let entries = &self.entries[dir.index()][family];
        for e in entries {
            if e.protocol.is_none_or(|p| p == pkt.protocol)
                && (e.key_range.0..=e.key_range.1).contains(&key)
                && (e.addr_range.0..=e.addr_range.1).contains(&addr)
            {
                return NaclDecision {
                    allow: e.allow,
                    rule_number: e.rule_number,
                };
            }
        }
        NaclDecision {
            allow: false,
            rule_number: catch_all,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{NaclEntry, PortSpec, Protocol};

    fn entry(
        n: u16,
        egress: bool,
        protocol: Protocol,
        cidr: &str,
        ports: PortSpec,
        action: NaclAction,
    ) -> NaclEntry {
        NaclEntry {
            rule_number: n,
            egress,
            protocol,
            cidr: cidr.parse().unwrap(),
            ports,
            action,
        }
    }

    fn acl(entries: Vec<NaclEntry>) -> Result<CompiledNacl, NaclError> {
        CompiledNacl::compile(&NaclSpec {
            id: "acl-1".into(),
            vpc: "vpc-1".into(),
            entries,
        })
    }

    fn tcp(src: &str, dst: &str, dport: u16) -> PacketFields {
        PacketFields::l4(src.parse().unwrap(), dst.parse().unwrap(), 6, 40000, dport)
    }

    #[test]
    fn lowest_number_wins_and_catch_all_denies() {
        let a = acl(vec![
            entry(
                200,
                false,
                Protocol::All,
                "0.0.0.0/0",
                PortSpec::Any,
                NaclAction::Allow,
            ),
            entry(
                100,
                false,
                Protocol::Tcp,
                "10.0.1.5/32",
                PortSpec::Range { from: 22, to: 22 },
                NaclAction::Deny,
            ),
        ])
        .unwrap();
        let d = a.decide(Direction::Ingress, &tcp("10.0.1.5", "10.0.2.9", 22));
        assert_eq!(
            d,
            NaclDecision {
                allow: false,
                rule_number: 100
            }
        );
        let d = a.decide(Direction::Ingress, &tcp("10.0.1.5", "10.0.2.9", 23));
        assert_eq!(
            d,
            NaclDecision {
                allow: true,
                rule_number: 200
            }
        );
        // No egress entry: catch-all; IPv6 packets see only IPv6 entries.
        let d = a.decide(Direction::Egress, &tcp("10.0.1.5", "10.0.2.9", 23));
        assert_eq!(
            d,
            NaclDecision {
                allow: false,
                rule_number: CATCH_ALL_V4
            }
        );
        let d = a.decide(Direction::Ingress, &tcp("fd00::1", "fd00::2", 23));
        assert_eq!(
            d,
            NaclDecision {
                allow: false,
                rule_number: CATCH_ALL_V6
            }
        );
    }

    #[test]
    fn rejects_bad_entries() {
        let any = |n| {
            entry(
                n,
                true,
                Protocol::All,
                "0.0.0.0/0",
                PortSpec::Any,
                NaclAction::Allow,
            )
        };
        assert!(matches!(
            acl(vec![any(0)]),
            Err(NaclError::RuleNumberOutOfRange { .. })
        ));
        assert!(matches!(
            acl(vec![any(32767)]),
            Err(NaclError::RuleNumberOutOfRange { .. })
        ));
        let mut v6 = any(5);
        v6.cidr = "::/0".parse().unwrap();
        assert!(matches!(
            acl(vec![any(5), v6]),
            Err(NaclError::DuplicateRuleNumber { rule_number: 5, .. })
        ));
        let bad = entry(
            1,
            true,
            Protocol::Tcp,
            "0.0.0.0/0",
            PortSpec::Any,
            NaclAction::Allow,
        );
        assert!(matches!(
            acl(vec![bad]),
            Err(NaclError::InvalidPorts { .. })
        ));
    }
}

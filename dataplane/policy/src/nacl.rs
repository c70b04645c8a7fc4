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

/// One entry, laid out for the scan: each range as its first value and
/// span, so that `x - first <= span` (wrapping) tests it in one compare;
/// the address first, which rejects the most entries (the usual ACL denies
/// a few blocks, then allows everything); IPv4 blocks as `u32`, so an entry
/// of the IPv4 list is 20 bytes, not 48.
#[derive(Debug, Clone, Copy)]
struct Entry<A> {
    addr_first: A,
    addr_span: A,
    key_first: u16,
    key_span: u16,
    /// The protocol number, or [`ANY_PROTOCOL`].
    protocol: u16,
    rule_number: u16,
    allow: bool,
}

/// [`Entry::protocol`] of an entry for all protocols.
const ANY_PROTOCOL: u16 = 0x100;

impl<A: Copy + Ord> Entry<A> {
    fn new(
        (first, last): (A, A),
        sub: fn(A, A) -> A,
        protocol: Option<u8>,
        (key_first, key_last): (u16, u16),
        rule_number: u16,
        allow: bool,
    ) -> Self {
        Self {
            addr_first: first,
            addr_span: sub(last, first),
            key_first,
            key_span: key_last.wrapping_sub(key_first),
            protocol: protocol.map_or(ANY_PROTOCOL, u16::from),
            rule_number,
            allow,
        }
    }
}

/// The first of `entries` matching, in order.
#[inline(always)]
fn first_match<A: Copy + Ord>(
    entries: &[Entry<A>],
    addr: A,
    sub: fn(A, A) -> A,
    key: u16,
    protocol: u8,
) -> Option<NaclDecision> {
    let protocol = u16::from(protocol);
    entries
        .iter()
        .find(|e| {
            sub(addr, e.addr_first) <= e.addr_span
                && key.wrapping_sub(e.key_first) <= e.key_span
                && (e.protocol == protocol || e.protocol == ANY_PROTOCOL)
        })
        .map(|e| NaclDecision {
            allow: e.allow,
            rule_number: e.rule_number,
        })
}

/// One NACL, compiled: entries per direction and address family, sorted by
/// number.
#[derive(Debug, Clone)]
pub struct CompiledNacl {
    id: NaclId,
    v4: [Box<[Entry<u32>]>; 2],
    v6: [Box<[Entry<u128>]>; 2],
}

impl CompiledNacl {
    /// Compiles one ACL.
    pub fn compile(spec: &NaclSpec) -> Result<Self, NaclError> {
        let mut v4: [Vec<Entry<u32>>; 2] = Default::default();
        let mut v6: [Vec<Entry<u128>>; 2] = Default::default();
        let mut numbers: [Vec<u16>; 2] = Default::default();
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
            let dir = if e.egress {
                Direction::Egress
            } else {
                Direction::Ingress
            }
            .index();
            let (protocol, allow) = (e.protocol.number(), e.action == NaclAction::Allow);
            match e.cidr {
                IpCidr::V4(c) => v4[dir].push(Entry::new(
                    c.range(),
                    u32::wrapping_sub,
                    protocol,
                    key_range,
                    e.rule_number,
                    allow,
                )),
                IpCidr::V6(c) => v6[dir].push(Entry::new(
                    c.range(),
                    u128::wrapping_sub,
                    protocol,
                    key_range,
                    e.rule_number,
                    allow,
                )),
            }
            numbers[dir].push(e.rule_number);
        }
        for numbers in &mut numbers {
            // Rule numbers are unique per direction across both families.
            numbers.sort_unstable();
            if let Some(w) = numbers.windows(2).find(|w| w[0] == w[1]) {
                return Err(NaclError::DuplicateRuleNumber {
                    nacl: spec.id.clone(),
                    rule_number: w[0],
                });
            }
        }
        for list in &mut v4 {
            list.sort_unstable_by_key(|e| e.rule_number);
        }
        for list in &mut v6 {
            list.sort_unstable_by_key(|e| e.rule_number);
        }
        Ok(Self {
            id: spec.id.clone(),
            v4: v4.map(Vec::into_boxed_slice),
            v6: v6.map(Vec::into_boxed_slice),
        })
    }

    /// Its id.
    pub fn id(&self) -> &NaclId {
        &self.id
    }

    /// First-match decision for a packet crossing the boundary in `dir`.
    #[inline]
    pub fn decide(&self, dir: Direction, pkt: &PacketFields) -> NaclDecision {
        let key = pkt.port_key();
        let (found, catch_all) = match dir.remote_addr(pkt) {
            IpAddr::V4(a) => {
                let entries = self.v4.get(dir.index()).map_or(&[][..], |l| &**l);
                let found = first_match(entries, a.into(), u32::wrapping_sub, key, pkt.protocol);
                (found, CATCH_ALL_V4)
            }
            IpAddr::V6(a) => {
                let entries = self.v6.get(dir.index()).map_or(&[][..], |l| &**l);
                let found = first_match(entries, a.into(), u128::wrapping_sub, key, pkt.protocol);
                (found, CATCH_ALL_V6)
            }
        };
        found.unwrap_or(NaclDecision {
            allow: false,
            rule_number: catch_all,
        })
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

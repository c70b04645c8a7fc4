//! The compiled security-group classifier of one SG set in one direction.
//!
//! This is what step 7 of the packet path (DESIGN.md) runs for the first
//! packet of every flow: egress on the sender's SG set, ingress on the
//! receiver's. Its answer is a bitmap of the groups of the set that allow
//! the packet.
//!
//! # Design: bit-vector intersection (Lakshman & Stiliadis)
//!
//! Every rule of every group of the set gets one bit, ordered by (group,
//! rule), so group *i* owns a contiguous run of bits. Each packet field is
//! looked up in its own table, which maps the field's value to the bit vector
//! of rules whose condition on that field holds:
//!
//! * protocol: a 256-entry byte table to an equivalence class, then a row;
//! * port key ([`PacketFields::port_key`]: dst port, or ICMP type/code): the
//!   elementary intervals of all rule port ranges, binary searched;
//! * remote address: the elementary intervals of all rule CIDRs (and prefix
//!   list blocks), one table per family, binary searched;
//! * group peers: one row per referenced group, ORed in for each group the
//!   remote ENI is a member of.
//!
//! The packet matches rule *r* iff bit *r* is set in
//! `protocol & port & (address | peers)`. That AND is streamed word by word,
//! and as soon as a group has one matching rule the rest of its bits are
//! skipped; the lowest matching bit is the rule reported for logs. For 1,000
//! rules that is 16 words and two binary searches of ~11 steps: no
//! allocation, no branch per rule, and cost grows with the number of words,
//! not with the rule count times the field count.
//!
//! Tables are built in O(boundaries × words) by a sweep over sorted range
//! endpoints, and adjacent identical rows are merged.

use core::net::IpAddr;

use crate::packet::{Direction, PacketFields};
use crate::snapshot::{RuleRef, SgIdx};
use crate::spec::{PortKind, PortSpec, Protocol};

/// Most groups one ENI may have attached (SEMANTICS.md quota maximum); the
/// bitmap of a [`SgMatch`] is a `u32` with one bit per group.
pub const MAX_GROUPS_PER_ENI: usize = 16;

/// The answer of one classification: which groups of the set allow the
/// packet, which rule to name in logs, and whether the side is untracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SgMatch {
    /// Bit *i* set ⇔ the *i*-th group of the set has a rule allowing the
    /// packet. Allowed ⇔ non-zero.
    pub groups: u32,
    /// The first matching rule (rule order) of the lowest allowing group.
    pub rule: Option<RuleRef>,
    /// This side of the flow need not be tracked (SEMANTICS.md "Untracked
    /// flows"): TCP/UDP, some allowing rule's peer is `0.0.0.0/0` (`::/0` for
    /// IPv6) and the set's rules in the other direction allow all ports of the
    /// protocol to/from that same block. A flow is untracked only if every ENI
    /// side it crosses reports `untracked`; ICMP never does.
    pub untracked: bool,
}

impl SgMatch {
    /// Whether some group allows the packet.
    pub fn allowed(&self) -> bool {
        self.groups != 0
    }
}

/// Per-rule data the classifier needs after the bit intersection.
#[derive(Debug, Clone, Copy)]
struct RuleMeta {
    /// Position of the rule's group in the set (the bit of the bitmap).
    group_pos: u8,
    /// Which rule to report.
    rule: RuleRef,
}

/// What a resolved rule accepts as the remote end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemoteMatch {
    /// An inclusive IPv4 range (one CIDR).
    V4(u32, u32),
    /// An inclusive IPv6 range (one CIDR).
    V6(u128, u128),
    /// The blocks of the prefix list at this index of the snapshot's table.
    PrefixList(usize),
    /// Members of a live group.
    Group(SgIdx),
    /// A stale group reference: nothing.
    Nothing,
}

/// A rule, resolved against the spec, ready to be placed in the tables.
/// Plain `Copy` data so that resolving 150,000 rules allocates nothing per rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResolvedRule {
    /// Which rule of which group.
    pub rule: RuleRef,
    /// `None` for all protocols.
    pub protocol: Option<u8>,
    /// Inclusive range of [`PacketFields::port_key`] values it accepts.
    pub key_range: (u16, u16),
    /// The remote ends it accepts.
    pub remote: RemoteMatch,
}

impl ResolvedRule {
    /// Its peer is literally `0.0.0.0/0` (a prefix list holding it does not count).
    fn any_v4(&self) -> bool {
        self.remote == RemoteMatch::V4(0, u32::MAX)
    }

    /// Its peer is literally `::/0`.
    fn any_v6(&self) -> bool {
        self.remote == RemoteMatch::V6(0, u128::MAX)
    }
}

/// The blocks of one prefix list as integer ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PrefixRanges {
    /// IPv4 blocks.
    pub v4: Vec<(u32, u32)>,
    /// IPv6 blocks.
    pub v6: Vec<(u128, u128)>,
}

/// Computes the accepted [`PacketFields::port_key`] range of a rule or NACL
/// entry, or why its ports are invalid for its protocol.
pub(crate) fn port_key_range(
    protocol: Protocol,
    ports: PortSpec,
) -> Result<(u16, u16), &'static str> {
    match (protocol.port_kind(), ports) {
        (PortKind::Ignored, _) | (PortKind::IcmpTypeCode, PortSpec::Any) => Ok((0, u16::MAX)),
        (PortKind::Ports, PortSpec::Range { from, to }) if from <= to => Ok((from, to)),
        (PortKind::Ports, PortSpec::Range { .. }) => Err("port range has from > to"),
        (PortKind::Ports, _) => Err("tcp and udp need a port range"),
        (PortKind::IcmpTypeCode, PortSpec::Icmp { icmp_type, code }) => match (icmp_type, code) {
            (None, None) => Ok((0, u16::MAX)),
            (None, Some(_)) => Err("an icmp type of -1 requires a code of -1"),
            (Some(t), None) => Ok((u16::from(t) << 8, u16::from(t) << 8 | 0xff)),
            (Some(t), Some(c)) => {
                let key = u16::from(t) << 8 | u16::from(c);
                Ok((key, key))
            }
        },
        (PortKind::IcmpTypeCode, PortSpec::Range { .. }) => {
            Err("icmp and icmpv6 take a type and code, not a port range")
        }
    }
}

/// The "other direction allows all response traffic" half of the untracked
/// rule, precomputed per (protocol, family): index `[tcp=0|udp=1][v4=0|v6=1]`.
pub(crate) type ReverseOpen = [[bool; 2]; 2];

/// Computes [`ReverseOpen`] from the rules of the other direction.
pub(crate) fn reverse_open(rules: &[ResolvedRule]) -> ReverseOpen {
    let mut open = [[false; 2]; 2];
    for rule in rules {
        if rule.key_range != (0, u16::MAX) {
            continue;
        }
        for (p, proto) in [Protocol::TCP, Protocol::UDP].into_iter().enumerate() {
            if rule.protocol.is_none_or(|n| n == proto) {
                open[p][0] |= rule.any_v4();
                open[p][1] |= rule.any_v6();
            }
        }
    }
    open
}

/// A sorted table of interval start points and one row of rule bits per
/// interval.
#[derive(Debug, Clone, Default)]
struct IntervalTable<K> {
    /// `starts[0]` is the smallest key; interval `i` is `starts[i]..starts[i+1]`.
    starts: Box<[K]>,
    /// `starts.len() * words` words.
    rows: Box<[u64]>,
}

/// The integer keys interval tables are built over.
trait IntervalKey: Copy + Ord + Default {
    /// The next key, `None` past the end of the space.
    fn succ(self) -> Option<Self>;
}

impl IntervalKey for u16 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}
impl IntervalKey for u32 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}
impl IntervalKey for u128 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl<K: IntervalKey> IntervalTable<K> {
    /// Builds the table from `(rule bit, first, last)` ranges. One rule may
    /// give several ranges, even overlapping ones (a prefix list), so
    /// membership is counted rather than toggled.
    fn build(ranges: &[(usize, K, K)], rule_count: usize, words: usize) -> Self {
        // Events: (position, +1 / -1, bit). Removals sort before additions at
        // one position so a rule ending and restarting there stays counted.
        let mut events: Vec<(K, bool, usize)> = Vec::with_capacity(ranges.len() * 2);
        for &(bit, first, last) in ranges {
            events.push((first, true, bit));
            if let Some(after) = last.succ() {
                events.push((after, false, bit));
            }
        }
        events.sort_unstable();

        let mut counts = vec![0u32; rule_count];
        let mut current = vec![0u64; words];
        let mut starts = vec![K::default()];
        let mut rows: Vec<u64> = vec![0; words];
        let mut i = 0;
        while i < events.len() {
            let pos = events[i].0;
            while i < events.len() && events[i].0 == pos {
                let (_, add, bit) = events[i];
                if add {
                    counts[bit] += 1;
                    if counts[bit] == 1 {
                        current[bit / 64] |= 1 << (bit % 64);
                    }
                } else {
                    counts[bit] -= 1;
                    if counts[bit] == 0 {
                        current[bit / 64] &= !(1 << (bit % 64));
                    }
                }
                i += 1;
            }
            let last_row = &rows[rows.len() - words..];
            if last_row == current.as_slice() {
                continue;
            }
            if *starts.last().unwrap_or(&K::default()) == pos {
                // Only possible for the very first interval at the minimum key.
                let len = rows.len();
                rows[len - words..].copy_from_slice(&current);
            } else {
                starts.push(pos);
                rows.extend_from_slice(&current);
            }
        }
        Self {
            starts: starts.into_boxed_slice(),
            rows: rows.into_boxed_slice(),
        }
    }

    /// The row of the interval holding `key`.
    #[inline]
    fn row(&self, key: K, words: usize) -> &[u64] {
        // starts[0] is the minimum key, so the partition point is >= 1.
        let idx = self.starts.partition_point(|&s| s <= key).saturating_sub(1);
        let at = idx * words;
        self.rows.get(at..at + words).unwrap_or(&[])
    }

    fn heap_bytes(&self) -> usize {
        size_of_val(&*self.starts) + size_of_val(&*self.rows)
    }
}

/// The compiled classifier of one SG set in one direction.
#[derive(Debug, Clone)]
pub struct SetClassifier {
    direction: Direction,
    /// Words per row: `ceil(rules / 64)`.
    words: usize,
    rules: Box<[RuleMeta]>,
    /// Group position `g` owns bits `group_start[g]..group_start[g+1]`.
    group_start: Box<[usize]>,
    /// Protocol number → row index in `proto_rows`.
    proto_class: Box<[u8; 256]>,
    proto_rows: Box<[u64]>,
    ports: IntervalTable<u16>,
    v4: IntervalTable<u32>,
    v6: IntervalTable<u128>,
    /// Referenced live peer groups, sorted, and one row each.
    peer_groups: Box<[SgIdx]>,
    peer_rows: Box<[u64]>,
    /// Rules whose peer is exactly `0.0.0.0/0` / `::/0`.
    any_v4_rows: Box<[u64]>,
    any_v6_rows: Box<[u64]>,
    reverse_open: ReverseOpen,
}

impl SetClassifier {
    /// Builds the classifier. `groups[g]` are the resolved rules of the set's
    /// `g`-th group in this direction; `reverse_open` comes from the other
    /// direction's rules of the same set.
    pub(crate) fn build(
        direction: Direction,
        groups: &[&[ResolvedRule]],
        prefix_lists: &[PrefixRanges],
        reverse_open: ReverseOpen,
    ) -> Self {
        let rule_count: usize = groups.iter().map(|g| g.len()).sum();
        let words = rule_count.div_ceil(64).max(1);
        let mut rules = Vec::with_capacity(rule_count);
        let mut group_start = Vec::with_capacity(groups.len() + 1);
        for (pos, group) in groups.iter().enumerate() {
            group_start.push(rules.len());
            for r in *group {
                rules.push((pos as u8, r));
            }
        }
        group_start.push(rules.len());

        let set_bit = |row: &mut [u64], bit: usize| row[bit / 64] |= 1 << (bit % 64);

        // Protocol classes: one per protocol number named by a rule, plus
        // one shared by every other number.
        let mut proto_class = Box::new([0u8; 256]);
        let mut named: Vec<u8> = rules.iter().filter_map(|(_, r)| r.protocol).collect();
        named.sort_unstable();
        named.dedup();
        let mut proto_rows = vec![0u64; (named.len() + 1) * words];
        for (class, &n) in named.iter().enumerate() {
            proto_class[usize::from(n)] = (class + 1) as u8;
        }
        for (bit, (_, r)) in rules.iter().enumerate() {
            match r.protocol {
                None => {
                    for class in 0..=named.len() {
                        set_bit(&mut proto_rows[class * words..(class + 1) * words], bit);
                    }
                }
                Some(n) => {
                    let class = usize::from(proto_class[usize::from(n)]);
                    set_bit(&mut proto_rows[class * words..(class + 1) * words], bit);
                }
            }
        }

        let port_ranges: Vec<_> = rules
            .iter()
            .enumerate()
            .map(|(bit, (_, r))| (bit, r.key_range.0, r.key_range.1))
            .collect();
        let mut v4_ranges = Vec::new();
        let mut v6_ranges = Vec::new();
        for (bit, (_, r)) in rules.iter().enumerate() {
            match r.remote {
                RemoteMatch::V4(a, b) => v4_ranges.push((bit, a, b)),
                RemoteMatch::V6(a, b) => v6_ranges.push((bit, a, b)),
                RemoteMatch::PrefixList(i) => {
                    if let Some(list) = prefix_lists.get(i) {
                        v4_ranges.extend(list.v4.iter().map(|&(a, b)| (bit, a, b)));
                        v6_ranges.extend(list.v6.iter().map(|&(a, b)| (bit, a, b)));
                    }
                }
                RemoteMatch::Group(_) | RemoteMatch::Nothing => {}
            }
        }

        let peer_of = |r: &ResolvedRule| match r.remote {
            RemoteMatch::Group(g) => Some(g),
            _ => None,
        };
        let mut peer_groups: Vec<SgIdx> = rules.iter().filter_map(|(_, r)| peer_of(r)).collect();
        peer_groups.sort_unstable();
        peer_groups.dedup();
        let mut peer_rows = vec![0u64; peer_groups.len() * words];
        let mut any_v4_rows = vec![0u64; words];
        let mut any_v6_rows = vec![0u64; words];
        for (bit, (_, r)) in rules.iter().enumerate() {
            if let Some(g) = peer_of(r) {
                if let Ok(i) = peer_groups.binary_search(&g) {
                    set_bit(&mut peer_rows[i * words..(i + 1) * words], bit);
                }
            }
            if r.any_v4() {
                set_bit(&mut any_v4_rows, bit);
            }
            if r.any_v6() {
                set_bit(&mut any_v6_rows, bit);
            }
        }

        Self {
            direction,
            words,
            rules: rules
                .iter()
                .map(|(g, r)| RuleMeta {
                    group_pos: *g,
                    rule: r.rule,
                })
                .collect(),
            group_start: group_start.into_boxed_slice(),
            proto_class,
            proto_rows: proto_rows.into_boxed_slice(),
            ports: IntervalTable::build(&port_ranges, rule_count, words),
            v4: IntervalTable::build(&v4_ranges, rule_count, words),
            v6: IntervalTable::build(&v6_ranges, rule_count, words),
            peer_groups: peer_groups.into_boxed_slice(),
            peer_rows: peer_rows.into_boxed_slice(),
            any_v4_rows: any_v4_rows.into_boxed_slice(),
            any_v6_rows: any_v6_rows.into_boxed_slice(),
            reverse_open,
        }
    }

    /// Which direction this classifier checks.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// How many rules (bits) it holds.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Heap memory held by its tables, for sizing reports.
    pub fn heap_bytes(&self) -> usize {
        size_of_val(&*self.rules)
            + size_of_val(&*self.group_start)
            + 256
            + size_of_val(&*self.proto_rows)
            + self.ports.heap_bytes()
            + self.v4.heap_bytes()
            + self.v6.heap_bytes()
            + size_of_val(&*self.peer_groups)
            + size_of_val(&*self.peer_rows)
            + size_of_val(&*self.any_v4_rows)
            + size_of_val(&*self.any_v6_rows)
    }

    /// Classifies one packet. `remote_groups` are the groups of the remote
    /// ENI, sorted, already cleared by the caller to empty when the remote is
    /// external or does not own the remote address. Allocation-free.
    #[inline]
    pub(crate) fn classify(&self, pkt: &PacketFields, remote_groups: &[SgIdx]) -> SgMatch {
        let words = self.words;
        let class = usize::from(self.proto_class[usize::from(pkt.protocol)]);
        let proto_row = self
            .proto_rows
            .get(class * words..(class + 1) * words)
            .unwrap_or(&[]);
        let port_row = self.ports.row(pkt.port_key(), words);
        let remote = self.direction.remote_addr(pkt);
        let (addr_row, any_row, family) = match remote {
            IpAddr::V4(a) => (self.v4.row(u32::from(a), words), &*self.any_v4_rows, 0),
            IpAddr::V6(a) => (self.v6.row(u128::from(a), words), &*self.any_v6_rows, 1),
        };

        // Rows of the live peer groups the remote ENI belongs to.
        let mut peer_rows: [&[u64]; MAX_GROUPS_PER_ENI] = [&[]; MAX_GROUPS_PER_ENI];
        let mut peer_count = 0;
        if !self.peer_groups.is_empty() {
            for g in remote_groups {
                if peer_count == MAX_GROUPS_PER_ENI {
                    break;
                }
                if let Ok(i) = self.peer_groups.binary_search(g) {
                    peer_rows[peer_count] = self
                        .peer_rows
                        .get(i * words..(i + 1) * words)
                        .unwrap_or(&[]);
                    peer_count += 1;
                }
            }
        }
        let peer_rows = &peer_rows[..peer_count];

        let mut groups = 0u32;
        let mut first: Option<usize> = None;
        let mut any_peer_hit = false;
        let mut skip_until = 0usize;
        let lanes = proto_row.iter().zip(port_row).zip(addr_row).zip(any_row);
        for (w, (((&p, &q), &a), &any)) in lanes.enumerate() {
            let mut hits = p & q;
            if hits == 0 {
                continue;
            }
            let mut addr = a;
            for row in peer_rows {
                addr |= row.get(w).copied().unwrap_or(0);
            }
            hits &= addr;
            any_peer_hit |= hits & any != 0;
            let base = w * 64;
            if skip_until > base {
                let skip = skip_until - base;
                hits &= if skip >= 64 { 0 } else { u64::MAX << skip };
            }
            while hits != 0 {
                let bit = base + hits.trailing_zeros() as usize;
                let Some(meta) = self.rules.get(bit) else {
                    break;
                };
                let pos = usize::from(meta.group_pos);
                groups |= 1 << pos;
                first.get_or_insert(bit);
                let end = self.group_start.get(pos + 1).copied().unwrap_or(usize::MAX);
                skip_until = end;
                let skip = end.saturating_sub(base);
                hits &= if skip >= 64 { 0 } else { u64::MAX << skip };
            }
        }

        let proto_index = match pkt.protocol {
            Protocol::TCP => Some(0),
            Protocol::UDP => Some(1),
            _ => None,
        };
        let untracked = any_peer_hit && proto_index.is_some_and(|p| self.reverse_open[p][family]);
        SgMatch {
            groups,
            rule: first.and_then(|bit| self.rules.get(bit)).map(|m| m.rule),
            untracked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_type_code_ranges() {
        let icmp = |t, c| PortSpec::Icmp {
            icmp_type: t,
            code: c,
        };
        assert_eq!(
            port_key_range(Protocol::Icmp, icmp(None, None)),
            Ok((0, u16::MAX))
        );
        assert_eq!(
            port_key_range(Protocol::Icmp, icmp(Some(8), None)),
            Ok((0x800, 0x8ff))
        );
        assert_eq!(
            port_key_range(Protocol::Icmp, icmp(Some(3), Some(4))),
            Ok((0x304, 0x304))
        );
        assert!(port_key_range(Protocol::Icmp, icmp(None, Some(4))).is_err());
        assert_eq!(
            port_key_range(Protocol::Icmpv6, PortSpec::Any),
            Ok((0, u16::MAX))
        );
        assert_eq!(
            port_key_range(Protocol::Number(6), PortSpec::Range { from: 5, to: 9 }),
            Ok((5, 9))
        );
        assert!(port_key_range(Protocol::Tcp, PortSpec::Any).is_err());
        assert!(port_key_range(Protocol::Udp, PortSpec::Range { from: 9, to: 5 }).is_err());
        assert_eq!(
            port_key_range(Protocol::Number(47), PortSpec::Range { from: 9, to: 9 }),
            Ok((0, u16::MAX))
        );
        assert_eq!(
            port_key_range(Protocol::All, PortSpec::Any),
            Ok((0, u16::MAX))
        );
    }

    #[test]
    fn interval_table_counts_overlapping_ranges_of_one_rule() {
        // Rule 0 covers 10..=20 twice (overlapping blocks of a prefix list)
        // and rule 1 covers 15..=u16::MAX.
        let table =
            IntervalTable::<u16>::build(&[(0, 10, 20), (0, 12, 18), (1, 15, u16::MAX)], 2, 1);
        let at = |k| table.row(k, 1)[0];
        assert_eq!(at(0), 0);
        assert_eq!(at(9), 0);
        assert_eq!(at(10), 0b01);
        assert_eq!(at(14), 0b01);
        assert_eq!(at(15), 0b11);
        assert_eq!(at(19), 0b11);
        assert_eq!(at(20), 0b11);
        assert_eq!(at(21), 0b10);
        assert_eq!(at(u16::MAX), 0b10);
    }

    #[test]
    fn interval_table_range_starting_at_zero() {
        let table = IntervalTable::<u32>::build(&[(0, 0, 5)], 1, 1);
        assert_eq!(table.row(0, 1)[0], 1);
        assert_eq!(table.row(5, 1)[0], 1);
        assert_eq!(table.row(6, 1)[0], 0);
        assert_eq!(&*table.starts, &[0, 6]);
    }
}

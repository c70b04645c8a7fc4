//! The compiled security-group classifier of one SG set in one direction.
//!
//! This is what step 7 of the packet path (DESIGN.md) runs for the first
//! packet of every flow: egress on the sender's SG set, ingress on the
//! receiver's. Its answer is a bitmap of the groups of the set that allow
//! the packet.
//!
//! # Design: bit-vector intersection (Lakshman & Stiliadis), per group, merged per set
//!
//! Every rule of a group gets one bit of a small bit vector (60 rules: one
//! `u64` word). Each packet field is looked up in its own table, which maps
//! the field's value to the bit vector of rules whose condition on that
//! field holds:
//!
//! * protocol: a 256-entry byte table to an equivalence class, then a row;
//! * port key ([`PacketFields::port_key`]: dst port, or ICMP type/code): the
//!   elementary intervals of all rule port ranges, searched in a static
//!   tree of cache-line nodes ([`search`]);
//! * remote address: the elementary intervals of all rule CIDRs (and prefix
//!   list blocks), one table per family, searched the same way;
//! * group peers: one row per referenced group, ORed in for each group the
//!   remote ENI is a member of.
//!
//! The packet matches rule *r* iff bit *r* is set in
//! `protocol & port & (address | peers)`.
//!
//! These field tables are built once per group and direction, and shared
//! by every snapshot until the group's rules change. A set's classifier is
//! the **merge** of its groups' tables: the union of their interval
//! boundaries, each set row the concatenation of the groups' rows — so
//! every group owns whole words, a group allows ⇔ one of its words is
//! non-zero, and the lowest set bit names the rule. Merging needs no sort of
//! rules and no per-rule work, which keeps a full compile and an incremental
//! one cheap; a one-group set simply shares its group's tables.
//!
//! Per packet: one protocol load, one tree search on the port boundaries
//! and one on the address boundaries (two and three dependent cache lines
//! in the bench's sets of 1,000 rules), then an AND over the set's
//! words (16 for 16 groups × 60 rules). No allocation, no branch per rule.

use core::net::IpAddr;
use std::sync::Arc;

use crate::packet::{Direction, PacketFields};
use crate::snapshot::{RuleRef, SgIdx, SgSetIdx};
use crate::spec::{PortKind, PortSpec, Protocol};

mod peer_cache;
mod search;

use peer_cache::PeerCache;
pub(crate) use peer_cache::{CacheScratch, SetMembership, SetsByGroup};
use search::{NodeKey, SearchTree};

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

/// How much of a security-group side a decision works out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SgDetail {
    /// Which groups allow, and whether the side is untracked; the
    /// [`SgMatch::rule`] is left `None`. All a new flow needs (the lowest
    /// allowing group is the one that admitted it), and finding the first
    /// matching rule costs ~80 instructions a side, two of its loads on
    /// lines nothing else reads.
    Groups,
    /// Also the rule to name, for `explain` and the tests.
    Rules,
}

impl SgMatch {
    /// Whether some group allows the packet.
    pub fn allowed(&self) -> bool {
        self.groups != 0
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResolvedRule {
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
struct IntervalTable<K: NodeKey> {
    /// `starts[0]` is the smallest key; interval `i` is `starts[i]..starts[i+1]`.
    starts: Box<[K]>,
    /// `starts.len() * words` words.
    rows: Box<[u64]>,
    /// `starts` in a search tree of cache-line nodes ([`SearchTree`]), for
    /// [`Self::row`]: ~1,000 starts in two or three dependent lines, where
    /// a binary search over them waits for ~6 misses in a row when the
    /// table is out of the near caches (a new flow's often is). `None` (search `starts`)
    /// under [`SEARCH_TREE_MIN`] starts.
    tree: Option<SearchTree<K>>,
}

/// Fewest starts for which an [`IntervalTable`] gets a search tree; smaller
/// tables (at most 4 lines of ports, 8 of IPv4 starts) are binary searched
/// in `starts`, and their build allocates nothing more. A full compile
/// builds ~24,000 tables; with trees from 64 starts up it took 889.3 M
/// instructions (a 64-byte-aligned allocation per tree is most of the
/// difference), from 128 up 878.1 M, from 256 up 869.7 M; the big sets of
/// the new-flow bench are searched by a tree either way.
const SEARCH_TREE_MIN: usize = 128;

/// Row `index` of `words` words in `rows`, empty past the end. Two compares
/// against the length: `rows.get(at..at + words)` also checks that the
/// range does not wrap, three compares and a select for each of the four
/// rows a classification takes.
#[inline(always)]
fn row_at(rows: &[u64], index: usize, words: usize) -> &[u64] {
    rows.get(index.wrapping_mul(words)..)
        .and_then(|rest| rest.get(..words))
        .unwrap_or(&[])
}

/// The integer keys interval tables are built over.
trait IntervalKey: NodeKey {
    /// A build event: the key with the event's `bit << 1 | add?`, ordered by
    /// key first. Ports and IPv4 pack both into one `u64`, which sorts
    /// faster than a pair (the sort was a tenth of a full compile).
    type Event: Copy + Ord;
    /// The next key, `None` past the end of the space.
    fn succ(self) -> Option<Self>;
    fn event(self, event: u32) -> Self::Event;
    fn split(event: Self::Event) -> (Self, u32);
}

/// Buffers reused from one group's table build to the next (a full compile
/// builds 5,000; allocating these afresh each time was most of its
/// `malloc` calls).
#[derive(Debug, Default)]
pub(crate) struct TableScratch {
    port_ranges: Vec<(usize, u16, u16)>,
    v4_ranges: Vec<(usize, u32, u32)>,
    v6_ranges: Vec<(usize, u128, u128)>,
    /// Per key type: the sorted events, then per rule how many of its
    /// ranges hold the current position, then the row at that position.
    port_build: (Vec<u64>, Vec<u32>, Vec<u64>),
    v4_build: (Vec<u64>, Vec<u32>, Vec<u64>),
    v6_build: (Vec<(u128, u32)>, Vec<u32>, Vec<u64>),
}

impl IntervalKey for u16 {
    type Event = u64;
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn event(self, event: u32) -> u64 {
        u64::from(self) << 32 | u64::from(event)
    }
    fn split(event: u64) -> (Self, u32) {
        ((event >> 32) as Self, event as u32)
    }
}
impl IntervalKey for u32 {
    type Event = u64;
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn event(self, event: u32) -> u64 {
        u64::from(self) << 32 | u64::from(event)
    }
    fn split(event: u64) -> (Self, u32) {
        ((event >> 32) as Self, event as u32)
    }
}
impl IntervalKey for u128 {
    type Event = (u128, u32);
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn event(self, event: u32) -> (u128, u32) {
        (self, event)
    }
    fn split(event: (u128, u32)) -> (Self, u32) {
        event
    }
}

impl<K: IntervalKey> IntervalTable<K> {
    /// Builds the table from `(rule bit, first, last)` ranges. One rule may
    /// give several ranges, even overlapping ones (a prefix list), so
    /// membership is counted rather than toggled.
    #[cfg(test)]
    fn build(ranges: &[(usize, K, K)], rule_count: usize, words: usize) -> Self {
        let mut buffers = Default::default();
        Self::build_with(ranges, rule_count, words, &mut buffers)
    }

    /// [`Self::build`] with the buffers of the last build, reused.
    fn build_with(
        ranges: &[(usize, K, K)],
        rule_count: usize,
        words: usize,
        (events, counts, current): &mut (Vec<K::Event>, Vec<u32>, Vec<u64>),
    ) -> Self {
        // Events (position, bit << 1 | add?). All events of one position are
        // applied before its row is emitted, so their order does not matter.
        events.clear();
        events.reserve(ranges.len() * 2);
        for &(bit, first, last) in ranges {
            events.push(first.event((bit as u32) << 1 | 1));
            if let Some(after) = last.succ() {
                events.push(after.event((bit as u32) << 1));
            }
        }
        events.sort_unstable();

        counts.clear();
        counts.resize(rule_count, 0);
        current.clear();
        current.resize(words, 0);
        // Sized for the worst case (a row per event): growing these was a
        // tenth of a full compile in reallocations.
        let mut starts = Vec::with_capacity(events.len() + 1);
        starts.push(K::default());
        let mut rows: Vec<u64> = Vec::with_capacity((events.len() + 1) * words);
        rows.resize(words, 0);
        let mut i = 0;
        while i < events.len() {
            let (pos, _) = K::split(events[i]);
            let mut flipped = false;
            while let Some((at, event)) = events.get(i).map(|&e| K::split(e)) {
                if at != pos {
                    break;
                }
                let bit = (event >> 1) as usize;
                if event & 1 == 1 {
                    counts[bit] += 1;
                    if counts[bit] == 1 {
                        current[bit / 64] |= 1 << (bit % 64);
                        flipped = true;
                    }
                } else {
                    counts[bit] -= 1;
                    if counts[bit] == 0 {
                        current[bit / 64] &= !(1 << (bit % 64));
                        flipped = true;
                    }
                }
                i += 1;
            }
            // A bit may flip on and off at one position: compare only then
            // (word by word: a slice `==` is a `memcmp` call per position).
            let previous = &rows[rows.len() - words..];
            if !flipped || previous.iter().zip(current.iter()).all(|(a, b)| a == b) {
                continue;
            }
            if pos == K::default() {
                rows.copy_from_slice(current);
            } else {
                starts.push(pos);
                rows.extend_from_slice(current);
            }
        }
        Self::new(starts, rows)
    }

    /// Merges the tables of several groups: the union of their boundaries;
    /// at each, the concatenation of every part's current row.
    ///
    /// One k-way walk does both: each part keeps a cursor on its own
    /// intervals and the next start it would move to; the set's next start
    /// is the least of those, and every part at it steps. So every set row
    /// is written once, in order, and the union is never built on its own
    /// (merging the start lists one after the other, then walking them
    /// again with the cursors, was a third of a full compile).
    fn merge<'a>(parts: &[&'a FieldTables], table: fn(&'a FieldTables) -> &'a Self) -> Self {
        let count = parts.len().min(MAX_GROUPS_PER_ENI);
        let words: usize = parts.iter().take(count).map(|p| p.words).sum();
        // Upper bounds: the union holds at most every part's starts (all
        // share the first, the least key).
        let bound = parts
            .iter()
            .take(count)
            .map(|p| table(p).starts.len())
            .sum::<usize>()
            .max(1);
        let mut starts: Vec<K> = Vec::with_capacity(bound);
        let mut rows: Vec<u64> = Vec::with_capacity(bound * words);
        let mut at = [0usize; MAX_GROUPS_PER_ENI];
        // A part's next start, `K::MAX` once it has none (then its bit in
        // `live` is clear: `K::MAX` may be a real start too).
        let mut next = [K::MAX; MAX_GROUPS_PER_ENI];
        let mut live = 0u32;
        for (i, (p, n)) in parts.iter().zip(&mut next).enumerate() {
            if let Some(&s) = table(p).starts.get(1) {
                *n = s;
                live |= 1 << i;
            }
        }
        let mut start = K::default();
        loop {
            starts.push(start);
            for (p, &at) in parts.iter().zip(&at) {
                let (t, part_words) = (table(p), p.words);
                match t.rows.get(at * part_words..(at + 1) * part_words) {
                    // Most groups have one word: a push, not a `memmove` call.
                    Some(&[word]) => rows.push(word),
                    Some(row) => rows.extend_from_slice(row),
                    // A part without intervals (never built so) matches nothing.
                    None => rows.extend(core::iter::repeat_n(0, part_words)),
                }
            }
            if live == 0 {
                break;
            }
            let least = next.iter().take(count).fold(K::MAX, |m, &n| m.min(n));
            for (i, ((p, at), n)) in parts.iter().zip(&mut at).zip(&mut next).enumerate() {
                if *n == least && live & 1 << i != 0 {
                    *at += 1;
                    if let Some(&s) = table(p).starts.get(*at + 1) {
                        *n = s;
                    } else {
                        *n = K::MAX;
                        live &= !(1 << i);
                    }
                }
            }
            start = least;
        }
        Self::new(starts, rows)
    }

    /// The table of these intervals, with its search tree.
    fn new(starts: Vec<K>, rows: Vec<u64>) -> Self {
        let tree = if starts.len() >= SEARCH_TREE_MIN {
            SearchTree::new(&starts)
        } else {
            None
        };
        Self {
            starts: starts.into_boxed_slice(),
            rows: rows.into_boxed_slice(),
            tree,
        }
    }

    /// The row of the interval holding `key`.
    #[inline(always)]
    fn row(&self, key: K, words: usize) -> &[u64] {
        // starts[0] is the minimum key, so the rank is >= 1.
        let rank = match &self.tree {
            Some(tree) => tree.rank(key),
            None => self.starts.partition_point(|&s| s <= key),
        };
        row_at(&self.rows, rank.saturating_sub(1), words)
    }

    fn heap_bytes(&self) -> usize {
        size_of_val(&*self.starts)
            + size_of_val(&*self.rows)
            + self.tree.as_ref().map_or(0, SearchTree::heap_bytes)
    }
}

/// The per-field lookup tables of one group (or, merged, of one set) in one
/// direction; see the module docs.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldTables {
    /// Words per row.
    words: usize,
    /// Protocol numbers some rule names, sorted; class `i + 1` is `named[i]`,
    /// class 0 every other number.
    named_protocols: Box<[u8]>,
    /// Protocol number → class.
    proto_class: Box<[u8]>,
    /// One row per class.
    proto_rows: Box<[u64]>,
    ports: IntervalTable<u16>,
    v4: IntervalTable<u32>,
    v6: IntervalTable<u128>,
    /// Referenced live peer groups, sorted, and one row each.
    peer_groups: Box<[SgIdx]>,
    peer_rows: Box<[u64]>,
    /// `peer_groups` as a bitmap with rank, so that finding the row of each of
    /// the remote ENI's (up to 16) groups is O(1), not a binary search.
    peer_index: PeerIndex,
    /// Rules whose peer is exactly `0.0.0.0/0` / `::/0`.
    any_v4_rows: Box<[u64]>,
    any_v6_rows: Box<[u64]>,
    /// Per family `[v4, v6]`, the first rule that allows every packet of the
    /// family (all protocols, all ports, `0.0.0.0/0` / `::/0`): such a group
    /// allows without any lookup. `None` in merged tables.
    allow_all: [Option<u32>; 2],
}

/// A rank bitmap over group indices: membership and position in O(1).
#[derive(Debug, Clone, Default)]
struct PeerIndex {
    /// The group index of bit 0 of `bits[0]`.
    base: usize,
    bits: Box<[u64]>,
    /// Set bits in `bits[..i]`.
    rank: Box<[u32]>,
}

impl PeerIndex {
    /// Indexes sorted, deduplicated groups; its footprint is the span of the
    /// referenced indices / 8 bytes (≤ 320 bytes for 2,500 groups).
    fn new(sorted: &[SgIdx]) -> Self {
        let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
            return Self::default();
        };
        let base = first.index() / 64 * 64;
        let mut bits = vec![0u64; (last.index() - base) / 64 + 1];
        for g in sorted {
            let rel = g.index() - base;
            bits[rel / 64] |= 1 << (rel % 64);
        }
        let mut rank = Vec::with_capacity(bits.len());
        let mut total = 0;
        for w in &bits {
            rank.push(total);
            total += w.count_ones();
        }
        Self {
            base,
            bits: bits.into_boxed_slice(),
            rank: rank.into_boxed_slice(),
        }
    }

    /// The position of `g` in the sorted list, if present.
    #[inline]
    fn position(&self, g: SgIdx) -> Option<usize> {
        let rel = g.index().checked_sub(self.base)?;
        let word = *self.bits.get(rel / 64)?;
        let bit = 1u64 << (rel % 64);
        if word & bit == 0 {
            return None;
        }
        Some(*self.rank.get(rel / 64)? as usize + (word & (bit - 1)).count_ones() as usize)
    }

    fn heap_bytes(&self) -> usize {
        size_of_val(&*self.bits) + size_of_val(&*self.rank)
    }
}

impl FieldTables {
    /// Builds the tables of one group's rules in one direction; bit `i` is
    /// `rules[i]`.
    #[cfg(test)]
    pub(crate) fn build(rules: &[ResolvedRule], prefix_lists: &[PrefixRanges]) -> Self {
        Self::build_with(rules, prefix_lists, &mut TableScratch::default())
    }

    /// [`Self::build`] with the buffers of the last build, reused.
    pub(crate) fn build_with(
        rules: &[ResolvedRule],
        prefix_lists: &[PrefixRanges],
        scratch: &mut TableScratch,
    ) -> Self {
        let TableScratch {
            port_ranges,
            v4_ranges,
            v6_ranges,
            port_build,
            v4_build,
            v6_build,
        } = scratch;
        let words = rules.len().div_ceil(64);
        let set_bit = |row: &mut [u64], bit: usize| row[bit / 64] |= 1 << (bit % 64);

        let mut named: Vec<u8> = rules.iter().filter_map(|r| r.protocol).collect();
        named.sort_unstable();
        named.dedup();
        let mut proto_class = vec![0u8; 256];
        for (class, &n) in named.iter().enumerate() {
            proto_class[usize::from(n)] = (class + 1) as u8;
        }
        let mut proto_rows = vec![0u64; (named.len() + 1) * words];
        for (bit, r) in rules.iter().enumerate() {
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

        port_ranges.clear();
        port_ranges.extend(
            rules
                .iter()
                .enumerate()
                .map(|(bit, r)| (bit, r.key_range.0, r.key_range.1)),
        );
        v4_ranges.clear();
        v6_ranges.clear();
        let mut peer_groups: Vec<SgIdx> = Vec::new();
        let mut any_v4_rows = vec![0u64; words];
        let mut any_v6_rows = vec![0u64; words];
        for (bit, r) in rules.iter().enumerate() {
            match r.remote {
                RemoteMatch::V4(a, b) => v4_ranges.push((bit, a, b)),
                RemoteMatch::V6(a, b) => v6_ranges.push((bit, a, b)),
                RemoteMatch::PrefixList(i) => {
                    if let Some(list) = prefix_lists.get(i) {
                        v4_ranges.extend(list.v4.iter().map(|&(a, b)| (bit, a, b)));
                        v6_ranges.extend(list.v6.iter().map(|&(a, b)| (bit, a, b)));
                    }
                }
                RemoteMatch::Group(g) => peer_groups.push(g),
                RemoteMatch::Nothing => {}
            }
            if r.any_v4() {
                set_bit(&mut any_v4_rows, bit);
            }
            if r.any_v6() {
                set_bit(&mut any_v6_rows, bit);
            }
        }
        peer_groups.sort_unstable();
        peer_groups.dedup();
        let allows_all = |r: &ResolvedRule, any: bool| {
            any && r.protocol.is_none() && r.key_range == (0, u16::MAX)
        };
        let allow_all = [
            rules.iter().position(|r| allows_all(r, r.any_v4())),
            rules.iter().position(|r| allows_all(r, r.any_v6())),
        ]
        .map(|i| i.map(|i| i as u32));
        let mut peer_rows = vec![0u64; peer_groups.len() * words];
        for (bit, r) in rules.iter().enumerate() {
            if let RemoteMatch::Group(g) = r.remote {
                if let Ok(i) = peer_groups.binary_search(&g) {
                    set_bit(&mut peer_rows[i * words..(i + 1) * words], bit);
                }
            }
        }

        Self {
            words,
            named_protocols: named.into_boxed_slice(),
            proto_class: proto_class.into_boxed_slice(),
            proto_rows: proto_rows.into_boxed_slice(),
            peer_index: PeerIndex::new(&peer_groups),
            ports: IntervalTable::build_with(port_ranges, rules.len(), words, port_build),
            v4: IntervalTable::build_with(v4_ranges, rules.len(), words, v4_build),
            v6: IntervalTable::build_with(v6_ranges, rules.len(), words, v6_build),
            peer_groups: peer_groups.into_boxed_slice(),
            peer_rows: peer_rows.into_boxed_slice(),
            any_v4_rows: any_v4_rows.into_boxed_slice(),
            any_v6_rows: any_v6_rows.into_boxed_slice(),
            allow_all,
        }
    }

    /// Concatenates several groups' tables into one set's tables, part `i`
    /// owning the words after parts `0..i`. The address table of a family
    /// not in `families` `[v4, v6]` is left empty: its packets never look here.
    /// A set has at most [`MAX_GROUPS_PER_ENI`] groups (compile rejects more),
    /// so the per-part cursors live in fixed arrays of that size.
    fn merge(parts: &[&Self], families: [bool; 2]) -> Self {
        let parts = &parts[..parts.len().min(MAX_GROUPS_PER_ENI)];
        if parts.is_empty() {
            return Self::default();
        }
        let words: usize = parts.iter().map(|p| p.words).sum();

        let mut named: Vec<u8> = parts
            .iter()
            .flat_map(|p| p.named_protocols.iter().copied())
            .collect();
        named.sort_unstable();
        named.dedup();
        let mut proto_class = vec![0u8; 256];
        for (class, &n) in named.iter().enumerate() {
            proto_class[usize::from(n)] = (class + 1) as u8;
        }
        let mut proto_rows = Vec::with_capacity((named.len() + 1) * words);
        // Class 0 ("any other protocol") is every part's class 0; a named
        // class is each part's class for that number (its 0 if it names it not).
        for protocol in core::iter::once(None).chain(named.iter().copied().map(Some)) {
            for p in parts {
                let class = protocol.map_or(0, |n| usize::from(p.proto_class[usize::from(n)]));
                proto_rows.extend_from_slice(&p.proto_rows[class * p.words..(class + 1) * p.words]);
            }
        }

        // Each part's referenced groups are sorted: one k-way walk gives
        // their union and its rows (no concatenate + sort, no binary search
        // per (group, part)).
        let bound: usize = parts.iter().map(|p| p.peer_groups.len()).sum();
        let mut peer_groups: Vec<SgIdx> = Vec::with_capacity(bound);
        let mut peer_rows = Vec::with_capacity(bound * words);
        let mut at = [0usize; MAX_GROUPS_PER_ENI];
        while let Some(g) = parts
            .iter()
            .zip(&at)
            .filter_map(|(p, &at)| p.peer_groups.get(at))
            .min()
            .copied()
        {
            peer_groups.push(g);
            for (p, at) in parts.iter().zip(&mut at) {
                if p.peer_groups.get(*at) == Some(&g) {
                    peer_rows.extend_from_slice(&p.peer_rows[*at * p.words..(*at + 1) * p.words]);
                    *at += 1;
                } else {
                    peer_rows.extend(core::iter::repeat_n(0, p.words));
                }
            }
        }

        let concat = |rows: fn(&Self) -> &[u64]| -> Box<[u64]> {
            parts.iter().flat_map(|p| rows(p).iter().copied()).collect()
        };
        let [with_v4, with_v6] = families;
        Self {
            words,
            named_protocols: named.into_boxed_slice(),
            proto_class: proto_class.into_boxed_slice(),
            proto_rows: proto_rows.into_boxed_slice(),
            peer_index: PeerIndex::new(&peer_groups),
            ports: IntervalTable::merge(parts, |p| &p.ports),
            v4: if with_v4 {
                IntervalTable::merge(parts, |p| &p.v4)
            } else {
                IntervalTable::default()
            },
            v6: if with_v6 {
                IntervalTable::merge(parts, |p| &p.v6)
            } else {
                IntervalTable::default()
            },
            peer_groups: peer_groups.into_boxed_slice(),
            peer_rows: peer_rows.into_boxed_slice(),
            any_v4_rows: concat(|p| &p.any_v4_rows),
            any_v6_rows: concat(|p| &p.any_v6_rows),
            allow_all: [None; 2],
        }
    }

    fn heap_bytes(&self) -> usize {
        size_of_val(&*self.named_protocols)
            + size_of_val(&*self.proto_class)
            + size_of_val(&*self.proto_rows)
            + self.ports.heap_bytes()
            + self.v4.heap_bytes()
            + self.v6.heap_bytes()
            + size_of_val(&*self.peer_groups)
            + size_of_val(&*self.peer_rows)
            + self.peer_index.heap_bytes()
            + size_of_val(&*self.any_v4_rows)
            + size_of_val(&*self.any_v6_rows)
    }
}

/// One group's compiled rules in one direction, as a set classifier takes it.
#[derive(Debug, Clone)]
pub(crate) struct GroupPart {
    /// Which group.
    pub group: SgIdx,
    /// Its tables (shared with every set containing the group).
    pub tables: Arc<FieldTables>,
    /// Its rules in the *other* direction allow all ports of tcp/udp to/from
    /// `0.0.0.0/0` / `::/0`.
    pub reverse_open: ReverseOpen,
}

/// The remote end of a packet as group-peer rules see it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RemotePeers<'a> {
    /// The remote ENI's SG set (the key of the pre-ORed peer rows), `None`
    /// when `groups` is empty or not a snapshot set (tests).
    pub set: Option<SgSetIdx>,
    /// The remote ENI's groups, sorted; empty when the remote is external or
    /// does not own the remote address.
    pub groups: &'a [SgIdx],
}

/// The rows one packet selects in one [`FieldTables`]: a word of each per
/// word of the tables.
struct PacketRows<'a> {
    proto: &'a [u64],
    port: &'a [u64],
    addr: &'a [u64],
    /// Rules with the open peer (`0.0.0.0/0` / `::/0`); empty when the
    /// caller does not need them (no line loaded for nothing).
    any: &'a [u64],
    /// The remote's peer row: the pre-ORed one of its set, or that of its
    /// only group the tables reference; empty if none.
    peer: &'a [u64],
    /// Otherwise (an uncached remote set meeting the tables in several
    /// groups): the tables and the remote's groups, for the cold path to
    /// find their rows again. (Carrying the positions here made the
    /// struct 100 bytes, copied on every classification.)
    more_peers: Option<(&'a FieldTables, &'a [SgIdx])>,
    words: usize,
}

impl<'a> PacketRows<'a> {
    /// `cached` is the OR of the remote's peer rows when the caller has it;
    /// otherwise each of `remote_groups` is looked up. `want_any`: fill
    /// [`Self::any`].
    #[inline(always)]
    fn new(
        t: &'a FieldTables,
        pkt: &PacketFields,
        addr: IpAddr,
        want_any: bool,
        cached: Option<&'a [u64]>,
        remote_groups: &'a [SgIdx],
    ) -> Self {
        let words = t.words;
        let class = usize::from(
            t.proto_class
                .get(usize::from(pkt.protocol))
                .copied()
                .unwrap_or(0),
        );
        let proto = row_at(&t.proto_rows, class, words);
        let port = t.ports.row(pkt.port_key(), words);
        let (addr, any) = match addr {
            IpAddr::V4(a) => (t.v4.row(u32::from(a), words), &*t.any_v4_rows),
            IpAddr::V6(a) => (t.v6.row(u128::from(a), words), &*t.any_v6_rows),
        };
        let mut peer: &[u64] = &[];
        let mut more_peers = None;
        if let Some(row) = cached {
            peer = row;
        } else if !t.peer_groups.is_empty() {
            let mut referenced = remote_groups
                .iter()
                .take(MAX_GROUPS_PER_ENI)
                .filter_map(|g| t.peer_index.position(*g));
            match (referenced.next(), referenced.next()) {
                (None, _) => {}
                (Some(i), None) => {
                    peer = row_at(&t.peer_rows, i, words);
                }
                (Some(_), Some(_)) => more_peers = Some((t, remote_groups)),
            }
        }
        Self {
            proto,
            port,
            addr,
            any: if want_any { any } else { &[] },
            peer,
            more_peers,
            words,
        }
    }

    /// Calls `hit(word, rules matched, of which with a `0.0.0.0/0` / `::/0`
    /// peer)` for every word with a match, in word order, until it returns
    /// `false`. (The open-peer part is 0 unless `want_any` was given.)
    #[inline(always)]
    fn for_each_hit(&self, mut hit: impl FnMut(usize, u64, u64) -> bool) {
        if self.more_peers.is_some() {
            self.for_each_hit_with_more_peers(hit);
            return;
        }
        let lanes = self.proto.iter().zip(self.port).zip(self.addr).enumerate();
        for (w, ((&p, &q), &a)) in lanes {
            let hits = p & q;
            if hits == 0 {
                continue;
            }
            let hits = hits & (a | self.peer.get(w).copied().unwrap_or(0));
            if hits != 0 && !hit(w, hits, hits & self.any.get(w).copied().unwrap_or(0)) {
                return;
            }
        }
    }

    /// The OR of `word_bits[w]` over the words `w` with a match, and whether
    /// some match has the open peer (always `false` unless `want_any` was
    /// given): what a set answers, bar the rule to name.
    ///
    /// Every word is computed, with no branch per word: in a set of big
    /// groups most words match (14 of 16 in the `process` bench), so the
    /// old "skip the word when protocol & port miss" test was mispredicted
    /// or taken for nothing, and its per-hit bookkeeping was half the
    /// classifier's instructions. Equal-length slices let the loop run
    /// without bounds checks, two words per SSE register.
    #[inline(always)]
    fn hit_groups(&self, word_bits: &[u64]) -> (u64, bool) {
        if self.more_peers.is_some() {
            let (mut groups, mut open) = (0, false);
            self.for_each_hit_with_more_peers(|w, _, any| {
                groups |= word_bits.get(w).copied().unwrap_or(0);
                open |= any != 0;
                true
            });
            return (groups, open);
        }
        let (proto, port, addr, peer) = self.rows_of_len(word_bits.len());
        let bits = word_bits.get(..proto.len()).unwrap_or(&[]);
        let lanes = proto.iter().zip(port).zip(addr).zip(peer).zip(bits);
        match self.any.get(..proto.len()) {
            None => {
                let mut groups = 0;
                for ((((&p, &q), &a), &r), &b) in lanes {
                    let hits = p & q & (a | r);
                    groups |= if hits != 0 { b } else { 0 };
                }
                (groups, false)
            }
            Some(any) => {
                let (mut groups, mut open) = (0, 0);
                for (((((&p, &q), &a), &r), &b), &o) in lanes.zip(any) {
                    let hits = p & q & (a | r);
                    groups |= if hits != 0 { b } else { 0 };
                    open |= hits & o;
                }
                (groups, open != 0)
            }
        }
    }

    /// The rows cut to one length (`n` when all are that long), with the
    /// address row standing in for a missing peer row: ORing it into itself
    /// changes nothing, and so one loop serves both cases with no zero row
    /// to keep. Equal lengths let the loops run without bounds checks.
    #[inline(always)]
    fn rows_of_len(&self, n: usize) -> (&'a [u64], &'a [u64], &'a [u64], &'a [u64]) {
        let n = n
            .min(self.proto.len())
            .min(self.port.len())
            .min(self.addr.len());
        let (proto, port, addr) = (&self.proto[..n], &self.port[..n], &self.addr[..n]);
        (proto, port, addr, self.peer.get(..n).unwrap_or(addr))
    }

    /// The first word with a match and the bit of its first matching rule.
    #[inline(always)]
    fn first_hit(&self) -> Option<(usize, u32)> {
        let mut first = None;
        if self.more_peers.is_some() {
            self.for_each_hit_with_more_peers(|w, hits, _| {
                first = Some((w, hits.trailing_zeros()));
                false
            });
            return first;
        }
        let (proto, port, addr, peer) = self.rows_of_len(self.words);
        let lanes = proto.iter().zip(port).zip(addr).zip(peer);
        lanes
            .map(|(((&p, &q), &a), &r)| p & q & (a | r))
            .enumerate()
            .find(|&(_, hits)| hits != 0)
            .map(|(w, hits)| (w, hits.trailing_zeros()))
    }

    /// [`Self::for_each_hit`] ORing several peer rows per word: a remote set
    /// without a cached row (over the cache's budget).
    #[inline(always)]
    fn for_each_hit_with_more_peers(&self, hit: impl FnMut(usize, u64, u64) -> bool) {
        let Some((tables, remote_groups)) = self.more_peers else {
            return;
        };
        Self::more_peers_hits(
            [self.proto, self.port, self.addr, self.peer, self.any],
            tables,
            remote_groups,
            hit,
        );
    }

    /// [`Self::for_each_hit_with_more_peers`], out of line so that the
    /// common loop does not carry its 16 row pointers. It takes the rows
    /// apart, not `&self`: with a reference to the rows, every
    /// classification stored them to the stack for this rare call (~20
    /// instructions of ~600).
    #[cold]
    #[inline(never)]
    fn more_peers_hits(
        [proto, port, addr, peer, any]: [&[u64]; 5],
        tables: &FieldTables,
        remote_groups: &[SgIdx],
        mut hit: impl FnMut(usize, u64, u64) -> bool,
    ) {
        let words = tables.words;
        let mut positions = [0u32; MAX_GROUPS_PER_ENI];
        let mut count = 0;
        for g in remote_groups.iter().take(MAX_GROUPS_PER_ENI) {
            if let Some(i) = tables.peer_index.position(*g) {
                positions[count] = i as u32;
                count += 1;
            }
        }
        let (rows, positions) = (&tables.peer_rows, positions.get(..count).unwrap_or(&[]));
        let lanes = proto.iter().zip(port).zip(addr).enumerate();
        for (w, ((&p, &q), &a)) in lanes {
            let hits = p & q;
            if hits == 0 {
                continue;
            }
            let mut remote = a | peer.get(w).copied().unwrap_or(0);
            for &at in positions {
                remote |= rows.get(at as usize * words + w).copied().unwrap_or(0);
            }
            let hits = hits & remote;
            if hits != 0 && !hit(w, hits, hits & any.get(w).copied().unwrap_or(0)) {
                return;
            }
        }
    }
}

/// The merged tables of the groups of a set that a packet of one family
/// must be looked up in (those not allowing the whole family outright).
#[derive(Debug)]
struct Lanes {
    tables: Arc<FieldTables>,
    /// Word → index within its group of the rule of the word's bit 0.
    word_rule_base: Box<[u32]>,
    /// Word → the bit in [`SgMatch::groups`] of the group owning it (its
    /// position in the set is the bit's index), ORed in branch-free for the
    /// words that match.
    word_bits: Box<[u64]>,
    /// `tables`' peer rows pre-ORed per remote set.
    peer_cache: PeerCache,
}

impl Lanes {
    /// The lanes of the parts whose position is not in `skip`.
    fn build(
        parts: &[GroupPart],
        skip: u32,
        families: [bool; 2],
        membership: SetMembership<'_>,
        scratch: &mut CacheScratch,
    ) -> Self {
        // A set has at most 16 groups: the kept ones fit in fixed arrays
        // (thousands of lanes per compile, two allocations each saved).
        let none = FieldTables::default();
        let mut kept = [(0usize, &none); MAX_GROUPS_PER_ENI];
        let mut count = 0;
        let positions = parts
            .iter()
            .enumerate()
            .filter(|(pos, _)| skip & 1 << pos == 0);
        for ((pos, part), slot) in positions.zip(&mut kept) {
            *slot = (pos, &*part.tables);
            count += 1;
        }
        let kept = &kept[..count];
        let tables = if let [(pos, _)] = kept {
            Arc::clone(&parts[*pos].tables)
        } else {
            let mut refs = [&none; MAX_GROUPS_PER_ENI];
            for ((_, t), r) in kept.iter().zip(&mut refs) {
                *r = t;
            }
            Arc::new(FieldTables::merge(&refs[..count], families))
        };
        let mut word_bits = Vec::with_capacity(tables.words);
        let mut word_rule_base = Vec::with_capacity(tables.words);
        for &(pos, part) in kept {
            word_bits.extend(core::iter::repeat_n(1u64 << pos, part.words));
            word_rule_base.extend((0..part.words).map(|w| (w * 64) as u32));
        }
        Self {
            peer_cache: PeerCache::build(&tables, membership, scratch),
            tables,
            word_bits: word_bits.into_boxed_slice(),
            word_rule_base: word_rule_base.into_boxed_slice(),
        }
    }

    fn heap_bytes(&self) -> usize {
        self.tables.heap_bytes()
            + size_of_val(&*self.word_rule_base)
            + size_of_val(&*self.word_bits)
            + self.peer_cache.heap_bytes()
    }
}

/// The compiled classifier of one SG set in one direction.
///
/// Groups that allow a whole address family (the default "all traffic to
/// `0.0.0.0/0`" egress rule, kept by most groups) answer "allowed" for its
/// packets without a lookup, so each family has its own merged tables of
/// only the *other* groups: fewer boundaries to search, fewer words to AND.
/// (Both families share one merge when the same groups allow both.)
#[derive(Debug, Clone)]
pub struct SetClassifier {
    direction: Direction,
    /// The set's groups, in bit order.
    members: Box<[SgIdx]>,
    /// Each member's own tables, to name the first matching rule of an
    /// allow-all group.
    member_tables: Box<[Arc<FieldTables>]>,
    /// Per family `[v4, v6]`: the positions of the groups allowing all of it.
    allow_all: [u32; 2],
    /// Per family: those of them whose first rule is the allow-all one.
    allow_all_first: [u32; 2],
    /// Per family: the tables of the other groups.
    lanes: [Arc<Lanes>; 2],
    /// Rule count, for reports.
    rule_count: usize,
    reverse_open: ReverseOpen,
}

impl SetClassifier {
    /// Builds the classifier of a set from its groups' parts (in bit order).
    /// `membership` is the snapshot's sets, to pre-OR peer rows per remote
    /// set; `scratch` is reused from one build to the next.
    pub(crate) fn build(
        direction: Direction,
        parts: &[GroupPart],
        rule_count: usize,
        membership: SetMembership<'_>,
        scratch: &mut CacheScratch,
    ) -> Self {
        let positions = |family: usize, first: bool| {
            parts
                .iter()
                .enumerate()
                .filter(|(_, p)| p.tables.allow_all[family].is_some_and(|rule| !first || rule == 0))
                .fold(0u32, |mask, (pos, _)| mask | 1 << pos)
        };
        let allow_all = [positions(0, false), positions(1, false)];
        let allow_all_first = [positions(0, true), positions(1, true)];
        let lanes = if allow_all[0] == allow_all[1] {
            let both = Arc::new(Lanes::build(
                parts,
                allow_all[0],
                [true, true],
                membership,
                scratch,
            ));
            [Arc::clone(&both), both]
        } else {
            [
                Arc::new(Lanes::build(
                    parts,
                    allow_all[0],
                    [true, false],
                    membership,
                    scratch,
                )),
                Arc::new(Lanes::build(
                    parts,
                    allow_all[1],
                    [false, true],
                    membership,
                    scratch,
                )),
            ]
        };
        Self {
            direction,
            members: parts.iter().map(|p| p.group).collect(),
            member_tables: parts.iter().map(|p| Arc::clone(&p.tables)).collect(),
            allow_all,
            allow_all_first,
            lanes,
            rule_count,
            reverse_open: parts.iter().fold([[false; 2]; 2], |mut open, part| {
                for (o, p) in open
                    .iter_mut()
                    .flatten()
                    .zip(part.reverse_open.iter().flatten())
                {
                    *o |= *p;
                }
                open
            }),
        }
    }

    /// The same classifier with the other direction's "allows all replies"
    /// facts of `parts` (whose tables in this direction are unchanged).
    pub(crate) fn with_reverse_open(&self, parts: &[GroupPart]) -> Self {
        let mut next = self.clone();
        next.reverse_open = [[false; 2]; 2];
        for part in parts {
            for (o, p) in next
                .reverse_open
                .iter_mut()
                .flatten()
                .zip(part.reverse_open.iter().flatten())
            {
                *o |= *p;
            }
        }
        next
    }

    /// Which direction this classifier checks.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// How many rules it holds.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Heap memory held by its tables (shared tables counted in full, each
    /// once).
    pub fn heap_bytes(&self) -> usize {
        let lanes = if Arc::ptr_eq(&self.lanes[0], &self.lanes[1]) {
            self.lanes[0].heap_bytes()
        } else {
            self.lanes[0].heap_bytes() + self.lanes[1].heap_bytes()
        };
        lanes + size_of_val(&*self.member_tables) + size_of_val(&*self.members)
    }

    /// Whether it made no merged copy of its groups' tables (a one-group set).
    pub fn shares_group_tables(&self) -> bool {
        self.members.len() == 1
    }

    /// Classifies one packet. `remote` names the remote ENI's set and groups,
    /// already cleared by the caller to empty when the remote is external or
    /// does not own the remote address. Allocation-free.
    #[inline]
    pub(crate) fn classify(
        &self,
        pkt: &PacketFields,
        remote: RemotePeers<'_>,
        detail: SgDetail,
    ) -> SgMatch {
        let addr = self.direction.remote_addr(pkt);
        let family = usize::from(addr.is_ipv6());
        let lanes = &*self.lanes[family];
        let allow_all = self.allow_all[family];

        let proto_index = match pkt.protocol {
            Protocol::TCP => Some(0),
            Protocol::UDP => Some(1),
            _ => None,
        };
        let reverse_open = proto_index.is_some_and(|p| self.reverse_open[p][family]);

        let mut groups = allow_all;
        // An allow-all rule has the open peer and matches this packet.
        let mut any_peer_hit = allow_all != 0;
        // Only then does it matter which hits have the open peer.
        let want_any = reverse_open && !any_peer_hit;
        let cached = remote
            .set
            .and_then(|s| lanes.peer_cache.row(s, lanes.tables.words));
        let rows = PacketRows::new(&lanes.tables, pkt, addr, want_any, cached, remote.groups);
        let (hit_groups, open) = rows.hit_groups(&lanes.word_bits);
        groups |= hit_groups as u32;
        any_peer_hit |= open;
        // The rule to name comes from the lanes only if one of their
        // groups below every allow-all one matched: then find its first
        // matching word (the first or second word, mostly).
        let lowest_allow_all = allow_all.trailing_zeros() as usize;
        let naming = detail == SgDetail::Rules;
        let first = if naming && hit_groups & ((1u64 << lowest_allow_all) - 1) != 0 {
            rows.first_hit()
        } else {
            None
        };

        // The first rule of the lowest allowing group: from the lanes, unless
        // a lower group allows the whole family.
        let rule = match first {
            Some((w, bit))
                if lanes
                    .word_bits
                    .get(w)
                    .is_some_and(|b| (b.trailing_zeros() as usize) < lowest_allow_all) =>
            {
                let pos = lanes
                    .word_bits
                    .get(w)
                    .map_or(0, |b| b.trailing_zeros() as usize);
                let base = lanes.word_rule_base.get(w).copied().unwrap_or(0);
                self.rule_ref(pos, base + bit)
            }
            _ if allow_all == 0 || !naming => None,
            // The default egress rule usually comes first: no lookup.
            _ if self.allow_all_first[family] & 1 << lowest_allow_all != 0 => {
                self.rule_ref(lowest_allow_all, 0)
            }
            _ => self.first_rule_of_allow_all(lowest_allow_all, family, pkt, addr, remote.groups),
        };

        SgMatch {
            groups,
            rule,
            untracked: any_peer_hit && reverse_open,
        }
    }

    /// The first rule of member `pos`, a group allowing the whole family,
    /// that matches: its allow-all rule unless an earlier rule matches too
    /// (a lookup in the group's own tables).
    #[cold]
    fn first_rule_of_allow_all(
        &self,
        pos: usize,
        family: usize,
        pkt: &PacketFields,
        addr: IpAddr,
        remote_groups: &[SgIdx],
    ) -> Option<RuleRef> {
        let tables = self.member_tables.get(pos)?;
        let allow_all_rule = tables.allow_all[family]?;
        let mut index = allow_all_rule;
        PacketRows::new(tables, pkt, addr, false, None, remote_groups).for_each_hit(
            |w, hits, _| {
                index = index.min((w * 64) as u32 + hits.trailing_zeros());
                false
            },
        );
        self.rule_ref(pos, index)
    }

    fn rule_ref(&self, pos: usize, index: u32) -> Option<RuleRef> {
        Some(RuleRef {
            group: *self.members.get(pos)?,
            direction: self.direction,
            index,
        })
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

    proptest::proptest! {
        /// The merged table answers, for every key, each part's own row in
        /// turn, and has a start exactly where some part has one.
        #[test]
        fn interval_merge_is_each_parts_row_side_by_side(
            groups in proptest::collection::vec(
                (1usize..130, proptest::collection::vec((0usize..130, 0u16..600, 0u16..80), 0..40)),
                1..6,
            ),
            probes in proptest::collection::vec(0u16..700, 1..60),
        ) {
            let tables: Vec<FieldTables> = groups
                .iter()
                .map(|(rules, ranges)| {
                    let words = rules.div_ceil(64);
                    let ranges: Vec<(usize, u16, u16)> = ranges
                        .iter()
                        .map(|&(bit, first, len)| (bit % rules, first, first + len))
                        .collect();
                    FieldTables {
                        words,
                        ports: IntervalTable::build(&ranges, *rules, words),
                        ..FieldTables::default()
                    }
                })
                .collect();
            let parts: Vec<&FieldTables> = tables.iter().collect();
            let merged = IntervalTable::merge(&parts, |p| &p.ports);
            let words: usize = tables.iter().map(|t| t.words).sum();
            let mut want_starts: Vec<u16> =
                tables.iter().flat_map(|t| t.ports.starts.iter().copied()).collect();
            want_starts.sort_unstable();
            want_starts.dedup();
            proptest::prop_assert_eq!(&*merged.starts, &want_starts[..]);
            for key in probes.into_iter().chain(want_starts.iter().copied()) {
                let want: Vec<u64> = tables
                    .iter()
                    .flat_map(|t| t.ports.row(key, t.words).iter().copied())
                    .collect();
                proptest::prop_assert_eq!(merged.row(key, words), &want[..], "key {}", key);
            }
        }

        #[test]
        fn peer_index_agrees_with_binary_search(
            mut groups in proptest::collection::vec(0usize..5000, 0..40),
            probes in proptest::collection::vec(0usize..5200, 1..40),
        ) {
            groups.sort_unstable();
            groups.dedup();
            let sorted: Vec<SgIdx> = groups.iter().map(|&g| SgIdx::for_test(g)).collect();
            let index = PeerIndex::new(&sorted);
            for p in probes.into_iter().chain(groups.iter().copied()) {
                let g = SgIdx::for_test(p);
                proptest::prop_assert_eq!(index.position(g), sorted.binary_search(&g).ok());
            }
        }
    }

    proptest::proptest! {
        /// The search tree finds the interval `partition_point` over the
        /// sorted starts finds, at every size (no tree under
        /// `SEARCH_TREE_MIN`, full and partial trees above) and at and around
        /// every start, both ends of the key space.
        #[test]
        fn search_tree_agrees_with_partition_point(
            mut keys in proptest::collection::vec(any::<u16>(), 0..700),
            probes in proptest::collection::vec(any::<u16>(), 0..20),
        ) {
            keys.push(0);
            keys.sort_unstable();
            keys.dedup();
            let rows: Vec<u64> = (0..keys.len() as u64).collect();
            let table = IntervalTable::new(keys.clone(), rows);
            let around = keys.iter().flat_map(|&k| [k.wrapping_sub(1), k, k.wrapping_add(1)]);
            for key in probes.into_iter().chain(around).chain([0, u16::MAX]) {
                let want = keys.partition_point(|&s| s <= key) - 1;
                proptest::prop_assert_eq!(table.row(key, 1), &[want as u64][..], "key {}", key);
            }
        }
    }

    #[test]
    fn interval_table_range_starting_at_zero() {
        let table = IntervalTable::<u32>::build(&[(0, 0, 5)], 1, 1);
        assert_eq!(table.row(0, 1)[0], 1);
        assert_eq!(table.row(5, 1)[0], 1);
        assert_eq!(table.row(6, 1)[0], 0);
        assert_eq!(&*table.starts, &[0, 6]);
    }
    use proptest::prelude::*;

    /// A rule drawn from a small space, so that packets hit it often:
    /// ports near a few values, addresses in two /24s (and their /16),
    /// peers among 40 groups, two prefix lists.
    fn rule() -> impl Strategy<Value = ResolvedRule> {
        let protocol = prop_oneof![
            Just(None),
            Just(Some(6)),
            Just(Some(17)),
            Just(Some(1)),
            Just(Some(58)),
            Just(Some(47))
        ];
        let key_range = prop_oneof![
            Just((0, u16::MAX)),
            (0u16..100, 0u16..100).prop_map(|(a, b)| (a.min(b), a.max(b))),
            (0u16..4).prop_map(|t| (t << 8, t << 8 | 0xff)),
        ];
        let remote = prop_oneof![
            (0u32..512, 0u32..3).prop_map(|(a, span)| {
                let a = 0x0a00_0000 | a;
                RemoteMatch::V4(a, a + span * 100)
            }),
            Just(RemoteMatch::V4(0, u32::MAX)),
            Just(RemoteMatch::V6(0, u128::MAX)),
            (0u128..64).prop_map(|a| RemoteMatch::V6(a << 64, (a << 64) + 5)),
            (0usize..2).prop_map(RemoteMatch::PrefixList),
            (0usize..40).prop_map(|g| RemoteMatch::Group(SgIdx::for_test(g))),
            Just(RemoteMatch::Nothing),
        ];
        (protocol, key_range, remote).prop_map(|(protocol, key_range, remote)| ResolvedRule {
            protocol,
            key_range,
            remote,
        })
    }

    fn packet() -> impl Strategy<Value = PacketFields> {
        let v4 =
            (0u32..1024).prop_map(|a| IpAddr::from(core::net::Ipv4Addr::from(0x0a00_0000 | a)));
        let v6 = (0u128..70, 0u128..8)
            .prop_map(|(hi, lo)| IpAddr::from(core::net::Ipv6Addr::from(hi << 64 | lo)));
        let addr = prop_oneof![v4, v6];
        let protocol = prop_oneof![Just(6u8), Just(17), Just(1), Just(58), Just(47), Just(0)];
        (addr, protocol, 0u16..110, 0u8..5, 0u8..3).prop_map(|(a, protocol, port, t, c)| {
            if protocol == 1 || protocol == 58 {
                PacketFields::icmp(a, a, protocol, t, c)
            } else {
                PacketFields::l4(a, a, protocol, 1, port)
            }
        })
    }

    /// What a set answers, by a plain loop over its groups' rules.
    fn naive(
        groups: &[Vec<ResolvedRule>],
        reverse: ReverseOpen,
        lists: &[PrefixRanges],
        pkt: &PacketFields,
        remote_groups: &[SgIdx],
        direction: Direction,
    ) -> (u32, Option<(usize, usize)>, bool) {
        let addr = direction.remote_addr(pkt);
        let in_list = |l: usize| {
            lists.get(l).is_some_and(|list| match addr {
                IpAddr::V4(a) => list
                    .v4
                    .iter()
                    .any(|&(x, y)| (x..=y).contains(&u32::from(a))),
                IpAddr::V6(a) => list
                    .v6
                    .iter()
                    .any(|&(x, y)| (x..=y).contains(&u128::from(a))),
            })
        };
        let (mut allowed, mut first, mut open_peer) = (0u32, None, false);
        for (g, rules) in groups.iter().enumerate() {
            for (i, r) in rules.iter().enumerate() {
                let remote_ok = match (r.remote, addr) {
                    (RemoteMatch::V4(x, y), IpAddr::V4(a)) => (x..=y).contains(&u32::from(a)),
                    (RemoteMatch::V6(x, y), IpAddr::V6(a)) => (x..=y).contains(&u128::from(a)),
                    (RemoteMatch::PrefixList(l), _) => in_list(l),
                    (RemoteMatch::Group(sg), _) => remote_groups.contains(&sg),
                    _ => false,
                };
                if r.protocol.is_none_or(|n| n == pkt.protocol)
                    && (r.key_range.0..=r.key_range.1).contains(&pkt.port_key())
                    && remote_ok
                {
                    allowed |= 1 << g;
                    first.get_or_insert((g, i));
                    open_peer |= r.any_v4() || r.any_v6();
                }
            }
        }
        let family = usize::from(addr.is_ipv6());
        let untracked = open_peer
            && match pkt.protocol {
                Protocol::TCP => reverse[0][family],
                Protocol::UDP => reverse[1][family],
                _ => false,
            };
        (allowed, first, untracked)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

        /// Merged sets of up to 16 groups of up to 140 rules (several words
        /// per group) answer as the plain loop does, for every field
        /// combination the generators reach. About half the groups get
        /// "all traffic to 0.0.0.0/0" and/or "to ::/0" rules at random
        /// places (first, after rules that match too, more than one), so
        /// sets mix groups that allow a whole family outright with groups
        /// that need the lookup, in either family or both. In half the
        /// cases no group gets them, so that untracked answers come from
        /// the lookup's open-peer rules alone.
        #[test]
        fn set_classifier_agrees_with_a_plain_loop(
            groups in proptest::collection::vec(
                (
                    proptest::collection::vec(rule(), 0..140),
                    any::<[[bool; 2]; 2]>(),
                    proptest::collection::vec((any::<proptest::sample::Index>(), any::<bool>()), 0..3),
                ),
                0..=MAX_GROUPS_PER_ENI,
            ),
            with_allow_all in any::<bool>(),
            packets in proptest::collection::vec(
                (packet(), proptest::collection::btree_set(0usize..40, 0..6)),
                1..40,
            ),
        ) {
            let lists = [
                PrefixRanges { v4: vec![(0x0a00_0010, 0x0a00_0020), (0x0a00_0018, 0x0a00_0100)], v6: vec![(3 << 64, 9 << 64)] },
                PrefixRanges { v4: vec![(0x0a00_0200, 0x0a00_02ff)], v6: vec![] },
            ];
            let groups: Vec<(Vec<ResolvedRule>, ReverseOpen)> = groups
                .into_iter()
                .map(|(mut rules, reverse, allow_all)| {
                    for (at, v6) in allow_all.into_iter().filter(|_| with_allow_all) {
                        let rule = ResolvedRule {
                            protocol: None,
                            key_range: (0, u16::MAX),
                            remote: if v6 {
                                RemoteMatch::V6(0, u128::MAX)
                            } else {
                                RemoteMatch::V4(0, u32::MAX)
                            },
                        };
                        rules.insert(at.index(rules.len() + 1), rule);
                    }
                    (rules, reverse)
                })
                .collect();
            let parts: Vec<GroupPart> = groups
                .iter()
                .enumerate()
                .map(|(g, (rules, reverse))| GroupPart {
                    group: SgIdx::for_test(100 + g),
                    tables: Arc::new(FieldTables::build(rules, &lists)),
                    reverse_open: *reverse,
                })
                .collect();
            let rule_lists: Vec<Vec<ResolvedRule>> = groups.iter().map(|g| g.0.clone()).collect();
            let mut reverse = [[false; 2]; 2];
            for (_, r) in &groups {
                for (x, y) in reverse.iter_mut().flatten().zip(r.iter().flatten()) {
                    *x |= *y;
                }
            }
            // The remote ENIs' sets, as a snapshot's topology holds them, so
            // that the pre-ORed peer rows are built and used.
            let mut remote_sets: Vec<Box<[SgIdx]>> = packets
                .iter()
                .map(|(_, r)| r.iter().map(|&g| SgIdx::for_test(g)).collect())
                .collect();
            remote_sets.sort();
            remote_sets.dedup();
            let sets_by_group: Vec<Vec<SgSetIdx>> = (0..40)
                .map(|g| {
                    (0..remote_sets.len())
                        .filter(|&s| remote_sets[s].contains(&SgIdx::for_test(g)))
                        .map(SgSetIdx::for_test)
                        .collect()
                })
                .collect();
            let sets_by_group = SetsByGroup::new(&sets_by_group);
            let membership = SetMembership { sets: &remote_sets, sets_by_group: &sets_by_group };
            let mut scratch = CacheScratch::default();
            for direction in Direction::BOTH {
                let set = SetClassifier::build(direction, &parts, 0, membership, &mut scratch);
                prop_assert!(scratch.is_clear(), "counts left at zero");
                for (pkt, remote) in &packets {
                    let remote: Vec<SgIdx> = remote.iter().map(|&g| SgIdx::for_test(g)).collect();
                    let set_idx = remote_sets.binary_search(&remote.clone().into_boxed_slice()).ok().map(SgSetIdx::for_test);
                    let (groups_want, first, untracked) =
                        naive(&rule_lists, reverse, &lists, pkt, &remote, direction);
                    // With the remote's set (the cached rows when it has
                    // them) and without (group by group): the same answer.
                    for peers in [
                        RemotePeers { set: set_idx, groups: &remote },
                        RemotePeers { set: None, groups: &remote },
                    ] {
                        let got = set.classify(pkt, peers, SgDetail::Rules);
                        prop_assert_eq!(got.groups, groups_want, "{:?} {:?} {:?}", pkt, direction, peers.set);
                        prop_assert_eq!(
                            got.rule.map(|r| (r.group.index() - 100, r.index as usize)),
                            first
                        );
                        prop_assert_eq!(got.untracked, untracked);
                        // Without the rule: the same answer, bar the rule.
                        let groups_only = set.classify(pkt, peers, SgDetail::Groups);
                        prop_assert_eq!(groups_only, SgMatch { rule: None, ..got });
                    }
                }
            }
        }
    }
}

//! The group-peer rows of one set's lanes, pre-ORed per remote SG set.
//!
//! A packet's peer term is the OR of the peer rows of every group of the
//! remote ENI that the lanes reference. Between two ENIs of big sets whose
//! groups reference each other (the usual "allow from my own tier" rules),
//! that is up to 16 rows of up to 16 words each: a profile of `process()`
//! on new flows put two thirds of the classifier's time in that OR loop.
//! The OR depends only on the remote ENI's set, so it is computed here once
//! per (lanes, remote set) and found with one hash lookup per packet.
//!
//! Only remote sets meeting the lanes in **two or more** referenced groups
//! get a row (one group's row is already a single row; no group, nothing to
//! OR). Rows are shared between remote sets with the same intersection, and
//! each lanes holds at most [`MAX_WORDS`]: a set referenced from everywhere
//! must not make the snapshot quadratic in the number of sets. A remote set
//! not found here is looked up group by group, as before, with the same
//! answer.

use super::{FieldTables, MAX_GROUPS_PER_ENI};
use crate::hash::FastMap;
use crate::snapshot::{SgIdx, SgSetIdx};

/// Most words of cached rows one lanes may hold (256 KiB): 1,024 distinct
/// intersections of a 16-group set of 1,000 rules, many more for small sets.
const MAX_WORDS: usize = 1 << 15;

/// The SG sets of the snapshot, as the cache needs them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SetMembership<'a> {
    /// Members of each set, sorted.
    pub sets: &'a [Box<[SgIdx]>],
    /// The sets each group is a member of.
    pub sets_by_group: &'a SetsByGroup,
}

/// The sets each group is a member of, in one flat array: building the
/// caches walks it once per referenced group of every lanes, and a box per
/// group made that a cache miss each (a tenth of a full compile).
#[derive(Debug, Clone, Default)]
pub(crate) struct SetsByGroup {
    /// Group `g`'s sets are `sets[start[g]..start[g + 1]]`.
    start: Box<[u32]>,
    sets: Box<[SgSetIdx]>,
}

impl SetsByGroup {
    /// From each group's sets, in group order.
    pub(crate) fn new(per_group: &[Vec<SgSetIdx>]) -> Self {
        let mut start = Vec::with_capacity(per_group.len() + 1);
        let mut sets = Vec::with_capacity(per_group.iter().map(Vec::len).sum());
        start.push(0);
        for of in per_group {
            sets.extend_from_slice(of);
            start.push(sets.len() as u32);
        }
        Self {
            start: start.into_boxed_slice(),
            sets: sets.into_boxed_slice(),
        }
    }

    /// The sets group `g` is a member of.
    pub(crate) fn of(&self, g: SgIdx) -> &[SgSetIdx] {
        let (Some(&from), Some(&to)) = (self.start.get(g.index()), self.start.get(g.index() + 1))
        else {
            return &[];
        };
        self.sets.get(from as usize..to as usize).unwrap_or(&[])
    }
}

/// Buffers reused from one cache build to the next (thousands per compile).
#[derive(Debug, Default)]
pub(crate) struct CacheScratch {
    /// Per set, how many referenced groups it has; all zero between builds.
    counts: Vec<u8>,
    /// The sets with a non-zero count.
    touched: Vec<SgSetIdx>,
}

impl CacheScratch {
    /// Whether it is ready for the next build (every count back to zero).
    #[cfg(test)]
    pub(crate) fn is_clear(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct PeerCache {
    /// Remote set → offset of its row in `rows`.
    index: SetOffsets,
    rows: Box<[u64]>,
}

/// A map from set index to row offset, looked up once per classification:
/// open addressing over `(set, offset)` pairs at most half full, linear
/// probing, found in ~15 instructions. (The `FastMap` it replaces took
/// ~60 a lookup, SIMD group probe and all: a tenth of a classification.)
#[derive(Debug, Default)]
struct SetOffsets {
    /// A power of two of slots (or none); [`Self::EMPTY`] keys are free.
    slots: Box<[(u32, u32)]>,
}

impl SetOffsets {
    /// The key of a free slot (no snapshot has 2^32 sets).
    const EMPTY: u32 = u32::MAX;

    /// The table of `pairs`, whose keys are distinct and not `EMPTY`.
    fn new(pairs: &[(SgSetIdx, u32)]) -> Self {
        if pairs.is_empty() {
            return Self::default();
        }
        let mut slots = vec![(Self::EMPTY, 0); (pairs.len() * 2).next_power_of_two()];
        let mask = slots.len() - 1;
        for &(set, offset) in pairs {
            let key = set.index() as u32;
            let mut i = Self::home(key) & mask;
            while slots.get(i).is_some_and(|&(k, _)| k != Self::EMPTY) {
                i = (i + 1) & mask;
            }
            if let Some(slot) = slots.get_mut(i) {
                *slot = (key, offset);
            }
        }
        Self {
            slots: slots.into_boxed_slice(),
        }
    }

    /// Where `key`'s probe starts (before masking): the high half of a
    /// Fibonacci product, so that neighbouring set indices spread.
    #[inline(always)]
    fn home(key: u32) -> usize {
        (u64::from(key).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize
    }

    #[inline]
    fn get(&self, set: SgSetIdx) -> Option<u32> {
        let key = set.index() as u32;
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = Self::home(key) & mask;
        // At most half full: a free slot ends every probe.
        loop {
            let &(k, offset) = self.slots.get(i)?;
            if k == key {
                return Some(offset);
            }
            if k == Self::EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn heap_bytes(&self) -> usize {
        size_of_val(&*self.slots)
    }
}

impl PeerCache {
    /// Builds the cache of `tables` (a lanes' merged tables).
    pub(super) fn build(
        tables: &FieldTables,
        membership: SetMembership<'_>,
        scratch: &mut CacheScratch,
    ) -> Self {
        let words = tables.words;
        if tables.peer_groups.len() < 2 || words == 0 {
            return Self::default();
        }
        let CacheScratch { counts, touched } = scratch;
        if counts.len() < membership.sets.len() {
            counts.resize(membership.sets.len(), 0);
        }
        // Remote sets with at least two referenced groups: count how many of
        // the referenced groups each set has.
        touched.clear();
        for g in &tables.peer_groups {
            for &s in membership.sets_by_group.of(*g) {
                if let Some(c) = counts.get_mut(s.index()) {
                    if *c == 0 {
                        touched.push(s);
                    }
                    *c = c.saturating_add(1);
                }
            }
        }
        // Counts go back to zero here, for every touched set.
        let mut candidates: Vec<(u8, SgSetIdx)> = touched
            .iter()
            .filter_map(|&s| {
                let c = counts.get_mut(s.index())?;
                let count = core::mem::take(c);
                (count >= 2).then_some((count, s))
            })
            .collect();
        // The biggest intersections save the most per packet: they go first
        // when the budget runs out.
        if candidates.is_empty() {
            return Self::default();
        }
        candidates.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));

        let mut index: Vec<(SgSetIdx, u32)> = Vec::with_capacity(candidates.len());
        let mut rows: Vec<u64> = Vec::new();
        // Keyed by the intersection (positions of the referenced groups, in
        // a fixed array: no allocation per candidate).
        let mut by_positions: FastMap<[u32; MAX_GROUPS_PER_ENI], u32> = FastMap::default();
        for (_, s) in candidates {
            let mut positions = [u32::MAX; MAX_GROUPS_PER_ENI];
            let members = membership.sets.get(s.index()).into_iter().flatten();
            let referenced = members.filter_map(|&g| tables.peer_index.position(g));
            for (slot, p) in positions.iter_mut().zip(referenced) {
                *slot = p as u32;
            }
            let offset = if let Some(&offset) = by_positions.get(&positions) {
                offset
            } else {
                if rows.len() + words > MAX_WORDS {
                    break;
                }
                let offset = rows.len() as u32;
                rows.resize(rows.len() + words, 0);
                let row = &mut rows[offset as usize..];
                for &p in positions.iter().take_while(|&&p| p != u32::MAX) {
                    let from = p as usize * words;
                    let peer = tables.peer_rows.get(from..from + words).unwrap_or(&[]);
                    for (r, w) in row.iter_mut().zip(peer) {
                        *r |= w;
                    }
                }
                by_positions.insert(positions, offset);
                offset
            };
            index.push((s, offset));
        }
        Self {
            index: SetOffsets::new(&index),
            rows: rows.into_boxed_slice(),
        }
    }

    /// The pre-ORed peer row for remote set `set`, if cached.
    #[inline]
    pub(super) fn row(&self, set: SgSetIdx, words: usize) -> Option<&[u64]> {
        if self.index.is_empty() {
            return None;
        }
        let at = self.index.get(set)? as usize;
        self.rows.get(at..)?.get(..words)
    }

    pub(super) fn heap_bytes(&self) -> usize {
        size_of_val(&*self.rows) + self.index.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The open-addressing table answers as a map does, for present
        /// and absent sets, clustered (consecutive) or spread keys.
        #[test]
        fn set_offsets_agree_with_a_map(
            keys in proptest::collection::btree_set(0u32..5000, 0..200),
            probes in proptest::collection::vec(0u32..5200, 0..100),
        ) {
            let pairs: Vec<(SgSetIdx, u32)> = keys
                .iter()
                .enumerate()
                .map(|(i, &k)| (SgSetIdx::for_test(k as usize), i as u32 * 7))
                .collect();
            let table = SetOffsets::new(&pairs);
            let map: std::collections::HashMap<SgSetIdx, u32> = pairs.iter().copied().collect();
            for k in probes.into_iter().chain(keys.iter().copied()) {
                let set = SgSetIdx::for_test(k as usize);
                proptest::prop_assert_eq!(table.get(set), map.get(&set).copied());
            }
        }
    }
}

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

use std::collections::HashMap;

use super::FieldTables;
use crate::hash::FastMap;
use crate::snapshot::{SgIdx, SgSetIdx};

/// Most words of cached rows one lanes may hold (256 KiB): 1,024 distinct
/// intersections of a 16-group set of 1,000 rules, many more for small sets.
const MAX_WORDS: usize = 1 << 15;

/// The SG sets of the snapshot, as the cache needs them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SetMembership<'a> {
    /// Members of each set, sorted.
    pub sets: &'a [Box<[SgIdx]>],
    /// The sets each group is a member of.
    pub sets_by_group: &'a [Box<[SgSetIdx]>],
}

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct PeerCache {
    /// Remote set → offset of its row in `rows`.
    index: FastMap<SgSetIdx, u32>,
    rows: Box<[u64]>,
}

impl PeerCache {
    /// Builds the cache of `tables` (a lanes' merged tables). `counts` is
    /// scratch of any length whose entries are all zero; it is left so.
    pub(super) fn build(
        tables: &FieldTables,
        membership: SetMembership<'_>,
        counts: &mut Vec<u8>,
    ) -> Self {
        let words = tables.words;
        if tables.peer_groups.len() < 2 || words == 0 {
            return Self::default();
        }
        if counts.len() < membership.sets.len() {
            counts.resize(membership.sets.len(), 0);
        }
        // Remote sets with at least two referenced groups: count how many of
        // the referenced groups each set has.
        let mut touched: Vec<SgSetIdx> = Vec::new();
        for g in &tables.peer_groups {
            for &s in membership
                .sets_by_group
                .get(g.index())
                .into_iter()
                .flatten()
            {
                if let Some(c) = counts.get_mut(s.index()) {
                    if *c == 0 {
                        touched.push(s);
                    }
                    *c = c.saturating_add(1);
                }
            }
        }
        let mut candidates: Vec<(u8, SgSetIdx)> = touched
            .into_iter()
            .filter_map(|s| {
                let c = counts.get_mut(s.index())?;
                let count = core::mem::take(c);
                (count >= 2).then_some((count, s))
            })
            .collect();
        // The biggest intersections save the most per packet: they go first
        // when the budget runs out.
        candidates.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));

        let mut index = FastMap::default();
        let mut rows: Vec<u64> = Vec::new();
        let mut by_positions: HashMap<Vec<u32>, u32> = HashMap::new();
        for (_, s) in candidates {
            let positions: Vec<u32> = membership
                .sets
                .get(s.index())
                .into_iter()
                .flatten()
                .filter_map(|&g| tables.peer_index.position(g))
                .map(|p| p as u32)
                .collect();
            let offset = if let Some(&offset) = by_positions.get(&positions) {
                offset
            } else {
                if rows.len() + words > MAX_WORDS {
                    break;
                }
                let offset = rows.len() as u32;
                rows.resize(rows.len() + words, 0);
                let row = &mut rows[offset as usize..];
                for &p in &positions {
                    let from = p as usize * words;
                    let peer = tables.peer_rows.get(from..from + words).unwrap_or(&[]);
                    for (r, w) in row.iter_mut().zip(peer) {
                        *r |= w;
                    }
                }
                by_positions.insert(positions, offset);
                offset
            };
            index.insert(s, offset);
        }
        Self {
            index,
            rows: rows.into_boxed_slice(),
        }
    }

    /// The pre-ORed peer row for remote set `set`, if cached.
    #[inline]
    pub(super) fn row(&self, set: SgSetIdx, words: usize) -> Option<&[u64]> {
        if self.index.is_empty() {
            return None;
        }
        let at = *self.index.get(&set)? as usize;
        self.rows.get(at..at + words)
    }

    pub(super) fn heap_bytes(&self) -> usize {
        size_of_val(&*self.rows) + self.index.capacity() * (size_of::<(SgSetIdx, u32)>() + 1)
    }
}

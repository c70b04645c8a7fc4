//! A static search tree of cache-line nodes over the sorted starts of an
//! interval table: the interval holding a key in one dependent load per
//! level.
//!
//! # Why not a binary search
//!
//! A classification descends two interval tables per side, four per new
//! flow, and they are rarely in the near caches: one direction of a set of
//! 16 groups × 63 rules holds ~536 KiB of tables (a 16-word row per
//! interval), the flow table's traffic evicts them between new flows, and
//! a VPC with many distinct sets has that much per set. A binary search
//! (or its breadth-first Eytzinger form) takes ~10 dependent steps over
//! ~1,000 starts, and past its first few levels each step is a new cache
//! line: the walk waits for ~6 misses in a row. Here a node is one 64-byte line of keys (32 ports, 16 IPv4
//! addresses, 4 IPv6 ones) and a level counts the keys ≤ the search key in
//! one line (a few SIMD compares and a `popcnt`), so ~1,000 ports take two
//! dependent lines and ~1,000 IPv4 starts three.
//!
//! # Layout (a static B+ tree, Algorithmica's "S+ tree")
//!
//! The leaf level is the sorted keys themselves, `B` to a node, the last
//! node padded with the greatest key. Each node above has `B` keys and
//! `B + 1` children, its key `c` being the least key under child `c + 1`,
//! so the number of its keys ≤ the search key is the child to descend to.
//! Levels are stored root first, each a run of nodes, and a child's index
//! is computed, not stored. At the leaf, the node's index times `B` plus its
//! count is the rank of the key among all keys.
//!
//! Padding is the greatest key, so it is never counted except for that key
//! itself; [`SearchTree::rank`] answers it without a descent.

use core::fmt::Debug;

/// A key type the tree can hold, with its node: one cache line of keys.
pub(super) trait NodeKey: Copy + Ord + Default + Debug {
    /// The greatest key, which pads the nodes.
    const MAX: Self;
    /// Keys per node.
    const B: usize;
    /// `B` keys in one aligned cache line.
    type Node: Copy + Debug;
    /// A node of `keys` (at most `B`), padded with [`Self::MAX`].
    fn node(keys: &[Self]) -> Self::Node;
    /// How many keys of `node` are ≤ `key`.
    fn count_le(node: &Self::Node, key: Self) -> usize;
}

/// `N` keys in one cache line (64-byte aligned: one node, one line).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(super) struct Line<T, const N: usize>([T; N]);

impl<T: Copy, const N: usize> Line<T, N> {
    fn padded(keys: &[T], pad: T) -> Self {
        let mut line = [pad; N];
        for (slot, &key) in line.iter_mut().zip(keys) {
            *slot = key;
        }
        Self(line)
    }
}

/// The key types, `B` of them to a 64-byte node. The count is a sum in the
/// key's own width: for `u16` it vectorises to 4 × `pminuw`/`pcmpeqw`,
/// `packsswb`, `pmovmskb` and one `popcnt` (~22 instructions; `u32` the
/// same with `pminud`/`pcmpeqd`), where the same count built as a bit mask
/// did not (~75). `u128` has no vector compare; its 4 keys go one by one.
macro_rules! node_keys {
    ($($key:ty: $b:literal),*) => {$(
        impl NodeKey for $key {
            const MAX: Self = <$key>::MAX;
            const B: usize = $b;
            type Node = Line<$key, $b>;
            fn node(keys: &[Self]) -> Self::Node {
                Line::padded(keys, Self::MAX)
            }
            #[inline(always)]
            fn count_le(node: &Self::Node, key: Self) -> usize {
                let mut below: $key = 0;
                for &k in &node.0 {
                    below += <$key>::from(k <= key);
                }
                below as usize
            }
        }
    )*};
}

node_keys!(u16: 32, u32: 16, u128: 4);

/// Most levels a tree may have: 4-key IPv6 nodes (5 children each) reach
/// 5^11 ≈ 49 M keys, far past any table (150,000 rules give at most
/// 300,000 starts). Building a deeper tree is refused (the table falls back
/// to a binary search), never a panic.
const MAX_LEVELS: usize = 12;

/// The search tree of one sorted, duplicate-free key slice; see the module
/// docs. Empty (no tree) for an empty slice.
#[derive(Debug, Clone)]
pub(super) struct SearchTree<K: NodeKey> {
    /// Every level's nodes, root first, leaves last.
    nodes: Box<[K::Node]>,
    /// Where each level starts in `nodes`, root first; `levels` of them.
    level_start: [u32; MAX_LEVELS],
    levels: u8,
    /// How many keys: the answer for [`NodeKey::MAX`].
    len: u32,
}

impl<K: NodeKey> SearchTree<K> {
    /// The tree of `sorted` (strictly increasing), or `None` when it would
    /// need more than [`MAX_LEVELS`] levels or is empty.
    pub(super) fn new(sorted: &[K]) -> Option<Self> {
        let b = K::B;
        let len = u32::try_from(sorted.len()).ok().filter(|&n| n > 0)?;
        // Node counts per level, leaves first; `span` keys under a node.
        let mut counts = [0usize; MAX_LEVELS];
        let mut spans = [0usize; MAX_LEVELS];
        counts[0] = sorted.len().div_ceil(b);
        spans[0] = b;
        let mut levels = 1;
        while counts[levels - 1] > 1 {
            if levels == MAX_LEVELS {
                return None;
            }
            counts[levels] = counts[levels - 1].div_ceil(b + 1);
            spans[levels] = spans[levels - 1].saturating_mul(b + 1);
            levels += 1;
        }
        let total: usize = counts[..levels].iter().sum();
        let mut nodes = Vec::with_capacity(total);
        let mut level_start = [0u32; MAX_LEVELS];
        // Root first: level `levels - 1` down to the leaves.
        for (slot, level) in (0..levels).rev().enumerate() {
            level_start[slot] = u32::try_from(nodes.len()).ok()?;
            if level == 0 {
                nodes.extend(sorted.chunks(b).map(K::node));
                continue;
            }
            // Node m's key c is the least key under its child c + 1, a
            // node of the level below covering `spans[level - 1]` keys.
            let child_span = spans[level - 1];
            let mut keys = Vec::with_capacity(b);
            for m in 0..counts[level] {
                keys.clear();
                keys.extend(
                    (1..=b)
                        .map(|c| (m * (b + 1) + c).saturating_mul(child_span))
                        .map_while(|first| sorted.get(first).copied()),
                );
                nodes.push(K::node(&keys));
            }
        }
        Some(Self {
            nodes: nodes.into_boxed_slice(),
            level_start,
            levels: levels as u8,
            len,
        })
    }

    /// How many keys are ≤ `key`.
    #[inline(always)]
    pub(super) fn rank(&self, key: K) -> usize {
        if key == K::MAX {
            // Padding would count too: every key is ≤ the greatest.
            return self.len as usize;
        }
        let levels = self.level_start.get(..usize::from(self.levels));
        let (mut child, mut rank) = (0, 0);
        for &start in levels.unwrap_or(&[]) {
            let Some(node) = self.nodes.get(start as usize + child) else {
                return 0;
            };
            let below = K::count_le(node, key);
            // The rank if this is the leaf level, the child if it is not.
            rank = child * K::B + below;
            child = child * (K::B + 1) + below;
        }
        rank
    }

    /// Heap bytes held.
    pub(super) fn heap_bytes(&self) -> usize {
        size_of_val(&*self.nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check<K: NodeKey>(mut keys: Vec<K>, probes: &[K], around: impl Fn(K) -> [K; 3]) {
        keys.sort_unstable();
        keys.dedup();
        let Some(tree) = SearchTree::new(&keys) else {
            assert!(keys.is_empty());
            return;
        };
        let all = keys.iter().flat_map(|&k| around(k));
        for key in probes
            .iter()
            .copied()
            .chain(all)
            .chain([K::default(), K::MAX])
        {
            let want = keys.partition_point(|&s| s <= key);
            assert_eq!(tree.rank(key), want, "key {key:?} of {} keys", keys.len());
        }
    }

    #[test]
    fn node_is_one_aligned_line() {
        assert_eq!(size_of::<<u16 as NodeKey>::Node>(), 64);
        assert_eq!(size_of::<<u32 as NodeKey>::Node>(), 64);
        assert_eq!(size_of::<<u128 as NodeKey>::Node>(), 64);
        assert_eq!(align_of::<<u16 as NodeKey>::Node>(), 64);
    }

    #[test]
    fn exact_level_boundaries() {
        // One full leaf, one key past it, full two- and three-level trees
        // and one past them, for every key type.
        for n in [1, 2, 31, 32, 33, 1056, 1057, 1089, 35_937, 35_938] {
            let keys: Vec<u16> = (0..n.min(65_536))
                .map(|k| (k * 7 % 65_536) as u16)
                .collect();
            check(keys, &[], |k: u16| {
                [k.wrapping_sub(1), k, k.wrapping_add(1)]
            });
        }
        for n in [1, 16, 17, 272, 273, 4_624, 4_625, 78_608, 78_609] {
            let keys: Vec<u32> = (0..n).map(|k| k * 3 + 1).collect();
            check(keys, &[], |k: u32| {
                [k.wrapping_sub(1), k, k.wrapping_add(1)]
            });
        }
        for n in [1, 4, 5, 24, 25, 125, 126, 625, 626] {
            let keys: Vec<u128> = (0..n).map(|k| (k as u128) << 64).collect();
            check(keys, &[], |k: u128| {
                [k.wrapping_sub(1), k, k.wrapping_add(1)]
            });
        }
    }

    #[test]
    fn greatest_key_is_counted_once() {
        check(vec![0u16, 5, u16::MAX], &[u16::MAX - 1], |k| [k, k, k]);
        check(vec![u32::MAX], &[0, 1], |k| [k, k, k]);
        check((0..40u128).chain([u128::MAX]).collect(), &[], |k| [k, k, k]);
    }

    #[test]
    fn empty_slice_has_no_tree() {
        assert!(SearchTree::<u32>::new(&[]).is_none());
    }

    proptest! {
        #[test]
        fn rank_agrees_with_partition_point_u16(
            keys in proptest::collection::vec(any::<u16>(), 0..3_000),
            probes in proptest::collection::vec(any::<u16>(), 0..20),
        ) {
            check(keys, &probes, |k| [k.wrapping_sub(1), k, k.wrapping_add(1)]);
        }

        #[test]
        fn rank_agrees_with_partition_point_u32(
            keys in proptest::collection::vec(any::<u32>(), 0..3_000),
            probes in proptest::collection::vec(any::<u32>(), 0..20),
        ) {
            check(keys, &probes, |k| [k.wrapping_sub(1), k, k.wrapping_add(1)]);
        }

        #[test]
        fn rank_agrees_with_partition_point_u128(
            keys in proptest::collection::vec(any::<u128>(), 0..700),
            probes in proptest::collection::vec(any::<u128>(), 0..20),
        ) {
            check(keys, &probes, |k| [k.wrapping_sub(1), k, k.wrapping_add(1)]);
        }
    }
}

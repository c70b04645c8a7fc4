//! A frozen exact-match table for the two lookups every packet makes: the
//! sending ENI by (port, VLAN, MAC) and the route target by (VPC, IPv4
//! address).
//!
//! A snapshot never changes after it is compiled, so these tables need no
//! insert or delete on the packet path, no tombstones and no growth: open
//! addressing with linear probing over a power-of-two array at most half
//! full, each slot the key and a `u32` value side by side, so a hit reads
//! one cache line and a miss stops at the first empty slot (one exists: the
//! table is at most half full). The hash is one folded multiply. The keys
//! are chosen by the control plane (MACs, private addresses) and the table
//! is rebuilt with every snapshot, so resistance to crafted collisions
//! buys nothing here; a pathological key set only lengthens probes.
//!
//! Against the `hashbrown` map with the snapshot's fast hasher it replaces,
//! measured per lookup of 32 different ENIs in a 400-ENI VPC (`cargo bench
//! -p palisade-dataplane --bench process`, see perf/RESULTS.md).

/// Keys the table takes: plain integers.
pub(crate) trait ExactKey: Copy + Eq + Default {
    /// A well-mixed 64-bit hash.
    fn mix(self) -> u64;
}

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// The 128-bit product folded to 64 bits (the wyhash/foldhash mixer).
#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl ExactKey for u64 {
    #[inline]
    fn mix(self) -> u64 {
        folded_multiply(self ^ 0x243f_6a88_85a3_08d3, MULTIPLIER)
    }
}

impl ExactKey for u128 {
    #[inline]
    fn mix(self) -> u64 {
        folded_multiply(
            (self as u64) ^ 0x243f_6a88_85a3_08d3,
            ((self >> 64) as u64) ^ MULTIPLIER,
        )
    }
}

/// The value of an empty slot; never a stored value.
const EMPTY: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, Default)]
struct Slot<K> {
    key: K,
    value: u32,
}

/// The frozen table; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct ExactTable<K> {
    slots: Box<[Slot<K>]>,
    mask: usize,
}

impl<K: ExactKey> Default for ExactTable<K> {
    fn default() -> Self {
        Self::build(core::iter::empty())
    }
}

impl<K: ExactKey> ExactTable<K> {
    /// A table holding `entries`. Keys must be distinct (the callers build
    /// these from maps) and values below `u32::MAX`; an entry breaking
    /// either is left out rather than corrupting the table.
    pub(crate) fn build(entries: impl IntoIterator<Item = (K, u32)>) -> Self {
        let entries: Vec<(K, u32)> = entries.into_iter().collect();
        let len = (entries.len() * 2).next_power_of_two().max(8);
        let mut slots = vec![
            Slot {
                key: K::default(),
                value: EMPTY,
            };
            len
        ]
        .into_boxed_slice();
        let mask = len - 1;
        for (key, value) in entries {
            if value == EMPTY {
                continue;
            }
            let mut i = key.mix() as usize & mask;
            while let Some(slot) = slots.get_mut(i) {
                if slot.value == EMPTY {
                    *slot = Slot { key, value };
                    break;
                }
                if slot.key == key {
                    break;
                }
                i = (i + 1) & mask;
            }
        }
        Self { slots, mask }
    }

    /// The value stored for `key`.
    #[inline]
    pub(crate) fn get(&self, key: K) -> Option<u32> {
        let mut i = key.mix() as usize & self.mask;
        // Bounded by the table's length; the table is at most half full, so
        // an empty slot ends the probe long before.
        for _ in 0..self.slots.len() {
            let slot = self.slots.get(i)?;
            if slot.value == EMPTY {
                return None;
            }
            if slot.key == key {
                return Some(slot.value);
            }
            i = (i + 1) & self.mask;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Differential against std's map: every stored key is found with
        /// its value, every other key is not.
        #[test]
        fn agrees_with_a_hash_map(
            entries in proptest::collection::hash_map(any::<u64>(), 0u32..u32::MAX, 0..300),
            probes in proptest::collection::vec(any::<u64>(), 0..100),
        ) {
            let table = ExactTable::build(entries.iter().map(|(&k, &v)| (k, v)));
            for (&k, &v) in &entries {
                prop_assert_eq!(table.get(k), Some(v));
            }
            for k in probes {
                prop_assert_eq!(table.get(k), entries.get(&k).copied());
            }
        }

        /// The same with 128-bit keys that differ only in their high or only
        /// in their low half (the shapes of (port, VLAN, MAC) keys).
        #[test]
        fn wide_keys_agree_with_a_hash_map(
            highs in proptest::collection::vec(0u64..4, 1..4),
            lows in proptest::collection::vec(0u64..64, 1..64),
            probe_high in 0u64..5,
            probe_low in 0u64..70,
        ) {
            let mut entries = HashMap::new();
            for (i, &h) in highs.iter().enumerate() {
                for (j, &l) in lows.iter().enumerate() {
                    entries.insert(u128::from(h) << 64 | u128::from(l), (i * 100 + j) as u32);
                }
            }
            let table = ExactTable::build(entries.iter().map(|(&k, &v)| (k, v)));
            for (&k, &v) in &entries {
                prop_assert_eq!(table.get(k), Some(v));
            }
            let probe = u128::from(probe_high) << 64 | u128::from(probe_low);
            prop_assert_eq!(table.get(probe), entries.get(&probe).copied());
        }
    }

    #[test]
    fn empty_table_finds_nothing() {
        let table = ExactTable::<u64>::default();
        assert_eq!(table.get(0), None);
        assert_eq!(table.get(u64::MAX), None);
    }

    #[test]
    fn a_reserved_value_is_left_out() {
        let table = ExactTable::build([(1u64, EMPTY), (2, 7)]);
        assert_eq!(table.get(1), None);
        assert_eq!(table.get(2), Some(7));
    }
}

//! Bucketed open addressing with bounded probing, shared by the flow table
//! and the fragment table.
//!
//! The index knows slots, not entries: each table keeps its entries in a
//! parallel array (slot `i` of the index describes entry `i`) and passes
//! closures to compare keys or to tell whether an entry may be reclaimed.
//!
//! Layout: buckets of [`SLOTS_PER_BUCKET`] slots. A bucket's metadata is 16
//! bytes (four buckets per cache line): one tag byte per slot taken from the
//! hash's top byte (0 = empty), the probe distance of each occupied slot,
//! and a spill count. A key lives in its home bucket (`hash & mask`) or in
//! one of the next [`PROBE_BUCKETS`] − 1; never further. Thanks to the
//! spill counts below a lookup usually reads one metadata entry, and thanks
//! to the tags it touches on average little more than the one entry it
//! wants. The spill count of bucket `b` is
//! the number of entries homed at or before `b` (within the probe window)
//! that are stored after `b`; a lookup stops at the first bucket of its
//! window whose spill count is zero, so a miss usually costs one bucket.
//! Deletion needs no tombstones: the stored probe distance lets `vacate`
//! undo exactly the spill counts `place` added.

use thiserror::Error;

use crate::pages::PageArray;
use crate::prefetch::Prefetch;

/// Slots per bucket: eight one-byte tags fit one `u64` compared at once.
pub const SLOTS_PER_BUCKET: usize = 8;
/// How many consecutive buckets a key may live in: 64 candidate slots.
///
/// At the 50 % load the tables are sized for, a window of four buckets (32
/// slots) is not enough: simulating 2^20 random keys into 2^18 buckets
/// refuses 7–8 of them, and the flow-table bench hit it. Eight buckets
/// refused none in the same simulation (Poisson tail ≈ 10^-7 per window).
/// Lookups do not pay for the wider window: they stop at the first bucket
/// nothing spilled past, which at 50 % load is nearly always the home
/// bucket. A deliberate flood of one neighbourhood can only refuse new keys
/// homed there.
pub const PROBE_BUCKETS: usize = 8;
/// The largest number of entries a table may be created for: 2^26 entries
/// are 4 GiB of 64-byte flow entries at 50 % load; more is a configuration
/// mistake, not a need.
pub const MAX_ENTRIES: usize = 1 << 26;

/// Errors sizing a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CapacityError {
    /// The requested number of entries is zero or above [`MAX_ENTRIES`].
    #[error("table capacity {requested} is outside 1..={MAX_ENTRIES}")]
    OutOfRange {
        /// The capacity asked for.
        requested: usize,
    },
    /// The memory for the table could not be mapped.
    #[error("cannot map the table's memory: {kind}")]
    Map {
        /// What the kernel said.
        kind: std::io::ErrorKind,
    },
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const SEVEN_BITS: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// A word with bit `8 i + 7` set exactly when byte `i` of `word` equals
/// `byte` (no false positives, unlike the classic borrow-based trick).
#[inline(always)]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (LOW_BITS * u64::from(byte));
    !(((x & SEVEN_BITS) + SEVEN_BITS) | x | SEVEN_BITS) & HIGH_BITS
}

/// Metadata of one bucket. Plain old data, for the huge-page mapping.
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(16))]
struct Bucket {
    /// One tag per slot; 0 means empty.
    tags: [u8; SLOTS_PER_BUCKET],
    /// Three bits per slot: the occupant's distance from its home bucket.
    distances: u32,
    /// Entries homed at or before this bucket that live after it.
    spill: u8,
    /// Explicit padding to the 16-byte alignment (plain old data has none
    /// implicit).
    reserved: [u8; 3],
}

const _: () = assert!(size_of::<Bucket>() == 16);
const _: () = assert!(PROBE_BUCKETS <= 8, "distances are stored in three bits");

/// The home bucket of `hash` in an index of `mask + 1` buckets.
#[inline(always)]
fn home(hash: u64, mask: usize) -> usize {
    hash as usize & mask
}

/// The position of `hash`'s preferred slot within its bucket.
#[inline(always)]
fn preferred_position(hash: u64) -> usize {
    (hash >> 48) as usize & (SLOTS_PER_BUCKET - 1)
}

/// See [`BucketIndex::preferred_slot`].
#[inline(always)]
fn preferred_slot(hash: u64, mask: usize) -> usize {
    home(hash, mask) * SLOTS_PER_BUCKET + preferred_position(hash)
}

/// See [`IndexLines::tagged_slot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagged {
    /// The preferred slot carries the key's tag.
    Preferred,
    /// This other slot of the home bucket carries it.
    Displaced(usize),
    /// No slot of the home bucket carries it.
    Untagged,
}

/// The read-only part of a [`BucketIndex`] that prefetching needs, viewed
/// once for a run of packets: each access through the huge-page mapping
/// re-checks the mapping's bounds and alignment (about 20 instructions),
/// an access through the view is one bounds check.
#[derive(Debug, Clone, Copy)]
pub struct IndexLines<'a> {
    buckets: &'a [Bucket],
    mask: usize,
}

impl IndexLines<'_> {
    /// Asks the CPU to start loading the home bucket's metadata.
    #[inline(always)]
    pub fn prefetch(&self, hash: u64, prefetcher: &impl Prefetch) {
        if let Some(bucket) = self.buckets.get(home(hash, self.mask)) {
            prefetcher.prefetch(&bucket.spill);
        }
    }

    /// Where `hash`'s key most likely lives when that is not its preferred
    /// slot, once its bucket's tags have arrived (a second prefetch stage):
    /// the first slot of the home bucket with its tag. `None` when the
    /// preferred slot carries the tag (most keys: their entry is on its
    /// way already, and one byte says so without the bucket-wide match) or
    /// no slot does. A key stored past its home bucket is not looked for.
    #[inline(always)]
    pub fn displaced_slot(&self, hash: u64) -> Option<usize> {
        match self.tagged_slot(hash) {
            Tagged::Displaced(slot) => Some(slot),
            Tagged::Preferred | Tagged::Untagged => None,
        }
    }

    /// What the home bucket's tags (once arrived) say of `hash`'s key:
    /// likely in its preferred slot, likely in another slot of the bucket,
    /// or in none of the bucket's slots (most likely absent: only a key
    /// stored past its home bucket is missed).
    #[inline(always)]
    pub fn tagged_slot(&self, hash: u64) -> Tagged {
        let home = home(hash, self.mask);
        let Some(bucket) = self.buckets.get(home) else {
            return Tagged::Untagged;
        };
        let tag = BucketIndex::tag(hash);
        if bucket.tags.get(preferred_position(hash)) == Some(&tag) {
            return Tagged::Preferred;
        }
        let matches = bytes_equal(u64::from_le_bytes(bucket.tags), tag);
        if matches == 0 {
            return Tagged::Untagged;
        }
        Tagged::Displaced(home * SLOTS_PER_BUCKET + (matches.trailing_zeros() / 8) as usize)
    }

    /// See [`BucketIndex::preferred_slot`].
    #[inline(always)]
    pub fn preferred_slot(&self, hash: u64) -> usize {
        preferred_slot(hash, self.mask)
    }
}

/// The slot bookkeeping of one table.
#[derive(Debug)]
pub struct BucketIndex {
    buckets: PageArray<Bucket>,
    mask: usize,
}

impl BucketIndex {
    /// An index able to hold `entries` keys at no more than 50 % load.
    pub fn for_entries(entries: usize) -> Result<Self, CapacityError> {
        if entries == 0 || entries > MAX_ENTRIES {
            return Err(CapacityError::OutOfRange { requested: entries });
        }
        let bucket_count = (entries * 2)
            .div_ceil(SLOTS_PER_BUCKET)
            .next_power_of_two()
            .max(PROBE_BUCKETS);
        let buckets = PageArray::new(bucket_count, Bucket::default())
            .map_err(|e| CapacityError::Map { kind: e.kind() })?;
        Ok(Self {
            buckets,
            mask: bucket_count - 1,
        })
    }

    /// Number of buckets (a power of two).
    pub fn bucket_count(&self) -> usize {
        self.buckets.as_slice().len()
    }

    /// Number of slots; the parallel entry array must have this length.
    pub fn slot_count(&self) -> usize {
        self.buckets.as_slice().len() * SLOTS_PER_BUCKET
    }

    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        home(hash, self.mask)
    }

    #[inline(always)]
    fn tag(hash: u64) -> u8 {
        ((hash >> 56) as u8).max(1)
    }

    /// The slot of the home bucket that `place` tries first. Taking it from
    /// hash bits that neither the bucket index nor the tag uses spreads keys
    /// over the bucket's slots, so that `preferred_slot` is where a key
    /// usually is and its entry can be prefetched before the tags are read.
    #[inline(always)]
    pub fn preferred_slot(&self, hash: u64) -> usize {
        preferred_slot(hash, self.mask)
    }

    /// Asks the CPU to start loading the home bucket's metadata.
    #[inline(always)]
    pub fn prefetch(&self, hash: u64, prefetcher: &impl Prefetch) {
        self.lines().prefetch(hash, prefetcher);
    }

    /// The buckets viewed once for a run of prefetches (see
    /// [`IndexLines`]).
    #[inline(always)]
    pub fn lines(&self) -> IndexLines<'_> {
        IndexLines {
            buckets: self.buckets.as_slice(),
            mask: self.mask,
        }
    }

    /// The occupied slot for which `is_match` holds, if any.
    #[inline]
    pub fn find(&self, hash: u64, mut is_match: impl FnMut(usize) -> bool) -> Option<usize> {
        let tag = Self::tag(hash);
        let home = self.home(hash);
        let buckets = self.buckets.as_slice();
        for distance in 0..PROBE_BUCKETS {
            let index = (home + distance) & self.mask;
            let bucket = buckets.get(index)?;
            let mut matches = bytes_equal(u64::from_le_bytes(bucket.tags), tag);
            while matches != 0 {
                let slot = index * SLOTS_PER_BUCKET + (matches.trailing_zeros() / 8) as usize;
                if is_match(slot) {
                    return Some(slot);
                }
                matches &= matches - 1;
            }
            if bucket.spill == 0 {
                return None;
            }
        }
        None
    }

    /// A slot of `hash`'s probe window that a new key may take: the first
    /// empty one (only if `take_empty`) or the first occupied one whose
    /// occupant `reclaimable` gives up, in probe order starting at the
    /// preferred slot. The caller vacates a reclaimable slot before placing.
    pub fn find_free(
        &self,
        hash: u64,
        take_empty: bool,
        mut reclaimable: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        let home = self.home(hash);
        let first = (hash >> 48) as usize;
        let buckets = self.buckets.as_slice();
        for distance in 0..PROBE_BUCKETS {
            let index = (home + distance) & self.mask;
            let bucket = buckets.get(index)?;
            for step in 0..SLOTS_PER_BUCKET {
                let within = (first + step) & (SLOTS_PER_BUCKET - 1);
                let slot = index * SLOTS_PER_BUCKET + within;
                let empty = bucket.tags[within] == 0;
                if (empty && take_empty) || (!empty && reclaimable(slot)) {
                    return Some(slot);
                }
            }
        }
        None
    }

    /// Whether `slot` holds an entry.
    pub fn is_occupied(&self, slot: usize) -> bool {
        self.buckets
            .as_slice()
            .get(slot / SLOTS_PER_BUCKET)
            .is_some_and(|b| b.tags[slot % SLOTS_PER_BUCKET] != 0)
    }

    /// The occupied slots of `bucket`, in slot order: what an expiry sweep
    /// visits. The iterator holds a copy of the bucket's occupancy, not a
    /// borrow, so the caller may vacate slots while it walks them.
    pub fn occupied_slots(&self, bucket: usize) -> impl Iterator<Item = usize> + use<> {
        let mut occupied = self.occupied_in_bucket(bucket);
        core::iter::from_fn(move || {
            if occupied == 0 {
                return None;
            }
            let slot = bucket * SLOTS_PER_BUCKET + occupied.trailing_zeros() as usize;
            occupied &= occupied - 1;
            Some(slot)
        })
    }

    /// Bit `i` set when slot `i` of `bucket` is occupied.
    pub fn occupied_in_bucket(&self, bucket: usize) -> u8 {
        self.buckets.as_slice().get(bucket).map_or(0, |b| {
            let occupied = !bytes_equal(u64::from_le_bytes(b.tags), 0) & HIGH_BITS;
            // Gather the eight high bits into one byte.
            (((occupied >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56) as u8
        })
    }

    /// Marks an empty `slot` (returned by `find_free`) as holding `hash`'s
    /// key. Does nothing to a slot outside `hash`'s probe window or already
    /// occupied — callers only pass slots `find_free` returned.
    pub fn place(&mut self, hash: u64, slot: usize) {
        let index = slot / SLOTS_PER_BUCKET;
        let within = slot % SLOTS_PER_BUCKET;
        let mask = self.mask;
        let distance = index.wrapping_sub(self.home(hash)) & mask;
        // One view of the buckets for the whole placement: each
        // `as_mut_slice` re-checks the mapping's bounds and alignment
        // (half of this function's instructions when it took three).
        let buckets = self.buckets.as_mut_slice();
        let Some(bucket) = buckets.get_mut(index) else {
            return;
        };
        if distance >= PROBE_BUCKETS || bucket.tags[within] != 0 {
            return;
        }
        bucket.tags[within] = Self::tag(hash);
        bucket.distances =
            (bucket.distances & !(0b111 << (3 * within))) | ((distance as u32) << (3 * within));
        for back in 1..=distance {
            let spilled = (index.wrapping_sub(back)) & mask;
            if let Some(b) = buckets.get_mut(spilled) {
                b.spill = b.spill.saturating_add(1);
            }
        }
    }

    /// Empties `slot`; returns whether it was occupied.
    pub fn vacate(&mut self, slot: usize) -> bool {
        let index = slot / SLOTS_PER_BUCKET;
        let within = slot % SLOTS_PER_BUCKET;
        let Some(bucket) = self.buckets.as_mut_slice().get_mut(index) else {
            return false;
        };
        if bucket.tags[within] == 0 {
            return false;
        }
        bucket.tags[within] = 0;
        let distance = ((bucket.distances >> (3 * within)) & 0b111) as usize;
        for back in 1..=distance {
            let spilled = (index.wrapping_sub(back)) & self.mask;
            if let Some(b) = self.buckets.as_mut_slice().get_mut(spilled) {
                b.spill = b.spill.saturating_sub(1);
            }
        }
        true
    }

    /// The bucket after `bucket`, wrapping: the sweep's cursor step.
    pub fn next_bucket(&self, bucket: usize) -> usize {
        (bucket + 1) & self.mask
    }

    /// Spill count of a bucket, for invariant checks in tests.
    #[cfg(test)]
    fn spill(&self, bucket: usize) -> u8 {
        self.buckets.as_slice()[bucket].spill
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn bytes_equal_is_exact() {
        let word = u64::from_le_bytes([0, 1, 0, 0x80, 0xff, 7, 0, 1]);
        assert_eq!(bytes_equal(word, 0), 0x0080_0000_0080_0080);
        assert_eq!(bytes_equal(word, 1), 0x8000_0000_0000_8000);
        assert_eq!(bytes_equal(word, 0x80), 0x0000_0000_8000_0000);
        assert_eq!(bytes_equal(word, 2), 0);
    }

    #[test]
    fn sizing_rounds_to_a_power_of_two_at_half_load() {
        assert_eq!(
            BucketIndex::for_entries(0).unwrap_err(),
            CapacityError::OutOfRange { requested: 0 }
        );
        assert!(BucketIndex::for_entries(MAX_ENTRIES + 1).is_err());
        assert_eq!(
            BucketIndex::for_entries(1).unwrap().bucket_count(),
            PROBE_BUCKETS
        );
        assert_eq!(BucketIndex::for_entries(64).unwrap().bucket_count(), 16);
        assert_eq!(BucketIndex::for_entries(65).unwrap().bucket_count(), 32);
        assert_eq!(
            BucketIndex::for_entries(1 << 20).unwrap().slot_count(),
            1 << 21
        );
    }

    #[test]
    fn occupied_mask_matches_tags() {
        let mut index = BucketIndex::for_entries(16).unwrap();
        // Hash 0x..._0003_..._0001: home bucket 1, preferred slot 3.
        let hash = 0xab03_0000_0000_0001;
        let slot = index.find_free(hash, true, |_| false).unwrap();
        assert_eq!(slot, SLOTS_PER_BUCKET + 3);
        index.place(hash, slot);
        assert_eq!(index.occupied_in_bucket(1), 0b0000_1000);
        assert_eq!(index.find(hash, |s| s == slot), Some(slot));
        assert!(index.vacate(slot));
        assert!(!index.vacate(slot));
        assert_eq!(index.occupied_in_bucket(1), 0);
    }

    #[test]
    fn prefetch_asks_for_the_home_bucket() {
        struct Recorder(core::cell::Cell<usize>);
        impl Prefetch for Recorder {
            fn prefetch<T: Copy>(&self, what: &T) {
                self.0.set(core::ptr::from_ref(what).addr());
            }
        }
        let index = BucketIndex::for_entries(1024).unwrap();
        let buckets = index.buckets.as_slice();
        for hash in [0, 1, 0xffff_ffff_ffff_ffff, 0x1234_5678_9abc_def0, 255, 256] {
            let recorder = Recorder(core::cell::Cell::new(0));
            index.prefetch(hash, &recorder);
            let home = core::ptr::from_ref(&buckets[index.home(hash)]).addr();
            assert!(
                (home..home + size_of::<Bucket>()).contains(&recorder.0.get()),
                "hash {hash:#x}"
            );
        }
    }

    /// Recomputes every spill count from scratch.
    fn check_spills(index: &BucketIndex, homes: &HashMap<usize, usize>) {
        let n = index.bucket_count();
        for bucket in 0..n {
            let expected = homes
                .iter()
                .filter(|&(&slot, &home)| {
                    let at = slot / SLOTS_PER_BUCKET;
                    let distance = at.wrapping_sub(home) & (n - 1);
                    let past = bucket.wrapping_sub(home) & (n - 1);
                    past < distance
                })
                .count();
            assert_eq!(
                usize::from(index.spill(bucket)),
                expected,
                "bucket {bucket}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Places and vacates keys crowded into a few home buckets and
        /// checks that every placed key is still found and that the spill
        /// counts always equal what the stored keys imply.
        #[test]
        fn find_finds_every_placed_key(ops in proptest::collection::vec((0u64..96, any::<bool>()), 1..300)) {
            let mut index = BucketIndex::for_entries(128).unwrap(); // 32 buckets
            let n = index.bucket_count() as u64;
            let hash_of = |key: u64| (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) & !(n - 1)) | (key % 3);
            let mut slot_of: HashMap<u64, usize> = HashMap::new();
            let mut homes: HashMap<usize, usize> = HashMap::new();
            for (key, insert) in ops {
                let hash = hash_of(key);
                if insert && !slot_of.contains_key(&key) {
                    if let Some(slot) = index.find_free(hash, true, |_| false) {
                        index.place(hash, slot);
                        slot_of.insert(key, slot);
                        homes.insert(slot, (hash % n) as usize);
                    } else {
                        // Refused only when the whole window is full.
                        let home = (hash % n) as usize;
                        for d in 0..PROBE_BUCKETS {
                            prop_assert_eq!(index.occupied_in_bucket((home + d) % n as usize), 0xff);
                        }
                    }
                } else if let Some(slot) = slot_of.remove(&key) {
                    prop_assert!(index.vacate(slot));
                    homes.remove(&slot);
                }
                for (&k, &slot) in &slot_of {
                    prop_assert_eq!(index.find(hash_of(k), |s| s == slot), Some(slot));
                }
                check_spills(&index, &homes);
            }
        }

        /// `find_free` picks the slot a plain walk in probe order picks:
        /// the first empty one (when it may) or the first occupied one
        /// `reclaimable` gives up, whichever comes first.
        #[test]
        fn find_free_takes_the_first_slot_in_probe_order(
            keys in proptest::collection::vec(any::<u64>(), 0..200),
            probes in proptest::collection::vec((any::<u64>(), any::<bool>(), 1usize..5), 1..40),
        ) {
            let mut index = BucketIndex::for_entries(64).unwrap(); // 16 buckets
            for key in keys {
                // Crowded: the low bits pick one of four home buckets.
                let hash = key & !0xc | 0x3;
                if let Some(slot) = index.find_free(hash, true, |_| false) {
                    index.place(hash, slot);
                }
            }
            for (hash, take_empty, every) in probes {
                let reclaimable = |slot: usize| slot % every == 0;
                let home = index.home(hash);
                let mut want = None;
                'walk: for distance in 0..PROBE_BUCKETS {
                    let bucket = (home + distance) & index.mask;
                    for step in 0..SLOTS_PER_BUCKET {
                        let slot = bucket * SLOTS_PER_BUCKET
                            + ((hash >> 48) as usize + step) % SLOTS_PER_BUCKET;
                        let occupied = index.is_occupied(slot);
                        if (!occupied && take_empty) || (occupied && reclaimable(slot)) {
                            want = Some(slot);
                            break 'walk;
                        }
                    }
                }
                prop_assert_eq!(index.find_free(hash, take_empty, reclaimable), want);
            }
        }
    }
}

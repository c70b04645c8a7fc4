//! Verdicts of IP datagrams in flight as fragments.
//!
//! Only the first fragment of a datagram carries the L4 header, so only it
//! can be classified (flow lookup, or policy on a miss). SEMANTICS.md
//! (palisade): later fragments of the same datagram — same VPC, source,
//! destination, protocol and IP id — follow the first one's verdict; a
//! non-first fragment with no first fragment seen is dropped. The packet
//! path therefore records the first fragment's verdict here, with the ports
//! it carried so that later fragments can be attributed to the same flow
//! (`FlowKey::new_v4(vpc, src, dst, protocol, source_port,
//! destination_port)`), and looks every later fragment up. Fragments that
//! arrive before their first fragment find nothing
//! ([`FragmentVerdict::Unknown`]) and the caller drops them: palisade does
//! not buffer or reassemble.
//!
//! A record lives for a fixed time after its first fragment
//! ([`DEFAULT_FRAGMENT_TIMEOUT`], 30 s like Linux's `ipfrag_time`; later
//! fragments do not extend it, so a record cannot be kept alive forever) —
//! a palisade decision, as AWS documents none. A new first fragment with the
//! same key (the sender's IP id wrapped) replaces the record.
//!
//! The table is the flow table's little sibling: fixed capacity, the same
//! bounded-probing bucket index, an incremental sweep, lookups that treat
//! expired records as absent.

use thiserror::Error;

use crate::index::{BucketIndex, CapacityError};
use crate::key::{AddressFamily, DEFAULT_HASH_SEED, mix_words};
use crate::prefetch::Prefetch;
use crate::state::Seconds;

/// How long a first fragment's verdict is kept, in seconds.
pub const DEFAULT_FRAGMENT_TIMEOUT: Seconds = 30;

/// Errors creating a fragment table or recording a first fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FragmentError {
    /// The requested capacity is out of range.
    #[error(transparent)]
    Capacity(#[from] CapacityError),
    /// A zero timeout would forget every record at once.
    #[error("fragment timeout must be at least one second")]
    ZeroTimeout,
    /// As many datagrams are in flight as the table admits; the caller
    /// drops the first fragment (its datagram could not be completed).
    #[error("fragment table full")]
    TableFull,
    /// Every slot the key may occupy holds a live record.
    #[error("no free slot within the probe limit")]
    ProbeLimit,
}

/// The identity of one fragmented datagram. Not symmetric: all fragments
/// of a datagram travel the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct FragmentKey {
    source: [u8; 16],
    destination: [u8; 16],
    vpc: [u8; 4],
    identification: [u8; 4],
    protocol: u8,
    family: AddressFamily,
}

const _: () = assert!(size_of::<FragmentKey>() == 42);

impl FragmentKey {
    const ZERO: Self = Self {
        source: [0; 16],
        destination: [0; 16],
        vpc: [0; 4],
        identification: [0; 4],
        protocol: 0,
        family: AddressFamily::V4,
    };

    /// An IPv4 datagram: 16-bit identification.
    pub fn new_v4(
        vpc: u32,
        source: [u8; 4],
        destination: [u8; 4],
        protocol: u8,
        identification: u16,
    ) -> Self {
        let mapped = |[a, b, c, d]: [u8; 4]| [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d];
        Self {
            source: mapped(source),
            destination: mapped(destination),
            vpc: vpc.to_le_bytes(),
            identification: u32::from(identification).to_le_bytes(),
            protocol,
            family: AddressFamily::V4,
        }
    }

    /// An IPv6 datagram: 32-bit identification from the Fragment header;
    /// `protocol` is the header's Next Header (the fragmented payload's).
    pub fn new_v6(
        vpc: u32,
        source: [u8; 16],
        destination: [u8; 16],
        protocol: u8,
        identification: u32,
    ) -> Self {
        Self {
            source,
            destination,
            vpc: vpc.to_le_bytes(),
            identification: identification.to_le_bytes(),
            protocol,
            family: AddressFamily::V6,
        }
    }

    /// The key's hash with [`DEFAULT_HASH_SEED`]; same mixer as
    /// [`crate::FlowKey::hash`].
    #[must_use]
    pub fn hash(&self) -> u64 {
        self.hash_seeded(DEFAULT_HASH_SEED)
    }

    /// The key's hash with a chosen seed.
    #[must_use]
    pub fn hash_seeded(&self, seed: u64) -> u64 {
        let word = |bytes: &[u8; 16], half: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[half * 8..half * 8 + 8]);
            u64::from_le_bytes(w)
        };
        let vpc_and_id = u64::from(u32::from_le_bytes(self.vpc))
            | (u64::from(u32::from_le_bytes(self.identification)) << 32);
        let protocol_and_family = u64::from(self.protocol) | (u64::from(self.family as u8) << 8);
        mix_words(
            seed,
            [
                word(&self.source, 0),
                word(&self.source, 1),
                word(&self.destination, 0),
                word(&self.destination, 1),
                vpc_and_id,
                protocol_and_family,
            ],
        )
    }
}

/// The verdict of a first fragment, to be followed by the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstFragmentVerdict {
    /// The datagram is allowed; the ports (or ICMP identifier twice) of its
    /// L4 header name the flow it belongs to.
    Allow {
        /// Source port from the first fragment.
        source_port: u16,
        /// Destination port from the first fragment.
        destination_port: u16,
    },
    /// The datagram was denied; later fragments are dropped too.
    Deny,
}

/// What to do with a non-first fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentVerdict {
    /// Forward it, as part of the flow with these ports.
    Allow {
        /// Source port from the first fragment.
        source_port: u16,
        /// Destination port from the first fragment.
        destination_port: u16,
    },
    /// Its first fragment was denied: drop it.
    Deny,
    /// No first fragment seen (yet, or any more): drop it.
    Unknown,
}

/// Counters the data plane exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragmentCounters {
    /// First-fragment verdicts recorded (including replacements).
    pub records: u64,
    /// Records refused because the table was full.
    pub record_table_full: u64,
    /// Records refused by the probe limit.
    pub record_probe_limit: u64,
    /// Lookups that found no record: fragments the caller drops as
    /// out-of-order or orphaned.
    pub unknown: u64,
    /// Records reclaimed after their timeout.
    pub expirations: u64,
}

#[derive(Debug, Clone, Copy)]
struct FragmentRecord {
    key: FragmentKey,
    allowed: bool,
    source_port: u16,
    destination_port: u16,
    expires_at: Seconds,
}

const _: () = assert!(size_of::<FragmentRecord>() <= 64);

impl FragmentRecord {
    const VACANT: Self = Self {
        key: FragmentKey::ZERO,
        allowed: false,
        source_port: 0,
        destination_port: 0,
        expires_at: 0,
    };

    const fn is_expired(&self, now: Seconds) -> bool {
        now >= self.expires_at
    }
}

/// Per-core table of first-fragment verdicts. See the module documentation.
#[derive(Debug)]
pub struct FragmentTable {
    index: BucketIndex,
    records: Box<[FragmentRecord]>,
    capacity: usize,
    len: usize,
    timeout: Seconds,
    sweep_cursor: usize,
    counters: FragmentCounters,
}

impl FragmentTable {
    /// A table for up to `max_datagrams` fragmented datagrams in flight,
    /// each remembered for `timeout` seconds after its first fragment.
    pub fn new(max_datagrams: usize, timeout: Seconds) -> Result<Self, FragmentError> {
        if timeout == 0 {
            return Err(FragmentError::ZeroTimeout);
        }
        let index = BucketIndex::for_entries(max_datagrams)?;
        let records = vec![FragmentRecord::VACANT; index.slot_count()].into_boxed_slice();
        Ok(Self {
            index,
            records,
            capacity: max_datagrams,
            len: 0,
            timeout,
            sweep_cursor: 0,
            counters: FragmentCounters::default(),
        })
    }

    /// The most datagrams the table remembers at once.
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records held, including expired ones not yet reclaimed.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no record is held.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The table's counters.
    pub const fn counters(&self) -> &FragmentCounters {
        &self.counters
    }

    /// Starts loading the home bucket of `hash` and its likeliest record.
    pub fn prefetch(&self, hash: u64, prefetcher: &impl Prefetch) {
        self.index.prefetch(hash, prefetcher);
        if let Some(record) = self.records.get(self.index.preferred_slot(hash)) {
            prefetcher.prefetch(&record.allowed);
        }
    }

    fn find(&self, hash: u64, key: &FragmentKey) -> Option<usize> {
        self.index.find(hash, |slot| {
            self.records.get(slot).is_some_and(|r| r.key == *key)
        })
    }

    fn reclaim(&mut self, slot: usize) {
        if self.index.vacate(slot) {
            self.len -= 1;
            self.counters.expirations += 1;
        }
    }

    /// Records the verdict of a datagram's first fragment (offset 0, more
    /// fragments). Replaces an earlier record of the same key.
    pub fn record_first(
        &mut self,
        hash: u64,
        key: FragmentKey,
        verdict: FirstFragmentVerdict,
        now: Seconds,
    ) -> Result<(), FragmentError> {
        let (allowed, source_port, destination_port) = match verdict {
            FirstFragmentVerdict::Allow {
                source_port,
                destination_port,
            } => (true, source_port, destination_port),
            FirstFragmentVerdict::Deny => (false, 0, 0),
        };
        let record = FragmentRecord {
            key,
            allowed,
            source_port,
            destination_port,
            expires_at: now.saturating_add(self.timeout),
        };
        if let Some(slot) = self.find(hash, &key) {
            if let Some(existing) = self.records.get_mut(slot) {
                *existing = record;
                self.counters.records += 1;
                return Ok(());
            }
        }
        let full = self.len >= self.capacity;
        let records = &self.records;
        let free = self.index.find_free(hash, !full, |slot| {
            records.get(slot).is_some_and(|r| r.is_expired(now))
        });
        let Some(slot) = free else {
            return Err(if full {
                self.counters.record_table_full += 1;
                FragmentError::TableFull
            } else {
                self.counters.record_probe_limit += 1;
                FragmentError::ProbeLimit
            });
        };
        self.reclaim(slot);
        if let Some(place) = self.records.get_mut(slot) {
            *place = record;
            self.index.place(hash, slot);
            self.len += 1;
            self.counters.records += 1;
        }
        Ok(())
    }

    /// The verdict for a non-first fragment of `key`'s datagram.
    pub fn lookup(&mut self, hash: u64, key: &FragmentKey, now: Seconds) -> FragmentVerdict {
        let found = self.find(hash, key);
        let record = found.and_then(|slot| self.records.get(slot).copied());
        match (found, record) {
            (Some(slot), Some(record)) if record.is_expired(now) => {
                self.reclaim(slot);
                self.counters.unknown += 1;
                FragmentVerdict::Unknown
            }
            (Some(_), Some(record)) if record.allowed => FragmentVerdict::Allow {
                source_port: record.source_port,
                destination_port: record.destination_port,
            },
            (Some(_), Some(_)) => FragmentVerdict::Deny,
            _ => {
                self.counters.unknown += 1;
                FragmentVerdict::Unknown
            }
        }
    }

    /// Forgets a datagram (e.g. the caller knows it is complete). Returns
    /// whether a record was held.
    pub fn remove(&mut self, hash: u64, key: &FragmentKey) -> bool {
        let Some(slot) = self.find(hash, key) else {
            return false;
        };
        if self.index.vacate(slot) {
            self.len -= 1;
        }
        true
    }

    /// Reclaims the expired records of the next `max_buckets` buckets, like
    /// [`crate::FlowTable::expire`].
    pub fn expire(&mut self, now: Seconds, max_buckets: usize) -> usize {
        let mut reclaimed = 0;
        for _ in 0..max_buckets.min(self.index.bucket_count()) {
            let bucket = self.sweep_cursor;
            self.sweep_cursor = self.index.next_bucket(bucket);
            for slot in self.index.occupied_slots(bucket) {
                if self.records.get(slot).is_some_and(|r| r.is_expired(now)) {
                    self.reclaim(slot);
                    reclaimed += 1;
                }
            }
        }
        reclaimed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{FlowKey, IPPROTO_UDP};

    const ALLOW: FirstFragmentVerdict = FirstFragmentVerdict::Allow {
        source_port: 5000,
        destination_port: 53,
    };

    fn key(id: u16) -> FragmentKey {
        FragmentKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_UDP, id)
    }

    #[test]
    fn later_fragments_follow_the_first() {
        let mut table = FragmentTable::new(16, DEFAULT_FRAGMENT_TIMEOUT).unwrap();
        let k = key(7);
        table.record_first(k.hash(), k, ALLOW, 100).unwrap();
        let verdict = table.lookup(k.hash(), &k, 101);
        assert_eq!(
            verdict,
            FragmentVerdict::Allow {
                source_port: 5000,
                destination_port: 53
            }
        );
        // The recorded ports rebuild the key of the flow the datagram is in.
        let (flow, side) = FlowKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_UDP, 5000, 53);
        assert_eq!(flow.endpoint(side).1, 5000);

        let denied = key(8);
        table
            .record_first(denied.hash(), denied, FirstFragmentVerdict::Deny, 100)
            .unwrap();
        assert_eq!(
            table.lookup(denied.hash(), &denied, 101),
            FragmentVerdict::Deny
        );
        assert_eq!(table.len(), 2);
        assert_eq!(table.counters().records, 2);
    }

    #[test]
    fn a_fragment_before_its_first_is_unknown() {
        let mut table = FragmentTable::new(16, DEFAULT_FRAGMENT_TIMEOUT).unwrap();
        let k = key(9);
        assert_eq!(table.lookup(k.hash(), &k, 0), FragmentVerdict::Unknown);
        // The first fragment arriving later does not resurrect the dropped
        // one, but does admit the fragments after it.
        table.record_first(k.hash(), k, ALLOW, 1).unwrap();
        assert!(matches!(
            table.lookup(k.hash(), &k, 1),
            FragmentVerdict::Allow { .. }
        ));
        assert_eq!(table.counters().unknown, 1);
    }

    #[test]
    fn datagrams_differ_by_every_key_field() {
        let mut table = FragmentTable::new(16, DEFAULT_FRAGMENT_TIMEOUT).unwrap();
        let k = key(1);
        table.record_first(k.hash(), k, ALLOW, 0).unwrap();
        let others = [
            FragmentKey::new_v4(2, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_UDP, 1),
            FragmentKey::new_v4(1, [10, 0, 0, 3], [10, 0, 0, 2], IPPROTO_UDP, 1),
            FragmentKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 3], IPPROTO_UDP, 1),
            FragmentKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 2], 6, 1),
            FragmentKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_UDP, 2),
            // The reverse direction is another datagram.
            FragmentKey::new_v4(1, [10, 0, 0, 2], [10, 0, 0, 1], IPPROTO_UDP, 1),
            FragmentKey::new_v6(1, [0; 16], [0; 16], IPPROTO_UDP, 1),
        ];
        for other in others {
            assert_ne!(other, k);
            assert_eq!(
                table.lookup(other.hash(), &other, 1),
                FragmentVerdict::Unknown
            );
        }
    }

    #[test]
    fn records_expire_after_the_timeout_without_refresh() {
        let mut table = FragmentTable::new(16, 30).unwrap();
        let k = key(3);
        table.record_first(k.hash(), k, ALLOW, 100).unwrap();
        // Lookups do not extend the record.
        assert!(matches!(
            table.lookup(k.hash(), &k, 129),
            FragmentVerdict::Allow { .. }
        ));
        assert_eq!(table.lookup(k.hash(), &k, 130), FragmentVerdict::Unknown);
        assert_eq!(table.len(), 0);
        assert_eq!(table.counters().expirations, 1);
    }

    #[test]
    fn the_sweep_reclaims_and_a_new_first_fragment_replaces() {
        let mut table = FragmentTable::new(16, 30).unwrap();
        for id in 0..10 {
            let k = key(id);
            table
                .record_first(k.hash(), k, ALLOW, u32::from(id))
                .unwrap();
        }
        let k = key(9);
        table
            .record_first(k.hash(), k, FirstFragmentVerdict::Deny, 20)
            .unwrap();
        assert_eq!(table.len(), 10);
        assert_eq!(table.lookup(k.hash(), &k, 20), FragmentVerdict::Deny);
        // At 35 the records of ids 0..=5 (recorded at 0..=5) have expired.
        let mut reclaimed = 0;
        for _ in 0..table.index.bucket_count() {
            reclaimed += table.expire(35, 1);
        }
        assert_eq!(reclaimed, 6);
        assert_eq!(table.len(), 4);
        assert!(table.remove(k.hash(), &k));
        assert!(!table.remove(k.hash(), &k));
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn a_full_table_refuses_until_records_expire() {
        let mut table = FragmentTable::new(4, 30).unwrap();
        for id in 0..4 {
            let k = key(id);
            table.record_first(k.hash(), k, ALLOW, 0).unwrap();
        }
        let k = key(100);
        assert_eq!(
            table.record_first(k.hash(), k, ALLOW, 10),
            Err(FragmentError::TableFull)
        );
        assert_eq!(table.counters().record_table_full, 1);
        // Once the others expired, the sweep makes room.
        table.expire(30, usize::MAX);
        assert_eq!(table.record_first(k.hash(), k, ALLOW, 30), Ok(()));
    }

    #[test]
    fn a_crowded_neighbourhood_hits_the_probe_limit() {
        let mut table = FragmentTable::new(1024, 30).unwrap();
        // Hashes with the same home bucket (low bits 0) and distinct tags.
        let window = crate::index::PROBE_BUCKETS * crate::index::SLOTS_PER_BUCKET;
        for id in 0..window {
            let k = key(id as u16);
            let hash = (id as u64 + 1) << 56;
            table.record_first(hash, k, ALLOW, 0).unwrap();
        }
        let k = key(999);
        assert_eq!(
            table.record_first(1 << 40, k, ALLOW, 0),
            Err(FragmentError::ProbeLimit)
        );
    }

    #[test]
    fn creation_is_validated() {
        assert_eq!(
            FragmentTable::new(16, 0).unwrap_err(),
            FragmentError::ZeroTimeout
        );
        assert!(matches!(
            FragmentTable::new(0, 30),
            Err(FragmentError::Capacity(_))
        ));
    }
}

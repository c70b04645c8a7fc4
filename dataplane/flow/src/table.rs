//! The per-core flow table: fixed capacity, bounded probing, incremental
//! expiry.
//!
//! One table per worker core, owned by that core's pipeline (no sharing, no
//! locks). Step 6 of the packet path looks every packet up here; step 7
//! inserts the flows the policy admits. The VPP habit makes the lookups of a
//! burst overlap their cache misses:
//!
//! ```
//! # use palisade_flow::{FlowTable, FlowKey, IPPROTO_UDP, PlainLoad};
//! # let mut table = FlowTable::with_capacity(1024).unwrap();
//! # let keys = [FlowKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_UDP, 1, 2).0; 4];
//! # let now = 0;
//! let hashes = keys.map(|key| key.hash());          // 1. hash the burst
//! for &hash in &hashes {                            // 2. prefetch every bucket
//!     table.prefetch(hash, &PlainLoad);             //    (the appliance passes
//! }                                                 //    a real prefetch)
//! for (key, hash) in keys.iter().zip(hashes) {      // 3. look up each packet
//!     if let Some(flow) = table.lookup(hash, key, now) { /* … */ }
//! }
//! ```
//!
//! Capacity is the conntrack allowance: `with_capacity(n)` admits at most
//! `n` flows and lays out twice as many slots, so probing stays short.
//! Nothing allocates after creation. A full table refuses new flows
//! ([`InsertError::TableFull`], the caller's `conntrack_allowance_exceeded`)
//! and never evicts a live flow for a new one; only expired entries are
//! reclaimed.
//!
//! Expiry: an expired entry is invisible to `lookup` from the second it
//! expires (and is reclaimed there and by `insert` when met), so correctness
//! never depends on the sweep. [`FlowTable::expire`] walks `max_buckets`
//! buckets per call from a cursor to return the memory of entries nobody
//! looks up any more. Worst-case lag between expiry and reclamation:
//! `bucket_count() / max_buckets` calls. Until reclaimed, an expired entry
//! still counts in `len()` (so against the allowance) — e.g. 2^18 buckets
//! (1 M flows) swept 64 per burst are fully swept every 4096 bursts. The
//! sweep is memory-bound (it reads every occupied entry of the buckets it
//! visits), so a small `max_buckets` is enough: pick it so that a full cycle
//! takes about the shortest idle timeout (30 s) at the expected call rate,
//! and call it on idle polls too, so that a quiet core still sweeps.

use thiserror::Error;

use crate::index::{BucketIndex, CapacityError, IndexLines, Tagged};
use crate::key::{Direction, FlowKey, IPPROTO_TCP, Side};
use crate::pages::PageArray;
use crate::prefetch::Prefetch;
use crate::state::{
    FinsSeen, FlowState, FlowUpdate, Seconds, TcpFlags, Timeouts, initial_expiry, initial_fins,
    transition,
};

/// Why a new flow was not inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum InsertError {
    /// The table holds as many flows as its capacity allows: the
    /// conntrack allowance is exceeded.
    #[error("flow table full")]
    TableFull,
    /// Every slot the key may occupy holds a live flow (a crowded
    /// neighbourhood, e.g. a hash-collision flood); counted with
    /// `TableFull` as an allowance refusal by the caller.
    #[error("no free slot within the probe limit")]
    ProbeLimit,
    /// A live flow with this key exists; use `lookup` or
    /// `lookup_or_insert`.
    #[error("flow already present")]
    AlreadyPresent,
}

/// Counters the data plane exports, per core, summed when scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTableCounters {
    /// Flows inserted.
    pub inserts: u64,
    /// Inserts refused because the table was full.
    pub insert_table_full: u64,
    /// Inserts refused by the probe limit.
    pub insert_probe_limit: u64,
    /// Expired entries reclaimed (by the sweep, a lookup or an insert).
    pub expirations: u64,
    /// Live entries removed by `remove`.
    pub removals: u64,
}

/// What the data plane knows about a new flow when it inserts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowInit {
    /// The side of the key that sent the first packet.
    pub initiator: Side,
    /// TCP flags of the first packet (ignored for other protocols); they
    /// pick the initial state.
    pub tcp_flags: TcpFlags,
    /// See [`FlowEntry::tracked`].
    pub tracked: bool,
    /// See [`FlowEntry::generation`].
    pub generation: u32,
    /// See [`FlowEntry::initiator_eni`].
    pub initiator_eni: u32,
    /// See [`FlowEntry::responder_eni`].
    pub responder_eni: u32,
    /// See [`FlowEntry::admitted_by`].
    pub admitted_by: u16,
    /// See [`FlowEntry::verdict_flags`].
    pub verdict_flags: u8,
}

/// One tracked connection: the key, its protocol state and what the data
/// plane caches to forward its packets without a policy evaluation.
///
/// The public fields belong to the data plane: this crate stores them and
/// never reads them.
///
/// Plain old data (`repr(C)`, no padding, every byte pattern valid) so that
/// the table can keep its entries in a huge-page mapping ([`crate::pages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct FlowEntry {
    key: FlowKey,
    /// A [`FlowState`] as its `u8` value.
    state: u8,
    /// Bit 0: the initiator is the key's high side; bit 1: FIN from the
    /// initiator; bit 2: FIN from the responder.
    connection_bits: u8,
    /// See [`Self::tracked`]; 0 or 1.
    tracked: u8,
    /// Cached verdict bits, e.g. each direction's NACL verdict for
    /// `generation`.
    pub verdict_flags: u8,
    /// The rule / group tag that admitted the flow, for counters and logs.
    pub admitted_by: u16,
    expires_at: Seconds,
    /// The policy generation that last validated the flow. On a newer
    /// snapshot the caller re-checks lazily and stores the new number.
    pub generation: u32,
    /// The ENI the initiator sent from: where replies are delivered.
    pub initiator_eni: u32,
    /// The ENI the initiator's packets go to.
    pub responder_eni: u32,
}

const _: () = assert!(size_of::<FlowEntry>() <= 64);

const INITIATOR_IS_HIGH: u8 = 1 << 0;
const FIN_FORWARD: u8 = 1 << 1;
const FIN_REVERSE: u8 = 1 << 2;

impl FlowEntry {
    /// Filler for empty slots; never visible through the API.
    const VACANT: Self = Self {
        key: FlowKey::ZERO,
        state: FlowState::Other as u8,
        connection_bits: 0,
        tracked: 0,
        verdict_flags: 0,
        admitted_by: 0,
        expires_at: 0,
        generation: 0,
        initiator_eni: 0,
        responder_eni: 0,
    };

    fn new(key: FlowKey, init: &FlowInit, now: Seconds, timeouts: &Timeouts) -> Self {
        let state = FlowState::initial(key.protocol(), init.tcp_flags);
        let fins = initial_fins(key.protocol(), init.tcp_flags);
        let mut entry = Self {
            key,
            state: state as u8,
            connection_bits: 0,
            tracked: u8::from(init.tracked),
            verdict_flags: init.verdict_flags,
            admitted_by: init.admitted_by,
            expires_at: initial_expiry(state, now, timeouts),
            generation: init.generation,
            initiator_eni: init.initiator_eni,
            responder_eni: init.responder_eni,
        };
        entry.set_bits(init.initiator == Side::High, fins);
        entry
    }

    fn set_bits(&mut self, initiator_is_high: bool, fins: FinsSeen) {
        let bit = |on: bool, mask: u8| if on { mask } else { 0 };
        self.connection_bits = bit(initiator_is_high, INITIATOR_IS_HIGH)
            | bit(fins.forward, FIN_FORWARD)
            | bit(fins.reverse, FIN_REVERSE);
    }

    /// The flow's key.
    pub const fn key(&self) -> &FlowKey {
        &self.key
    }

    /// The protocol state.
    pub const fn state(&self) -> FlowState {
        FlowState::from_u8(self.state)
    }

    /// Whether the flow is tracked (SEMANTICS.md): an untracked flow is
    /// admitted by rules that allow the reply traffic by themselves, so it
    /// must be re-validated against every new policy generation and dropped
    /// when no longer allowed. Tracked flows survive rule changes.
    pub const fn tracked(&self) -> bool {
        self.tracked != 0
    }

    /// The side of the key that opened the flow.
    pub const fn initiator(&self) -> Side {
        if self.connection_bits & INITIATOR_IS_HIGH == 0 {
            Side::Low
        } else {
            Side::High
        }
    }

    /// The direction of a packet sent by `side` (from [`FlowKey::new_v4`]).
    pub fn direction(&self, side: Side) -> Direction {
        if side == self.initiator() {
            Direction::Forward
        } else {
            Direction::Reverse
        }
    }

    /// FINs seen so far.
    pub const fn fins(&self) -> FinsSeen {
        FinsSeen {
            forward: self.connection_bits & FIN_FORWARD != 0,
            reverse: self.connection_bits & FIN_REVERSE != 0,
        }
    }

    /// The second from which the flow no longer exists.
    pub const fn expires_at(&self) -> Seconds {
        self.expires_at
    }

    /// Whether the flow has expired at `now`.
    pub const fn is_expired(&self, now: Seconds) -> bool {
        now >= self.expires_at
    }

    /// Applies one packet of the flow: advances the state machine and
    /// refreshes the idle timer (see [`crate::state`]). `side` comes from the
    /// packet's key; `tcp_flags` is ignored for other protocols.
    #[inline]
    pub fn update(
        &mut self,
        side: Side,
        tcp_flags: TcpFlags,
        now: Seconds,
        timeouts: &Timeouts,
    ) -> FlowUpdate {
        self.update_with(side, tcp_flags, now, || *timeouts)
    }

    /// [`Self::update`] with the timeouts asked for only once needed: a
    /// steady state reads one of them, and a caller that derives them per
    /// packet (from both ends' settings) then computes that one alone.
    #[inline(always)]
    pub fn update_with(
        &mut self,
        side: Side,
        tcp_flags: TcpFlags,
        now: Seconds,
        timeouts: impl FnOnce() -> Timeouts,
    ) -> FlowUpdate {
        let flags = if self.key.protocol() == IPPROTO_TCP {
            tcp_flags
        } else {
            TcpFlags::NONE
        };
        // The steady states, nearly every packet: an established TCP
        // connection's segment without FIN or RST, or a UDP stream's
        // datagram, only restarts the idle timer. That is `transition`'s
        // answer for them (a property test holds the two together),
        // without its general walk.
        let steady = match self.state() {
            FlowState::TcpEstablished => flags.0 & (TcpFlags::FIN.0 | TcpFlags::RST.0) == 0,
            FlowState::UdpStream => true,
            _ => false,
        };
        if steady {
            self.expires_at = now.saturating_add(timeouts().for_state(self.state()));
            return FlowUpdate::Forward;
        }
        self.update_by_transition(side, flags, now, &timeouts())
    }

    /// [`Self::update`] through the full state machine.
    fn update_by_transition(
        &mut self,
        side: Side,
        flags: TcpFlags,
        now: Seconds,
        timeouts: &Timeouts,
    ) -> FlowUpdate {
        let next = transition(
            self.state(),
            self.fins(),
            self.expires_at,
            self.direction(side),
            flags,
            now,
            timeouts,
        );
        self.state = next.state as u8;
        self.expires_at = next.expires_at;
        self.set_bits(self.initiator() == Side::High, next.fins);
        next.update
    }
}

/// What [`FlowTable::lookup_unscoped`] found.
#[derive(Debug)]
pub enum Unscoped<'a> {
    /// A live flow with the key up to its scope (perhaps another scope's).
    Live(&'a mut FlowEntry),
    /// No entry at all with the key up to its scope, live or expired: the
    /// scoped key is not in the table either, so
    /// [`FlowTable::insert_missing`] may insert it.
    Absent,
    /// An expired entry came first; a scoped [`FlowTable::lookup`]
    /// decides (and reclaims it).
    Other,
}

/// Whether `lookup_or_insert` found the flow or created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The flow existed; its state was not touched.
    Existing,
    /// The flow was created from the given `FlowInit`.
    Inserted,
}

/// What the prefetch stages of a burst read of a [`FlowTable`]: its
/// bucket tags and entries, viewed once (see [`FlowTable::lines`]).
#[derive(Debug, Clone, Copy)]
pub struct FlowLines<'a> {
    index: IndexLines<'a>,
    entries: &'a [FlowEntry],
}

impl FlowLines<'_> {
    /// Starts loading what `lookup(hash, …)` will read: the home bucket's
    /// tags and the entry in the slot the key most likely occupies.
    /// `prefetcher` is the instruction to use (see [`crate::prefetch`]).
    #[inline(always)]
    pub fn prefetch(&self, hash: u64, prefetcher: &impl Prefetch) {
        self.index.prefetch(hash, prefetcher);
        if let Some(entry) = self.entries.get(self.index.preferred_slot(hash)) {
            prefetcher.prefetch(&entry.state);
        }
    }

    /// The second prefetch stage, once the home bucket's tags (started by
    /// [`Self::prefetch`]) have arrived: starts loading the entry the tags
    /// point at when it is not the preferred slot the first stage already
    /// asked for. At the tables' 50 % load a key often sits one or two
    /// slots past its preferred one; without this its entry is a miss
    /// nothing overlaps.
    ///
    /// Returns whether the tags say the key is most likely absent (no slot
    /// of its home bucket carries its tag): a caller with a second place to
    /// look for such keys (the data plane's denied-flow memory) can start
    /// that line loading too.
    #[inline(always)]
    pub fn prefetch_tagged(&self, hash: u64, prefetcher: &impl Prefetch) -> bool {
        match self.index.tagged_slot(hash) {
            Tagged::Displaced(slot) => {
                if let Some(entry) = self.entries.get(slot) {
                    prefetcher.prefetch(&entry.state);
                }
                false
            }
            Tagged::Preferred => false,
            Tagged::Untagged => true,
        }
    }
}

/// A per-core connection-tracking table. See the module documentation.
#[derive(Debug)]
pub struct FlowTable {
    index: BucketIndex,
    entries: PageArray<FlowEntry>,
    capacity: usize,
    len: usize,
    sweep_cursor: usize,
    counters: FlowTableCounters,
}

impl FlowTable {
    /// A table admitting up to `max_flows` flows, with `2 × max_flows`
    /// slots rounded up to a power-of-two number of buckets. All memory is
    /// allocated and written here, so the packet path takes no page fault.
    pub fn with_capacity(max_flows: usize) -> Result<Self, CapacityError> {
        let index = BucketIndex::for_entries(max_flows)?;
        let entries = PageArray::new(index.slot_count(), FlowEntry::VACANT)
            .map_err(|e| CapacityError::Map { kind: e.kind() })?;
        Ok(Self {
            index,
            entries,
            capacity: max_flows,
            len: 0,
            sweep_cursor: 0,
            counters: FlowTableCounters::default(),
        })
    }

    /// The most flows the table admits (the conntrack allowance).
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries held, including expired ones not yet reclaimed.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no entry.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left (`conntrack_allowance_available`).
    pub const fn available(&self) -> usize {
        self.capacity.saturating_sub(self.len)
    }

    /// Number of buckets, the unit of [`Self::expire`]'s work.
    pub fn bucket_count(&self) -> usize {
        self.index.bucket_count()
    }

    /// The table's counters.
    pub const fn counters(&self) -> &FlowTableCounters {
        &self.counters
    }

    /// Starts loading what `lookup(hash, …)` will read (see
    /// [`FlowLines::prefetch`]).
    #[inline(always)]
    pub fn prefetch(&self, hash: u64, prefetcher: &impl Prefetch) {
        self.lines().prefetch(hash, prefetcher);
    }

    /// The table viewed once for a run of prefetches: a burst's prefetches
    /// through one view pay for the huge-page mappings' bounds and
    /// alignment checks once, not twice per packet.
    #[inline(always)]
    pub fn lines(&self) -> FlowLines<'_> {
        FlowLines {
            index: self.index.lines(),
            entries: self.entries.as_slice(),
        }
    }

    #[inline]
    fn find(&self, hash: u64, key: &FlowKey) -> Option<usize> {
        let entries = self.entries.as_slice();
        self.index.find(hash, |slot| {
            entries.get(slot).is_some_and(|e| e.key == *key)
        })
    }

    /// The slot of `key`'s live flow if it sits in its preferred slot,
    /// found from the entry alone, without the bucket's tags: a hit on an
    /// established flow then waits for one cache line, not two.
    ///
    /// Sound because of the table's invariant: an entry that is not expired
    /// is occupied. Entries start expired (`VACANT`), and [`Self::vacate`]
    /// marks every entry it frees expired for good, so an unexpired entry
    /// with `key` can only be `key`'s one live flow.
    #[inline(always)]
    fn find_live_in_preferred_slot(&self, hash: u64, key: &FlowKey, now: Seconds) -> Option<usize> {
        let slot = self.index.preferred_slot(hash);
        let entry = self.entries.get(slot)?;
        (entry.key == *key && !entry.is_expired(now)).then_some(slot)
    }

    /// Frees `slot` in the index and marks its entry expired for good,
    /// which [`Self::find_live_in_preferred_slot`] relies on. Returns
    /// whether the slot was occupied.
    fn vacate(&mut self, slot: usize) -> bool {
        if !self.index.vacate(slot) {
            return false;
        }
        if let Some(entry) = self.entries.as_mut_slice().get_mut(slot) {
            entry.expires_at = 0;
        }
        true
    }

    fn reclaim(&mut self, slot: usize) {
        if self.vacate(slot) {
            self.len -= 1;
            self.counters.expirations += 1;
        }
    }

    /// The live flow of `key`. `hash` must be `key.hash()` (or the same
    /// seeded hash the flow was inserted with). An expired entry is absent
    /// (and is reclaimed on the spot).
    ///
    /// The hit in the key's preferred slot is inlined into the caller; the
    /// rest (tags, probing, reclaiming) is a call. Inlined whole, LLVM kept
    /// it out of line, and the call's register saves were a tenth of an
    /// established packet's lookup.
    #[inline(always)]
    pub fn lookup(&mut self, hash: u64, key: &FlowKey, now: Seconds) -> Option<&mut FlowEntry> {
        if let Some(slot) = self.find_live_in_preferred_slot(hash, key, now) {
            return self.entries.get_mut(slot);
        }
        self.lookup_probing(hash, key, now)
    }

    /// The flow whose key equals `key` up to its VPC scope
    /// ([`FlowKey::same_unscoped`]), for a caller that does not know the
    /// scope yet and checks the flow's endpoints itself; `hash` is `key`'s.
    /// With overlapping address blocks another scope's flow may answer, so
    /// the caller must tell it from its own. Reclaims nothing.
    #[inline(always)]
    pub fn lookup_unscoped(&mut self, hash: u64, key: &FlowKey, now: Seconds) -> Unscoped<'_> {
        let slot = self.index.preferred_slot(hash);
        if self
            .entries
            .get(slot)
            .is_some_and(|e| e.key.same_unscoped(key) && !e.is_expired(now))
        {
            return match self.entries.get_mut(slot) {
                Some(entry) => Unscoped::Live(entry),
                None => Unscoped::Absent,
            };
        }
        self.lookup_unscoped_probing(hash, key, now)
    }

    /// [`Self::lookup_unscoped`] past the preferred slot.
    #[inline(never)]
    fn lookup_unscoped_probing(&mut self, hash: u64, key: &FlowKey, now: Seconds) -> Unscoped<'_> {
        let entries = self.entries.as_slice();
        let Some(slot) = self.index.find(hash, |slot| {
            entries.get(slot).is_some_and(|e| e.key.same_unscoped(key))
        }) else {
            return Unscoped::Absent;
        };
        match self.entries.as_mut_slice().get_mut(slot) {
            Some(entry) if !entry.is_expired(now) => Unscoped::Live(entry),
            _ => Unscoped::Other,
        }
    }

    /// [`Self::lookup`] past the preferred slot.
    #[inline(never)]
    fn lookup_probing(&mut self, hash: u64, key: &FlowKey, now: Seconds) -> Option<&mut FlowEntry> {
        let slot = self.find(hash, key)?;
        if self.entries.as_slice().get(slot)?.is_expired(now) {
            self.reclaim(slot);
            return None;
        }
        self.entries.as_mut_slice().get_mut(slot)
    }

    /// Inserts a new flow for `key`, first packet described by `init`.
    pub fn insert(
        &mut self,
        hash: u64,
        key: FlowKey,
        init: &FlowInit,
        now: Seconds,
        timeouts: &Timeouts,
    ) -> Result<&mut FlowEntry, InsertError> {
        // `lookup`'s answer without its preferred-slot fast path, which
        // serves hits: the caller has usually just missed (a new flow),
        // and `find` alone finds a live key wherever it sits.
        if let Some(slot) = self.find(hash, &key) {
            match self.entries.as_slice().get(slot) {
                Some(entry) if entry.is_expired(now) => self.reclaim(slot),
                Some(_) => return Err(InsertError::AlreadyPresent),
                None => {}
            }
        }
        self.insert_absent(hash, key, init, now, timeouts)
    }

    /// [`Self::insert`] for a caller whose [`Self::lookup`] of `key` has
    /// just answered `None` (or whose [`Self::remove`] has just taken it
    /// out), with no change to the table since: the key has no entry then,
    /// live or expired (`lookup` reclaims an expired one), so the search
    /// `insert` starts with is skipped. A new flow's packet pays for one
    /// search, not two.
    pub fn insert_missing(
        &mut self,
        hash: u64,
        key: FlowKey,
        init: &FlowInit,
        now: Seconds,
        timeouts: &Timeouts,
    ) -> Result<&mut FlowEntry, InsertError> {
        debug_assert!(
            self.find(hash, &key).is_none(),
            "insert_missing for a key the table holds"
        );
        self.insert_absent(hash, key, init, now, timeouts)
    }

    /// The live flow of `key`, or a new one from `init` if there is none.
    pub fn lookup_or_insert(
        &mut self,
        hash: u64,
        key: FlowKey,
        init: &FlowInit,
        now: Seconds,
        timeouts: &Timeouts,
    ) -> Result<(&mut FlowEntry, Presence), InsertError> {
        if let Some(slot) = self.find_live_in_preferred_slot(hash, &key, now) {
            return match self.entries.as_mut_slice().get_mut(slot) {
                Some(entry) => Ok((entry, Presence::Existing)),
                None => Err(InsertError::ProbeLimit),
            };
        }
        if let Some(slot) = self.find(hash, &key) {
            if self
                .entries
                .as_slice()
                .get(slot)
                .is_some_and(|e| !e.is_expired(now))
            {
                return match self.entries.as_mut_slice().get_mut(slot) {
                    Some(entry) => Ok((entry, Presence::Existing)),
                    None => Err(InsertError::ProbeLimit),
                };
            }
            self.reclaim(slot);
        }
        self.insert_absent(hash, key, init, now, timeouts)
            .map(|entry| (entry, Presence::Inserted))
    }

    /// Inserts `key`, known to have no live entry.
    fn insert_absent(
        &mut self,
        hash: u64,
        key: FlowKey,
        init: &FlowInit,
        now: Seconds,
        timeouts: &Timeouts,
    ) -> Result<&mut FlowEntry, InsertError> {
        let full = self.len >= self.capacity;
        let entries = self.entries.as_slice();
        let free = self.index.find_free(hash, !full, |slot| {
            entries.get(slot).is_some_and(|e| e.is_expired(now))
        });
        let Some(slot) = free else {
            return Err(if full {
                self.counters.insert_table_full += 1;
                InsertError::TableFull
            } else {
                self.counters.insert_probe_limit += 1;
                InsertError::ProbeLimit
            });
        };
        // Mostly an empty slot: nothing to reclaim, no call.
        if self.index.is_occupied(slot) {
            self.reclaim(slot);
        }
        let Some(entry) = self.entries.as_mut_slice().get_mut(slot) else {
            return Err(InsertError::ProbeLimit);
        };
        *entry = FlowEntry::new(key, init, now, timeouts);
        self.index.place(hash, slot);
        self.len += 1;
        self.counters.inserts += 1;
        Ok(entry)
    }

    /// Removes the flow of `key`; returns whether a live flow was removed
    /// (an expired one is reclaimed and counted as an expiration). The
    /// caller removes on [`FlowUpdate::Restart`], or when a re-validation
    /// finds an untracked flow no longer allowed.
    pub fn remove(&mut self, hash: u64, key: &FlowKey, now: Seconds) -> bool {
        let Some(slot) = self.find(hash, key) else {
            return false;
        };
        if self
            .entries
            .as_slice()
            .get(slot)
            .is_some_and(|e| e.is_expired(now))
        {
            self.reclaim(slot);
            return false;
        }
        if self.vacate(slot) {
            self.len -= 1;
            self.counters.removals += 1;
        }
        true
    }

    /// Starts loading the occupied entries the next
    /// [`expire`](Self::expire)`(_, max_buckets)` will read. Called right
    /// after a sweep, it gives the lines a whole burst to arrive: the sweep
    /// reads every occupied entry of its buckets, on a table larger than
    /// the caches a miss each, and its loop has too little work to overlap
    /// them.
    pub fn prefetch_sweep(&self, max_buckets: usize, prefetcher: &impl Prefetch) {
        let entries = self.entries.as_slice();
        let mut bucket = self.sweep_cursor;
        for _ in 0..max_buckets.min(self.index.bucket_count()) {
            for slot in self.index.occupied_slots(bucket) {
                if let Some(entry) = entries.get(slot) {
                    prefetcher.prefetch(&entry.state);
                }
            }
            bucket = self.index.next_bucket(bucket);
        }
    }

    /// Reclaims the expired entries of the next `max_buckets` buckets and
    /// advances the cursor; returns how many were reclaimed. Call once per
    /// burst (and on idle polls): cost is bounded by `max_buckets × 8`
    /// entry checks.
    pub fn expire(&mut self, now: Seconds, max_buckets: usize) -> usize {
        let mut reclaimed = 0;
        for _ in 0..max_buckets.min(self.index.bucket_count()) {
            let bucket = self.sweep_cursor;
            self.sweep_cursor = self.index.next_bucket(bucket);
            for slot in self.index.occupied_slots(bucket) {
                if self
                    .entries
                    .as_slice()
                    .get(slot)
                    .is_some_and(|e| e.is_expired(now))
                {
                    self.reclaim(slot);
                    reclaimed += 1;
                }
            }
        }
        reclaimed
    }
}

#[cfg(test)]
mod tests;

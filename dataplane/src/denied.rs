//! The denied-flow memory: a flood of denied packets costs a hashed lookup
//! per packet, not a classification.
//!
//! Without it every packet of a denied flow is decided from scratch (the
//! sender by L2 address, the source check, the route, both NACLs, both
//! sides' security groups), two to four times what an established packet
//! costs: a lever for anyone who can send traffic the rules refuse. With
//! it, the first packet of a denied flow is classified and the verdict is
//! remembered; the flow's next packets find it by the hash the first pass
//! computed for the flow-table lookup anyway.
//!
//! What is remembered, and why that is exact:
//!
//! - **Only the rules' denials** (NACL, egress or ingress security group):
//!   a function of the policy snapshot, the sending ENI (or uplink) and
//!   the packet's addresses, protocol and ports, which the key and `side`
//!   fix. ICMP is never remembered (its verdict also depends on type and
//!   code, which the key does not hold); a full table is not a denial (it
//!   may have room for the next packet).
//! - **For one policy generation**: an entry of another generation is
//!   ignored, so the first packet after a publish is decided by the new
//!   rules, as AWS decides it.
//! - **For one sender**: the entry names the ENI (or the uplink) that
//!   sent the denied packet, and a hit requires the packet to come from it
//!   (the established lane's test, by port, VLAN and MAC).
//! - **With its counts**: the packet is still a drop for the same
//!   [`DropReason`], and the per-group counters are bumped exactly as the
//!   classification bumped them ([`GroupTally`]); the hit itself is counted
//!   in `WorkerCounters::denied_remembered`.
//!
//! Shape (as VPP's and DPDK's caches of negative results): a fixed array
//! of one-cache-line entries allocated when the worker is created, apart
//! from the flow table, so a denied flow never takes a tracked
//! connection's room nor counts against the conntrack allowance. Each key
//! has two candidate slots from two halves of its hash: a lookup reads
//! the first (prefetched a few packets ahead when the flow table's bucket
//! tags show no flow for the key) and, only if it holds another key, the
//! second; a new denial
//! takes a dead candidate (vacant, expired or of another generation) or
//! else the one closer to expiry. Entries live a short, fixed time from
//! the denial (not refreshed by hits), so a flood re-classifies each of its
//! flows once per timeout at most, and the memory turns over to new flows.

use palisade_flow::{FlowKey, Prefetch, Seconds, Side};

use crate::verdict::DropReason;

/// How long a denial is remembered by default, in seconds.
pub const DEFAULT_DENIED_TIMEOUT: Seconds = 2;

/// What one side's security groups counted for a classified packet (see
/// `Worker::count_group_tallies`), so that a remembered denial counts the
/// same without looking the side's ENI up again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupTally {
    /// Nothing counted: no groups on this side (the uplink) or not checked.
    None,
    /// Every group of the set with this index (a snapshot's group-set
    /// index) denied it.
    AllDenied(u32),
    /// The group with this index (a snapshot's group index) allowed it.
    Allowed(u32),
}

/// [`GroupTally`] in a `u32`, to fit the entry in a cache line.
const TALLY_NONE: u32 = u32::MAX;
const TALLY_ALL_DENIED: u32 = 1 << 31;

impl GroupTally {
    fn encode(self) -> u32 {
        match self {
            GroupTally::AllDenied(set) if set < TALLY_ALL_DENIED => set | TALLY_ALL_DENIED,
            GroupTally::Allowed(group) if group < TALLY_ALL_DENIED => group,
            // Indices past 2^31 - 1 (never in a snapshot) are not counted.
            _ => TALLY_NONE,
        }
    }

    fn decode(bits: u32) -> Self {
        match bits {
            TALLY_NONE => GroupTally::None,
            b if b & TALLY_ALL_DENIED != 0 => GroupTally::AllDenied(b & !TALLY_ALL_DENIED),
            b => GroupTally::Allowed(b),
        }
    }
}

/// A denial as remembered: the reason and what it counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The drop reason the classification gave.
    pub reason: DropReason,
    /// The sender as a flow caches it (an ENI index, or the uplink's mark).
    pub sender: u32,
    /// The sender's egress groups' count.
    pub egress: GroupTally,
    /// The receiver's ingress groups' count.
    pub ingress: GroupTally,
}

/// One remembered denial: a cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Entry {
    /// The generation that denied; entries of another are dead.
    generation: u32,
    /// The second from which the entry is dead; 0 for a vacant slot.
    expires_at: Seconds,
    /// [`Denial::sender`].
    sender: u32,
    /// [`Denial::egress`], [`Denial::ingress`], encoded.
    egress: u32,
    ingress: u32,
    /// The key without its scope: a plain frame knows no scope before it
    /// is routed, and the sender and addresses fix it anyway.
    key: FlowKey,
    side: Side,
    reason: DropReason,
}

const _: () = assert!(size_of::<Entry>() == 64);

impl Entry {
    fn vacant() -> Entry {
        Entry {
            generation: 0,
            expires_at: 0,
            sender: 0,
            egress: TALLY_NONE,
            ingress: TALLY_NONE,
            key: FlowKey::new_v4(0, [0; 4], [0; 4], 0, 0, 0).0,
            side: Side::Low,
            reason: DropReason::Malformed,
        }
    }

    #[inline(always)]
    fn live(&self, generation: u32, now: Seconds) -> bool {
        self.generation == generation && now < self.expires_at
    }

    #[inline(always)]
    fn denial(&self) -> Denial {
        Denial {
            reason: self.reason,
            sender: self.sender,
            egress: GroupTally::decode(self.egress),
            ingress: GroupTally::decode(self.ingress),
        }
    }

    #[inline(always)]
    fn is(&self, key: &FlowKey, side: Side) -> bool {
        self.side == side && self.key.same_unscoped(key)
    }
}

/// Counters of the memory itself (what it holds and turns over).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeniedCounters {
    /// Denials remembered.
    pub remembered: u64,
    /// Live entries of other flows overwritten by a new denial (both
    /// candidates were live): the memory is too small for the flood.
    pub displaced: u64,
}

/// The denied-flow memory of one worker. See the module documentation.
#[derive(Debug)]
pub struct DeniedFlows {
    entries: Vec<Entry>,
    /// `entries.len() - 1`; the length is a power of two (or zero).
    mask: usize,
    timeout: Seconds,
    counters: DeniedCounters,
}

impl DeniedFlows {
    /// A memory of `capacity` entries (rounded up to a power of two; 0
    /// turns it off) remembering each denial for `timeout` seconds (0
    /// turns it off too). All its memory is allocated here.
    pub fn new(capacity: usize, timeout: Seconds) -> Self {
        let len = if capacity == 0 || timeout == 0 {
            0
        } else {
            capacity.next_power_of_two()
        };
        DeniedFlows {
            entries: vec![Entry::vacant(); len],
            mask: len.wrapping_sub(1),
            timeout,
            counters: DeniedCounters::default(),
        }
    }

    /// How many denials it holds at most.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Its counters.
    pub fn counters(&self) -> &DeniedCounters {
        &self.counters
    }

    /// The key's two candidate slots, from the hash's two halves (the flow
    /// table uses its low bits too, but the tables are apart).
    #[inline(always)]
    fn slots(&self, hash: u64) -> (usize, usize) {
        (hash as usize & self.mask, (hash >> 32) as usize & self.mask)
    }

    /// Starts loading the first slot `find(hash, …)` reads.
    #[inline(always)]
    pub fn prefetch(&self, hash: u64, prefetcher: &impl Prefetch) {
        if let Some(entry) = self.entries.get(self.slots(hash).0) {
            prefetcher.prefetch(&entry.expires_at);
        }
    }

    /// The live denial of the packet sent by `side` of `key` (its scope is
    /// not compared) under `generation`; `hash` is the key's.
    #[inline(always)]
    pub fn find(
        &self,
        hash: u64,
        key: &FlowKey,
        side: Side,
        generation: u32,
        now: Seconds,
    ) -> Option<Denial> {
        let (first, second) = self.slots(hash);
        let hit = |slot: usize| {
            self.entries
                .get(slot)
                .filter(|e| e.is(key, side) && e.live(generation, now))
        };
        hit(first).or_else(|| hit(second)).map(Entry::denial)
    }

    /// Remembers a denial of the packet sent by `side` of `key` under
    /// `generation`, from `now` for the memory's timeout.
    pub fn remember(
        &mut self,
        hash: u64,
        key: &FlowKey,
        side: Side,
        generation: u32,
        now: Seconds,
        denial: Denial,
    ) {
        let (first, second) = self.slots(hash);
        let (Some(&a), Some(&b)) = (self.entries.get(first), self.entries.get(second)) else {
            return;
        };
        // The key's own slot if it has one (expired, or of an older
        // generation), else a dead one, else one whose denial moves to its
        // own other slot (one cuckoo step), else the one closer to its end.
        let slot = if a.is(key, side) || !a.live(generation, now) {
            first
        } else if b.is(key, side) || !b.live(generation, now) {
            second
        } else if let Some(slot) = self.move_aside(first, generation, now) {
            slot
        } else if let Some(slot) = self.move_aside(second, generation, now) {
            slot
        } else {
            self.counters.displaced += 1;
            let (a, b) = (a.expires_at, b.expires_at);
            if b < a { second } else { first }
        };
        if let Some(entry) = self.entries.get_mut(slot) {
            *entry = Entry {
                generation,
                expires_at: now.saturating_add(self.timeout),
                sender: denial.sender,
                egress: denial.egress.encode(),
                ingress: denial.ingress.encode(),
                key: key.with_vpc(0),
                side,
                reason: denial.reason,
            };
            self.counters.remembered += 1;
        }
    }
}

impl DeniedFlows {
    /// Moves the live denial in `slot` to its other candidate slot if that
    /// one is dead; returns `slot`, now free, if it did. Only on a new
    /// denial, never on a lookup: it rehashes the key.
    fn move_aside(&mut self, slot: usize, generation: u32, now: Seconds) -> Option<usize> {
        let entry = *self.entries.get(slot)?;
        // The scope is not hashed: the stored key's hash is the packet's.
        let (x, y) = self.slots(entry.key.hash());
        let other = if x == slot { y } else { x };
        let target = self.entries.get_mut(other)?;
        if other == slot || target.live(generation, now) {
            return None;
        }
        *target = entry;
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_flow::IPPROTO_TCP;

    fn key(port: u16) -> (FlowKey, Side, u64) {
        FlowKey::new_v4_hashed(0, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_TCP, port, 80)
    }

    const DENIAL: Denial = Denial {
        reason: DropReason::IngressDenied,
        sender: 0,
        egress: GroupTally::Allowed(3),
        ingress: GroupTally::AllDenied(7),
    };

    #[test]
    fn tallies_round_trip() {
        for t in [
            GroupTally::None,
            GroupTally::Allowed(0),
            GroupTally::Allowed(12345),
            GroupTally::AllDenied(0),
            GroupTally::AllDenied(99),
        ] {
            assert_eq!(GroupTally::decode(t.encode()), t);
        }
        let huge = GroupTally::Allowed(u32::MAX);
        assert_eq!(GroupTally::decode(huge.encode()), GroupTally::None);
    }

    #[test]
    fn a_denial_is_found_for_its_generation_side_and_time_only() {
        let mut m = DeniedFlows::new(64, 2);
        let (k, side, h) = key(1);
        assert!(m.find(h, &k, side, 1, 10).is_none());
        m.remember(h, &k, side, 1, 10, DENIAL);
        assert_eq!(m.find(h, &k, side, 1, 10), Some(DENIAL));
        assert_eq!(m.find(h, &k.with_vpc(7), side, 1, 11), Some(DENIAL));
        assert!(
            m.find(h, &k, side.opposite(), 1, 10).is_none(),
            "other side"
        );
        assert!(m.find(h, &k, side, 2, 10).is_none(), "other generation");
        assert!(m.find(h, &k, side, 1, 12).is_none(), "expired");
    }

    #[test]
    fn a_full_memory_keeps_working_and_turns_over() {
        let mut m = DeniedFlows::new(16, 2);
        for port in 0..1000 {
            let (k, side, h) = key(port);
            m.remember(h, &k, side, 1, 10, DENIAL);
            assert!(m.find(h, &k, side, 1, 10).is_some(), "just remembered");
        }
        assert_eq!(m.counters().remembered, 1000);
        assert!(m.counters().displaced > 0);
        let held = (0..1000)
            .filter(|&p| {
                let (k, side, h) = key(p);
                m.find(h, &k, side, 1, 10).is_some()
            })
            .count();
        assert!(held <= 16);
    }

    #[test]
    fn a_third_full_memory_holds_nearly_every_denial() {
        // The bench's flood: 10 K flows in the default 32 K entries.
        let mut m = DeniedFlows::new(1 << 15, 2);
        let keys: Vec<_> = (0..10_000u16)
            .map(|p| FlowKey::new_v4_hashed(0, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_TCP, p, 80))
            .collect();
        for (k, side, h) in &keys {
            m.remember(*h, k, *side, 1, 10, DENIAL);
        }
        let held = keys
            .iter()
            .filter(|(k, side, h)| m.find(*h, k, *side, 1, 10).is_some())
            .count();
        assert!(held >= 9_950, "{held} of 10000 held");
    }

    #[test]
    fn zero_capacity_or_timeout_remembers_nothing() {
        for m in [DeniedFlows::new(0, 2), DeniedFlows::new(64, 0)] {
            let mut m = m;
            let (k, side, h) = key(1);
            m.remember(h, &k, side, 1, 10, DENIAL);
            assert!(m.find(h, &k, side, 1, 10).is_none());
        }
    }
}

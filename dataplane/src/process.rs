//! `process()`: one worker core's packet path, sans-IO.
//!
//! A [`Worker`] owns one core's flow table, fragment table and counters. The
//! pipeline (DPDK, pcap replay, tests) hands it a burst of frames, the time
//! in seconds and the policy snapshot it loaded for this burst; it gets one
//! [`Verdict`] per frame back, with forwarded frames already rewritten. No
//! I/O, no clock, no lock, no allocation after [`Worker::new`].
//!
//! The burst is processed in two passes, VPP's habit. The first parses every
//! frame, finds its ENIs and route, builds its flow key and starts the
//! key's bucket tags and likeliest entry loading (a real prefetch right
//! away, so the rest of the pass hides the miss; plain loads in one loop
//! after it, see [`Prefetch::RETIRES_AT_ONCE`]). The second pass looks the
//! flows up and decides; a few packets ahead of it, a second prefetch stage
//! starts the entry the (by then arrived) tags point at when the key does
//! not sit in its preferred slot.
//!
//! Plain IPv4 TCP/UDP frames, most of the traffic, take a lane of their
//! own: a fixed-offset read into a 32-byte [`PlainIpv4`] instead of the
//! general [`FrameInfo`], and in the first pass only the flow key without
//! its VPC scope and its hash (the scope is not hashed), not steps 3–4. In
//! the second pass, the **established lane** looks the flow up by that key
//! and, when this policy generation has already routed the packet's
//! direction in full from the same sender (`nacl_bits::*_ROUTED`), takes
//! the sender check and the receiver from the flow
//! (`Worker::established_plain`). A frame whose key no flow has is looked
//! up next, by the same hash, in the denied-flow memory ([`crate::denied`]):
//! a denial the rules gave the same sender's same flow under this policy
//! generation, a moment ago, is given again without routing or
//! classifying. Anything else — a new flow, a first packet after a
//! publish, a sender the flow does not know — goes through steps 3–6 in
//! full. Per packet (DESIGN.md):
//!
//! 1. parse (malformed → drop);
//! 2. ARP / neighbour solicitation for an address of the sender's subnet →
//!    answered from the router MAC (proxy ARP: every packet goes through
//!    the router, even within a subnet, so security groups always apply);
//! 3. source ENI by (port, VLAN, source MAC), or the uplink; source check;
//! 4. route to the destination ENI (same or peered VPC) or the uplink;
//! 5. flow hit → NACL verdict (cached per direction and generation) → state
//!    update → forward; miss → the denied-flow memory, or NACLs + egress
//!    SGs of the sender + ingress SGs of the receiver → insert a tracked
//!    flow (unless untracked) → forward, or remember the denial → drop;
//! 6. L2 rewrite (router MAC → ENI MAC, VLAN tag of the output ENI), TTL /
//!    hop-limit decrement with an incremental checksum update.
//!
//! Policy generations: a flow remembers the generation that last validated
//! it. On a newer one, its NACL verdicts are recomputed (a NACL deny cuts a
//! connection at once) but its security-group admission stands: tracked
//! flows survive rule removal (SEMANTICS.md). Untracked flows have no entry
//! at all: every packet is decided by the rules, so a rule change stops
//! them at once. Remembered denials are of one generation: the first
//! packet under a newer one is decided by its rules.

use core::net::IpAddr;

use palisade_flow::{
    CapacityError, FirstFragmentVerdict, FlowInit, FlowKey, FlowLines, FlowTable, FlowUpdate,
    FragmentError, FragmentKey, FragmentTable, FragmentVerdict, InsertError, PlainLoad, Prefetch,
    Seconds, Side, TcpFlags, Timeouts, Unscoped,
};
use palisade_policy::{
    DenyReason, Direction as PolicyDirection, EniIdx, EniPath, NaclPath, PacketFields,
    PolicySnapshot, Route, SgDetail, UplinkSpec, Verdict as PolicyVerdict,
};
use palisade_wire::{
    FragmentInfo, FrameInfo, L3Info, L4Info, MacAddr, PlainIpv4, build_arp_reply,
    build_neighbor_advertisement, decrement_ip_ttl, parse_frame_layered, parse_plain_ipv4,
    rewrite_macs,
};

use palisade_wire::arp::{ArpOperation, ArpRepr};

use crate::buffer::PacketBuf;
use crate::counters::WorkerCounters;
use crate::denied::{DEFAULT_DENIED_TIMEOUT, Denial, DeniedFlows, GroupTally};
use crate::verdict::{DropReason, Verdict};

/// The most frames one pass handles; longer bursts are taken in chunks.
pub const MAX_BURST: usize = 64;

/// The second prefetch stage works in blocks of this many packets, one
/// block ahead of the decisions: a packet's entry starts loading 8 to 15
/// decisions before its own.
const TAG_LOOKAHEAD: usize = 8;

/// ICMPv6 types that stay on the link (MLD, router and neighbour
/// discovery): never routed.
const ICMPV6_LINK_LOCAL_TYPES: core::ops::RangeInclusive<u8> = 130..=137;
const ICMPV6_MLDV2_REPORT: u8 = 143;
const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;

/// Cached verdict bits in [`palisade_flow::FlowEntry::verdict_flags`],
/// valid for the flow's generation. "Forward" is the initiator's direction.
mod nacl_bits {
    pub const FORWARD_CHECKED: u8 = 1 << 0;
    pub const FORWARD_ALLOWED: u8 = 1 << 1;
    pub const REVERSE_CHECKED: u8 = 1 << 2;
    pub const REVERSE_ALLOWED: u8 = 1 << 3;
    /// A packet of this direction was routed in full under the flow's
    /// generation, from the ENI the flow caches as its sender to the
    /// endpoint it caches as its receiver, passing the source check: the
    /// established lane may take both from the entry (see
    /// `Worker::established_plain`).
    pub const FORWARD_ROUTED: u8 = 1 << 4;
    pub const REVERSE_ROUTED: u8 = 1 << 5;
}

/// Marks the uplink where a flow caches an ENI index.
const UPLINK_ENDPOINT: u32 = u32::MAX;

/// How a worker is sized. Fixed at start: nothing grows on the packet path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The most connections tracked at once (the conntrack allowance).
    pub max_flows: usize,
    /// The most fragmented datagrams followed at once.
    pub max_fragmented_datagrams: usize,
    /// How long a fragmented datagram's verdict is remembered.
    pub fragment_timeout: Seconds,
    /// Flow-table buckets the expiry sweep visits per burst (8 flows each).
    ///
    /// The default, 1, sweeps the default table (2^18 buckets) once every
    /// 262,144 bursts: under a second at 10 Mpps in bursts of 32, and the
    /// idle polls sweep more where traffic is light. The sweep only
    /// returns expired flows' room to the allowance (lookups and inserts
    /// never see an expired flow), and the shortest idle timeout is 30 s,
    /// so more per burst buys nothing but memory traffic: each bucket is
    /// a line of tags and up to eight entry lines.
    pub expiry_buckets_per_burst: usize,
    /// Security groups counted one by one (allowed/denied new flows);
    /// groups past this index are not counted.
    pub max_counted_groups: usize,
    /// Denied flows remembered at once ([`crate::denied`]), apart from the
    /// flow table: 64 bytes each, rounded up to a power of two; 0 turns
    /// the memory off.
    ///
    /// The default, 32,768 (2 MiB), holds a flood of that many distinct
    /// denied flows per worker; past that they displace each other and
    /// some of their packets are classified again (a cost, never a
    /// different verdict).
    pub denied_flows: usize,
    /// How long a denial is remembered (it is forgotten at once when the
    /// policy generation changes). Short, so that the memory turns over
    /// to the flows of the moment.
    pub denied_timeout: Seconds,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            max_flows: 1 << 20,
            max_fragmented_datagrams: 4096,
            fragment_timeout: palisade_flow::DEFAULT_FRAGMENT_TIMEOUT,
            expiry_buckets_per_burst: 1,
            max_counted_groups: 4096,
            denied_flows: 1 << 15,
            denied_timeout: DEFAULT_DENIED_TIMEOUT,
        }
    }
}

/// Why a worker could not be created.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The flow table could not be sized as asked.
    #[error("flow table: {0}")]
    FlowTable(#[from] CapacityError),
    /// The fragment table could not be sized as asked.
    #[error("fragment table: {0}")]
    FragmentTable(#[from] FragmentError),
}

/// One end of a routed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Eni(EniIdx),
    Uplink,
}

impl Endpoint {
    fn cached(self) -> u32 {
        match self {
            Endpoint::Eni(e) => e.index() as u32,
            Endpoint::Uplink => UPLINK_ENDPOINT,
        }
    }
}

/// What the first pass learnt about an IP packet that needs a flow decision.
///
/// Only what the second pass reads, written in place into the worker's
/// fixed array (never returned by value or copied out). It used to carry
/// the whole `FrameInfo` and its `IpInfo` (about 330 bytes against 144)
/// and travel by value twice per packet: the copies were about a tenth of
/// the cache-resident per-packet profile.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// Position in the burst.
    slot: usize,
    kind: PendingKind,
    side: Side,
    /// TCP flags (none for other protocols).
    tcp_flags: TcpFlags,
    /// Where the IP header starts, and its version: for the TTL edit.
    l3_offset: u16,
    ipv6: bool,
    /// The VLAN tag the frame arrived with.
    vlan: Option<u16>,
    fragment: Option<FragmentInfo>,
    src: Endpoint,
    dst: Endpoint,
    route: Route,
    fields: PacketFields,
    key: FlowKey,
    hash: u64,
    /// For [`PendingKind::Plain`]: the sender's MAC and the port the
    /// frame came in on, the established lane's test of the sender.
    src_mac: [u8; 6],
    port: u16,
}

impl Pending {
    /// Filler for the unused slots of the array.
    fn vacant() -> Self {
        let nowhere = IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED);
        Pending {
            slot: 0,
            kind: PendingKind::Flow,
            side: Side::Low,
            tcp_flags: TcpFlags::NONE,
            l3_offset: 0,
            ipv6: false,
            vlan: None,
            fragment: None,
            src: Endpoint::Uplink,
            dst: Endpoint::Uplink,
            route: Route::Unreachable,
            fields: PacketFields::l4(nowhere, nowhere, 0, 0, 0),
            key: FlowKey::new_v4(0, [0; 4], [0; 4], 0, 0, 0).0,
            hash: 0,
            src_mac: [0; 6],
            port: 0,
        }
    }
}

/// What the first pass did with a frame it did not drop.
enum Prepared {
    /// A flow decision is pending (filled in the array).
    Pending,
    /// The frame was answered in place (ARP, neighbour solicitation).
    Answered,
}

/// What the established lane made of a plain frame.
#[derive(Clone, Copy)]
enum Lane {
    /// A hit: forward through this output, the receiver's (the flow is
    /// updated and counted); `None` if the receiver has none (`NoRoute`).
    Forward(Option<Output>),
    /// The flow's state machine ended it: decide the packet as a new flow.
    Restart,
    /// Not for the lane: the full path decides.
    Declined,
    /// No flow has the frame's addresses and ports: the full path decides
    /// it as a new flow, without looking it up again.
    Absent,
}

/// The counters every forwarded packet bumps, kept in registers for a
/// chunk and added to the worker's once.
#[derive(Default)]
struct ChunkTally {
    packets: u64,
    bytes: u64,
    forwarded: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PendingKind {
    /// A plain IPv4 TCP or UDP frame, not yet routed: `key` is its flow's
    /// key without the VPC scope (whose hash is the same), `side`,
    /// `tcp_flags`, `l3_offset`, `vlan`, `plain` and `port` are set, the
    /// rest is not. The second pass tries the established lane first.
    Plain,
    /// A packet with its own L4 header (or none needed).
    Flow,
    /// An ICMP error: `key` is the quoted packet's flow.
    IcmpError,
    /// A non-first fragment: `key` is unused, the fragment table decides.
    LaterFragment,
}

/// One core's packet path: its flow table, fragment table and counters.
///
/// `F` is the instruction that starts the burst's table lines loading
/// ([`palisade_flow::prefetch`]): a type parameter, not a trait object, so
/// the call compiles to the one instruction inside the loop. The DPDK
/// pipeline passes the real prefetch from the binding crate; everything
/// else uses the default, [`PlainLoad`], which needs no `unsafe`.
#[derive(Debug)]
pub struct Worker<F: Prefetch = PlainLoad> {
    prefetcher: F,
    flows: FlowTable,
    fragments: FragmentTable,
    /// Flows the rules denied under the current generation.
    denied: DeniedFlows,
    counters: WorkerCounters,
    config: WorkerConfig,
    /// The first pass's results, [`MAX_BURST`] long for the worker's life.
    pending: Vec<Pending>,
    group_allowed: Vec<u64>,
    group_denied: Vec<u64>,
}

impl Worker {
    /// A worker with all its memory allocated up front, prefetching with
    /// plain loads (tests, replay, fuzzing: no `unsafe` needed).
    pub fn new(config: WorkerConfig) -> Result<Self, WorkerError> {
        Self::with_prefetcher(config, PlainLoad)
    }
}

impl<F: Prefetch> Worker<F> {
    /// A worker with all its memory allocated up front that starts its
    /// table lines loading with `prefetcher`.
    pub fn with_prefetcher(config: WorkerConfig, prefetcher: F) -> Result<Self, WorkerError> {
        Ok(Worker {
            prefetcher,
            flows: FlowTable::with_capacity(config.max_flows)?,
            fragments: FragmentTable::new(
                config.max_fragmented_datagrams,
                config.fragment_timeout,
            )?,
            denied: DeniedFlows::new(config.denied_flows, config.denied_timeout),
            counters: WorkerCounters::default(),
            config,
            pending: vec![Pending::vacant(); MAX_BURST],
            group_allowed: vec![0; config.max_counted_groups],
            group_denied: vec![0; config.max_counted_groups],
        })
    }

    /// This worker's counters (plain memory, read by the metrics scrape).
    pub fn counters(&self) -> &WorkerCounters {
        &self.counters
    }

    /// This worker's flow table (occupancy, allowance, its own counters).
    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    /// The flow table's state, for [`crate::SharedCounters::publish`].
    pub fn flow_gauges(&self) -> crate::counters::FlowGauges {
        let c = self.flows.counters();
        crate::counters::FlowGauges {
            flows: self.flows.len() as u64,
            capacity: self.flows.capacity() as u64,
            available: self.flows.available() as u64,
            refused: c.insert_table_full + c.insert_probe_limit,
        }
    }

    /// This worker's fragment table.
    pub fn fragments(&self) -> &FragmentTable {
        &self.fragments
    }

    /// This worker's denied-flow memory.
    pub fn denied_flows(&self) -> &DeniedFlows {
        &self.denied
    }

    /// Processes a burst: one verdict per frame in `verdicts` (which must be
    /// at least as long as `burst`; extra entries are left alone). Frames
    /// to forward or answer are rewritten in place.
    pub fn process<P: PacketBuf>(
        &mut self,
        burst: &mut [P],
        now: Seconds,
        snapshot: &PolicySnapshot,
        verdicts: &mut [Verdict],
    ) {
        let n = burst.len().min(verdicts.len());
        for start in (0..n).step_by(MAX_BURST) {
            let end = (start + MAX_BURST).min(n);
            self.process_chunk(
                &mut burst[start..end],
                now,
                snapshot,
                &mut verdicts[start..end],
            );
        }
        self.flows.expire(now, self.config.expiry_buckets_per_burst);
        if F::RETIRES_AT_ONCE {
            // The next burst's sweep then reads lines already on their way.
            self.flows
                .prefetch_sweep(self.config.expiry_buckets_per_burst, &self.prefetcher);
        }
        self.fragments.expire(now, 1);
    }

    /// Work for an idle poll: expires up to `buckets` flow-table buckets
    /// (8 flows each) and a fragment-table bucket, so that idle flows go
    /// even when no packet comes.
    pub fn housekeeping(&mut self, now: Seconds, buckets: usize) {
        self.flows.expire(now, buckets);
        self.fragments.expire(now, 1);
    }

    fn process_chunk<P: PacketBuf>(
        &mut self,
        burst: &mut [P],
        now: Seconds,
        snapshot: &PolicySnapshot,
        verdicts: &mut [Verdict],
    ) {
        // Taken out for the chunk so the second pass can read it while the
        // tables are borrowed mutably; `take` leaves an empty Vec, which
        // does not allocate.
        let mut pending = core::mem::take(&mut self.pending);
        let mut tally = ChunkTally::default();
        let mut count = 0;
        // The tables viewed once for the pass's prefetches (see
        // `FlowTable::lines`); the pass counts through the counters field
        // alone, which the view leaves free.
        let lines = self.flows.lines();
        let counters = &mut self.counters;
        for (slot, (pkt, verdict)) in burst.iter_mut().zip(verdicts.iter_mut()).enumerate() {
            tally.packets += 1;
            tally.bytes += pkt.data().len() as u64;
            // A chunk is at most MAX_BURST frames, the array's length.
            let Some(out) = pending.get_mut(count) else {
                *verdict = count_drop(counters, DropReason::Malformed);
                continue;
            };
            let prepared = match parse_plain_ipv4(pkt.data()) {
                Some(plain) => stage_plain_ipv4(slot, pkt.ingress_port(), &plain, snapshot, out),
                None => prepare(slot, pkt, snapshot, out),
            };
            match prepared {
                Ok(Prepared::Pending) => {
                    // Start this packet's table lines loading now: the rest
                    // of the first pass (the other packets' parsing and
                    // routing, all in cache) hides the miss, VPP's habit.
                    if F::RETIRES_AT_ONCE {
                        prefetch(&lines, &self.fragments, &self.prefetcher, out);
                    }
                    count += 1;
                    // Decided in the second pass.
                    *verdict = Verdict::Drop(DropReason::Malformed);
                }
                Ok(Prepared::Answered) => {
                    counters.replied += 1;
                    *verdict = Verdict::Reply {
                        port: pkt.ingress_port(),
                    };
                }
                Err(reason) => *verdict = count_drop(counters, reason),
            }
        }
        let pending_now = pending.get(..count).unwrap_or_default();
        if !F::RETIRES_AT_ONCE {
            // Plain loads stall whatever follows them once the reorder
            // window fills: issue them together, with nothing in between.
            for p in pending_now {
                prefetch(&lines, &self.fragments, &self.prefetcher, p);
            }
        }
        // The second prefetch stage runs a few packets ahead of the
        // decisions: by then a packet's bucket tags have arrived, and its
        // entry has the decisions in between to arrive in turn. It works a
        // block of packets at a time, through one view of the table per
        // block (the decisions between need the table writable).
        let first = pending_now.get(..TAG_LOOKAHEAD).unwrap_or(pending_now);
        prefetch_tagged(&lines, &self.denied, &self.prefetcher, first);
        for (b, block) in pending_now.chunks(TAG_LOOKAHEAD).enumerate() {
            if let Some(ahead) = pending_now.get((b + 1) * TAG_LOOKAHEAD..) {
                let ahead = ahead.get(..TAG_LOOKAHEAD).unwrap_or(ahead);
                prefetch_tagged(&self.flows.lines(), &self.denied, &self.prefetcher, ahead);
            }
            for p in block {
                let (Some(verdict), Some(pkt)) = (verdicts.get_mut(p.slot), burst.get_mut(p.slot))
                else {
                    continue;
                };
                let decided = match p.kind {
                    PendingKind::Plain => self.decide_plain(p, pkt, now, snapshot),
                    PendingKind::Flow => self
                        .decide_flow(p, now, snapshot)
                        .and_then(|()| forward(pkt, p, snapshot)),
                    PendingKind::IcmpError => self
                        .decide_related(p, now, snapshot)
                        .and_then(|()| forward(pkt, p, snapshot)),
                    PendingKind::LaterFragment => self
                        .decide_fragment(p, now)
                        .and_then(|()| forward(pkt, p, snapshot)),
                };
                *verdict = match decided {
                    Ok(port) => {
                        tally.forwarded += 1;
                        Verdict::Forward { port }
                    }
                    Err(reason) => self.drop(reason),
                };
            }
        }
        self.pending = pending;
        self.counters.packets += tally.packets;
        self.counters.bytes += tally.bytes;
        self.counters.forwarded += tally.forwarded;
    }

    fn drop(&mut self, reason: DropReason) -> Verdict {
        count_drop(&mut self.counters, reason)
    }

    /// Second pass for a packet with its own flow: hit or decide.
    fn decide_flow(
        &mut self,
        p: &Pending,
        now: Seconds,
        snapshot: &PolicySnapshot,
    ) -> Result<(), DropReason> {
        let generation = snapshot.generation() as u32;
        let flags = p.tcp_flags;
        if let Some(entry) = self.flows.lookup(p.hash, &p.key, now) {
            let from_initiator = entry.initiator() == p.side;
            if entry.generation != generation {
                // A newer policy: refresh what the flow caches for it. Its
                // security-group admission stands (tracked flows survive
                // rule changes); NACLs are re-checked below.
                self.counters.revalidations += 1;
                entry.generation = generation;
                entry.verdict_flags = 0;
                let (initiator, responder) = if from_initiator {
                    (p.src, p.dst)
                } else {
                    (p.dst, p.src)
                };
                entry.initiator_eni = initiator.cached();
                entry.responder_eni = responder.cached();
            }
            let (checked, allowed, routed) = if from_initiator {
                (
                    nacl_bits::FORWARD_CHECKED,
                    nacl_bits::FORWARD_ALLOWED,
                    nacl_bits::FORWARD_ROUTED,
                )
            } else {
                (
                    nacl_bits::REVERSE_CHECKED,
                    nacl_bits::REVERSE_ALLOWED,
                    nacl_bits::REVERSE_ROUTED,
                )
            };
            // A direction's NACL verdict depends only on fields that are
            // constant along it, except ICMP's type and code (an echo flow
            // may carry requests and replies both ways): ICMP is checked
            // every packet, the rest once per direction and generation.
            if is_icmp(p.fields.protocol) {
                if !nacl_allows(snapshot, p.src, p.route, &p.fields) {
                    return Err(DropReason::NaclDenied);
                }
            } else {
                if entry.verdict_flags & checked == 0 {
                    let ok = nacl_allows(snapshot, p.src, p.route, &p.fields);
                    entry.verdict_flags |= checked | if ok { allowed } else { 0 };
                }
                if entry.verdict_flags & allowed == 0 {
                    return Err(DropReason::NaclDenied);
                }
            }
            // This packet was routed in full: if it went where the flow
            // says this direction goes, the established lane may skip the
            // routing for the direction's next packets (this generation).
            let (sender, receiver) = if from_initiator {
                (entry.initiator_eni, entry.responder_eni)
            } else {
                (entry.responder_eni, entry.initiator_eni)
            };
            if (sender, receiver) == (p.src.cached(), p.dst.cached()) {
                entry.verdict_flags |= routed;
            }
            let update =
                entry.update_with(p.side, flags, now, || flow_timeouts(snapshot, p.src, p.dst));
            match update {
                FlowUpdate::Forward => {
                    self.counters.flow_hits += 1;
                    self.follow_first_fragment(p, now, true);
                    return Ok(());
                }
                FlowUpdate::Restart => {
                    self.flows.remove(p.hash, &p.key, now);
                }
            }
        } else if let Some(reason) = self.remembered_denial(p, now, snapshot) {
            return Err(reason);
        }
        self.decide_new(p, now, snapshot)
    }

    /// The remembered denial of a routed packet's flow ([`crate::denied`]),
    /// counted as the classification counted it; `None` if none applies.
    fn remembered_denial(
        &mut self,
        p: &Pending,
        now: Seconds,
        snapshot: &PolicySnapshot,
    ) -> Option<DropReason> {
        let generation = snapshot.generation() as u32;
        let denial = self
            .denied
            .find(p.hash, &p.key, p.side, generation, now)
            .filter(|d| d.sender == p.src.cached())?;
        self.follow_first_fragment(p, now, false);
        Some(self.replay_denial(snapshot, &denial))
    }

    /// The remembered denial of a plain frame no flow has, before it is
    /// routed: it applies if the frame comes from the sender that was
    /// denied, by the established lane's test (port, VLAN and MAC name one
    /// sender per snapshot), since the sender and the addresses fix the
    /// source check, the route and the rules' verdict.
    #[inline(always)]
    fn remembered_plain_denial(
        &mut self,
        p: &Pending,
        now: Seconds,
        snapshot: &PolicySnapshot,
    ) -> Option<DropReason> {
        let generation = snapshot.generation() as u32;
        let denial = self.denied.find(p.hash, &p.key, p.side, generation, now)?;
        let l2 = if denial.sender == UPLINK_ENDPOINT {
            snapshot.uplink().map(|u| (u.port, u.vlan, u.mac))
        } else {
            snapshot
                .eni_by_index(denial.sender)
                .and_then(|eni| snapshot.eni_path(eni))
                .map(|path| (path.port, path.vlan(), path.mac))
        };
        if l2 != Some((p.port, p.vlan, p.src_mac)) {
            return None;
        }
        Some(self.replay_denial(snapshot, &denial))
    }

    /// Counts a remembered denial's packet as its classification counted
    /// it (the caller counts the drop); its reason.
    #[inline(always)]
    fn replay_denial(&mut self, snapshot: &PolicySnapshot, denial: &Denial) -> DropReason {
        self.counters.denied_remembered += 1;
        self.count_group_tallies(snapshot, [denial.egress, denial.ingress]);
        denial.reason
    }

    /// [`Self::decide_flow`] for a packet whose flow has no entry (any
    /// more): the rules decide, and an allowed tracked flow is inserted.
    fn decide_new(
        &mut self,
        p: &Pending,
        now: Seconds,
        snapshot: &PolicySnapshot,
    ) -> Result<(), DropReason> {
        let generation = snapshot.generation() as u32;
        let flags = p.tcp_flags;
        let decision = match p.src {
            // The first pass routed the packet already: no second lookup.
            Endpoint::Eni(src) => snapshot.decide_routed(src, p.route, &p.fields, SgDetail::Groups),
            Endpoint::Uplink => snapshot.decide_from_uplink(&p.fields, SgDetail::Groups),
        };
        let tallies = group_tallies(snapshot, p, &decision);
        self.count_group_tallies(snapshot, tallies);
        let untracked = decision.untracked
            || (decision.verdict == PolicyVerdict::Allow
                && reply_of_untracked(snapshot, p, &decision));
        let result = match decision.verdict {
            PolicyVerdict::Allow if untracked => {
                self.counters.untracked += 1;
                Ok(())
            }
            PolicyVerdict::Allow => {
                let init = FlowInit {
                    initiator: p.side,
                    tcp_flags: flags,
                    tracked: true,
                    generation,
                    initiator_eni: p.src.cached(),
                    responder_eni: p.dst.cached(),
                    admitted_by: admitting_group(snapshot, p, &decision),
                    // Routed in full just now, from `src` to `dst`.
                    verdict_flags: nacl_bits::FORWARD_CHECKED
                        | nacl_bits::FORWARD_ALLOWED
                        | nacl_bits::FORWARD_ROUTED,
                };
                let timeouts = flow_timeouts(snapshot, p.src, p.dst);
                // The lookup above missed (or `Restart` removed the flow),
                // and nothing has touched the table since.
                match self
                    .flows
                    .insert_missing(p.hash, p.key, &init, now, &timeouts)
                {
                    Ok(_) => {
                        self.counters.new_flows += 1;
                        Ok(())
                    }
                    Err(InsertError::TableFull | InsertError::ProbeLimit) => {
                        Err(DropReason::ConntrackFull)
                    }
                    // Unreachable after a failed lookup, but harmless: the
                    // flow exists, so the packet belongs to it.
                    Err(InsertError::AlreadyPresent) => Ok(()),
                }
            }
            PolicyVerdict::ToRouter => Err(DropReason::ToRouter),
            PolicyVerdict::Deny(reason) => {
                let reason = deny_reason(reason);
                // ICMP's verdict depends on its type and code too, which
                // the flow key does not hold: decided every packet.
                if !is_icmp(p.fields.protocol) {
                    let denial = Denial {
                        reason,
                        sender: p.src.cached(),
                        egress: tallies[0],
                        ingress: tallies[1],
                    };
                    self.denied
                        .remember(p.hash, &p.key, p.side, generation, now, denial);
                }
                Err(reason)
            }
        };
        self.follow_first_fragment(p, now, result.is_ok());
        result
    }

    /// Second pass for a plain IPv4 frame: the established lane, or the
    /// full path. Returns the output port.
    #[inline(always)]
    fn decide_plain<P: PacketBuf>(
        &mut self,
        p: &Pending,
        pkt: &mut P,
        now: Seconds,
        snapshot: &PolicySnapshot,
    ) -> Result<u16, DropReason> {
        match self.established_plain(p, now, snapshot) {
            Lane::Forward(Some(output)) => forward_through(pkt, output, p, snapshot),
            Lane::Forward(None) => Err(DropReason::NoRoute),
            lane => self.decide_plain_in_full(p, pkt, now, snapshot, lane),
        }
    }

    /// The established lane: a plain frame of a tracked flow whose
    /// direction this generation has routed in full from the same sender
    /// (`nacl_bits::FORWARD_ROUTED` / `REVERSE_ROUTED`) is forwarded to the
    /// receiver the flow caches, without finding its sender by L2 address,
    /// checking its source or routing it again.
    ///
    /// Sound because all three depend only on the snapshot, the sending
    /// ENI and the packet's addresses: the generation is the same, the
    /// flow's key fixes the addresses, and the sender is the same ENI when
    /// the frame carries that ENI's port, VLAN and MAC (an L2 address
    /// names one ENI per snapshot: `CompileError::DuplicateL2`). The
    /// direction's NACL verdict is cached the same way. The differential
    /// tests run every packet through this lane and the reference model.
    #[inline(always)]
    fn established_plain(&mut self, p: &Pending, now: Seconds, snapshot: &PolicySnapshot) -> Lane {
        let generation = snapshot.generation() as u32;
        let entry = match self.flows.lookup_unscoped(p.hash, &p.key, now) {
            Unscoped::Live(entry) => entry,
            Unscoped::Absent => return Lane::Absent,
            Unscoped::Other => return Lane::Declined,
        };
        let from_initiator = entry.initiator() == p.side;
        let (sender, receiver, needed) = if from_initiator {
            (
                entry.initiator_eni,
                entry.responder_eni,
                nacl_bits::FORWARD_ROUTED | nacl_bits::FORWARD_ALLOWED,
            )
        } else {
            (
                entry.responder_eni,
                entry.initiator_eni,
                nacl_bits::REVERSE_ROUTED | nacl_bits::REVERSE_ALLOWED,
            )
        };
        if entry.generation != generation || entry.verdict_flags & needed != needed {
            return Lane::Declined;
        }
        // The uplink as sender (`UPLINK_ENDPOINT`) is past the table's end.
        let Some(sender) = snapshot.eni_by_index(sender) else {
            return Lane::Declined;
        };
        let Some(sender) = snapshot
            .eni_path(sender)
            .filter(|path| path.port == p.port && path.vlan() == p.vlan && path.mac == p.src_mac)
        else {
            return Lane::Declined;
        };
        // The receiver's output, resolved once here for `forward_through`.
        let (output, receiver_path) = if receiver == UPLINK_ENDPOINT {
            (snapshot.uplink().map(Output::uplink), None)
        } else {
            match snapshot.eni_by_index(receiver) {
                Some(eni) => {
                    let path = snapshot.eni_path(eni);
                    (path.map(Output::eni), path)
                }
                None => return Lane::Declined,
            }
        };
        match entry.update_with(p.side, p.tcp_flags, now, || {
            paths_timeouts(Some(sender), receiver_path)
        }) {
            FlowUpdate::Forward => {
                self.counters.flow_hits += 1;
                Lane::Forward(output)
            }
            FlowUpdate::Restart => Lane::Restart,
        }
    }

    /// The full path for a plain frame the established lane did not
    /// forward (`lane` says why).
    #[inline(never)]
    fn decide_plain_in_full<P: PacketBuf>(
        &mut self,
        p: &Pending,
        pkt: &mut P,
        now: Seconds,
        snapshot: &PolicySnapshot,
        lane: Lane,
    ) -> Result<u16, DropReason> {
        if let Lane::Absent = lane {
            // No flow: a flow the rules denied a moment ago costs one more
            // hashed lookup (its line prefetched with the flow table's).
            // Out of the established lane's inlined code, which it would
            // cost registers and instructions (callgrind: 2 % a packet).
            if let Some(reason) = self.remembered_plain_denial(p, now, snapshot) {
                return Err(reason);
            }
        }
        // The frame is as the first pass read it (the lane does not touch
        // it); read again rather than kept, which would cost every
        // established packet the stores.
        let plain = parse_plain_ipv4(pkt.data()).ok_or(DropReason::Malformed)?;
        let full = route_plain_frame(p, &plain, snapshot)?;
        match lane {
            // As `decide_flow` does on `Restart`: the lane found the flow
            // with the sender and receiver this routing gives.
            Lane::Restart => {
                self.flows.remove(full.hash, &full.key, now);
                self.decide_new(&full, now, snapshot)?;
            }
            // Not even an expired entry has the key: nothing to look up.
            Lane::Absent => self.decide_new(&full, now, snapshot)?,
            Lane::Declined | Lane::Forward(_) => self.decide_flow(&full, now, snapshot)?,
        }
        forward(pkt, &full, snapshot)
    }

    /// Per-group counters of new flows: the group whose rule allowed each
    /// side, or every group of the side that denied ([`group_tallies`]),
    /// for the sender's egress and the receiver's ingress.
    #[inline(always)]
    fn count_group_tallies(&mut self, snapshot: &PolicySnapshot, tallies: [GroupTally; 2]) {
        for tally in tallies {
            match tally {
                GroupTally::None => {}
                GroupTally::Allowed(group) => {
                    if let Some(c) = self.group_allowed.get_mut(group as usize) {
                        *c += 1;
                    }
                }
                GroupTally::AllDenied(set) => {
                    let Some(set) = snapshot.sg_set_by_index(set) else {
                        continue;
                    };
                    for g in snapshot.sg_set_groups(set) {
                        if let Some(c) = self.group_denied.get_mut(g.index()) {
                            *c += 1;
                        }
                    }
                }
            }
        }
    }

    /// New flows allowed, per security group (by the snapshot's group
    /// index: [`PolicySnapshot::group_id`] names it).
    pub fn group_allowed(&self) -> &[u64] {
        &self.group_allowed
    }

    /// New flows denied, per security group of the denying side.
    pub fn group_denied(&self) -> &[u64] {
        &self.group_denied
    }

    /// The first fragment of a datagram records its verdict for the rest.
    fn follow_first_fragment(&mut self, p: &Pending, now: Seconds, allowed: bool) {
        let Some(fragment) = p.fragment else {
            return;
        };
        if fragment.offset != 0 || !fragment.more {
            return;
        }
        let Ok((hash, key)) = fragment_key(p.key.vpc(), &p.fields, p.fragment) else {
            return;
        };
        let verdict = if allowed {
            FirstFragmentVerdict::Allow {
                source_port: p.fields.src_port,
                destination_port: p.fields.dst_port,
            }
        } else {
            FirstFragmentVerdict::Deny
        };
        // A full fragment table only costs the later fragments (counted
        // there as unknown): the first one's own verdict stands.
        let _ = self.fragments.record_first(hash, key, verdict, now);
    }

    /// An ICMP error is allowed as related traffic of the flow it quotes.
    fn decide_related(
        &mut self,
        p: &Pending,
        now: Seconds,
        snapshot: &PolicySnapshot,
    ) -> Result<(), DropReason> {
        if self.flows.lookup(p.hash, &p.key, now).is_none() {
            return Err(DropReason::IcmpErrorUnrelated);
        }
        if !nacl_allows(snapshot, p.src, p.route, &p.fields) {
            return Err(DropReason::NaclDenied);
        }
        self.counters.related += 1;
        Ok(())
    }

    /// A later fragment follows its datagram's first fragment.
    fn decide_fragment(&mut self, p: &Pending, now: Seconds) -> Result<(), DropReason> {
        let (hash, key) = fragment_key(p.key.vpc(), &p.fields, p.fragment)?;
        match self.fragments.lookup(hash, &key, now) {
            FragmentVerdict::Allow { .. } => Ok(()),
            FragmentVerdict::Deny | FragmentVerdict::Unknown => Err(DropReason::FragmentUnknown),
        }
    }
}

/// What a new flow's decision counts per security group, for the sender's
/// egress and the receiver's ingress: the lowest allowing group of the
/// side's set, or every group of a side that denied (by the set's index,
/// so that a remembered denial counts them without the ENI).
fn group_tallies(
    snapshot: &PolicySnapshot,
    p: &Pending,
    decision: &palisade_policy::FlowDecision,
) -> [GroupTally; 2] {
    let tally = |end: Endpoint, side: Option<palisade_policy::SgMatch>| {
        let (Endpoint::Eni(eni), Some(m)) = (end, side) else {
            return GroupTally::None;
        };
        let set = snapshot.eni(eni).sg_set;
        if m.groups == 0 {
            return GroupTally::AllDenied(set.index() as u32);
        }
        snapshot
            .sg_set_groups(set)
            .get(m.groups.trailing_zeros() as usize)
            .map_or(GroupTally::None, |g| GroupTally::Allowed(g.index() as u32))
    };
    [
        tally(p.src, decision.egress),
        tally(p.dst, decision.ingress),
    ]
}

/// Counts a dropped packet; its verdict.
fn count_drop(counters: &mut WorkerCounters, reason: DropReason) -> Verdict {
    counters.drops[reason.index()] += 1;
    Verdict::Drop(reason)
}

/// Starts loading the table lines `p`'s lookup will read.
#[inline(always)]
fn prefetch(
    flows: &FlowLines<'_>,
    fragments: &FragmentTable,
    prefetcher: &impl Prefetch,
    p: &Pending,
) {
    match p.kind {
        PendingKind::LaterFragment => fragments.prefetch(p.hash, prefetcher),
        PendingKind::Plain | PendingKind::Flow | PendingKind::IcmpError => {
            flows.prefetch(p.hash, prefetcher);
        }
    }
}

/// Starts loading the flow entries the bucket tags of `block`'s packets
/// point at (see [`FlowLines::prefetch_tagged`]), or, for a packet whose
/// key the tags say no flow has, its slot in the denied-flow memory: a
/// denied flood's packets then find their denial in cache as established
/// packets find their flow.
///
/// Measured with the process bench (`--features dpdk`, CPU prefetch): the
/// branch costs an established packet 13 instructions (561 → 574,
/// callgrind, `established_1k`), within the timing noise; without it a
/// burst of 32 remembered denials (`denied_10k`) took 10.1 µs against
/// `established_64k`'s 2.9 µs in one run, with it 2.9 µs against 2.2 µs.
#[inline(always)]
fn prefetch_tagged(
    flows: &FlowLines<'_>,
    denied: &DeniedFlows,
    prefetcher: &impl Prefetch,
    block: &[Pending],
) {
    for p in block {
        if p.kind != PendingKind::LaterFragment && flows.prefetch_tagged(p.hash, prefetcher) {
            denied.prefetch(p.hash, prefetcher);
        }
    }
}

/// First pass for every frame the plain reader declined: parse, answer neighbour discovery, find the endpoints and
/// the route, build the flow key into `out`.
///
/// Always inlined, as `forward` is: they do not depend on the prefetcher,
/// so a binary with two `Worker<F>` (the bench) shares one out-of-line
/// copy between them, and that call cost 25–60 % per burst (measured with
/// the process bench, 1 K and 1 M flows) against the inlined loop.
#[inline(always)]
fn prepare<P: PacketBuf>(
    slot: usize,
    pkt: &mut P,
    snapshot: &PolicySnapshot,
    out: &mut Pending,
) -> Result<Prepared, DropReason> {
    // The plain reader has declined this frame already (see the caller).
    let info = parse_frame_layered(pkt.data()).map_err(DropReason::from)?;
    let port = pkt.ingress_port();
    let src = source_endpoint(snapshot, port, info.vlan, info.src_mac.0);
    let (ip, ipv6) = match info.l3 {
        L3Info::Arp(arp) => {
            answer_arp(pkt, &info, &arp, src, snapshot)?;
            return Ok(Prepared::Answered);
        }
        L3Info::Ipv4(ip) => (ip, false),
        L3Info::Ipv6(ip) => (ip, true),
    };
    if let L4Info::Icmpv6 { ty, nd_target, .. } = ip.l4 {
        if ICMPV6_LINK_LOCAL_TYPES.contains(&ty) || ty == ICMPV6_MLDV2_REPORT {
            answer_neighbor_solicitation(pkt, &info, ty, nd_target, src, snapshot)?;
            return Ok(Prepared::Answered);
        }
    }
    if info.dst_mac.0 != snapshot.router_mac() {
        return Err(DropReason::NotForRouter);
    }
    let Routed {
        src,
        dst,
        route,
        scope: vpc,
    } = route_packet(snapshot, src, ip.src, ip.dst)?;

    let mut tcp_flags = TcpFlags::NONE;
    let (kind, fields, (key_src, key_dst, key_protocol, sport, dport)) = match ip.l4 {
        L4Info::Tcp {
            src_port,
            dst_port,
            flags,
        } => {
            tcp_flags = TcpFlags(flags);
            (
                PendingKind::Flow,
                PacketFields::l4(ip.src, ip.dst, ip.protocol, src_port, dst_port),
                (ip.src, ip.dst, ip.protocol, src_port, dst_port),
            )
        }
        L4Info::Udp { src_port, dst_port } => (
            PendingKind::Flow,
            PacketFields::l4(ip.src, ip.dst, ip.protocol, src_port, dst_port),
            (ip.src, ip.dst, ip.protocol, src_port, dst_port),
        ),
        L4Info::Icmp { ty, code, echo_id }
        | L4Info::Icmpv6 {
            ty, code, echo_id, ..
        } => {
            let id = echo_id.unwrap_or(0);
            (
                PendingKind::Flow,
                PacketFields::icmp(ip.src, ip.dst, ip.protocol, ty, code),
                (ip.src, ip.dst, ip.protocol, id, id),
            )
        }
        L4Info::IcmpError { ty, code, quoted } => {
            // The error travels back to the sender of the quoted packet.
            if quoted.src != ip.dst {
                return Err(DropReason::IcmpErrorUnrelated);
            }
            (
                PendingKind::IcmpError,
                PacketFields::icmp(ip.src, ip.dst, ip.protocol, ty, code),
                (
                    quoted.src,
                    quoted.dst,
                    quoted.protocol,
                    quoted.src_port,
                    quoted.dst_port,
                ),
            )
        }
        L4Info::Other => (
            PendingKind::Flow,
            PacketFields::l4(ip.src, ip.dst, ip.protocol, 0, 0),
            (ip.src, ip.dst, ip.protocol, 0, 0),
        ),
        L4Info::NotFirstFragment => (
            PendingKind::LaterFragment,
            PacketFields::l4(ip.src, ip.dst, ip.protocol, 0, 0),
            (ip.src, ip.dst, ip.protocol, 0, 0),
        ),
    };
    let (key, side) = FlowKey::new(vpc, key_src, key_dst, key_protocol, sport, dport)
        .map_err(|_| DropReason::Malformed)?;
    let hash = if kind == PendingKind::LaterFragment {
        // A later fragment is looked up in the fragment table.
        fragment_key(vpc, &fields, ip.fragment)?.0
    } else {
        key.hash()
    };
    *out = Pending {
        slot,
        kind,
        side,
        tcp_flags,
        l3_offset: info.l3_offset,
        ipv6,
        vlan: info.vlan,
        fragment: ip.fragment,
        src,
        dst,
        route,
        fields,
        key,
        hash,
        // Read for `PendingKind::Plain` only.
        ..*out
    };
    Ok(Prepared::Pending)
}

/// First pass for a plain IPv4 TCP or UDP frame: only what finding its
/// flow needs (the key without its scope, and the hash), so that the
/// table lines start loading; the second pass tries the established lane
/// (`Worker::established_plain`) and routes the frame in full only if the
/// lane declines.
#[inline(always)]
fn stage_plain_ipv4(
    slot: usize,
    port: u16,
    plain: &PlainIpv4,
    snapshot: &PolicySnapshot,
    out: &mut Pending,
) -> Result<Prepared, DropReason> {
    // The full path's first verdict on a frame that is not for us.
    if plain.dst_mac != snapshot.router_mac() {
        return Err(DropReason::NotForRouter);
    }
    let (key, side, hash) = FlowKey::new_v4_hashed(
        0,
        plain.src,
        plain.dst,
        plain.protocol,
        plain.src_port,
        plain.dst_port,
    );
    // Field by field: the rest of the record is the full path's to fill.
    out.slot = slot;
    out.kind = PendingKind::Plain;
    out.side = side;
    out.tcp_flags = TcpFlags(plain.tcp_flags);
    out.l3_offset = u16::from(plain.l3_offset);
    out.ipv6 = false;
    out.vlan = plain.vlan;
    out.key = key;
    out.hash = hash;
    out.src_mac = plain.src_mac;
    out.port = port;
    Ok(Prepared::Pending)
}

/// The full path's steps 3–4 for a plain IPv4 TCP/UDP frame (most of what
/// a router sees) that the established lane did not forward: the same
/// steps and checks as [`prepare`], from the compact [`PlainIpv4`] the
/// fixed-offset reader gives, without building the general [`FrameInfo`]
/// (ARP, neighbour discovery, fragments and ICMP never come this way). The
/// differential tests run every lane against the reference model.
#[inline(always)]
fn route_plain_frame(
    staged: &Pending,
    plain: &PlainIpv4,
    snapshot: &PolicySnapshot,
) -> Result<Pending, DropReason> {
    let port = staged.port;
    let src = source_endpoint(snapshot, port, plain.vlan, plain.src_mac);
    if plain.dst_mac != snapshot.router_mac() {
        return Err(DropReason::NotForRouter);
    }
    let (ip_src, ip_dst) = (IpAddr::from(plain.src), IpAddr::from(plain.dst));
    let Routed {
        src,
        dst,
        route,
        scope,
    } = route_plain_ipv4(snapshot, src, u32::from_be_bytes(plain.src), ip_dst)?;
    // The staged key, hash and side with the scope now known: the scope
    // is not hashed.
    let (key, side, hash) = (staged.key.with_vpc(scope), staged.side, staged.hash);
    Ok(Pending {
        slot: staged.slot,
        kind: PendingKind::Flow,
        side,
        // Zero for UDP, as `TcpFlags::NONE`.
        tcp_flags: TcpFlags(plain.tcp_flags),
        l3_offset: u16::from(plain.l3_offset),
        ipv6: false,
        vlan: plain.vlan,
        fragment: None,
        src,
        dst,
        route,
        fields: PacketFields::l4(
            ip_src,
            ip_dst,
            plain.protocol,
            plain.src_port,
            plain.dst_port,
        ),
        hash,
        key,
        src_mac: plain.src_mac,
        port,
    })
}

/// Where a packet goes and the flow scope it belongs to.
struct Routed {
    src: Endpoint,
    dst: Endpoint,
    route: Route,
    /// The flow key's scope: the pair of VPCs the flow joins.
    scope: u32,
}

/// [`route_packet`] for an IPv4 packet, from the ENIs' packed
/// [`palisade_policy::EniPath`] records: one cache line per ENI instead of
/// the full record and its address list. `ip_src` is a big-endian `u32`.
#[inline(always)]
fn route_plain_ipv4(
    snapshot: &PolicySnapshot,
    src: Option<Endpoint>,
    ip_src: u32,
    ip_dst: IpAddr,
) -> Result<Routed, DropReason> {
    let src = src.ok_or(DropReason::UnknownSource)?;
    let (route, src_vpc) = match src {
        Endpoint::Eni(eni) => {
            let path = snapshot.eni_path(eni).ok_or(DropReason::UnknownSource)?;
            if !path.may_send_from_v4(ip_src, || snapshot.get_eni(eni)) {
                return Err(DropReason::Spoofed);
            }
            (snapshot.route(path.vpc, ip_dst), Some(path.vpc))
        }
        Endpoint::Uplink => (snapshot.route_from_uplink(ip_dst), None),
    };
    routed(snapshot, src, src_vpc, route)
}

/// Steps 3–4 for an IP packet: the sender (an ENI or the uplink) and its
/// source check, the route to the receiver, and the flow's scope.
#[inline(always)]
fn route_packet(
    snapshot: &PolicySnapshot,
    src: Option<Endpoint>,
    ip_src: IpAddr,
    ip_dst: IpAddr,
) -> Result<Routed, DropReason> {
    let src = src.ok_or(DropReason::UnknownSource)?;
    let (route, src_vpc) = match src {
        Endpoint::Eni(eni) => {
            let e = snapshot.eni(eni);
            if e.source_dest_check && !e.owns_ip(ip_src) {
                return Err(DropReason::Spoofed);
            }
            (snapshot.route(e.vpc, ip_dst), Some(e.vpc))
        }
        Endpoint::Uplink => (snapshot.route_from_uplink(ip_dst), None),
    };
    routed(snapshot, src, src_vpc, route)
}

/// The receiver a route reaches and the flow's scope, shared by both
/// lanes' step 4.
#[inline(always)]
fn routed(
    snapshot: &PolicySnapshot,
    src: Endpoint,
    src_vpc: Option<palisade_policy::VpcIdx>,
    route: Route,
) -> Result<Routed, DropReason> {
    let (dst, dst_vpc) = match route {
        Route::Eni(e) => (
            Endpoint::Eni(e),
            Some(snapshot.eni_path(e).ok_or(DropReason::NoRoute)?.vpc),
        ),
        Route::Uplink => (Endpoint::Uplink, None),
        Route::Gateway(_) => return Err(DropReason::ToRouter),
        Route::Unreachable => return Err(DropReason::NoRoute),
    };
    // The flow's scope must be the same seen from both ends: the pair
    // of VPCs it joins (one VPC twice within a VPC or to the uplink).
    let scope = match (src_vpc, dst_vpc) {
        (Some(a), Some(b)) => flow_scope(a.index(), b.index()),
        (Some(v), None) | (None, Some(v)) => flow_scope(v.index(), v.index()),
        (None, None) => return Err(DropReason::NoRoute),
    };
    Ok(Routed {
        src,
        dst,
        route,
        scope,
    })
}

/// Answers an ARP request for an address of the sender's subnet (proxy ARP).
fn answer_arp<P: PacketBuf>(
    pkt: &mut P,
    info: &FrameInfo,
    arp: &ArpRepr,
    src: Option<Endpoint>,
    snapshot: &PolicySnapshot,
) -> Result<(), DropReason> {
    let Some(Endpoint::Eni(eni)) = src else {
        return Err(DropReason::NeighborDiscoveryIgnored);
    };
    let e = snapshot.eni(eni);
    let target = IpAddr::V4(arp.target_ip);
    if arp.operation != ArpOperation::Request
        || !snapshot.subnet(e.subnet).contains(target)
        || e.owns_ip(target)
    {
        return Err(DropReason::NeighborDiscoveryIgnored);
    }
    let mut reply = [0u8; 128];
    let len = build_arp_reply(arp, info.vlan, MacAddr(snapshot.router_mac()), &mut reply)
        .map_err(|_| DropReason::Malformed)?;
    write_reply(pkt, &reply[..len])
}

/// The flow-key scope of a flow between two VPCs (the same one twice for a
/// flow inside a VPC): both ends compute the same value. Indices past
/// 65,535 share scopes, which only matters for overlapping address blocks.
fn flow_scope(a: usize, b: usize) -> u32 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    (lo as u32 & 0xffff) | ((hi as u32 & 0xffff) << 16)
}

/// Whether an allowed packet that would open a tracked flow is in fact the
/// reply of an untracked one: the same packet the other way round is
/// allowed and untracked.
///
/// **palisade**: an untracked flow leaves no state, so its replies look like
/// new flows from the responder, which the responder's side may well
/// track (a web server's egress allows everything out, but its ingress does
/// not let every port back in). Were such a reply tracked, the flow would
/// outlive a rule change that SEMANTICS.md says stops it at once. So a
/// packet whose reverse is an untracked flow is treated as untracked too;
/// while the rules stand it is allowed either way, and the rules alone
/// decide it once they change. Only flows with an untracked side pay for
/// the second decision.
fn reply_of_untracked(
    snapshot: &PolicySnapshot,
    p: &Pending,
    decision: &palisade_policy::FlowDecision,
) -> bool {
    let some_side_untracked = decision.egress.is_some_and(|m| m.untracked)
        || decision.ingress.is_some_and(|m| m.untracked);
    if !some_side_untracked {
        return false;
    }
    let f = &p.fields;
    let reverse = PacketFields {
        src: f.dst,
        dst: f.src,
        src_port: f.dst_port,
        dst_port: f.src_port,
        ..*f
    };
    let back = match p.dst {
        Endpoint::Eni(e) => snapshot.decide(e, &reverse),
        Endpoint::Uplink => snapshot.decide_from_uplink(&reverse, SgDetail::Groups),
    };
    back.verdict == PolicyVerdict::Allow && back.untracked
}

/// The group that admitted a new flow: the lowest allowing group (whose
/// first matching rule is the one `explain` names) of the receiving side,
/// or toward the uplink of the sending side; `u16::MAX` if neither.
/// `count_groups` finds the same groups; having it return this one instead
/// cost established packets ~8 instructions through the inlined code around
/// it (perf/RESULTS.md, seventh round), so the lookup is repeated here, on
/// allowed new flows only.
fn admitting_group(
    snapshot: &PolicySnapshot,
    p: &Pending,
    decision: &palisade_policy::FlowDecision,
) -> u16 {
    let (end, side) = match decision.ingress {
        Some(m) => (p.dst, m),
        None => match decision.egress {
            Some(m) => (p.src, m),
            None => return u16::MAX,
        },
    };
    let Endpoint::Eni(eni) = end else {
        return u16::MAX;
    };
    snapshot
        .sg_set_groups(snapshot.eni(eni).sg_set)
        .get(side.groups.trailing_zeros() as usize)
        .map_or(u16::MAX, |g| g.index() as u16)
}

/// The ENI (or the uplink) a frame comes from.
#[inline(always)]
fn source_endpoint(
    snapshot: &PolicySnapshot,
    port: u16,
    vlan: Option<u16>,
    mac: [u8; 6],
) -> Option<Endpoint> {
    if let Some(eni) = snapshot.eni_by_l2(port, vlan, mac) {
        return Some(Endpoint::Eni(eni));
    }
    snapshot
        .uplink()
        .filter(|u| u.port == port && u.vlan == vlan && u.mac == mac)
        .map(|_| Endpoint::Uplink)
}

/// Answers a neighbour solicitation for an address of the sender's subnet;
/// every other link-local ICMPv6 message is ignored.
fn answer_neighbor_solicitation<P: PacketBuf>(
    pkt: &mut P,
    info: &FrameInfo,
    ty: u8,
    target: Option<core::net::Ipv6Addr>,
    src: Option<Endpoint>,
    snapshot: &PolicySnapshot,
) -> Result<(), DropReason> {
    let (Some(Endpoint::Eni(eni)), ICMPV6_NEIGHBOR_SOLICIT, Some(target)) = (src, ty, target)
    else {
        return Err(DropReason::NeighborDiscoveryIgnored);
    };
    let e = snapshot.eni(eni);
    let target = IpAddr::V6(target);
    if !snapshot.subnet(e.subnet).contains(target) || e.owns_ip(target) {
        return Err(DropReason::NeighborDiscoveryIgnored);
    }
    let mut reply = [0u8; 128];
    let len = build_neighbor_advertisement(info, MacAddr(snapshot.router_mac()), &mut reply)
        .map_err(|_| DropReason::Malformed)?;
    write_reply(pkt, &reply[..len])
}

/// Replaces the frame with `reply`.
fn write_reply<P: PacketBuf>(pkt: &mut P, reply: &[u8]) -> Result<(), DropReason> {
    if !pkt.set_len(reply.len()) {
        return Err(DropReason::NoHeadroom);
    }
    pkt.data_mut().copy_from_slice(reply);
    Ok(())
}

/// Whether the NACLs on the packet's path allow it.
fn nacl_allows(
    snapshot: &PolicySnapshot,
    src: Endpoint,
    route: Route,
    fields: &PacketFields,
) -> bool {
    let path: NaclPath = match (src, route) {
        (Endpoint::Eni(s), route) => snapshot.nacl_path(s, route),
        (Endpoint::Uplink, Route::Eni(d)) => snapshot.nacl_path_from_uplink(d),
        (Endpoint::Uplink, _) => NaclPath::default(),
    };
    path.egress.is_none_or(|s| {
        snapshot
            .nacl_decide(s, PolicyDirection::Egress, fields)
            .allow
    }) && path.ingress.is_none_or(|s| {
        snapshot
            .nacl_decide(s, PolicyDirection::Ingress, fields)
            .allow
    })
}

/// The idle timeouts of a flow between two endpoints: the stricter of the
/// two ENIs' settings (**palisade**: a flow ends when either side would
/// forget it).
fn flow_timeouts(snapshot: &PolicySnapshot, a: Endpoint, b: Endpoint) -> Timeouts {
    let path = |end| match end {
        Endpoint::Eni(e) => snapshot.eni_path(e),
        Endpoint::Uplink => None,
    };
    paths_timeouts(path(a), path(b))
}

/// [`flow_timeouts`] from the ends' records (`None` for the uplink).
#[inline(always)]
fn paths_timeouts(a: Option<&EniPath>, b: Option<&EniPath>) -> Timeouts {
    let mut t: Option<(u32, u32, u32)> = None;
    for path in [a, b].into_iter().flatten() {
        let c = path.timeouts;
        t = Some(match t {
            None => (c.tcp_established, c.udp_stream, c.udp),
            Some((est, stream, oneway)) => (
                est.min(c.tcp_established),
                stream.min(c.udp_stream),
                oneway.min(c.udp),
            ),
        });
    }
    // The snapshot's compile checked every ENI's settings, so clamping
    // changes nothing and spares the checks.
    t.map_or(Timeouts::DEFAULT, |(est, stream, oneway)| {
        Timeouts::clamped(est, stream, oneway)
    })
}

fn is_icmp(protocol: u8) -> bool {
    protocol == palisade_flow::IPPROTO_ICMP || protocol == palisade_flow::IPPROTO_ICMPV6
}

fn fragment_key(
    vpc: u32,
    fields: &PacketFields,
    fragment: Option<FragmentInfo>,
) -> Result<(u64, FragmentKey), DropReason> {
    let fragment = fragment.ok_or(DropReason::Malformed)?;
    let key = match (fields.src, fields.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => FragmentKey::new_v4(
            vpc,
            s.octets(),
            d.octets(),
            fields.protocol,
            fragment.id as u16,
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            FragmentKey::new_v6(vpc, s.octets(), d.octets(), fields.protocol, fragment.id)
        }
        _ => return Err(DropReason::Malformed),
    };
    Ok((key.hash(), key))
}

fn deny_reason(reason: DenyReason) -> DropReason {
    match reason {
        DenyReason::UnknownSource => DropReason::UnknownSource,
        DenyReason::SourceNotOwned => DropReason::Spoofed,
        DenyReason::NoRoute => DropReason::NoRoute,
        DenyReason::NaclEgress | DenyReason::NaclIngress => DropReason::NaclDenied,
        DenyReason::SecurityGroupEgress => DropReason::EgressDenied,
        DenyReason::SecurityGroupIngress => DropReason::IngressDenied,
    }
}

/// Rewrites a frame for its next hop, `p.dst`: TTL, VLAN tag, MACs.
/// Returns the output port. Always inlined: see `prepare`.
#[inline(always)]
fn forward<P: PacketBuf>(
    pkt: &mut P,
    p: &Pending,
    snapshot: &PolicySnapshot,
) -> Result<u16, DropReason> {
    let output = match p.dst {
        Endpoint::Eni(e) => snapshot.eni_path(e).map(Output::eni),
        Endpoint::Uplink => snapshot.uplink().map(Output::uplink),
    };
    forward_through(pkt, output.ok_or(DropReason::NoRoute)?, p, snapshot)
}

/// Where a forwarded frame leaves: port, VLAN and next hop's MAC.
#[derive(Clone, Copy)]
struct Output {
    port: u16,
    vlan: Option<u16>,
    mac: [u8; 6],
}

impl Output {
    #[inline(always)]
    fn eni(path: &EniPath) -> Self {
        Self {
            port: path.port,
            vlan: path.vlan(),
            mac: path.mac,
        }
    }

    #[inline(always)]
    fn uplink(uplink: &UplinkSpec) -> Self {
        Self {
            port: uplink.port,
            vlan: uplink.vlan,
            mac: uplink.mac,
        }
    }
}

/// The rewrite of a forwarded frame (TTL or hop limit, MACs, VLAN tag)
/// for `output`; returns the output port.
#[inline(always)]
fn forward_through<P: PacketBuf>(
    pkt: &mut P,
    output: Output,
    p: &Pending,
    snapshot: &PolicySnapshot,
) -> Result<u16, DropReason> {
    let frame = pkt.data_mut();
    decrement_ip_ttl(frame, usize::from(p.l3_offset), p.ipv6)
        .map_err(|_| DropReason::TtlExpired)?;
    // Before the tag changes, through the same view of the frame: `retag`
    // moves the addresses along with the rest of the Ethernet header.
    rewrite_macs(frame, MacAddr(output.mac), MacAddr(snapshot.router_mac()))
        .map_err(|_| DropReason::Malformed)?;
    retag(pkt, p.vlan, output.vlan)?;
    Ok(output.port)
}

const TPID_8021Q: [u8; 2] = [0x81, 0x00];

/// Gives the frame the output VLAN tag (or none), keeping the priority bits
/// of an existing tag. Inlined for the common case, a frame that keeps its
/// tag (or stays untagged).
#[inline(always)]
fn retag<P: PacketBuf>(pkt: &mut P, from: Option<u16>, to: Option<u16>) -> Result<(), DropReason> {
    if from == to {
        return Ok(());
    }
    change_tag(pkt, from, to)
}

/// [`retag`] for a frame whose tag changes.
fn change_tag<P: PacketBuf>(
    pkt: &mut P,
    from: Option<u16>,
    to: Option<u16>,
) -> Result<(), DropReason> {
    match (from, to) {
        (None, None) => Ok(()),
        (Some(_), Some(vid)) => {
            let data = pkt.data_mut();
            let tci = u16::from_be_bytes([data[14], data[15]]);
            let tci = (tci & 0xf000) | (vid & 0x0fff);
            data[14..16].copy_from_slice(&tci.to_be_bytes());
            Ok(())
        }
        (Some(_), None) => {
            pkt.data_mut().copy_within(0..12, 4);
            if pkt.adj(4) {
                Ok(())
            } else {
                Err(DropReason::Malformed)
            }
        }
        (None, Some(vid)) => {
            if !pkt.prepend(4) {
                return Err(DropReason::NoHeadroom);
            }
            let data = pkt.data_mut();
            data.copy_within(4..16, 0);
            data[12..14].copy_from_slice(&TPID_8021Q);
            data[14..16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
            Ok(())
        }
    }
}

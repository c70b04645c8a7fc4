//! `process()`: one worker core's packet path, sans-IO.
//!
//! A [`Worker`] owns one core's flow table, fragment table, denied-flow
//! memory and counters. The pipeline (DPDK, pcap replay, tests) hands it a
//! burst of frames, the time in seconds and the policy snapshot it loaded
//! for this burst; it gets one [`Verdict`] per frame back, with forwarded
//! frames already rewritten. No I/O, no clock, no lock, no allocation
//! after [`Worker::new`].
//!
//! # Two passes
//!
//! A flow-table lookup is a cache miss per packet at a million flows, so
//! the burst is processed in two passes, VPP's habit: the first pass does
//! everything that does not need the table and starts each packet's table
//! lines loading as soon as its key is hashed; the second pass decides,
//! by which time the lines have arrived. A few packets ahead of the
//! decisions, a second prefetch starts the entry the (by then arrived)
//! bucket tags point at, or the denied-flow memory's line when the tags
//! show no slot for the key.
//!
//! # The stages, one module each
//!
//! First pass (`stage.rs`):
//!
//! 1. **parse** (malformed → drop). Plain IPv4 TCP/UDP frames, most of the
//!    traffic, are read at fixed offsets into a 32-byte
//!    [`PlainIpv4`](palisade_wire::PlainIpv4) and staged with only their
//!    flow key (without its VPC scope, which is not hashed) and hash: an
//!    established flow's packet needs nothing else.
//!    Every other frame is parsed in full and goes through steps 2–4 now.
//! 2. **neighbours** (`neighbor.rs`): an ARP request or a neighbour
//!    solicitation for an address of the sender's subnet is answered from
//!    the router MAC (proxy ARP: every packet goes through the router, even
//!    within a subnet, so security groups always apply).
//! 3. **source** (`route.rs`): the sending ENI by (port, VLAN, source MAC),
//!    or the uplink; the source/destination check.
//! 4. **route** (`route.rs`): the receiving ENI (same or peered VPC) or the
//!    uplink, and the flow's scope (the pair of VPCs it joins). One
//!    routing function and one source check serve both the full path and
//!    plain frames the established lane declines.
//!
//! Second pass:
//!
//! 5. **decide** (`decide.rs`, `lane.rs`, `related.rs`). A plain frame first
//!    tries the *established lane*: when its flow exists and this policy
//!    generation has already routed the frame's direction in full from the
//!    same sender, the sender check and the receiver come from the flow
//!    and steps 3–4 are skipped. A plain frame no flow has is looked up,
//!    by the same hash, in the denied-flow memory ([`crate::denied`]): a
//!    denial the rules gave the same sender's flow under this generation
//!    is given again without routing or classifying. Anything else is
//!    routed (steps 3–4) and then: flow hit → NACL verdict (cached per
//!    direction and generation) → state update; miss → NACLs + egress SGs
//!    of the sender + ingress SGs of the receiver → insert a tracked flow
//!    (unless untracked), or remember the denial. ICMP errors follow the
//!    flow they quote, later fragments their first fragment's verdict.
//! 6. **rewrite** (`rewrite.rs`): TTL / hop limit with an incremental
//!    checksum update, MACs (router MAC → next hop's), VLAN tag of the
//!    output.
//!
//! Policy generations: a flow remembers the generation that last validated
//! it. On a newer one, its NACL verdicts are recomputed (a NACL deny cuts a
//! connection at once) but its security-group admission stands: tracked
//! flows survive rule removal (SEMANTICS.md). Untracked flows have no entry
//! at all: every packet is decided by the rules, so a rule change stops
//! them at once. Remembered denials are of one generation: the first
//! packet under a newer one is decided by its rules.
//!
//! The hot functions are `#[inline(always)]` where they do not depend on
//! the prefetcher: a binary with two `Worker<F>` (the bench) would
//! otherwise share one out-of-line copy between them and pay the call on
//! every packet. The differential tests run every lane against the
//! reference model ([`crate::reference`]).

mod decide;
mod lane;
mod neighbor;
mod related;
mod rewrite;
mod route;
mod stage;

use core::net::IpAddr;

use palisade_flow::{
    CapacityError, FlowKey, FlowTable, FragmentError, FragmentTable, PlainLoad, Prefetch, Seconds,
    Side, TcpFlags,
};
use palisade_policy::{EniIdx, PacketFields, PolicySnapshot, Route};
use palisade_wire::{FragmentInfo, parse_plain_ipv4};

use crate::buffer::PacketBuf;
use crate::counters::WorkerCounters;
use crate::denied::{DEFAULT_DENIED_TIMEOUT, DeniedFlows};
use crate::verdict::{DropReason, Verdict};

/// The most frames one pass handles; longer bursts are taken in chunks.
pub const MAX_BURST: usize = 64;

/// The second prefetch stage works in blocks of this many packets, one
/// block ahead of the decisions: a packet's entry starts loading 8 to 15
/// decisions before its own.
const TAG_LOOKAHEAD: usize = 8;

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

impl WorkerConfig {
    /// The defaults for a flow table of `max_flows`, with the denied-flow
    /// memory sized to the table: an eighth of its entries (between the
    /// default 32 Ki and 512 Ki, 2 to 32 MiB), so that a flood of as many
    /// distinct denied flows as a busy appliance tracks connections stays
    /// remembered instead of displacing itself into classification.
    pub fn for_flows(max_flows: usize) -> Self {
        let default = WorkerConfig::default();
        WorkerConfig {
            max_flows,
            denied_flows: (max_flows / 8).clamp(default.denied_flows, 1 << 19),
            ..default
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
    /// How a flow or a remembered denial stores the endpoint.
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
/// fixed array, never returned by value or copied out: a record carrying
/// the whole parsed frame, copied twice per packet, costs a noticeable
/// share of a cache-resident packet's time.
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PendingKind {
    /// A plain IPv4 TCP or UDP frame, not yet routed: `key` is its flow's
    /// key without the VPC scope (whose hash is the same), `side`,
    /// `tcp_flags`, `l3_offset`, `vlan`, `src_mac` and `port` are set, the
    /// rest is not. The second pass tries the established lane first.
    Plain,
    /// A packet with its own L4 header (or none needed).
    Flow,
    /// An ICMP error: `key` is the quoted packet's flow.
    IcmpError,
    /// A non-first fragment: `key` is unused, the fragment table decides.
    LaterFragment,
}

/// What the first pass did with a frame it did not drop.
enum Prepared {
    /// A flow decision is pending (filled in the array).
    Pending,
    /// The frame was answered in place (ARP, neighbour solicitation).
    Answered,
}

/// The counters every forwarded packet bumps, kept in registers for a
/// chunk and added to the worker's once.
#[derive(Default)]
struct ChunkTally {
    packets: u64,
    bytes: u64,
    forwarded: u64,
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

    /// New flows allowed, per security group (by the snapshot's group
    /// index: [`PolicySnapshot::group_id`] names it).
    pub fn group_allowed(&self) -> &[u64] {
        &self.group_allowed
    }

    /// New flows denied, per security group of the denying side.
    pub fn group_denied(&self) -> &[u64] {
        &self.group_denied
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

    /// Both passes over at most [`MAX_BURST`] frames.
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
                Some(plain) => {
                    stage::stage_plain_ipv4(slot, pkt.ingress_port(), &plain, snapshot, out)
                }
                None => stage::prepare(slot, pkt, snapshot, out),
            };
            match prepared {
                Ok(Prepared::Pending) => {
                    // Start this packet's table lines loading now: the rest
                    // of the first pass (the other packets' parsing and
                    // routing, all in cache) hides the miss.
                    if F::RETIRES_AT_ONCE {
                        stage::prefetch(&lines, &self.fragments, &self.prefetcher, out);
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
                stage::prefetch(&lines, &self.fragments, &self.prefetcher, p);
            }
        }
        // The second prefetch stage runs a few packets ahead of the
        // decisions: by then a packet's bucket tags have arrived, and its
        // entry has the decisions in between to arrive in turn. It works a
        // block of packets at a time, through one view of the table per
        // block (the decisions between need the table writable).
        let first = pending_now.get(..TAG_LOOKAHEAD).unwrap_or(pending_now);
        stage::prefetch_tagged(&lines, &self.denied, &self.prefetcher, first);
        for (b, block) in pending_now.chunks(TAG_LOOKAHEAD).enumerate() {
            if let Some(ahead) = pending_now.get((b + 1) * TAG_LOOKAHEAD..) {
                let ahead = ahead.get(..TAG_LOOKAHEAD).unwrap_or(ahead);
                stage::prefetch_tagged(&self.flows.lines(), &self.denied, &self.prefetcher, ahead);
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
                        .and_then(|()| rewrite::forward(pkt, p, snapshot)),
                    PendingKind::IcmpError => self
                        .decide_related(p, now, snapshot)
                        .and_then(|()| rewrite::forward(pkt, p, snapshot)),
                    PendingKind::LaterFragment => self
                        .decide_fragment(p, now)
                        .and_then(|()| rewrite::forward(pkt, p, snapshot)),
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
}

/// Counts a dropped packet; its verdict.
fn count_drop(counters: &mut WorkerCounters, reason: DropReason) -> Verdict {
    counters.drops[reason.index()] += 1;
    Verdict::Drop(reason)
}

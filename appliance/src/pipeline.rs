//! The poll-mode pipelines: one per worker core, pinned, run to completion.
//!
//! Each worker runs on its EAL worker lcore (launched with `Eal::scope`,
//! pinned by EAL), so the mempool's per-lcore cache serves its mbufs.
//! Each worker owns its receive queues, one transmit queue on every port,
//! its flow table and its counters; nothing on its loop takes a lock,
//! allocates or blocks. Per iteration it loads the current policy snapshot
//! once (a lock-free `arc-swap` load, through its registered reader, which
//! tells a publisher waiting for its grace period that the worker has moved
//! on), then for each of its receive queues:
//! `rx_burst` → (with several workers, on a port that cannot steer both
//! directions of a flow to one queue itself: hand each frame to the worker
//! that owns its flow, over a single-producer ring; see [`plan_steering`]) → `Worker::process` → each frame into its output
//! port's transmit batch or freed → `tx_burst` per port. Frames a transmit
//! queue does not take are freed and counted: no mbuf is ever leaked.
//!
//! A port's receive queues are spread over the workers. Each worker has its
//! own transmit queue on every port that has enough of them; on a port with
//! fewer transmit queues than workers (pcap has one), the workers without
//! one hand their frames for it to worker 0 over a multi-producer ring, and
//! worker 0 transmits them.
//!
//! Around `process()` the loop keeps its own costs small: the clock is the
//! TSC, compared against the next second's tick (no system call per poll);
//! counters go out to the scrape about every millisecond, not every poll;
//! bytes are counted once on the way in and once on the way out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use palisade_dataplane::dispatch::owner;
use palisade_dataplane::policy::{PolicyCell, PolicyReader};
use palisade_dataplane::{
    CpuPrefetch, DropReason, SharedCounters, Verdict, Worker, WorkerConfig, WorkerError,
};
use palisade_dpdk::{
    Eal, MbufBatch, RegisteredThread, RingConsumer, RingProducer, RxQueue, TxQueue, tsc_cycles,
};

use crate::output::{say, say_err};

/// How a worker transmits on one port.
#[derive(Debug)]
pub enum TxPath<'p> {
    /// A transmit queue of its own.
    Queue(TxQueue<'p>),
    /// Through the ring to the worker that owns the port's queue.
    Ring(RingProducer<'p>),
    /// No such port.
    None,
}

/// Frames per receive burst.
pub const BURST: usize = 32;

/// Publications of the counters per second, busy or idle: the scrape
/// tolerates a millisecond of staleness, and storing every port's counters
/// on every busy poll cost more than the burst's own bookkeeping.
const PUBLISH_PER_SECOND: u64 = 1000;

/// Publications between two of the per-group arrays (a few KiB each).
const GROUP_PUBLISH_EVERY: u32 = 64;

/// Idle polls between two expiry sweeps (on top of the per-burst sweep):
/// a sweep touches cold flow-table lines, which a poll that finds a packet
/// right after would wait behind.
const IDLE_SWEEP_EVERY: u32 = 8;

/// Flow-table buckets swept per idle sweep.
const IDLE_EXPIRY_BUCKETS: usize = 16 * IDLE_SWEEP_EVERY as usize;

/// `WorkerShared::lcore` of a worker not (yet) running on an EAL lcore.
pub const NO_LCORE: u32 = u32::MAX;

/// One port's counters as one worker saw them.
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Frames received.
    pub rx_packets: AtomicU64,
    /// Bytes received.
    pub rx_bytes: AtomicU64,
    /// Frames the port's transmit queue took.
    pub tx_packets: AtomicU64,
    /// Bytes the port's transmit queue took.
    pub tx_bytes: AtomicU64,
    /// Frames the transmit queue refused (ring full), freed.
    pub tx_dropped: AtomicU64,
    /// Frames handed to another worker's ring that it could not take, freed.
    pub handoff_dropped: AtomicU64,
}

/// What one worker shares with the rest of the appliance.
#[derive(Debug)]
pub struct WorkerShared {
    /// The worker's own counters and flow gauges.
    pub counters: SharedCounters,
    /// Per port (by port id).
    pub ports: Box<[PortCounters]>,
    /// The policy generation the worker last worked with.
    pub generation: AtomicU64,
    /// The core it is pinned to, if any.
    pub core: Option<usize>,
    /// The EAL lcore it runs on, as the worker itself read it at start-up
    /// ([`NO_LCORE`] before that).
    pub lcore: AtomicU32,
    /// New flows allowed, per security group index of the current policy.
    pub group_allowed: Box<[AtomicU64]>,
    /// New flows denied, per security group index of the current policy.
    pub group_denied: Box<[AtomicU64]>,
}

/// State shared by every pipeline and the control side.
#[derive(Debug)]
pub struct Pipelines {
    /// The published policy, shared with the control plane that publishes
    /// into it.
    pub policy: Arc<PolicyCell>,
    /// Set to stop every worker at its next iteration.
    pub stop: AtomicBool,
    /// Per worker.
    pub workers: Box<[WorkerShared]>,
    /// Time zero of the workers' clock (seconds since it are `now`).
    pub started: Instant,
}

impl Pipelines {
    /// Shared state for `cores.len()` workers over `ports` port ids,
    /// counting up to `groups` security groups one by one.
    pub fn new(
        policy: Arc<PolicyCell>,
        cores: &[Option<usize>],
        ports: usize,
        groups: usize,
    ) -> Self {
        Pipelines {
            policy,
            stop: AtomicBool::new(false),
            workers: cores
                .iter()
                .map(|&core| WorkerShared {
                    counters: SharedCounters::default(),
                    ports: (0..ports).map(|_| PortCounters::default()).collect(),
                    generation: AtomicU64::new(0),
                    core,
                    lcore: AtomicU32::new(NO_LCORE),
                    group_allowed: (0..groups).map(|_| AtomicU64::new(0)).collect(),
                    group_denied: (0..groups).map(|_| AtomicU64::new(0)).collect(),
                })
                .collect(),
            started: Instant::now(),
        }
    }
}

/// A worker's queues and rings, handed to its thread.
#[derive(Debug)]
pub struct WorkerIo<'p> {
    /// The receive queues it polls.
    pub rx: Vec<RxQueue<'p>>,
    /// Per receive queue (same order): true when its frames go to their
    /// owner over the hand-off rings, false when the port already steered
    /// them to this worker (symmetric RSS) or there is one worker.
    pub rx_handoff: Vec<bool>,
    /// How it transmits on each port, by port id.
    pub tx: Vec<TxPath<'p>>,
    /// Frames other workers hand it to transmit, per port id it owns the
    /// queue of.
    pub tx_from_peers: Vec<(u16, RingConsumer<'p>)>,
    /// To each other worker (None for itself), for frames it owns.
    pub to_peers: Vec<Option<RingProducer<'p>>>,
    /// From each other worker.
    pub from_peers: Vec<RingConsumer<'p>>,
}

/// Local, non-atomic per-port counts, published with relaxed stores.
#[derive(Clone, Copy, Debug, Default)]
struct PortCounts {
    rx_packets: u64,
    rx_bytes: u64,
    tx_packets: u64,
    tx_bytes: u64,
    tx_dropped: u64,
    handoff_dropped: u64,
}

struct Loop<'p, 's> {
    index: usize,
    workers: usize,
    shared: &'s Pipelines,
    /// This worker's registered view of `shared.policy`: a publisher's
    /// grace period waits for it to load the new generation.
    policy: PolicyReader,
    /// Prefetching with the CPU's instruction: the appliance links the DPDK
    /// binding anyway, and at a million flows the plain-load stand-in
    /// leaves the burst's flow-table misses waiting one behind the other.
    worker: Worker<CpuPrefetch>,
    io: WorkerIo<'p>,
    ports: Vec<PortCounts>,
    tx_batches: Vec<MbufBatch<BURST>>,
    /// Bytes in each `tx_batches` entry, summed as frames go in.
    tx_batch_bytes: Vec<u64>,
    verdicts: [Verdict; BURST],
    clock: Clock,
}

/// The workers' clock in whole seconds since `Pipelines::started`, read
/// from the TSC: a poll compares the counter with the next second's tick
/// instead of asking the kernel for the time.
#[derive(Debug)]
struct Clock {
    /// TSC ticks per second (`Eal::tsc_hz`).
    hz: u64,
    /// Seconds since `Pipelines::started`.
    now: u32,
    /// The TSC value at which `now` moves on.
    next_second: u64,
}

impl Clock {
    fn new(started: Instant, tsc_hz: u64) -> Clock {
        // EAL always measures a frequency; a zero would stop the clock.
        let hz = tsc_hz.max(1_000_000);
        let elapsed = started.elapsed();
        let into_second = hz * u64::from(elapsed.subsec_micros()) / 1_000_000;
        Clock {
            hz,
            now: elapsed.as_secs() as u32,
            next_second: tsc_cycles() + (hz - into_second),
        }
    }

    /// Seconds, given the TSC read of this poll.
    #[inline]
    fn at(&mut self, tsc: u64) -> u32 {
        while tsc >= self.next_second {
            self.now = self.now.wrapping_add(1);
            self.next_second += self.hz;
        }
        self.now
    }
}

/// Runs worker `index` until `shared.stop` is set, on the calling EAL
/// lcore `lcore` (which EAL pinned to its core), with the TSC ticking
/// `tsc_hz` times a second.
pub fn run_worker(
    index: usize,
    io: WorkerIo<'_>,
    shared: &Pipelines,
    config: WorkerConfig,
    lcore: u32,
    tsc_hz: u64,
) -> Result<(), WorkerError> {
    let me = &shared.workers[index];
    me.lcore.store(lcore, Ordering::Relaxed);
    match me.core {
        Some(core) => say!("palisade: worker {index} on lcore {lcore} (core {core})"),
        None => say!("palisade: worker {index} on lcore {lcore}"),
    }
    let ports = me.ports.len();
    let mut l = Loop {
        index,
        workers: shared.workers.len(),
        shared,
        policy: shared.policy.reader(),
        worker: Worker::with_prefetcher(config, CpuPrefetch)?,
        io,
        ports: vec![PortCounts::default(); ports],
        tx_batches: (0..ports).map(|_| MbufBatch::new()).collect(),
        tx_batch_bytes: vec![0; ports],
        verdicts: [Verdict::Drop(DropReason::Malformed); BURST],
        clock: Clock::new(shared.started, tsc_hz),
    };
    l.run();
    Ok(())
}

/// Runs worker `index` on the calling plain thread, for a core without an
/// EAL worker lcore: pins the thread to the worker's core and registers it
/// with the EAL, which gives it an lcore id and so a mempool cache.
pub fn run_worker_on_thread(
    index: usize,
    io: WorkerIo<'_>,
    shared: &Pipelines,
    config: WorkerConfig,
    eal: &Eal,
    tsc_hz: u64,
) -> Result<(), WorkerError> {
    if let Some(core) = shared.workers[index].core {
        // Best effort: an unpinned worker still forwards correctly.
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            say_err!("palisade: warning: worker {index} could not be pinned to core {core}");
        }
    }
    let registered = match eal.register_thread() {
        Ok(registered) => Some(registered),
        Err(e) => {
            say_err!(
                "palisade: warning: worker {index} runs without an lcore id (no mempool cache): {e}"
            );
            None
        }
    };
    let lcore = registered
        .as_ref()
        .map_or(NO_LCORE, RegisteredThread::lcore);
    run_worker(index, io, shared, config, lcore, tsc_hz)
}

impl Loop<'_, '_> {
    fn run(&mut self) {
        let mut rx = MbufBatch::<BURST>::new();
        let mut local = MbufBatch::<BURST>::new();
        let mut outgoing: Vec<MbufBatch<BURST>> =
            (0..self.workers).map(|_| MbufBatch::new()).collect();
        let mut idle_polls = 0u32;
        let mut publications = 0u32;
        let publish_every = (self.clock.hz / PUBLISH_PER_SECOND).max(1);
        let mut next_publication = tsc_cycles();
        while !self.shared.stop.load(Ordering::Relaxed) {
            let snapshot = self.policy.load();
            let tsc = tsc_cycles();
            let now = self.clock.at(tsc);
            let mut busy = false;
            for q in 0..self.io.rx.len() {
                let port = usize::from(self.io.rx[q].port_id());
                let received = self.io.rx[q].rx_burst(&mut rx);
                if received == 0 {
                    continue;
                }
                busy = true;
                if let Some(counts) = self.ports.get_mut(port) {
                    counts.rx_packets += received as u64;
                    counts.rx_bytes += rx.as_slice().iter().map(|m| m.len() as u64).sum::<u64>();
                }
                let handoff = self.io.rx_handoff.get(q).copied().unwrap_or(true);
                if self.workers == 1 || !handoff {
                    self.process(&mut rx, now, &snapshot);
                } else {
                    self.dispatch(&mut rx, &mut local, &mut outgoing, port);
                    self.process(&mut local, now, &snapshot);
                }
            }
            for peer in 0..self.io.from_peers.len() {
                if self.io.from_peers[peer].dequeue_burst(&mut local) > 0 {
                    busy = true;
                    self.process(&mut local, now, &snapshot);
                }
            }
            for i in 0..self.io.tx_from_peers.len() {
                let port = usize::from(self.io.tx_from_peers[i].0);
                if let Some(batch) = self.tx_batches.get_mut(port) {
                    if self.io.tx_from_peers[i].1.dequeue_burst(batch) > 0 {
                        busy = true;
                        self.tx_batch_bytes[port] =
                            batch.as_slice().iter().map(|m| m.len() as u64).sum();
                        self.flush();
                    }
                }
            }
            drop(snapshot);
            if busy {
                idle_polls = 0;
            } else {
                idle_polls = idle_polls.wrapping_add(1);
                if idle_polls % IDLE_SWEEP_EVERY == 0 {
                    self.worker.housekeeping(now, IDLE_EXPIRY_BUCKETS);
                }
                core::hint::spin_loop();
            }
            if tsc >= next_publication {
                next_publication = tsc + publish_every;
                publications = publications.wrapping_add(1);
                // The per-group arrays are the bulk of a publication: they
                // go out less often than the per-port counters.
                self.publish(publications % GROUP_PUBLISH_EVERY == 0);
            }
        }
        self.publish(true);
    }

    /// Splits a received burst: frames this worker owns stay in `local`,
    /// the others go to their owner's ring.
    fn dispatch(
        &mut self,
        rx: &mut MbufBatch<BURST>,
        local: &mut MbufBatch<BURST>,
        outgoing: &mut [MbufBatch<BURST>],
        port: usize,
    ) {
        let (me, workers) = (self.index, self.workers);
        rx.drain(|_, m| {
            let o = owner(m.data(), workers);
            let target = if o == me {
                &mut *local
            } else {
                &mut outgoing[o]
            };
            // Both batches hold a whole burst: a push cannot fail.
            let _ = target.push(m);
        });
        for (peer, batch) in outgoing.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            if let Some(Some(ring)) = self.io.to_peers.get_mut(peer) {
                ring.enqueue_burst(batch);
            }
            if !batch.is_empty() {
                if let Some(counts) = self.ports.get_mut(port) {
                    counts.handoff_dropped += batch.len() as u64;
                }
                batch.clear();
            }
        }
    }

    /// Decides a batch and sends what is forwarded.
    fn process(
        &mut self,
        batch: &mut MbufBatch<BURST>,
        now: u32,
        snapshot: &palisade_dataplane::policy::PolicySnapshot,
    ) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        self.worker
            .process(batch.as_mut_slice(), now, snapshot, &mut self.verdicts[..n]);
        let verdicts = &self.verdicts;
        let tx_batches = &mut self.tx_batches;
        let tx_batch_bytes = &mut self.tx_batch_bytes;
        batch.drain(|i, m| match verdicts[i] {
            Verdict::Forward { port } | Verdict::Reply { port } => {
                let port = usize::from(port);
                if let Some(out) = tx_batches.get_mut(port) {
                    tx_batch_bytes[port] += m.len() as u64;
                    // At most one burst per batch between flushes.
                    let _ = out.push(m);
                }
            }
            Verdict::Drop(_) => drop(m),
        });
        self.flush();
    }

    /// Sends every pending transmit batch; frees (and counts) what a queue
    /// does not take.
    fn flush(&mut self) {
        for (port, batch) in self.tx_batches.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let bytes = core::mem::take(&mut self.tx_batch_bytes[port]);
            let queued = batch.len();
            let counts = &mut self.ports[port];
            match self.io.tx.get_mut(port) {
                Some(TxPath::Queue(tx)) => {
                    let sent = tx.tx_burst(batch);
                    counts.tx_packets += sent as u64;
                    // Summed again only when the queue refused some.
                    let left_bytes: u64 = if sent == queued {
                        0
                    } else {
                        batch.as_slice().iter().map(|m| m.len() as u64).sum()
                    };
                    counts.tx_bytes += bytes.saturating_sub(left_bytes);
                    counts.tx_dropped += (queued - sent) as u64;
                }
                // Counted as transmitted by the worker that sends them.
                Some(TxPath::Ring(ring)) => {
                    let handed = ring.enqueue_burst(batch);
                    counts.handoff_dropped += (queued - handed) as u64;
                }
                Some(TxPath::None) | None => counts.tx_dropped += queued as u64,
            }
            batch.clear();
        }
    }

    /// Copies the worker's counters where the scrape reads them; `groups`
    /// adds the per-security-group arrays (a few KiB) and the generation.
    fn publish(&self, groups: bool) {
        let me = &self.shared.workers[self.index];
        me.counters
            .publish(self.worker.counters(), self.worker.flow_gauges());
        for (shared, local) in me.ports.iter().zip(&self.ports) {
            shared.rx_packets.store(local.rx_packets, Ordering::Relaxed);
            shared.rx_bytes.store(local.rx_bytes, Ordering::Relaxed);
            shared.tx_packets.store(local.tx_packets, Ordering::Relaxed);
            shared.tx_bytes.store(local.tx_bytes, Ordering::Relaxed);
            shared.tx_dropped.store(local.tx_dropped, Ordering::Relaxed);
            shared
                .handoff_dropped
                .store(local.handoff_dropped, Ordering::Relaxed);
        }
        if !groups {
            return;
        }
        me.generation
            .store(self.policy.generation(), Ordering::Relaxed);
        let pairs = [
            (&me.group_allowed, self.worker.group_allowed()),
            (&me.group_denied, self.worker.group_denied()),
        ];
        for (shared, local) in pairs {
            for (slot, value) in shared.iter().zip(local) {
                slot.store(*value, Ordering::Relaxed);
            }
        }
    }
}

/// What start-up knows of a port when it chooses how the port's frames
/// reach the worker that owns their flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SteeringCaps {
    /// The profile's name for the port.
    pub name: String,
    /// Receive queues configured.
    pub rx_queues: u16,
    /// The device hashes both directions of a flow alike
    /// (`Port::steers_symmetrically`, read back from the device).
    pub symmetric: bool,
    /// The device's redirection table size (0: unknown).
    pub reta_size: u16,
}

/// How a port's received frames reach the worker that owns their flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Steering {
    /// One worker owns every flow.
    Single,
    /// The device steers: receive queue `q` belongs to worker `q`, and the
    /// frames a worker receives are its own; no hand-off ring.
    Rss,
    /// Each received frame goes to its owner (`dispatch::owner`) over the
    /// hand-off rings; the reason says why the device cannot do it.
    Handoff(String),
}

impl Steering {
    /// The start-up line for a port.
    pub fn describe(&self, caps: &SteeringCaps, workers: usize) -> String {
        match self {
            Steering::Single => format!(
                "port {}: {} receive queue(s), one worker: no steering needed",
                caps.name, caps.rx_queues
            ),
            Steering::Rss => format!(
                "port {}: symmetric RSS over {} queues, queue N to worker N: no hand-off",
                caps.name, caps.rx_queues
            ),
            Steering::Handoff(why) => format!(
                "port {}: software hand-off to the owning worker (of {workers}): {why}",
                caps.name
            ),
        }
    }
}

/// Chooses, per port, between the device's symmetric RSS and the software
/// hand-off.
///
/// A port steers by itself when it hashes symmetrically (addresses only,
/// the symmetric key) over exactly one receive queue per worker, and its
/// redirection table divides evenly among them (DPDK's default table sends
/// entry `i` to queue `i % queues`, so every such port sends a hash to the
/// same queue index). The two directions of a flow usually arrive on two
/// different ports, and the software hand-off (`dispatch::owner`) hashes
/// differently from the device: so RSS is used only when every port can;
/// otherwise every port hands off, and the ones that could say so.
pub fn plan_steering(workers: usize, ports: &[SteeringCaps]) -> Vec<Steering> {
    if workers <= 1 {
        return vec![Steering::Single; ports.len()];
    }
    let own_reason = |caps: &SteeringCaps| -> Option<String> {
        if usize::from(caps.rx_queues) != workers {
            Some(format!(
                "{} receive queue(s) for {workers} workers (set rx_queues = {workers})",
                caps.rx_queues
            ))
        } else if !caps.symmetric {
            Some("the device does not hash both directions of a flow alike (no RSS, or not on IP addresses with the symmetric key)".to_owned())
        } else if caps.reta_size == 0 || usize::from(caps.reta_size) % workers != 0 {
            Some(format!(
                "its redirection table ({} entries) does not split evenly over {workers} queues",
                caps.reta_size
            ))
        } else {
            None
        }
    };
    let reasons: Vec<Option<String>> = ports.iter().map(own_reason).collect();
    let unable: Vec<&str> = ports
        .iter()
        .zip(&reasons)
        .filter(|(_, reason)| reason.is_some())
        .map(|(caps, _)| caps.name.as_str())
        .collect();
    if unable.is_empty() {
        return vec![Steering::Rss; ports.len()];
    }
    reasons
        .into_iter()
        .map(|reason| {
            Steering::Handoff(reason.unwrap_or_else(|| {
                format!(
                    "it could steer by symmetric RSS, but {} cannot, and both directions of a flow must meet at one owner",
                    unable.join(", ")
                )
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(name: &str, rx_queues: u16, symmetric: bool, reta_size: u16) -> SteeringCaps {
        SteeringCaps {
            name: name.to_owned(),
            rx_queues,
            symmetric,
            reta_size,
        }
    }

    #[test]
    fn every_port_steering_symmetrically_skips_the_hand_off() {
        let ports = [caps("a", 2, true, 128), caps("b", 2, true, 64)];
        assert_eq!(plan_steering(2, &ports), vec![Steering::Rss, Steering::Rss]);
        let line = Steering::Rss.describe(&ports[0], 2);
        assert_eq!(
            line,
            "port a: symmetric RSS over 2 queues, queue N to worker N: no hand-off"
        );
    }

    #[test]
    fn one_port_that_cannot_steer_keeps_every_port_on_the_hand_off() {
        let ports = [caps("a", 2, true, 128), caps("pcap", 1, false, 0)];
        let plan = plan_steering(2, &ports);
        let Steering::Handoff(why) = &plan[0] else {
            panic!("{plan:?}")
        };
        assert!(why.contains("pcap cannot"), "{why}");
        let Steering::Handoff(why) = &plan[1] else {
            panic!("{plan:?}")
        };
        assert!(why.contains("1 receive queue(s) for 2 workers"), "{why}");
        let no_rss = [caps("a", 2, true, 128), caps("tap", 2, false, 0)];
        let plan = plan_steering(2, &no_rss);
        assert!(
            matches!(&plan[1], Steering::Handoff(why) if why.contains("does not hash")),
            "{plan:?}"
        );
    }

    #[test]
    fn queues_and_redirection_table_must_match_the_workers() {
        let wrong_queues = [caps("a", 4, true, 128), caps("b", 2, true, 128)];
        let plan = plan_steering(2, &wrong_queues);
        assert!(
            matches!(&plan[0], Steering::Handoff(why) if why.contains("4 receive queue(s) for 2 workers")),
            "{plan:?}"
        );
        let odd_table = [caps("a", 3, true, 128), caps("b", 3, true, 96)];
        let plan = plan_steering(3, &odd_table);
        assert!(
            matches!(&plan[0], Steering::Handoff(why) if why.contains("128 entries")),
            "{plan:?}"
        );
        assert!(
            matches!(&plan[1], Steering::Handoff(why) if why.contains("a cannot")),
            "{plan:?}"
        );
    }

    #[test]
    fn one_worker_needs_no_steering() {
        let ports = [caps("a", 1, false, 0)];
        assert_eq!(plan_steering(1, &ports), vec![Steering::Single]);
    }

    #[test]
    fn the_tsc_clock_counts_whole_seconds() {
        let mut clock = Clock {
            hz: 1000,
            now: 5,
            next_second: 10_500,
        };
        assert_eq!(clock.at(10_499), 5);
        assert_eq!(clock.at(10_500), 6);
        // Ticks at 11 500, 12 500 and 13 500 passed since.
        assert_eq!(clock.at(13_600), 9);
        assert_eq!(clock.next_second, 14_500);
    }
}

//! The poll-mode pipelines: one per worker core, pinned, run to completion.
//!
//! Each worker owns its receive queues, one transmit queue on every port,
//! its flow table and its counters; nothing on its loop takes a lock,
//! allocates or blocks. Per iteration it loads the current policy snapshot
//! once (a lock-free `arc-swap` load, through its registered reader, which
//! tells a publisher waiting for its grace period that the worker has moved
//! on), then for each of its receive queues:
//! `rx_burst` → (with several workers: hand each frame to the worker that
//! owns its flow, over a single-producer ring, when the port cannot hash
//! symmetrically itself) → `Worker::process` → each frame into its output
//! port's transmit batch or freed → `tx_burst` per port. Frames a transmit
//! queue does not take are freed and counted: no mbuf is ever leaked.
//!
//! A port's receive queues are spread over the workers. Each worker has its
//! own transmit queue on every port that has enough of them; on a port with
//! fewer transmit queues than workers (pcap has one), the workers without
//! one hand their frames for it to worker 0 over a multi-producer ring, and
//! worker 0 transmits them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use palisade_dataplane::dispatch::owner;
use palisade_dataplane::policy::{PolicyCell, PolicyReader};
use palisade_dataplane::{
    CpuPrefetch, DropReason, SharedCounters, Verdict, Worker, WorkerConfig, WorkerError,
};
use palisade_dpdk::{MbufBatch, RingConsumer, RingProducer, RxQueue, TxQueue};

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

/// Idle polls between two publications of an idle worker's counters.
const IDLE_PUBLISH_INTERVAL: u32 = 1 << 12;

/// Busy polls between two publications of the per-group counters.
const GROUP_PUBLISH_INTERVAL: u32 = 1 << 10;

/// Flow-table buckets swept per idle poll (on top of the per-burst sweep).
const IDLE_EXPIRY_BUCKETS: usize = 16;

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
    verdicts: [Verdict; BURST],
}

/// Runs worker `index` until `shared.stop` is set. Pins the calling thread
/// to the worker's core first, if it has one.
pub fn run_worker(
    index: usize,
    io: WorkerIo<'_>,
    shared: &Pipelines,
    config: WorkerConfig,
) -> Result<(), WorkerError> {
    let me = &shared.workers[index];
    if let Some(core) = me.core {
        // Best effort: an unpinned worker still forwards correctly.
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            eprintln!("palisade: warning: worker {index} could not be pinned to core {core}");
        }
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
        verdicts: [Verdict::Drop(DropReason::Malformed); BURST],
    };
    l.run();
    Ok(())
}

impl Loop<'_, '_> {
    fn run(&mut self) {
        let mut rx = MbufBatch::<BURST>::new();
        let mut local = MbufBatch::<BURST>::new();
        let mut outgoing: Vec<MbufBatch<BURST>> =
            (0..self.workers).map(|_| MbufBatch::new()).collect();
        let mut idle_polls = 0u32;
        let mut busy_polls = 0u32;
        while !self.shared.stop.load(Ordering::Relaxed) {
            let snapshot = self.policy.load();
            let now = self.shared.started.elapsed().as_secs() as u32;
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
                if self.workers == 1 {
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
                        self.flush();
                    }
                }
            }
            drop(snapshot);
            if busy {
                idle_polls = 0;
                busy_polls = busy_polls.wrapping_add(1);
                // The per-group arrays are the bulk of a publication: they
                // go out less often than the per-burst counters.
                self.publish(busy_polls % GROUP_PUBLISH_INTERVAL == 0);
            } else {
                idle_polls += 1;
                self.worker.housekeeping(now, IDLE_EXPIRY_BUCKETS);
                if idle_polls % IDLE_PUBLISH_INTERVAL == 0 {
                    self.publish(true);
                }
                core::hint::spin_loop();
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
        batch.drain(|i, m| match verdicts[i] {
            Verdict::Forward { port } | Verdict::Reply { port } => {
                if let Some(out) = tx_batches.get_mut(usize::from(port)) {
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
            let bytes: u64 = batch.as_slice().iter().map(|m| m.len() as u64).sum();
            let queued = batch.len();
            let counts = &mut self.ports[port];
            match self.io.tx.get_mut(port) {
                Some(TxPath::Queue(tx)) => {
                    let sent = tx.tx_burst(batch);
                    counts.tx_packets += sent as u64;
                    let left_bytes: u64 = batch.as_slice().iter().map(|m| m.len() as u64).sum();
                    counts.tx_bytes += bytes - left_bytes;
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

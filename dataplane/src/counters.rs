//! Per-worker counters: plain memory owned by one core, written without
//! atomics on the packet path and summed by the metrics scrape (Firecracker's
//! and VPP's habit). A reader on another core may see a slightly stale
//! value, never a torn one on x86_64's aligned 64-bit stores.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::verdict::DropReason;

/// What one worker has seen and done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerCounters {
    /// Frames received.
    pub packets: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Frames forwarded.
    pub forwarded: u64,
    /// ARP / neighbour solicitations answered.
    pub replied: u64,
    /// Frames dropped, by reason ([`DropReason::index`]).
    pub drops: [u64; DropReason::COUNT],
    /// Packets of known flows.
    pub flow_hits: u64,
    /// Tracked flows created.
    pub new_flows: u64,
    /// Packets allowed as untracked (decided by the rules alone).
    pub untracked: u64,
    /// ICMP errors allowed as related to a tracked flow.
    pub related: u64,
    /// Flows re-validated against a newer policy generation.
    pub revalidations: u64,
    /// Denied packets decided by the denied-flow memory
    /// ([`crate::denied`]) instead of the rules: each is also counted in
    /// `drops` under the reason the rules gave.
    pub denied_remembered: u64,
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            packets: 0,
            bytes: 0,
            forwarded: 0,
            replied: 0,
            drops: [0; DropReason::COUNT],
            flow_hits: 0,
            new_flows: 0,
            untracked: 0,
            related: 0,
            revalidations: 0,
            denied_remembered: 0,
        }
    }
}

impl WorkerCounters {
    /// Frames dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Frames dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds another worker's counters (the scrape's sum).
    pub fn accumulate(&mut self, other: &WorkerCounters) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.forwarded += other.forwarded;
        self.replied += other.replied;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
        self.flow_hits += other.flow_hits;
        self.new_flows += other.new_flows;
        self.untracked += other.untracked;
        self.related += other.related;
        self.revalidations += other.revalidations;
        self.denied_remembered += other.denied_remembered;
    }
}

/// A worker's counters as other threads read them: the worker copies its
/// plain counters here with relaxed stores once per burst (a handful of
/// `mov`s on x86_64, no locked instruction, no shared cache line written by
/// two cores), and the metrics scrape loads them whenever it likes.
#[derive(Debug)]
pub struct SharedCounters {
    slots: [AtomicU64; SHARED_SLOTS],
}

/// Scalar counters, then drops by reason, then the flow table's gauges.
const SCALARS: usize = 10;
const FLOW_GAUGES: usize = 4;
const SHARED_SLOTS: usize = SCALARS + DropReason::COUNT + FLOW_GAUGES;

/// The flow table's state, as exported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowGauges {
    /// Live (and not yet reclaimed) flows.
    pub flows: u64,
    /// The most flows the table admits.
    pub capacity: u64,
    /// Room left: AWS's `conntrack_allowance_available`.
    pub available: u64,
    /// New flows refused because the table was full (or its probe window):
    /// AWS's `conntrack_allowance_exceeded`.
    pub refused: u64,
}

impl Default for SharedCounters {
    fn default() -> Self {
        SharedCounters {
            slots: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl SharedCounters {
    /// Copies a worker's counters and flow gauges in (the worker's side).
    pub fn publish(&self, c: &WorkerCounters, flows: FlowGauges) {
        let scalars = [
            c.packets,
            c.bytes,
            c.forwarded,
            c.replied,
            c.flow_hits,
            c.new_flows,
            c.untracked,
            c.related,
            c.revalidations,
            c.denied_remembered,
        ];
        let gauges = [flows.flows, flows.capacity, flows.available, flows.refused];
        let values = scalars.iter().chain(c.drops.iter()).chain(gauges.iter());
        for (slot, value) in self.slots.iter().zip(values) {
            slot.store(*value, Ordering::Relaxed);
        }
    }

    /// Reads the last published counters (the scrape's side).
    pub fn load(&self) -> (WorkerCounters, FlowGauges) {
        let v = |i: usize| self.slots[i].load(Ordering::Relaxed);
        let mut c = WorkerCounters {
            packets: v(0),
            bytes: v(1),
            forwarded: v(2),
            replied: v(3),
            flow_hits: v(4),
            new_flows: v(5),
            untracked: v(6),
            related: v(7),
            revalidations: v(8),
            denied_remembered: v(9),
            ..WorkerCounters::default()
        };
        for (i, d) in c.drops.iter_mut().enumerate() {
            *d = v(SCALARS + i);
        }
        let g = SCALARS + DropReason::COUNT;
        let gauges = FlowGauges {
            flows: v(g),
            capacity: v(g + 1),
            available: v(g + 2),
            refused: v(g + 3),
        };
        (c, gauges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_counters_round_trip_every_field() {
        // Distinct values everywhere, so a swapped slot shows.
        let mut c = WorkerCounters {
            packets: 1,
            bytes: 2,
            forwarded: 3,
            replied: 4,
            flow_hits: 5,
            new_flows: 6,
            untracked: 7,
            related: 8,
            revalidations: 9,
            denied_remembered: 10,
            ..WorkerCounters::default()
        };
        for (i, d) in c.drops.iter_mut().enumerate() {
            *d = 100 + i as u64;
        }
        let g = FlowGauges {
            flows: 11,
            capacity: 12,
            available: 13,
            refused: 14,
        };
        let shared = SharedCounters::default();
        shared.publish(&c, g);
        assert_eq!(shared.load(), (c.clone(), g));
        let mut sum = WorkerCounters::default();
        sum.accumulate(&c);
        sum.accumulate(&c);
        assert_eq!(sum.packets, 2);
        assert_eq!(sum.dropped_total(), 2 * c.dropped_total());
    }
}

//! Per-worker counters: plain memory owned by one core, written without
//! atomics on the packet path and summed by the metrics scrape (Firecracker's
//! and VPP's habit). A reader on another core may see a slightly stale
//! value, never a torn one on x86_64's aligned 64-bit stores.

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
    }
}

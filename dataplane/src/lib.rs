//! palisade's packet path, sans-IO.
//!
//! [`Worker::process`] takes a burst of frames, the time and the policy
//! snapshot of this burst, and returns a [`Verdict`] per frame: the whole
//! of DESIGN.md's packet path except the I/O. The DPDK pipeline, pcap
//! replay and the tests are adapters around it, so almost every test runs
//! with no DPDK at all, deterministically.
//!
//! - [`buffer`]: what a frame must offer ([`PacketBuf`]); [`HeapPacket`].
//! - [`process`]: the [`Worker`] and its two-pass burst loop.
//! - [`prefetch`]: what starts the burst's flow-table lines loading: plain
//!   loads, or (feature `dpdk`) the CPU's prefetch instruction.
//! - [`verdict`]: [`Verdict`] and the one [`DropReason`] enum every counter uses.
//! - [`counters`]: per-worker counters, summed on read.
//! - [`denied`]: the memory of denied flows, so a denied flood costs a
//!   lookup per packet rather than a classification.
//! - [`dispatch`]: which worker owns a frame when the NIC cannot hash.
//! - [`reference`](mod@reference): the same semantics as plain code, the oracle of the
//!   differential tests.
//! - [`testkit`]: frames and the demo world for tests, benches and fuzzing.
//!
//! The pieces it stands on are their own crates: `palisade-wire` (parsing
//! and editing frames), `palisade-flow` (connection tracking) and
//! `palisade-policy` (the compiled policy and its publication).

pub mod buffer;
pub mod counters;
pub mod denied;
pub mod dispatch;
pub mod prefetch;
pub mod process;
pub mod reference;
pub mod testkit;
pub mod verdict;

pub use buffer::{HeapPacket, PacketBuf};
pub use counters::{FlowGauges, SharedCounters, WorkerCounters};
#[cfg(feature = "dpdk")]
pub use prefetch::CpuPrefetch;
pub use prefetch::{PlainLoad, Prefetch};
pub use process::{MAX_BURST, Worker, WorkerConfig, WorkerError};
pub use verdict::{DropReason, Verdict};

// The crates `process()` is built from, re-exported for adapters and tests.
pub use palisade_flow as flow;
pub use palisade_policy as policy;
pub use palisade_wire as wire;

//! A safe layer over DPDK: the EAL, mempools, ports, mbufs, burst rx/tx and
//! rings. Palisade's packet I/O sits on this crate: a worker core calls
//! [`RxQueue::rx_burst`] into an [`MbufBatch`], hands the packets to the
//! (DPDK-free) pipeline, and gives what survives to [`TxQueue::tx_burst`].
//!
//! This is, with `palisade-dpdk-sys`, the only crate allowed `unsafe`; every
//! block says why it is sound. The ownership rules it enforces:
//!
//! - The EAL starts once per process ([`Eal::init`]); everything that points
//!   into DPDK memory ([`Mempool`], [`Port`], [`Ring`] handles) borrows the
//!   [`Eal`], so the EAL cannot be cleaned up under them.
//! - An [`Mbuf`] is owned: it is freed exactly once, on drop, unless it is
//!   handed to DPDK (`tx_burst`, a ring, [`Mbuf::into_raw`]).
//! - A port queue is driven by one thread at a time: [`RxQueue`] and
//!   [`TxQueue`] are unique handles, borrowed from their [`Port`], so the
//!   port cannot be stopped or reconfigured while a queue is in use.
//! - The fast path (`rx_burst`, `tx_burst`, ring bursts, mbuf accessors)
//!   never allocates and never panics: bursts fill fixed-size arrays, and
//!   whatever a burst does not take stays with the caller.
#![allow(unsafe_code)]

mod eal;
mod error;
mod lcore;
mod mbuf;
mod mempool;
mod port;
mod prefetch;
mod ring;

pub use eal::{Eal, process_is_privileged};
pub use error::DpdkError;
pub use lcore::{LcoreHandle, LcoreScope, RegisteredThread, tsc_cycles};
pub use mbuf::{DEFAULT_BURST, Mbuf, MbufBatch, MbufError};
pub use mempool::Mempool;
pub use port::{
    Link, MacAddr, Port, PortInfo, PortStats, RxQueue, SYMMETRIC_RSS_KEY_40, TxQueue,
    symmetric_rss_key,
};
pub use prefetch::prefetch0;
pub use ring::{Ring, RingConsumer, RingProducer, RingSync};

/// The raw bindings, for code that must call DPDK functions this layer does
/// not wrap yet (with `unsafe`, so only from this crate's peers).
pub use palisade_dpdk_sys as sys;

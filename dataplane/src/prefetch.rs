//! The prefetchers a [`crate::Worker`] can be built with.
//!
//! The flow tables take the prefetch instruction as a
//! [`Prefetch`] implementation because the real one needs `unsafe`, which
//! only the DPDK binding crate may hold. [`PlainLoad`] (the default) works
//! everywhere; [`CpuPrefetch`] (feature `dpdk`) is the instruction itself,
//! for the appliance's pipelines. Either way verdicts and output bytes are
//! the same: a prefetch only changes timing.

pub use palisade_flow::{PlainLoad, Prefetch};

/// `prefetcht0` through the DPDK binding's safe wrapper
/// ([`palisade_dpdk::prefetch0`]): the burst's misses overlap without
/// holding reorder-buffer slots, unlike [`PlainLoad`].
#[cfg(feature = "dpdk")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuPrefetch;

#[cfg(feature = "dpdk")]
impl Prefetch for CpuPrefetch {
    #[inline(always)]
    fn prefetch<T: Copy>(&self, what: &T) {
        palisade_dpdk::prefetch0(what);
    }
}

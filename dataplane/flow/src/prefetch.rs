//! How the tables ask the CPU to start loading a cache line.
//!
//! A batched lookup (hash the burst, prefetch every bucket and likely entry,
//! then look each packet up) only pays off if the loads of the whole burst
//! are in flight together. The right instruction for that is a prefetch
//! (`prefetcht0` on x86_64), but on this toolchain it is reachable only
//! through an `unsafe` intrinsic, and this crate stays free of `unsafe` and
//! of DPDK. So the instruction is injected: the tables take any
//! [`Prefetch`], the DPDK binding supplies the real one, and tests, fuzzing
//! and the reference model use [`PlainLoad`].

/// Starts loading the cache line that holds `what`, so that a later read
/// finds it in cache. A hint: it must not change any result, only timing.
pub trait Prefetch {
    /// Whether starting a load lets the core go on with other work. True
    /// for a real prefetch, so callers issue it as early as they can; false
    /// for [`PlainLoad`], whose loads each hold a reorder-buffer slot until
    /// they complete, so callers issue them together in one tight loop
    /// instead of among other work they would stall.
    const RETIRES_AT_ONCE: bool = true;

    /// Starts loading the cache line holding the first byte of `what`.
    /// Callers pass the smallest field they will read (a byte), so that a
    /// plain-load implementation loads one byte, not a whole entry.
    fn prefetch<T: Copy>(&self, what: &T);
}

/// The stand-in without `unsafe`: a plain load whose result nobody uses.
///
/// An out-of-order core issues the loads of a whole burst back to back, so
/// their misses overlap as prefetches' would, with one difference that
/// shows at a million flows: each load holds a reorder-buffer slot until
/// its line arrives, so only as many misses overlap as the window holds,
/// and everything behind them stalls. `black_box` keeps the compiler from
/// deleting the unused load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlainLoad;

impl Prefetch for PlainLoad {
    const RETIRES_AT_ONCE: bool = false;

    #[inline(always)]
    fn prefetch<T: Copy>(&self, what: &T) {
        std::hint::black_box(*what);
    }
}

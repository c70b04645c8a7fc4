//! The CPU's prefetch instruction behind a safe function.
//!
//! `core::arch::x86_64::_mm_prefetch` is an `unsafe` function on this
//! toolchain (it is declared with `#[target_feature(enable = "sse")]`),
//! although the instruction can do no harm: it is a hint that never faults,
//! reads nothing architecturally and changes no program-visible state. The
//! workspace allows `unsafe` only in the DPDK binding crates, so the one
//! audited call lives here, and the sans-IO crates (the flow tables) take it
//! as an injected `Prefetch` implementation (`palisade-dataplane`'s `dpdk`
//! feature). It is the instruction DPDK's own `rte_prefetch0` emits, called
//! directly rather than through the C shim so that it inlines into the
//! caller's loop.

/// Starts loading the cache line holding the first byte of `what` into
/// every cache level (`prefetcht0`), without waiting for it: the caller
/// goes on while the line travels, so a burst's worth of misses overlap.
/// On targets other than x86_64 it does nothing.
#[inline(always)]
pub fn prefetch0<T: ?Sized>(what: &T) {
    let address = core::ptr::from_ref(what).cast::<i8>();
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the intrinsic's only requirement is SSE, which is part of the
    // x86_64 baseline (every x86_64 CPU has it, and the target enables it).
    // `prefetcht0` never faults and performs no architectural read, whatever
    // the address; here the address even comes from a live reference.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(address);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

//! The EAL: DPDK's process-wide runtime (memory, lcores, buses, drivers).
//! The appliance starts it once, before any port or mempool exists, from the
//! arguments a `dpdk-config` profile produces, and tears it down last.

use std::ffi::{CString, c_void};
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

use palisade_dpdk_sys as sys;

use crate::error::DpdkError;

/// Set by the first `Eal::init`, never cleared: DPDK cannot initialise its
/// EAL twice in one process, not even after `rte_eal_cleanup`.
static EAL_STARTED: AtomicBool = AtomicBool::new(false);

/// Proof that the EAL is running. Mempools, ports and rings borrow it, so
/// the borrow checker keeps clean-up after the last of them.
///
/// Dropping it stops and closes every port, then runs `rte_eal_cleanup` —
/// unless mbufs are still outstanding (see [`Eal::cleanup`]).
#[derive(Debug)]
pub struct Eal {
    /// Not constructible outside this module. `Sync`, so worker threads
    /// started with `std::thread::scope` can borrow it.
    _private: PhantomData<()>,
    /// Set once `rte_eal_cleanup` has run: after it, no DPDK call is valid,
    /// including the port and mempool walks of a second clean-up attempt.
    cleaned_up: bool,
}

impl Eal {
    /// Initialises the EAL with a complete argv (`args[0]` is the program
    /// name, as `rte_eal_init` expects).
    ///
    /// Fails with [`DpdkError::AlreadyInitialised`] on any call after the
    /// first, whether the first succeeded or not.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        let argv_strings = args
            .iter()
            .map(|arg| {
                CString::new(arg.as_str()).map_err(|_| DpdkError::InteriorNul {
                    what: "EAL argument",
                    value: arg.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if EAL_STARTED
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(DpdkError::AlreadyInitialised);
        }
        // rte_eal_init may keep pointers into argv (and getopt permutes it),
        // so the strings and the array live for the rest of the process. It
        // runs once per process, so this is a bounded, one-time leak.
        let argv: &'static mut [*mut c_char] = Vec::leak(
            argv_strings
                .into_iter()
                .map(CString::into_raw)
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect(),
        );
        let argc = (argv.len() - 1) as i32;
        // SAFETY: argv holds argc valid NUL-terminated strings followed by a
        // NULL, all leaked so they outlive the EAL; EAL_STARTED guarantees
        // this is the only call in the process.
        let rc = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::from_rte_errno(format!(
                "rte_eal_init({})",
                args.join(" ")
            )));
        }
        Ok(Eal {
            _private: PhantomData,
            cleaned_up: false,
        })
    }

    /// The ids of every ethdev port the EAL probed (PCI devices and vdevs).
    pub fn port_ids(&self) -> impl Iterator<Item = u16> + '_ {
        let mut next = 0u16;
        std::iter::from_fn(move || {
            // SAFETY: rte_eth_find_next accepts any id and returns the next
            // valid port id at or after it, or RTE_MAX_ETHPORTS.
            let id = unsafe { sys::rte_eth_find_next(next) };
            if u32::from(id) >= sys::RTE_MAX_ETHPORTS {
                return None;
            }
            next = id + 1;
            Some(id)
        })
    }

    /// The lcore the calling thread runs as (`u32::MAX` for a thread the
    /// EAL did not create).
    pub fn lcore_id(&self) -> u32 {
        // SAFETY: reads a thread-local; no preconditions.
        unsafe { sys::palisade_lcore_id() }
    }

    /// The NUMA socket of the calling thread (`u32::MAX` if unknown).
    pub fn socket_id(&self) -> u32 {
        // SAFETY: reads a thread-local; no preconditions.
        unsafe { sys::rte_socket_id() }
    }

    /// Stops and closes every port, then frees the EAL's memory with
    /// `rte_eal_cleanup`.
    ///
    /// Refuses (and leaves the memory mapped) when any mempool still misses
    /// mbufs: an [`crate::Mbuf`] may outlive the borrows of `Eal`, and
    /// freeing the memory under it would be a use-after-free. The ports are
    /// closed either way, which returns the mbufs their rings held.
    pub fn cleanup(mut self) -> Result<(), DpdkError> {
        self.cleanup_in_place()
    }

    fn cleanup_in_place(&mut self) -> Result<(), DpdkError> {
        if self.cleaned_up {
            return Ok(());
        }
        let ids: Vec<u16> = self.port_ids().collect();
        for id in ids {
            // SAFETY: no Port handle can exist (they borrow self), so no
            // thread is polling these queues; stop and close accept any
            // valid port id and report errors by return value, which we
            // ignore: we are tearing down regardless.
            unsafe {
                sys::rte_eth_dev_stop(id);
            }
            // SAFETY: as above.
            unsafe {
                sys::rte_eth_dev_close(id);
            }
        }
        let missing = mbufs_outstanding();
        if missing > 0 {
            return Err(DpdkError::MbufsOutstanding(missing));
        }
        self.cleaned_up = true;
        // SAFETY: every port is closed, no mbuf is outstanding, and no
        // mempool, port or ring handle exists (they borrow self); the flag
        // above makes this the only call.
        let rc = unsafe { sys::rte_eal_cleanup() };
        crate::error::check(|| "rte_eal_cleanup".into(), rc).map(drop)
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `Eal::cleanup` returns them.
        let _ = self.cleanup_in_place();
    }
}

/// Sums, over every mempool in the process, the objects not back in it.
fn mbufs_outstanding() -> u64 {
    unsafe extern "C" fn count_missing(pool: *mut sys::rte_mempool, total: *mut c_void) {
        // SAFETY: rte_mempool_walk passes each live mempool.
        let size = unsafe { (*pool).size };
        // SAFETY: as above.
        let available = unsafe { sys::rte_mempool_avail_count(pool) };
        // SAFETY: `total` is the &mut u64 passed below, alive for the walk.
        let total = unsafe { &mut *total.cast::<u64>() };
        *total += u64::from(size.saturating_sub(available));
    }
    let mut total = 0u64;
    // SAFETY: the callback only reads the pool and writes `total`, which
    // outlives the call.
    unsafe {
        sys::rte_mempool_walk(Some(count_missing), (&raw mut total).cast());
    }
    total
}

/// True when the process runs as root, which DPDK needs here (it maps
/// memory, opens TAP devices and pins threads). Tests that start the EAL
/// skip themselves, loudly, when this is false.
pub fn process_is_privileged() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

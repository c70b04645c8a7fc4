//! Running closures on the EAL's worker lcores.
//!
//! `rte_eal_init` starts one thread per worker lcore (`-l` minus the main
//! lcore), pins it to its core and parks it. Work launched there runs as
//! that lcore: `rte_lcore_id()` is its id, so the mempool's per-lcore cache
//! serves its mbuf allocations and frees. A plain thread has no lcore id
//! and goes to the pool's shared ring for every mbuf.
//!
//! [`Eal::scope`] is `std::thread::scope` for lcores: closures launched in
//! it may borrow anything that outlives the scope (ports' queues, shared
//! counters), because the scope waits for every lcore it launched before it
//! returns, whether the body returned or panicked.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use palisade_dpdk_sys as sys;

use crate::eal::Eal;
use crate::error::DpdkError;

/// `rte_eal_remote_launch` returns -EBUSY for an lcore still running.
const EBUSY: c_int = 16;

/// What a launched closure left: its value, or the payload of its panic.
type Outcome<T> = Mutex<Option<std::thread::Result<T>>>;

/// The closure handed to the lcore, its lifetime erased (see `launch`).
type Job = Box<dyn FnOnce() + Send + 'static>;

impl Eal {
    /// Runs `body` with a scope in which closures can be launched on worker
    /// lcores. Every lcore launched in the scope is waited for before this
    /// returns (like `std::thread::scope`), so the closures may borrow from
    /// the caller. A panic of `body` is re-raised after that wait; a panic of
    /// a launched closure is reported by [`LcoreHandle::join`] (and ignored
    /// when the handle is not joined).
    pub fn scope<'env, F, R>(&'env self, body: F) -> R
    where
        F: for<'scope> FnOnce(&'scope LcoreScope<'scope, 'env>) -> R,
    {
        let scope = LcoreScope {
            eal: self,
            launched: RefCell::new(Vec::new()),
            scope: PhantomData,
            env: PhantomData,
        };
        let result = catch_unwind(AssertUnwindSafe(|| body(&scope)));
        for &lcore in scope.launched.borrow().iter() {
            // SAFETY: `lcore` was validated as a worker lcore and launched
            // by this scope; waiting only reads its state.
            unsafe {
                sys::rte_eal_wait_lcore(lcore);
            }
        }
        match result {
            Ok(value) => value,
            Err(payload) => resume_unwind(payload),
        }
    }

    /// The main lcore: the thread that called `Eal::init`.
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: reads the EAL configuration, set up by rte_eal_init.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// The worker lcores, in increasing order: `-l` minus the main lcore.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut lcores = Vec::new();
        let mut next = u32::MAX;
        loop {
            // SAFETY: rte_get_next_lcore accepts any value (u32::MAX starts
            // the walk) and returns RTE_MAX_LCORE past the last lcore.
            next = unsafe { sys::rte_get_next_lcore(next, 1, 0) };
            if next >= sys::RTE_MAX_LCORE {
                return lcores;
            }
            lcores.push(next);
        }
    }

    /// The TSC frequency EAL measured at start-up, in Hz (see [`tsc_cycles`]).
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: reads a value rte_eal_init computed; no preconditions.
        unsafe { sys::rte_get_tsc_hz() }
    }
}

/// The CPU's time-stamp counter (`rte_get_tsc_cycles`): a clock read of a
/// few cycles, no system call; [`Eal::tsc_hz`] converts it.
#[inline]
pub fn tsc_cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc exists on every x86_64 CPU and only reads the
        // counter (what rte_rdtsc does, inlined here instead of a call).
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: reads the cycle counter; no preconditions.
        unsafe { sys::palisade_get_tsc_cycles() }
    }
}

/// Launches closures on worker lcores; see [`Eal::scope`]. Not `Sync`: only
/// the thread running the scope's body launches.
#[derive(Debug)]
pub struct LcoreScope<'scope, 'env: 'scope> {
    eal: &'env Eal,
    /// Every lcore launched, waited for when the scope ends.
    launched: RefCell<Vec<u32>>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// A closure running on a worker lcore.
#[derive(Debug)]
pub struct LcoreHandle<'scope, T> {
    lcore: u32,
    outcome: Arc<Outcome<T>>,
    scope: PhantomData<&'scope ()>,
}

impl<'scope> LcoreScope<'scope, '_> {
    /// Runs `f` on worker lcore `lcore` (`rte_eal_remote_launch`).
    ///
    /// Fails when the caller is not the main lcore, when `lcore` is not a
    /// worker lcore, or when it still runs an earlier closure.
    pub fn launch<F, T>(&'scope self, lcore: u32, f: F) -> Result<LcoreHandle<'scope, T>, DpdkError>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let main = self.eal.main_lcore();
        let caller = self.eal.lcore_id();
        if caller != main {
            return Err(DpdkError::NotMainLcore { main, caller });
        }
        let workers = self.eal.worker_lcores();
        if !workers.contains(&lcore) {
            return Err(DpdkError::NotAWorkerLcore {
                lcore,
                workers: workers
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let outcome: Arc<Outcome<T>> = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&outcome);
        let job: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(f));
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        });
        // SAFETY: only the lifetime changes. The job borrows at most for
        // 'scope, and Eal::scope waits for this lcore (so for the job to
        // finish and be dropped) before 'scope ends — even on a panic.
        let job: Job =
            unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + 'scope>, Job>(job) };
        let raw = Box::into_raw(Box::new(job));
        // SAFETY: `lcore` is a worker lcore (checked above) and we are on
        // the main lcore, the only thread launching, so the state check in
        // rte_eal_remote_launch cannot race another launch. `raw` is a
        // valid Box the trampoline takes ownership of.
        let rc = unsafe { sys::rte_eal_remote_launch(Some(trampoline), raw.cast(), lcore) };
        if rc != 0 {
            // SAFETY: the launch failed, so the lcore never saw `raw`: it
            // is still ours, from Box::into_raw above.
            drop(unsafe { Box::from_raw(raw) });
            return Err(if rc == -EBUSY {
                DpdkError::LcoreBusy(lcore)
            } else {
                DpdkError::call(format!("rte_eal_remote_launch(lcore {lcore})"), rc)
            });
        }
        self.launched.borrow_mut().push(lcore);
        Ok(LcoreHandle {
            lcore,
            outcome,
            scope: PhantomData,
        })
    }
}

impl<T> LcoreHandle<'_, T> {
    /// The lcore the closure runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the closure to finish (`rte_eal_wait_lcore`, a busy wait:
    /// stop the closure first) and returns its value, or its panic payload.
    pub fn join(self) -> Result<T, Box<dyn Any + Send + 'static>> {
        // SAFETY: the lcore was validated and launched by our scope; the
        // wait only reads its state.
        unsafe {
            sys::rte_eal_wait_lcore(self.lcore);
        }
        // The lcore is back in WAIT, so the job has run and stored its
        // outcome (the EAL's release/acquire on the state orders it).
        let outcome = self
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        outcome.unwrap_or_else(|| Err(Box::new("the lcore closure left no result")))
    }
}

/// The `lcore_function_t` every launch runs: takes the boxed job back and
/// calls it. The job catches its own panics, so nothing unwinds into C.
unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> `launch` leaked for this one call.
    let job = unsafe { Box::from_raw(arg.cast::<Job>()) };
    job();
    0
}

/// A plain thread registered with the EAL (`rte_thread_register`): it has
/// an lcore id of its own, so the mempool's per-lcore cache serves it like
/// an EAL lcore. For a worker that cannot have an EAL lcore (its core is
/// the main lcore's). Unregisters on drop; stays on its thread.
#[derive(Debug)]
pub struct RegisteredThread<'eal> {
    lcore: u32,
    _eal: PhantomData<&'eal Eal>,
    /// Registration belongs to the calling thread.
    _not_send: PhantomData<*const ()>,
}

impl Eal {
    /// Registers the calling thread, which must not be an EAL lcore yet.
    pub fn register_thread(&self) -> Result<RegisteredThread<'_>, DpdkError> {
        let current = self.lcore_id();
        if current != u32::MAX {
            return Err(DpdkError::call(
                format!("rte_thread_register (the thread already is lcore {current})"),
                EEXIST,
            ));
        }
        // SAFETY: the EAL runs (we hold &Eal); registers the calling
        // thread, or fails with rte_errno set.
        let rc = unsafe { sys::rte_thread_register() };
        if rc != 0 {
            return Err(DpdkError::from_rte_errno("rte_thread_register"));
        }
        Ok(RegisteredThread {
            lcore: self.lcore_id(),
            _eal: PhantomData,
            _not_send: PhantomData,
        })
    }
}

/// `rte_thread_register` refuses a thread that already has an lcore.
const EEXIST: c_int = 17;

impl RegisteredThread<'_> {
    /// The lcore id the EAL gave the thread.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }
}

impl Drop for RegisteredThread<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard is not Send, so this is the registered thread;
        // releases its lcore id.
        unsafe { sys::rte_thread_unregister() }
    }
}

//! Mbuf pools: the fixed stock of packet buffers a port receives into and
//! the appliance builds packets from. Sized once at start-up; the packet
//! path only takes from and returns to it.

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

use palisade_dpdk_sys as sys;

use crate::eal::Eal;
use crate::error::DpdkError;
use crate::mbuf::{Mbuf, MbufBatch};

/// A pool of packet buffers (`rte_pktmbuf_pool_create`).
///
/// Dropping the handle does not free the pool: port queues configured with
/// it and mbufs taken from it keep pointing into it, and neither carries a
/// borrow. Its memory returns to DPDK at EAL clean-up (which checks that
/// every mbuf came back). Its name stays taken until then.
#[derive(Debug)]
pub struct Mempool<'eal> {
    pool: NonNull<sys::rte_mempool>,
    _eal: PhantomData<&'eal Eal>,
}

// SAFETY: DPDK mempools (default ring_mp_mc ops) are safe to get from and
// put to from any thread; the handle is a pointer to one.
unsafe impl Send for Mempool<'_> {}
// SAFETY: as above; every method is thread-safe on a shared pool.
unsafe impl Sync for Mempool<'_> {}

impl<'eal> Mempool<'eal> {
    /// Creates a pool of `n_mbufs` buffers with `data_room` bytes each
    /// (headroom included: `RTE_MBUF_DEFAULT_BUF_SIZE` = 2176 holds a
    /// 1518-byte frame after the 128-byte headroom), a per-lcore cache of
    /// `cache` buffers, on NUMA `socket` (`None`: any).
    pub fn new(
        _eal: &'eal Eal,
        name: &str,
        n_mbufs: u32,
        cache: u32,
        data_room: u16,
        socket: Option<u32>,
    ) -> Result<Mempool<'eal>, DpdkError> {
        let c_name = CString::new(name).map_err(|_| DpdkError::InteriorNul {
            what: "mempool name",
            value: name.to_owned(),
        })?;
        let socket = socket.map_or(sys::SOCKET_ID_ANY, |s| s as i32);
        // SAFETY: the EAL is running (we hold &Eal) and c_name is a valid
        // C string; the function returns NULL and sets rte_errno on failure.
        let pool = unsafe {
            sys::rte_pktmbuf_pool_create(c_name.as_ptr(), n_mbufs, cache, 0, data_room, socket)
        };
        NonNull::new(pool)
            .map(|pool| Mempool {
                pool,
                _eal: PhantomData,
            })
            .ok_or_else(|| {
                DpdkError::from_rte_errno(format!(
                    "rte_pktmbuf_pool_create({name:?}, n={n_mbufs}, cache={cache}, data_room={data_room})"
                ))
            })
    }

    /// The raw pool, for configuring port queues.
    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.pool.as_ptr()
    }

    /// Total buffers in the pool.
    pub fn capacity(&self) -> u32 {
        // SAFETY: reads a field of the live pool.
        unsafe { (*self.pool.as_ptr()).size }
    }

    /// Buffers in the pool right now (per-lcore caches included).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is live; the count is a racy snapshot by design.
        unsafe { sys::rte_mempool_avail_count(self.pool.as_ptr()) }
    }

    /// The per-lcore cache size the pool was created with.
    pub fn cache_size(&self) -> u32 {
        // SAFETY: reads a field of the live pool.
        unsafe { (*self.pool.as_ptr()).cache_size }
    }

    /// Buffers in `lcore`'s cache right now (0 for a pool without caches
    /// or an lcore id out of range). Only EAL lcores use their cache; a
    /// plain thread goes to the pool's ring for every buffer.
    pub fn cached(&self, lcore: u32) -> u32 {
        if lcore >= sys::RTE_MAX_LCORE || self.cache_size() == 0 {
            return 0;
        }
        // SAFETY: reads a field of the live pool.
        let caches = unsafe { (*self.pool.as_ptr()).local_cache };
        // SAFETY: with cache_size > 0, local_cache is an array of
        // RTE_MAX_LCORE caches (rte_mempool_create_empty), and the index is
        // in range.
        let cache = unsafe { caches.add(lcore as usize) };
        // SAFETY: a live cache; `len` is a racy snapshot by design.
        unsafe { (*cache).len }
    }

    /// Buffers taken out (`capacity - available`).
    pub fn in_use(&self) -> u32 {
        self.capacity().saturating_sub(self.available())
    }

    /// Takes one buffer, reset to an empty packet; `None` when the pool is
    /// exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is live; rte_pktmbuf_alloc returns NULL or a
        // fresh mbuf with refcnt 1 that nobody else owns.
        let raw = unsafe { sys::palisade_pktmbuf_alloc(self.pool.as_ptr()) };
        // SAFETY: as above, a non-null result is ours alone.
        NonNull::new(raw).map(|raw| unsafe { Mbuf::from_raw(raw) })
    }

    /// Fills `count` more slots of `batch` with fresh buffers, all or none;
    /// false when the pool (or the batch) cannot provide that many.
    #[inline]
    pub fn alloc_into<const N: usize>(&self, batch: &mut MbufBatch<N>, count: usize) -> bool {
        let (spare, room) = batch.spare_mut();
        if count > room {
            return false;
        }
        // SAFETY: `spare` has room for `count` pointers; the pool is live.
        let rc =
            unsafe { sys::palisade_pktmbuf_alloc_bulk(self.pool.as_ptr(), spare, count as u32) };
        if rc != 0 {
            return false;
        }
        // SAFETY: on success the call wrote `count` fresh mbufs, now owned
        // by the batch.
        unsafe { batch.filled(count) };
        true
    }
}

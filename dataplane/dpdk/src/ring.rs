//! Lock-free mbuf rings (`rte_ring`) for handing packets between worker
//! cores: when a device cannot hash both directions of a flow to one queue,
//! the core that received a packet passes it to the core that owns its flow.

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use palisade_dpdk_sys as sys;

use crate::eal::Eal;
use crate::error::DpdkError;
use crate::mbuf::{Mbuf, MbufBatch};

/// How many threads may use one end of a ring at once. `Single` is faster
/// (no compare-and-swap); the type system keeps it single.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingSync {
    /// One thread at a time: that end's handle cannot be cloned.
    Single,
    /// Any number of threads: that end's handle can be cloned.
    Multi,
}

/// Constructor for a ring of mbufs; see [`Ring::new`].
#[derive(Debug)]
pub struct Ring;

#[derive(Debug)]
struct RingInner {
    ring: NonNull<sys::rte_ring>,
}

// SAFETY: rte_ring is designed for cross-thread use; which operations may
// run concurrently is enforced by the producer/consumer handles.
unsafe impl Send for RingInner {}
// SAFETY: as above; RingInner itself only offers `count` and drop.
unsafe impl Sync for RingInner {}

impl Drop for RingInner {
    fn drop(&mut self) {
        // Both handles are gone: nobody else can touch the ring. Free the
        // mbufs still in it, then the ring.
        let mut batch: MbufBatch<32> = MbufBatch::new();
        loop {
            let (spare, room) = batch.spare_mut();
            // SAFETY: exclusive access (last handle dropped); `spare` has
            // room for `room` pointers; dequeued objects are owned mbufs.
            let got = unsafe {
                sys::palisade_ring_dequeue_burst(
                    self.ring.as_ptr(),
                    spare.cast(),
                    room as u32,
                    std::ptr::null_mut(),
                )
            };
            // SAFETY: the ring handed over `got` owned mbufs into `spare`.
            unsafe { batch.filled(got as usize) };
            batch.clear();
            if got == 0 {
                break;
            }
        }
        // SAFETY: the ring is empty and unused; freed exactly once.
        unsafe { sys::rte_ring_free(self.ring.as_ptr()) }
    }
}

impl Ring {
    /// Creates a ring holding up to `capacity` mbufs, returning its two
    /// ends. The ring is freed (with any mbufs still in it) when the last
    /// handle drops.
    #[allow(clippy::new_ret_no_self)] // a ring is used through its two ends
    pub fn new<'eal>(
        _eal: &'eal Eal,
        name: &str,
        capacity: u32,
        producers: RingSync,
        consumers: RingSync,
    ) -> Result<(RingProducer<'eal>, RingConsumer<'eal>), DpdkError> {
        if capacity == 0 || capacity > sys::RTE_RING_SZ_MASK {
            return Err(DpdkError::RingCapacity(capacity));
        }
        let c_name = CString::new(name).map_err(|_| DpdkError::InteriorNul {
            what: "ring name",
            value: name.to_owned(),
        })?;
        let mut flags = sys::RING_F_EXACT_SZ;
        if producers == RingSync::Single {
            flags |= sys::RING_F_SP_ENQ;
        }
        if consumers == RingSync::Single {
            flags |= sys::RING_F_SC_DEQ;
        }
        // SAFETY: the EAL runs (we hold &Eal); c_name is a valid C string.
        let raw =
            unsafe { sys::rte_ring_create(c_name.as_ptr(), capacity, sys::SOCKET_ID_ANY, flags) };
        let ring = NonNull::new(raw).ok_or_else(|| {
            DpdkError::from_rte_errno(format!("rte_ring_create({name:?}, {capacity})"))
        })?;
        let inner = Arc::new(RingInner { ring });
        Ok((
            RingProducer {
                inner: Arc::clone(&inner),
                sync: producers,
                _eal: PhantomData,
            },
            RingConsumer {
                inner,
                sync: consumers,
                _eal: PhantomData,
            },
        ))
    }
}

/// The enqueue end of an mbuf ring.
#[derive(Debug)]
pub struct RingProducer<'eal> {
    inner: Arc<RingInner>,
    sync: RingSync,
    _eal: PhantomData<&'eal Eal>,
}

impl RingProducer<'_> {
    /// Moves packets from the front of `batch` into the ring; returns how
    /// many it took. The rest stay in the batch, in order.
    #[inline]
    pub fn enqueue_burst<const N: usize>(&mut self, batch: &mut MbufBatch<N>) -> usize {
        let (packets, count) = batch.occupied_mut();
        if count == 0 {
            return 0;
        }
        // SAFETY: this handle is the only producer, or the ring is
        // multi-producer; `packets` holds `count` owned mbufs, of which the
        // ring takes the first `taken`, which the batch then forgets.
        let taken = unsafe {
            sys::palisade_ring_enqueue_burst(
                self.inner.ring.as_ptr(),
                packets.cast::<*mut std::ffi::c_void>().cast_const(),
                count as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        // SAFETY: the ring owns the first `taken` mbufs now.
        unsafe { batch.taken_from_front(taken) };
        taken
    }

    /// Enqueues one packet, or gives it back when the ring is full.
    pub fn enqueue(&mut self, mbuf: Mbuf) -> Result<(), Mbuf> {
        let mut one: MbufBatch<1> = MbufBatch::new();
        one.push(mbuf)?;
        if self.enqueue_burst(&mut one) == 1 {
            Ok(())
        } else {
            Err(one.pop().expect("the mbuf stayed in the batch"))
        }
    }

    /// Another producer handle, if the ring allows several producers.
    pub fn try_clone(&self) -> Option<Self> {
        (self.sync == RingSync::Multi).then(|| RingProducer {
            inner: Arc::clone(&self.inner),
            sync: self.sync,
            _eal: PhantomData,
        })
    }

    /// Packets in the ring now.
    pub fn len(&self) -> usize {
        ring_count(&self.inner)
    }

    /// True when the ring holds no packet now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The dequeue end of an mbuf ring.
#[derive(Debug)]
pub struct RingConsumer<'eal> {
    inner: Arc<RingInner>,
    sync: RingSync,
    _eal: PhantomData<&'eal Eal>,
}

impl RingConsumer<'_> {
    /// Moves up to the batch's free space from the ring into its end;
    /// returns how many arrived.
    #[inline]
    pub fn dequeue_burst<const N: usize>(&mut self, batch: &mut MbufBatch<N>) -> usize {
        let (spare, room) = batch.spare_mut();
        if room == 0 {
            return 0;
        }
        // SAFETY: this handle is the only consumer, or the ring is
        // multi-consumer; `spare` has room for `room` pointers; dequeued
        // objects are owned mbufs, now the batch's.
        let got = unsafe {
            sys::palisade_ring_dequeue_burst(
                self.inner.ring.as_ptr(),
                spare.cast(),
                room as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        // SAFETY: the ring handed over `got` owned mbufs into `spare`.
        unsafe { batch.filled(got) };
        got
    }

    /// Another consumer handle, if the ring allows several consumers.
    pub fn try_clone(&self) -> Option<Self> {
        (self.sync == RingSync::Multi).then(|| RingConsumer {
            inner: Arc::clone(&self.inner),
            sync: self.sync,
            _eal: PhantomData,
        })
    }

    /// Packets in the ring now.
    pub fn len(&self) -> usize {
        ring_count(&self.inner)
    }

    /// True when the ring holds no packet now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn ring_count(inner: &RingInner) -> usize {
    // SAFETY: reads the ring's head/tail indices; a racy snapshot by design.
    unsafe { sys::palisade_ring_count(inner.ring.as_ptr()) as usize }
}

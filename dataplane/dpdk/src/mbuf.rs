//! Packet buffers. An [`Mbuf`] is one received or to-be-sent packet, owned
//! by exactly one piece of code at a time; an [`MbufBatch`] is the
//! fixed-size array a worker moves them in, from `rx_burst` through the
//! pipeline to `tx_burst`, with no allocation per burst.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use palisade_dpdk_sys as sys;

/// The burst size DPDK applications conventionally use, and palisade's.
pub const DEFAULT_BURST: usize = 32;

/// Why an mbuf length change was refused. Cheap (`Copy`, no allocation),
/// because length changes happen on the packet path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MbufError {
    /// `prepend` asked for more bytes than the headroom holds.
    #[error("not enough headroom")]
    NoHeadroom,
    /// `append` asked for more bytes than the tailroom holds.
    #[error("not enough tailroom")]
    NoTailroom,
    /// `adj` or `trim` asked to remove more bytes than the segment has.
    #[error("packet shorter than the bytes to remove")]
    TooShort,
}

/// One packet buffer, owned. Dropping it returns it to its mempool.
///
/// Only the first segment's bytes are exposed ([`Mbuf::data`]): palisade
/// configures its ports without scatter, so a received packet is one
/// segment; [`Mbuf::segment_count`] says when that is not so.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf is the unique owner of its buffer; moving it to another
// thread moves that ownership. The mempool it returns to is thread-safe.
unsafe impl Send for Mbuf {}
// SAFETY: shared references only read the buffer's bytes and header.
unsafe impl Sync for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf (from a C API or [`Mbuf::into_raw`]).
    ///
    /// # Safety
    /// `raw` must be a valid mbuf that nothing else owns or will free, with
    /// a reference count of one.
    pub unsafe fn from_raw(raw: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf(raw)
    }

    /// Gives up ownership without freeing, e.g. to hand the mbuf to a C API
    /// that frees it.
    pub fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        ManuallyDrop::new(self).0
    }

    /// The raw pointer, still owned by `self`.
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.0.as_ptr()
    }

    /// The mbuf header, read-only.
    #[inline]
    fn header(&self) -> &sys::rte_mbuf {
        // SAFETY: self owns a valid mbuf; only the C shim writes the header,
        // and only through &mut self, so no write overlaps this borrow.
        unsafe { self.0.as_ref() }
    }

    /// Start of the first segment's bytes (DPDK's `rte_pktmbuf_mtod`).
    #[inline]
    fn data_start(&self) -> *mut u8 {
        let header = self.header();
        header
            .buf_addr
            .cast::<u8>()
            .wrapping_add(usize::from(header.data_off))
    }

    /// The packet bytes of the first segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: the first segment holds data_len initialised bytes from
        // data_start (inside the mbuf's buffer); the borrow of self keeps
        // them alive and unaliased by writers.
        unsafe { std::slice::from_raw_parts(self.data_start(), self.len()) }
    }

    /// The packet bytes of the first segment, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; the unique borrow of self makes the slice
        // the only access to these bytes.
        unsafe { std::slice::from_raw_parts_mut(self.data_start(), self.len()) }
    }

    /// Bytes in the first segment (`data().len()`).
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.header().data_len)
    }

    /// True when the first segment holds no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes in the whole packet, all segments.
    #[inline]
    pub fn packet_len(&self) -> u32 {
        self.header().pkt_len
    }

    /// Number of chained segments (1 for an unscattered packet).
    #[inline]
    pub fn segment_count(&self) -> u16 {
        self.header().nb_segs
    }

    /// The input port DPDK recorded at rx.
    #[inline]
    pub fn port(&self) -> u16 {
        self.header().port
    }

    /// Free bytes before the data (room for `prepend`).
    pub fn headroom(&self) -> usize {
        // SAFETY: the shim reads header fields of the owned, valid mbuf.
        usize::from(unsafe { sys::palisade_pktmbuf_headroom(self.0.as_ptr()) })
    }

    /// Free bytes after the data of the last segment (room for `append`).
    pub fn tailroom(&self) -> usize {
        // SAFETY: the shim reads header fields of the owned, valid mbuf.
        usize::from(unsafe { sys::palisade_pktmbuf_tailroom(self.0.as_ptr()) })
    }

    /// Grows the packet at the front by `len` bytes (e.g. to push a VLAN
    /// tag) and returns the new front bytes, uninitialised in meaning but
    /// initialised in memory (whatever the buffer held).
    pub fn prepend(&mut self, len: u16) -> Result<&mut [u8], MbufError> {
        // SAFETY: the mbuf is owned and valid; rte_pktmbuf_prepend checks
        // the headroom and returns NULL without change when it is short.
        let start = unsafe { sys::palisade_pktmbuf_prepend(self.0.as_ptr(), len) };
        if start.is_null() {
            return Err(MbufError::NoHeadroom);
        }
        // SAFETY: on success `start` points at `len` bytes inside the buffer
        // that now begin the first segment; the &mut self borrow is unique.
        Ok(unsafe { std::slice::from_raw_parts_mut(start.cast::<u8>(), usize::from(len)) })
    }

    /// Grows the packet at the end by `len` bytes and returns them.
    pub fn append(&mut self, len: u16) -> Result<&mut [u8], MbufError> {
        // SAFETY: owned, valid mbuf; rte_pktmbuf_append checks the tailroom
        // and returns NULL without change when it is short.
        let start = unsafe { sys::palisade_pktmbuf_append(self.0.as_ptr(), len) };
        if start.is_null() {
            return Err(MbufError::NoTailroom);
        }
        // SAFETY: on success `start` points at `len` bytes inside the buffer
        // at the end of the packet; the &mut self borrow is unique.
        Ok(unsafe { std::slice::from_raw_parts_mut(start.cast::<u8>(), usize::from(len)) })
    }

    /// Removes `len` bytes from the front (e.g. to pop a header).
    pub fn adj(&mut self, len: u16) -> Result<(), MbufError> {
        // SAFETY: owned, valid mbuf; rte_pktmbuf_adj returns NULL without
        // change when the first segment is shorter than `len`.
        let start = unsafe { sys::palisade_pktmbuf_adj(self.0.as_ptr(), len) };
        if start.is_null() {
            Err(MbufError::TooShort)
        } else {
            Ok(())
        }
    }

    /// Removes `len` bytes from the end.
    pub fn trim(&mut self, len: u16) -> Result<(), MbufError> {
        // SAFETY: owned, valid mbuf; rte_pktmbuf_trim returns -1 without
        // change when the last segment is shorter than `len`.
        let rc = unsafe { sys::palisade_pktmbuf_trim(self.0.as_ptr(), len) };
        if rc == 0 {
            Ok(())
        } else {
            Err(MbufError::TooShort)
        }
    }

    /// Starts loading the packet's first cache line, a few packets before
    /// the pipeline parses it.
    #[inline]
    pub fn prefetch_data(&self) {
        let first_byte = self.data_start().cast::<i8>().cast_const();
        // Rust 1.95 still requires `unsafe` here (target-feature function),
        // even though SSE is baseline on x86_64.
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is a
        // hint that never faults, whatever the address.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(first_byte);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = first_byte;
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: self owns the mbuf and is its last user.
        unsafe { sys::palisade_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// Up to `N` owned mbufs in a fixed array: what a burst receives into and
/// transmits from. No allocation, ever; whatever is still in the batch when
/// it drops is freed.
///
/// The packets are kept in order. Bursts that take only some of them
/// (`tx_burst`, ring enqueue) take them from the front and leave the rest,
/// still in order, at the front.
#[derive(Debug)]
pub struct MbufBatch<const N: usize = DEFAULT_BURST> {
    /// Slots `0..len` hold owned, non-null mbufs; the rest are garbage.
    slots: [*mut sys::rte_mbuf; N],
    len: usize,
}

// SAFETY: the batch uniquely owns the mbufs in `slots[..len]` (see Mbuf's
// Send); the raw pointers are just their storage.
unsafe impl<const N: usize> Send for MbufBatch<N> {}

impl<const N: usize> Default for MbufBatch<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MbufBatch<N> {
    /// An empty batch.
    pub const fn new() -> Self {
        Self {
            slots: [std::ptr::null_mut(); N],
            len: 0,
        }
    }

    /// Packets held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the batch holds no packet.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more packets fit.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// The fixed capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The packets, in order.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: Mbuf is repr(transparent) over NonNull<rte_mbuf>, which has
        // the layout of *mut rte_mbuf; slots[..len] are non-null owned mbufs.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast::<Mbuf>(), self.len) }
    }

    /// The packets, in order, writable. Swapping two elements or replacing
    /// one with another `Mbuf` keeps every packet owned exactly once.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in `as_slice`, with the unique borrow of self.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Adds a packet at the end; gives it back when the batch is full.
    #[inline]
    pub fn push(&mut self, mbuf: Mbuf) -> Result<(), Mbuf> {
        if self.len == N {
            return Err(mbuf);
        }
        self.slots[self.len] = mbuf.into_raw().as_ptr();
        self.len += 1;
        Ok(())
    }

    /// Removes the last packet.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        let last = self.len.checked_sub(1)?;
        self.len = last;
        // SAFETY: slot `last` held an owned non-null mbuf, now no longer
        // counted by the batch, so ownership moves to the returned Mbuf.
        Some(unsafe { Mbuf(NonNull::new_unchecked(self.slots[last])) })
    }

    /// Keeps the packets for which `keep` returns true, in order, and frees
    /// the others (the pipeline's drop).
    pub fn retain(&mut self, mut keep: impl FnMut(&mut Mbuf) -> bool) {
        let held = self.len;
        // If `keep` panics, the batch forgets the rest (a leak) rather than
        // freeing a slot twice.
        self.len = 0;
        let mut kept = 0;
        for index in 0..held {
            let raw = self.slots[index];
            // SAFETY: raw (slot < len) is an owned non-null mbuf; we borrow
            // it as an Mbuf without taking ownership (ManuallyDrop).
            let mut mbuf = ManuallyDrop::new(unsafe { Mbuf(NonNull::new_unchecked(raw)) });
            if keep(&mut mbuf) {
                self.slots[kept] = raw;
                kept += 1;
            } else {
                // Dropped packets are freed one by one; a drop is rarer than
                // a forward, and this keeps order without a second array.
                ManuallyDrop::into_inner(mbuf);
            }
        }
        self.len = kept;
    }

    /// Hands every packet, in order, with its position, to `take`, which
    /// owns it from then on (the pipeline's verdict step: each packet goes
    /// to a transmit batch or is dropped). The batch is empty afterwards.
    pub fn drain(&mut self, mut take: impl FnMut(usize, Mbuf)) {
        let held = self.len;
        // If `take` panics, the batch forgets the rest (a leak) rather than
        // freeing a slot twice.
        self.len = 0;
        for index in 0..held {
            // SAFETY: slots[..held] were owned non-null mbufs and the batch
            // no longer counts them: ownership moves to the Mbuf, once.
            let mbuf = unsafe { Mbuf(NonNull::new_unchecked(self.slots[index])) };
            take(index, mbuf);
        }
    }

    /// Frees every packet.
    pub fn clear(&mut self) {
        if self.len > 0 {
            // SAFETY: slots[..len] are owned mbufs; after the call the batch
            // forgets them.
            unsafe { sys::palisade_pktmbuf_free_bulk(self.slots.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// The first free slot and how many follow it, for a C burst call to
    /// fill; record what it filled with [`Self::filled`].
    #[inline]
    pub(crate) fn spare_mut(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        // `len <= N`, so the pointer is at most one past the end.
        (self.slots[self.len..].as_mut_ptr(), N - self.len)
    }

    /// Counts `count` slots after `len` as filled by a C burst call.
    ///
    /// # Safety
    /// The `count` slots after `len` must now hold owned, non-null mbufs.
    #[inline]
    pub(crate) unsafe fn filled(&mut self, count: usize) {
        debug_assert!(count <= N - self.len);
        self.len += count;
    }

    /// The packets from the front, for a C burst call that takes ownership
    /// of some prefix; report it with [`Self::taken_from_front`].
    #[inline]
    pub(crate) fn occupied_mut(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        (self.slots.as_mut_ptr(), self.len)
    }

    /// Forgets the first `count` packets (now owned by whoever took them)
    /// and moves the rest to the front, keeping order.
    ///
    /// # Safety
    /// The first `count` mbufs must have been taken over by someone else.
    #[inline]
    pub(crate) unsafe fn taken_from_front(&mut self, count: usize) {
        let count = count.min(self.len);
        self.slots.copy_within(count..self.len, 0);
        self.len -= count;
    }
}

impl<const N: usize> Drop for MbufBatch<N> {
    fn drop(&mut self) {
        self.clear();
    }
}

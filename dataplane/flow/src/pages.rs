//! Fixed-size arrays in their own anonymous memory mapping, on transparent
//! huge pages where the kernel grants them.
//!
//! The flow table of one core is 128 MiB of entries and 32 MiB of bucket
//! metadata at a million flows. On 4 KiB pages every lookup of a random
//! flow misses the TLB twice and walks the page tables (nested paging in a
//! VM makes each walk dearer than the cache miss itself); on 2 MiB pages
//! the 80 pages of a table fit the second-level TLB. The heap gives no such
//! control without `unsafe` (`madvise` on a `Vec`'s memory), so the arrays
//! live in a private anonymous mapping advised `MADV_HUGEPAGE` through
//! `memmap2`'s safe API, aligned to a huge page inside it, and are viewed as
//! `[T]` through `bytemuck` (the element types are plain old data).
//!
//! Where transparent huge pages are disabled (`never`) the advice is refused
//! and the array simply stays on small pages: nothing else changes. Small
//! arrays (under one huge page) are neither padded nor advised, so a small
//! table does not pin 2 MiB.

use bytemuck::Pod;
use memmap2::{Advice, MmapMut, MmapOptions};

/// The size of an x86_64 transparent huge page.
pub const HUGE_PAGE: usize = 2 << 20;

/// A fixed-length array of plain-old-data `T` in its own mapping.
pub struct PageArray<T> {
    map: MmapMut,
    /// Where the array starts inside `map` (a huge-page boundary).
    offset: usize,
    len: usize,
    /// Whether the kernel accepted the huge-page advice.
    huge_advised: bool,
    _element: core::marker::PhantomData<T>,
}

impl<T: Pod> PageArray<T> {
    /// `len` copies of `fill`, every page written now so that the packet
    /// path takes no page fault.
    pub fn new(len: usize, fill: T) -> std::io::Result<Self> {
        let bytes = len
            .checked_mul(size_of::<T>())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::OutOfMemory))?;
        let large = bytes >= HUGE_PAGE;
        // Room to move the start to a huge-page boundary: the mapping
        // itself is only page-aligned.
        let map_len = if large { bytes + HUGE_PAGE } else { bytes }.max(1);
        let map = MmapOptions::new().len(map_len).map_anon()?;
        let huge_advised = large && map.advise(Advice::HugePage).is_ok();
        let offset = if large {
            map.as_ptr().align_offset(HUGE_PAGE)
        } else {
            0
        };
        let mut array = PageArray {
            map,
            offset,
            len,
            huge_advised,
            _element: core::marker::PhantomData,
        };
        array.fill(fill);
        Ok(array)
    }

    /// Sets every element to `value`.
    pub fn fill(&mut self, value: T) {
        self.as_mut_slice().fill(value);
    }

    /// Whether the kernel accepted the huge-page advice (it may still back
    /// part of the array with small pages when memory is fragmented).
    pub fn huge_advised(&self) -> bool {
        self.huge_advised
    }

    /// The elements.
    #[inline(always)]
    pub fn as_slice(&self) -> &[T] {
        let bytes = self
            .map
            .get(self.offset..self.offset + self.len * size_of::<T>());
        // Never fails: the start is page-aligned and the length a whole
        // number of elements; an empty slice would only make every lookup
        // miss, never panic.
        bytemuck::try_cast_slice(bytes.unwrap_or_default()).unwrap_or_default()
    }

    /// Element `i`, without viewing the whole array: the per-packet
    /// accessor. [`Self::as_slice`] checks the mapping's bounds, alignment
    /// and length on each call; for one element the length is a constant,
    /// so only the index, bounds and alignment checks remain.
    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            // The mapping has room past the array (huge-page alignment).
            return None;
        }
        let start = self.offset + i.checked_mul(size_of::<T>())?;
        let bytes = self.map.get(start..start.checked_add(size_of::<T>())?)?;
        bytemuck::try_from_bytes(bytes).ok()
    }

    /// Element `i`, writable (see [`Self::get`]).
    #[inline(always)]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i >= self.len {
            return None;
        }
        let start = self.offset + i.checked_mul(size_of::<T>())?;
        let bytes = self
            .map
            .get_mut(start..start.checked_add(size_of::<T>())?)?;
        bytemuck::try_from_bytes_mut(bytes).ok()
    }

    /// The elements, writable.
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let end = self.offset + self.len * size_of::<T>();
        let bytes = self.map.get_mut(self.offset..end);
        bytemuck::try_cast_slice_mut(bytes.unwrap_or_default()).unwrap_or_default()
    }
}

impl<T> core::fmt::Debug for PageArray<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PageArray")
            .field("len", &self.len)
            .field("element_size", &size_of::<T>())
            .field("huge_advised", &self.huge_advised)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_arrays_are_filled_and_writable() {
        let mut a = PageArray::new(1000, 7u32).unwrap();
        assert!(!a.huge_advised());
        assert_eq!(a.as_slice().len(), 1000);
        assert!(a.as_slice().iter().all(|&x| x == 7));
        a.as_mut_slice()[999] = 9;
        assert_eq!(a.as_slice()[999], 9);
        a.fill(1);
        assert_eq!(
            a.as_slice().iter().map(|&x| u64::from(x)).sum::<u64>(),
            1000
        );
    }

    #[test]
    fn large_arrays_start_on_a_huge_page() {
        // 2 MiB + one element: padded and aligned.
        let len = HUGE_PAGE / 8 + 1;
        let a = PageArray::new(len, 0x5555_u64).unwrap();
        assert_eq!(a.as_slice().len(), len);
        assert_eq!(a.as_slice().as_ptr().align_offset(HUGE_PAGE), 0);
        assert_eq!(a.as_slice()[len - 1], 0x5555);
    }

    #[test]
    fn element_accessors_agree_with_the_slice() {
        for len in [0, 1, 1000, HUGE_PAGE / 8 + 1] {
            let mut a = PageArray::new(len, 3u64).unwrap();
            for i in [
                0,
                1,
                len / 2,
                len.saturating_sub(1),
                len,
                len + 1,
                usize::MAX,
            ] {
                assert_eq!(a.get(i), a.as_slice().get(i), "len {len}, index {i}");
                if let Some(x) = a.get_mut(i) {
                    *x = i as u64;
                }
                assert_eq!(a.as_slice().get(i).copied(), (i < len).then_some(i as u64));
            }
        }
    }

    #[test]
    fn an_empty_array_is_empty() {
        let a = PageArray::new(0, 0u8).unwrap();
        assert!(a.as_slice().is_empty());
    }
}

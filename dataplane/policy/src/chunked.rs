//! A copy-on-write vector in chunks, so that an incremental compile shares
//! what did not change without touching every element.
//!
//! A snapshot holds one entry per group (2,500) and one classifier pair per
//! SG set (thousands). Copying a flat `Vec<Arc<_>>` to replace one entry
//! bumps every reference count — a cache miss each, most of a one-rule
//! `apply`. Here the copy is of the chunk pointers plus the one chunk that
//! changes; lookups pay one extra pointer load.

use std::sync::Arc;

/// Elements per chunk.
const CHUNK: usize = 64;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct ChunkedVec<T> {
    chunks: Arc<[Arc<[T]>]>,
    len: usize,
}

impl<T> Clone for ChunkedVec<T> {
    fn clone(&self) -> Self {
        Self {
            chunks: Arc::clone(&self.chunks),
            len: self.len,
        }
    }
}

impl<T: Clone> ChunkedVec<T> {
    pub(crate) fn from_vec(items: Vec<T>) -> Self {
        let len = items.len();
        let mut rest = items.into_iter();
        let mut chunks: Vec<Arc<[T]>> = Vec::with_capacity(len.div_ceil(CHUNK));
        loop {
            let chunk: Vec<T> = rest.by_ref().take(CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(Arc::from(chunk));
        }
        Self {
            chunks: chunks.into(),
            len,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// A copy with `updates` applied; untouched chunks are shared.
    /// Out-of-range indices are ignored.
    pub(crate) fn with_replaced(&self, updates: Vec<(usize, T)>) -> Self {
        if updates.is_empty() {
            return self.clone();
        }
        let mut chunks: Vec<Arc<[T]>> = self.chunks.to_vec();
        let mut updates = updates;
        updates.sort_by_key(|(i, _)| *i);
        let mut pending = updates.into_iter().peekable();
        while let Some((first, _)) = pending.peek() {
            let c = first / CHUNK;
            let Some(chunk) = chunks.get_mut(c) else {
                break;
            };
            let mut items = chunk.to_vec();
            while let Some((i, item)) = pending.next_if(|(i, _)| i / CHUNK == c) {
                if let Some(slot) = items.get_mut(i % CHUNK) {
                    *slot = item;
                }
            }
            *chunk = Arc::from(items);
        }
        Self {
            chunks: chunks.into(),
            len: self.len,
        }
    }

    /// Whether element `i` is the very same allocation in both.
    #[cfg(test)]
    pub(crate) fn shares_chunk_with(&self, other: &Self, i: usize) -> bool {
        match (self.chunks.get(i / CHUNK), other.chunks.get(i / CHUNK)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl<T: Clone> core::ops::Index<usize> for ChunkedVec<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_touched_chunks() {
        let v = ChunkedVec::from_vec((0..200).collect::<Vec<u32>>());
        assert_eq!(v.len(), 200);
        let w = v.with_replaced(vec![(130, 7), (5, 9), (131, 8), (999, 1)]);
        assert_eq!(w.iter().copied().collect::<Vec<_>>().len(), 200);
        for i in 0..200 {
            let want = match i {
                5 => 9,
                130 => 7,
                131 => 8,
                _ => i as u32,
            };
            assert_eq!(w[i], want);
            assert_eq!(v[i], i as u32, "the original is untouched");
        }
        assert!(!w.shares_chunk_with(&v, 0));
        assert!(w.shares_chunk_with(&v, 64));
        assert!(!w.shares_chunk_with(&v, 128));
        assert!(w.shares_chunk_with(&v, 199));
        assert_eq!(w.get(200), None);
    }
}

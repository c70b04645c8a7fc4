//! Lock-free publication of policy snapshots to worker cores.
//!
//! The control plane compiles a new [`PolicySnapshot`] and
//! [`publish`](PolicyCell::publish)es it; each worker core calls
//! [`load`](PolicyCell::load) **once per burst**, uses the guard for every
//! packet of that burst, and drops it before polling again. A load is a few
//! atomic operations (arc-swap's debt slots), never a lock, so a publish never
//! stalls a worker and a worker never stalls a publish. A snapshot is freed
//! when the last holder lets go — never under a worker that still reads it.
//!
//! To keep the (potentially large) free off worker cores, the publisher gets
//! the previous snapshot back and should drop it itself, after workers have
//! moved on (at the latest by their next burst).

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::snapshot::PolicySnapshot;

/// Why a snapshot was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Generations must increase so that flows can tell they are stale.
    #[error("generation {offered} does not follow the current generation {current}")]
    GenerationNotIncreasing {
        /// The published generation.
        current: u64,
        /// The rejected one.
        offered: u64,
    },
}

/// The current policy, shared by the control plane (writer) and every
/// worker (readers).
#[derive(Debug)]
pub struct PolicyCell {
    current: ArcSwap<PolicySnapshot>,
}

/// What a worker holds for one burst.
pub type SnapshotGuard = Guard<Arc<PolicySnapshot>>;

impl PolicyCell {
    /// A cell holding `initial`.
    pub fn new(initial: PolicySnapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(initial),
        }
    }

    /// The current snapshot; hold it for one burst, then drop it.
    #[inline]
    pub fn load(&self) -> SnapshotGuard {
        self.current.load()
    }

    /// The current snapshot as an owned `Arc`, for holders that outlive a
    /// burst (the control plane, `explain`).
    pub fn load_full(&self) -> Arc<PolicySnapshot> {
        self.current.load_full()
    }

    /// Makes `next` current and returns the previous snapshot. Meant for a
    /// single publisher (the control plane): the generation check and the swap
    /// are not one atomic step, so concurrent publishers must serialise.
    pub fn publish(&self, next: PolicySnapshot) -> Result<Arc<PolicySnapshot>, PublishError> {
        let current = self.current.load().generation();
        if next.generation() <= current {
            return Err(PublishError::GenerationNotIncreasing {
                current,
                offered: next.generation(),
            });
        }
        Ok(self.current.swap(Arc::new(next)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::PolicySpec;
    use std::sync::Weak;

    fn empty(generation: u64) -> PolicySnapshot {
        PolicySnapshot::compile(&PolicySpec::default(), generation).unwrap()
    }

    #[test]
    fn publish_requires_increasing_generation() {
        let cell = PolicyCell::new(empty(5));
        assert_eq!(
            cell.publish(empty(5)).unwrap_err(),
            PublishError::GenerationNotIncreasing {
                current: 5,
                offered: 5
            }
        );
        assert!(cell.publish(empty(4)).is_err());
        let old = cell.publish(empty(6)).unwrap();
        assert_eq!(old.generation(), 5);
        assert_eq!(cell.load().generation(), 6);
    }

    #[test]
    fn old_snapshot_lives_while_a_reader_holds_it() {
        let cell = PolicyCell::new(empty(1));
        let reader = cell.load();
        let old: Weak<PolicySnapshot> = Arc::downgrade(&cell.load_full());
        let returned = cell.publish(empty(2)).unwrap();
        drop(returned);
        // The worker's guard still sees generation 1, and it is not freed.
        assert_eq!(reader.generation(), 1);
        assert!(old.upgrade().is_some());
        drop(reader);
        assert!(old.upgrade().is_none(), "freed once the last reader let go");
        assert_eq!(cell.load().generation(), 2);
    }

    #[test]
    fn readers_on_other_threads_see_only_whole_snapshots() {
        let cell = Arc::new(PolicyCell::new(empty(1)));
        let reader = {
            let cell = Arc::clone(&cell);
            std::thread::spawn(move || {
                let mut last = 0;
                for _ in 0..20_000 {
                    let g = cell.load().generation();
                    assert!(g >= last, "generations never go backwards");
                    last = g;
                }
                last
            })
        };
        for g in 2..200 {
            drop(cell.publish(empty(g)).unwrap());
        }
        let last = reader.join().unwrap();
        assert!(last <= 199);
        assert_eq!(cell.load().generation(), 199);
    }
}

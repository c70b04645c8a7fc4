//! Lock-free publication of policy snapshots to worker cores.
//!
//! The control plane compiles a new [`PolicySnapshot`] and
//! [`publish`](PolicyCell::publish)es it; each worker core loads it through
//! its own [`PolicyReader`] **once per burst**, uses the guard for every
//! packet of that burst, and drops it before polling again. A load is a few
//! atomic operations (arc-swap's debt slots), never a lock, so a publish never
//! stalls a worker and a worker never stalls a publish. A snapshot is freed
//! when the last holder lets go — never under a worker that still reads it.
//!
//! A publish takes effect at each worker's next burst, not at the instant
//! of the swap: a worker may have loaded the previous snapshot just before
//! it and still be deciding a burst with it (or be preempted in between).
//! For the control plane's promise — a change is enforced once the API call
//! returns — the publisher then waits for a grace period, as DPDK's QSBR
//! (`rte_rcu_qsbr`) does: each reader reports the generation of every
//! snapshot it loads (one store, when the generation changes), and
//! [`wait_for_readers`](PolicyCell::wait_for_readers) returns once every
//! registered reader has reported the new one. From then on no packet is
//! decided under an older policy.
//!
//! To keep the (potentially large) free off worker cores, the publisher gets
//! the previous snapshot back and should drop it itself, after the grace
//! period.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// Readers still on an older generation when the grace period ran out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{lagging} of {readers} policy readers had not loaded generation {generation} after {waited:?}"
)]
pub struct ReadersLagging {
    /// The generation waited for.
    pub generation: u64,
    /// Readers that had not reported it.
    pub lagging: usize,
    /// Readers registered.
    pub readers: usize,
    /// How long the publisher waited.
    pub waited: Duration,
}

/// One reader's report, on a cache line of its own: the reader writes it
/// (rarely), the publisher reads it (only while waiting).
#[derive(Debug)]
#[repr(align(64))]
struct ReaderSlot {
    /// The generation of the snapshot the reader last loaded.
    seen: AtomicU64,
}

/// The current policy, shared by the control plane (writer) and every
/// worker (readers).
#[derive(Debug)]
pub struct PolicyCell {
    current: ArcSwap<PolicySnapshot>,
    /// Registered readers. Locked only to register, to unregister and by
    /// a waiting publisher to list them: never on a reader's load.
    readers: Mutex<Vec<Arc<ReaderSlot>>>,
}

/// What a worker holds for one burst.
pub type SnapshotGuard = Guard<Arc<PolicySnapshot>>;

impl PolicyCell {
    /// A cell holding `initial`.
    pub fn new(initial: PolicySnapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(initial),
            readers: Mutex::new(Vec::new()),
        }
    }

    /// The current snapshot; hold it for one burst, then drop it. A reader
    /// that the publisher should wait for loads through a
    /// [`PolicyReader`] instead.
    #[inline]
    pub fn load(&self) -> SnapshotGuard {
        self.current.load()
    }

    /// The current snapshot as an owned `Arc`, for holders that outlive a
    /// burst (the control plane, `explain`).
    pub fn load_full(&self) -> Arc<PolicySnapshot> {
        self.current.load_full()
    }

    /// Registers a reader whose loads [`wait_for_readers`] waits for,
    /// until it is dropped. It starts out on the current generation.
    ///
    /// [`wait_for_readers`]: PolicyCell::wait_for_readers
    pub fn reader(self: &Arc<Self>) -> PolicyReader {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        // Under the lock: a publisher that lists the readers after this
        // one registered waits for it, and one that listed them before
        // had already swapped, so this reader's first load is the new one.
        let generation = self.current.load().generation();
        let slot = Arc::new(ReaderSlot {
            seen: AtomicU64::new(generation),
        });
        readers.push(Arc::clone(&slot));
        PolicyReader {
            cell: Arc::clone(self),
            slot,
            seen: generation,
        }
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

    /// Waits until every registered reader has loaded `generation` (or a
    /// newer one), at most `timeout`. Once it returns `Ok`, no reader
    /// decides anything under an older snapshot again.
    ///
    /// Readers are poll loops that load once per burst, so this takes a
    /// burst's time unless a reader's thread is preempted; the publisher
    /// yields its core while it waits.
    pub fn wait_for_readers(
        &self,
        generation: u64,
        timeout: Duration,
    ) -> Result<(), ReadersLagging> {
        let readers: Vec<Arc<ReaderSlot>> = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let started = Instant::now();
        let mut polls = 0u32;
        loop {
            // Acquire pairs with the reader's release store: what the
            // reader did before reporting happened before this returns.
            let lagging = readers
                .iter()
                .filter(|r| r.seen.load(Ordering::Acquire) < generation)
                .count();
            if lagging == 0 {
                return Ok(());
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(ReadersLagging {
                    generation,
                    lagging,
                    readers: readers.len(),
                    waited,
                });
            }
            polls += 1;
            if polls < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
}

/// A registered reader of a [`PolicyCell`]: one per worker core, owned by
/// its poll loop. Dropping it unregisters it.
#[derive(Debug)]
pub struct PolicyReader {
    cell: Arc<PolicyCell>,
    slot: Arc<ReaderSlot>,
    /// The generation last reported, to store only on a change.
    seen: u64,
}

impl PolicyReader {
    /// The current snapshot, for one burst; reports its generation to a
    /// waiting publisher. Lock-free: one arc-swap load, and one store when
    /// the generation changed.
    #[inline]
    pub fn load(&mut self) -> SnapshotGuard {
        let guard = self.cell.current.load();
        let generation = guard.generation();
        if generation != self.seen {
            self.seen = generation;
            // Release: reported only once the snapshot is in hand.
            self.slot.seen.store(generation, Ordering::Release);
        }
        guard
    }

    /// The generation of the snapshot this reader last loaded.
    pub fn generation(&self) -> u64 {
        self.seen
    }
}

impl Drop for PolicyReader {
    fn drop(&mut self) {
        // Gone readers hold nothing back, even in a publisher that listed
        // them before they unregistered.
        self.slot.seen.store(u64::MAX, Ordering::Release);
        self.cell
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|r| !Arc::ptr_eq(r, &self.slot));
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

    #[test]
    fn a_publisher_waits_for_every_registered_reader() {
        let cell = Arc::new(PolicyCell::new(empty(1)));
        let short = Duration::from_millis(20);
        // Nobody to wait for.
        drop(cell.publish(empty(2)).unwrap());
        assert_eq!(cell.wait_for_readers(2, short), Ok(()));

        let mut a = cell.reader();
        let mut b = cell.reader();
        drop(cell.publish(empty(3)).unwrap());
        let lagging = cell.wait_for_readers(3, short).unwrap_err();
        assert_eq!((lagging.lagging, lagging.readers), (2, 2));
        assert_eq!(a.load().generation(), 3);
        let lagging = cell.wait_for_readers(3, short).unwrap_err();
        assert_eq!((lagging.lagging, lagging.readers), (1, 2));
        // A reader that goes away holds nothing back.
        drop(b);
        assert_eq!(cell.wait_for_readers(3, short), Ok(()));
        // One that registers after a publish starts on it.
        b = cell.reader();
        assert_eq!(cell.wait_for_readers(3, short), Ok(()));
        drop(cell.publish(empty(4)).unwrap());
        assert!(cell.wait_for_readers(4, short).is_err());
        assert_eq!(a.load().generation(), 4);
        assert_eq!(b.load().generation(), 4);
        assert_eq!(cell.wait_for_readers(4, short), Ok(()));
    }

    /// The grace period's promise, under threads: once the publisher's
    /// wait returns, a reader's later bursts all see the new generation.
    #[test]
    fn after_the_grace_period_no_reader_uses_an_older_snapshot() {
        use std::sync::atomic::AtomicBool;
        const LAST: u64 = 300;
        let cell = Arc::new(PolicyCell::new(empty(1)));
        // The generation whose grace period has ended, 0 for none yet.
        let enforced = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let mut reader = cell.reader();
                let enforced = Arc::clone(&enforced);
                let done = Arc::clone(&done);
                std::thread::spawn(move || {
                    let mut bursts = 0u64;
                    while !done.load(Ordering::Acquire) {
                        let snapshot = reader.load();
                        // A burst's worth of work, so that publishes land
                        // inside bursts.
                        for _ in 0..500 {
                            std::hint::spin_loop();
                        }
                        let floor = enforced.load(Ordering::Acquire);
                        assert!(
                            snapshot.generation() >= floor,
                            "a burst under generation {} after {floor} was enforced",
                            snapshot.generation()
                        );
                        bursts += 1;
                        drop(snapshot);
                        std::thread::yield_now();
                    }
                    bursts
                })
            })
            .collect();
        for g in 2..=LAST {
            drop(cell.publish(empty(g)).unwrap());
            cell.wait_for_readers(g, Duration::from_secs(60))
                .expect("readers that keep polling report every generation");
            enforced.store(g, Ordering::Release);
        }
        done.store(true, Ordering::Release);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
    }
}

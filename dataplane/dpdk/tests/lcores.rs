//! Closures on EAL worker lcores: `Eal::scope` runs them as the lcore (its
//! id, the mempool cache that comes with it), lets them borrow, joins them,
//! and refuses what `rte_eal_remote_launch` would get wrong.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use palisade_dpdk::{DpdkError, Eal, Mempool, tsc_cycles};

#[test]
fn closures_run_on_worker_lcores() {
    if !common::can_run_dpdk("closures_run_on_worker_lcores") {
        return;
    }
    let mut args = common::eal_args("lcores", &[]);
    // Two lcores, main 0 and worker 1 (`-l 0,1`).
    let at = args.iter().position(|a| a == "-l").unwrap();
    args[at + 1] = "0,1".into();
    let eal = Eal::init(&args).unwrap();
    assert_eq!(eal.main_lcore(), 0);
    assert_eq!(
        eal.lcore_id(),
        0,
        "the thread that ran init is the main lcore"
    );
    assert_eq!(eal.worker_lcores(), vec![1]);
    let pool = Mempool::new(&eal, "lcores", 1023, 64, 2176, None).unwrap();

    let counter = AtomicU64::new(0);
    let (lcore, cached) = eal.scope(|s| {
        let handle = s
            .launch(1, || {
                // Borrows from the caller's stack.
                counter.fetch_add(1, Ordering::Relaxed);
                // An mbuf freed on a worker lcore goes to that lcore's
                // cache, not back to the pool's ring.
                let m = pool.alloc().unwrap();
                drop(m);
                (eal.lcore_id(), pool.cached(1))
            })
            .unwrap();
        assert_eq!(handle.lcore(), 1);
        handle.join().unwrap()
    });
    assert_eq!(lcore, 1, "the closure runs as lcore 1");
    assert!(cached > 0, "lcore 1 freed into its own cache");
    assert_eq!(pool.cached(0), 0, "the main lcore allocated nothing");
    assert_eq!(counter.load(Ordering::Relaxed), 1);
    assert_eq!(pool.in_use(), 0, "the cached mbuf counts as available");

    // A plain thread has no lcore: no cache.
    std::thread::scope(|t| {
        t.spawn(|| {
            assert_eq!(eal.lcore_id(), u32::MAX);
            drop(pool.alloc().unwrap());
        });
    });
    assert_eq!(
        pool.cached(1),
        cached,
        "the plain thread did not use lcore 1's cache"
    );

    // A registered plain thread gets an lcore id of its own, and the cache.
    std::thread::scope(|t| {
        t.spawn(|| {
            let registered = eal.register_thread().unwrap();
            let lcore = registered.lcore();
            assert!(lcore > 1 && lcore == eal.lcore_id(), "lcore {lcore}");
            assert!(eal.register_thread().is_err(), "registered once");
            drop(pool.alloc().unwrap());
            assert!(pool.cached(lcore) > 0);
            drop(registered);
            assert_eq!(eal.lcore_id(), u32::MAX);
        });
    });

    // Not a worker lcore: the main lcore, one outside -l, one past the max.
    for lcore in [0, 2, 100_000] {
        let error = eal.scope(|s| s.launch(lcore, || ()).map(drop)).unwrap_err();
        assert!(
            matches!(error, DpdkError::NotAWorkerLcore { lcore: l, ref workers } if l == lcore && workers == "1"),
            "{error}"
        );
    }

    // Busy until stopped; a second launch on it is refused; the scope joins
    // an unjoined handle before it returns.
    let stop = AtomicBool::new(false);
    let finished = AtomicBool::new(false);
    eal.scope(|s| {
        let _running = s
            .launch(1, || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
                std::thread::sleep(Duration::from_millis(50));
                finished.store(true, Ordering::Relaxed);
            })
            .unwrap();
        assert!(matches!(s.launch(1, || ()), Err(DpdkError::LcoreBusy(1))));
        stop.store(true, Ordering::Relaxed);
    });
    assert!(
        finished.load(Ordering::Relaxed),
        "the scope waited for the lcore"
    );

    // A panic on the lcore comes back through join; the lcore stays usable.
    let panicked = eal.scope(|s| s.launch(1, || panic!("on purpose")).unwrap().join());
    assert!(panicked.is_err());
    assert_eq!(eal.scope(|s| s.launch(1, || 7).unwrap().join().unwrap()), 7);

    // Only the main lcore launches.
    std::thread::scope(|t| {
        t.spawn(|| {
            let error = eal.scope(|s| s.launch(1, || ()).map(drop)).unwrap_err();
            assert!(
                matches!(
                    error,
                    DpdkError::NotMainLcore {
                        main: 0,
                        caller: u32::MAX
                    }
                ),
                "{error}"
            );
        });
    });

    let hz = eal.tsc_hz();
    assert!(hz > 0, "EAL measured the TSC");
    let t0 = tsc_cycles();
    std::thread::sleep(Duration::from_millis(20));
    assert!(tsc_cycles() > t0);

    eal.cleanup().unwrap();
}

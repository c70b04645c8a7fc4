//! The EAL starts once per process; the second attempt must fail cleanly
//! (an error, no crash), and so must later ones.

mod common;

use palisade_dpdk::{DpdkError, Eal};

#[test]
fn second_eal_init_fails_cleanly() {
    if !common::can_run_dpdk("second_eal_init_fails_cleanly") {
        return;
    }
    let args = common::eal_args("ealonce", &["net_null0"]);
    let eal = Eal::init(&args).expect("first init succeeds");
    assert_eq!(eal.port_ids().count(), 1);

    for _ in 0..2 {
        match Eal::init(&args) {
            Err(DpdkError::AlreadyInitialised) => {}
            other => panic!("second init must be refused, got {other:?}"),
        }
    }
    // The first EAL is unharmed.
    assert_eq!(eal.port_ids().count(), 1);
    eal.cleanup().expect("clean shutdown");
    // Not even after clean-up: DPDK cannot start twice in one process.
    assert!(matches!(
        Eal::init(&args),
        Err(DpdkError::AlreadyInitialised)
    ));
}

//! Port control on net_null devices: lookup by name and devargs, exclusive
//! ownership, queue handles, RSS with the symmetric key, stats and link.

mod common;

use palisade_dpdk::{DpdkError, Eal, MbufBatch, Mempool, Port, SYMMETRIC_RSS_KEY_40};

#[test]
fn null_port_control_path() {
    if !common::can_run_dpdk("null_port_control_path") {
        return;
    }
    let eal = Eal::init(&common::eal_args(
        "nullports",
        &["net_null0", "net_null1,size=128"],
    ))
    .unwrap();
    let pool = Mempool::new(&eal, "nullports", 2047, 32, 2176, None).unwrap();

    match Port::by_name(&eal, "net_nul0") {
        Err(DpdkError::NoSuchPortName { known, .. }) => {
            assert_eq!(known, "net_null0, net_null1");
        }
        other => panic!("a typo must name the known ports, got {other:?}"),
    }
    let mut port = Port::by_devargs(&eal, "net_null0,size=64").unwrap();
    assert!(matches!(
        Port::by_id(&eal, port.id()),
        Err(DpdkError::PortInUse(_))
    ));
    assert!(matches!(
        Port::by_id(&eal, 31),
        Err(DpdkError::NoSuchPort(31))
    ));

    let info = port.info().unwrap();
    assert_eq!(info.name, "net_null0");
    assert_eq!(info.driver_name, "net_null");
    assert_ne!(
        port.rss_offloads().unwrap(),
        0,
        "net_null reports RSS hash types"
    );
    assert!(matches!(
        port.set_rss_key(&[1, 2, 3]),
        Err(DpdkError::RssKeyLength {
            given: 3,
            expected: 40,
            ..
        })
    ));
    assert!(matches!(port.start(), Err(DpdkError::NotConfigured(_))));

    port.use_symmetric_rss().unwrap();
    port.configure(2, 2, 256, 256, &pool).unwrap();
    assert_eq!(port.rss_key().unwrap(), SYMMETRIC_RSS_KEY_40);
    assert!(
        port.steers_symmetrically().unwrap(),
        "two queues, IP-only hashing, the symmetric key"
    );
    // Changing the key of a configured port applies it at once.
    let other_key: Vec<u8> = (0..40).collect();
    port.set_rss_key(&other_key).unwrap();
    assert_eq!(port.rss_key().unwrap(), other_key);
    assert!(
        !port.steers_symmetrically().unwrap(),
        "another key does not steer both directions together"
    );
    assert!(matches!(
        port.configure(65, 1, 0, 0, &pool),
        Err(DpdkError::TooManyQueues {
            direction: "rx",
            ..
        })
    ));
    port.configure(2, 2, 256, 256, &pool).unwrap();
    port.start().unwrap();
    assert!(port.link().unwrap().up);
    assert_eq!(port.mac_addr().unwrap().0.len(), 6);

    {
        let mut rx = port.rx_queue(1).unwrap();
        assert!(port.rx_queue(1).is_err(), "one handle per queue");
        assert!(port.rx_queue(2).is_err(), "only configured queues");
        let mut tx = port.tx_queue(0).unwrap();
        let mut batch: MbufBatch<32> = MbufBatch::new();
        // net_null produces a full burst of 64-byte packets on every poll.
        assert_eq!(rx.rx_burst(&mut batch), 32);
        assert!(
            batch
                .as_slice()
                .iter()
                .all(|m| m.len() == 64 && m.port() == port.id())
        );
        assert_eq!(rx.rx_burst(&mut batch), 0, "a full batch receives nothing");
        assert_eq!(tx.tx_burst(&mut batch), 32);
        assert!(batch.is_empty());
    }
    let stats = port.stats().unwrap();
    assert_eq!(stats.ipackets, 32);
    assert_eq!(stats.opackets, 32);
    port.stop().unwrap();
    assert_eq!(pool.in_use(), 0, "every mbuf returned");
    drop((port, pool));
    eal.cleanup().unwrap();
}

//! Per-burst cost of the binding's fast path against a real EAL: one
//! rx_burst + tx_burst of 32 on net_null (the io-forward step), a ring
//! round trip of 32 mbufs, and an mbuf alloc + free. Needs root; without it
//! the bench says so and measures nothing.
//!
//! Run: `cargo bench -p palisade-dpdk --bench burst`

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use palisade_dpdk::{Eal, MbufBatch, Mempool, Port, Ring, RingSync};

fn main() {
    if !palisade_dpdk::process_is_privileged() {
        eprintln!("SKIPPED burst benches: need root to start the DPDK EAL");
        return;
    }
    let args: Vec<String> = [
        "burst-bench",
        "-l",
        "1",
        "--no-huge",
        "-m",
        "512",
        "--no-shconf",
        "--no-pci",
        "--no-telemetry",
        "--log-level",
        "*:warning",
        "--vdev",
        "net_null0,copy=0",
        "--vdev",
        "net_null1,copy=0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        "--file-prefix".to_owned(),
        format!("burst-bench-{}", std::process::id()),
    ])
    .collect();
    let eal = Eal::init(&args).expect("EAL starts");
    let pool = Mempool::new(&eal, "burst-bench", 16_384, 250, 2176, None).unwrap();
    let mut port0 = Port::by_id(&eal, 0).unwrap();
    let mut port1 = Port::by_id(&eal, 1).unwrap();
    for port in [&mut port0, &mut port1] {
        port.configure(1, 1, 0, 0, &pool).unwrap();
        port.start().unwrap();
    }
    let mut criterion = Criterion::default().configure_from_args();
    {
        let mut rx = port0.rx_queue(0).unwrap();
        let mut tx = port1.tx_queue(0).unwrap();
        let mut group = criterion.benchmark_group("net_null");
        group.throughput(Throughput::Elements(32));
        group.bench_function("rx_burst+tx_burst/32", |b| {
            let mut batch: MbufBatch<32> = MbufBatch::new();
            b.iter(|| {
                let received = rx.rx_burst(&mut batch);
                let sent = tx.tx_burst(&mut batch);
                batch.clear();
                black_box((received, sent))
            });
        });
        group.finish();
    }
    {
        let (mut producer, mut consumer) = Ring::new(
            &eal,
            "burst-bench",
            1024,
            RingSync::Single,
            RingSync::Single,
        )
        .unwrap();
        let mut batch: MbufBatch<32> = MbufBatch::new();
        assert!(pool.alloc_into(&mut batch, 32));
        let mut group = criterion.benchmark_group("ring");
        group.throughput(Throughput::Elements(32));
        group.bench_function("enqueue+dequeue/32/spsc", |b| {
            b.iter(|| {
                let queued = producer.enqueue_burst(&mut batch);
                let back = consumer.dequeue_burst(&mut batch);
                black_box((queued, back))
            });
        });
        group.finish();
    }
    {
        let mut group = criterion.benchmark_group("mbuf");
        group.throughput(Throughput::Elements(1));
        group.bench_function("alloc+free", |b| {
            b.iter(|| black_box(pool.alloc()));
        });
        group.bench_function("alloc+append+data+free", |b| {
            b.iter(|| {
                let mut mbuf = pool.alloc().unwrap();
                mbuf.append(64).unwrap();
                black_box(mbuf.data().len())
            });
        });
        group.finish();
    }
    criterion.final_summary();
    port0.stop().unwrap();
    port1.stop().unwrap();
    drop((port0, port1));
    eal.cleanup().unwrap();
}

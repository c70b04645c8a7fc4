//! Flow-table costs on the packet path.
//!
//! - `lookup_hit_1m/*`: 1 M live flows in a table sized for 1 M (2 M slots,
//!   128 MiB of entries, far beyond any cache; `lookup_hit_64k` is the same
//!   with 64 K flows, 8 MiB, cache-resident), bursts of 32 lookups that
//!   all hit, keys in an order unrelated to table order. `unbatched` hashes
//!   and looks up one packet at a time; `batched` hashes the burst, touches
//!   every home bucket, then looks up (the VPP habit). Both include building
//!   nothing but the hash, as the key comes from the parsed header.
//! - `insert/half_full`: inserting new flows into a table holding 512 K
//!   flows (the inserted flows are removed again outside the timing, so the
//!   load stays put).
//! - `expire/*`: one sweep call over 64 buckets: the usual case where
//!   nothing has expired, and the case where every swept entry has.
//! - `key/new_v4_and_hash`: building a key from header fields and hashing it.
//!
//! Run: `cargo bench -p palisade-flow --bench flow_table`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use palisade_flow::{
    FlowInit, FlowKey, FlowTable, IPPROTO_TCP, IPPROTO_UDP, PlainLoad, Side, TcpFlags, Timeouts,
};

const BURST: usize = 32;

/// xorshift64*: deterministic keys without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn random_keys(count: usize, seed: u64, protocol: u8) -> Vec<(FlowKey, Side)> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let a = rng.next();
            let b = rng.next();
            FlowKey::new_v4(
                (a >> 60) as u32,
                (a as u32).to_be_bytes(),
                (b as u32).to_be_bytes(),
                protocol,
                (a >> 32) as u16,
                (b >> 32) as u16,
            )
        })
        .collect()
}

fn init(initiator: Side) -> FlowInit {
    FlowInit {
        initiator,
        tcp_flags: TcpFlags::ACK,
        tracked: true,
        generation: 1,
        initiator_eni: 1,
        responder_eni: 2,
        admitted_by: 0,
        verdict_flags: 0,
    }
}

fn filled(capacity: usize, keys: &[(FlowKey, Side)], now: u32) -> FlowTable {
    let mut table = FlowTable::with_capacity(capacity).expect("capacity");
    let timeouts = Timeouts::default();
    for (key, side) in keys {
        table
            .insert(key.hash(), *key, &init(*side), now, &timeouts)
            .expect("insert while filling");
    }
    table
}

fn lookup_hit(c: &mut Criterion) {
    // 1 M flows: 128 MiB of entries, every lookup misses the caches. 64 K
    // flows: 8 MiB, within this machine's 32 MiB L3: the compute cost.
    for (name, flows) in [("lookup_hit_1m", 1 << 20), ("lookup_hit_64k", 1 << 16)] {
        lookup_hit_with(c, name, flows);
    }
}

fn lookup_hit_with(c: &mut Criterion, name: &str, flows: usize) {
    let keys = random_keys(flows, 0x1234_5678, IPPROTO_TCP);
    let mut table = filled(flows, &keys, 0);
    assert!(
        keys.iter()
            .all(|(key, _)| table.lookup(key.hash(), key, 1).is_some()),
        "every benchmarked lookup must hit"
    );
    let bursts: Vec<[FlowKey; BURST]> = keys
        .chunks_exact(BURST)
        .map(|chunk| std::array::from_fn(|i| chunk[i].0))
        .collect();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(BURST as u64));
    let mut next = 0;
    group.bench_function("unbatched", |b| {
        b.iter(|| {
            let burst = &bursts[next];
            next = (next + 1) % bursts.len();
            let mut hits = 0u32;
            for key in burst {
                if let Some(flow) = table.lookup(key.hash(), key, 1) {
                    hits += flow.responder_eni;
                }
            }
            black_box(hits)
        });
    });
    group.bench_function("batched", |b| {
        b.iter(|| {
            let burst = &bursts[next];
            next = (next + 1) % bursts.len();
            let hashes: [u64; BURST] = std::array::from_fn(|i| burst[i].hash());
            for &hash in &hashes {
                table.prefetch(hash, &PlainLoad);
            }
            let mut hits = 0u32;
            for (key, &hash) in burst.iter().zip(&hashes) {
                if let Some(flow) = table.lookup(hash, key, 1) {
                    hits += flow.responder_eni;
                }
            }
            black_box(hits)
        });
    });
    group.finish();
}

fn insert(c: &mut Criterion) {
    const FLOWS: usize = 1 << 20;
    let resident = random_keys(FLOWS / 2, 0xabcd, IPPROTO_TCP);
    let mut table = filled(FLOWS, &resident, 0);
    let fresh = random_keys(1 << 20, 0x7777, IPPROTO_UDP);
    let timeouts = Timeouts::default();
    let mut group = c.benchmark_group("insert");
    group.throughput(Throughput::Elements(BURST as u64));
    let mut next = 0;
    group.bench_function("half_full", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let burst = &fresh[next..next + BURST];
                next = (next + BURST) % fresh.len();
                let start = Instant::now();
                for (key, side) in burst {
                    let _ = black_box(table.insert(key.hash(), *key, &init(*side), 1, &timeouts));
                }
                elapsed += start.elapsed();
                for (key, _) in burst {
                    table.remove(key.hash(), key, 1);
                }
            }
            elapsed
        });
    });
    group.finish();
}

fn expire(c: &mut Criterion) {
    const SWEEP: usize = 64;
    let mut group = c.benchmark_group("expire");
    // Nothing to reclaim: the per-burst overhead of a healthy table.
    let live = random_keys(1 << 20, 0x4242, IPPROTO_TCP);
    let mut table = filled(1 << 20, &live, 0);
    group.throughput(Throughput::Elements(1));
    group.bench_function("64_buckets_nothing_expired", |b| {
        b.iter(|| black_box(table.expire(1, SWEEP)));
    });
    drop(table);
    // Everything swept has expired: UDP flows from time 0 swept at 1000.
    let stale = random_keys(1 << 16, 0x5151, IPPROTO_UDP);
    let calls = filled(1 << 16, &[], 0).bucket_count() / SWEEP;
    // Throughput counts sweep calls, so the reported time is per call.
    group.throughput(Throughput::Elements(calls as u64));
    group.bench_function("64_buckets_all_expired", |b| {
        b.iter_batched_ref(
            || filled(1 << 16, &stale, 0),
            |table| {
                let mut reclaimed = 0;
                for _ in 0..calls {
                    reclaimed += table.expire(1000, SWEEP);
                }
                black_box(reclaimed)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn key_and_hash(c: &mut Criterion) {
    let mut group = c.benchmark_group("key");
    group.throughput(Throughput::Elements(1));
    let mut port = 0u16;
    group.bench_function("new_v4_and_hash", |b| {
        b.iter(|| {
            port = port.wrapping_add(1);
            let (key, side) = FlowKey::new_v4(
                black_box(3),
                black_box([10, 0, 0, 9]),
                black_box([10, 0, 1, 7]),
                IPPROTO_TCP,
                port,
                443,
            );
            black_box((key.hash(), side))
        });
    });
    group.finish();
}

fn config() -> Criterion {
    // Two shared cores: short, steady runs.
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = lookup_hit, insert, expire, key_and_hash
}
criterion_main!(benches);

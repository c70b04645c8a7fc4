//! The generator's own per-frame work, without DPDK: choosing a flow and
//! writing its frame from the template. `gen-memif` spends ~500 ns per frame
//! in all (alloc, write, memif copies both ways, free); this bench shows how
//! much of it is the write, i.e. whether the generator's frame building
//! could be what limits the testpmd comparison.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_perf::traffic::{FRAME_LEN, Segment, TrafficPlan};

fn write_frames(c: &mut Criterion) {
    let plan = TrafficPlan::new(8).expect("8 ENIs");
    let mut out = [[0u8; FRAME_LEN]; 32];
    let mut group = c.benchmark_group("traffic");
    group.throughput(Throughput::Elements(32));
    let mut next = 0u64;
    group.bench_function("write_32_new_syns", |b| {
        b.iter(|| {
            for frame in &mut out {
                let flow = plan.flow(next);
                next += 1;
                black_box(plan.write(flow, Segment::Syn, false, frame));
            }
            black_box(&out);
        });
    });
    // Established mode picks flows at random among 1 M; a fixed stride
    // stands in for the generator's xorshift here.
    let mut pick = 0u64;
    group.bench_function("write_32_established_acks_1m", |b| {
        b.iter(|| {
            for (i, frame) in out.iter_mut().enumerate() {
                pick = (pick + 0x9e37_79b9) % 1_000_000;
                let flow = plan.flow(pick);
                black_box(plan.write(flow, Segment::Ack, i % 2 == 1, frame));
            }
            black_box(&out);
        });
    });
    group.finish();
}

criterion_group!(benches, write_frames);
criterion_main!(benches);

//! A SYN flood at a full connection table (`process()` level): the
//! connections already tracked keep flowing, the flood's new connections
//! are dropped and counted as the conntrack allowance exceeded, and the
//! flood leaves no trace in the table.

use core::net::{IpAddr, Ipv4Addr};

use palisade_dataplane::policy::PolicySnapshot;
use palisade_dataplane::testkit::{
    FrameSpec, Payload, ROUTER_MAC, demo_spec, eni_mac, flags, frame,
};
use palisade_dataplane::{DropReason, HeapPacket, Verdict, Worker, WorkerConfig};

const A: u8 = 0;
const B: u8 = 1;

fn ip(i: u8) -> IpAddr {
    [
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, 10)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 2, 20)),
    ][usize::from(i)]
}

/// A → B (web: tcp/80 from anywhere) or its reply.
fn tcp(from: u8, to: u8, sport: u16, dport: u16, f: u8) -> Vec<u8> {
    frame(&FrameSpec::new(
        eni_mac(from),
        ROUTER_MAC,
        ip(from),
        ip(to),
        Payload::Tcp {
            src_port: sport,
            dst_port: dport,
            flags: f,
        },
    ))
}

/// Runs `frames` (port, bytes) through the worker in bursts of 32.
fn run(
    worker: &mut Worker,
    snapshot: &PolicySnapshot,
    now: u32,
    frames: &[(u16, Vec<u8>)],
) -> Vec<Verdict> {
    let mut out = Vec::with_capacity(frames.len());
    for chunk in frames.chunks(32) {
        let mut burst: Vec<HeapPacket> = chunk
            .iter()
            .map(|(port, bytes)| HeapPacket::new(*port, bytes))
            .collect();
        let mut verdicts = vec![Verdict::Drop(DropReason::Malformed); chunk.len()];
        worker.process(&mut burst, now, snapshot, &mut verdicts);
        out.extend(verdicts);
    }
    out
}

#[test]
fn a_syn_flood_at_a_full_table_drops_the_new_and_keeps_the_established() {
    let snapshot = PolicySnapshot::compile(&demo_spec(), 1).expect("demo compiles");
    let mut worker = Worker::new(WorkerConfig {
        max_flows: 64,
        ..WorkerConfig::default()
    })
    .expect("worker");
    let capacity = worker.flows().capacity();
    let now = 1000;
    // Fill the table with established connections (handshake through
    // process() itself); the table's bounded probing may refuse a few
    // before it is full, so keep the ones it took.
    let mut established = Vec::new();
    for port in 0..capacity as u16 * 2 {
        let sport = 10_000 + port;
        let handshake = [
            (0, tcp(A, B, sport, 80, flags::SYN)),
            (1, tcp(B, A, 80, sport, flags::SYN_ACK)),
            (0, tcp(A, B, sport, 80, flags::ACK)),
        ];
        let v = run(&mut worker, &snapshot, now, &handshake);
        if v.iter().all(|v| matches!(v, Verdict::Forward { .. })) {
            established.push(sport);
        } else {
            assert_eq!(v[0], Verdict::Drop(DropReason::ConntrackFull));
        }
        if worker.flows().available() == 0 {
            break;
        }
    }
    assert_eq!(worker.flows().available(), 0, "the table filled");
    assert!(established.len() >= capacity * 9 / 10);
    let refused_before = worker.counters().dropped(DropReason::ConntrackFull);

    // The flood: never-seen connections, far past capacity, in bursts
    // with the established connections' packets in between.
    let flood = 50 * capacity;
    let mut frames: Vec<(u16, Vec<u8>)> = Vec::new();
    for i in 0..flood {
        frames.push((0, tcp(A, B, 30_000 + i as u16, 80, flags::SYN)));
        if i % 16 == 0 {
            let sport = established[i / 16 % established.len()];
            frames.push((0, tcp(A, B, sport, 80, flags::ACK)));
            frames.push((1, tcp(B, A, 80, sport, flags::ACK)));
        }
    }
    let verdicts = run(&mut worker, &snapshot, now + 1, &frames);
    for ((_, bytes), v) in frames.iter().zip(&verdicts) {
        let syn = bytes[14 + 20 + 13] == flags::SYN;
        if syn {
            assert_eq!(*v, Verdict::Drop(DropReason::ConntrackFull));
        } else {
            assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
        }
    }
    // Every established connection's next packets still pass, both ways.
    let after: Vec<(u16, Vec<u8>)> = established
        .iter()
        .flat_map(|&sport| {
            [
                (0, tcp(A, B, sport, 80, flags::ACK)),
                (1, tcp(B, A, 80, sport, flags::ACK)),
            ]
        })
        .collect();
    let verdicts = run(&mut worker, &snapshot, now + 2, &after);
    assert!(
        verdicts
            .iter()
            .all(|v| matches!(v, Verdict::Forward { .. })),
        "{verdicts:?}"
    );
    // Counted: as drops (conntrack_full) and as the allowance exceeded.
    let refused = worker.counters().dropped(DropReason::ConntrackFull) - refused_before;
    assert_eq!(refused, flood as u64);
    let gauges = worker.flow_gauges();
    assert_eq!(
        gauges.refused,
        worker.counters().dropped(DropReason::ConntrackFull)
    );
    assert_eq!(gauges.available, 0);
    assert_eq!(worker.flows().len(), established.len());
    // Not the rules' denials: never remembered as denied flows.
    assert_eq!(worker.counters().denied_remembered, 0);
}

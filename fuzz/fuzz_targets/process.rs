//! `Worker::process()` over arbitrary bursts of arbitrary frames.
//!
//! The data plane hands `process()` whatever arrives on a port, so no input
//! may panic it, and whatever it decides must add up. The input is a
//! sequence of bursts:
//!
//! ```text
//! burst  := header:u8 count:u8 frame{count % 33}
//! header := bits 0-3: index into TIME_STEPS (seconds the clock advances
//!           before this burst); bit 4: use the second policy generation
//! frame  := len:u16be port:u8 bytes{len}   (cut short at the input's end;
//!           the port is taken modulo 4)
//! ```
//!
//! The world is the testkit's demo VPC plus a VLAN-tagged ENI, an uplink
//! (tagged) and a group whose tcp flows are untracked, so VLAN retagging,
//! uplink routing and untracked flows are reachable. The second generation
//! removes rules and adds a NACL deny, so flows admitted under one are
//! re-validated under the other. Snapshots are compiled once; the worker
//! (small tables, so the conntrack allowance and the fragment table fill
//! up) is made afresh for each input, so a crash replays from its input
//! alone.
//!
//! After each burst: exactly one verdict per frame and none past the end;
//! the verdicts agree with the counters' deltas, reason by reason;
//! `packets == forwarded + replied + dropped_total`; forwarded and answered
//! frames still parse and come from the router's MAC. The worker's
//! denied-flow memory is tiny (4 entries, so flows displace each other),
//! and a twin worker without one gets the same bursts: the two must give
//! the same verdicts, the same output bytes and the same counters (the
//! memory's own hit count aside).
//!
//! The seed corpus in `corpus/process/` is written by
//! `cargo run --example process_seeds -- corpus/process` (in `fuzz/`).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use palisade_dataplane::policy::{
    EniSpec, IpCidr, NaclAction, NaclEntry, PolicySnapshot, PolicySpec, PortSpec, Protocol,
    SecurityGroupSpec, SgId, UplinkSpec,
};
use palisade_dataplane::testkit::{ROUTER_MAC, cidr4, demo_spec, rule};
use palisade_dataplane::wire::parse_frame;
use palisade_dataplane::{
    DropReason, HeapPacket, PacketBuf, Verdict, Worker, WorkerConfig, WorkerCounters,
};

/// Seconds the clock may advance between bursts: each side of the
/// conntrack timeouts (UDP 30/180, fragments, TCP transitory, 432,000 s).
const TIME_STEPS: [u32; 16] = [
    0, 1, 2, 5, 29, 31, 59, 61, 119, 121, 179, 181, 599, 601, 3601, 432_001,
];
const MAX_FRAMES_PER_BURST: usize = 32;
const PORTS: u8 = 4;
/// A verdict `process()` never gives in this world (no port 65535): marks
/// the entries it must not touch or must overwrite.
const UNSET: Verdict = Verdict::Forward { port: u16::MAX };

/// The fuzzed world, generation 1 and 2.
fn world() -> (PolicySpec, PolicySpec) {
    let mut spec = demo_spec();
    // eni-d: tagged (VLAN 5) on port 3, in subnet-a, groups default + open.
    spec.enis.push(EniSpec {
        id: "eni-d".into(),
        vlan: Some(5),
        port: 3,
        mac: [0x02, 0, 0, 0, 0, 3],
        private_ips: vec![
            "10.0.1.40".parse().expect("valid IP"),
            "fd00:0:0:1::40".parse().expect("valid IP"),
        ],
        groups: vec![SgId::from("default"), SgId::from("open")],
        ..spec.enis[0].clone()
    });
    // tcp from anywhere in, everything out: untracked tcp (SEMANTICS.md).
    spec.security_groups.push(SecurityGroupSpec {
        id: "open".into(),
        vpc: "vpc-1".into(),
        ingress: vec![rule(
            "sgr-o1",
            Protocol::Tcp,
            PortSpec::Range { from: 0, to: 65535 },
            cidr4("0.0.0.0/0"),
        )],
        egress: spec.security_groups[0].egress.clone(),
    });
    spec.uplink = Some(UplinkSpec {
        port: 3,
        vlan: Some(7),
        mac: [0x02, 0, 0, 0, 0, 0xee],
    });
    let mut next = spec.clone();
    // Generation 2: web loses tcp/80, "open" loses its rule, and the ACL
    // denies one host outright.
    for group in &mut next.security_groups {
        if group.id.as_str() == "web" || group.id.as_str() == "open" {
            group.ingress.retain(|r| r.protocol != Protocol::Tcp);
        }
    }
    next.nacls[0].entries.push(NaclEntry {
        rule_number: 50,
        egress: false,
        protocol: Protocol::All,
        cidr: "10.0.2.30/32".parse::<IpCidr>().expect("valid CIDR"),
        ports: PortSpec::Any,
        action: NaclAction::Deny,
    });
    (spec, next)
}

fn snapshots() -> &'static [PolicySnapshot; 2] {
    static SNAPSHOTS: OnceLock<[PolicySnapshot; 2]> = OnceLock::new();
    SNAPSHOTS.get_or_init(|| {
        let (first, second) = world();
        [
            PolicySnapshot::compile(&first, 1).expect("fuzz world compiles"),
            PolicySnapshot::compile(&second, 2).expect("fuzz world compiles"),
        ]
    })
}

/// Reads the next burst; `None` at the end of the input.
fn next_burst(input: &mut &[u8], burst: &mut Vec<HeapPacket>) -> Option<(u32, usize)> {
    let (&[header, count], rest) = input.split_first_chunk::<2>()?;
    *input = rest;
    burst.clear();
    for _ in 0..usize::from(count) % (MAX_FRAMES_PER_BURST + 1) {
        let Some((&[hi, lo, port], rest)) = input.split_first_chunk::<3>() else {
            break;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo])).min(rest.len());
        let (bytes, rest) = rest.split_at(len);
        burst.push(HeapPacket::new(u16::from(port % PORTS), bytes));
        *input = rest;
    }
    let step = TIME_STEPS[usize::from(header & 0x0f)];
    Some((step, usize::from(header >> 4 & 1)))
}

fn check_burst(
    before: &WorkerCounters,
    after: &WorkerCounters,
    ingress: &[u16],
    sent_bytes: u64,
    burst: &[HeapPacket],
    verdicts: &[Verdict],
) {
    let n = burst.len();
    assert_eq!(verdicts[n], UNSET, "a verdict past the end of the burst");
    assert_eq!(after.packets - before.packets, n as u64);
    assert_eq!(after.bytes - before.bytes, sent_bytes);
    let mut forwarded = 0;
    let mut replied = 0;
    let mut drops = [0u64; DropReason::COUNT];
    for ((pkt, verdict), &port) in burst.iter().zip(verdicts).zip(ingress) {
        match *verdict {
            UNSET => panic!("a frame without a verdict"),
            Verdict::Forward { port: out } => {
                forwarded += 1;
                assert!(out < u16::from(PORTS), "forwarded to unknown port {out}");
                let info = parse_frame(pkt.data()).expect("a forwarded frame must parse");
                assert_eq!(info.src_mac.0, ROUTER_MAC, "forwarded from the router MAC");
            }
            Verdict::Reply { port: out } => {
                replied += 1;
                assert_eq!(out, port, "an answer leaves by its ingress port");
                let info = parse_frame(pkt.data()).expect("an answer must parse");
                assert_eq!(info.src_mac.0, ROUTER_MAC, "answered from the router MAC");
            }
            Verdict::Drop(reason) => drops[reason.index()] += 1,
        }
    }
    assert_eq!(after.forwarded - before.forwarded, forwarded);
    assert_eq!(after.replied - before.replied, replied);
    for reason in DropReason::ALL {
        assert_eq!(
            after.dropped(*reason) - before.dropped(*reason),
            drops[reason.index()],
            "drops counted as {reason}"
        );
    }
    assert_eq!(
        after.packets,
        after.forwarded + after.replied + after.dropped_total(),
        "every packet forwarded, answered or dropped"
    );
}

/// The twin without a denied-flow memory decided the burst alike.
fn check_twin(
    worker: &Worker,
    twin: &Worker,
    burst: &[HeapPacket],
    verdicts: &[Verdict],
    twin_burst: &[HeapPacket],
    twin_verdicts: &[Verdict],
) {
    assert_eq!(verdicts, twin_verdicts, "verdicts with and without the memory");
    for (a, b) in burst.iter().zip(twin_burst) {
        assert_eq!(a.data(), b.data(), "output with and without the memory");
    }
    let strip = |c: &WorkerCounters| WorkerCounters {
        denied_remembered: 0,
        ..c.clone()
    };
    assert_eq!(
        strip(worker.counters()),
        strip(twin.counters()),
        "counters with and without the memory"
    );
    assert_eq!(worker.group_allowed(), twin.group_allowed());
    assert_eq!(worker.group_denied(), twin.group_denied());
}

fuzz_target!(|data: &[u8]| {
    let snapshots = snapshots();
    let config = WorkerConfig {
        max_flows: 16,
        max_fragmented_datagrams: 4,
        expiry_buckets_per_burst: 1,
        denied_flows: 4,
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(config).expect("small worker");
    let mut twin = Worker::new(WorkerConfig {
        denied_flows: 0,
        ..config
    })
    .expect("small worker");
    let mut twin_verdicts = [UNSET; MAX_FRAMES_PER_BURST + 1];
    let mut input = data;
    let mut burst = Vec::with_capacity(MAX_FRAMES_PER_BURST);
    let mut verdicts = [UNSET; MAX_FRAMES_PER_BURST + 1];
    let mut now = 1000u32;
    while let Some((step, generation)) = next_burst(&mut input, &mut burst) {
        now = now.saturating_add(step);
        let ingress: Vec<u16> = burst.iter().map(PacketBuf::ingress_port).collect();
        let sent_bytes = burst.iter().map(|p| p.data().len() as u64).sum();
        let before = worker.counters().clone();
        verdicts.fill(UNSET);
        let one_past = burst.len() + 1;
        let mut twin_burst = burst.clone();
        twin_verdicts.fill(UNSET);
        twin.process(
            &mut twin_burst,
            now,
            &snapshots[generation],
            &mut twin_verdicts[..one_past],
        );
        worker.process(
            &mut burst,
            now,
            &snapshots[generation],
            &mut verdicts[..one_past],
        );
        check_burst(
            &before,
            worker.counters(),
            &ingress,
            sent_bytes,
            &burst,
            &verdicts,
        );
        check_twin(
            &worker,
            &twin,
            &burst,
            &verdicts,
            &twin_burst,
            &twin_verdicts,
        );
    }
});

//! `Worker::process()` end to end: what one core does per packet.
//!
//! Frames are pre-built `HeapPacket`s (78-byte IPv4/TCP, untagged, all on
//! port 0); `process()` rewrites them in place (MACs, TTL), so before each
//! burst they are reset by copying 32 pristine frames in from a flat array
//! walked in order — as a NIC would have written them. That copy is part
//! of every timed burst; `*/reset_only` times it alone so it can be
//! subtracted. Throughput is per packet (`Throughput::Elements(32)`).
//! At 1 M flows that subtraction undercounts the copy: timed alone it
//! streams its frames from memory undisturbed, but inside a burst's timing
//! it competes with `process()`'s table misses (a profile puts ~17 % of
//! the timed loop in the copy, `reset_only` ~5 %). So each established
//! case also runs as `*_staged`: 64 bursts' frames are copied in untimed,
//! then the 64 bursts are processed back to back in one timed region —
//! `process()` alone, reading its frames from L2 rather than from the L1
//! the copy has just written.
//!
//! - `established_1m/*`: a VPC of 400 ENIs, all in the default group (all
//!   traffic from itself); 1,000,000 TCP connections opened beforehand
//!   through `process()` itself (SYN, SYN-ACK, ACK) in a worker sized for
//!   2^20 flows (2 M slots, 128 MiB: far beyond the caches); then bursts of
//!   32 ACKs, each of a different connection, in an order unrelated to the
//!   table's, from a random side of each. Every connection is hit once per
//!   pass over all of them. `established_1k/*`: the same with 1,024
//!   connections (same table size), so flows and frames stay in cache.
//!   `established_64k/*`: 65,536 connections in the same table, a
//!   diagnostic between the two: their entries and tags (8 MiB) fit this
//!   VM's caches, but they are spread over all 32 K 4 KiB pages of the
//!   table, so a run costing near the 1 M case points at address translation,
//!   one near the 1 K case at the caches.
//! - `new_flows/*`: a VPC of 10,000 ENIs in 50 subnets (half behind a
//!   20-entry NACL); 64 senders and 64 receivers carry the same 16 groups of
//!   63 ingress + 63 egress rules (1,008 rules per direction: tcp/udp ports
//!   and ranges, icmp, other protocols, IPv4/IPv6 CIDRs, group peers). Each
//!   burst is 32 SYNs of distinct new connections the rules allow, each one
//!   inserted as a tracked flow. A pool of 2^18 such SYNs is replayed into
//!   a worker sized for 2^20 flows; when the pool is used up the worker is
//!   replaced outside the timing, so the table is between 0 and 25 % full.
//!
//! - `denied_10k/*`: the same big VPC; 10,000 SYNs of distinct flows the
//!   rules deny (a flood of refused connection attempts), replayed over
//!   and over. `process_burst_32*` runs the worker as the appliance does,
//!   its denied-flow memory (`palisade_dataplane::denied`) warmed by one
//!   untimed pass: each packet is a remembered denial.
//!   `process_burst_32_classified*` turns the memory off: each packet is
//!   classified from scratch, what every denied packet cost before. Set
//!   beside `established_*`, the ratio says what a denied flood costs
//!   against established traffic: in instructions `established_1k` is the
//!   match (the same lane up to the lookup); in time `established_64k`,
//!   whose lookups, like the 10 K denied flows', land all over the
//!   worker's 2^20-flow table.
//!
//! Every pass checks that the benchmark measured what it says (every ACK a
//! flow hit, every SYN a new tracked flow, nothing dropped).
//!
//! Each timed case runs with the [`PlainLoad`] prefetcher (tests' and
//! fuzzing's default) and, with `--features dpdk`, again as
//! `*_cpu_prefetch` with the DPDK binding's prefetch instruction (what the
//! appliance runs), each on its own worker with the same flows and frames.
//!
//! Run: `cargo bench -p palisade-dataplane --features dpdk --bench process`.
//!
//! Instruction counts (this VM has no hardware counters and noisy
//! neighbours; callgrind's counts are the same on every run): with
//! `PALISADE_ICOUNT=<group>/<case>` the bench sets up that one case only,
//! runs [`ICOUNT_BURSTS`] bursts through `icount_bursts` and exits, so
//!
//! ```text
//! PALISADE_ICOUNT=established_1k/process_burst_32_cpu_prefetch valgrind \
//!     --tool=callgrind --toggle-collect='*icount_bursts*' target/release/deps/process-… --bench
//! ```
//!
//! counts the instructions of exactly those bursts (reset copy included):
//! divide by `ICOUNT_BURSTS * 32` for a packet's. `PALISADE_ICOUNT_BURSTS`
//! changes the number of bursts (e.g. a few million for `perf record`).

use std::collections::HashSet;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
#[cfg(feature = "dpdk")]
use palisade_dataplane::CpuPrefetch;
use palisade_dataplane::policy::{
    ConntrackTimeouts, EniIdx, EniSpec, IpCidr, Ipv4Cidr, Ipv6Cidr, NaclAction, NaclEntry,
    NaclSpec, PacketFields, Peer, PolicySnapshot, PolicySpec, PortSpec, Protocol,
    SecurityGroupSpec, SetClassifier, SgId, SgRule, SubnetSpec, Verdict as PolicyVerdict, VpcSpec,
};
use palisade_dataplane::testkit::{FrameSpec, Payload, ROUTER_MAC, demo_spec, flags, frame};
use palisade_dataplane::{
    DropReason, HeapPacket, PacketBuf, PlainLoad, Prefetch, Verdict, Worker, WorkerConfig,
    WorkerCounters,
};

const BURST: usize = 32;
/// Bursts a `*_staged` case copies in (untimed) before timing them back to
/// back: 64 × 32 frames of 78 bytes stay within L2.
const STAGED_BURSTS: usize = 64;
const NOW: u32 = 1000;
/// Ports a connection goes to; ≥ 1024 ones make reverse-tuple clashes
/// possible, which is why flows are deduplicated on the unordered tuple.
const SERVICE_PORTS: [u16; 5] = [80, 443, 5432, 6379, 8080];

/// splitmix64: deterministic traffic without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]
}

fn tcp_frame(from: &EniSpec, to: &EniSpec, sport: u16, dport: u16, tcp_flags: u8) -> Vec<u8> {
    frame(&FrameSpec::new(
        from.mac,
        ROUTER_MAC,
        from.private_ips[0],
        to.private_ips[0],
        Payload::Tcp {
            src_port: sport,
            dst_port: dport,
            flags: tcp_flags,
        },
    ))
}

/// Frames of one length, back to back: the pristine copies bursts are
/// reset from.
struct FrameArray {
    bytes: Vec<u8>,
    frame_len: usize,
}

impl FrameArray {
    fn new() -> Self {
        FrameArray {
            bytes: Vec::new(),
            frame_len: 0,
        }
    }

    fn push(&mut self, frame: &[u8]) {
        if self.bytes.is_empty() {
            self.frame_len = frame.len();
        }
        assert_eq!(frame.len(), self.frame_len, "all frames the same length");
        self.bytes.extend_from_slice(frame);
    }

    fn len(&self) -> usize {
        self.bytes.len() / self.frame_len.max(1)
    }

    fn bursts(&self) -> usize {
        self.len() / BURST
    }

    fn burst(&self, i: usize) -> &[u8] {
        let size = BURST * self.frame_len;
        &self.bytes[i * size..(i + 1) * size]
    }
}

/// A burst of packets, reset in place from pristine frames before each use.
struct Burst {
    packets: Vec<HeapPacket>,
    verdicts: [Verdict; BURST],
}

impl Burst {
    fn new(frame_len: usize) -> Self {
        Burst {
            packets: (0..BURST)
                .map(|_| HeapPacket::new(0, &vec![0; frame_len]))
                .collect(),
            verdicts: [Verdict::Drop(DropReason::Malformed); BURST],
        }
    }

    /// Copies 32 frames in. The frames keep their length through
    /// `process()` (untagged in and out), so a copy restores them.
    #[inline]
    fn reset(&mut self, pristine: &[u8], frame_len: usize) {
        for (pkt, src) in self
            .packets
            .iter_mut()
            .zip(pristine.chunks_exact(frame_len))
        {
            pkt.data_mut().copy_from_slice(src);
        }
    }

    fn run<F: Prefetch>(&mut self, worker: &mut Worker<F>, snapshot: &PolicySnapshot) {
        worker.process(&mut self.packets, NOW, snapshot, &mut self.verdicts);
    }
}

/// Runs every frame of `frames` through `worker` in bursts, returning how
/// many were forwarded.
fn run_all<F: Prefetch>(
    worker: &mut Worker<F>,
    snapshot: &PolicySnapshot,
    frames: &FrameArray,
    burst: &mut Burst,
) -> usize {
    let mut forwarded = 0;
    for i in 0..frames.bursts() {
        burst.reset(frames.burst(i), frames.frame_len);
        burst.run(worker, snapshot);
        forwarded += burst
            .verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Forward { .. }))
            .count();
    }
    forwarded
}

// ---------------------------------------------------------------------------
// Instruction counts (see the module documentation).

/// Bursts an instruction-count run measures, unless `PALISADE_ICOUNT_BURSTS`
/// says otherwise (a longer run suits `perf record`).
const ICOUNT_BURSTS: usize = 4096;

/// The case an instruction-count run asked for, if any.
fn icount_case() -> Option<String> {
    std::env::var("PALISADE_ICOUNT").ok()
}

/// Whether the case `group/id` is skipped: an instruction-count run sets
/// up only the case it measures.
fn icount_skips(group: &str, id: &str) -> bool {
    icount_case().is_some_and(|case| case != format!("{group}/{id}"))
}

/// The bursts an instruction-count run measures, out of line so that
/// callgrind can count them alone; then the process ends.
#[inline(never)]
fn icount_bursts<F: Prefetch>(
    worker: &mut Worker<F>,
    snapshot: &PolicySnapshot,
    frames: &FrameArray,
    burst: &mut Burst,
) -> ! {
    let bursts = std::env::var("PALISADE_ICOUNT_BURSTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ICOUNT_BURSTS);
    let before = worker.counters().packets;
    for i in 0..bursts {
        burst.reset(frames.burst(i % frames.bursts()), frames.frame_len);
        burst.run(worker, snapshot);
        black_box(&burst.verdicts);
    }
    let packets = worker.counters().packets - before;
    eprintln!("icount: {bursts} bursts, {packets} packets");
    std::process::exit(0)
}

// ---------------------------------------------------------------------------
// Established flows.

const SMALL_VPC_ENIS: usize = 400;

/// The demo world's VPC, subnets, groups and ACL with 400 ENIs, all in the
/// `default` group ("all traffic from itself"), half in each subnet.
fn small_vpc() -> PolicySpec {
    let mut spec = demo_spec();
    spec.enis = (0..SMALL_VPC_ENIS)
        .map(|i| EniSpec {
            id: format!("eni-{i:05}").as_str().into(),
            subnet: if i % 2 == 0 { "subnet-a" } else { "subnet-b" }.into(),
            port: 0,
            vlan: None,
            mac: mac(i),
            private_ips: vec![IpAddr::V4(Ipv4Addr::new(
                10,
                0,
                1 + (i % 2) as u8,
                10 + (i / 2) as u8,
            ))],
            groups: vec![SgId::from("default")],
            source_dest_check: true,
            timeouts: ConntrackTimeouts::default(),
        })
        .collect();
    spec
}

/// `count` distinct TCP connections between random pairs of ENIs:
/// (client, server, client port, server port).
fn connections(count: usize, seed: u64) -> Vec<(usize, usize, u16, u16)> {
    let mut rng = Rng(seed);
    let mut seen = HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let a = rng.below(SMALL_VPC_ENIS);
        let b = (a + 1 + rng.below(SMALL_VPC_ENIS - 1)) % SMALL_VPC_ENIS;
        let sport = 1024 + rng.below(64512) as u16;
        let dport = SERVICE_PORTS[rng.below(SERVICE_PORTS.len())];
        let unordered = if (a, sport) < (b, dport) {
            (a, sport, b, dport)
        } else {
            (b, dport, a, sport)
        };
        if seen.insert(unordered) {
            out.push((a, b, sport, dport));
        }
    }
    out
}

/// Opens every connection through `process()` (SYN, SYN-ACK, ACK, one
/// burst of each per 32 connections) and returns the ones the table took.
fn open<F: Prefetch>(
    worker: &mut Worker<F>,
    snapshot: &PolicySnapshot,
    spec: &PolicySpec,
    conns: &[(usize, usize, u16, u16)],
) -> Vec<(usize, usize, u16, u16)> {
    let mut opened = Vec::with_capacity(conns.len());
    let mut verdicts = [Verdict::Drop(DropReason::Malformed); BURST];
    for chunk in conns.chunks(BURST) {
        let mut admitted = [true; BURST];
        for (step, tcp_flags) in [flags::SYN, flags::SYN_ACK, flags::ACK]
            .into_iter()
            .enumerate()
        {
            let mut packets: Vec<HeapPacket> = chunk
                .iter()
                .map(|&(a, b, sport, dport)| {
                    let (ea, eb) = (&spec.enis[a], &spec.enis[b]);
                    let bytes = if step == 1 {
                        tcp_frame(eb, ea, dport, sport, tcp_flags)
                    } else {
                        tcp_frame(ea, eb, sport, dport, tcp_flags)
                    };
                    HeapPacket::new(0, &bytes)
                })
                .collect();
            worker.process(&mut packets, NOW, snapshot, &mut verdicts);
            for (ok, v) in admitted.iter_mut().zip(&verdicts[..chunk.len()]) {
                *ok &= matches!(v, Verdict::Forward { .. });
            }
        }
        opened.extend(
            chunk
                .iter()
                .zip(admitted)
                .filter(|(_, ok)| *ok)
                .map(|(c, _)| *c),
        );
    }
    opened
}

fn established(c: &mut Criterion) {
    if icount_case().is_some_and(|case| !case.starts_with("established_")) {
        return;
    }
    let spec = small_vpc();
    let snapshot = PolicySnapshot::compile(&spec, 1).expect("small VPC compiles");
    let cases = [
        ("established_1m", 1_000_000),
        ("established_64k", 65_536),
        ("established_1k", 1024),
    ];
    for (name, count) in cases {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(BURST as u64));
        let case = EstablishedCase {
            spec: &spec,
            snapshot: &snapshot,
            name,
            count,
        };
        case.run(&mut group, "process_burst_32", PlainLoad, true);
        #[cfg(feature = "dpdk")]
        case.run(
            &mut group,
            "process_burst_32_cpu_prefetch",
            CpuPrefetch,
            false,
        );
        group.finish();
    }
}

/// One established-flows case; run once per prefetcher, each with its own
/// worker holding the same connections and replaying the same frames.
struct EstablishedCase<'a> {
    spec: &'a PolicySpec,
    snapshot: &'a PolicySnapshot,
    name: &'a str,
    count: usize,
}

impl EstablishedCase<'_> {
    fn run<F: Prefetch>(
        &self,
        group: &mut BenchmarkGroup<'_, WallTime>,
        id: &str,
        prefetcher: F,
        with_reset_only: bool,
    ) {
        let (spec, snapshot, name, count) = (self.spec, self.snapshot, self.name, self.count);
        if icount_skips(name, id) {
            return;
        }
        let mut worker = Worker::with_prefetcher(
            WorkerConfig {
                max_flows: 1 << 20,
                ..WorkerConfig::default()
            },
            prefetcher,
        )
        .expect("worker");
        let started = Instant::now();
        let conns = connections(count, 0x5eed ^ count as u64);
        let opened = open(&mut worker, snapshot, spec, &conns);
        // The table probes a bounded window: a handful of a million random
        // keys may be refused; they are left out of the traffic.
        assert!(
            opened.len() + count / 10_000 >= count,
            "too many refused: {} of {count}",
            count - opened.len()
        );
        let mut rng = Rng(0xac4);
        let mut frames = FrameArray::new();
        for &(a, b, sport, dport) in &opened {
            let (ea, eb) = (&spec.enis[a], &spec.enis[b]);
            let bytes = if rng.below(2) == 0 {
                tcp_frame(ea, eb, sport, dport, flags::ACK)
            } else {
                tcp_frame(eb, ea, dport, sport, flags::ACK)
            };
            frames.push(&bytes);
        }
        let mut burst = Burst::new(frames.frame_len);
        // One untimed pass: every frame must be a hit on its flow.
        let before = worker.counters().clone();
        let forwarded = run_all(&mut worker, snapshot, &frames, &mut burst);
        assert_eq!(forwarded, frames.bursts() * BURST, "every ACK forwarded");
        check_hits_only(&before, worker.counters());
        eprintln!(
            "{name}/{id}: {} connections open ({} refused by the table), {} bursts, set up in {:.1?}",
            opened.len(),
            count - opened.len(),
            frames.bursts(),
            started.elapsed()
        );
        if icount_case().is_some() {
            icount_bursts(&mut worker, snapshot, &frames, &mut burst);
        }

        let mut next = 0;
        let before = worker.counters().clone();
        group.bench_function(id, |b| {
            b.iter(|| {
                burst.reset(frames.burst(next), frames.frame_len);
                burst.run(&mut worker, snapshot);
                next = (next + 1) % frames.bursts();
                black_box(&burst.verdicts);
            });
        });
        if with_reset_only {
            group.bench_function("reset_only", |b| {
                b.iter(|| {
                    burst.reset(frames.burst(next), frames.frame_len);
                    next = (next + 1) % frames.bursts();
                    black_box(&burst.packets);
                });
            });
        }
        // The same bursts with their frames staged untimed: `process()`
        // alone, without the copy's own memory traffic in the timing.
        let mut staged: Vec<Burst> = (0..STAGED_BURSTS)
            .map(|_| Burst::new(frames.frame_len))
            .collect();
        group.bench_function(format!("{id}_staged"), |b| {
            b.iter_custom(|iterations| {
                let mut elapsed = Duration::ZERO;
                let mut left = iterations;
                while left > 0 {
                    let chunk = staged
                        .len()
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    for burst in staged.iter_mut().take(chunk) {
                        burst.reset(frames.burst(next), frames.frame_len);
                        next = (next + 1) % frames.bursts();
                    }
                    let start = Instant::now();
                    for burst in staged.iter_mut().take(chunk) {
                        burst.run(&mut worker, snapshot);
                        black_box(&burst.verdicts);
                    }
                    elapsed += start.elapsed();
                    left -= chunk as u64;
                }
                elapsed
            });
        });
        check_hits_only(&before, worker.counters());
    }
}

/// Between `before` and `after`, every packet was forwarded as a hit on a
/// known flow (none at all when a filter skipped the benchmark).
fn check_hits_only(before: &WorkerCounters, after: &WorkerCounters) {
    let packets = after.packets - before.packets;
    assert_eq!(after.forwarded - before.forwarded, packets, "all forwarded");
    assert_eq!(after.flow_hits - before.flow_hits, packets, "all flow hits");
    assert_eq!(after.new_flows, before.new_flows, "no new flow");
    assert_eq!(after.dropped_total(), before.dropped_total(), "no drop");
}

// ---------------------------------------------------------------------------
// New flows.

const ENIS: usize = 10_000;
const SUBNETS: usize = 50;
const BIG_GROUPS: usize = 16;
const RULES_PER_DIRECTION: usize = 63;
const TYPICAL_GROUPS: usize = 200;
/// Senders are ENIs `0..ENDS`, receivers `ENDS..2 * ENDS`; all carry the 16
/// big groups.
const ENDS: usize = 64;
const POOL: usize = 1 << 18;
const TCP_BASES: [u16; 8] = [22, 80, 443, 3306, 5432, 6379, 8080, 9000];

fn eni_v4(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, (i % SUBNETS + 1) as u8, (10 + i / SUBNETS) as u8)
}

fn eni_v6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(
        0xfd00,
        0,
        0,
        (i % SUBNETS + 1) as u16,
        0,
        0,
        0,
        (10 + i / SUBNETS) as u16,
    )
}

fn big_group(g: usize) -> SgId {
    format!("sg-big-{g:02}").as_str().into()
}

fn typical_group(g: usize) -> SgId {
    format!("sg-typ-{g:03}").as_str().into()
}

/// A rule of a big group. No rule allows 0.0.0.0/0 or ::/0, so no flow of
/// the benchmark is untracked.
fn random_rule(rng: &mut Rng, id: &str) -> SgRule {
    let (protocol, ports) = match rng.below(20) {
        0..=9 => {
            let from = TCP_BASES[rng.below(TCP_BASES.len())] + rng.below(50) as u16;
            let to = if rng.below(3) == 0 {
                from + rng.below(2000) as u16
            } else {
                from
            };
            (Protocol::Tcp, PortSpec::Range { from, to })
        }
        10..=13 => {
            let from = [53, 123, 161, 514, 4789][rng.below(5)] + rng.below(20) as u16;
            (
                Protocol::Udp,
                PortSpec::Range {
                    from,
                    to: from + rng.below(4) as u16,
                },
            )
        }
        14 | 15 => (
            Protocol::Icmp,
            PortSpec::Icmp {
                icmp_type: Some([0, 3, 8, 11][rng.below(4)]),
                code: None,
            },
        ),
        16 => (Protocol::Icmpv6, PortSpec::Any),
        17 => (Protocol::Number(47), PortSpec::Any),
        _ => (Protocol::All, PortSpec::Any),
    };
    let peer = match rng.below(20) {
        0..=5 => Peer::Cidr4(Ipv4Cidr::truncating(
            Ipv4Addr::from(rng.next() as u32 & 0x0000_ffff | 0x0a00_0000),
            16 + rng.below(17) as u8,
        )),
        6..=8 => Peer::Cidr4(Ipv4Cidr::truncating(
            Ipv4Addr::from(rng.next() as u32),
            8 + rng.below(25) as u8,
        )),
        9 | 10 => Peer::Cidr6(Ipv6Cidr::truncating(
            Ipv6Addr::from(u128::from(rng.next()) | 0xfd00 << 112),
            48 + rng.below(81) as u8,
        )),
        11..=15 => Peer::Group(big_group(rng.below(BIG_GROUPS))),
        _ => Peer::Group(typical_group(rng.below(TYPICAL_GROUPS))),
    };
    SgRule {
        id: id.into(),
        protocol,
        ports,
        peer,
        description: String::new(),
    }
}

fn nacl_entry(rule_number: u16, egress: bool, cidr: IpCidr, action: NaclAction) -> NaclEntry {
    NaclEntry {
        rule_number,
        egress,
        protocol: Protocol::All,
        cidr,
        ports: PortSpec::Any,
        action,
    }
}

fn big_vpc() -> PolicySpec {
    let mut rng = Rng(42);
    let mut spec = PolicySpec {
        router_mac: ROUTER_MAC,
        vpcs: vec![VpcSpec {
            id: "vpc-big".into(),
            ipv4_cidr: "10.0.0.0/16".parse().expect("valid CIDR"),
            ipv6_cidr: Some("fd00::/48".parse().expect("valid CIDR")),
        }],
        ..PolicySpec::default()
    };
    let any4: IpCidr = "0.0.0.0/0".parse().expect("valid CIDR");
    let any6: IpCidr = "::/0".parse().expect("valid CIDR");
    let allow_all = vec![
        nacl_entry(100, false, any4, NaclAction::Allow),
        nacl_entry(100, true, any4, NaclAction::Allow),
        nacl_entry(101, false, any6, NaclAction::Allow),
        nacl_entry(101, true, any6, NaclAction::Allow),
    ];
    let mut twenty = allow_all.clone();
    for n in 1..=16u16 {
        let cidr = IpCidr::V4(Ipv4Cidr::truncating(
            Ipv4Addr::new(192, 168, n as u8, 0),
            24,
        ));
        twenty.push(NaclEntry {
            protocol: Protocol::Tcp,
            ports: PortSpec::Range { from: 1, to: 1023 },
            ..nacl_entry(n * 5, n % 2 == 0, cidr, NaclAction::Deny)
        });
    }
    spec.nacls = vec![
        NaclSpec {
            id: "acl-default".into(),
            vpc: "vpc-big".into(),
            entries: allow_all,
        },
        NaclSpec {
            id: "acl-twenty".into(),
            vpc: "vpc-big".into(),
            entries: twenty,
        },
    ];
    spec.subnets = (1..=SUBNETS)
        .map(|s| SubnetSpec {
            id: format!("subnet-{s:03}").as_str().into(),
            vpc: "vpc-big".into(),
            ipv4_cidr: Ipv4Cidr::new(Ipv4Addr::new(10, 0, s as u8, 0), 24).expect("valid"),
            ipv6_cidr: Some(
                Ipv6Cidr::new(Ipv6Addr::new(0xfd00, 0, 0, s as u16, 0, 0, 0, 0), 64)
                    .expect("valid"),
            ),
            nacl: if s % 2 == 0 {
                "acl-twenty"
            } else {
                "acl-default"
            }
            .into(),
        })
        .collect();
    for g in 0..BIG_GROUPS {
        let mut rules = |dir: &str| {
            (0..RULES_PER_DIRECTION)
                .map(|r| random_rule(&mut rng, &format!("sgr-big{g:02}{dir}{r:02}")))
                .collect::<Vec<_>>()
        };
        let ingress = rules("i");
        let egress = rules("e");
        spec.security_groups.push(SecurityGroupSpec {
            id: big_group(g),
            vpc: "vpc-big".into(),
            ingress,
            egress,
        });
    }
    for g in 0..TYPICAL_GROUPS {
        let rule = |n: usize, protocol, ports, peer| SgRule {
            id: format!("sgr-typ{g:03}-{n}").as_str().into(),
            protocol,
            ports,
            peer,
            description: String::new(),
        };
        let port = TCP_BASES[g % TCP_BASES.len()];
        spec.security_groups.push(SecurityGroupSpec {
            id: typical_group(g),
            vpc: "vpc-big".into(),
            ingress: vec![
                rule(
                    0,
                    Protocol::Tcp,
                    PortSpec::Range {
                        from: port,
                        to: port,
                    },
                    Peer::Cidr4("10.0.0.0/16".parse().expect("valid CIDR")),
                ),
                rule(
                    1,
                    Protocol::All,
                    PortSpec::Any,
                    Peer::Group(typical_group(g)),
                ),
                rule(
                    2,
                    Protocol::Tcp,
                    PortSpec::Range { from: 22, to: 22 },
                    Peer::Group(big_group(g % BIG_GROUPS)),
                ),
            ],
            egress: vec![rule(
                3,
                Protocol::All,
                PortSpec::Any,
                Peer::Cidr4(Ipv4Cidr::ANY),
            )],
        });
    }
    spec.enis = (0..ENIS)
        .map(|i| EniSpec {
            id: format!("eni-{i:05}").as_str().into(),
            subnet: format!("subnet-{:03}", i % SUBNETS + 1).as_str().into(),
            port: 0,
            vlan: None,
            mac: mac(i),
            private_ips: vec![IpAddr::V4(eni_v4(i)), IpAddr::V6(eni_v6(i))],
            groups: if i < 2 * ENDS {
                (0..BIG_GROUPS).map(big_group).collect()
            } else {
                let mut groups: Vec<SgId> = (0..=rng.below(3))
                    .map(|_| typical_group(rng.below(TYPICAL_GROUPS)))
                    .collect();
                groups.sort();
                groups.dedup();
                groups
            },
            source_dest_check: true,
            timeouts: ConntrackTimeouts::default(),
        })
        .collect();
    spec
}

/// `POOL` SYNs of distinct connections from a sender to a receiver that
/// the rules allow (and track), in random order.
fn allowed_syns(spec: &PolicySpec, snapshot: &PolicySnapshot) -> FrameArray {
    let idx: Vec<EniIdx> = (0..2 * ENDS)
        .map(|i| snapshot.eni_by_id(&spec.enis[i].id).expect("ENI compiled"))
        .collect();
    let mut rng = Rng(0x5a5a);
    let mut seen = HashSet::with_capacity(POOL);
    let mut frames = FrameArray::new();
    let mut tried = 0usize;
    while frames.len() < POOL {
        tried += 1;
        let s = rng.below(ENDS);
        let r = ENDS + rng.below(ENDS);
        let sport = 1024 + rng.below(64512) as u16;
        let dport = TCP_BASES[rng.below(TCP_BASES.len())] + rng.below(60) as u16;
        let fields = PacketFields::l4(
            IpAddr::V4(eni_v4(s)),
            IpAddr::V4(eni_v4(r)),
            Protocol::TCP,
            sport,
            dport,
        );
        let decision = snapshot.decide(idx[s], &fields);
        if decision.verdict != PolicyVerdict::Allow || decision.untracked {
            continue;
        }
        if seen.insert((s, r, sport, dport)) {
            frames.push(&tcp_frame(
                &spec.enis[s],
                &spec.enis[r],
                sport,
                dport,
                flags::SYN,
            ));
        }
    }
    eprintln!(
        "new_flows: {POOL} allowed SYNs from {tried} candidates ({:.0} % of random sender→receiver tcp packets allowed)",
        100.0 * POOL as f64 / tried as f64
    );
    frames
}

fn new_flow_worker<F: Prefetch>(prefetcher: F) -> Worker<F> {
    Worker::with_prefetcher(
        WorkerConfig {
            max_flows: 1 << 20,
            ..WorkerConfig::default()
        },
        prefetcher,
    )
    .expect("worker")
}

/// Every SYN of one pass over the pool opened a tracked flow.
fn check_all_new(counters: &WorkerCounters, packets: usize) {
    assert_eq!(counters.packets, packets as u64);
    assert_eq!(counters.forwarded, packets as u64, "all forwarded");
    assert_eq!(counters.new_flows, packets as u64, "all new tracked flows");
    assert_eq!(counters.untracked, 0);
    assert_eq!(counters.dropped_total(), 0, "no drop");
}

fn new_flows(c: &mut Criterion) {
    if icount_case().is_some_and(|case| !case.starts_with("new_flows/")) {
        return;
    }
    let started = Instant::now();
    let spec = big_vpc();
    let snapshot = PolicySnapshot::compile(&spec, 1).expect("big VPC compiles");
    let sender = snapshot.eni_by_id(&spec.enis[0].id).expect("sender");
    let receiver = snapshot.eni_by_id(&spec.enis[ENDS].id).expect("receiver");
    let classifier = |eni: EniIdx, dir| snapshot.classifier(snapshot.eni(eni).sg_set, dir);
    let (egress, ingress) = (
        classifier(sender, palisade_dataplane::policy::Direction::Egress),
        classifier(receiver, palisade_dataplane::policy::Direction::Ingress),
    );
    eprintln!(
        "new_flows: {} ENIs, {} groups; sender egress {} rules ({} KiB of tables), receiver ingress {} rules ({} KiB), the same set; compiled in {:.1?}",
        spec.enis.len(),
        spec.security_groups.len(),
        egress.map_or(0, SetClassifier::rule_count),
        egress.map_or(0, |c| c.heap_bytes() / 1024),
        ingress.map_or(0, SetClassifier::rule_count),
        ingress.map_or(0, |c| c.heap_bytes() / 1024),
        started.elapsed()
    );
    assert_eq!(
        snapshot.eni(sender).sg_set,
        snapshot.eni(receiver).sg_set,
        "every sender and receiver has the 16 big groups"
    );
    let frames = allowed_syns(&spec, &snapshot);
    let mut burst = Burst::new(frames.frame_len);
    // One untimed pass, checked.
    let mut worker = new_flow_worker(PlainLoad);
    let forwarded = run_all(&mut worker, &snapshot, &frames, &mut burst);
    assert_eq!(forwarded, POOL);
    check_all_new(worker.counters(), POOL);
    drop(worker);

    let mut group = c.benchmark_group("new_flows");
    group.throughput(Throughput::Elements(BURST as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(6));
    new_flows_case(
        &mut group,
        "process_burst_32_syn_1000_rules",
        PlainLoad,
        &snapshot,
        &frames,
    );
    #[cfg(feature = "dpdk")]
    new_flows_case(
        &mut group,
        "process_burst_32_syn_1000_rules_cpu_prefetch",
        CpuPrefetch,
        &snapshot,
        &frames,
    );
    group.bench_function("reset_only", |b| {
        let mut next = 0;
        b.iter(|| {
            burst.reset(frames.burst(next), frames.frame_len);
            next = (next + 1) % frames.bursts();
            black_box(&burst.packets);
        });
    });
    group.finish();
}

/// Replays the pool of SYNs through a worker prefetching with
/// `prefetcher`, replacing the worker (untimed) whenever the pool is used
/// up, and checks every pass.
fn new_flows_case<F: Prefetch + Copy>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    prefetcher: F,
    snapshot: &PolicySnapshot,
    frames: &FrameArray,
) {
    if icount_skips("new_flows", id) {
        return;
    }
    let mut burst = Burst::new(frames.frame_len);
    let mut worker = new_flow_worker(prefetcher);
    if icount_case().is_some() {
        icount_bursts(&mut worker, snapshot, frames, &mut burst);
    }
    let mut next = 0;
    let mut rounds = 0;
    group.bench_function(id, |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            let mut left = iterations;
            while left > 0 {
                if next == frames.bursts() {
                    // Pool used up: check, then a fresh table (untimed).
                    check_all_new(worker.counters(), POOL);
                    worker = new_flow_worker(prefetcher);
                    next = 0;
                    rounds += 1;
                }
                let chunk = left.min((frames.bursts() - next) as u64);
                let start = Instant::now();
                for _ in 0..chunk {
                    burst.reset(frames.burst(next), frames.frame_len);
                    burst.run(&mut worker, snapshot);
                    next += 1;
                    black_box(&burst.verdicts);
                }
                elapsed += start.elapsed();
                left -= chunk;
            }
            elapsed
        });
    });
    let partial = worker.counters();
    assert_eq!(partial.new_flows, partial.packets, "all new tracked flows");
    assert_eq!(partial.dropped_total(), 0);
    eprintln!(
        "new_flows/{id}: {rounds} full passes over the pool checked, plus {} SYNs",
        partial.packets
    );
}

// ---------------------------------------------------------------------------
// Denied flows.

const DENIED_FLOWS: usize = 10_000;

/// `DENIED_FLOWS` SYNs of distinct connections the rules deny, in random
/// order: from a sender (its 1,008 egress rules checked) to one of the
/// ENIs with a few typical groups, on ports they do not open.
fn denied_syns(spec: &PolicySpec, snapshot: &PolicySnapshot) -> FrameArray {
    let idx: Vec<EniIdx> = (0..ENDS)
        .map(|i| snapshot.eni_by_id(&spec.enis[i].id).expect("ENI compiled"))
        .collect();
    let mut rng = Rng(0xdead);
    let mut seen = HashSet::with_capacity(DENIED_FLOWS);
    let mut frames = FrameArray::new();
    let mut tried = 0usize;
    let mut reasons = std::collections::BTreeMap::new();
    while frames.len() < DENIED_FLOWS {
        tried += 1;
        assert!(tried < 100 * DENIED_FLOWS, "too few denied candidates");
        let s = rng.below(ENDS);
        let r = 2 * ENDS + rng.below(ENIS - 2 * ENDS);
        let sport = 1024 + rng.below(64512) as u16;
        let dport = rng.below(65536) as u16;
        let fields = PacketFields::l4(
            IpAddr::V4(eni_v4(s)),
            IpAddr::V4(eni_v4(r)),
            Protocol::TCP,
            sport,
            dport,
        );
        let PolicyVerdict::Deny(reason) = snapshot.decide(idx[s], &fields).verdict else {
            continue;
        };
        if seen.insert((s, r, sport, dport)) {
            *reasons.entry(format!("{reason:?}")).or_insert(0usize) += 1;
            frames.push(&tcp_frame(
                &spec.enis[s],
                &spec.enis[r],
                sport,
                dport,
                flags::SYN,
            ));
        }
    }
    eprintln!(
        "denied_10k: {DENIED_FLOWS} denied SYNs from {tried} candidates, by reason {reasons:?}"
    );
    frames
}

fn denied(c: &mut Criterion) {
    if icount_case().is_some_and(|case| !case.starts_with("denied_10k/")) {
        return;
    }
    let spec = big_vpc();
    let snapshot = PolicySnapshot::compile(&spec, 1).expect("big VPC compiles");
    let frames = denied_syns(&spec, &snapshot);
    let mut group = c.benchmark_group("denied_10k");
    group.throughput(Throughput::Elements(BURST as u64));
    let cases: [(&str, bool); 2] = [
        ("process_burst_32", true),
        ("process_burst_32_classified", false),
    ];
    for (id, remembered) in cases {
        denied_case(&mut group, id, PlainLoad, remembered, &snapshot, &frames);
        #[cfg(feature = "dpdk")]
        denied_case(
            &mut group,
            &format!("{id}_cpu_prefetch"),
            CpuPrefetch,
            remembered,
            &snapshot,
            &frames,
        );
    }
    group.finish();
}

/// Replays the denied SYNs through a worker prefetching with `prefetcher`,
/// with its denied-flow memory (`remembered`) or without, after one
/// untimed pass; checks that every packet was dropped as denied, and
/// remembered or classified as asked.
fn denied_case<F: Prefetch>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    prefetcher: F,
    remembered: bool,
    snapshot: &PolicySnapshot,
    frames: &FrameArray,
) {
    if icount_skips("denied_10k", id) {
        return;
    }
    let mut worker = Worker::with_prefetcher(
        WorkerConfig {
            max_flows: 1 << 20,
            denied_flows: if remembered {
                WorkerConfig::default().denied_flows
            } else {
                0
            },
            ..WorkerConfig::default()
        },
        prefetcher,
    )
    .expect("worker");
    let mut burst = Burst::new(frames.frame_len);
    let forwarded = run_all(&mut worker, snapshot, frames, &mut burst);
    assert_eq!(forwarded, 0, "every SYN denied");
    let check = |before: &WorkerCounters, after: &WorkerCounters| {
        let packets = after.packets - before.packets;
        let denied = [
            DropReason::EgressDenied,
            DropReason::IngressDenied,
            DropReason::NaclDenied,
        ]
        .iter()
        .map(|r| after.dropped(*r) - before.dropped(*r))
        .sum::<u64>();
        assert_eq!(denied, packets, "every packet denied by the rules");
        let hits = after.denied_remembered - before.denied_remembered;
        if remembered {
            // Flows displaced from the memory are classified again.
            assert!(hits * 100 >= packets * 99, "{hits} of {packets} remembered");
        } else {
            assert_eq!(hits, 0);
        }
        assert_eq!(after.new_flows, 0);
    };
    let before = worker.counters().clone();
    run_all(&mut worker, snapshot, frames, &mut burst);
    check(&before, worker.counters());
    if icount_case().is_some() {
        icount_bursts(&mut worker, snapshot, frames, &mut burst);
    }
    let before = worker.counters().clone();
    let mut next = 0;
    group.bench_function(id, |b| {
        b.iter(|| {
            burst.reset(frames.burst(next), frames.frame_len);
            burst.run(&mut worker, snapshot);
            next = (next + 1) % frames.bursts();
            black_box(&burst.verdicts);
        });
    });
    check(&before, worker.counters());
}

fn config() -> Criterion {
    // Two shared cores: short, steady runs.
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = established, new_flows, denied
}
criterion_main!(benches);

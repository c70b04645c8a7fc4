//! A SYN flood at a full connection table, through the real binary:
//! `palisade run` on one `net_pcap` port with a small table
//! (`max_flows_per_worker = 64`) reads a pcap of established connections
//! (handshakes), then a flood of SYNs of never-seen connections far past
//! the table's capacity, then the established connections' packets again.
//!
//! What must come out: every established connection's packets, before and
//! after the flood, forwarded; the flood's SYNs past the table's room
//! dropped, counted as `drops_total{reason="conntrack_full"}` and as
//! `conntrack_allowance_exceeded_total`; nothing else dropped. The exact
//! output is `process()`'s in-process answer for the same config (the
//! table's bounded probing may refuse a few connections before it is
//! full, and the same code decides which), checked frame by frame against
//! the tx pcap; the hand-written claims above are checked on their own.
//!
//! One port, one worker, one input file: the order of the output frames is
//! the input's.

use std::path::Path;
use std::time::Duration;

use palisade_controlplane::config::Config;
use palisade_dataplane::policy::{PolicySnapshot, PolicySpec};
use palisade_dataplane::testkit::{FrameSpec, Payload, ROUTER_MAC, eni_mac, flags, frame};
use palisade_dataplane::{DropReason, HeapPacket, Verdict, Worker, WorkerConfig};
use palisade_e2e::appliance::{free_local_addr, start_palisade};
use palisade_e2e::{is_root, pcap, prom};

const MAX_FLOWS: usize = 64;
/// Established connections opened first (of the table's 64).
const ESTABLISHED: u16 = 48;
/// SYNs of never-seen connections: 30 times the table.
const FLOOD: u16 = 30 * MAX_FLOWS as u16;

const CONFIG: &str = r#"
[appliance]
profile = "@PROFILE@"
workers = [1]
state_dir = "@DIR@/var"
api_listen = "127.0.0.1:0"
max_flows_per_worker = 64

[[vpc]]
name = "flood"
cidr = "10.0.0.0/16"

[[subnet]]
name = "a"
vpc = "flood"
cidr = "10.0.1.0/24"

[[subnet]]
name = "b"
vpc = "flood"
cidr = "10.0.2.0/24"

[[security_group]]
name = "web"
vpc = "flood"

[[security_group.ingress]]
protocol = "tcp"
from_port = 80
to_port = 80
cidr = "0.0.0.0/0"

[[security_group.egress]]
protocol = "-1"
cidr = "0.0.0.0/0"

[[eni]]
name = "a"
subnet = "a"
port = "p0"
mac = "02:00:00:00:00:00"
ips = ["10.0.1.10"]

[[eni]]
name = "b"
subnet = "b"
port = "p0"
mac = "02:00:00:00:00:01"
ips = ["10.0.2.20"]
groups = ["web"]
"#;

const A: u8 = 0;
const B: u8 = 1;

fn tcp(from: u8, sport: u16, dport: u16, f: u8) -> Vec<u8> {
    let ips = ["10.0.1.10".parse().unwrap(), "10.0.2.20".parse().unwrap()];
    let to = 1 - from;
    frame(&FrameSpec::new(
        eni_mac(from),
        ROUTER_MAC,
        ips[usize::from(from)],
        ips[usize::from(to)],
        Payload::Tcp {
            src_port: sport,
            dst_port: dport,
            flags: f,
        },
    ))
}

/// What each input frame is, for the hand-written checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Handshake,
    Flood,
    After,
}

fn input() -> Vec<(Phase, Vec<u8>)> {
    let mut frames = Vec::new();
    for i in 0..ESTABLISHED {
        let sport = 10_000 + i;
        frames.push((Phase::Handshake, tcp(A, sport, 80, flags::SYN)));
        frames.push((Phase::Handshake, tcp(B, 80, sport, flags::SYN_ACK)));
        frames.push((Phase::Handshake, tcp(A, sport, 80, flags::ACK)));
    }
    for i in 0..FLOOD {
        frames.push((Phase::Flood, tcp(A, 30_000 + i, 80, flags::SYN)));
    }
    for i in 0..ESTABLISHED {
        let sport = 10_000 + i;
        frames.push((Phase::After, tcp(A, sport, 80, flags::ACK)));
        frames.push((Phase::After, tcp(B, 80, sport, flags::ACK)));
    }
    frames
}

fn spec_of(config_text: &str) -> PolicySpec {
    Config::from_toml_str(config_text, "flood.toml")
        .expect("config is valid")
        .to_spec(&|name| (name == "p0").then_some(0))
        .expect("config resolves its port")
}

/// `process()`'s verdict and output for each frame, in a worker sized as
/// the config says; and the flows it holds at the end.
fn in_process(spec: &PolicySpec, frames: &[(Phase, Vec<u8>)]) -> (Vec<(Verdict, Vec<u8>)>, usize) {
    let snapshot = PolicySnapshot::compile(spec, 1).expect("compiles");
    let mut worker = Worker::new(WorkerConfig {
        max_flows: MAX_FLOWS,
        ..WorkerConfig::default()
    })
    .expect("worker");
    let decided = frames
        .iter()
        .map(|(_, bytes)| {
            let mut burst = [HeapPacket::new(0, bytes)];
            let mut verdicts = [Verdict::Drop(DropReason::Malformed)];
            worker.process(&mut burst, 1000, &snapshot, &mut verdicts);
            let [pkt] = burst;
            (verdicts[0], pkt.into_frame())
        })
        .collect();
    (decided, worker.flows().len())
}

/// Removes DPDK's runtime directory for the test's file prefix.
struct RuntimeDir(std::path::PathBuf);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_profile(dir: &Path, prefix: &str) -> std::path::PathBuf {
    let text = format!(
        "workers = [1]\n\n[eal]\nlcores = [0, 1]\nmain_lcore = 0\nfile_prefix = \"{prefix}\"\n\
         log_level = \"notice\"\n\n[eal.memory]\nmode = \"no-huge\"\nmemory_mb = 128\n\n\
         [mempool]\nmbufs = 4095\ncache = 64\n\n\
         [[ports]]\nname = \"p0\"\nvdev = \"net_pcap0,rx_pcap={rx},tx_pcap={tx}\"\n\
         rx_descriptors = 256\ntx_descriptors = 256\n",
        rx = dir.join("in-p0.pcap").display(),
        tx = dir.join("out-p0.pcap").display(),
    );
    let path = dir.join("profile.toml");
    std::fs::write(&path, text).expect("write the profile");
    path
}

#[test]
fn the_in_process_expectation_says_what_the_test_claims() {
    let frames = input();
    let (decided, _) = in_process(&spec_of(&placeholder_config()), &frames);
    check_claims(
        &frames,
        &decided.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
    );
}

fn placeholder_config() -> String {
    CONFIG
        .replace("@PROFILE@", "profile.toml")
        .replace("@DIR@", "/nonexistent")
}

/// The hand-written claims: established connections pass (the few the
/// table refused at its start aside, whose handshake is dropped whole),
/// the flood past the table's room is refused as conntrack full; returns
/// (connections established, flood SYNs refused).
fn check_claims(frames: &[(Phase, Vec<u8>)], verdicts: &[Verdict]) -> (usize, usize) {
    let full = Verdict::Drop(DropReason::ConntrackFull);
    let mut established = 0;
    for (i, hs) in verdicts[..3 * usize::from(ESTABLISHED)]
        .chunks(3)
        .enumerate()
    {
        if hs.iter().all(|v| matches!(v, Verdict::Forward { port: 0 })) {
            established += 1;
            let after = 3 * usize::from(ESTABLISHED) + usize::from(FLOOD) + 2 * i;
            assert!(
                verdicts[after..after + 2]
                    .iter()
                    .all(|v| matches!(v, Verdict::Forward { port: 0 })),
                "connection {i} no longer passes after the flood"
            );
        } else {
            assert_eq!(hs[0], full, "connection {i}: {hs:?}");
        }
    }
    assert!(established >= usize::from(ESTABLISHED) - 2, "{established}");
    let room = MAX_FLOWS - established;
    let mut refused = 0;
    for ((phase, _), v) in frames.iter().zip(verdicts) {
        if *phase == Phase::Flood {
            match v {
                Verdict::Forward { port: 0 } => {}
                v if *v == full => refused += 1,
                other => panic!("a flood SYN {other:?}"),
            }
        }
    }
    assert!(refused >= usize::from(FLOOD) - room, "{refused}");
    (established, refused)
}

#[test]
fn a_syn_flood_at_a_full_table_keeps_established_connections_and_counts_the_refused() {
    if !is_root() {
        eprintln!("skip: pcap test needs root (DPDK's runtime directory)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("pal-flood-{}", std::process::id());
    let _runtime = RuntimeDir(Path::new("/var/run/dpdk").join(&prefix));
    let profile = write_profile(dir.path(), &prefix);
    let config_text = CONFIG
        .replace("@PROFILE@", &profile.display().to_string())
        .replace("@DIR@", &dir.path().display().to_string());
    let config = dir.path().join("flood.toml");
    std::fs::write(&config, &config_text).expect("write the config");

    let frames = input();
    let (decided, flows) = in_process(&spec_of(&config_text), &frames);
    let verdicts: Vec<Verdict> = decided.iter().map(|(v, _)| *v).collect();
    let (established, refused) = check_claims(&frames, &verdicts);
    eprintln!(
        "{established} connections established, {refused} of {FLOOD} flood SYNs refused, {flows} flows at the end"
    );
    let expected_out: Vec<Vec<u8>> = decided
        .iter()
        .filter(|(v, _)| matches!(v, Verdict::Forward { .. }))
        .map(|(_, out)| out.clone())
        .collect();
    let inputs: Vec<Vec<u8>> = frames.iter().map(|(_, f)| f.clone()).collect();
    pcap::write(&dir.path().join("in-p0.pcap"), &inputs).expect("write input");

    let metrics = free_local_addr();
    let mut palisade =
        start_palisade(&config, metrics, Duration::from_secs(30)).expect("palisade starts");
    let samples = palisade
        .wait_for(
            "to process every input frame",
            Duration::from_secs(30),
            |_| {
                let samples = prom::scrape(metrics).ok()?;
                let n = prom::sum(&samples, "palisade_worker_packets_total", &[])?;
                (n as usize >= inputs.len()).then_some(samples)
            },
        )
        .expect("palisade processes the input");
    let count = |name: &str, filter: &[(&str, &str)]| {
        prom::sum(&samples, name, filter).unwrap_or_else(|| panic!("no sample {name} {filter:?}"))
            as u64
    };
    let finished = palisade
        .stop("TERM", Duration::from_secs(20))
        .expect("palisade stops on SIGTERM");
    assert!(
        finished.status.success(),
        "palisade exited with {}:\n{}\n{}",
        finished.status,
        finished.stdout,
        finished.stderr
    );

    assert_eq!(
        count("palisade_worker_packets_total", &[]),
        inputs.len() as u64
    );
    assert_eq!(
        count(
            "palisade_drops_total",
            &[("reason", DropReason::ConntrackFull.label())]
        ),
        refused as u64,
        "drops_total{{reason=conntrack_full}}"
    );
    assert_eq!(
        count("palisade_conntrack_allowance_exceeded_total", &[]),
        refused as u64,
        "conntrack_allowance_exceeded_total"
    );
    assert_eq!(
        count("palisade_drops_total", &[]),
        refused as u64,
        "no other drop"
    );
    assert_eq!(
        count("palisade_worker_forwarded_total", &[]),
        expected_out.len() as u64
    );
    assert_eq!(count("palisade_flow_table_capacity", &[]), MAX_FLOWS as u64);
    assert_eq!(count("palisade_flows", &[]), flows as u64);
    assert_eq!(
        count("palisade_conntrack_allowance_available", &[]),
        (MAX_FLOWS - flows) as u64
    );

    let actual = pcap::read(&dir.path().join("out-p0.pcap")).expect("palisade wrote the tx pcap");
    assert_eq!(
        actual.len(),
        expected_out.len(),
        "frames transmitted ({established} connections established, {refused} SYNs refused)"
    );
    for (i, (a, e)) in actual.iter().zip(&expected_out).enumerate() {
        assert_eq!(a, e, "output frame {i}");
    }
}

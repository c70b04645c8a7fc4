//! `palisade-perf`: benchmark drivers that need a running DPDK (criterion
//! benches cover what does not). `perf/bench-fwd-vs-testpmd.sh` runs
//! `fwd-null` side by side with `dpdk-testpmd`;
//! `perf/bench-appliance-memif.sh` runs `palisade run` (configured by
//! `memif-config`) and `dpdk-testpmd` in turn, each fed by `gen-memif`;
//! `perf/bench-api.sh` seeds `palisade run` with `api-config`'s world and
//! times its EC2 API with `api-latency`; `perf/bench-appliance.sh` runs
//! `palisade run` and `dpdk-testpmd` in turn on `appliance-case`'s capture,
//! profile and configuration.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use palisade_controlplane::api::Credentials;
use palisade_dpdk::Eal;
use palisade_perf::api_bench::world::WorldShape;
use palisade_perf::api_bench::{LatencyOptions, run_latency};
use palisade_perf::appliance_bench::{Case, write_case};
use palisade_perf::fwd::{ForwardSetup, forward_io};
use palisade_perf::memif_gen::{GenOptions, Mode, run_generator};
use palisade_perf::traffic::TrafficPlan;

#[derive(Debug, Parser)]
#[command(name = "palisade-perf", about = "palisade benchmark drivers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The world `api-config` writes and `api-latency` expects.
#[derive(Debug, Clone, Copy, Args)]
struct ShapeArgs {
    /// Security groups in the VPC, its default group counted.
    #[arg(long, default_value_t = 2500)]
    groups: usize,
    /// Inbound rules per group (1..=59).
    #[arg(long, default_value_t = 50)]
    rules: usize,
    /// Network interfaces, two groups each.
    #[arg(long, default_value_t = 10_000)]
    enis: usize,
}

impl ShapeArgs {
    fn shape(self) -> WorldShape {
        WorldShape {
            groups: self.groups,
            rules: self.rules,
            enis: self.enis,
        }
    }
}

/// The API key pair (the configuration `api-config` writes accepts it).
#[derive(Debug, Clone, Args)]
struct KeyArgs {
    /// Access key id.
    #[arg(long, default_value = "AKIAPALISADEBENCH001")]
    access_key_id: String,
    /// Secret access key.
    #[arg(long, default_value = "palisade/bench/secret/key/0000000000000")]
    secret_access_key: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the appliance configuration of the API benchmark's world: one
    /// VPC, --groups groups of --rules inbound rules, --enis ENIs on a
    /// port of --profile, and the API key pair.
    ApiConfig {
        /// The DPDK profile (its ports number the ENIs' port names).
        #[arg(long, default_value = "dpdk-config/null.toml")]
        profile: String,
        /// The profile port the ENIs are on.
        #[arg(long, default_value = "null0")]
        port: String,
        #[command(flatten)]
        shape: ShapeArgs,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Time signed EC2 API calls against a running palisade seeded with
    /// `api-config`'s world (same --groups/--rules/--enis): Authorize and
    /// Revoke of one rule, DescribeSecurityGroups by id and filtered,
    /// p50/p99/max; and the publish latency from palisade's /metrics.
    ApiLatency {
        /// palisade's EC2 endpoint.
        #[arg(long, default_value = "127.0.0.1:8080")]
        endpoint: SocketAddr,
        /// palisade's /metrics endpoint.
        #[arg(long, default_value = "127.0.0.1:9400")]
        metrics: SocketAddr,
        #[command(flatten)]
        shape: ShapeArgs,
        #[command(flatten)]
        key: KeyArgs,
        /// Measured iterations (each: Authorize, Revoke, two Describes).
        #[arg(long, default_value_t = 1000)]
        iterations: usize,
        /// Unmeasured iterations first.
        #[arg(long, default_value_t = 50)]
        warmup: usize,
        /// Groups the changes rotate over, spread across the world.
        #[arg(long, default_value_t = 100)]
        targets: usize,
        /// Check the published generation after every this many
        /// Authorizes (0: never).
        #[arg(long, default_value_t = 10)]
        check_every: usize,
    },
    /// Write (or find, cached by its parameters) one case of
    /// perf/bench-appliance.sh: a capture of --flows 64-byte UDP frames
    /// (one per flow), the DPDK profile replaying it, the appliance
    /// configuration and testpmd's arguments, in DIR/CASE-FLOWS/. Prints
    /// that directory and its sizes as shell assignments.
    ApplianceCase {
        /// The cache directory.
        #[arg(long)]
        dir: String,
        /// What the capture holds.
        #[arg(long, value_enum)]
        case: Case,
        /// Flows (= frames in the capture).
        #[arg(long)]
        flows: u64,
        /// The appliance's flow-table capacity per worker.
        #[arg(long, default_value_t = 4_194_304)]
        max_flows_per_worker: u64,
    },
    /// io-forward between two net_null ports on one core, like
    /// `dpdk-testpmd --forward-mode=io`, and print the rate.
    FwdNull {
        /// Seconds to measure (after one second of warm-up).
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// The core to forward on (the EAL main lcore).
        #[arg(long, default_value_t = 1)]
        lcore: usize,
        /// Extra devargs for both net_null ports, e.g. "size=64,copy=0".
        #[arg(long, default_value = "")]
        null_args: String,
    },
    /// Traffic generator on a memif client port: ENIs on the appliance's
    /// memif port send TCP to each other through the router; counts what
    /// comes back and prints the rates.
    GenMemif {
        /// The memif socket (the server, palisade or testpmd, creates it).
        #[arg(long, default_value = "/run/palisade/memif.sock")]
        socket: String,
        /// `established`: open --flows connections, then send their data;
        /// `new`: SYNs of ever-new connections.
        #[arg(long, value_enum, default_value_t = Mode::Established)]
        mode: Mode,
        /// Connections to open in established mode.
        #[arg(long, default_value_t = 100_000)]
        flows: u64,
        /// ENIs sending (the appliance config must declare the same number).
        #[arg(long, default_value_t = 8)]
        enis: usize,
        /// Seconds to measure (after --warmup seconds unmeasured);
        /// fractions allowed: new mode's window must end before the
        /// appliance's flow table fills.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Unmeasured seconds before the window (after the handshake).
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// The core to run on (the generator's EAL main lcore).
        #[arg(long, default_value_t = 0)]
        lcore: usize,
        /// The forwarder's pid, with --peer-thread: its thread's CPU time
        /// in the window gives the rate per CPU second.
        #[arg(long, requires = "peer_thread")]
        peer_pid: Option<u32>,
        /// The forwarder's thread name, e.g. palisade-w0 or rte-worker-1.
        #[arg(long, requires = "peer_pid")]
        peer_thread: Option<String>,
    },
    /// Print the appliance configuration declaring gen-memif's ENIs on the
    /// memif port of a profile.
    MemifConfig {
        /// The DPDK profile with a port named "memif".
        #[arg(long, default_value = "dpdk-config/memif-bench.toml")]
        profile: String,
        /// ENIs (as gen-memif --enis).
        #[arg(long, default_value_t = 8)]
        enis: usize,
        /// The appliance's flow-table capacity per worker.
        #[arg(long, default_value_t = 4_194_304)]
        max_flows_per_worker: u64,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::ApiConfig {
            profile,
            port,
            shape,
            key,
        } => match shape.shape().config_toml(
            &profile,
            &port,
            &key.access_key_id,
            &key.secret_access_key,
        ) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
        Command::ApiLatency {
            endpoint,
            metrics,
            shape,
            key,
            iterations,
            warmup,
            targets,
            check_every,
        } => {
            let options = LatencyOptions {
                endpoint,
                metrics,
                key: Credentials {
                    access_key_id: key.access_key_id,
                    secret_access_key: key.secret_access_key,
                },
                shape: shape.shape(),
                iterations,
                warmup,
                targets,
                check_every,
            };
            match run_latency(&options) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error),
            }
        }
        Command::ApplianceCase {
            dir,
            case,
            flows,
            max_flows_per_worker,
        } => match write_case(
            std::path::Path::new(&dir),
            case,
            flows,
            max_flows_per_worker,
        ) {
            Ok(files) => {
                println!("CASE_DIR={}", files.dir.display());
                println!("CASE_CACHED={}", u8::from(files.cached));
                println!("CASE_FRAMES={}", files.sizing.frames);
                println!("CASE_MBUFS={}", files.sizing.mbufs);
                println!("CASE_SOCKET_MEM_MB={}", files.sizing.socket_mem_mb);
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
        Command::FwdNull {
            seconds,
            lcore,
            null_args,
        } => match fwd_null(seconds, lcore, &null_args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(&error),
        },
        Command::GenMemif {
            socket,
            mode,
            flows,
            enis,
            seconds,
            warmup,
            lcore,
            peer_pid,
            peer_thread,
        } => {
            let (Ok(warmup), Ok(measure)) = (
                Duration::try_from_secs_f64(warmup),
                Duration::try_from_secs_f64(seconds),
            ) else {
                return fail(&"--seconds and --warmup must be non-negative numbers of seconds");
            };
            let options = GenOptions {
                mode,
                flows,
                warmup,
                measure,
                link_timeout: Duration::from_secs(10),
                peer: peer_pid.zip(peer_thread),
            };
            match gen_memif(&socket, enis, lcore, &options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&error),
            }
        }
        Command::MemifConfig {
            profile,
            enis,
            max_flows_per_worker,
        } => match TrafficPlan::new(enis) {
            Ok(plan) => {
                print!("{}", plan.appliance_config(&profile, max_flows_per_worker));
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
    }
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("palisade-perf: error: {error}");
    ExitCode::FAILURE
}

fn gen_memif(
    socket: &str,
    enis: usize,
    lcore: usize,
    options: &GenOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    let plan = TrafficPlan::new(enis)?;
    let args: Vec<String> = vec![
        "palisade-perf".into(),
        "-l".into(),
        lcore.to_string(),
        "--no-huge".into(),
        "-m".into(),
        "256".into(),
        "--no-pci".into(),
        "--no-telemetry".into(),
        "--log-level".into(),
        "*:warning".into(),
        "--file-prefix".into(),
        format!("palisade-gen-{}", std::process::id()),
        "--vdev".into(),
        format!("net_memif0,role=client,socket={socket},id=0,rsize=11"),
    ];
    let eal = Eal::init(&args)?;
    let report = run_generator(&eal, 0, &plan, options)?;
    let mode = match options.mode {
        Mode::Established => "established",
        Mode::New => "new",
    };
    if let Some(setup) = report.setup {
        println!(
            "gen-memif: handshake of {} flows: {} frames sent, {} back, in {:.2} s",
            options.flows,
            setup.sent,
            setup.received,
            setup.elapsed.as_secs_f64()
        );
    }
    println!(
        "gen-memif: {mode}: {} s: sent {} ({:.3} Mpps), received {} ({:.3} Mpps)",
        report.elapsed.as_secs_f64(),
        report.sent,
        report.tx_mpps(),
        report.received,
        report.rx_mpps()
    );
    if let (Some(cpu), Some(rate)) = (report.peer_cpu, report.rx_mpps_per_peer_cpu_second()) {
        println!(
            "gen-memif: forwarder thread CPU time {:.2} s: {rate:.3} Mpps received per forwarder CPU second",
            cpu.as_secs_f64()
        );
    }
    if let (Some(cpu), Some(rate)) = (report.own_cpu, report.tx_mpps_per_own_cpu_second()) {
        println!(
            "gen-memif: generator thread CPU time {:.2} s: {rate:.3} Mpps sent per generator CPU second",
            cpu.as_secs_f64()
        );
    }
    eal.cleanup()?;
    Ok(())
}

fn fwd_null(seconds: u64, lcore: usize, null_args: &str) -> Result<(), palisade_dpdk::DpdkError> {
    let vdev = |index: u32| {
        if null_args.is_empty() {
            format!("net_null{index}")
        } else {
            format!("net_null{index},{null_args}")
        }
    };
    let args: Vec<String> = vec![
        "palisade-perf".into(),
        "-l".into(),
        lcore.to_string(),
        "--no-huge".into(),
        "-m".into(),
        "512".into(),
        "--no-shconf".into(),
        "--no-pci".into(),
        "--no-telemetry".into(),
        "--log-level".into(),
        "*:warning".into(),
        "--file-prefix".into(),
        format!("palisade-perf-{}", std::process::id()),
        "--vdev".into(),
        vdev(0),
        "--vdev".into(),
        vdev(1),
    ];
    let eal = Eal::init(&args)?;
    let report = forward_io(
        &eal,
        ForwardSetup::default(),
        0,
        1,
        Duration::from_secs(1),
        Duration::from_secs(seconds),
    )?;
    println!(
        "fwd-null: forwarded {} packets in {:.3} s on lcore {lcore}: {:.2} Mpps ({} dropped at tx)",
        report.forwarded,
        report.elapsed.as_secs_f64(),
        report.mpps(),
        report.dropped
    );
    if let (Some(cpu), Some(rate)) = (report.cpu_time, report.mpps_per_cpu_second()) {
        println!(
            "fwd-null: forwarding thread CPU time {:.2} s: {rate:.2} Mpps per CPU second",
            cpu.as_secs_f64()
        );
    }
    eal.cleanup()
}

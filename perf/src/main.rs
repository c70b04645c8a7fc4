//! `palisade-perf`: benchmark drivers that need a running DPDK (criterion
//! benches cover what does not). `perf/bench-fwd-vs-testpmd.sh` runs
//! `fwd-null` side by side with `dpdk-testpmd`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use palisade_dpdk::Eal;
use palisade_perf::fwd::{ForwardSetup, forward_io};

#[derive(Debug, Parser)]
#[command(name = "palisade-perf", about = "palisade benchmark drivers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::FwdNull {
            seconds,
            lcore,
            null_args,
        } => match fwd_null(seconds, lcore, &null_args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("palisade-perf: error: {error}");
                ExitCode::FAILURE
            }
        },
    }
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

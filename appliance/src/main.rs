//! `palisade`: the program a user runs. A thin clap front end over the
//! libraries: it loads a DPDK profile, starts the EAL and the ports, and
//! (in a later issue) pins one packet pipeline per worker core and starts
//! the control plane.

mod startup;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::startup::{ProfileSource, StartupError};

/// The built-in demo profile (three TAP ports), embedded so `palisade run`
/// works from any directory.
pub(crate) const DEMO_PROFILE: ProfileSource = ProfileSource::BuiltIn {
    text: include_str!("../../dpdk-config/tap-demo.toml"),
    origin: "built-in tap-demo.toml",
};

/// A virtual router that enforces VPC security groups at line rate.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start DPDK from a profile and list the ports it brings up: name,
    /// driver, MAC, queues, link.
    Ports {
        /// A DPDK profile, e.g. dpdk-config/tap-demo.toml.
        #[arg(long, value_name = "FILE")]
        profile: PathBuf,
    },
    /// Start the appliance. For now this only brings DPDK and the ports up
    /// (the built-in TAP demo profile unless --config is given), lists
    /// them, and waits for Ctrl-C: no packets are forwarded yet; the packet
    /// pipeline and control plane arrive in later issues.
    Run {
        /// A DPDK profile to use instead of the built-in TAP demo.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ports { profile } => ports(&ProfileSource::File(profile)),
        Command::Run { config } => run(&config.map_or(DEMO_PROFILE, ProfileSource::File)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("palisade: error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn ports(source: &ProfileSource) -> Result<(), StartupError> {
    let profile = source.load()?;
    let eal = startup::start_eal(&profile)?;
    {
        let (_pool, ports) = startup::start_ports(&eal, &profile)?;
        startup::wait_for_links(&ports, Duration::from_secs(1));
        print!("{}", startup::port_table(&ports));
    }
    eal.cleanup()?;
    Ok(())
}

fn run(source: &ProfileSource) -> Result<(), StartupError> {
    let profile = source.load()?;
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })?;
    let eal = startup::start_eal(&profile)?;
    {
        let (_pool, ports) = startup::start_ports(&eal, &profile)?;
        startup::wait_for_links(&ports, Duration::from_secs(1));
        println!("palisade: profile {}: ports up", profile.origin);
        print!("{}", startup::port_table(&ports));
        println!(
            "palisade: no packet pipeline yet (later issue): ports are up but nothing is forwarded. Ctrl-C to stop."
        );
        // A closed channel (impossible while the handler lives) also stops.
        let _ = stop_rx.recv();
        println!("palisade: stopping");
    }
    eal.cleanup()?;
    Ok(())
}

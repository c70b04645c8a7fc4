//! `palisade`: the program a user runs. A thin clap front end over the
//! libraries: `run` brings up DPDK from the configuration's profile,
//! compiles and publishes the policy, pins one packet pipeline per worker
//! core and serves Prometheus metrics; `ports` lists what a profile brings
//! up.

mod output;

mod demo;
mod explain;
mod metrics;
mod pipeline;
mod replay;
mod run;
mod startup;
mod stop;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::output::say_err;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
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
    /// Run the appliance: DPDK ports from the configuration's profile, one
    /// pinned pipeline per worker core enforcing the configured security
    /// groups and network ACLs, Prometheus metrics. Without --config, the
    /// built-in demo (appliance/demo.toml on the tap-demo profile).
    /// SIGHUP reloads the configuration; SIGINT/SIGTERM stop in order, also
    /// during start-up (exit status 0).
    Run {
        /// The configuration file (docs/CONFIG.md).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// `off` runs the control side alone, without DPDK.
        #[arg(long, value_enum, default_value_t = OnOff::On)]
        dataplane: OnOff,
        /// Where to serve /metrics (overrides the configuration).
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<SocketAddr>,
        /// Where to serve the EC2 Query API (overrides the configuration).
        #[arg(long, value_name = "ADDR")]
        api_listen: Option<SocketAddr>,
        /// Where the state (SQLite store, generated credentials) lives
        /// (overrides the configuration).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// The EC2 API's access key id (with --secret-access-key; overrides
        /// PALISADE_ACCESS_KEY_ID and the configuration).
        #[arg(long, value_name = "ID", requires = "secret_access_key")]
        access_key_id: Option<String>,
        /// The EC2 API's secret access key (with --access-key-id).
        #[arg(long, value_name = "SECRET", requires = "access_key_id")]
        secret_access_key: Option<String>,
    },
    /// Say what the appliance would do with one packet and why: the route,
    /// the deciding NACL entries and security-group rules, tracking, and the
    /// policy generation (docs/EXPLAIN.md). Offline, against --config (or
    /// the demo) or --state-dir; the running appliance answers the same at
    /// GET /explain on its metrics listener.
    Explain {
        #[command(flatten)]
        world: explain::WorldArgs,
        /// The sender: an ENI id, an address (the ENI owning it, else the
        /// outside world through the uplink) or `uplink`.
        #[arg(long, value_name = "ENI|ADDR|uplink", required_unless_present = "pcap")]
        from: Option<String>,
        /// The source address (default: the sender's first address of the
        /// destination's IP version).
        #[arg(long, value_name = "ADDR")]
        src: Option<std::net::IpAddr>,
        /// The destination address.
        #[arg(long, value_name = "ADDR", required_unless_present = "pcap")]
        to: Option<std::net::IpAddr>,
        /// tcp, udp, icmp, icmpv6 or a protocol number.
        #[arg(long, value_name = "PROTO", default_value = "tcp")]
        protocol: String,
        /// TCP/UDP source port.
        #[arg(long, default_value_t = explain::DEFAULT_SRC_PORT)]
        src_port: u16,
        /// TCP/UDP destination port.
        #[arg(long, default_value_t = 0)]
        dst_port: u16,
        /// ICMP type (default: echo request, 8 or ICMPv6's 128).
        #[arg(long)]
        icmp_type: Option<u8>,
        /// ICMP code.
        #[arg(long, default_value_t = 0)]
        icmp_code: u8,
        /// Explain a captured frame instead (with --frame).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["from", "to"])]
        pcap: Option<PathBuf>,
        /// The frame of --pcap, 1-based.
        #[arg(long, value_name = "N", default_value_t = 1)]
        frame: usize,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replay a pcap file through the real packet path, offline: each
    /// frame's verdict, statefully, and the deciding rules of new flows.
    Replay {
        /// A classic pcap file of Ethernet frames.
        #[arg(value_name = "IN.pcap")]
        input: PathBuf,
        #[command(flatten)]
        world: explain::WorldArgs,
        /// The port every frame arrives on (default: the port of the ENI or
        /// uplink owning the frame's source MAC and VLAN).
        #[arg(long, value_name = "NAME")]
        port: Option<String>,
        /// One JSON object per frame instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ports { profile } => {
            ports(&ProfileSource::File(profile)).map_err(|e| e.to_string())
        }
        Command::Run {
            config,
            dataplane,
            metrics_listen,
            api_listen,
            state_dir,
            access_key_id,
            secret_access_key,
        } => env_credentials().and_then(|env_credentials| {
            run::run(&run::RunOptions {
                config,
                dataplane: dataplane == OnOff::On,
                metrics_listen,
                api_listen,
                state_dir,
                flag_credentials: access_key_id.zip(secret_access_key),
                env_credentials,
            })
            .or_else(|e| match e {
                // Asked to stop, and stopped in order: not a failure.
                run::RunError::Interrupted(interrupted) => {
                    say_err!("palisade: {interrupted}; everything it had started is released");
                    Ok(())
                }
                other => Err(other.to_string()),
            })
        }),
        Command::Explain {
            world,
            from,
            src,
            to,
            protocol,
            src_port,
            dst_port,
            icmp_type,
            icmp_code,
            pcap,
            frame,
            json,
        } => explain::command(&world, pcap.as_deref(), frame, json, || {
            let protocol = explain::parse_protocol(&protocol)?;
            Ok(explain::Query {
                from: from.as_deref().unwrap_or_default().parse()?,
                src,
                to: to.ok_or("--to is required")?,
                protocol,
                src_port,
                dst_port,
                icmp_type: icmp_type.unwrap_or(explain::default_icmp_type(protocol)),
                icmp_code,
            })
        }),
        Command::Replay {
            input,
            world,
            port,
            json,
        } => replay::command(&input, &world, port.as_deref(), json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            say_err!("palisade: error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `PALISADE_ACCESS_KEY_ID` / `PALISADE_SECRET_ACCESS_KEY`: both or
/// neither.
fn env_credentials() -> Result<Option<(String, String)>, String> {
    let id = std::env::var("PALISADE_ACCESS_KEY_ID").ok();
    let secret = std::env::var("PALISADE_SECRET_ACCESS_KEY").ok();
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        (None, None) => Ok(None),
        _ => Err(
            "set both PALISADE_ACCESS_KEY_ID and PALISADE_SECRET_ACCESS_KEY, or neither".to_owned(),
        ),
    }
}

fn ports(source: &ProfileSource) -> Result<(), StartupError> {
    let profile = source.load()?;
    let eal = startup::start_eal(&profile)?;
    {
        let (_pool, ports) = startup::start_ports(&eal, &profile)?;
        startup::wait_for_links(&ports, Duration::from_secs(1));
        output::out(format_args!("{}", startup::port_table(&ports)));
    }
    eal.cleanup()?;
    Ok(())
}

//! Bringing DPDK up from a profile: hugepage check, EAL, the mempool, and
//! each profile port configured and started. Both `palisade ports` and
//! `palisade run` start this way; the packet pipeline (a later issue) will
//! take the started ports from here.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use palisade_dpdk::{DpdkError, Eal, Mempool, Port};
use palisade_dpdk_config::{HugepageStatus, Profile, ProfileError};

/// Why start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The profile file could not be read or is invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// DPDK refused: EAL arguments, memory, a device, a queue setting.
    #[error("DPDK: {0}")]
    Dpdk(#[from] DpdkError),
    /// A profile port is not among the ports EAL brought up.
    #[error("port {port:?} ({device}): {source}")]
    Port {
        /// The profile's name for the port.
        port: String,
        /// The DPDK device name.
        device: String,
        /// What DPDK said.
        source: DpdkError,
    },
}

/// Where the profile comes from.
#[derive(Debug, Clone)]
pub enum ProfileSource {
    /// A file given on the command line.
    File(PathBuf),
    /// Text built into the binary, with the name errors should show.
    BuiltIn {
        /// The profile text.
        text: &'static str,
        /// Its name in messages.
        origin: &'static str,
    },
}

impl ProfileSource {
    /// Reads and validates the profile.
    pub fn load(&self) -> Result<Profile, ProfileError> {
        match self {
            Self::File(path) => Profile::load(path),
            Self::BuiltIn { text, origin } => Profile::from_toml_str(text, origin),
        }
    }
}

/// Starts the EAL for `profile`, choosing the memory mode the host can
/// give; prints the fallback warning, if any, to stderr.
pub fn start_eal(profile: &Profile) -> Result<Eal, StartupError> {
    let status = HugepageStatus::probe().unwrap_or_default();
    let (memory, warning) = profile.resolve_memory(&status);
    if let Some(warning) = warning {
        crate::output::say_err!("palisade: warning: {warning}");
    }
    Ok(Eal::init(&profile.eal_args_with_memory(&memory))?)
}

/// A profile port, configured and started.
#[derive(Debug)]
pub struct StartedPort<'eal> {
    /// The profile's name for it.
    pub name: String,
    /// The DPDK port.
    pub port: Port<'eal>,
}

/// Creates the profile's mempool and configures and starts every port.
pub fn start_ports<'eal>(
    eal: &'eal Eal,
    profile: &Profile,
) -> Result<(Mempool<'eal>, Vec<StartedPort<'eal>>), StartupError> {
    let pool = Mempool::new(
        eal,
        "palisade-mbufs",
        profile.mempool.mbufs,
        profile.mempool.cache,
        profile.mempool.data_room,
        None,
    )?;
    let mut ports = Vec::with_capacity(profile.ports.len());
    for spec in &profile.ports {
        let device = spec.device.dpdk_name().to_owned();
        let port_error = |source| StartupError::Port {
            port: spec.name.clone(),
            device: device.clone(),
            source,
        };
        let mut port = Port::by_name(eal, &device).map_err(port_error)?;
        if spec.rx_queues > 1 && port.rss_offloads().map_err(port_error)? != 0 {
            port.use_symmetric_rss().map_err(port_error)?;
        }
        // More transmit queues than the device has (the appliance asks for
        // one per worker) are not an error: the pipeline shares what there is.
        let max_tx = port.info().map_err(port_error)?.max_tx_queues.max(1);
        port.configure(
            spec.rx_queues,
            spec.tx_queues.min(max_tx),
            spec.rx_descriptors,
            spec.tx_descriptors,
            &pool,
        )
        .map_err(port_error)?;
        port.start().map_err(port_error)?;
        ports.push(StartedPort {
            name: spec.name.clone(),
            port,
        });
    }
    Ok((pool, ports))
}

/// Waits up to `limit` for every link to come up (TAP links come up a few
/// milliseconds after start), so the table shows the settled state.
pub fn wait_for_links(ports: &[StartedPort<'_>], limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ports
            .iter()
            .all(|p| p.port.link().is_ok_and(|link| link.up))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The ports as an aligned text table.
pub fn port_table(ports: &[StartedPort<'_>]) -> String {
    let header = [
        "PORT",
        "ID",
        "DEVICE",
        "DRIVER",
        "MAC",
        "RX/TX QUEUES",
        "LINK",
    ];
    let mut rows: Vec<[String; 7]> = vec![header.map(str::to_owned)];
    for started in ports {
        let port = &started.port;
        let unknown = || "?".to_owned();
        let (rx, tx) = port.queue_counts().unwrap_or((0, 0));
        rows.push([
            started.name.clone(),
            port.id().to_string(),
            port.name(),
            port.driver_name().unwrap_or_else(|_| unknown()),
            port.mac_addr()
                .map_or_else(|_| unknown(), |mac| mac.to_string()),
            format!("{rx}/{tx}"),
            port.link()
                .map_or_else(|_| unknown(), |link| link.to_string()),
        ]);
    }
    format_table(&rows)
}

fn format_table<const COLUMNS: usize>(rows: &[[String; COLUMNS]]) -> String {
    let mut widths = [0usize; COLUMNS];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == COLUMNS {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_align_to_the_widest_cell() {
        let rows = [
            ["PORT".to_owned(), "LINK".to_owned()],
            ["eni-a-long".to_owned(), "up 10 Gbps".to_owned()],
            ["b".to_owned(), "down".to_owned()],
        ];
        assert_eq!(
            format_table(&rows),
            "PORT        LINK\neni-a-long  up 10 Gbps\nb           down\n"
        );
    }

    #[test]
    fn built_in_demo_profile_is_valid_and_has_tap_ports() {
        let profile = crate::DEMO_PROFILE
            .load()
            .expect("the embedded demo profile parses");
        assert!(!profile.ports.is_empty());
        assert!(
            profile
                .ports
                .iter()
                .all(|p| p.device.dpdk_name().starts_with("net_tap"))
        );
    }
}

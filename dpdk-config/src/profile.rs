//! The validated profile and the EAL command line it stands for.
//!
//! The appliance calls [`Profile::load`], then [`Profile::resolve_memory`]
//! against the host's hugepages, then hands [`Profile::eal_args_with_memory`]
//! to `rte_eal_init` and creates one mempool and the listed ports. Nothing
//! here touches DPDK: every field has already been checked, so the only
//! failures left for EAL are ones the host causes (a missing device, no
//! permission), not typos.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::error::ProfileError;

/// Program name put in `argv[0]`; EAL uses it only for log lines.
pub const PROGRAM_NAME: &str = "palisade";

/// A DPDK start-up profile: EAL options, the worker cores, one mempool and
/// the ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The label errors and warnings name: the file name, or what the
    /// caller passed to [`Profile::from_toml_str`].
    pub origin: String,
    /// Options for `rte_eal_init`.
    pub eal: EalProfile,
    /// Cores that run a pipeline each; all in `eal.lcores`, none the main lcore.
    pub workers: Vec<usize>,
    /// The one packet-buffer pool every port receives into.
    pub mempool: MempoolProfile,
    /// The ports in file order; DPDK port ids follow EAL's probe order,
    /// so the appliance matches them by device name, not by index.
    pub ports: Vec<PortProfile>,
}

/// EAL options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalProfile {
    /// Every core EAL may run a thread on (`-l`), main lcore included.
    pub lcores: Vec<usize>,
    /// The core of the control thread (`--main-lcore`).
    pub main_lcore: usize,
    /// How EAL gets its memory.
    pub memory: MemoryMode,
    /// MiB to ask for with `--no-huge -m` when hugepages turn out to be
    /// unavailable; equal to `memory_mb` in [`MemoryMode::NoHuge`].
    pub no_huge_memory_mb: u32,
    /// Names EAL's runtime files so two DPDK processes do not collide
    /// (`--file-prefix`).
    pub file_prefix: String,
    /// Global EAL log level (`--log-level`).
    pub log_level: LogLevel,
    /// Passed to EAL last and unchanged, for options this format does not model.
    pub extra_args: Vec<String>,
}

/// Where EAL's memory comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryMode {
    /// Hugepages from a mounted hugetlbfs, reserved up front per NUMA
    /// socket (`--socket-mem`): the fast, normal mode.
    Hugepages {
        /// MiB per NUMA socket, socket 0 first.
        socket_mem_mb: Vec<u32>,
    },
    /// Hugepages allocated on demand without files or a mount
    /// (`--in-memory`): for containers and several instances side by side.
    InMemory,
    /// Ordinary 4 KiB pages (`--no-huge -m`): slower and without physical
    /// addresses, so for virtual devices only; runs anywhere.
    NoHuge {
        /// MiB for the whole process.
        memory_mb: u32,
    },
}

impl fmt::Display for MemoryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hugepages { socket_mem_mb } => {
                write!(
                    f,
                    "hugepages (--socket-mem {})",
                    join_numbers(socket_mem_mb)
                )
            }
            Self::InMemory => f.write_str("in-memory hugepages (--in-memory)"),
            Self::NoHuge { memory_mb } => write!(f, "no hugepages (--no-huge -m {memory_mb})"),
        }
    }
}

/// EAL's global log level; the names are those `--log-level` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// System is unusable.
    Emergency,
    /// Action must be taken immediately.
    Alert,
    /// Critical conditions.
    Critical,
    /// Error conditions.
    Error,
    /// Warning conditions.
    Warning,
    /// Normal but significant: EAL's default and ours.
    #[default]
    Notice,
    /// Informational, including per-device probe lines.
    Info,
    /// Everything; very verbose.
    Debug,
}

impl LogLevel {
    /// The word `--log-level` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Emergency => "emergency",
            Self::Alert => "alert",
            Self::Critical => "critical",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
            Self::Info => "info",
            Self::Debug => "debug",
        }
    }
}

/// The one mempool of packet buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolProfile {
    /// Number of mbufs; must cover every descriptor ring plus the per-core caches.
    pub mbufs: u32,
    /// Per-lcore cache of mbufs (`cache_size` of `rte_pktmbuf_pool_create`).
    pub cache: u32,
    /// Bytes of buffer per mbuf, headroom included (`data_room_size`).
    pub data_room: u16,
}

impl MempoolProfile {
    /// Approximate bytes one mbuf takes in memory: the 128-byte `rte_mbuf`,
    /// the mempool object header (one cache line) and the data room,
    /// rounded up to a cache line. Used to check that the configured
    /// memory can hold the pool at all.
    pub fn bytes_per_mbuf(&self) -> u64 {
        const CACHE_LINE: u64 = 64;
        let raw = 128 + CACHE_LINE + u64::from(self.data_room);
        raw.div_ceil(CACHE_LINE) * CACHE_LINE
    }

    /// Approximate bytes of the whole pool.
    pub fn total_bytes(&self) -> u64 {
        self.bytes_per_mbuf() * u64::from(self.mbufs)
    }
}

/// One port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortProfile {
    /// Palisade's name for the port in logs, metrics and the ENI table.
    pub name: String,
    /// The DPDK device behind it.
    pub device: PortDevice,
    /// Receive queues; each is polled by one worker.
    pub rx_queues: u16,
    /// Transmit queues.
    pub tx_queues: u16,
    /// Descriptors per receive queue (a power of two).
    pub rx_descriptors: u16,
    /// Descriptors per transmit queue (a power of two).
    pub tx_descriptors: u16,
}

/// A physical or virtual DPDK device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortDevice {
    /// A PCI function bound to vfio-pci or uio, as `DDDD:BB:DD.F` (the
    /// short `BB:DD.F` form of the file is expanded with domain 0000).
    Pci(String),
    /// A virtual device's full devargs, e.g. `net_tap0,iface=pal-a`.
    Vdev(String),
}

impl PortDevice {
    /// The name DPDK gives the device (`rte_eth_dev_get_name_by_port`): the
    /// PCI address, or the vdev's name before its first comma. This is how
    /// the appliance finds each profile port among EAL's probed ports.
    pub fn dpdk_name(&self) -> &str {
        match self {
            Self::Pci(address) => address,
            Self::Vdev(devargs) => devargs.split(',').next().unwrap_or(devargs),
        }
    }
}

impl Profile {
    /// Reads and validates a profile file; errors are labelled with the
    /// file's name.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let origin = path.file_name().map_or_else(
            || path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            origin: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text, &origin)
    }

    /// Parses and validates profile text; `origin` labels every error.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        crate::validate::parse(text, origin)
    }

    /// The complete EAL argv for the profile's own memory mode.
    pub fn eal_args(&self) -> Vec<String> {
        self.eal_args_with_memory(&self.eal.memory)
    }

    /// The complete EAL argv with `memory` in place of the profile's own
    /// mode: what the appliance passes after [`Profile::resolve_memory`].
    pub fn eal_args_with_memory(&self, memory: &MemoryMode) -> Vec<String> {
        let mut args = vec![PROGRAM_NAME.to_owned()];
        args.push("-l".to_owned());
        args.push(join_numbers(&self.eal.lcores));
        args.push("--main-lcore".to_owned());
        args.push(self.eal.main_lcore.to_string());
        match memory {
            MemoryMode::Hugepages { socket_mem_mb } => {
                args.push("--socket-mem".to_owned());
                args.push(join_numbers(socket_mem_mb));
            }
            MemoryMode::InMemory => args.push("--in-memory".to_owned()),
            MemoryMode::NoHuge { memory_mb } => {
                args.push("--no-huge".to_owned());
                args.push("-m".to_owned());
                args.push(memory_mb.to_string());
            }
        }
        args.push("--file-prefix".to_owned());
        args.push(self.eal.file_prefix.clone());
        let mut has_pci = false;
        for port in &self.ports {
            match &port.device {
                PortDevice::Vdev(devargs) => {
                    args.push("--vdev".to_owned());
                    args.push(devargs.clone());
                }
                PortDevice::Pci(address) => {
                    has_pci = true;
                    args.push("-a".to_owned());
                    args.push(address.clone());
                }
            }
        }
        if !has_pci {
            // Without an allow-list EAL would probe and grab every
            // DPDK-bound NIC on the host.
            args.push("--no-pci".to_owned());
        }
        args.push("--log-level".to_owned());
        args.push(self.eal.log_level.as_str().to_owned());
        args.extend(self.eal.extra_args.iter().cloned());
        args
    }

    /// Whether any port is a PCI device (which needs real hugepages for DMA).
    pub fn has_pci_port(&self) -> bool {
        self.ports
            .iter()
            .any(|port| matches!(port.device, PortDevice::Pci(_)))
    }
}

pub(crate) fn join_numbers<T: ToString>(numbers: &[T]) -> String {
    numbers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> Profile {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
        Profile::load(&path).unwrap_or_else(|error| panic!("{name} must load:\n{error}"))
    }

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    /// The value following `flag` in `args`.
    fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        let position = args.iter().position(|arg| arg == flag)?;
        args.get(position + 1).map(String::as_str)
    }

    #[test]
    fn tap_demo_has_exact_eal_args() {
        let profile = shipped("tap-demo.toml");
        assert_eq!(profile.origin, "tap-demo.toml");
        assert_eq!(
            profile.eal_args(),
            strings(&[
                "palisade",
                "-l",
                "0,1",
                "--main-lcore",
                "0",
                "--socket-mem",
                "256",
                "--file-prefix",
                "palisade-tap",
                "--vdev",
                "net_tap0,iface=pal-a",
                "--vdev",
                "net_tap1,iface=pal-b",
                "--vdev",
                "net_tap2,iface=pal-c",
                "--no-pci",
                "--log-level",
                "notice",
            ])
        );
        assert_eq!(profile.workers, vec![1]);
        let names: Vec<&str> = profile
            .ports
            .iter()
            .map(|port| port.name.as_str())
            .collect();
        assert_eq!(names, ["eni-a", "eni-b", "eni-c"]);
        // Defaults filled in for the ports that do not spell them out.
        assert_eq!(profile.ports[2].rx_queues, 1);
        assert_eq!(profile.ports[2].rx_descriptors, 1024);
        assert_eq!(profile.eal.no_huge_memory_mb, 256);
    }

    #[test]
    fn tap_demo_falls_back_to_no_huge_args() {
        let profile = shipped("tap-demo.toml");
        let args = profile.eal_args_with_memory(&MemoryMode::NoHuge { memory_mb: 256 });
        assert!(args.contains(&"--no-huge".to_owned()));
        assert_eq!(value_of(&args, "-m"), Some("256"));
        assert!(!args.contains(&"--socket-mem".to_owned()));
        assert!(!args.contains(&"--in-memory".to_owned()));
    }

    #[test]
    fn pcap_profile_is_no_huge_with_two_pcap_vdevs() {
        let profile = shipped("pcap.toml");
        assert_eq!(profile.eal.memory, MemoryMode::NoHuge { memory_mb: 256 });
        let args = profile.eal_args();
        assert!(args.contains(&"--no-huge".to_owned()));
        assert_eq!(value_of(&args, "-m"), Some("256"));
        let vdevs: Vec<&String> = args
            .iter()
            .zip(args.iter().skip(1))
            .filter(|(flag, _)| *flag == "--vdev")
            .map(|(_, value)| value)
            .collect();
        assert_eq!(vdevs.len(), 2);
        assert!(vdevs.iter().all(|vdev| vdev.starts_with("net_pcap")
            && vdev.contains("rx_pcap=")
            && vdev.contains("tx_pcap=")));
        assert!(args.contains(&"--no-pci".to_owned()));
    }

    #[test]
    fn memif_profile_is_a_server() {
        let profile = shipped("memif-bench.toml");
        assert_eq!(profile.ports.len(), 1);
        let args = profile.eal_args();
        let vdev = value_of(&args, "--vdev").expect("one --vdev");
        assert!(vdev.starts_with("net_memif0,role=server,socket=/run/palisade/memif.sock"));
        assert_eq!(value_of(&args, "--socket-mem"), Some("512"));
        assert_eq!(profile.ports[0].device.dpdk_name(), "net_memif0");
    }

    #[test]
    fn null_profile_is_in_memory_with_two_null_ports() {
        let profile = shipped("null.toml");
        assert_eq!(profile.eal.memory, MemoryMode::InMemory);
        let args = profile.eal_args();
        assert!(args.contains(&"--in-memory".to_owned()));
        assert!(!args.contains(&"-m".to_owned()));
        let nulls = args
            .iter()
            .filter(|arg| arg.starts_with("net_null"))
            .count();
        assert_eq!(nulls, 2);
        assert_eq!(value_of(&args, "--file-prefix"), Some("palisade-null"));
    }

    #[test]
    fn virtio_profile_allow_lists_both_nics_and_probes_pci() {
        let profile = shipped("virtio.toml");
        assert!(profile.has_pci_port());
        let args = profile.eal_args();
        let allowed: Vec<&String> = args
            .iter()
            .zip(args.iter().skip(1))
            .filter(|(flag, _)| *flag == "-a")
            .map(|(_, value)| value)
            .collect();
        assert_eq!(allowed, ["0000:00:04.0", "0000:00:05.0"]);
        assert!(!args.contains(&"--no-pci".to_owned()));
        assert!(!args.contains(&"--vdev".to_owned()));
        assert_eq!(value_of(&args, "--socket-mem"), Some("512"));
        assert_eq!(value_of(&args, "-l"), Some("0,1"));
        assert_eq!(value_of(&args, "--main-lcore"), Some("0"));
        assert_eq!(profile.workers, vec![1]);
    }

    #[test]
    fn every_shipped_profile_loads_and_starts_with_the_program_name() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut count = 0;
        for entry in std::fs::read_dir(dir).expect("crate dir") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|ext| ext.to_str()) != Some("toml")
                || path.file_name().and_then(|name| name.to_str()) == Some("Cargo.toml")
            {
                continue;
            }
            let profile = Profile::load(&path).unwrap_or_else(|error| panic!("{error}"));
            let args = profile.eal_args();
            assert_eq!(args[0], PROGRAM_NAME);
            assert_eq!(value_of(&args, "--log-level"), Some("notice"));
            count += 1;
        }
        assert_eq!(count, 5, "tap-demo, pcap, memif-bench, null, virtio");
    }

    #[test]
    fn extra_args_come_last_and_unchanged() {
        let text = r#"
            [eal]
            lcores = [2, 3]
            extra_args = ["--log-level", "pmd.net.null:info", "--huge-dir", "/mnt/huge", "--log-level=pmd.net.tap:debug"]
            [[ports]]
            name = "x"
            vdev = "net_null0"
        "#;
        let profile = Profile::from_toml_str(text, "inline").expect("valid");
        let args = profile.eal_args();
        assert_eq!(
            args[args.len() - 5..],
            strings(&[
                "--log-level",
                "pmd.net.null:info",
                "--huge-dir",
                "/mnt/huge",
                "--log-level=pmd.net.tap:debug"
            ])
        );
        // main lcore defaults to the lowest core, the others become workers.
        assert_eq!(profile.eal.main_lcore, 2);
        assert_eq!(profile.workers, vec![3]);
    }

    #[test]
    fn dpdk_name_is_the_vdev_name_or_the_pci_address() {
        assert_eq!(
            PortDevice::Vdev("net_tap0,iface=pal-a".to_owned()).dpdk_name(),
            "net_tap0"
        );
        assert_eq!(
            PortDevice::Vdev("net_null1".to_owned()).dpdk_name(),
            "net_null1"
        );
        assert_eq!(
            PortDevice::Pci("0000:00:04.0".to_owned()).dpdk_name(),
            "0000:00:04.0"
        );
    }

    #[test]
    fn load_reports_a_missing_file_by_path() {
        let error = Profile::load(Path::new("/nonexistent/palisade/x.toml")).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("/nonexistent/palisade/x.toml: cannot read the profile"),
            "{text}"
        );
    }

    #[test]
    fn load_labels_errors_with_the_file_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, "[eal]\nlcores = [0, 1]\n[[ports]]\nname = \"a\"\nvdev = \"net_null0\"\nrx_queues = 0\n")
            .expect("write");
        let text = Profile::load(&path).unwrap_err().to_string();
        assert_eq!(
            text,
            "broken.toml:6: ports[0].rx_queues: must be between 1 and 64, got 0"
        );
    }

    #[test]
    fn mempool_size_estimate_rounds_to_cache_lines() {
        let pool = MempoolProfile {
            mbufs: 8191,
            cache: 256,
            data_room: 2176,
        };
        // 128 (rte_mbuf) + 64 (object header) + 2176 = 2368 = 37 cache lines.
        assert_eq!(pool.bytes_per_mbuf(), 2368);
        assert_eq!(pool.total_bytes(), 2368 * 8191);
        let odd = MempoolProfile {
            data_room: 2000,
            ..pool
        };
        assert_eq!(odd.bytes_per_mbuf() % 64, 0);
        assert!(odd.bytes_per_mbuf() >= 128 + 64 + 2000);
    }
}

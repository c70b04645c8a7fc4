//! What hugepages the host has, and which memory mode a profile gets.
//!
//! A profile says what it would like (hugepages, in-memory, or none); the
//! host decides what it can have: a container or small VM often has no
//! hugepages reserved or no hugetlbfs mounted, and EAL would then abort
//! with `Cannot get hugepage information` before any port exists. The
//! appliance probes once at start-up and, rather than fail, falls back to
//! `--no-huge` with one warning saying what to run. The decision is a pure
//! function of [`HugepageStatus`] so it is tested without touching `/proc`.

use std::path::Path;

use crate::profile::{MemoryMode, Profile};

/// The script that reserves hugepages and mounts hugetlbfs; quoted in the
/// fallback warning so the user knows the fix.
pub const SETUP_SCRIPT: &str = "dpdk-config/setup-hugepages.sh";

/// Why the host's hugepage status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HugepageError {
    /// `/proc/meminfo` or `/proc/mounts` could not be read (not Linux, or
    /// no procfs in this sandbox).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that failed.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// The default-size hugepages of the host, as `/proc` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HugepageStatus {
    /// `HugePages_Total`: pages reserved in the pool.
    pub total_pages: u64,
    /// `HugePages_Free`: reserved pages nobody holds yet.
    pub free_pages: u64,
    /// `Hugepagesize` in KiB (2048 on x86_64 unless the kernel was booted
    /// with another default).
    pub page_size_kb: u64,
    /// Mount points of hugetlbfs file systems, as listed in `/proc/mounts`.
    pub hugetlbfs_mounts: Vec<String>,
}

impl HugepageStatus {
    /// Reads `/proc/meminfo` and `/proc/mounts`.
    pub fn probe() -> Result<Self, HugepageError> {
        let read = |path: &str| {
            std::fs::read_to_string(Path::new(path)).map_err(|source| HugepageError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Ok(Self::from_proc(
            &read("/proc/meminfo")?,
            &read("/proc/mounts")?,
        ))
    }

    /// Parses the text of `/proc/meminfo` and `/proc/mounts`. Missing
    /// fields (a kernel without hugetlb support) read as zero.
    pub fn from_proc(meminfo: &str, mounts: &str) -> Self {
        let mut status = Self::default();
        for line in meminfo.lines() {
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            let number = value
                .split_whitespace()
                .next()
                .and_then(|word| word.parse::<u64>().ok())
                .unwrap_or(0);
            match field.trim() {
                "HugePages_Total" => status.total_pages = number,
                "HugePages_Free" => status.free_pages = number,
                "Hugepagesize" => status.page_size_kb = number,
                _ => {}
            }
        }
        status.hugetlbfs_mounts = mounts
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let _source = fields.next()?;
                let mount_point = fields.next()?;
                (fields.next()? == "hugetlbfs").then(|| mount_point.to_owned())
            })
            .collect();
        status
    }

    /// MiB of free default-size hugepages.
    pub fn free_mb(&self) -> u64 {
        self.free_pages * self.page_size_kb / 1024
    }
}

impl Profile {
    /// The memory mode to start EAL with on a host with `status`, and one
    /// warning when it is not the mode the profile asked for.
    ///
    /// `Hugepages` needs a hugetlbfs mount and enough free pages for the
    /// requested `socket_mem_mb`; `InMemory` maps pages anonymously, so it
    /// needs free pages but no mount. Otherwise EAL gets `--no-huge -m`
    /// with the profile's `no_huge_memory_mb`.
    pub fn resolve_memory(&self, status: &HugepageStatus) -> (MemoryMode, Option<String>) {
        let shortage = match &self.eal.memory {
            MemoryMode::NoHuge { .. } => None,
            MemoryMode::Hugepages { socket_mem_mb } => {
                let wanted: u64 = socket_mem_mb.iter().map(|&mb| u64::from(mb)).sum();
                if status.hugetlbfs_mounts.is_empty() {
                    Some(format!(
                        "no hugetlbfs is mounted ({} of {} hugepages of {} kB free)",
                        status.free_pages, status.total_pages, status.page_size_kb
                    ))
                } else if status.free_mb() < wanted {
                    Some(format!(
                        "the profile asks for {wanted} MiB of hugepages but only {} MiB are free ({} of {} pages of {} kB)",
                        status.free_mb(),
                        status.free_pages,
                        status.total_pages,
                        status.page_size_kb
                    ))
                } else {
                    None
                }
            }
            MemoryMode::InMemory => (status.free_pages == 0).then(|| {
                format!(
                    "in-memory mode needs free hugepages and {} of {} are free",
                    status.free_pages, status.total_pages
                )
            }),
        };
        let Some(shortage) = shortage else {
            return (self.eal.memory.clone(), None);
        };
        let fallback = MemoryMode::NoHuge {
            memory_mb: self.eal.no_huge_memory_mb,
        };
        let pci_note = if self.has_pci_port() {
            " PCI ports need hugepages for DMA and will probably fail to start without them."
        } else {
            ""
        };
        let warning = format!(
            "{}: hugepages unavailable: {shortage}; falling back to --no-huge -m {} (4 KiB pages: slower, for virtual devices).{pci_note} To use hugepages, run: sudo {SETUP_SCRIPT}",
            self.origin, self.eal.no_huge_memory_mb
        );
        (fallback, Some(warning))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO_NONE: &str = "MemTotal:       24567884 kB\nMemFree:        20000000 kB\n\
        HugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\n\
        HugePages_Surp:        0\nHugepagesize:       2048 kB\nHugetlb:               0 kB\n";
    const MEMINFO_512: &str = "MemTotal:       24567884 kB\nHugePages_Total:     512\n\
        HugePages_Free:      500\nHugePages_Rsvd:        0\nHugepagesize:       2048 kB\n";
    const MOUNTS_NONE: &str = "proc /proc proc rw,nosuid 0 0\n\
        tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0\n";
    const MOUNTS_HUGE: &str = "proc /proc proc rw,nosuid 0 0\n\
        hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n";

    fn status(free_pages: u64, mounted: bool) -> HugepageStatus {
        HugepageStatus {
            total_pages: 512,
            free_pages,
            page_size_kb: 2048,
            hugetlbfs_mounts: if mounted {
                vec!["/dev/hugepages".to_owned()]
            } else {
                Vec::new()
            },
        }
    }

    fn profile(memory: &str, port: &str) -> Profile {
        let text = format!(
            "[eal]\nlcores = [0, 1]\n[eal.memory]\n{memory}\n[[ports]]\nname = \"p\"\n{port}\n"
        );
        Profile::from_toml_str(&text, "mem.toml").expect("valid profile")
    }

    fn hugepages_256() -> Profile {
        profile(
            "mode = \"hugepages\"\nsocket_mem_mb = [256]\nmemory_mb = 192",
            "vdev = \"net_null0\"",
        )
    }

    #[test]
    fn parses_meminfo_and_mounts() {
        let parsed = HugepageStatus::from_proc(MEMINFO_512, MOUNTS_HUGE);
        assert_eq!(
            parsed,
            HugepageStatus {
                total_pages: 512,
                free_pages: 500,
                page_size_kb: 2048,
                hugetlbfs_mounts: vec!["/dev/hugepages".to_owned()],
            }
        );
        assert_eq!(parsed.free_mb(), 1000);
        let none = HugepageStatus::from_proc(MEMINFO_NONE, MOUNTS_NONE);
        assert_eq!(none.total_pages, 0);
        assert_eq!(none.page_size_kb, 2048);
        assert!(none.hugetlbfs_mounts.is_empty());
    }

    #[test]
    fn garbage_proc_text_reads_as_no_hugepages() {
        let parsed = HugepageStatus::from_proc("HugePages_Free: lots\nnonsense\n", "a b\n\n");
        assert_eq!(parsed, HugepageStatus::default());
    }

    #[test]
    fn probe_reads_this_host() {
        // Whatever this host has, the probe must parse it consistently.
        let probed = HugepageStatus::probe().expect("/proc is readable on Linux");
        assert!(probed.free_pages <= probed.total_pages);
        assert!(probed.page_size_kb > 0, "Hugepagesize is always reported");
    }

    #[test]
    fn hugepages_kept_when_mounted_and_enough_free() {
        let (mode, warning) = hugepages_256().resolve_memory(&status(128, true));
        assert_eq!(
            mode,
            MemoryMode::Hugepages {
                socket_mem_mb: vec![256]
            }
        );
        assert_eq!(warning, None);
    }

    #[test]
    fn hugepages_fall_back_when_not_mounted() {
        let (mode, warning) = hugepages_256().resolve_memory(&status(512, false));
        assert_eq!(mode, MemoryMode::NoHuge { memory_mb: 192 });
        let warning = warning.expect("a warning");
        assert!(
            warning.starts_with("mem.toml: hugepages unavailable: no hugetlbfs is mounted"),
            "{warning}"
        );
        assert!(warning.contains("--no-huge -m 192"), "{warning}");
        assert!(
            warning.contains("sudo dpdk-config/setup-hugepages.sh"),
            "{warning}"
        );
        assert!(!warning.contains('\n'), "one line: {warning}");
    }

    #[test]
    fn hugepages_fall_back_when_too_few_are_free() {
        // 127 pages of 2 MiB = 254 MiB < 256 MiB asked.
        let (mode, warning) = hugepages_256().resolve_memory(&status(127, true));
        assert_eq!(mode, MemoryMode::NoHuge { memory_mb: 192 });
        let warning = warning.expect("a warning");
        assert!(
            warning.contains("asks for 256 MiB of hugepages but only 254 MiB are free"),
            "{warning}"
        );
        // Exactly enough is enough.
        let (mode, warning) = hugepages_256().resolve_memory(&status(128, true));
        assert!(matches!(mode, MemoryMode::Hugepages { .. }));
        assert!(warning.is_none());
    }

    #[test]
    fn in_memory_needs_free_pages_but_no_mount() {
        let in_memory = profile(
            "mode = \"in-memory\"\nmemory_mb = 300",
            "vdev = \"net_null0\"",
        );
        let (mode, warning) = in_memory.resolve_memory(&status(1, false));
        assert_eq!(mode, MemoryMode::InMemory);
        assert!(warning.is_none());
        let (mode, warning) = in_memory.resolve_memory(&status(0, true));
        assert_eq!(mode, MemoryMode::NoHuge { memory_mb: 300 });
        assert!(
            warning
                .expect("a warning")
                .contains("in-memory mode needs free hugepages")
        );
    }

    #[test]
    fn no_huge_is_never_changed() {
        let no_huge = profile(
            "mode = \"no-huge\"\nmemory_mb = 128",
            "vdev = \"net_null0\"",
        );
        for host in [status(0, false), status(512, true)] {
            let (mode, warning) = no_huge.resolve_memory(&host);
            assert_eq!(mode, MemoryMode::NoHuge { memory_mb: 128 });
            assert!(warning.is_none());
        }
    }

    #[test]
    fn fallback_warning_says_pci_ports_will_suffer() {
        let pci = profile(
            "mode = \"hugepages\"\nsocket_mem_mb = [256]",
            "pci = \"0000:00:04.0\"",
        );
        let (mode, warning) = pci.resolve_memory(&status(0, false));
        // memory_mb defaults to the hugepage total.
        assert_eq!(mode, MemoryMode::NoHuge { memory_mb: 256 });
        assert!(
            warning
                .expect("a warning")
                .contains("PCI ports need hugepages")
        );
        let (_, warning) = hugepages_256().resolve_memory(&status(0, false));
        assert!(!warning.expect("a warning").contains("PCI"));
    }

    #[test]
    fn resolved_mode_drives_the_eal_args() {
        let profile = hugepages_256();
        let (mode, _) = profile.resolve_memory(&status(0, false));
        let args = profile.eal_args_with_memory(&mode);
        let tail: Vec<&str> = args.iter().map(String::as_str).skip(5).take(3).collect();
        assert_eq!(tail, ["--no-huge", "-m", "192"]);
    }
}

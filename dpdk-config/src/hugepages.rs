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
        Ok(Self::from_proc(&read("/proc/meminfo")?, &read("/proc/mounts")?))
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

//! DPDK EAL and port profiles: validated TOML in, EAL arguments out.
//!
//! This crate sits before the packet path: at start-up the appliance loads
//! a profile (`dpdk-config/*.toml`), learns which memory mode the host can
//! actually give it ([`HugepageStatus`]), and turns the result into the
//! argv of `rte_eal_init` plus the port and mempool settings it applies
//! before the first `rx_burst`. It links no DPDK and does no I/O beyond
//! reading the profile and `/proc`, so every rule is unit-tested here, and
//! a mistake in a profile is reported with its file, key and line instead
//! of as an EAL failure.

mod error;
mod hugepages;
mod profile;
mod raw;
mod validate;

pub use error::ProfileError;
pub use hugepages::{HugepageError, HugepageStatus, SETUP_SCRIPT};
pub use palisade_config_check::Problem;
pub use profile::{
    EalProfile, LogLevel, MemoryMode, MempoolProfile, PROGRAM_NAME, PortDevice, PortProfile,
    Profile,
};
pub use validate::{
    BURST, MAX_DESCRIPTORS, MAX_IFNAME, MAX_LCORE, MAX_MBUF_CACHE, MAX_NAME, MAX_QUEUES,
    MBUF_HEADROOM, MIN_DATA_ROOM, MIN_DESCRIPTORS,
};

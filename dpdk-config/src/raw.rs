//! The profile exactly as written in TOML, before any semantic check.
//!
//! These structs mirror the file one to one with `deny_unknown_fields`, so
//! serde catches misspelt keys and wrong types; `validate` then turns them
//! into the public [`crate::Profile`]. Serde's own messages are rewritten
//! for someone editing a TOML file by `palisade-config-check`, with this
//! format's [`WORDING`].

use palisade_config_check::{Problem, Wording};
use serde::Deserialize;

use crate::profile::LogLevel;

/// Defaults: one place, used by serde and quoted by the README.
pub(crate) mod default {
    pub const QUEUES: u16 = 1;
    pub const DESCRIPTORS: u16 = 1024;
    /// 2^13 - 1: a mempool's ring is a power of two, and one slot is kept
    /// free, so 2^n - 1 objects use it exactly.
    pub const MBUFS: u32 = 8191;
    pub const MBUF_CACHE: u32 = 256;
    /// `RTE_MBUF_DEFAULT_BUF_SIZE`: 2048 bytes of data plus the 128-byte headroom.
    pub const DATA_ROOM: u16 = 2048 + 128;
    pub const SOCKET_MEM_MB: u32 = 256;
    pub const NO_HUGE_MEMORY_MB: u32 = 256;
    pub const FILE_PREFIX: &str = "palisade";

    pub fn queues() -> u16 {
        QUEUES
    }
    pub fn descriptors() -> u16 {
        DESCRIPTORS
    }
    pub fn mbufs() -> u32 {
        MBUFS
    }
    pub fn mbuf_cache() -> u32 {
        MBUF_CACHE
    }
    pub fn data_room() -> u16 {
        DATA_ROOM
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfile {
    pub workers: Option<Vec<usize>>,
    pub eal: RawEal,
    #[serde(default)]
    pub mempool: RawMempool,
    #[serde(default)]
    pub ports: Vec<RawPort>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEal {
    pub lcores: Vec<usize>,
    pub main_lcore: Option<usize>,
    #[serde(default)]
    pub memory: RawMemory,
    pub file_prefix: Option<String>,
    pub log_level: Option<LogLevel>,
    #[serde(default)]
    pub extra_args: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawMemoryMode {
    #[default]
    Hugepages,
    InMemory,
    NoHuge,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMemory {
    #[serde(default)]
    pub mode: RawMemoryMode,
    pub socket_mem_mb: Option<Vec<u32>>,
    pub memory_mb: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMempool {
    #[serde(default = "default::mbufs")]
    pub mbufs: u32,
    #[serde(default = "default::mbuf_cache")]
    pub cache: u32,
    #[serde(default = "default::data_room")]
    pub data_room: u16,
}

impl Default for RawMempool {
    fn default() -> Self {
        Self {
            mbufs: default::MBUFS,
            cache: default::MBUF_CACHE,
            data_room: default::DATA_ROOM,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPort {
    pub name: String,
    pub pci: Option<String>,
    pub vdev: Option<String>,
    #[serde(default = "default::queues")]
    pub rx_queues: u16,
    #[serde(default = "default::queues")]
    pub tx_queues: u16,
    #[serde(default = "default::descriptors")]
    pub rx_descriptors: u16,
    #[serde(default = "default::descriptors")]
    pub tx_descriptors: u16,
}

/// How serde's messages about a profile are worded.
const WORDING: Wording = Wording {
    type_words: &[],
    // Every other top-level key is a table.
    top_level_keys: &["workers"],
};

/// Deserializes `text` (already known to be valid TOML) into the raw
/// profile, or describes the first shape error at its key path.
pub(crate) fn deserialize(text: &str) -> Result<RawProfile, Problem> {
    palisade_config_check::deserialize(text, &WORDING)
}

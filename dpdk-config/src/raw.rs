//! The profile exactly as written in TOML, before any semantic check.
//!
//! These structs mirror the file one to one with `deny_unknown_fields`, so
//! serde catches misspelt keys and wrong types; `validate` then turns them
//! into the public [`crate::Profile`]. Serde's own messages are written for
//! Rust programmers (`invalid type: string "x", expected u16`); this module
//! rewrites them for someone editing a TOML file.

use serde::Deserialize;
use serde_path_to_error::{Path, Segment};

use crate::error::Problem;
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

/// Deserializes `text` (already known to be valid TOML) into the raw
/// profile, or describes the first shape error at its key path.
pub(crate) fn deserialize(text: &str) -> Result<RawProfile, Problem> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let line = error
            .inner()
            .span()
            .map(|span| line_of_offset(text, span.start));
        let mut problem = describe(error.path(), error.inner().message());
        problem.line = line;
        problem
    })
}

/// 1-based line number of a byte offset.
pub(crate) fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    // Byte-wise, so an offset inside a multi-byte character cannot panic.
    text.as_bytes()[..end].split(|&byte| byte == b'\n').count()
}

/// Renders a serde path the way a user writes keys: `ports[0].rx_queues`.
pub(crate) fn key_path(path: &Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

fn join_key(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// Turns one serde message into a problem at the right key with wording
/// for a TOML author. Unrecognised messages pass through unchanged, so a
/// new serde wording degrades to a less friendly, never a wrong, message.
fn describe(path: &Path, message: &str) -> Problem {
    let key = key_path(path);
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // Serde reports the unknown key's own path, so `key` already ends
        // with it.
        let (unknown, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let choices = backticked(expected);
        let mut text = if choices.is_empty() {
            "unknown key; this table takes no keys".to_owned()
        } else {
            format!("unknown key; expected one of {}", choices.join(", "))
        };
        if unknown == "workers" && key != "workers" {
            // TOML puts every key after a [table] header into that table.
            text = format!(
                "{text}; `workers` is a top-level key: move it above the first [table] header"
            );
        } else if let Some(close) = closest(unknown, &choices) {
            text = format!("{text} (did you mean `{close}`?)");
        }
        return Problem::new(key, text);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let missing = rest.trim_end_matches('`');
        return Problem::new(join_key(&key, missing), "required key is missing");
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let choices: Vec<String> = backticked(expected)
            .iter()
            .map(|choice| format!("\"{choice}\""))
            .collect();
        return Problem::new(
            key,
            format!(
                "unknown value \"{value}\"; expected one of {}",
                choices.join(", ")
            ),
        );
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        return Problem::new(
            key,
            format!("wrong type: expected {}, got {got}", plain_type(expected)),
        );
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        return Problem::new(
            key,
            format!("out of range: expected {}, got {got}", plain_type(expected)),
        );
    }
    Problem::new(key, message.trim().to_owned())
}

/// The names between backticks in serde's "expected one of `a`, `b`".
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Serde's Rust type names in words.
fn plain_type(expected: &str) -> String {
    let expected = expected.trim();
    let words = match expected {
        "u16" => "an integer from 0 to 65535",
        "u32" => "an integer from 0 to 4294967295",
        "usize" | "u64" => "a non-negative integer",
        "a string" => "a string",
        "a sequence" => "an array",
        "a boolean" => "true or false",
        _ if expected.starts_with("struct ") || expected.starts_with("enum ") => "a table",
        _ => return expected.to_owned(),
    };
    words.to_owned()
}

/// The choice within edit distance 2 of a misspelt key, if exactly one is
/// that close: `rx_queus` → `rx_queues`.
fn closest(unknown: &str, choices: &[String]) -> Option<String> {
    let mut best: Option<(usize, &String)> = None;
    for choice in choices {
        let distance = edit_distance(unknown, choice);
        if distance <= 2 && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, choice));
        }
    }
    best.map(|(_, choice)| choice.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("rx_queus", "rx_queues"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn closest_suggests_only_near_keys() {
        let choices: Vec<String> = ["name", "rx_queues", "tx_queues"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(closest("rx_queus", &choices).as_deref(), Some("rx_queues"));
        assert_eq!(closest("completely_else", &choices), None);
    }

    #[test]
    fn line_of_offset_is_one_based() {
        let text = "a = 1\nb = 2\nc = 3\n";
        assert_eq!(line_of_offset(text, 0), 1);
        assert_eq!(line_of_offset(text, 6), 2);
        assert_eq!(line_of_offset(text, 12), 3);
        assert_eq!(line_of_offset(text, 10_000), 4);
    }
}

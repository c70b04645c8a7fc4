//! Errors of profile loading: every one names the file and the key.
//!
//! A profile is read once at start-up, long before the first packet, so the
//! only thing that matters here is that a user who typed `rx_queus` or
//! `rx_descriptors = 1000` learns exactly where and why from one message,
//! without having to decode a DPDK `EAL: ... failed` line later.

use palisade_config_check::{Problem, display_problems};

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The profile file could not be read from disk.
    #[error("{origin}: cannot read the profile: {source}")]
    Read {
        /// The path as given.
        origin: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The text is not TOML at all (unbalanced quotes, duplicate keys, ...).
    #[error("{origin}:{line}:{column}: not valid TOML: {message}")]
    Syntax {
        /// The file name or other label the text came from.
        origin: String,
        /// 1-based line of the first syntax error.
        line: usize,
        /// 1-based column of the first syntax error.
        column: usize,
        /// The TOML parser's description.
        message: String,
    },
    /// The TOML is well formed but the profile is wrong: an unknown key, a
    /// wrong type, or a value that DPDK would reject or misuse. All
    /// problems found are reported at once so a user fixes them in one go.
    #[error("{}", display_problems(origin, problems))]
    Invalid {
        /// The file name or other label the text came from.
        origin: String,
        /// At least one problem, in the order of the file.
        problems: Vec<Problem>,
    },
}

impl ProfileError {
    /// The problems at keys, empty for read and syntax errors; lets a
    /// caller (or a test) check which key was blamed without parsing text.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems, .. } => problems,
            Self::Read { .. } | Self::Syntax { .. } => &[],
        }
    }
}

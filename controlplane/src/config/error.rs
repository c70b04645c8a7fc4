//! Errors of configuration loading: every one names the file, the key and,
//! when known, the line.
//!
//! The configuration is read once at start-up (and later only seeds the
//! store), so what matters is that one run shows a user *every* mistake in
//! the file at its key, in the words of the EC2 API where EC2 has words for
//! it, instead of a policy compiler error about an id they never wrote.

use palisade_config_check::{Problem, display_problems};

/// Why a configuration could not be loaded or turned into a policy.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read from disk.
    #[error("{origin}: cannot read the configuration: {source}")]
    Read {
        /// The path as given.
        origin: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The text is not TOML at all (unbalanced quotes, a key set twice, ...).
    #[error("{origin}:{line}:{column}: not valid TOML: {message}")]
    Syntax {
        /// The file name or other label the text came from.
        origin: String,
        /// 1-based line of the first syntax error.
        line: usize,
        /// 1-based column (in characters) of the first syntax error.
        column: usize,
        /// The TOML parser's description.
        message: String,
    },
    /// The TOML is well formed but describes something EC2 (or the
    /// appliance) would refuse. Every problem found is listed, in file
    /// order, so a user fixes them in one pass.
    #[error("{}", display_problems(origin, problems))]
    Invalid {
        /// The file name or other label the text came from.
        origin: String,
        /// At least one problem.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems at keys, empty for read and syntax errors; lets a caller
    /// (or a test) check which key was blamed without parsing text.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems, .. } => problems,
            Self::Read { .. } | Self::Syntax { .. } => &[],
        }
    }
}

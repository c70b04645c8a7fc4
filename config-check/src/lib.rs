//! The checking that the appliance's two TOML files share: the DPDK
//! profile (`palisade-dpdk-config`) and the VPC configuration
//! (`palisade-controlplane`).
//!
//! Both are read once at start-up, long before the first packet, and both
//! promise the same thing: every mistake is reported as
//! `FILE:LINE: KEY: MESSAGE`, in words for someone editing TOML rather than
//! for a Rust programmer. The pieces of that promise live here so the two
//! formats cannot drift apart in how they word or place a problem:
//!
//! 1. [`check_syntax`]: is the text TOML at all, and if not, at which line
//!    and column (in characters);
//! 2. [`deserialize`]: the text into a format's raw structs, with serde's
//!    first shape error rewritten at its key path ([`Wording`] holds what
//!    differs between formats);
//! 3. a format's own semantic checks collect [`Problem`]s, which
//!    [`locate_and_order`] gives lines and puts in file order;
//! 4. [`display_problems`] renders them for the format's error type.

mod locate;
mod problem;
mod rewrite;
mod syntax;

pub use locate::{attach_lines, line_of_offset, locate_and_order};
pub use problem::{Problem, display_problems};
pub use rewrite::{Wording, deserialize, key_path};
pub use syntax::{TomlSyntax, check_syntax};

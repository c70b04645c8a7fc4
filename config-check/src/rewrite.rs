//! Serde's shape errors in the words of someone editing a TOML file.
//!
//! A format's raw structs mirror its file one to one with
//! `deny_unknown_fields`, so serde catches misspelt keys and wrong types.
//! Serde's own messages are written for Rust programmers
//! (`invalid type: string "x", expected u16`); this module rewrites them
//! (`wrong type: expected an integer from 0 to 65535, got string "x"`) and
//! puts them at the key path a user writes.

use serde::de::DeserializeOwned;
use serde_path_to_error::{Path, Segment};

use crate::{Problem, line_of_offset};

/// What one file format words differently from the others.
#[derive(Debug, Clone, Copy)]
pub struct Wording {
    /// Serde's `expected` texts of the format's own types, with the words a
    /// TOML author should read instead: `("a protocol", "a protocol name
    /// or number")`. Checked before the common Rust type names.
    pub type_words: &'static [(&'static str, &'static str)],
    /// Plain (non-table) keys of the top-level table. TOML puts every key
    /// after a `[table]` header into that table, so one of these found
    /// unknown inside a table is almost surely misplaced, and the message
    /// says so instead of suggesting a near key.
    pub top_level_keys: &'static [&'static str],
}

/// Deserializes `text` (already known to be valid TOML, see
/// [`check_syntax`](crate::check_syntax)) into a format's raw structs, or
/// describes the first shape error at its key path and line.
pub fn deserialize<T: DeserializeOwned>(text: &str, wording: &Wording) -> Result<T, Problem> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let line = error
            .inner()
            .span()
            .map(|span| line_of_offset(text, span.start));
        let mut problem = describe(key_path(error.path()), error.inner().message(), wording);
        problem.line = line;
        problem
    })
}

/// Renders a serde path the way a user writes keys: `ports[0].rx_queues`.
pub fn key_path(path: &Path) -> String {
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
fn describe(key: String, message: &str, wording: &Wording) -> Problem {
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
        if wording.top_level_keys.contains(&unknown) && key != unknown {
            text = format!(
                "{text}; `{unknown}` is a top-level key: move it above the first [table] header"
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
            format!(
                "wrong type: expected {}, got {got}",
                plain_type(expected, wording)
            ),
        );
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        return Problem::new(
            key,
            format!(
                "out of range: expected {}, got {got}",
                plain_type(expected, wording)
            ),
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
fn plain_type(expected: &str, wording: &Wording) -> String {
    let expected = expected.trim();
    if let Some((_, words)) = wording
        .type_words
        .iter()
        .find(|(rust, _)| *rust == expected)
    {
        return (*words).to_owned();
    }
    let words = match expected {
        "u16" => "an integer from 0 to 65535",
        "u32" => "an integer from 0 to 4294967295",
        "i64" => "an integer",
        "usize" | "u64" => "a non-negative integer",
        "a string" => "a string",
        "a sequence" => "an array",
        "a boolean" => "true or false",
        _ if expected.starts_with("struct ") || expected.starts_with("enum ") => "a table",
        _ => return expected.to_owned(),
    };
    words.to_owned()
}

/// The choice within edit distance 2 of a misspelt key, the nearest (first
/// of equals) if several are: `rx_queus` → `rx_queues`.
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
    use serde::Deserialize;

    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("rx_queus", "rx_queues"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("é", "e"), 1);
    }

    #[test]
    fn closest_suggests_only_near_keys() {
        let choices: Vec<String> = ["name", "rx_queues", "tx_queues", "from_port"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(closest("rx_queus", &choices).as_deref(), Some("rx_queues"));
        assert_eq!(closest("from_prot", &choices).as_deref(), Some("from_port"));
        // Both at distance 1; the first listed wins.
        assert_eq!(closest("ux_queues", &choices).as_deref(), Some("rx_queues"));
        assert_eq!(closest("completely_else", &choices), None);
    }

    /// A small format exercising every message kind.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Top {
        workers: Option<Vec<usize>>,
        #[serde(default)]
        table: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
        queues: Option<u16>,
        mode: Option<Mode>,
        on: Option<bool>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    enum Mode {
        NoHuge,
        InMemory,
    }

    const PLAIN: Wording = Wording {
        type_words: &[],
        top_level_keys: &[],
    };
    const WITH_WORKERS: Wording = Wording {
        type_words: &[("a boolean", "yes or no")],
        top_level_keys: &["workers"],
    };

    fn problem(text: &str, wording: &Wording) -> Problem {
        deserialize::<Top>(text, wording).unwrap_err()
    }

    #[test]
    fn a_valid_text_deserializes() {
        let top: Top = deserialize(
            "workers = [1]\n[[table]]\nname = \"a\"\nmode = \"no-huge\"\n",
            &PLAIN,
        )
        .unwrap();
        assert_eq!(top.workers, Some(vec![1]));
        assert!(matches!(top.table[0].mode, Some(Mode::NoHuge)));
        let _ = Mode::InMemory;
    }

    #[test]
    fn unknown_key_lists_choices_and_suggests_a_near_one() {
        let problem = problem("[[table]]\nname = \"a\"\nquees = 1\n", &PLAIN);
        assert_eq!(problem.key, "table[0].quees");
        assert_eq!(problem.line, Some(3));
        assert_eq!(
            problem.message,
            "unknown key; expected one of name, queues, mode, on (did you mean `queues`?)"
        );
    }

    #[test]
    fn misplaced_top_level_key_says_where_it_belongs() {
        let text = "[[table]]\nname = \"a\"\nworkers = [1]\n";
        assert_eq!(
            problem(text, &WITH_WORKERS).message,
            "unknown key; expected one of name, queues, mode, on; \
             `workers` is a top-level key: move it above the first [table] header"
        );
        // Without the format saying so, no hint (and no near key either).
        assert_eq!(
            problem(text, &PLAIN).message,
            "unknown key; expected one of name, queues, mode, on"
        );
    }

    #[test]
    fn missing_key_is_blamed_at_its_own_path() {
        let problem = problem("[[table]]\nqueues = 1\n", &PLAIN);
        assert_eq!(problem.key, "table[0].name");
        assert_eq!(problem.message, "required key is missing");
    }

    #[test]
    fn unknown_value_lists_the_quoted_choices() {
        let problem = problem("[[table]]\nname = \"a\"\nmode = \"huge\"\n", &PLAIN);
        assert_eq!(problem.key, "table[0].mode");
        assert_eq!(
            problem.message,
            "unknown value \"huge\"; expected one of \"no-huge\", \"in-memory\""
        );
    }

    #[test]
    fn wrong_type_and_range_use_words_not_rust_types() {
        let wrong = problem("[[table]]\nname = 1\n", &PLAIN);
        assert_eq!(wrong.key, "table[0].name");
        assert_eq!(
            wrong.message,
            "wrong type: expected a string, got integer `1`"
        );
        let range = problem("[[table]]\nname = \"a\"\nqueues = 70000\n", &PLAIN);
        assert_eq!(
            range.message,
            "out of range: expected an integer from 0 to 65535, got integer `70000`"
        );
        let table = problem("table = 3\n", &PLAIN);
        assert_eq!(
            table.message,
            "wrong type: expected an array, got integer `3`"
        );
    }

    #[test]
    fn a_format_words_its_own_types() {
        let text = "[[table]]\nname = \"a\"\non = 1\n";
        assert_eq!(
            problem(text, &PLAIN).message,
            "wrong type: expected true or false, got integer `1`"
        );
        assert_eq!(
            problem(text, &WITH_WORKERS).message,
            "wrong type: expected yes or no, got integer `1`"
        );
    }

    #[test]
    fn unrecognised_messages_pass_through_trimmed() {
        let problem = describe(String::new(), "  something new  ", &PLAIN);
        assert_eq!(problem.key, "");
        assert_eq!(problem.message, "something new");
    }
}

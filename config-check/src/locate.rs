//! Finds the line of a key path in TOML text, so semantic problems can
//! point at a line just like serde's shape errors do.
//!
//! The text is deserialized a second time into a tree that keeps toml's
//! span for every value; a problem's key path (`ports[1].rx_queues`) is then
//! walked down that tree. A key the user left out (a default was used) gets
//! the line of its nearest written ancestor, e.g. the `[[ports]]` table.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use crate::Problem;

enum Node {
    Table(BTreeMap<String, Spanned<Node>>),
    Array(Vec<Spanned<Node>>),
    Leaf,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.insert(key, value);
        }
        Ok(Node::Table(entries))
    }
}

/// One step of a key path.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn steps(path: &str) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part
            .split_once('[')
            .map_or((part, ""), |(key, rest)| (key, rest));
        if !key.is_empty() {
            steps.push(Step::Key(key));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(index) = index.parse() {
                steps.push(Step::Index(index));
            }
            rest = after.trim_start_matches('[');
        }
    }
    steps
}

/// 1-based line number of a byte offset; an offset past the end counts
/// as the line after the last newline.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    // Byte-wise, so an offset inside a multi-byte character cannot panic.
    text.as_bytes()[..end].split(|&byte| byte == b'\n').count()
}

/// Sets `line` on every problem that has none and whose key (or an
/// ancestor of it) can be found in `text`. Text that is not TOML leaves
/// every line unset.
pub fn attach_lines(text: &str, problems: &mut [Problem]) {
    let Ok(root) = Node::deserialize(toml::Deserializer::new(text)) else {
        return;
    };
    for problem in problems.iter_mut().filter(|problem| problem.line.is_none()) {
        let mut node = &root;
        let mut offset = None;
        for step in steps(&problem.key) {
            let next = match (node, step) {
                (Node::Table(entries), Step::Key(key)) => entries.get(key),
                (Node::Array(items), Step::Index(index)) => items.get(index),
                _ => None,
            };
            let Some(next) = next else { break };
            offset = Some(next.span().start);
            node = next.get_ref();
        }
        problem.line = offset.map(|offset| line_of_offset(text, offset));
    }
}

/// Gives problems their lines and puts them in file order, the order a
/// user fixes them in. Stable, so problems on one line keep the order of
/// the checks; problems with no line go last.
pub fn locate_and_order(text: &str, mut problems: Vec<Problem>) -> Vec<Problem> {
    attach_lines(text, &mut problems);
    problems.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_offset_is_one_based() {
        let text = "a = 1\nb = 2\nc = 3\n";
        assert_eq!(line_of_offset(text, 0), 1);
        assert_eq!(line_of_offset(text, 6), 2);
        assert_eq!(line_of_offset(text, 12), 3);
        assert_eq!(line_of_offset(text, 10_000), 4);
    }

    #[test]
    fn line_of_offset_inside_a_character_does_not_panic() {
        assert_eq!(line_of_offset("é\né", 1), 1);
        assert_eq!(line_of_offset("é\né", 4), 2);
    }

    #[test]
    fn steps_split_keys_and_indices() {
        assert_eq!(
            steps("security_group[1].ingress[0].from_port"),
            [
                Step::Key("security_group"),
                Step::Index(1),
                Step::Key("ingress"),
                Step::Index(0),
                Step::Key("from_port"),
            ]
        );
        assert_eq!(
            steps("a[2][3]"),
            [Step::Key("a"), Step::Index(2), Step::Index(3)]
        );
        assert_eq!(steps(""), []);
    }

    const TEXT: &str = "\
workers = [1]

[eal]
lcores = [0, 1]

[[ports]]
name = \"a\"

[[ports]]
name = \"b\"
rx_queues = 4
";

    fn line_of(key: &str) -> Option<usize> {
        let mut problems = [Problem::new(key, "x")];
        attach_lines(TEXT, &mut problems);
        problems[0].line
    }

    #[test]
    fn written_keys_get_their_own_line() {
        assert_eq!(line_of("workers"), Some(1));
        assert_eq!(line_of("eal.lcores"), Some(4));
        assert_eq!(line_of("ports[1].name"), Some(10));
        assert_eq!(line_of("ports[1].rx_queues"), Some(11));
    }

    #[test]
    fn missing_keys_get_their_nearest_written_ancestor() {
        // The first `[[ports]]` header.
        assert_eq!(line_of("ports[0].rx_queues"), Some(6));
        // The `[eal]` header.
        assert_eq!(line_of("eal.main_lcore"), Some(3));
        assert_eq!(line_of("mempool.mbufs"), None);
        assert_eq!(line_of(""), None);
    }

    #[test]
    fn a_known_line_is_kept() {
        let mut problems = [Problem {
            key: "workers".to_owned(),
            line: Some(99),
            message: "x".to_owned(),
        }];
        attach_lines(TEXT, &mut problems);
        assert_eq!(problems[0].line, Some(99));
    }

    #[test]
    fn text_that_is_not_toml_leaves_lines_unset() {
        let mut problems = [Problem::new("a", "x")];
        attach_lines("a = = 1", &mut problems);
        assert_eq!(problems[0].line, None);
    }

    #[test]
    fn problems_come_in_file_order_stably_unlocated_last() {
        let problems = vec![
            Problem::new("nowhere", "1"),
            Problem::new("ports[1].name", "2"),
            Problem::new("workers", "3"),
            Problem::new("ports[1].name", "4"),
        ];
        let ordered = locate_and_order(TEXT, problems);
        let messages: Vec<&str> = ordered.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages, ["3", "2", "4", "1"]);
    }
}

//! Finds the line of a key path in configuration text, so semantic problems
//! can point at a line just like serde's shape errors do.
//!
//! The same technique as `palisade-dpdk-config`'s locator (that crate keeps
//! it private; a configuration and a DPDK profile are separate files with
//! separate error types).
//!
//! The text is deserialized a second time into a tree that keeps toml's
//! span for every value; a problem's key path
//! (`security_group[1].ingress[0].from_port`) is then walked down that tree. A key the user left out (a default was used) gets
//! the line of its nearest written ancestor, e.g. the `[[eni]]` table.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::error::Problem;
use super::raw::line_of_offset;

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

/// Sets `line` on every problem whose key can be found in `text`.
pub(crate) fn attach_lines(text: &str, problems: &mut [Problem]) {
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

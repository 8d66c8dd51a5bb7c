//! Reading the leaves of the raw policy (numbers, strings, lists) out of the JSON tree: the JSON
//! type only, exactly as serde reads the same types in [`super::raw`].

use super::collect::FromNode;
use super::duration::DurationError;
use super::json::{show, Node};
use super::names::{seen_before, NameMap};
use super::problem::At;
use super::raw::*;

impl FromNode for bool {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        match node {
            Node::Bool(b) => Some(*b),
            other => fail(at, other, "is not true or false"),
        }
    }
}

impl FromNode for i64 {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        match node {
            Node::Number(n) if n.is_f64() => fail(
                at,
                node,
                "is not an integer, must be written without a decimal point or exponent",
            ),
            Node::Number(n) => match n.as_i64() {
                Some(i) => Some(i),
                None => fail(at, node, "is too large"),
            },
            other => fail(at, other, "is not a number, must be an integer"),
        }
    }
}

impl FromNode for f64 {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        match node {
            Node::Number(n) => match n.as_f64() {
                Some(x) => Some(x),
                None => fail(at, node, "is not a number"),
            },
            other => fail(at, other, "is not a number"),
        }
    }
}

impl FromNode for String {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        match node {
            Node::String(s) => Some(s.clone()),
            other => fail(at, other, "is not a string"),
        }
    }
}

impl<T: FromNode> FromNode for Vec<T> {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        let Node::Array(items) = node else {
            return fail(at, node, "is not an array");
        };
        let mut read = Vec::with_capacity(items.len());
        let mut complete = true;
        for (i, item) in items.iter().enumerate() {
            match at.index(i, |at| T::from_node(item, at)) {
                Some(value) => read.push(value),
                None => complete = false,
            }
        }
        // A list with a bad element is left out whole: using the rest would change its meaning.
        complete.then_some(read)
    }
}

impl<T: FromNode> FromNode for Toggle<T> {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        match node {
            Node::Null => Some(Toggle::Off),
            other => T::from_node(other, at).map(Toggle::On),
        }
    }
}

/// A JSON object with free-form keys: the fallback headers.
impl<T: FromNode> FromNode for Entries<T> {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        let Node::Object(entries) = node else {
            return fail(at, node, "is not an object");
        };
        let mut read = Vec::with_capacity(entries.len());
        let mut complete = true;
        let mut seen = NameMap::default();
        for (key, value) in entries {
            let first = !seen_before(&mut seen, key);
            let item = at.field(key, |at| {
                if first {
                    T::from_node(value, at)
                } else {
                    fail(at, value, "is a second value for this key, set it once")
                }
            });
            match item {
                Some(item) => read.push((key.clone(), item)),
                None => complete = false,
            }
        }
        complete.then_some(Entries(read))
    }
}

impl FromNode for RawDuration {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        match node {
            Node::Number(n) => n.as_f64().map(RawDuration::Seconds),
            Node::String(s) => Some(RawDuration::Text(s.clone())),
            _ => None,
        }
        .or_else(|| fail(at, node, &DurationError::Malformed.to_string()))
    }
}

impl FromNode for RawJitter {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        let name = match node {
            Node::Bool(b) => return Some(RawJitter::Switch(*b)),
            Node::String(s) => match s.as_str() {
                "none" => Some(JitterName::None),
                "proportional" => Some(JitterName::Proportional),
                "full" => Some(JitterName::Full),
                "equal" => Some(JitterName::Equal),
                "decorrelated" => Some(JitterName::Decorrelated),
                _ => None,
            },
            _ => None,
        };
        match name {
            Some(name) => Some(RawJitter::Named(name)),
            None => fail(
                at,
                node,
                "is not a jitter, must be true, false, \"none\", \"proportional\", \"full\", \
                 \"equal\" or \"decorrelated\"",
            ),
        }
    }
}

impl FromNode for RawOutcome {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        match node {
            Node::Number(n) if !n.is_f64() => n.as_i64().map(RawOutcome::Code),
            Node::String(s) => Some(RawOutcome::Name(s.clone())),
            _ => None,
        }
        .or_else(|| fail(at, node, OUTCOME_RULE))
    }
}

/// What `failure_on` and `retry_on` entries may be.
pub(crate) const OUTCOME_RULE: &str = "is not an outcome, must be \"5xx\", \"gateway-error\", \
     \"reset\", \"connect-failure\", \"timeout\" or a status code";

impl FromNode for RawMode {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        let mode = match node {
            Node::String(s) => match s.as_str() {
                "enforce" => Some(RawMode::Enforce),
                "shadow" => Some(RawMode::Shadow),
                "forced_open" => Some(RawMode::ForcedOpen),
                "disabled" => Some(RawMode::Disabled),
                _ => None,
            },
            _ => None,
        };
        mode.or_else(|| {
            fail(
                at,
                node,
                "is not a mode, must be \"enforce\", \"shadow\", \"forced_open\" or \"disabled\"",
            )
        })
    }
}

/// Records that `node` breaks `rule` and reads nothing.
fn fail<T>(at: &mut At, node: &Node, rule: &str) -> Option<T> {
    report(at, node, rule);
    None
}

#[inline(never)]
fn report(at: &mut At, node: &Node, rule: &str) {
    at.problem(show(node), rule);
}

//! A JSON tree that keeps what `serde_json::Value` loses: the order of an object's keys (the
//! fallback headers are sent in the order written) and keys written twice (an error, where a map
//! would silently keep the last one).
//!
//! The policy text is parsed into a [`Node`] once; `read` then walks it and reports every
//! problem, which serde's derived deserializers cannot do (they stop at the first).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;
use std::fmt;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Node>),
    /// Keys in the order written, duplicates kept.
    Object(Vec<(String, Node)>),
}

/// Longest rendering of a value in a message; longer ones are cut with `…`. A message names the
/// value so the reader can find it, not to reproduce a whole object.
const MAX_SHOWN_CHARS: usize = 60;

/// The compact JSON text of a value, cut to [`MAX_SHOWN_CHARS`].
pub(crate) fn show<T: Serialize + ?Sized>(value: &T) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| String::from("<unprintable>"));
    if text.chars().count() <= MAX_SHOWN_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_SHOWN_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// A string as JSON, cut to [`MAX_SHOWN_CHARS`].
pub(crate) fn quote(text: &str) -> String {
    show(text)
}

/// A number as a user would write it: `90`, not `90.0`, when it is whole.
pub(crate) fn show_number(x: f64) -> String {
    // Below 2^53 every whole f64 is an exact integer.
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        show(&x)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        // serde_json refuses a number beyond f64's range itself ("number out of range", see the
        // tests), so `v` is finite and `from_f64` succeeds. The fallback is not an error on
        // purpose: `E::custom` links serde_json's message parsing and with it core's substring
        // search and string-slicing panic messages, about 12 KB of the filter's `.wasm`.
        Ok(Number::from_f64(v).map_or(Node::Null, Node::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Node::Object(entries))
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_unit(),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Number(n) => n.serialize(serializer),
            Node::String(s) => serializer.serialize_str(s),
            Node::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> Node {
        serde_json::from_str(text).expect("test JSON is valid")
    }

    #[test]
    fn object_keys_keep_their_written_order_and_duplicates() {
        let Node::Object(entries) = node(r#"{"b": 1, "a": 2, "b": 3}"#) else {
            panic!("an object parses to Node::Object");
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "b"], "order and the duplicate are kept");
    }

    #[test]
    fn a_node_renders_back_to_compact_json() {
        let text = r#"{"z":[1,-2,2.5,null,true,"x"],"a":{}}"#;
        assert_eq!(show(&node(text)), text, "rendering keeps order and types");
    }

    #[test]
    fn strings_are_escaped_as_json() {
        let text = "q\"b\\n\nr\rt\tnul\u{0}é";
        assert_eq!(quote(text), r#""q\"b\\n\nr\rt\tnul\u0000é""#);
    }

    #[test]
    fn numbers_show_as_written() {
        assert_eq!(show_number(90.0), "90", "whole numbers without a fraction");
        assert_eq!(show_number(-0.5), "-0.5");
        assert_eq!(show_number(0.1), "0.1", "the shortest text that reads back");
        assert_eq!(
            show_number(1e300),
            "1e+300",
            "exponents as serde_json writes them"
        );
    }

    #[test]
    fn numbers_beyond_f64_never_reach_the_tree() {
        for text in ["1e400", "-1e400", "[1.5e999]"] {
            let error = serde_json::from_str::<Node>(text).expect_err(text);
            assert!(
                error.to_string().starts_with("number out of range"),
                "{text}: serde_json refuses it before the visitor sees a non-finite f64: {error}"
            );
        }
        assert_eq!(
            node("1.7e308"),
            Node::Number(Number::from_f64(1.7e308).unwrap())
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = format!("\"{}\"", "x".repeat(200));
        let shown = show(&node(&long));
        assert_eq!(shown.chars().count(), MAX_SHOWN_CHARS, "cut to the limit");
        assert!(shown.ends_with('…'), "a cut value says it was cut: {shown}");
    }
}

//! An HTTP header map with Envoy's semantics: lower-case names, repeated names kept in order,
//! `get` answering the first value; and the [`Message`] Envoy hands around (headers, body,
//! trailers).
//!
//! Envoy stores every name lower-cased (`Http::LowerCaseString`), so a filter that adds
//! `X-Thing` reads it back as `x-thing`; `replace` is Envoy's `setCopy`, which rewrites the
//! first occurrence and leaves later ones alone (`envoy/http/header_map.h`).
//!
//! # Values are bytes
//! Envoy keeps header values as bytes and accepts obs-text (0x80–0xFF) in them: its validity
//! check only refuses NUL, CR and LF (`HeaderUtility::headerValueIsValid`,
//! `source/common/http/header_utility.cc`, with `ObsTextOption::kAllow`), and the wasm host hands
//! the bytes over as they are (`Context::getHeaderMapPairs`). So a filter can meet a value that is
//! not UTF-8. The map stores bytes; the text accessors ([`HeaderMap::get`],
//! [`HeaderMap::get_all`]) answer only UTF-8 values, [`HeaderMap::get_bytes`] and
//! [`HeaderMap::iter_bytes`] answer everything.

use std::borrow::Cow;
use std::fmt;

/// An ordered list of `(name, value)` pairs, names lower-cased, values as bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(String, Vec<u8>)>,
}

impl HeaderMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name` (any case), if it is UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of `name` (any case), as bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Every UTF-8 value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(n, _)| *n == name)
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .collect()
    }

    /// Appends a pair (Envoy's `addCopy`).
    pub fn add(&mut self, name: &str, value: &str) {
        self.add_bytes(name, value.as_bytes());
    }

    /// Appends a pair whose value may be any bytes.
    pub fn add_bytes(&mut self, name: &str, value: &[u8]) {
        self.entries
            .push((name.to_ascii_lowercase(), value.to_vec()));
    }

    /// Rewrites the first value of `name`, or appends it (Envoy's `setCopy`).
    pub fn replace(&mut self, name: &str, value: &str) {
        self.replace_bytes(name, value.as_bytes());
    }

    /// [`HeaderMap::replace`] with a value that may be any bytes.
    pub fn replace_bytes(&mut self, name: &str, value: &[u8]) {
        let name = name.to_ascii_lowercase();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value.to_vec(),
            None => self.entries.push((name, value.to_vec())),
        }
    }

    /// Removes every value of `name`; answers how many went.
    pub fn remove(&mut self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        let before = self.entries.len();
        self.entries.retain(|(n, _)| *n != name);
        before - self.entries.len()
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The pairs in order, values as text (bytes that are not UTF-8 replaced).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
        self.entries
            .iter()
            .map(|(n, v)| (n.as_str(), String::from_utf8_lossy(v)))
    }

    /// The pairs in order, values as bytes.
    pub fn iter_bytes(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The pairs as a slice.
    pub fn pairs(&self) -> &[(String, Vec<u8>)] {
        &self.entries
    }

    /// The sum of name and value lengths (Envoy's `byteSize`).
    pub fn byte_size(&self) -> usize {
        self.entries.iter().map(|(n, v)| n.len() + v.len()).sum()
    }

    /// A map of pairs as the wire carries them (names lower-cased; a name that is not UTF-8 has
    /// its bad bytes replaced).
    pub(crate) fn from_byte_pairs(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.add_bytes(&String::from_utf8_lossy(&n), &v);
        }
        map
    }
}

impl fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| format!("{n}: {v}")))
            .finish()
    }
}

impl<'a> FromIterator<&'a (String, String)> for HeaderMap {
    fn from_iter<I: IntoIterator<Item = &'a (String, String)>>(iter: I) -> Self {
        iter.into_iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for HeaderMap {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut map = HeaderMap::new();
        for (n, v) in iter {
            map.add(n.as_ref(), v.as_ref());
        }
        map
    }
}

/// An HTTP message as Envoy hands it around: headers (with pseudo-headers), body, trailers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Message {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_cased_and_get_answers_the_first_value() {
        let mut map = HeaderMap::new();
        map.add("X-Thing", "one");
        map.add("x-thing", "two");
        assert_eq!(map.get("X-THING"), Some("one"), "lookup ignores case");
        assert_eq!(
            map.get_all("x-thing"),
            vec!["one", "two"],
            "both kept in order"
        );
    }

    #[test]
    fn replace_rewrites_only_the_first_occurrence_like_envoys_set_copy() {
        let mut map: HeaderMap = [("a", "1"), ("a", "2")].into_iter().collect();
        map.replace("a", "3");
        assert_eq!(map.get_all("a"), vec!["3", "2"]);
        map.replace("b", "4");
        assert_eq!(map.get("b"), Some("4"), "a missing name is appended");
    }

    #[test]
    fn a_value_that_is_not_utf8_is_kept_as_bytes_and_hidden_from_the_text_accessors() {
        let mut map = HeaderMap::new();
        map.add_bytes("x-latin", b"caf\xe9");
        map.add("x-latin", "plain");
        assert_eq!(map.get_bytes("x-latin"), Some(&b"caf\xe9"[..]));
        assert_eq!(map.get("x-latin"), None, "the first value is not text");
        assert_eq!(map.get_all("x-latin"), vec!["plain"]);
        assert_eq!(map.byte_size(), 2 * "x-latin".len() + 4 + 5);
    }

    #[test]
    fn remove_drops_every_value() {
        let mut map: HeaderMap = [("a", "1"), ("b", "x"), ("a", "2")].into_iter().collect();
        assert_eq!(map.remove("A"), 2);
        assert_eq!(map.len(), 1);
    }
}

//! An HTTP header map with Envoy's semantics: lower-case names, repeated names kept in order,
//! `get` answering the first value.
//!
//! Envoy stores every name lower-cased (`Http::LowerCaseString`), so a filter that adds
//! `X-Thing` reads it back as `x-thing`; `replace` is Envoy's `setCopy`, which rewrites the
//! first occurrence and leaves later ones alone (`envoy/http/header_map.h`).

use std::fmt;

/// An ordered list of `(name, value)` pairs, names lower-cased.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(String, String)>,
}

impl HeaderMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Appends a pair (Envoy's `addCopy`).
    pub fn add(&mut self, name: &str, value: &str) {
        self.entries
            .push((name.to_ascii_lowercase(), value.to_string()));
    }

    /// Rewrites the first value of `name`, or appends it (Envoy's `setCopy`).
    pub fn replace(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.entries.push((name, value.to_string())),
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

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The pairs as a slice.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.entries
    }

    /// The sum of name and value lengths (Envoy's `byteSize`).
    pub fn byte_size(&self) -> usize {
        self.entries.iter().map(|(n, v)| n.len() + v.len()).sum()
    }
}

impl fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(n, v)| format!("{n}: {v}")))
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
    fn remove_drops_every_value() {
        let mut map: HeaderMap = [("a", "1"), ("b", "x"), ("a", "2")].into_iter().collect();
        assert_eq!(map.remove("A"), 2);
        assert_eq!(map.len(), 1);
    }
}

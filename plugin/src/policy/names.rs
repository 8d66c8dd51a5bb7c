//! Names to indexes (clusters, routes, scopes, keys seen), hashed with FNV-1a.
//!
//! The names come from the operator's own policy, so there is no hash flooding to defend against,
//! and std's randomly seeded hasher would make parsing a config read WASI randomness (and carry
//! its error strings into the `.wasm`). One map type for every use keeps one copy of the code.
//!
//! The map is `hashbrown`'s, which the proxy-wasm SDK links for its own context maps: std's
//! `HashMap` is a second copy of the same table code in the `.wasm` (about 1.6 KB). The glue's
//! maps keyed by cluster names can use [`FnvBuildHasher`] too, which keeps `foldhash`'s string
//! hashing out (the SDK only hashes `u32`s).

use std::hash::{BuildHasherDefault, Hasher};

/// Builds [`Fnv`] hashers.
pub(crate) type FnvBuildHasher = BuildHasherDefault<Fnv>;

/// A map from names to indexes.
pub(crate) type NameMap = hashbrown::HashMap<String, usize, FnvBuildHasher>;

/// The 64-bit FNV-1a hash.
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Whether `name` was seen before; records it if not.
pub(crate) fn seen_before(seen: &mut NameMap, name: &str) -> bool {
    if seen.contains_key(name) {
        return true;
    }
    seen.insert(name.to_owned(), seen.len());
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn fnv(s: &str) -> u64 {
        let mut h = Fnv::default();
        h.write(s.as_bytes());
        h.finish()
    }

    #[test]
    fn fnv_matches_the_published_test_vectors() {
        assert_eq!(fnv(""), 0xcbf2_9ce4_8422_2325, "the offset basis");
        assert_eq!(fnv("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn names_map_to_their_indexes_and_repeats_are_noticed() {
        let mut seen = NameMap::default();
        assert!(!seen_before(&mut seen, "payments"));
        assert!(!seen_before(&mut seen, "search"));
        assert!(seen_before(&mut seen, "payments"), "the second time");
        assert_eq!(seen.get("search"), Some(&1));
        let mut h = Fnv::default();
        "payments".hash(&mut h);
        assert_ne!(h.finish(), 0, "str hashing goes through write");
    }
}

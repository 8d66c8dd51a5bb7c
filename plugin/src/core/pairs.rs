//! A header map as the proxy-wasm host serializes it, read in place.
//!
//! `proxy_get_header_map_pairs` (ABI 0.2.1) hands the module one buffer: the number of pairs as a
//! little-endian u32, then for each pair the name's and the value's lengths as u32s, then each
//! name and each value followed by a NUL byte. The SDK turns that into two heap allocations per
//! header; the request path looks at a few names only, so the filter keeps the buffer as it came
//! and reads slices out of it, and a request kept for retries keeps the same buffer.
//!
//! Bytes that do not follow the layout never panic: iteration stops at the first pair that does
//! not fit in the buffer, and an empty or short buffer is an empty map.

/// A serialized header map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairs {
    bytes: Vec<u8>,
}

impl Pairs {
    /// The buffer as the host wrote it.
    pub fn from_bytes(bytes: Vec<u8>) -> Pairs {
        Pairs { bytes }
    }

    /// Serializes `pairs` in the host's layout (for tests and fixtures).
    pub fn serialize<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Pairs {
        let mut bytes = Vec::new();
        let count = u32::try_from(pairs.len()).unwrap_or(u32::MAX);
        bytes.extend_from_slice(&count.to_le_bytes());
        for (name, value) in pairs {
            for part in [name.as_ref(), value.as_ref()] {
                let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
                bytes.extend_from_slice(&len.to_le_bytes());
            }
        }
        for (name, value) in pairs {
            for part in [name.as_ref(), value.as_ref()] {
                bytes.extend_from_slice(part);
                bytes.push(0);
            }
        }
        Pairs { bytes }
    }

    /// Serializes the pairs of `iter` in the host's layout.
    pub fn collect<'a>(iter: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Pairs {
        let pairs: Vec<(&[u8], &[u8])> = iter.collect();
        Pairs::serialize(&pairs)
    }

    /// The buffer in the host's layout, as the ABI takes it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The pairs in order, as bytes.
    pub fn iter(&self) -> Iter<'_> {
        let count = read_u32(&self.bytes, 0).unwrap_or(0);
        // Each pair takes 8 bytes of lengths: a count the buffer cannot hold is cut to what fits.
        let count = count.min(self.bytes.len().saturating_sub(4) / 8);
        Iter {
            bytes: &self.bytes,
            count,
            next: 0,
            data: 4 + count * 8,
        }
    }

    /// Whether the map has no pairs.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The first value of `name` (compared exactly: the host's names are lower case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// Whether every name and value is UTF-8 (what the SDK can send on). Headers are nearly
    /// always ASCII, and the names and values (with their NUL ends) lie in one run after the
    /// lengths: one ASCII pass over that run answers for all of them, where a UTF-8 check per
    /// name and value cost about 200 wasm instructions each (measured with the fuel example).
    pub fn is_utf8(&self) -> bool {
        let data = self.bytes.get(self.iter().data..).unwrap_or_default();
        data.is_ascii()
            || self
                .iter()
                .all(|(n, v)| std::str::from_utf8(n).is_ok() && std::str::from_utf8(v).is_ok())
    }

    /// The pairs whose name and value are UTF-8, as text.
    pub fn iter_str(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter()
            .filter_map(|(n, v)| Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?)))
    }
}

// Inlined: on the request path every header passes through these, and at the module's size-first
// opt-level a call each cost about 190 wasm instructions per header (fuel example).
#[inline(always)]
fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(word)).ok()
}

/// The pairs of a [`Pairs`], in order.
pub struct Iter<'a> {
    bytes: &'a [u8],
    count: usize,
    next: usize,
    /// Where the next name starts.
    data: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let at = 4 + self.next * 8;
        let lengths: &[u8; 8] = self.bytes.get(at..at + 8)?.try_into().ok()?;
        let [n0, n1, n2, n3, v0, v1, v2, v3] = *lengths;
        let name_len = u32::from_le_bytes([n0, n1, n2, n3]) as usize;
        let value_len = u32::from_le_bytes([v0, v1, v2, v3]) as usize;
        let rest = self.bytes.get(self.data..)?;
        let name = rest.get(..name_len)?;
        // `name_len` is within the buffer, so these sums cannot overflow.
        let value = rest.get(name_len + 1..)?.get(..value_len)?;
        self.data += name_len + value_len + 2;
        self.next += 1;
        Some((name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_hosts_layout() {
        // proxy-wasm ABI 0.2.1: count, lengths, then NUL-terminated names and values.
        let mut bytes = vec![2, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(b":method\0GET\0a\0\0");
        let pairs = Pairs::from_bytes(bytes);
        let read: Vec<_> = pairs.iter().collect();
        assert_eq!(
            read,
            [(&b":method"[..], &b"GET"[..]), (&b"a"[..], &b""[..])]
        );
        assert_eq!(pairs.get(":method"), Some(&b"GET"[..]));
        assert_eq!(pairs.get("b"), None);
        assert_eq!(
            pairs,
            Pairs::serialize(&[(":method", "GET"), ("a", "")]),
            "serialize writes the same layout"
        );
    }

    #[test]
    fn short_or_lying_buffers_are_read_as_far_as_they_go() {
        assert_eq!(Pairs::default().iter().count(), 0);
        assert_eq!(Pairs::from_bytes(vec![1, 0]).iter().count(), 0);
        // A count of 2^32 - 1 pairs with room for none.
        assert_eq!(Pairs::from_bytes(vec![255; 4]).iter().count(), 0);
        // One pair whose name is longer than the buffer.
        let bytes = vec![1, 0, 0, 0, 200, 0, 0, 0, 1, 0, 0, 0, b'a', 0, b'b', 0];
        assert_eq!(Pairs::from_bytes(bytes).iter().count(), 0);
    }

    #[test]
    fn values_that_are_not_utf8_are_kept_as_bytes_and_flagged() {
        let pairs = Pairs::serialize(&[(&b"x"[..], &b"\xff"[..]), (&b"y"[..], &b"ok"[..])]);
        assert!(!pairs.is_utf8());
        assert_eq!(pairs.get("x"), Some(&b"\xff"[..]));
        assert_eq!(pairs.iter_str().collect::<Vec<_>>(), [("y", "ok")]);
    }

    #[test]
    fn utf8_beyond_ascii_is_utf8_and_a_stray_byte_anywhere_is_not() {
        let text = Pairs::serialize(&[("x", "caf\u{e9}"), ("\u{fc}ber", "ok")]);
        assert!(
            text.is_utf8(),
            "non-ASCII UTF-8 takes the slow check and passes it"
        );
        let bad_name = Pairs::serialize(&[(&b"ok"[..], &b"ok"[..]), (&b"\xc3"[..], &b"v"[..])]);
        assert!(!bad_name.is_utf8(), "a name cut inside a character");
        assert!(Pairs::default().is_utf8(), "no pairs, nothing to refuse");
    }

    proptest! {
        #[test]
        fn any_bytes_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let pairs = Pairs::from_bytes(bytes);
            let _ = pairs.iter().count();
            let _ = pairs.get(":method");
            let _ = pairs.is_utf8();
        }

        #[test]
        fn the_ascii_shortcut_agrees_with_checking_every_name_and_value(
            map in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..8), proptest::collection::vec(any::<u8>(), 0..12)),
                0..6,
            )
        ) {
            let pairs = Pairs::serialize(&map);
            let each = map
                .iter()
                .all(|(n, v)| std::str::from_utf8(n).is_ok() && std::str::from_utf8(v).is_ok());
            prop_assert_eq!(pairs.is_utf8(), each);
        }

        #[test]
        fn serialized_maps_read_back_exactly(
            map in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..20), proptest::collection::vec(any::<u8>(), 0..40)),
                0..20,
            )
        ) {
            let pairs = Pairs::serialize(&map);
            let read: Vec<(Vec<u8>, Vec<u8>)> =
                pairs.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
            prop_assert_eq!(read, map);
        }
    }
}

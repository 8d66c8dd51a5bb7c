//! The proxy-wasm header-pairs wire format, as proxy-wasm-cpp-host writes and reads it
//! (`src/pairs_util.cc`): used by `proxy_get_header_map_pairs`, `proxy_set_header_map_pairs`,
//! `proxy_send_local_response`, `proxy_http_call`, and map-valued properties.
//!
//! # Format
//! All integers are little-endian `u32`:
//!
//! ```text
//! count | name_len[0] value_len[0] ... name_len[n-1] value_len[n-1] | name[0] \0 value[0] \0 ...
//! ```
//!
//! Every name and value is followed by a NUL that its length does not count. Decoding follows
//! cpp-host exactly: a buffer that is truncated, has trailing bytes, lacks a NUL, holds more than
//! [`MAX_PAIRS`] pairs or more than [`MAX_BYTES`] bytes decodes to no pairs at all.

/// cpp-host's `PROXY_WASM_HOST_PAIRS_MAX_COUNT`.
pub const MAX_PAIRS: usize = 1024;
/// cpp-host's `PROXY_WASM_HOST_PAIRS_MAX_BYTES`.
pub const MAX_BYTES: usize = 1024 * 1024;

/// Serializes pairs.
pub fn encode<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Vec<u8> {
    let data: usize = pairs
        .iter()
        .map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + data);
    out.extend_from_slice(&len32(pairs.len()));
    for (n, v) in pairs {
        out.extend_from_slice(&len32(n.as_ref().len()));
        out.extend_from_slice(&len32(v.as_ref().len()));
    }
    for (n, v) in pairs {
        out.extend_from_slice(n.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

/// Deserializes pairs; anything malformed yields no pairs, as in cpp-host's `toPairs`.
pub fn decode(buf: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    try_decode(buf).unwrap_or_default()
}

fn try_decode(buf: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if buf.len() > MAX_BYTES {
        return None;
    }
    let count = read32(buf, 0)?;
    if count > MAX_PAIRS {
        return None;
    }
    let mut sizes = Vec::with_capacity(count);
    for i in 0..count {
        sizes.push((read32(buf, 4 + 8 * i)?, read32(buf, 8 + 8 * i)?));
    }
    let mut pos = 4 + 8 * count;
    let mut take = |len: usize| -> Option<Vec<u8>> {
        let end = pos.checked_add(len)?;
        let bytes = buf.get(pos..end)?.to_vec();
        (*buf.get(end)? == 0).then_some(())?;
        pos = end + 1;
        Some(bytes)
    };
    let mut pairs = Vec::with_capacity(count);
    for (name_len, value_len) in sizes {
        let name = take(name_len)?;
        let value = take(value_len)?;
        pairs.push((name, value));
    }
    (pos == buf.len()).then_some(pairs)
}

fn read32(buf: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(bytes)).ok()
}

fn len32(len: usize) -> [u8; 4] {
    u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes()
}

/// Decoded pairs as strings (invalid UTF-8 replaced), names as given.
pub(crate) fn decode_strings(buf: &[u8]) -> Vec<(String, String)> {
    decode(buf)
        .into_iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(&n).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two pairs as cpp-host marshals them: the byte fixture other hosts and SDKs agree on.
    const TWO_PAIRS: &[u8] = &[
        2, 0, 0, 0, // two pairs
        5, 0, 0, 0, 1, 0, 0, 0, // ":path" is 5 bytes, "/" is 1
        1, 0, 0, 0, 0, 0, 0, 0, // "a" is 1 byte, "" is 0
        b':', b'p', b'a', b't', b'h', 0, b'/', 0, // ":path\0/\0"
        b'a', 0, 0, // "a\0" then the empty value's "\0"
    ];

    #[test]
    fn encoding_matches_the_cpp_host_byte_fixture() {
        assert_eq!(encode(&[(":path", "/"), ("a", "")]), TWO_PAIRS);
    }

    #[test]
    fn decoding_the_fixture_gives_the_pairs_back() {
        let pairs = decode(TWO_PAIRS);
        assert_eq!(
            pairs,
            vec![
                (b":path".to_vec(), b"/".to_vec()),
                (b"a".to_vec(), Vec::new())
            ]
        );
    }

    #[test]
    fn no_pairs_is_a_four_byte_zero_count() {
        assert_eq!(encode::<&str, &str>(&[]), vec![0, 0, 0, 0]);
        assert!(decode(&[0, 0, 0, 0]).is_empty());
    }

    #[test]
    fn a_missing_nul_decodes_to_nothing_as_cpp_host_does() {
        let mut broken = TWO_PAIRS.to_vec();
        broken[25] = b'x'; // the NUL after ":path"
        assert!(
            decode(&broken).is_empty(),
            "a corrupt buffer yields no pairs"
        );
    }

    #[test]
    fn trailing_or_missing_bytes_decode_to_nothing() {
        let mut long = TWO_PAIRS.to_vec();
        long.push(0);
        assert!(decode(&long).is_empty(), "trailing bytes are rejected");
        assert!(
            decode(&TWO_PAIRS[..TWO_PAIRS.len() - 1]).is_empty(),
            "truncation is rejected"
        );
        assert!(decode(&[1, 0]).is_empty(), "a short count is rejected");
    }

    #[test]
    fn more_than_the_pair_limit_decodes_to_nothing() {
        let mut buf = encode::<&str, &str>(&[]);
        buf[..4].copy_from_slice(&u32::try_from(MAX_PAIRS + 1).unwrap().to_le_bytes());
        assert!(decode(&buf).is_empty());
    }
}

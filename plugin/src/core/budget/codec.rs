//! The budget's shared-data encoding: fixed-layout, little-endian binary.
//!
//! # Layout (version 1)
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 2 | magic `b"RB"` ("retry budget") |
//! | 2 | 1 | version, `1` |
//! | 3 | 8 | bucket width in ms, `u64` LE (0 only when there are no buckets) |
//! | 11 | 1 | bucket count `n`, at most [`BUCKETS`] |
//! | 12 | 16 × n | buckets, oldest first |
//!
//! Each bucket is 16 bytes:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | start in ms on the host clock, `u64` LE, a multiple of the width |
//! | 8 | 4 | client requests, `u32` LE |
//! | 12 | 4 | retries started, `u32` LE |
//!
//! So an empty budget is 12 bytes and a full one [`ENCODED_MAX_LEN`] (172). Decoding checks every
//! field (magic, version, count, exact length, width, ascending and aligned starts) and returns an
//! error for anything else, never panics: the glue then starts a fresh budget and logs. A decoded
//! budget re-encodes to the same bytes. A change of layout takes a new version number.

use super::{Bucket, Budget, BUCKETS};

/// The first two bytes of every encoded budget.
pub const MAGIC: [u8; 2] = *b"RB";
/// The layout version this code writes and reads.
pub const VERSION: u8 = 1;
const HEADER_LEN: usize = 12;
const BUCKET_LEN: usize = 16;
/// The longest encoding: a full window.
pub const ENCODED_MAX_LEN: usize = HEADER_LEN + BUCKETS * BUCKET_LEN;

/// Why bytes from shared data are not a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("retry budget: {len} bytes is shorter than the {HEADER_LEN}-byte header")]
    TooShort { len: usize },
    #[error("retry budget: bad magic {found:02x?}, expected {MAGIC:02x?}")]
    BadMagic { found: [u8; 2] },
    #[error("retry budget: unsupported version {0}, this build reads version {VERSION}")]
    UnsupportedVersion(u8),
    #[error("retry budget: {count} buckets, at most {max} allowed")]
    TooManyBuckets { count: usize, max: usize },
    #[error("retry budget: {actual} bytes, {expected} expected for its bucket count")]
    Length { expected: usize, actual: usize },
    #[error("retry budget: bucket width 0 with buckets present")]
    ZeroWidth,
    #[error("retry budget: bucket {index} does not start after the one before it")]
    Unordered { index: usize },
    #[error("retry budget: bucket {index} does not start on a multiple of the bucket width")]
    Misaligned { index: usize },
}

impl Budget {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(HEADER_LEN + self.buckets.len() * BUCKET_LEN);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.width.to_le_bytes());
        // The budget keeps at most BUCKETS (10) buckets, so the count fits a byte.
        out.push(self.buckets.len().min(BUCKETS) as u8);
        for b in self.buckets.iter().take(BUCKETS) {
            out.extend_from_slice(&b.start.to_le_bytes());
            out.extend_from_slice(&b.requests.to_le_bytes());
            out.extend_from_slice(&b.retries.to_le_bytes());
        }
    }

    /// Reads a budget written by [`Budget::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Budget, DecodeError> {
        let too_short = DecodeError::TooShort { len: bytes.len() };
        let (header, body) = bytes.split_first_chunk::<HEADER_LEN>().ok_or(too_short)?;
        let mut r = Reader(header);
        let magic: [u8; 2] = r.array().ok_or(too_short)?;
        let [version] = r.array().ok_or(too_short)?;
        let width = u64::from_le_bytes(r.array().ok_or(too_short)?);
        let [count] = r.array().ok_or(too_short)?;
        if magic != MAGIC {
            return Err(DecodeError::BadMagic { found: magic });
        }
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let count = usize::from(count);
        if count > BUCKETS {
            return Err(DecodeError::TooManyBuckets {
                count,
                max: BUCKETS,
            });
        }
        if body.len() != count * BUCKET_LEN {
            return Err(DecodeError::Length {
                expected: HEADER_LEN + count * BUCKET_LEN,
                actual: bytes.len(),
            });
        }
        if width == 0 && count > 0 {
            return Err(DecodeError::ZeroWidth);
        }
        let mut buckets: Vec<Bucket> = Vec::with_capacity(count);
        for (index, chunk) in body.chunks_exact(BUCKET_LEN).enumerate() {
            let mut r = Reader(chunk);
            let length = DecodeError::Length {
                expected: HEADER_LEN + count * BUCKET_LEN,
                actual: bytes.len(),
            };
            let bucket = Bucket {
                start: u64::from_le_bytes(r.array().ok_or(length)?),
                requests: u32::from_le_bytes(r.array().ok_or(length)?),
                retries: u32::from_le_bytes(r.array().ok_or(length)?),
            };
            if buckets
                .last()
                .is_some_and(|prev| prev.start >= bucket.start)
            {
                return Err(DecodeError::Unordered { index });
            }
            if !bucket.start.is_multiple_of(width) {
                return Err(DecodeError::Misaligned { index });
            }
            buckets.push(bucket);
        }
        Ok(Budget { width, buckets })
    }
}

/// Reads fixed-size arrays off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

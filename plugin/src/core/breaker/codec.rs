//! The breaker's shared-data encoding: compact, versioned, fixed-layout, little-endian.
//!
//! # Layout (format 1)
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 1 | format byte [`FORMAT`] `0xB1` ("B"reaker, version 1) |
//! | 1 | 1 | phase: 0 closed, 1 open, 2 half-open |
//! | 2 | 1 | escalation: doublings of the open time (open, half-open; else 0) |
//! | 3 | 8 | epoch, u64 |
//! | 11 | 4 | consecutive failures, u32 (closed; else 0) |
//! | 15 | 8 | open until, absolute ms, u64 (open; else 0) |
//! | 23 | 4 | probe successes, u32 (half-open; else 0) |
//! | 27 | 8 | next probe lease id, u64 (half-open; else 0) |
//! | 35 | 1 | bucket count n, at most [`MAX_BUCKETS`] (closed; else 0) |
//! | 36 | 20·n | buckets, oldest first: start u64 (ms, strictly increasing), total u32, failed u32 (≤ total), slow u32 (≤ total) |
//! | 36+20n | 2 | lease count m, u16, at most [`MAX_LEASES`] (half-open; else 0) |
//! | 38+20n | 16·m | leases in grant order: id u64 (strictly increasing, below the next id), expires u64 (ms) |
//!
//! A fresh breaker is 38 bytes; a closed one with a full window 238.
//!
//! # Decoding
//! Any byte string decodes to a breaker or to a [`DecodeError`] that names what is wrong, and
//! never panics: every read is checked, lists are bounded before they are read, fields that
//! the phase does not use must be zero, and trailing bytes are an error. On an error the glue
//! logs it and starts again from `Breaker::new()`. Another format byte is an error too: a
//! rolled-out new build must not misread an old layout.

use thiserror::Error;

use super::closed::Counts;
use super::probes::{Lease, Probes, MAX_PROBES};
use super::state::{Breaker, State};
use super::window::{Bucket, Window, BUCKETS};

/// The first byte of every encoding: magic and format version in one.
pub const FORMAT: u8 = 0xB1;
/// The most window buckets an encoding may hold.
pub const MAX_BUCKETS: usize = BUCKETS;
/// The most probe leases an encoding may hold: the largest `half_open_attempts`.
pub const MAX_LEASES: usize = MAX_PROBES as usize;

/// Bytes of the fixed header (up to and including the bucket count), of one bucket, of the
/// lease count and of one lease.
const HEADER_LEN: usize = 36;
const BUCKET_LEN: usize = 20;
const LEASE_COUNT_LEN: usize = 2;
const LEASE_LEN: usize = 16;

const PHASE_CLOSED: u8 = 0;
const PHASE_OPEN: u8 = 1;
const PHASE_HALF_OPEN: u8 = 2;

const _: () = assert!(MAX_BUCKETS <= u8::MAX as usize && MAX_LEASES <= u16::MAX as usize);

/// Why bytes read from shared data are not a breaker state.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("breaker state has format byte {found:#04x}, this build reads {FORMAT:#04x}")]
    Format { found: u8 },
    #[error(
        "breaker state is truncated: {field} needs {needed} bytes at offset {offset}, \
         {available} left"
    )]
    Truncated {
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("breaker state holds {count} {list}, more than the maximum {max}")]
    TooMany {
        list: &'static str,
        count: usize,
        max: usize,
    },
    #[error("breaker state field {field} is {value}: {rule}")]
    Invalid {
        field: &'static str,
        value: u64,
        rule: &'static str,
    },
    #[error("breaker state has {count} trailing bytes after offset {offset}")]
    Trailing { offset: usize, count: usize },
}

impl Breaker {
    /// Appends the encoding of this state to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let empty = Probes::default();
        let none = Window::default();
        let (phase, escalation, failures, until, probes, window) = match &self.state {
            State::Closed(c) => (PHASE_CLOSED, 0, c.failures, 0, &empty, &c.window),
            State::Open { until, escalation } => {
                (PHASE_OPEN, *escalation, 0, *until, &empty, &none)
            }
            State::HalfOpen(h) => (PHASE_HALF_OPEN, h.escalation, 0, 0, h, &none),
        };
        let buckets = window.buckets();
        let leases = probes.leases.get(..MAX_LEASES).unwrap_or(&probes.leases);
        out.reserve(
            HEADER_LEN + BUCKET_LEN * buckets.len() + LEASE_COUNT_LEN + LEASE_LEN * leases.len(),
        );
        out.extend_from_slice(&[FORMAT, phase, escalation]);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&failures.to_le_bytes());
        out.extend_from_slice(&until.to_le_bytes());
        out.extend_from_slice(&probes.successes.to_le_bytes());
        out.extend_from_slice(&probes.next_id.to_le_bytes());
        out.push(buckets.len() as u8);
        for b in buckets {
            out.extend_from_slice(&b.start.to_le_bytes());
            out.extend_from_slice(&b.total.to_le_bytes());
            out.extend_from_slice(&b.failed.to_le_bytes());
            out.extend_from_slice(&b.slow.to_le_bytes());
        }
        out.extend_from_slice(&(leases.len() as u16).to_le_bytes());
        for lease in leases {
            out.extend_from_slice(&lease.id.to_le_bytes());
            out.extend_from_slice(&lease.expires.to_le_bytes());
        }
    }

    /// Reads a state written by [`Breaker::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Breaker, DecodeError> {
        let mut r = Reader { bytes, at: 0 };
        let format = r.u8("format")?;
        if format != FORMAT {
            return Err(DecodeError::Format { found: format });
        }
        let phase = r.u8("phase")?;
        let escalation = r.u8("escalation")?;
        let epoch = r.u64("epoch")?;
        let failures = r.u32("consecutive failures")?;
        let until = r.u64("open until")?;
        let successes = r.u32("probe successes")?;
        let next_id = r.u64("next probe id")?;
        let window = r.window()?;
        let leases = r.leases(next_id)?;
        if r.at != bytes.len() {
            return Err(DecodeError::Trailing {
                offset: r.at,
                count: bytes.len().saturating_sub(r.at),
            });
        }

        let state = match phase {
            PHASE_CLOSED => {
                let rule = "must be 0 while closed";
                unused("escalation", escalation.into(), rule)?;
                unused("open until", until, rule)?;
                unused("probe successes", successes.into(), rule)?;
                unused("next probe id", next_id, rule)?;
                unused("lease count", leases.len() as u64, rule)?;
                State::Closed(Counts { failures, window })
            }
            PHASE_OPEN => {
                let rule = "must be 0 while open";
                unused("consecutive failures", failures.into(), rule)?;
                unused("probe successes", successes.into(), rule)?;
                unused("next probe id", next_id, rule)?;
                unused("bucket count", window.buckets().len() as u64, rule)?;
                unused("lease count", leases.len() as u64, rule)?;
                State::Open { until, escalation }
            }
            PHASE_HALF_OPEN => {
                let rule = "must be 0 while half-open";
                unused("consecutive failures", failures.into(), rule)?;
                unused("open until", until, rule)?;
                unused("bucket count", window.buckets().len() as u64, rule)?;
                State::HalfOpen(Probes {
                    escalation,
                    successes,
                    next_id,
                    leases,
                })
            }
            other => {
                let rule = "must be 0 (closed), 1 (open) or 2 (half-open)";
                return Err(DecodeError::Invalid {
                    field: "phase",
                    value: other.into(),
                    rule,
                });
            }
        };
        Ok(Breaker { epoch, state })
    }
}

/// A field that the phase does not use must be zero.
fn unused(field: &'static str, value: u64, rule: &'static str) -> Result<(), DecodeError> {
    if value == 0 {
        Ok(())
    } else {
        Err(DecodeError::Invalid { field, value, rule })
    }
}

/// Checked little-endian reads over the input.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let truncated = DecodeError::Truncated {
            field,
            offset: self.at,
            needed: N,
            available: self.bytes.len().saturating_sub(self.at),
        };
        let end = self.at.checked_add(N).ok_or_else(|| truncated.clone())?;
        let chunk = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| truncated.clone())?;
        let array = <[u8; N]>::try_from(chunk).map_err(|_| truncated)?;
        self.at = end;
        Ok(array)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.take::<1>(field).map(u8::from_le_bytes)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.take::<2>(field).map(u16::from_le_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.take::<4>(field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.take::<8>(field).map(u64::from_le_bytes)
    }

    /// The bucket list: bounded, strictly increasing starts, parts within totals. Read into the
    /// fixed window, so decoding a closed state allocates nothing.
    fn window(&mut self) -> Result<Window, DecodeError> {
        let count = usize::from(self.u8("bucket count")?);
        if count > MAX_BUCKETS {
            return Err(DecodeError::TooMany {
                list: "buckets",
                count,
                max: MAX_BUCKETS,
            });
        }
        let mut window = Window::default();
        for _ in 0..count {
            let bucket = Bucket {
                start: self.u64("bucket start")?,
                total: self.u32("bucket total")?,
                failed: self.u32("bucket failed")?,
                slow: self.u32("bucket slow")?,
            };
            let invalid = |field, value, rule| Err(DecodeError::Invalid { field, value, rule });
            if window
                .buckets()
                .last()
                .is_some_and(|prev| prev.start >= bucket.start)
            {
                let rule = "must be later than the previous bucket's start";
                return invalid("bucket start", bucket.start, rule);
            }
            let rule = "must not exceed the bucket total";
            if bucket.failed > bucket.total {
                return invalid("bucket failed", bucket.failed.into(), rule);
            }
            if bucket.slow > bucket.total {
                return invalid("bucket slow", bucket.slow.into(), rule);
            }
            if !window.push(bucket) {
                return Err(DecodeError::TooMany {
                    list: "buckets",
                    count,
                    max: MAX_BUCKETS,
                });
            }
        }
        Ok(window)
    }

    /// The lease list: bounded, ids strictly increasing and below `next_id`.
    fn leases(&mut self, next_id: u64) -> Result<Vec<Lease>, DecodeError> {
        let count = usize::from(self.u16("lease count")?);
        if count > MAX_LEASES {
            return Err(DecodeError::TooMany {
                list: "probe leases",
                count,
                max: MAX_LEASES,
            });
        }
        let mut leases: Vec<Lease> = Vec::with_capacity(count);
        for _ in 0..count {
            let lease = Lease {
                id: self.u64("lease id")?,
                expires: self.u64("lease expiry")?,
            };
            if leases.last().is_some_and(|prev| prev.id >= lease.id) {
                let rule = "must be greater than the previous lease's id";
                return Err(DecodeError::Invalid {
                    field: "lease id",
                    value: lease.id,
                    rule,
                });
            }
            if lease.id >= next_id {
                let rule = "must be below the next probe id";
                return Err(DecodeError::Invalid {
                    field: "lease id",
                    value: lease.id,
                    rule,
                });
            }
            leases.push(lease);
        }
        Ok(leases)
    }
}

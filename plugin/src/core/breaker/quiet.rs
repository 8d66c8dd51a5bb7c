//! The quiet breaker: closed, with nothing in its window and no probe leases.
//!
//! # Why
//! A healthy cluster's breaker is quiet almost all the time, and on the two hottest paths, a
//! request's admission and its success, the full transition then changes nothing and never
//! looks at the time. Decoding the state, reading the clock and running the transition is wasm
//! work on every request for an answer known from a few bytes. So the glue reads the stored
//! bytes, asks [`Quiet::read`], and takes the full path (decode, clock, transition, write) only
//! when [`Quiet::admit`] or [`Quiet::record`] cannot answer.
//!
//! # Exactly the full path's answer
//! [`Quiet::read`] accepts exactly the encodings that [`Breaker::decode`] turns into a closed
//! breaker with an empty window (every field the closed phase does not use zero, no buckets, no
//! leases, no trailing bytes); anything else, including every encoding `decode` refuses, goes
//! the full way and is reported there. Where [`Quiet::admit`] or [`Quiet::record`] answer, the
//! full transition gives the same answer, no events and no change, at any `now` (the property
//! tests in `tests/quiet.rs` play both).
//!
//! [`Breaker::decode`]: super::Breaker::decode

use super::api::PermitKind;
use super::codec::FORMAT;
use super::{Admission, Call, Permit};
use crate::policy::{BreakerMode, BreakerPolicy};

/// The length of a quiet breaker's encoding: the fixed header and an empty lease list.
const QUIET_LEN: usize = 38;
/// Where the epoch and the consecutive failures lie in the encoding (see `codec`).
const EPOCH_AT: usize = 3;
const FAILURES_AT: usize = 11;
/// From here to the end, a quiet encoding is zeros: open until, probe successes, next probe id,
/// bucket count and lease count.
const ZEROS_FROM: usize = 15;

/// A quiet breaker, as read from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quiet {
    epoch: u64,
    failures: u32,
}

impl Quiet {
    /// The breaker of a cluster with nothing stored yet ([`Breaker::new`](super::Breaker::new)):
    /// the glue reads absent bytes as this, as the full path reads them as a fresh breaker.
    pub fn fresh() -> Quiet {
        Quiet {
            epoch: 0,
            failures: 0,
        }
    }

    /// The quiet breaker stored as `bytes` (`None`: nothing stored yet, a fresh breaker);
    /// `None` for any other state or bytes.
    pub fn of(bytes: Option<&[u8]>) -> Option<Quiet> {
        bytes.map_or(Some(Quiet::fresh()), Quiet::read)
    }

    /// The quiet breaker these bytes encode; `None` for any other state or bytes.
    pub fn read(bytes: &[u8]) -> Option<Quiet> {
        if bytes.len() != QUIET_LEN {
            return None;
        }
        let (head, zeros) = bytes.split_at(ZEROS_FROM);
        // Format, phase 0 (closed), escalation 0.
        if head.get(..EPOCH_AT)? != [FORMAT, 0, 0] || zeros.iter().any(|&b| b != 0) {
            return None;
        }
        let epoch = u64::from_le_bytes(head.get(EPOCH_AT..FAILURES_AT)?.try_into().ok()?);
        let failures = u32::from_le_bytes(head.get(FAILURES_AT..ZEROS_FROM)?.try_into().ok()?);
        Some(Quiet { epoch, failures })
    }

    /// What `admit` decides, when it decides without the time and changes nothing: every
    /// request is admitted while closed (`forced_open` goes the full way).
    pub fn admit(self, p: &BreakerPolicy) -> Option<Admission> {
        match p.mode {
            BreakerMode::Enforce | BreakerMode::Shadow => {
                Some(Admission::Admitted(Permit::counted(self.epoch)))
            }
            BreakerMode::Disabled => Some(Admission::Admitted(Permit::untracked(self.epoch))),
            BreakerMode::ForcedOpen => None,
        }
    }

    /// Whether recording `call` for `permit` leaves this breaker as it is, with no events: a
    /// success when there are no consecutive failures to forget and no rate window to keep, or
    /// an outcome that drives nothing (stale, untracked, a mode that ignores outcomes).
    pub fn record(self, p: &BreakerPolicy, permit: Permit, call: Call) -> bool {
        if matches!(p.mode, BreakerMode::Disabled | BreakerMode::ForcedOpen)
            || permit.epoch != self.epoch
        {
            return true;
        }
        match permit.kind {
            // A probe's permit in a closed epoch: the full path finds no probes to count.
            PermitKind::Untracked | PermitKind::Probe(_) => true,
            PermitKind::Counted => {
                let rates = p.failure_rate.is_some() || p.slow_call.is_some();
                !call.failed && self.failures == 0 && !rates
            }
        }
    }
}

//! The values that cross the boundary between the breaker and the glue: what a transition
//! returns ([`Step`]), what `admit` decides ([`Admission`]) and what a request carries from its
//! admission to its outcome ([`Permit`]).

use std::fmt;
use std::time::Duration;

use super::Events;

/// Where the breaker is, as the glue's gauges and headers name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Requests flow and their outcomes are counted.
    Closed,
    /// Requests are rejected until the open time has passed.
    Open,
    /// A bounded number of probes is let through to test the upstream.
    HalfOpen,
}

impl Phase {
    /// The value of the phase gauge: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> u64 {
        match self {
            Phase::Closed => 0,
            Phase::Open => 1,
            Phase::HalfOpen => 2,
        }
    }

    /// The state a fallback names in `x-breakwater-breaker`: `half-open` when it came from a
    /// half-open breaker, else `open` (a `forced_open` breaker rejects whatever its phase).
    pub fn rejecting(self) -> &'static str {
        match self {
            Phase::HalfOpen => "half-open",
            Phase::Closed | Phase::Open => "open",
        }
    }

    /// The name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Closed => "closed",
            Phase::Open => "open",
            Phase::HalfOpen => "half-open",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one transition: its answer, what happened, and whether the state changed.
///
/// `changed == true` means the glue must encode the breaker and write it back (with CAS);
/// `false` means the bytes it read are still exact and no write is needed.
#[must_use = "a step that changed the state must be written back to shared data"]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step<T> {
    pub value: T,
    pub events: Events,
    pub changed: bool,
}

/// What `admit` decided for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Forward the request; report its end with `record` or `release`, passing this permit.
    Admitted(Permit),
    /// Answer with the fallback.
    Rejected(Rejection),
}

/// Why and for how long a request was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// `Open`, or `HalfOpen` when every probe slot is taken.
    pub phase: Phase,
    /// When to try again: until half-open (open), until the earliest probe lease expires
    /// (half-open, at least one second), the configured timeout (forced open). Never zero.
    pub retry_after: Duration,
}

/// The outcome of an admitted request, as the glue classified it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Call {
    /// The outcome matched `failure_on`.
    pub failed: bool,
    /// The response took longer than `slow_call.duration`.
    pub slow: bool,
}

/// A request's ticket from `admit` to `record`/`release`: the epoch it was admitted in and
/// whether it is a probe. Small and `Copy`, so the glue keeps it in its per-request context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    pub(super) epoch: u64,
    pub(super) kind: PermitKind,
}

/// What a permit's outcome may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PermitKind {
    /// Admitted while closed: the outcome is counted by the trip conditions.
    Counted,
    /// A half-open probe holding the lease with this id.
    Probe(u64),
    /// Admitted without being counted: in `disabled` mode, or in `shadow` mode where `enforce`
    /// would have rejected. Its outcome drives nothing.
    Untracked,
}

impl Permit {
    pub(super) fn counted(epoch: u64) -> Self {
        Permit {
            epoch,
            kind: PermitKind::Counted,
        }
    }

    pub(super) fn probe(epoch: u64, lease: u64) -> Self {
        Permit {
            epoch,
            kind: PermitKind::Probe(lease),
        }
    }

    pub(super) fn untracked(epoch: u64) -> Self {
        Permit {
            epoch,
            kind: PermitKind::Untracked,
        }
    }

    /// The request is a half-open probe: its outcome closes or re-opens the breaker.
    pub fn is_probe(&self) -> bool {
        matches!(self.kind, PermitKind::Probe(_))
    }

    /// The request's outcome can drive transitions (if it is not stale when it arrives).
    pub fn is_counted(&self) -> bool {
        !matches!(self.kind, PermitKind::Untracked)
    }

    /// The epoch (count of transitions) the request was admitted in.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// Successes a worker held back (see [`super::Breaker::takes_success_later`]), all of permits of
/// one epoch, to add to the rate window together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Successes {
    /// The epoch their permits were admitted in.
    pub epoch: u64,
    /// How many.
    pub total: u32,
    /// Of those, the slow ones.
    pub slow: u32,
}

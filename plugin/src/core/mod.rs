//! The pure resilience core: no host calls, no clock, no global randomness.
//!
//! Every function that needs the time takes `now` as [`Millis`] (milliseconds on the host's
//! monotonic clock; a Unix time only where it says so, as `now_unix`); every function that needs randomness takes `&mut impl rand_core::Rng`.
//!
//! - [`breaker`]: the per-cluster state machine and its shared-data encoding.
//! - [`outcome`]: what happened to an attempt, from Envoy's status, flags and details.
//! - [`backoff`] and [`retry_after`]: when the next attempt may start.
//! - [`retry`]: whether a failed attempt is retried.
//! - [`budget`]: how many retries a cluster may run, and its shared-data encoding.
//! - [`pairs`]: header maps as the host serializes them, read without copying.

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod outcome;
pub mod pairs;
pub mod retry;
pub mod retry_after;
pub mod rng;

/// A point in time or a span, in milliseconds. Points are on the host's monotonic clock (an
/// arbitrary start shared by every worker, never stepped), except a `now_unix`, which is Unix
/// time for HTTP dates.
pub type Millis = u64;

/// A [`std::time::Duration`] in whole milliseconds, saturating.
pub fn millis(d: std::time::Duration) -> Millis {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

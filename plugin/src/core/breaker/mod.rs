//! The circuit breaker of one upstream cluster (POLICY.md "Circuit breaker"), and its
//! shared-data encoding.
//!
//! # Why it is shaped like this
//! Envoy runs one wasm VM per worker thread, and all of them must agree on one breaker per
//! cluster, so the state lives in proxy-wasm shared data as bytes. The glue reads the bytes,
//! [`Breaker::decode`]s them, calls one transition ([`Breaker::admit`], [`Breaker::record`],
//! [`Breaker::release`]) and, if the returned [`Step`] says `changed`, [`Breaker::encode`]s and
//! writes with CAS, retrying on a mismatch. Transitions are therefore pure functions of
//! (state, policy, input, `now`, rng), safe to re-run on fresh bytes. Shared-data writes are the
//! main cost on the request path, so the common paths write nothing: `admit` while closed, and a
//! success while there are no failures to forget and no rate window to maintain.
//!
//! # Phases
//! - **Closed**: requests flow; outcomes feed the trip conditions (`closed`): consecutive
//!   failures, failure rate and slow-call rate over a bucketed sliding window (`window`).
//! - **Open**: requests are rejected until an absolute `open_until`. The open time doubles on each
//!   re-open straight from half-open, up to `max_timeout`, with ±10% jitter (`open_time`).
//! - **Half-open**: entered lazily by the first `admit` after `open_until`. Up to
//!   `half_open_attempts` probes at once, each holding an expiring lease in the shared state; that
//!   many successes close, any failure re-opens one doubling higher (`probes`).
//!
//! # Epochs and stale outcomes
//! Every phase change bumps the epoch, and a [`Permit`] carries the epoch it was admitted in. An
//! outcome whose permit is from another epoch is stale and drives nothing: a request admitted
//! while closed that fails after the breaker opened must not count against the half-open probes,
//! nor a slow success close a breaker that re-opened since. A probe's outcome in its own
//! half-open epoch counts, even if its lease was already reclaimed. Each permit must be passed
//! to exactly one `record` or `release`.
//!
//! # Modes
//! - `enforce`: as above.
//! - `shadow`: the state machine runs exactly as in `enforce`, so its events describe what
//!   `enforce` would do, but nothing is rejected: an opening is reported as
//!   [`Event::WouldOpen`] instead of [`Event::Opened`], and a request that `enforce` would reject
//!   is admitted with an untracked permit (its outcome drives nothing) and reported as
//!   [`Event::WouldReject`]. Half-open, closed and reclaim events are reported as in `enforce`;
//!   [`Breaker::phase`] is the shadow state machine's phase.
//! - `forced_open`: every `admit` is rejected (retry after `timeout`); the state is not touched and
//!   outcomes are ignored.
//! - `disabled`: everything is admitted untracked, nothing is recorded, nothing is written.
//!
//! # Policy changes
//! The state does not depend on the policy it was written under: a new policy reads it as is,
//! except that times further ahead than the new policy allows are clamped to it (below).
//! Window buckets keep absolute start times and expire on the new schedule; when there are now
//! fewer probe slots than leases held, no probe is admitted until enough leases end; when the
//! successes seen already reach a lowered `half_open_attempts`, the next `admit` closes.
//!
//! # Implausible times
//! Decoding checks the layout, not the times, and shared data may hold anything (another
//! plugin's bytes under the key, a worker whose clock jumped). So `admit` and `record` first
//! clamp an open time, a probe lease or a window bucket that lies further ahead than the policy
//! allows, write the clamp back and report it ([`Events::clamped`]); see `state` for the bounds.
//!
//! # Encoding
//! See [`codec`] for the byte layout: versioned, fixed header, bounded lists, checked decoding.
//! [`Quiet`] answers admissions and successes of a closed breaker with an empty window from the
//! bytes, without decoding them or the time.

mod api;
mod closed;
pub mod codec;
mod events;
mod open_time;
mod probes;
mod quiet;
mod state;
mod window;

pub use api::{Admission, Call, Permit, Phase, Rejection, Step, Successes};
pub use codec::DecodeError;
pub use events::{Event, Events, OpenReason, Opening};
pub use quiet::Quiet;
pub use state::Breaker;

#[cfg(test)]
mod tests;

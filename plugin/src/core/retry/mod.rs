//! Whether a failed attempt is retried, and when.
//!
//! # Eligibility
//!
//! Only a request that can safely be sent twice is retried (a retried POST may pay twice): its
//! method is in `methods` (by default RFC 9110's idempotent methods), or it carries the
//! `idempotency_header`, whatever its method. Its body must also fit in `max_request_body`, since
//! a retry re-sends the buffered body; the body size is only known while it streams, so the glue
//! checks [`body_fits`] as data arrives and marks the request ineligible when it overflows (the
//! request itself is still forwarded).
//!
//! # Decision
//!
//! [`plan`] answers after a failed attempt, in this order, and the first answer wins:
//!
//! 1. a real upstream reply below 400 is [`Stop::Success`];
//! 2. an outcome that the policy does not retry is [`Stop::NotRetryable`]: not in `retry_on`, or a
//!    4xx reply other than 408, 409 and 429 (never retried: the client's request is at fault and
//!    would fail again), or one of those three not listed by number in `retry_on`, or retries are
//!    off (`max_attempts` 1). This rule is enforced here as well as in validation, so no policy
//!    value can retry a 404;
//! 3. an ineligible request is [`Stop::NotEligible`];
//! 4. when `max_attempts` attempts were made, [`Stop::Exhausted`];
//! 5. the delay: a parsable `Retry-After` (capped at `max_delay`) when `respect_retry_after`, else
//!    the backoff schedule (`core::backoff`);
//! 6. [`Stop::Deadline`] when the retry could not finish in time: `now + delay + per_try_timeout >
//!    start + deadline` (finishing exactly at the deadline is allowed);
//! 7. otherwise [`Verdict::Retry`].
//!
//! The breaker and budget checks need shared data, so the glue makes them after a `Retry`
//! verdict; [`Stop::Breaker`] and [`Stop::Budget`] exist so the glue reports one enum.

#[cfg(test)]
pub(crate) mod fixtures;

use std::time::Duration;

use rand_core::Rng;

use crate::core::outcome::Outcome;
use crate::core::{backoff, millis, retry_after, Millis};
use crate::policy::RetryPolicy;

/// The only 4xx statuses that may be retried, and only when `retry_on` lists them by number:
/// 408 Request Timeout, 409 Conflict, 429 Too Many Requests.
pub const RETRYABLE_4XX: [u16; 3] = [408, 409, 429];

/// Why a request may not be retried at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ineligible {
    /// Not an idempotent method in `methods`, and no idempotency header.
    #[error("its method is not in retry.methods and it carries no idempotency header")]
    Method,
    /// The body is larger than `max_request_body`.
    #[error("its body is larger than retry.max_request_body")]
    BodyTooLarge,
}

/// Whether a request with this method (`:method`, compared exactly: methods are case-sensitive)
/// may be retried; `has_idempotency_key` is whether it carries the policy's idempotency header
/// (ignored when the policy has none).
pub fn eligible(
    p: &RetryPolicy,
    method: &str,
    has_idempotency_key: bool,
) -> Result<(), Ineligible> {
    let keyed = has_idempotency_key && p.idempotency_header.is_some();
    if keyed || p.methods.iter().any(|m| m == method) {
        Ok(())
    } else {
        Err(Ineligible::Method)
    }
}

/// Whether a body of `body_size` bytes (so far, or announced by `content-length`) still allows
/// retries.
pub fn body_fits(p: &RetryPolicy, body_size: u64) -> Result<(), Ineligible> {
    if body_size <= p.max_request_body {
        Ok(())
    } else {
        Err(Ineligible::BodyTooLarge)
    }
}

/// Whether the policy retries this outcome at all (steps 1 and 2 of the decision).
pub fn retryable(p: &RetryPolicy, o: &Outcome) -> bool {
    if o.is_success() || p.max_attempts <= 1 {
        return false;
    }
    if let Some(status @ 400..=499) = o.status.filter(|_| o.is_reply()) {
        return RETRYABLE_4XX.contains(&status) && p.retry_on.codes.contains(&status);
    }
    p.retry_on.matches(o)
}

/// What [`plan`] needs to know about the request and its failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanInput<'a> {
    pub outcome: Outcome,
    /// Attempts made so far, the first included (1 after the first attempt failed).
    pub attempts: u32,
    /// Whether the request may be retried ([`eligible`] and [`body_fits`]).
    pub eligible: bool,
    /// When the client's request started (host clock).
    pub started_at: Millis,
    pub now: Millis,
    /// The failed response's `Retry-After` value, if it had one.
    pub retry_after: Option<&'a str>,
    /// The current Unix time in milliseconds, for HTTP-dates (in Envoy, the same clock as `now`).
    pub now_unix: Millis,
    /// The delay before the previous retry (`Decorrelated` jitter grows from it).
    pub previous_delay: Option<Duration>,
}

/// The answer after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send attempt number `attempt` (2 for the first retry) after `delay`.
    Retry { delay: Duration, attempt: u32 },
    /// The response the client gets is the one at hand.
    Stop(Stop),
}

/// Why no retry follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stop {
    /// The attempt succeeded.
    Success,
    /// The policy does not retry this outcome: the response is final, nothing was skipped.
    NotRetryable,
    /// The request's method or body rules retries out.
    NotEligible,
    /// `max_attempts` attempts were made.
    Exhausted,
    /// The retry could not finish before the deadline.
    Deadline,
    /// The cluster's retry budget is spent (decided by the glue).
    Budget,
    /// The cluster's breaker is not closed (decided by the glue).
    Breaker,
}

impl Stop {
    /// The reason label for the "retries skipped" metric: `None` when no retry was skipped
    /// (success, not retryable, exhausted: see [`Stop::is_exhausted`]).
    pub fn metric_reason(&self) -> Option<&'static str> {
        match self {
            Stop::Success | Stop::NotRetryable | Stop::Exhausted => None,
            Stop::NotEligible => Some("not_eligible"),
            Stop::Deadline => Some("deadline"),
            Stop::Budget => Some("budget"),
            Stop::Breaker => Some("breaker"),
        }
    }

    /// Whether every allowed attempt was used (the "retries exhausted" metric).
    pub fn is_exhausted(&self) -> bool {
        *self == Stop::Exhausted
    }
}

/// The decision after a failed attempt (see the module docs for the order of the rules).
pub fn plan(p: &RetryPolicy, input: &PlanInput<'_>, rng: &mut impl Rng) -> Verdict {
    if input.outcome.is_success() {
        return Verdict::Stop(Stop::Success);
    }
    if !retryable(p, &input.outcome) {
        return Verdict::Stop(Stop::NotRetryable);
    }
    if !input.eligible {
        return Verdict::Stop(Stop::NotEligible);
    }
    let attempts = input.attempts.max(1);
    if attempts >= p.max_attempts {
        return Verdict::Stop(Stop::Exhausted);
    }
    let delay = next_delay(p, input, attempts, rng);
    let finish = input
        .now
        .saturating_add(millis(delay))
        .saturating_add(millis(p.per_try_timeout));
    if finish > input.started_at.saturating_add(millis(p.deadline)) {
        return Verdict::Stop(Stop::Deadline);
    }
    Verdict::Retry {
        delay,
        attempt: attempts + 1,
    }
}

/// Step 5: the upstream's `Retry-After` when respected and parsable, else the backoff.
fn next_delay(p: &RetryPolicy, input: &PlanInput<'_>, retry: u32, rng: &mut impl Rng) -> Duration {
    let asked = input
        .retry_after
        .filter(|_| p.respect_retry_after)
        .and_then(|v| retry_after::parse_capped(v, input.now_unix, p.backoff.max_delay).ok());
    asked.unwrap_or_else(|| backoff::delay(&p.backoff, retry, input.previous_delay, rng))
}

#[cfg(test)]
mod tests;

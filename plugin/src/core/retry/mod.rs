//! Whether a failed attempt is retried, and when.
//!
//! # Eligibility
//!
//! Only a request that can safely be sent twice is retried (a retried POST may pay twice): its
//! method is in `methods` (by default RFC 9110's idempotent methods), or it carries the
//! `idempotency_header`, whatever its method. Its body must also fit in `max_request_body`, since
//! a retry re-sends the buffered body; the body size is only known while it streams, so the glue
//! checks it as data arrives and gives the request's copy up when it overflows (the request
//! itself is still forwarded).
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
//! 5. the delay: with `respect_retry_after`, a parsable `Retry-After` longer than `max_delay` is
//!    [`Stop::RetryAfterTooLong`] (see `core::retry_after` for why not cut it to `max_delay`), a
//!    shorter one is the delay, spread a little above the asked value; else the backoff schedule
//!    (`core::backoff`);
//! 6. [`Stop::Deadline`] when the retry could not finish in time ([`deadline_allows`] at
//!    `now + delay`): `now + delay + per_try_timeout > start + deadline` (finishing exactly at the
//!    deadline is allowed);
//! 7. otherwise [`Verdict::Retry`].
//!
//! The breaker and budget checks need shared data, so the glue makes them after a `Retry`
//! verdict; [`Stop::Breaker`] and [`Stop::Budget`] exist so the glue reports one enum.
//!
//! # The deadline at dispatch
//!
//! [`plan`] checks the deadline when the retry is scheduled, assuming it starts `delay` later.
//! The glue's timer may fire later than that (ticks are coarse, a busy worker is late), so the
//! glue asks [`deadline_allows`] again with the real dispatch time, just before it sends the
//! retry; a retry that no longer fits is not sent ([`Stop::Deadline`], its budget given back).
//! One function for both checks keeps the rule in one place.

#[cfg(test)]
pub(crate) mod fixtures;

use std::time::Duration;

use rand_core::Rng;

use crate::core::outcome::{Cause, Outcome};
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

/// Whether the policy retries this outcome at all (steps 1 and 2 of the decision).
pub fn retryable(p: &RetryPolicy, o: &Outcome) -> bool {
    if o.is_success() || p.max_attempts <= 1 {
        return false;
    }
    // Only the upstream's own 4xx may be retried: a rate limiter's or another filter's is Envoy's
    // reply, and a retry would go around the filter that refused.
    if let Some(status @ 400..=499) = o.status.filter(|_| o.cause == Cause::Upstream) {
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
    /// Whether the request may be retried ([`eligible`], and its body kept whole within `max_request_body`).
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
    /// Send the next attempt after `delay`.
    Retry { delay: Duration },
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
    /// The upstream's `Retry-After` asks for longer than `max_delay` (respected only with
    /// `respect_retry_after`): the reply, `Retry-After` and all, goes to the client.
    RetryAfterTooLong,
    /// The cluster's retry budget is spent (decided by the glue).
    Budget,
    /// The cluster's breaker is not closed (decided by the glue).
    Breaker,
}

impl Stop {
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
    let delay = match next_delay(p, input, attempts, rng) {
        Ok(delay) => delay,
        Err(stop) => return Verdict::Stop(stop),
    };
    if !deadline_allows(p, input.started_at, input.now.saturating_add(millis(delay))) {
        return Verdict::Stop(Stop::Deadline);
    }
    Verdict::Retry { delay }
}

/// Whether an attempt that starts at `now` could run its whole `per_try_timeout` and still end by
/// the deadline of a request that started at `started_at`: `now + per_try_timeout ≤ started_at +
/// deadline` (ending exactly at the deadline is allowed).
///
/// [`plan`] asks it for the time the retry is due; the glue asks it again when the retry's timer
/// has fired, with the time it is about to dispatch, and drops the retry when the answer is no
/// (see the module docs).
pub fn deadline_allows(p: &RetryPolicy, started_at: Millis, now: Millis) -> bool {
    let end = now.saturating_add(millis(p.per_try_timeout));
    end <= started_at.saturating_add(millis(p.deadline))
}

/// Step 5: the upstream's `Retry-After` when respected and parsable (spread, or a stop when it
/// is longer than `max_delay`), else the backoff.
fn next_delay(
    p: &RetryPolicy,
    input: &PlanInput<'_>,
    retry: u32,
    rng: &mut impl Rng,
) -> Result<Duration, Stop> {
    let asked = input
        .retry_after
        .filter(|_| p.respect_retry_after)
        .and_then(|v| retry_after::parse(v, input.now_unix).ok());
    let max = p.backoff.max_delay;
    match asked {
        Some(asked) if asked > max => Err(Stop::RetryAfterTooLong),
        Some(asked) => Ok(retry_after::spread(asked, max, rng)),
        None => Ok(backoff::delay(&p.backoff, retry, input.previous_delay, rng)),
    }
}

#[cfg(test)]
mod tests;

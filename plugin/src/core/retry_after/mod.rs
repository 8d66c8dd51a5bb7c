//! `Retry-After` on a failed response: how long the upstream asks us to wait.
//!
//! # Why respect it
//!
//! A 503 or 429 that says when to come back is better information than any backoff schedule:
//! retrying earlier only adds load where the upstream asked for less. With
//! `respect_retry_after`, a parsable value replaces the backoff delay; the deadline still applies.
//!
//! # Longer than `max_delay`: no retry
//!
//! An upstream that asks for more than `max_delay` gets no retry at all (`core::retry`'s
//! `Stop::RetryAfterTooLong`): the client receives the reply, `Retry-After` included, and can
//! decide for itself. Cutting the wait down to `max_delay` (as this filter used to) would retry
//! exactly when the upstream said it cannot take the request, and waiting as long as asked would
//! park the request longer than the policy allows. Envoy's router keeps retrying instead: its
//! rate-limited back-off discards a reset header above `max_interval` and falls back to its
//! exponential schedule (`source/common/router/retry_state_impl.cc`, `parseResetInterval`), so
//! it too retries earlier than the upstream asked; this filter deliberately does not.
//!
//! # Spread
//!
//! Every client told "1 second" (or the same HTTP-date) would otherwise come back in the same
//! millisecond. So the delay taken from a `Retry-After` is drawn uniformly from
//! `[d, d + min(d / 10, 1 s)]` ([`spread`]): never earlier than the upstream asked, at most a tenth
//! later (and at most [`SPREAD_CAP`]), and never past `max_delay`, so a value of exactly
//! `max_delay` is not spread. Envoy's rate-limited back-off spreads the same way, upwards only,
//! but over `[d, 1.5 · d)` (`source/common/common/backoff_strategy.cc`,
//! `JitteredLowerBoundBackOffStrategy`); a tenth keeps most of the request's deadline for the
//! retry itself.
//!
//! # Forms
//!
//! RFC 9110 §10.2.3: `Retry-After = HTTP-date / delay-seconds`, where `delay-seconds = 1*DIGIT`
//! (whole seconds, no sign, no fraction). An HTTP-date (§5.6.7) is the IMF-fixdate
//! `Sun, 06 Nov 1994 08:49:37 GMT`, and recipients must also accept the obsolete RFC 850
//! (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) forms; the
//! `httpdate` crate parses all three (it also checks that the weekday fits the date). A date is
//! turned into a delay against the host's clock, `now_unix`; a date in the past means "now" (zero).
//! Anything else is an error, never a panic, and the caller falls back to the backoff schedule.

use std::time::{Duration, UNIX_EPOCH};

use rand_core::Rng;

use crate::core::rng::between;
use crate::core::{millis, Millis};

/// The widest [`spread`] above the asked delay.
pub const SPREAD_CAP: Duration = Duration::from_secs(1);

/// The asked delay is spread over at most this fraction of itself (a tenth).
const SPREAD_DIVISOR: u32 = 10;

/// At most this many characters of a bad value are kept in the error (for the log line).
pub const MAX_QUOTED_CHARS: usize = 64;

/// Why a `Retry-After` value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryAfterError {
    #[error("Retry-After is empty")]
    Empty,
    #[error("Retry-After {value:?} is neither delay-seconds nor an HTTP-date")]
    Invalid {
        /// The value, cut to [`MAX_QUOTED_CHARS`] characters.
        value: String,
    },
}

/// The delay that a `Retry-After` value asks for, `now_unix` being the current time in
/// milliseconds since the Unix epoch. Delay-seconds too large for a `u64` saturate.
pub fn parse(value: &str, now_unix: Millis) -> Result<Duration, RetryAfterError> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return Err(RetryAfterError::Empty);
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: only overflow can fail, and a huge delay is just "very long".
        return Ok(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).map_err(|_| RetryAfterError::Invalid {
        value: value.chars().take(MAX_QUOTED_CHARS).collect(),
    })?;
    let date_ms = date
        .duration_since(UNIX_EPOCH)
        .map(millis)
        .unwrap_or_default();
    Ok(Duration::from_millis(date_ms.saturating_sub(now_unix)))
}

/// [`parse`], cut to `max`. (The retry decision does not cut a long value: it does not retry,
/// see the module docs.)
pub fn parse_capped(
    value: &str,
    now_unix: Millis,
    max: Duration,
) -> Result<Duration, RetryAfterError> {
    parse(value, now_unix).map(|d| d.min(max))
}

/// The delay to wait for a `Retry-After` that asked for `asked`: uniform in
/// `[asked, asked + min(asked / 10, SPREAD_CAP)]`, cut at `max` (never below `asked`). See the
/// module docs.
pub fn spread(asked: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let width = (asked / SPREAD_DIVISOR).min(SPREAD_CAP);
    let high = asked.saturating_add(width).min(max.max(asked));
    between(rng, asked, high)
}

#[cfg(test)]
mod tests;

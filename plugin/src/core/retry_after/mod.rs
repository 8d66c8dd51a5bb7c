//! `Retry-After` on a failed response: how long the upstream asks us to wait.
//!
//! # Why respect it
//!
//! A 503 or 429 that says when to come back is better information than any backoff schedule:
//! retrying earlier only adds load where the upstream asked for less. With
//! `respect_retry_after`, a parsable value replaces the backoff delay, capped at `max_delay` so an
//! upstream cannot park a request for an hour ([`parse_capped`]); the deadline still applies.
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

use crate::core::{millis, Millis};

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

/// [`parse`], capped at `max` (the policy's `max_delay`).
pub fn parse_capped(
    value: &str,
    now_unix: Millis,
    max: Duration,
) -> Result<Duration, RetryAfterError> {
    parse(value, now_unix).map(|d| d.min(max))
}

#[cfg(test)]
mod tests;

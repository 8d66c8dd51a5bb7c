//! Durations as the policy writes them.
//!
//! # Forms
//!
//! - A string with a unit: a decimal number (`250`, `1.5`, no sign, no exponent) followed by
//!   `ms`, `s`, `m` or `h` with nothing in between: `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`.
//! - A bare JSON number: seconds, as client libraries often write timeouts (`60.0`).
//!
//! # Resolution
//!
//! Milliseconds: the filter's clock and timers count in milliseconds. A finer value is rounded
//! to the nearest millisecond (half up for strings, which are read exactly as decimals; bare
//! numbers are binary floats and round as `f64::round`). Rules such as "must be at least 1ms"
//! then apply to the rounded value.
//!
//! A hand-written parser rather than a crate: `humantime` reads neither decimals nor bare
//! numbers, and the grammar fits in a screen.

use std::time::Duration;

/// The largest duration the parser reads, in milliseconds: 2^53, the largest integer an `f64`
/// holds exactly (about 285,000 years), so bare numbers and strings agree on what fits. The
/// rules of each field allow far less; this bound only keeps the arithmetic exact.
pub(crate) const MAX_MILLIS: u64 = 1 << 53;

/// Fraction digits read. Later ones weigh under 10^-12 of the unit (under 4 ns of an hour), and
/// with at most 12 digits the arithmetic below fits a `u64` (10^12 × 3.6 × 10^6 < 2^64).
const MAX_FRACTION_DIGITS: usize = 12;

/// Why a duration could not be read (worded by [`super::Rule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurationError {
    Negative,
    Malformed,
    TooLarge,
}

/// Reads a duration string with a unit.
pub(crate) fn parse_text(text: &str) -> Result<Duration, DurationError> {
    if text.starts_with('-') {
        return Err(DurationError::Negative);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or(DurationError::Malformed)?;
    let (number, unit) = (text.get(..split), text.get(split..));
    let (Some(number), Some(unit)) = (number, unit) else {
        return Err(DurationError::Malformed);
    };
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(DurationError::Malformed),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (number.contains('.') && !digits(fraction)) {
        return Err(DurationError::Malformed);
    }
    let whole_ms = whole
        .parse::<u64>()
        .ok()
        .and_then(|w| w.checked_mul(unit_ms))
        .ok_or(DurationError::TooLarge)?;
    let fraction_ms = fraction_millis(fraction, unit_ms);
    let total = whole_ms
        .checked_add(fraction_ms)
        .filter(|ms| *ms <= MAX_MILLIS)
        .ok_or(DurationError::TooLarge)?;
    Ok(Duration::from_millis(total))
}

/// `0.<fraction>` units in milliseconds, rounded half up. `fraction` is all ASCII digits.
fn fraction_millis(fraction: &str, unit_ms: u64) -> u64 {
    let kept = fraction.get(..MAX_FRACTION_DIGITS).unwrap_or(fraction);
    let numerator: u64 = kept.parse().unwrap_or(0);
    let scale = 10u64.pow(kept.len() as u32);
    (numerator * unit_ms + scale / 2) / scale
}

/// Reads a bare number of seconds.
pub(crate) fn from_seconds(seconds: f64) -> Result<Duration, DurationError> {
    if seconds.is_nan() {
        return Err(DurationError::Malformed);
    }
    if seconds < 0.0 {
        return Err(DurationError::Negative);
    }
    let ms = (seconds * 1000.0).round();
    // Also refuses infinity.
    if ms > MAX_MILLIS as f64 {
        return Err(DurationError::TooLarge);
    }
    Ok(Duration::from_millis(ms as u64))
}

/// The shortest string with a unit that reads back as `d` (whole milliseconds): `"90s"`,
/// `"1500ms"`, `"2m"`, `"1h"`.
pub(crate) fn format(d: Duration) -> String {
    let ms = crate::core::millis(d);
    match ms {
        0 => String::from("0ms"),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

/// A duration as a JSON string, for messages: `"60s"`.
pub(crate) fn show(d: Duration) -> String {
    format!("\"{}\"", format(d))
}

//! How long to wait before the next retry: exponential growth, a cap, then jitter.
//!
//! # Schedule
//!
//! Before retry `n` (n = 1, 2, …) the base delay is `d = min(max_delay, base_delay ·
//! exponential_base^(n-1))` (POLICY.md `retry.base_delay`). It saturates at `max_delay` for any `n`
//! and any base (an infinite or NaN product is the cap; a zero `base_delay` is zero), so a long
//! retry sequence or a large base can never overflow.
//!
//! # Jitter
//!
//! Without jitter every client that failed together retries together, a thundering herd that
//! hits the upstream in waves. Every mode draws uniformly from an interval and never exceeds
//! `max_delay`:
//!
//! | mode | delay |
//! | --- | --- |
//! | `Proportional` (the default) | `min(max_delay, d · U[0.5, 1.5])` |
//! | `None` | `d` |
//! | `Full` | `U[0, d]` |
//! | `Equal` | `d/2 + U[0, d/2]` |
//! | `Decorrelated` | `min(max_delay, U[base_delay, 3 · previous])`, previous starting at `base_delay` |
//!
//! `Full`, `Equal` and `Decorrelated` are the three schedules compared in the AWS Architecture
//! Blog post "Exponential Backoff And Jitter" (Marc Brooker, 2015): full jitter spreads retries
//! most evenly, equal jitter keeps a floor of half the delay, and decorrelated jitter grows from the
//! previous delay instead of from the retry number (it ignores `exponential_base`), so it never
//! drops below `base_delay` when `base_delay ≤ max_delay`.
//!
//! The draw is done in whole nanoseconds and clamped to the interval, so the bounds above hold
//! exactly, not just up to float rounding.

use std::time::Duration;

use rand_core::Rng;

use crate::core::rng::unit;
use crate::policy::{BackoffPolicy, Jitter};

/// The delay before retry `retry` (1 for the first retry; 0 is read as 1). `previous` is the delay
/// used before the previous retry (only `Decorrelated` reads it; `None` before the first retry).
pub fn delay(
    p: &BackoffPolicy,
    retry: u32,
    previous: Option<Duration>,
    rng: &mut impl Rng,
) -> Duration {
    let cap = p.max_delay;
    let d = exponential(p, retry);
    match p.jitter {
        Jitter::None => d,
        Jitter::Proportional => draw(rng, d / 2, d.saturating_mul(3) / 2).min(cap),
        Jitter::Full => draw(rng, Duration::ZERO, d),
        Jitter::Equal => draw(rng, d / 2, d),
        Jitter::Decorrelated => {
            let previous = previous.unwrap_or(p.base_delay);
            let high = previous.saturating_mul(3).max(p.base_delay);
            draw(rng, p.base_delay, high).min(cap)
        }
    }
}

/// `min(max_delay, base_delay · exponential_base^(retry-1))`, before jitter; saturating.
pub fn exponential(p: &BackoffPolicy, retry: u32) -> Duration {
    let cap = p.max_delay;
    let exponent = retry.saturating_sub(1);
    if p.base_delay.is_zero() || exponent == 0 {
        return p.base_delay.min(cap);
    }
    // `powi` (repeated squaring) rather than `powf`: libm's `pow` and its tables cost about 8 KB
    // of the filter's `.wasm`. For the exponents that matter (at most 9: `max_attempts` ≤ 10)
    // the two agree to well under a nanosecond of delay. Past `i32::MAX` every base ≠ 1
    // has long saturated (at the cap, or at 0 below 1).
    let factor = p
        .exponential_base
        .powi(i32::try_from(exponent).unwrap_or(i32::MAX));
    let nanos = p.base_delay.as_nanos() as f64 * factor;
    if nanos.is_nan() || nanos >= cap.as_nanos() as f64 {
        return cap;
    }
    if nanos <= 0.0 {
        return Duration::ZERO;
    }
    // `as` saturates; the value is below the cap here anyway.
    from_nanos(nanos.round() as u128).min(cap)
}

/// A uniform draw from `[low, high]` in whole nanoseconds; `low` when the interval is empty.
fn draw(rng: &mut impl Rng, low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let span = (high - low).as_nanos();
    let offset = (span as f64 * unit(rng)) as u128;
    low.saturating_add(from_nanos(offset.min(span))).min(high)
}

/// Nanoseconds as a [`Duration`], saturating at [`Duration::MAX`].
///
/// Divided 32 bits at a time (long division by a one-limb divisor): a 128-bit `/` links a
/// kilobyte of compiler-builtins into the filter's `.wasm`.
fn from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u64 = 1_000_000_000;
    let (mut secs, mut rest) = (0u128, 0u64);
    for shift in [96, 64, 32, 0] {
        // rest < 10^9 < 2^30, so the partial dividend fits 62 bits.
        let part = (rest << 32) | ((nanos >> shift) as u64 & 0xffff_ffff);
        secs |= u128::from(part / NANOS_PER_SEC) << shift;
        rest = part % NANOS_PER_SEC;
    }
    match u64::try_from(secs) {
        // rest < 10^9: no carry into the seconds.
        Ok(secs) => Duration::new(secs, rest as u32),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests;

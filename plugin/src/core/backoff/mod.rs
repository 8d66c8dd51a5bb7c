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
//! | `Proportional` (the default) | `U[d/2, min(3d/2, max_delay)]` |
//! | `None` | `d` |
//! | `Full` | `U[0, d]` |
//! | `Equal` | `d/2 + U[0, d/2]` |
//! | `Decorrelated` | `U[base_delay, min(3 · previous, max_delay)]`, previous starting at `base_delay` |
//!
//! `Full`, `Equal` and `Decorrelated` are the three schedules compared in the AWS Architecture
//! Blog post "Exponential Backoff And Jitter" (Marc Brooker, 2015): full jitter spreads retries
//! most evenly, equal jitter keeps a floor of half the delay, and decorrelated jitter grows from the
//! previous delay instead of from the retry number (it ignores `exponential_base`), so it never
//! drops below `base_delay` when `base_delay ≤ max_delay`.
//!
//! # No pile-up at the cap
//!
//! `Proportional` and `Decorrelated` can reach past `max_delay`. Drawing first and clamping the
//! draw afterwards (`min(max_delay, d · U[0.5, 1.5])`, or for decorrelated jitter
//! `min(cap, U[base, 3 · previous])`) would put every draw above the cap exactly on it: once the
//! schedule reaches the cap, half of the proportional draws (and two thirds of the decorrelated
//! ones) would be `max_delay` to the nanosecond, and the clients that failed together would retry
//! together after all. So the interval is cut at `max_delay` and the draw is uniform inside it:
//! below the cap nothing changes, at the cap a proportional delay is `U[max_delay/2, max_delay]`.
//!
//! The draw is done in whole nanoseconds and clamped to the interval, so the bounds above hold
//! exactly, not just up to float rounding.

use std::time::Duration;

use rand_core::Rng;

use crate::core::rng::{between as draw, from_nanos};
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
        // d ≤ cap, so d/2 ≤ cap: the interval is never empty.
        Jitter::Proportional => draw(rng, d / 2, (d.saturating_mul(3) / 2).min(cap)),
        Jitter::Full => draw(rng, Duration::ZERO, d),
        Jitter::Equal => draw(rng, d / 2, d),
        Jitter::Decorrelated => {
            let previous = previous.unwrap_or(p.base_delay);
            let high = previous.saturating_mul(3).max(p.base_delay);
            // `.min(cap)` again for a base_delay above the cap (validation refuses it).
            draw(rng, p.base_delay, high.min(cap)).min(cap)
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

#[cfg(test)]
mod tests;
